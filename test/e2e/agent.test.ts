/**
 * The whole agent in-process: real OTel SDK exporters (gRPC and HTTP/protobuf) → receivers →
 * ledger (fsync) → sealed segments → fs write-once destination → `sealtrail verify`, `prove`,
 * `verify-proof` and `export` on what was forwarded. Traces to G1, G3, G4, G5.
 */
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter as GrpcExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as ProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordExporter } from '@opentelemetry/sdk-logs';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { Agent } from '../../src/main.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { ORIGIN, agentConfig, bodiesFromExport, cli, tempDir } from './helpers.js';

async function emit(exporter: LogRecordExporter, tag: string, n: number): Promise<void> {
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'e2e-app' }),
    processors: [new BatchLogRecordProcessor({ exporter, maxExportBatchSize: 10 })],
  });
  const logger = provider.getLogger('e2e-scope', '1.2.3');
  for (let i = 0; i < n; i++) {
    logger.emit({ severityNumber: SeverityNumber.WARN, severityText: 'WARN', body: `${tag}:${i}`, attributes: { i, tag } });
  }
  await provider.forceFlush();
  await provider.shutdown();
}

describe('agent end to end', () => {
  let dir = '';
  let agent: Agent | undefined;
  afterEach(async () => {
    await agent?.shutdown();
    agent = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('SDK logs over gRPC and HTTP are sealed, forwarded, verified, provable and exportable', async () => {
    dir = await tempDir('sealtrail-e2e-');
    const keygen = await cli('keygen', '--dir', join(dir, 'keys'));
    expect(keygen.code, keygen.stderr).toBe(0);
    const cfg = parseConfig(agentConfig(dir));
    agent = new Agent(cfg, silentLogger(), { defaultMetrics: false });
    const addr = await agent.start();

    await emit(new GrpcExporter({ url: `http://127.0.0.1:${addr.grpc!.port}` }), 'grpc', 25);
    await emit(new ProtoExporter({ url: `http://127.0.0.1:${addr.http!.port}/v1/logs` }), 'http', 25);
    // Acknowledged means durable (G1): the ledger holds all 50 before the exporters returned.
    expect(agent.ledger!.treeSize).toBe(50);
    const metrics = await agent.metrics.registry.getSingleMetricAsString('sealtrail_receiver_accepted_log_records_total');
    expect(metrics).toContain('transport="grpc"} 25');
    expect(metrics).toContain('transport="http"} 25');

    await agent.shutdown(); // seals the open segment and forwards within the grace period
    agent = undefined;

    const worm = join(dir, 'worm');
    const pub = join(dir, 'keys', 'signing.pub');
    const verified = await cli('verify', worm, '--key', pub, '--origin', ORIGIN);
    expect(verified.stdout).toMatch(/INTACT: no findings/);
    expect(verified.code).toBe(0);
    const local = await cli('verify', join(dir, 'ledger'), '--key', pub, '--origin', ORIGIN);
    expect(local.code, local.stdout + local.stderr).toBe(0);
    const both = await cli('verify', join(dir, 'ledger'), worm, '--key', pub, '--origin', ORIGIN);
    expect(both.code, both.stdout + both.stderr).toBe(0);

    // A ledger whose newest checkpoint really is behind the destination is still reported.
    const { copyFile, readdir: ls } = await import('node:fs/promises');
    const cpDir = join(worm, ORIGIN, 'checkpoints');
    const oldest = (await ls(cpDir)).sort()[0]!;
    const headFile = join(dir, 'ledger', 'head.checkpoint');
    await copyFile(headFile, join(dir, 'head.saved'));
    await copyFile(join(cpDir, oldest), headFile);
    const behind = await cli('verify', join(dir, 'ledger'), worm, '--key', pub, '--origin', ORIGIN, '--json');
    expect(behind.code).toBe(1);
    expect((JSON.parse(behind.stdout) as { findings: Array<{ check: string }> }).findings.map((f) => f.check)).toContain('source.truncated');
    await copyFile(join(dir, 'head.saved'), headFile);

    const exported = await cli('export', worm, '--key', pub, '--origin', ORIGIN);
    expect(exported.code, exported.stderr).toBe(0);
    const bodies = bodiesFromExport(exported.stdout);
    expect(bodies).toEqual([...Array.from({ length: 25 }, (_, i) => `grpc:${i}`), ...Array.from({ length: 25 }, (_, i) => `http:${i}`)]);

    const proofFile = join(dir, 'proof.txt');
    const proved = await cli('prove', worm, '--origin', ORIGIN, '--index', '37', '--out', proofFile);
    expect(proved.code, proved.stderr).toBe(0);
    const checked = await cli('verify-proof', proofFile, '--key', pub);
    expect(checked.code, checked.stdout + checked.stderr).toBe(0);

    // The trusted key comes from the operator: another key makes the same log fail verification.
    const other = await cli('keygen', '--dir', join(dir, 'other'));
    expect(other.code).toBe(0);
    const wrongKey = await cli('verify', worm, '--key', join(dir, 'other', 'signing.pub'), '--origin', ORIGIN);
    expect(wrongKey.code).toBe(1);
    const wrongOrigin = await cli('verify', worm, '--key', pub, '--origin', 'sealtrail.test/someone-else');
    expect(wrongOrigin.code).toBe(1);
  });

  it('refuses to start with a group-readable key and says how to fix it', async () => {
    dir = await tempDir('sealtrail-e2e-key-');
    expect((await cli('keygen', '--dir', join(dir, 'keys'))).code).toBe(0);
    const { chmod } = await import('node:fs/promises');
    await chmod(join(dir, 'keys', 'signing.key'), 0o640);
    agent = new Agent(parseConfig(agentConfig(dir)), silentLogger(), { defaultMetrics: false });
    await expect(agent.start()).rejects.toThrow(/chmod 600/);
    // Nothing was created in the ledger directory.
    await expect(readdir(join(dir, 'ledger'))).rejects.toThrow(/ENOENT/);
  });

  it('without a key and without generate_if_missing, refuses to start; with it, generates one (0600)', async () => {
    dir = await tempDir('sealtrail-e2e-gen-');
    agent = new Agent(parseConfig(agentConfig(dir)), silentLogger(), { defaultMetrics: false });
    await expect(agent.start()).rejects.toThrow(/keygen|missing|not found|does not exist/i);
    agent = new Agent(parseConfig({ ...agentConfig(dir), signing: { key_file: join(dir, 'keys', 'signing.key'), generate_if_missing: true } }), silentLogger(), {
      defaultMetrics: false,
    });
    await agent.start();
    const { stat } = await import('node:fs/promises');
    expect((await stat(join(dir, 'keys', 'signing.key'))).mode & 0o777).toBe(0o600);
    await writeFile(join(dir, 'marker'), '');
  });
});
