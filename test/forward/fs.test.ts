/**
 * Filesystem destination (G6): exclusive create, read-only files, never overwrite, confirm by
 * re-reading; real files in a temporary directory.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, readdir, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCanary } from '../../src/forward/canary.js';
import { COPY_SYNC_BYTES, FsDestination } from '../../src/forward/fs.js';
import { objectKey, originPath } from '../../src/forward/keys.js';

const sha = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());
const bytes = (s: string) => new Uint8Array(Buffer.from(s));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sealtrail-fsdest-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('FsDestination', () => {
  it('creates the file read-only (0444), confirms by re-reading, and leaves no temporary file', async () => {
    const d = new FsDestination({ name: 'worm', path: join(dir, 'worm') });
    const key = objectKey('sealtrail.local/dev', 'segment', '00000001.seg');
    const body = bytes('segment one');
    const r = await d.put({ key, body, sha256: sha(body) });
    expect(r).toMatchObject({ kind: 'confirmed', receipt: { destination: 'worm', key, size: 11, alreadyPresent: false } });
    const p = join(dir, 'worm', 'sealtrail.local', 'dev', 'segments', '00000001.seg');
    expect((await stat(p)).mode & 0o777).toBe(0o444);
    expect(await readFile(p, 'utf8')).toBe('segment one');
    expect(await readdir(join(dir, 'worm', 'sealtrail.local', 'dev', 'segments'))).toEqual(['00000001.seg']);
    expect(await d.head(key)).toMatchObject({ size: 11, readOnly: true });
    expect(Buffer.from(await d.get(key)).toString()).toBe('segment one');
  });

  it('confirms objects larger than its read-back chunk (hashed a MiB at a time): the right hash, and one wrong byte caught', async () => {
    const d = new FsDestination({ name: 'worm', path: join(dir, 'worm') });
    const body = new Uint8Array(2 * 1024 * 1024 + 4097).map((_, i) => (i * 131 + (i >> 20)) & 0xff);
    const key = objectKey('sealtrail.local/dev', 'segment', '00000009.seg');
    const r = await d.put({ key, body, sha256: sha(body) });
    expect(r).toMatchObject({ kind: 'confirmed', receipt: { size: body.length, sha256: createHash('sha256').update(body).digest('hex') } });
    // The same key again with the last byte changed: judged on the stored file's streamed hash.
    const other = body.slice();
    other[other.length - 1]! ^= 1;
    const again = await d.put({ key, body: other, sha256: sha(other) });
    expect(again.kind).toBe('failed');
    if (again.kind === 'failed') expect(again.reason).toMatch(new RegExp(`exists with different content \\(size ${body.length}, sha256 ${createHash('sha256').update(body).digest('hex')}`));
  });

  it('stores a file body (a sealed segment on disk) a chunk at a time, byte for byte; a file shorter than its stated size is not stored', async () => {
    const d = new FsDestination({ name: 'worm', path: join(dir, 'worm') });
    const body = new Uint8Array(3 * 1024 * 1024 + 77).map((_, i) => (i * 31 + (i >> 18)) & 0xff);
    const src = join(dir, 'source.seg');
    await writeFile(src, body);
    const key = objectKey('sealtrail.local/dev', 'segment', '0000000a.seg');
    const r = await d.put({ key, body: { file: src, size: body.length }, sha256: sha(body) });
    expect(r).toMatchObject({ kind: 'confirmed', receipt: { size: body.length, alreadyPresent: false } });
    expect(Buffer.from(await d.get(key)).equals(Buffer.from(body))).toBe(true);
    // The file lost its tail after it was hashed: nothing is published under the key.
    const cut = join(dir, 'cut.seg');
    await writeFile(cut, body.subarray(0, 1000));
    const key2 = objectKey('sealtrail.local/dev', 'segment', '0000000b.seg');
    const r2 = await d.put({ key: key2, body: { file: cut, size: body.length }, sha256: sha(body) });
    expect(r2.kind).toBe('retryable');
    if (r2.kind === 'retryable') expect(r2.reason).toMatch(/ends at 1000 bytes, before the \d+ that were hashed/);
    expect(await d.head(key2)).toBeUndefined();
    expect((await readdir(join(dir, 'worm', 'sealtrail.local', 'dev', 'segments'))).sort()).toEqual(['0000000a.seg']);
  });

  it('syncs a large copy as it writes it (every COPY_SYNC_BYTES), not only once at the end, and stores it byte for byte', async () => {
    const d = new FsDestination({ name: 'worm', path: join(dir, 'worm') });
    const body = new Uint8Array(2 * COPY_SYNC_BYTES + 5000).map((_, i) => (i * 17 + (i >> 20)) & 0xff);
    const src = join(dir, 'big.seg');
    await writeFile(src, body);
    // A spy (unit test): every FileHandle shares one prototype; count the data syncs of this put.
    const probe = await open(src, 'r');
    const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
    await probe.close();
    const spy = vi.spyOn(proto, 'datasync');
    try {
      const key = objectKey('sealtrail.local/dev', 'segment', '0000000c.seg');
      const r = await d.put({ key, body: { file: src, size: body.length }, sha256: sha(body) });
      expect(r).toMatchObject({ kind: 'confirmed', receipt: { size: body.length } });
      expect(spy).toHaveBeenCalledTimes(2); // after 8 and 16 MiB; the tail is covered by the final fsync
      expect(Buffer.from(await d.get(key)).equals(Buffer.from(body))).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });

  it('never overwrites: identical bytes are confirmed as already present, different bytes fail and change nothing', async () => {
    const d = new FsDestination({ name: 'worm', path: dir });
    const body = bytes('original');
    expect((await d.put({ key: 'o/segments/1.seg', body, sha256: sha(body) })).kind).toBe('confirmed');
    const same = await d.put({ key: 'o/segments/1.seg', body, sha256: sha(body) });
    expect(same).toMatchObject({ kind: 'confirmed', receipt: { alreadyPresent: true } });
    const other = bytes('tampered!');
    const r = await d.put({ key: 'o/segments/1.seg', body: other, sha256: sha(other) });
    expect(r.kind).toBe('failed');
    if (r.kind === 'failed') expect(r.reason).toMatch(/exists with different content.*not overwritten/);
    expect(await readFile(join(dir, 'o/segments/1.seg'), 'utf8')).toBe('original');
  });

  it('an existing file placed by someone else (O_EXCL path) is judged, not replaced', async () => {
    const d = new FsDestination({ name: 'worm', path: dir });
    await mkdir(join(dir, 'o/segments'), { recursive: true });
    await writeFile(join(dir, 'o/segments/2.seg'), 'partial');
    const body = bytes('partial and more');
    const r = await d.put({ key: 'o/segments/2.seg', body, sha256: sha(body) });
    expect(r.kind).toBe('failed');
    expect(await readFile(join(dir, 'o/segments/2.seg'), 'utf8')).toBe('partial');
  });

  it('a wrong sha256 (corruption between hashing and writing) is not confirmed', async () => {
    const d = new FsDestination({ name: 'worm', path: dir });
    const body = bytes('abc');
    const r = await d.put({ key: 'o/segments/3.seg', body, sha256: sha(bytes('abd')) });
    expect(r.kind).toBe('failed');
    if (r.kind === 'failed') expect(r.reason).toMatch(/read-back/);
  });

  it('a missing or unwritable root is retryable (the volume may come back)', async () => {
    await writeFile(join(dir, 'file'), 'x');
    const d = new FsDestination({ name: 'worm', path: join(dir, 'file', 'sub') });
    const body = bytes('abc');
    const r = await d.put({ key: 'o/segments/1.seg', body, sha256: sha(body) });
    expect(r.kind).toBe('retryable');
  });

  it('lists in key order, hides temporary files and the canary folder', async () => {
    const d = new FsDestination({ name: 'worm', path: dir });
    for (const n of ['3.seg', '1.seg', '2.seg']) {
      const b = bytes(n);
      await d.put({ key: `o/segments/${n}`, body: b, sha256: sha(b) });
    }
    await writeFile(join(dir, 'o/segments/.abc.tmp'), 'junk');
    await runCanary(d);
    expect((await d.list('o/')).map((o) => o.key)).toEqual(['o/segments/1.seg', 'o/segments/2.seg', 'o/segments/3.seg']);
    expect((await d.listVersions('o/segments/2')).map((o) => o.key)).toEqual(['o/segments/2.seg']);
    expect(await d.list('nothing/')).toEqual([]);
  });

  it('refuses keys that would leave the root', async () => {
    const d = new FsDestination({ name: 'worm', path: dir });
    const b = bytes('x');
    await expect(d.put({ key: '../escape.seg', body: b, sha256: sha(b) })).rejects.toThrow(RangeError); // misuse, not destination trouble
    expect(() => d.pathOf('/abs')).toThrow(RangeError);
    expect(originPath('a/../b')).toBe('a/%2E%2E/b');
    expect(originPath('x y//z')).toBe('x%20y/%/z');
    expect(objectKey('sealtrail.example/node-a', 'checkpoint', '0000000001.cp')).toBe('sealtrail.example/node-a/checkpoints/0000000001.cp');
    expect(() => objectKey('o', 'segment', '../x.seg')).toThrow(RangeError);
  });

  it('canary: a plain directory is unsafe (a read-only file can still be deleted)', async () => {
    const d = new FsDestination({ name: 'worm', path: dir });
    const r = await runCanary(d);
    expect(r.error).toBeUndefined();
    expect(r.safe).toBe(false);
    expect(r.checks.find((c) => c.name === 'delete')).toMatchObject({ ok: false });
    // The "safe" outcome needs a real WORM volume (or immutable files), which this machine lacks;
    // the S3 canary test covers the safe path on a real Object Lock server.
  });

  it('canary: an unwritable destination is an error, not a verdict', async () => {
    await writeFile(join(dir, 'file'), 'x');
    const r = await runCanary(new FsDestination({ name: 'worm', path: join(dir, 'file') }));
    expect(r.safe).toBeUndefined();
    expect(r.error).toMatch(/cannot write the canary/);
  });
});
