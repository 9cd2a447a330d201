import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfigFile, parseConfig } from '../../src/config/load.js';
import { parseDurationMs, parseEndpoint } from '../../src/config/schema.js';
import { SealtrailError } from '../../src/errors.js';

const minimal = { receivers: { otlp: { protocols: { http: {} } } } };

function configError(raw: unknown): string {
  try {
    parseConfig(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(SealtrailError);
    expect((e as SealtrailError).code).toBe('CONFIG_INVALID');
    return (e as Error).message;
  }
  throw new Error('expected a configuration error');
}

describe('configuration', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sealtrail-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('the embedded default config is valid, binds localhost and generates a key', () => {
    const c = loadConfigFile('config/agent.yaml');
    expect(c.receivers.otlp.protocols.grpc?.endpoint).toBe('127.0.0.1:4317');
    expect(c.receivers.otlp.protocols.http?.endpoint).toBe('127.0.0.1:4318');
    expect(c.receivers.otlp.protocols.http?.max_request_body_size).toBe(20971520);
    expect(c.ledger.durability).toBe('fsync');
    expect(c.ledger.seal_interval).toBe(5000);
    expect(c.ledger.max_segment_age).toBe(60000);
    expect(c.signing.generate_if_missing).toBe(true);
    expect(c.telemetry.metrics.endpoint).toBe('127.0.0.1:8888');
    expect(c.telemetry.health.endpoint).toBe('127.0.0.1:13133');
  });

  it('fills documented defaults and binds localhost when endpoints are omitted', () => {
    const c = parseConfig({ receivers: { otlp: { protocols: { grpc: {}, http: {} } } } });
    expect(c.receivers.otlp.protocols.grpc).toMatchObject({ endpoint: '127.0.0.1:4317', max_recv_msg_size_mib: 4 });
    expect(c.receivers.otlp.protocols.http).toMatchObject({ endpoint: '127.0.0.1:4318' });
    expect(c.receivers.otlp.max_nesting_depth).toBe(32);
    expect(c.ledger).toMatchObject({ dir: './data/ledger', origin: 'sealtrail.local/dev', max_disk_bytes: 10737418240 });
    expect(c.signing.generate_if_missing).toBe(false);
    expect(c.destinations).toEqual([]);
    expect(c.forwarding.quorum).toBe(1);
  });

  it('accepts the full public contract from DESIGN.md', () => {
    const c = parseConfig({
      ...minimal,
      destinations: [
        { name: 'local-worm', type: 'fs', path: './data/worm' },
        {
          name: 's3-a', type: 's3', bucket: 'audit-a', prefix: 'logs', endpoint: 'http://127.0.0.1:7480',
          region: 'us-east-1', force_path_style: true, retention: { mode: 'COMPLIANCE', days: 365 },
        },
      ],
      forwarding: { quorum: 2 },
    });
    expect(c.destinations[1]).toMatchObject({ type: 's3', bucket: 'audit-a', retention: { days: 365 } });
  });

  it('refuses unknown keys with their full path', () => {
    const msg = configError({ receivers: { otlp: { protocols: { http: { endpont: 'x' } } } }, ledgr: {} });
    expect(msg).toContain('receivers.otlp.protocols.http.endpont: unknown key');
    expect(msg).toContain('ledgr: unknown key');
  });

  it('names the key path of every invalid value', () => {
    const msg = configError({
      ...minimal,
      ledger: { durability: 'sometimes', max_segment_age: 'soon', origin: 'a\nb' },
      destinations: [{ name: 'x', type: 'fs' }],
    });
    expect(msg).toContain('ledger.durability');
    expect(msg).toContain('ledger.max_segment_age: invalid duration "soon"');
    expect(msg).toContain('ledger.origin: origin must be printable ASCII');
    expect(msg).toContain('destinations[0].path');
  });

  it('refuses a quorum larger than the destination count and duplicate names', () => {
    const msg = configError({
      ...minimal,
      destinations: [
        { name: 'a', type: 'fs', path: '/x' },
        { name: 'a', type: 'fs', path: '/y' },
      ],
      forwarding: { quorum: 3 },
    });
    expect(msg).toContain('forwarding.quorum: quorum 3 is larger than the 2 configured destinations');
    expect(msg).toContain('destinations[1].name: duplicate destination name "a"');
  });

  it('refuses a receiver block without any protocol and a malformed endpoint', () => {
    expect(configError({ receivers: { otlp: { protocols: {} } } })).toContain('receivers.otlp.protocols: enable at least one protocol');
    expect(configError({ receivers: { otlp: { protocols: { grpc: { endpoint: 'localhost' } } } } })).toContain(
      'receivers.otlp.protocols.grpc.endpoint: expected host:port',
    );
  });

  it('substitutes ${env:VAR} and ${file:PATH} inside values, and reports missing ones by path', () => {
    process.env.SEALTRAIL_TEST_NODE = 'node-7';
    writeFileSync(join(dir, 'secret'), 's3cr3t\n');
    const file = join(dir, 'c.yaml');
    writeFileSync(
      file,
      [
        'receivers: { otlp: { protocols: { http: {} } } }',
        'ledger: { origin: "sealtrail.example/${env:SEALTRAIL_TEST_NODE}" }',
        'destinations:',
        '  - { name: s3, type: s3, bucket: abc, secret_access_key: "${file:secret}", access_key_id: "$${literal}" }',
      ].join('\n'),
    );
    const c = loadConfigFile(file);
    expect(c.ledger.origin).toBe('sealtrail.example/node-7');
    expect(c.destinations[0]).toMatchObject({ secret_access_key: 's3cr3t', access_key_id: '${literal}' });

    delete process.env.SEALTRAIL_TEST_NODE;
    expect(() => loadConfigFile(file)).toThrow(/ledger\.origin: environment variable SEALTRAIL_TEST_NODE is not set/);
  });

  it('reports YAML syntax errors and duplicate keys instead of guessing', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'receivers:\n  otlp: {\n');
    expect(() => loadConfigFile(file)).toThrow(/invalid YAML in/);
    writeFileSync(file, 'ledger: {}\nledger: {}\nreceivers: { otlp: { protocols: { http: {} } } }\n');
    expect(() => loadConfigFile(file)).toThrow(/invalid YAML in/);
    expect(() => loadConfigFile(join(dir, 'missing.yaml'))).toThrow(/cannot read config file/);
  });

  it('parses durations and endpoints', () => {
    expect(parseDurationMs('500ms')).toBe(500);
    expect(parseDurationMs('5s')).toBe(5000);
    expect(parseDurationMs('1.5m')).toBe(90000);
    expect(parseDurationMs(2)).toBe(2000);
    expect(parseDurationMs('5 seconds')).toBeUndefined();
    expect(parseEndpoint('[::1]:4317')).toEqual({ host: '::1', port: 4317 });
    expect(parseEndpoint('0.0.0.0:0')).toEqual({ host: '0.0.0.0', port: 0 });
    expect(parseEndpoint('host:99999')).toBeUndefined();
  });

  it('refuses an origin with a leading or trailing space (checkpoint lines have none)', () => {
    expect(configError({ ...minimal, ledger: { origin: 'node-a ' } })).toContain('ledger.origin');
    expect(configError({ ...minimal, ledger: { origin: ' node-a' } })).toContain('ledger.origin');
    expect(parseConfig({ ...minimal, ledger: { origin: 'a b' } }).ledger.origin).toBe('a b');
  });

  it('documents every top-level key of the schema in docs/configuration.md', () => {
    const doc = readFileSync('docs/configuration.md', 'utf8');
    for (const key of ['receivers.otlp.protocols.grpc.endpoint', 'max_recv_msg_size_mib', 'max_request_body_size', 'ledger.dir', 'ledger.origin', 'durability', 'max_segment_bytes', 'max_segment_age', 'seal_interval', 'max_disk_bytes', 'signing.key_file', 'destinations', 'forwarding.quorum', 'telemetry.metrics.endpoint', 'telemetry.health.endpoint']) {
      expect(doc, key).toContain(key);
    }
  });
});
