/**
 * The group commit's writer (src/ledger/commit-sink.ts; native/sealtrail_hash.c commitWriter): what
 * the ledger relies on for G1 — every submitted batch is on disk at its position when its promise
 * says ok, batches handed over during a commit go out together as the next one, and after a failed
 * commit nothing more is written and every later batch is refused. Real files, real fdatasync.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type CommitResult, commitSink } from '../../src/ledger/commit-sink.js';
import { type LedgerFs, nodeLedgerFs } from '../../src/ledger/fs.js';
import { nativeCommitWriter, nativeHashLoaded } from '../../src/ledger/native-hash.js';
import { cachedBytes, descriptorsOn, directIoIn, haveFincore, PAGE, removeDir, tempDir } from './helpers.js';
import { waitUntil } from '../security/helpers.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await removeDir(d);
});
async function newFile(): Promise<string> {
  const d = await tempDir('sealtrail-cs-');
  dirs.push(d);
  return path.join(d, 'seg');
}

/** `n` batches of 1–3 buffers of varied bytes; returns them and their concatenation. */
function batches(n: number, seed: number): { bufs: Uint8Array[][]; all: Buffer } {
  const out: Uint8Array[][] = [];
  for (let i = 0; i < n; i++) {
    const k = 1 + ((i * 7 + seed) % 3);
    out.push(Array.from({ length: k }, (_, j) => Buffer.alloc(100 + ((i * 131 + j * 17 + seed) % 4000), (i * 31 + j + seed) & 0xff)));
  }
  return { bufs: out, all: Buffer.concat(out.flat()) };
}

const kinds = [
  // The native writer exists with the addon on Linux (the agent's platform); elsewhere the ledger uses the JS one.
  { name: 'native writer', fs: undefined, skip: nativeCommitWriter === undefined },
  { name: 'JS writer over LedgerFs', fs: nodeLedgerFs, skip: false },
] as const;

describe('the native writer', () => {
  it('is available whenever the addon is loaded on Linux', () => {
    expect(nativeCommitWriter !== undefined).toBe(nativeHashLoaded && process.platform === 'linux');
  });
});

for (const kind of kinds) {
  describe(`commit sink: ${kind.name}`, () => {
    it.skipIf(kind.skip)('writes every batch at its position, groups batches handed over during a commit, settles each once durable', async () => {
      const file = await newFile();
      const fd = fs.openSync(file, 'w+');
      const commits: number[] = [];
      const sink = commitSink(kind.fs, nodeLedgerFs, true, (entries) => commits.push(entries));
      try {
        const { bufs, all } = batches(60, 3);
        let pos = 0;
        const done: Promise<CommitResult>[] = [];
        for (const b of bufs) {
          done.push(sink.submit(fd, b, pos, 2)); // all handed over at once: the first alone, the rest while it runs
          pos += b.reduce((n, x) => n + x.length, 0);
        }
        const results = await Promise.all(done);
        expect(results.every((r) => r.ok)).toBe(true);
        expect(fs.readFileSync(file).equals(all)).toBe(true);
        // one report per commit, covering every batch once; batches were grouped (fewer commits than
        // batches: the JS writer starts the first at once and takes the rest together, the native one
        // may take all 60 at once when its thread-pool job starts after they were handed over)
        expect(commits.reduce((a, b) => a + b, 0)).toBe(120);
        expect(commits.length).toBeGreaterThanOrEqual(1);
        expect(commits.length).toBeLessThan(60);
      } finally {
        sink.close();
        fs.closeSync(fd);
      }
    });

    it.skipIf(kind.skip)('joins more buffers than IOV_MAX and empty buffers', async () => {
      const file = await newFile();
      const fd = fs.openSync(file, 'w+');
      const sink = commitSink(kind.fs, nodeLedgerFs, true, () => undefined);
      try {
        const many = Array.from({ length: 1500 }, (_, i) => Buffer.from([i & 0xff, (i >> 8) & 0xff]));
        const withEmpty = [Buffer.alloc(0), Buffer.from('x'), Buffer.alloc(0)];
        const r = await Promise.all([sink.submit(fd, many, 0, 1), sink.submit(fd, withEmpty, 3000, 1), sink.submit(fd, many, 3001, 1)]);
        expect(r.map((x) => x.ok)).toEqual([true, true, true]);
        expect(fs.readFileSync(file).equals(Buffer.concat([...many, Buffer.from('x'), ...many]))).toBe(true);
      } finally {
        sink.close();
        fs.closeSync(fd);
      }
    });

    it.skipIf(kind.skip)('after a failed commit writes nothing more: that batch and every later one are refused with the error', async () => {
      const file = await newFile();
      fs.writeFileSync(file, '');
      const good = fs.openSync(file, 'r+');
      const readOnly = fs.openSync(file, 'r'); // pwritev on it fails with EBADF
      const commits: number[] = [];
      const sink = commitSink(kind.fs, nodeLedgerFs, true, (entries) => commits.push(entries));
      try {
        const first = await sink.submit(good, [Buffer.from('durable')], 0, 1);
        expect(first.ok).toBe(true);
        const bad = sink.submit(readOnly, [Buffer.from('BAD')], 7, 1);
        const after = sink.submit(good, [Buffer.from('after')], 10, 1);
        const [b, a] = await Promise.all([bad, after]);
        expect(b.ok).toBe(false);
        expect(a.ok).toBe(false);
        expect(!b.ok && (b.error as NodeJS.ErrnoException).code).toBe('EBADF');
        expect(!a.ok && (a.error as NodeJS.ErrnoException).code).toBe('EBADF');
        // later, on its own: still refused, still not written
        const later = await sink.submit(good, [Buffer.from('later')], 7, 1);
        expect(later.ok).toBe(false);
        expect(fs.readFileSync(file, 'utf8')).toBe('durable');
        expect(commits).toEqual([1]); // failed commits are not reported as commits
      } finally {
        sink.close();
        fs.closeSync(good);
        fs.closeSync(readOnly);
      }
    });

    it.skipIf(kind.skip)('after a failed fdatasync refuses that batch and every later one, written or not', async () => {
      // fdatasync on /dev/null fails with EINVAL while pwritev on it succeeds: a failing sync without a
      // failing disk. The batch after it goes to a good file and is handed over before the failure is known.
      const file = await newFile();
      fs.writeFileSync(file, '');
      const good = fs.openSync(file, 'r+');
      const devNull = fs.openSync('/dev/null', 'w');
      const commits: number[] = [];
      const sink = commitSink(kind.fs, nodeLedgerFs, true, (entries) => commits.push(entries));
      try {
        expect((await sink.submit(good, [Buffer.from('durable')], 0, 1)).ok).toBe(true);
        const bad = sink.submit(devNull, [Buffer.from('X')], 0, 1);
        const after = sink.submit(good, [Buffer.from('after')], 7, 1);
        const [b, a] = await Promise.all([bad, after]);
        expect(!b.ok && (b.error as NodeJS.ErrnoException).code).toBe('EINVAL');
        expect(!b.ok && (b.error as NodeJS.ErrnoException).syscall).toBe('fdatasync');
        expect(!a.ok && (a.error as NodeJS.ErrnoException).code).toBe('EINVAL');
        const later = await sink.submit(good, [Buffer.from('later')], 12, 1);
        expect(!later.ok && (later.error as NodeJS.ErrnoException).code).toBe('EINVAL');
        expect(['durable', 'durableafter']).toContain(fs.readFileSync(file, 'latin1')); // 'later' never written
        expect(commits).toEqual([1]);
      } finally {
        sink.close();
        fs.closeSync(good);
        fs.closeSync(devNull);
      }
    });

    it.skipIf(kind.skip)('durability none: writes without fdatasync, same order and grouping', async () => {
      const file = await newFile();
      const fd = fs.openSync(file, 'w+');
      let syncs = 0;
      const counting: LedgerFs = { ...nodeLedgerFs, fdatasync: async (f) => (syncs++, nodeLedgerFs.fdatasync(f)) };
      const sink = commitSink(kind.fs === undefined ? undefined : counting, counting, false, () => undefined);
      try {
        const { bufs, all } = batches(20, 9);
        let pos = 0;
        const done = bufs.map((b) => {
          const p = sink.submit(fd, b, pos, 1);
          pos += b.reduce((n, x) => n + x.length, 0);
          return p;
        });
        expect((await Promise.all(done)).every((r) => r.ok)).toBe(true);
        expect(fs.readFileSync(file).equals(all)).toBe(true);
        expect(syncs).toBe(0); // observable for the JS writer only (the native one calls fdatasync itself)
      } finally {
        sink.close();
        fs.closeSync(fd);
      }
    });
  });
}

describe('the native writer and the page cache', () => {
  // Written reason: needs the addon on Linux, and fincore (util-linux-extra; .ci/run installs it) to see the page cache.
  it.skipIf(nativeCommitWriter === undefined || !haveFincore)('drops the pages a synced commit filled completely, keeps the page it ended in, and drops nothing without fdatasync', async () => {
    const file = await newFile();
    const fd = fs.openSync(file, 'w+');
    // Through the page cache (direct writes off): what this test is about is the drop after fdatasync.
    const synced = commitSink(undefined, nodeLedgerFs, true, () => undefined, { direct: false });
    const a = Buffer.alloc(2 * PAGE + 1000, 0x61);
    const b = Buffer.alloc(PAGE + 500, 0x62);
    try {
      expect((await synced.submit(fd, [a], 0, 1)).ok).toBe(true);
      // Pages 0 and 1 were filled and synced: gone from the cache; page 2 (1000 bytes so far) is kept for the next append.
      expect(cachedBytes(file)).toBe(PAGE);
      expect((await synced.submit(fd, [b], a.length, 1)).ok).toBe(true);
      // The second commit completed page 2 and filled page 3 part-way: only page 3 stays.
      expect(cachedBytes(file)).toBe(PAGE);
      expect(fs.readFileSync(file).equals(Buffer.concat([a, b]))).toBe(true); // what was dropped reads back from the disk
    } finally {
      synced.close();
      fs.closeSync(fd);
    }

    const file2 = await newFile();
    const fd2 = fs.openSync(file2, 'w+');
    const unsynced = commitSink(undefined, nodeLedgerFs, false, () => undefined);
    try {
      expect((await unsynced.submit(fd2, [a], 0, 1)).ok).toBe(true);
      // durability none: nothing is on disk yet, so nothing may be dropped (the kernel would keep dirty pages
      // anyway; this fails if the writer made them clean first, e.g. by starting their writeback and dropping).
      expect(cachedBytes(file2)).toBe(3 * PAGE);
    } finally {
      unsynced.close();
      fs.closeSync(fd2);
    }
  });
});

describe('the native writer\'s direct writes (durability fsync)', () => {
  const BLOCK = 4096; // the writer's alignment for O_DIRECT
  const HEADER = Buffer.from('segment header: 37 bytes, not aligned');
  /** Commit sizes after the header: inside one block, ending exactly on a block boundary, one whole aligned
   * block, longer than the 4 MiB staging buffer twice over, a single byte, and a few blocks. */
  const SIZES = [100, 5000, 3055, BLOCK, 9 * 1024 * 1024 + 123, 1, 20_000];
  const payload = (i: number, n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, k) => (k * 7 + i * 13 + (k >> 12)) & 0xff));

  /** Writes SIZES one commit at a time after HEADER; returns the file, its expected bytes and the sink's direct bytes. */
  async function run(direct: boolean): Promise<{ file: string; expected: Buffer; directBytes: number; expectedDirect: number; cached: number | undefined }> {
    const file = await newFile();
    fs.writeFileSync(file, HEADER);
    const fd = fs.openSync(file, 'r+');
    const sink = commitSink(undefined, nodeLedgerFs, true, () => undefined, { direct });
    const parts: Buffer[] = [HEADER];
    let pos = HEADER.length;
    let expectedDirect = 0;
    try {
      for (const [i, n] of SIZES.entries()) {
        const p = payload(i, n);
        const r = await sink.submit(fd, [p.subarray(0, n >> 1), p.subarray(n >> 1)], pos, 1);
        expect(r.ok).toBe(true);
        // Whole blocks from the one the commit starts in up to the one it ends in go directly.
        const a = Math.floor(pos / BLOCK) * BLOCK;
        const b = Math.floor((pos + n) / BLOCK) * BLOCK;
        if (b > a) expectedDirect += b - pos;
        parts.push(p);
        pos += n;
      }
      // Several batches handed over at once go out as one run (how many commits is up to the writer).
      const group = [777, 8192, 3, 12_345].map((n, i) => payload(100 + i, n));
      const results = await Promise.all(group.map((g) => {
        const r = sink.submit(fd, [g], pos, 1);
        pos += g.length;
        return r;
      }));
      expect(results.every((r) => r.ok)).toBe(true);
      parts.push(...group);
      // What the page cache holds of the file before anything reads it back.
      return { file, expected: Buffer.concat(parts), directBytes: sink.directBytes(), expectedDirect, cached: cachedBytes(file) };
    } finally {
      sink.close();
      fs.closeSync(fd);
    }
  }

  it.skipIf(nativeCommitWriter === undefined)('writes whole blocks past the page cache and the block it ends in through it: every byte lands at its position', async () => {
    const d = await run(true);
    expect(fs.readFileSync(d.file).equals(d.expected)).toBe(true);
    if (!directIoIn(path.dirname(d.file))) {
      // Written reason: this file system refuses O_DIRECT, so the writer used the page cache (as it must).
      expect(d.directBytes).toBe(0);
      return;
    }
    // The one-at-a-time commits' share exactly, plus at least one block of the grouped run.
    expect(d.directBytes).toBeGreaterThanOrEqual(d.expectedDirect + BLOCK);
    expect(d.directBytes).toBeLessThan(d.expected.length - HEADER.length + 1);
    // Only the block the last commit ended in went through the page cache, and stays there.
    if (haveFincore) expect(d.cached).toBe(PAGE);
  });

  it.skipIf(nativeCommitWriter === undefined)('direct writes off: the same bytes, all through the page cache', async () => {
    const d = await run(false);
    expect(fs.readFileSync(d.file).equals(d.expected)).toBe(true);
    expect(d.directBytes).toBe(0);
  });

  it.skipIf(nativeCommitWriter === undefined)('never writes through a descriptor that could not write there itself (read-only, append-only)', async () => {
    const big = Buffer.alloc(3 * BLOCK, 0x79);
    const file = await newFile();
    fs.writeFileSync(file, Buffer.alloc(5000, 0x78));
    const readOnly = fs.openSync(file, 'r');
    const s1 = commitSink(undefined, nodeLedgerFs, true, () => undefined);
    try {
      const r = await s1.submit(readOnly, [big], 0, 1);
      expect(!r.ok && (r.error as NodeJS.ErrnoException).code).toBe('EBADF');
      expect(s1.directBytes()).toBe(0);
    } finally {
      s1.close();
      fs.closeSync(readOnly);
    }
    // O_APPEND: the kernel appends a positioned write at the end; so must the writer (not write at 0).
    const appendOnly = fs.openSync(file, 'a');
    const s2 = commitSink(undefined, nodeLedgerFs, true, () => undefined);
    try {
      expect((await s2.submit(appendOnly, [big], 0, 1)).ok).toBe(true);
      expect(s2.directBytes()).toBe(0);
    } finally {
      s2.close();
      fs.closeSync(appendOnly);
    }
    expect(fs.readFileSync(file).equals(Buffer.concat([Buffer.alloc(5000, 0x78), big]))).toBe(true);
  });
});

describe('the native writer\'s O_DIRECT descriptor (durability fsync)', () => {
  const BLOCK = 4096;
  const canRun = nativeCommitWriter !== undefined && process.platform === 'linux';

  it.runIf(canRun)('keeps one descriptor for a file across its commits and lets it go when the file is closed', async () => {
    const file = await newFile();
    if (!directIoIn(path.dirname(file))) return; // written reason: this file system refuses O_DIRECT, so no descriptor is ever held
    const fd = fs.openSync(file, 'w+');
    const sink = commitSink(undefined, nodeLedgerFs, true, () => undefined);
    try {
      let pos = 0;
      for (let i = 0; i < 5; i++) {
        const r = await sink.submit(fd, [Buffer.alloc(3 * BLOCK + 100 * i, 0x41 + i)], pos, 1);
        expect(r.ok).toBe(true);
        pos += 3 * BLOCK + 100 * i;
        // The ledger's own descriptor and exactly one O_DIRECT descriptor of the writer's, the same one each time.
        const held = descriptorsOn(file);
        expect(held.filter((d) => !d.direct).map((d) => d.fd)).toEqual([fd]);
        expect(held.filter((d) => d.direct)).toHaveLength(1);
      }
      expect(sink.directBytes()).toBeGreaterThan(10 * BLOCK);
      sink.fileClosed();
      expect(await waitUntil(() => descriptorsOn(file).length === 1, 2000)).toBe(true);
      // A later commit to the same file opens a new one.
      expect((await sink.submit(fd, [Buffer.alloc(2 * BLOCK, 0x5a)], pos, 1)).ok).toBe(true);
      expect(descriptorsOn(file).filter((d) => d.direct)).toHaveLength(1);
    } finally {
      sink.close();
      fs.closeSync(fd);
    }
    // close() lets it go too.
    expect(await waitUntil(() => descriptorsOn(file).length === 0, 2000)).toBe(true);
  });

  it.runIf(canRun)('never writes through the old file\'s descriptor when the ledger\'s descriptor number now names another file', async () => {
    const a = await newFile();
    const b = `${a}-next`;
    if (!directIoIn(path.dirname(a))) return; // written reason: this file system refuses O_DIRECT, so no descriptor is ever held
    const sink = commitSink(undefined, nodeLedgerFs, true, () => undefined);
    try {
      const fdA = fs.openSync(a, 'w+');
      const first = Buffer.alloc(3 * BLOCK, 0x61);
      expect((await sink.submit(fdA, [first], 0, 1)).ok).toBe(true);
      // Closed without telling the writer, and the lowest free number (the same one) given to the next file.
      fs.closeSync(fdA);
      const fdB = fs.openSync(b, 'w+');
      expect(fdB).toBe(fdA); // the premise: POSIX hands out the lowest free number
      const second = Buffer.alloc(3 * BLOCK, 0x62);
      expect((await sink.submit(fdB, [second], 0, 1)).ok).toBe(true);
      fs.closeSync(fdB);
      expect(fs.readFileSync(a).equals(first)).toBe(true);
      expect(fs.readFileSync(b).equals(second)).toBe(true);
      expect(sink.directBytes()).toBe(6 * BLOCK);
    } finally {
      sink.close();
    }
  });
});

describe('the native writer\'s zeros ahead (durability fsync, direct writes, zeroAhead)', () => {
  const MiB = 1024 * 1024;
  const canRun = nativeCommitWriter !== undefined && process.platform === 'linux';
  const bytesOf = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, k) => ((k * 13 + seed * 7) % 251) + 1));

  it.runIf(canRun)('small commits leave zeros ahead, later commits land inside them byte for byte, and the last batch cuts them', async () => {
    const file = await newFile();
    if (!directIoIn(path.dirname(file))) return; // written reason: this file system refuses O_DIRECT, so nothing is written ahead
    const header = Buffer.from('a header of 37 bytes, not aligned....');
    fs.writeFileSync(file, header);
    const fd = fs.openSync(file, 'r+');
    const sink = commitSink(undefined, nodeLedgerFs, true, () => undefined, { zeroAhead: 3 * MiB });
    expect(sink.endsFiles).toBe(true);
    const parts: Buffer[] = [header];
    let pos = header.length;
    try {
      const first = bytesOf(5000, 1);
      expect((await sink.submit(fd, [first], pos, 1)).ok).toBe(true);
      parts.push(first);
      pos += first.length;
      // In its idle moments the writer writes zeros up to 3 MiB past the commit, and no further.
      expect(await waitUntil(() => fs.statSync(file).size >= pos + 2 * MiB, 2000)).toBe(true);
      await new Promise((r) => setTimeout(r, 50));
      expect(fs.statSync(file).size).toBeLessThanOrEqual(pos + 3 * MiB);
      // Commits of every size, one at a time and handed over together, inside the zeros and past them.
      let seed = 7;
      const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
      for (let i = 0; i < 300; i++) {
        const group = 1 + (rnd() % 3);
        const done: Promise<CommitResult>[] = [];
        for (let g = 0; g < group; g++) {
          const n = 1 + (rnd() % (i % 40 === 0 ? 600_000 : 30_000));
          const p = bytesOf(n, i * 3 + g);
          done.push(sink.submit(fd, [p.subarray(0, n >> 1), p.subarray(n >> 1)], pos, 1));
          parts.push(p);
          pos += n;
        }
        expect((await Promise.all(done)).every((r) => r.ok)).toBe(true);
      }
      const expected = Buffer.concat(parts);
      const onDisk = fs.readFileSync(file);
      expect(onDisk.subarray(0, expected.length).equals(expected)).toBe(true);
      expect(onDisk.subarray(expected.length).every((b) => b === 0)).toBe(true);
      // Nearly everything went directly, the blocks commits ended in included.
      expect(sink.directBytes()).toBeGreaterThan(0.95 * (expected.length - header.length));
      // The last batch (a seal's trailer): the zeros are cut first, the file ends with it.
      await new Promise((r) => setTimeout(r, 20));
      const trailer = bytesOf(777, 99);
      expect((await sink.submit(fd, [trailer], pos, 0, 'last')).ok).toBe(true);
      expect(fs.readFileSync(file).equals(Buffer.concat([expected, trailer]))).toBe(true);
      // And nothing is written ahead after it.
      await new Promise((r) => setTimeout(r, 50));
      expect(fs.statSync(file).size).toBe(expected.length + trailer.length);
    } finally {
      sink.close();
      fs.closeSync(fd);
    }
  });

  it.runIf(canRun)('writes no zeros after large commits (the maximum rate), after a commit that fills the segment, nor without zeroAhead', async () => {
    const cases = [
      [3 * MiB, 512 * 1024, 'more'],
      [3 * MiB, 5000, 'full'],
      [0, 5000, 'more'],
    ] as const;
    for (const [zeroAhead, size, end] of cases) {
      const file = await newFile();
      const fd = fs.openSync(file, 'w+');
      const sink = commitSink(undefined, nodeLedgerFs, true, () => undefined, { zeroAhead });
      try {
        let pos = 0;
        for (let i = 0; i < 4; i++) {
          expect((await sink.submit(fd, [bytesOf(size, i)], pos, 1, end)).ok).toBe(true);
          pos += size;
          await new Promise((r) => setTimeout(r, 30));
          expect(fs.statSync(file).size, `zeroAhead ${zeroAhead}, commits of ${size} B, end ${end}`).toBe(pos);
        }
      } finally {
        sink.close();
        fs.closeSync(fd);
      }
    }
    // A small commit now and then between large ones (as at the maximum rate) writes none either.
    {
      const file = await newFile();
      const fd = fs.openSync(file, 'w+');
      const sink = commitSink(undefined, nodeLedgerFs, true, () => undefined, { zeroAhead: 3 * MiB });
      try {
        let pos = 0;
        for (const size of [512 * 1024, 512 * 1024, 600 * 1024, 5000, 512 * 1024, 3000]) {
          expect((await sink.submit(fd, [bytesOf(size, size)], pos, 1)).ok).toBe(true);
          pos += size;
          await new Promise((r) => setTimeout(r, 30));
          expect(fs.statSync(file).size, `after a commit of ${size} B`).toBe(pos);
        }
      } finally {
        sink.close();
        fs.closeSync(fd);
      }
    }
    const noSync = commitSink(undefined, nodeLedgerFs, false, () => undefined, { zeroAhead: 3 * MiB });
    expect(noSync.endsFiles).toBe(false); // durability none: never written ahead
    noSync.close();
  });
});

describe('a commit writer after close', () => {
  for (const kind of kinds) {
    it.skipIf(kind.skip)(`${kind.name}: refuses a batch handed over after close instead of writing it`, async () => {
      const file = await newFile();
      const fd = fs.openSync(file, 'w+');
      const sink = commitSink(kind.fs, nodeLedgerFs, true, () => undefined);
      expect((await sink.submit(fd, [Buffer.from('a')], 0, 1)).ok).toBe(true);
      sink.close();
      const r = await sink.submit(fd, [Buffer.from('b')], 1, 1);
      expect(r.ok).toBe(false);
      expect(!r.ok && String(r.error)).toMatch(/closed/);
      // Later still, once the native writer's report channel has been finalized: the writer must
      // outlive it while JS can name it (it was freed with the channel until session 18).
      await new Promise((res) => setTimeout(res, 20));
      const r2 = await sink.submit(fd, [Buffer.from('c')], 1, 1);
      expect(!r2.ok && String(r2.error)).toMatch(/closed/);
      fs.closeSync(fd);
      expect(fs.readFileSync(file, 'utf8')).toBe('a');
    });
  }
});

