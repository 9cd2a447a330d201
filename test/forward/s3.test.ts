/**
 * S3 destination against the REAL local Object Lock server (G6). Proves: the lock is real (a
 * delete of the locked version is refused), an overwrite becomes a second version that put and
 * listVersions expose, a retry of the same bytes is confirmed without a new version, and the canary
 * tells a locked bucket from an unlocked one.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCanary } from '../../src/forward/canary.js';
import { S3Destination, s3ErrorInfo } from '../../src/forward/s3.js';
import { READ_GC_BYTES, noteBytesRead, readGcRuns } from '../../src/receiver/read-gc.js';
import { createBucket, destOptions, skipS3, testClient } from './s3-env.js';

const sha = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

const skip = skipS3();
describe.skipIf(skip)('S3 destination on the real Object Lock server', () => {
  let client: S3Client;
  let lockBucket: string;
  let plainBucket: string;
  let dest: S3Destination;
  beforeAll(async () => {
    client = testClient();
    lockBucket = await createBucket(client, true);
    plainBucket = await createBucket(client, false);
    dest = new S3Destination(destOptions('s3-a', lockBucket));
  });
  afterAll(() => {
    dest?.close();
    client?.destroy();
  });

  it('puts with COMPLIANCE lock, confirms by read-back, keeps the VersionId', async () => {
    const body = new Uint8Array(Buffer.from('segment bytes 1'));
    const r = await dest.put({ key: 'o/segments/0001.seg', body, sha256: sha(body) });
    expect(r.kind).toBe('confirmed');
    if (r.kind !== 'confirmed') return;
    expect(r.receipt.versionId).toBeTruthy();
    expect(r.receipt.alreadyPresent).toBe(false);
    expect(r.receipt.sha256).toBe(createHash('sha256').update(body).digest('hex'));
    const h = await dest.head('o/segments/0001.seg');
    expect(h?.lockMode).toBe('COMPLIANCE');
    expect(h!.retainUntil!.getTime()).toBeGreaterThan(Date.now() + 23 * 3600_000);
    expect(Buffer.from(await dest.get('o/segments/0001.seg')).toString()).toBe('segment bytes 1');

    // A retry of identical bytes (say after a crash before the cursor was saved) adds no version.
    const again = await dest.put({ key: 'o/segments/0001.seg', body, sha256: sha(body) });
    expect(again.kind).toBe('confirmed');
    if (again.kind === 'confirmed') {
      expect(again.receipt.alreadyPresent).toBe(true);
      expect(again.receipt.versionId).toBe(r.receipt.versionId);
    }
    expect((await dest.listVersions('o/')).length).toBe(1);
    expect((await dest.list('o/segments/')).map((o) => o.key)).toEqual(['o/segments/0001.seg']);
  });

  it('confirms a multi-MiB object from its read-back hashed as it streams in', async () => {
    const body = new Uint8Array(3 * 1024 * 1024 + 123).map((_, i) => (i * 89 + (i >> 16)) & 0xff);
    const r = await dest.put({ key: 'o/segments/0007.seg', body, sha256: sha(body) });
    expect(r).toMatchObject({ kind: 'confirmed', receipt: { size: body.length, sha256: createHash('sha256').update(body).digest('hex') } });
  });

  it('uploads a file body (a sealed segment on disk) as a stream, confirmed byte for byte', async () => {
    const body = new Uint8Array(2 * 1024 * 1024 + 5).map((_, i) => (i * 7 + (i >> 14)) & 0xff);
    const src = join(await mkdtemp(join(tmpdir(), 'sealtrail-s3src-')), 'src.seg');
    await writeFile(src, body);
    const r = await dest.put({ key: 'o/segments/0008.seg', body: { file: src, size: body.length }, sha256: sha(body) });
    expect(r).toMatchObject({ kind: 'confirmed', receipt: { size: body.length, alreadyPresent: false } });
    expect(Buffer.from(await dest.get('o/segments/0008.seg')).equals(Buffer.from(body))).toBe(true);
    // Again (a retry after a crash): the stored object is judged, nothing new is written.
    const again = await dest.put({ key: 'o/segments/0008.seg', body: { file: src, size: body.length }, sha256: sha(body) });
    expect(again).toMatchObject({ kind: 'confirmed', receipt: { alreadyPresent: true } });
    await rm(dirname(src), { recursive: true, force: true });
  });

  it("counts the upload's and the read-back's bytes for the paced young collections (their fresh buffers are garbage V8 does not see)", async () => {
    const body = new Uint8Array(READ_GC_BYTES + 4096).map((_, i) => (i * 13 + (i >> 12)) & 0xff);
    const src = join(await mkdtemp(join(tmpdir(), 'sealtrail-s3src-')), 'src.seg');
    await writeFile(src, body);
    // Start from an empty count: read until one paced collection happens.
    const r0 = readGcRuns();
    while (readGcRuns() === r0) noteBytesRead(64 * 1024);
    const before = readGcRuns();
    const r = await dest.put({ key: 'o/segments/0009.seg', body: { file: src, size: body.length }, sha256: sha(body) });
    expect(r).toMatchObject({ kind: 'confirmed', receipt: { size: body.length } });
    // Just over READ_GC_BYTES uploaded and as much read back: two collections; one if either side went uncounted.
    expect(readGcRuns() - before).toBeGreaterThanOrEqual(2);
    await rm(dirname(src), { recursive: true, force: true });
  });

  it('refuses different bytes under an existing key and never adds a version', async () => {
    const body = new Uint8Array(Buffer.from('original'));
    expect((await dest.put({ key: 'o/segments/0002.seg', body, sha256: sha(body) })).kind).toBe('confirmed');
    const other = new Uint8Array(Buffer.from('different'));
    const r = await dest.put({ key: 'o/segments/0002.seg', body: other, sha256: sha(other) });
    expect(r.kind).toBe('failed');
    if (r.kind === 'failed') expect(r.reason).toMatch(/different content/);
    const versions = (await dest.listVersions('o/segments/0002.seg')).filter((v) => v.key === 'o/segments/0002.seg');
    expect(versions).toHaveLength(1);
  });

  it('Object Lock is real: deleting the locked version is refused; an overwrite becomes a second version that is caught', async () => {
    const body = new Uint8Array(Buffer.from('locked segment'));
    const r = await dest.put({ key: 'o/segments/0003.seg', body, sha256: sha(body) });
    expect(r.kind).toBe('confirmed');
    if (r.kind !== 'confirmed') return;
    const Key = dest.fullKey('o/segments/0003.seg');

    // Delete of the locked version, even asking to bypass governance: refused by the server.
    const del = await client
      .send(new DeleteObjectCommand({ Bucket: lockBucket, Key, VersionId: r.receipt.versionId, BypassGovernanceRetention: true }))
      .then(() => 'deleted', (e: unknown) => s3ErrorInfo(e));
    expect(del).toMatchObject({ status: 403, name: 'AccessDenied' });

    // Overwrite with the S3 API: RGW accepts it as a new version (AWS would too without If-None-Match).
    await client.send(new PutObjectCommand({ Bucket: lockBucket, Key, Body: Buffer.from('tampered') }));
    const versions = (await dest.listVersions('o/segments/0003.seg')).filter((v) => v.key === 'o/segments/0003.seg');
    expect(versions).toHaveLength(2);
    expect(versions[0]!.versionId).toBe(r.receipt.versionId); // oldest first: ours
    expect(Buffer.from(await dest.get('o/segments/0003.seg', r.receipt.versionId)).toString()).toBe('locked segment');
    // The forwarder never accepts a key with two versions, even with its own bytes.
    const again = await dest.put({ key: 'o/segments/0003.seg', body, sha256: sha(body) });
    expect(again.kind).toBe('failed');
    if (again.kind === 'failed') expect(again.reason).toMatch(/2 versions/);
  });

  it('a bucket without Object Lock is never confirmed', async () => {
    const d = new S3Destination(destOptions('s3-plain', plainBucket));
    try {
      const body = new Uint8Array(Buffer.from('x'));
      const r = await d.put({ key: 'o/segments/0001.seg', body, sha256: sha(body) });
      expect(r.kind).toBe('failed');
    } finally {
      d.close();
    }
  });

  it('canary: locked bucket is safe, unlocked bucket is unsafe', async () => {
    const safe = await runCanary(dest);
    expect(safe.error).toBeUndefined();
    expect(safe.safe).toBe(true);
    expect(safe.checks.map((c) => c.name)).toEqual(['bucket-lock', 'lock-applied', 'overwrite', 'delete']);

    const d = new S3Destination(destOptions('s3-plain', plainBucket));
    try {
      const unsafe = await runCanary(d);
      expect(unsafe.error).toBeUndefined();
      expect(unsafe.safe).toBe(false);
      // What the gateway answers for a bucket created without Object Lock, for the record:
      console.info(`[canary on an unlocked bucket] ${JSON.stringify(unsafe.checks)}`);
      expect(unsafe.checks.find((c) => c.name === 'bucket-lock')).toMatchObject({ ok: false });
    } finally {
      d.close();
    }
  });

  it('canary: a missing bucket or wrong credentials cannot be checked (error, not a verdict)', async () => {
    const missing = new S3Destination(destOptions('s3-missing', `st-missing-${Date.now()}`));
    const badKey = new S3Destination({ ...destOptions('s3-badkey', lockBucket), secretAccessKey: 'wrong' });
    try {
      const a = await runCanary(missing);
      expect(a.safe).toBeUndefined();
      expect(a.error).toMatch(/NoSuchBucket/);
      const b = await runCanary(badKey);
      expect(b.safe).toBeUndefined();
      expect(b.error).toMatch(/SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId/);
    } finally {
      missing.close();
      badKey.close();
    }
  });

  it('an aborted put (shutdown) ends early and is retryable', async () => {
    const body = new Uint8Array(Buffer.from('abort me'));
    const ac = new AbortController();
    ac.abort();
    const r = await dest.put({ key: 'o/segments/0010.seg', body, sha256: sha(body) }, { signal: ac.signal });
    expect(r.kind).toBe('retryable');
    expect(await dest.head('o/segments/0010.seg')).toBeUndefined();
  });

  it('an unreachable endpoint is retryable, not failed', async () => {
    const d = new S3Destination({ ...destOptions('s3-down', lockBucket), endpoint: 'http://127.0.0.1:9' });
    try {
      const body = new Uint8Array(Buffer.from('x'));
      const r = await d.put({ key: 'o/segments/0009.seg', body, sha256: sha(body) });
      expect(r.kind).toBe('retryable');
    } finally {
      d.close();
    }
  });
});
