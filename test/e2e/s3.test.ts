/**
 * G5/G6 end to end against the real S3 Object Lock server (Ceph RGW, scripts/s3-server.sh):
 * OTel SDK → agent → sealed segments in two locked buckets and one fs destination (quorum 2) →
 * `sealtrail verify` on each destination, by `dest:NAME` and by `s3://` URL, and on all together.
 * Then an attacker with S3 credentials overwrites a forwarded object (the versioned bucket keeps a
 * second version) and tries to delete it (refused): verify finds the overwrite.
 */
import { DeleteObjectCommand, ListObjectVersionsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter as ProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { Agent } from '../../src/main.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { createBucket, s3env, skipS3, testClient } from '../forward/s3-env.js';
import { ORIGIN, agentConfig, bodiesFromExport, cli, tempDir, writeConfig } from './helpers.js';

const skip = skipS3();

describe.skipIf(skip)('agent → two S3 Object Lock buckets + fs, quorum 2 (real gateway)', () => {
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('forwards, verifies everywhere, and catches an overwrite at a destination', { timeout: 120_000 }, async () => {
    const e = s3env!;
    const client = testClient();
    const [bucketA, bucketB] = [await createBucket(client, true), await createBucket(client, true)];
    dir = await tempDir('sealtrail-e2e-s3-');
    expect((await cli('keygen', '--dir', join(dir, 'keys'))).code).toBe(0);
    const s3 = (name: string, bucket: string) => ({
      name, type: 's3', bucket, prefix: 'audit', endpoint: e.endpoint, region: e.region, force_path_style: true,
      access_key_id: e.accessKeyId, secret_access_key: e.secretAccessKey, retention: { mode: 'COMPLIANCE', days: 1 },
    });
    const raw = agentConfig(dir, {
      destinations: [s3('s3-a', bucketA), s3('s3-b', bucketB), { name: 'worm', type: 'fs', path: join(dir, 'worm'), accept_unsafe: true }],
      forwarding: { quorum: 2, retry_initial: '100ms', retry_max: '1s' },
    });
    const configFile = await writeConfig(dir, raw);
    const agent = new Agent(parseConfig(raw), silentLogger(), { defaultMetrics: false });
    const addr = await agent.start();
    try {
      const provider = new LoggerProvider({
        processors: [new BatchLogRecordProcessor({ exporter: new ProtoExporter({ url: `http://127.0.0.1:${addr.http!.port}/v1/logs` }) })],
      });
      const logger = provider.getLogger('s3-e2e');
      for (let i = 0; i < 40; i++) logger.emit({ severityNumber: SeverityNumber.INFO, body: `audit:${i}` });
      await provider.shutdown();
      expect(agent.ledger!.treeSize).toBe(40);
    } finally {
      await agent.shutdown();
    }

    const pub = join(dir, 'keys', 'signing.pub');
    const common = ['--key', pub, '--origin', ORIGIN];
    for (const name of ['s3-a', 's3-b', 'worm']) {
      const r = await cli('verify', `dest:${name}`, '--config', configFile, ...common);
      expect(r.code, `${name}: ${r.stdout}${r.stderr}`).toBe(0);
    }
    process.env.AWS_ACCESS_KEY_ID = e.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = e.secretAccessKey;
    const url = ['--endpoint', e.endpoint, '--region', e.region, '--force-path-style'];
    const all = await cli('verify', `s3://${bucketA}/audit`, `s3://${bucketB}/audit`, join(dir, 'worm'), ...url, ...common);
    expect(all.code, all.stdout + all.stderr).toBe(0);
    const exported = await cli('export', `s3://${bucketB}/audit`, ...url, ...common);
    expect(exported.code, exported.stderr).toBe(0);
    expect(bodiesFromExport(exported.stdout)).toEqual(Array.from({ length: 40 }, (_, i) => `audit:${i}`));

    // The attacker: find the forwarded segment in bucket A, try to delete its locked version, then overwrite it.
    const versions = await client.send(new ListObjectVersionsCommand({ Bucket: bucketA, Prefix: 'audit/' }));
    const seg = (versions.Versions ?? []).find((v) => v.Key?.endsWith('.seg'));
    expect(seg?.Key, 'a forwarded segment in bucket A').toBeDefined();
    await expect(client.send(new DeleteObjectCommand({ Bucket: bucketA, Key: seg!.Key!, VersionId: seg!.VersionId! }))).rejects.toThrow(/AccessDenied|Forbidden/i);
    await client.send(new PutObjectCommand({ Bucket: bucketA, Key: seg!.Key!, Body: Buffer.from('forged segment') }));

    const tampered = await cli('verify', `dest:s3-a`, '--config', configFile, ...common, '--json');
    expect(tampered.code).toBe(1);
    const report = JSON.parse(tampered.stdout) as { findings: Array<{ check: string; message: string }> };
    expect(report.findings.map((f) => f.check)).toContain('segment.versions');
    // The untouched destinations still verify, and comparing all three names the odd one out.
    const b = await cli('verify', 'dest:s3-b', '--config', configFile, ...common);
    expect(b.code).toBe(0);
  });
});
