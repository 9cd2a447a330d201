/**
 * The real ledger feeding the real replicator (G5, G6, G3): sealed segments and checkpoints reach
 * an fs destination and an S3 Object Lock bucket, the local copies are released, and
 * `verifyLog` (the code behind `sealtrail verify`) finds each destination intact. Then an overwrite
 * through the S3 API — accepted by the gateway as a second version — is caught by verify.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openLogSource } from '../../src/cli/log-sources.js';
import type { LedgerConfig } from '../../src/config/schema.js';
import type { Destination } from '../../src/forward/destination.js';
import { FsDestination } from '../../src/forward/fs.js';
import { objectKey } from '../../src/forward/keys.js';
import { ledgerSealedSource } from '../../src/forward/ledger-source.js';
import { Replicator } from '../../src/forward/replicator.js';
import { S3Destination } from '../../src/forward/s3.js';
import { signerFromSeed, verifierFor } from '../../src/keys/keys.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { verifyLog } from '../../src/verify/verifier.js';
import { createBucket, destOptions, s3env, skipS3, testClient } from './s3-env.js';

const ORIGIN = 'sealtrail.test/forward-e2e';
const signer = signerFromSeed(ORIGIN, Uint8Array.from({ length: 32 }, (_, i) => 100 + i));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sealtrail-fwd-e2e-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function ledgerConfig(): LedgerConfig {
  return {
    dir: join(dir, 'ledger'),
    origin: ORIGIN,
    durability: 'fsync',
    max_segment_bytes: 64 * 1024 * 1024,
    max_segment_age: 3_600_000,
    seal_interval: 3_600_000,
    max_disk_bytes: 1024 * 1024 * 1024,
  };
}

/** Appends `segments` batches, sealing after each. */
async function fill(ledger: Ledger, segments: number): Promise<void> {
  for (let s = 0; s < segments; s++) {
    const batch = Array.from({ length: 50 }, (_, i) => new TextEncoder().encode(`segment ${s} entry ${i} `.padEnd(200, '.')));
    expect((await ledger.append(batch)).kind).toBe('ok');
    await ledger.seal();
  }
}

async function forwardAll(ledger: Ledger, dests: Destination[]): Promise<void> {
  const r = new Replicator({
    source: ledgerSealedSource(ledger),
    destinations: dests,
    forwarding: { quorum: dests.length, delete_after: 'all', min_local_age: 0, retry_initial: 20, retry_max: 500 },
    origin: ORIGIN,
    stateDir: join(dir, 'ledger', 'forward'),
    canary: false,
  });
  await r.start();
  try {
    expect(await r.drained(30_000)).toBe(true);
  } finally {
    await r.stop();
  }
}

describe('ledger → replicator → fs destination → verify', { timeout: 60_000 }, () => {
  it('forwards every sealed segment and checkpoint, releases them locally, and the destination verifies intact', async () => {
    const ledger = await Ledger.open({ config: ledgerConfig(), signer, logger: silentLogger() });
    try {
      await fill(ledger, 3);
      expect(ledger.sealedSegments()).toHaveLength(3);
      const fsDest = new FsDestination({ name: 'worm', path: join(dir, 'worm') });
      await forwardAll(ledger, [fsDest]);
      expect(ledger.sealedSegments()).toEqual([]);
      expect(ledger.checkpoints()).toEqual([]);
      expect(await readdir(join(dir, 'worm', 'sealtrail.test', 'forward-e2e', 'segments'))).toHaveLength(3);

      const src = await openLogSource(join(dir, 'worm'), { origin: ORIGIN, cwd: dir });
      try {
        const report = await verifyLog([src], { origin: ORIGIN, trusted: [verifierFor(signer)] });
        expect(report.findings).toEqual([]);
      } finally {
        src.close();
      }
    } finally {
      await ledger.close();
    }
  });
});

const skip = skipS3();
describe.skipIf(skip)('ledger → replicator → S3 Object Lock + fs → verify', { timeout: 90_000 }, () => {
  let client: S3Client;
  beforeAll(() => {
    client = testClient();
  });
  afterAll(() => client?.destroy());

  it('both destinations verify intact; an overwrite through the S3 API is caught by verify as a second version', async () => {
    const bucket = await createBucket(client, true);
    const s3 = new S3Destination(destOptions('s3-a', bucket, 'audit'));
    const fsDest = new FsDestination({ name: 'worm', path: join(dir, 'worm') });
    const ledger = await Ledger.open({ config: ledgerConfig(), signer, logger: silentLogger() });
    try {
      await fill(ledger, 2);
      await forwardAll(ledger, [s3, fsDest]);
      expect(ledger.sealedSegments()).toEqual([]);
    } finally {
      await ledger.close();
    }

    await writeFile(
      join(dir, 'c.yaml'),
      'receivers:\n  otlp:\n    protocols:\n      http: { endpoint: 127.0.0.1:0 }\n' +
        `destinations:\n  - { name: s3-a, type: s3, bucket: ${bucket}, prefix: audit, endpoint: "${s3env!.endpoint}", force_path_style: true,` +
        ' access_key_id: "${env:SEALTRAIL_S3_ACCESS_KEY_ID}", secret_access_key: "${env:SEALTRAIL_S3_SECRET_ACCESS_KEY}" }\n',
    );
    const verify = async (arg: string) => {
      const src = await openLogSource(arg, { origin: ORIGIN, cwd: dir, configFile: 'c.yaml' });
      try {
        return await verifyLog([src], { origin: ORIGIN, trusted: [verifierFor(signer)] });
      } finally {
        src.close();
      }
    };
    expect((await verify('dest:s3-a')).findings).toEqual([]);
    expect((await verify(join(dir, 'worm'))).findings).toEqual([]);

    // Tamper: overwrite segment 1 through the S3 API. The gateway keeps the locked version and adds
    // a second one; verify must name it.
    const key = s3.fullKey(objectKey(ORIGIN, 'segment', '0000000000000001.seg'));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from('tampered') }));
    const after = await verify('dest:s3-a');
    expect(after.findings.length).toBeGreaterThan(0);
    expect(after.findings.map((f) => f.check)).toContain('segment.versions');
    s3.close();
  });
});
