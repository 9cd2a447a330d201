/**
 * Issue 8 end to end through the real agent wiring (src/main.ts): a YAML config with TLS + bearer
 * tokens on OTLP/HTTP and mTLS + bearer tokens on OTLP/gRPC, the new limit keys, loaded with
 * loadConfigFile; the real SDK exporters carry their credentials; records land in the ledger only
 * for authenticated clients; the metrics endpoint counts the refusals and never shows a token.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter as GrpcExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as ProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { InMemoryLogRecordExporter, LoggerProvider, type LogRecordExporter, type ReadableLogRecord, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load.js';
import { writeKeyPair } from '../../src/keys/files.js';
import { Agent } from '../../src/main.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { type TestPki, makePki } from './helpers.js';

const TOKEN = 'agent-e2e-token-0123456789abcdef';
let pki: TestPki;
let dir: string;
let agent: Agent;

beforeAll(async () => {
  pki = makePki();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealtrail-sec-agent-'));
  await writeKeyPair(path.join(dir, 'keys'), 'signing', 'sealtrail.test/security');
  fs.writeFileSync(path.join(dir, 'tokens'), `# applications\nshop:${TOKEN}\n`, { mode: 0o600 });
  const tls = { cert_file: pki.server.cert, key_file: pki.server.key };
  const yaml = stringify({
    receivers: {
      otlp: {
        max_concurrent_requests: 8,
        max_records_per_request: 1000,
        protocols: {
          http: { endpoint: '127.0.0.1:0', read_header_timeout: '2s', read_timeout: '10s', tls, auth: { bearer_token_file: '${file:token-path}' } },
          grpc: { endpoint: '127.0.0.1:0', read_timeout: '5s', tls: { ...tls, client_ca_file: pki.ca.cert, min_version: '1.3' }, auth: { bearer_token_file: path.join(dir, 'tokens') } },
        },
      },
    },
    ledger: { dir: path.join(dir, 'ledger'), origin: 'sealtrail.test/security', seal_interval: '1s' },
    signing: { key_file: path.join(dir, 'keys', 'signing.key') },
    destinations: [],
    telemetry: { metrics: { endpoint: '127.0.0.1:0' }, health: { endpoint: '127.0.0.1:0' }, logs: { level: 'silent' } },
    shutdown: { grace_period: '2s' },
  });
  // ${file:…}: the token file's path itself comes from another file, relative to the config's directory.
  fs.writeFileSync(path.join(dir, 'token-path'), `${path.join(dir, 'tokens')}\n`);
  fs.writeFileSync(path.join(dir, 'agent.yaml'), yaml);
  const cfg = loadConfigFile(path.join(dir, 'agent.yaml'));
  expect(cfg.receivers.otlp.protocols.http?.read_header_timeout).toBe(2_000);
  expect(cfg.receivers.otlp.protocols.http?.tls?.reload_interval).toBe(5_000);
  agent = new Agent(cfg, silentLogger(), { defaultMetrics: false });
  await agent.start();
}, 60_000);

afterAll(async () => {
  await agent?.shutdown();
  pki?.remove();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function records(): Promise<ReadableLogRecord[]> {
  const memory = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({ processors: [new SimpleLogRecordProcessor({ exporter: memory })] });
  provider.getLogger('sec').emit({ severityNumber: SeverityNumber.INFO, body: 'audit event' });
  await provider.forceFlush();
  const out = [...memory.getFinishedLogRecords()];
  await provider.shutdown();
  return out;
}

async function exportWith(exporter: LogRecordExporter, recs: ReadableLogRecord[]): Promise<number> {
  const r = await new Promise<{ code: number }>((resolve) => exporter.export(recs, resolve));
  await exporter.shutdown();
  return r.code;
}

function metricsText(): Promise<string> {
  return new Promise((resolve, reject) => {
    const { host, port } = agent.addresses.metrics!;
    http.get({ host, port, path: '/metrics' }, (res) => {
      let t = '';
      res.on('data', (d) => (t += d));
      res.on('end', () => resolve(t));
    }).on('error', reject);
  });
}

describe('agent with TLS, mTLS and bearer tokens from its YAML config', () => {
  it('authenticated SDK exports over HTTPS and mTLS gRPC are stored; unauthenticated ones are refused and counted; no token in /metrics', async () => {
    const recs = await records();
    const ca = pki.read(pki.ca.cert);
    const { http: h, grpc: g } = agent.addresses;
    const httpsUrl = `https://127.0.0.1:${h!.port}/v1/logs`;
    const before = agent.ledger!.treeSize;

    const proto = (headers?: Record<string, string>): ProtoExporter =>
      new ProtoExporter({ url: httpsUrl, httpAgentOptions: { ca }, ...(headers ? { headers } : {}) });
    expect(await exportWith(proto({ Authorization: `Bearer ${TOKEN}` }), recs)).toBe(0);
    expect(await exportWith(proto(), recs)).toBe(1);
    expect(await exportWith(proto({ Authorization: 'Bearer not-the-token-0000000000' }), recs)).toBe(1);

    const gexp = (token: string | undefined, cert: { cert: string; key: string } | undefined): GrpcExporter => {
      const metadata = new grpc.Metadata();
      if (token) metadata.set('authorization', `Bearer ${token}`);
      const credentials = grpc.credentials.createSsl(ca, cert ? pki.read(cert.key) : null, cert ? pki.read(cert.cert) : null);
      return new GrpcExporter({ url: `https://127.0.0.1:${g!.port}`, credentials, metadata });
    };
    expect(await exportWith(gexp(TOKEN, pki.client), recs)).toBe(0);
    expect(await exportWith(gexp(undefined, pki.client), recs)).toBe(1); // certificate but no token
    expect(await exportWith(gexp(TOKEN, pki.clientOtherCa), recs)).toBe(1); // token but rogue certificate
    expect(await exportWith(gexp(TOKEN, undefined), recs)).toBe(1); // token but no certificate

    expect(agent.ledger!.treeSize - before).toBe(2 * recs.length);
    const text = await metricsText();
    expect(text).toContain('sealtrail_receiver_refused_requests_total{transport="http",reason="unauthenticated"} 2');
    expect(text).toContain('sealtrail_receiver_refused_requests_total{transport="grpc",reason="unauthenticated"} 1');
    expect(text).not.toContain(TOKEN);
  }, 30_000);
});
