/**
 * The ledger's native I/O jobs (native/sealtrail_hash.c):
 * - writeDurable (native-hash.ts nativeWriteDurable): a group commit's write + fdatasync as one
 *   thread-pool job. G1 rests on it in production — the ledger acknowledges a commit when this
 *   promise resolves — so it is tested against the file's real bytes;
 * - fileOps (file-ops.ts): a seal's or heartbeat's publishing steps as one job, which must do
 *   exactly what the step-by-step LedgerFs executor does, in the same order.
 * Errors must reject (never be swallowed) with the code and the step that failed. The ledger uses
 * them only with its default file system: with an injected LedgerFs (fault injection) every
 * operation goes through the seam.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { nodeLedgerFs } from '../../src/ledger/fs.js';
import { type FileOp, fileOpsRunner, runFileOpsWith } from '../../src/ledger/file-ops.js';
import { nativeFileOps, nativeHashLoaded, nativeSyncDrop, nativeWriteDurable } from '../../src/ledger/native-hash.js';
import { cachedBytes, entry, haveFincore, ledgerConfig, removeDir, tempDir, testSigner, text, readLog } from './helpers.js';
import { silentLogger } from '../../src/telemetry/logger.js';

const dirs: string[] = [];
afterEach(async () => {
  vi.doUnmock('../../src/ledger/native-hash.js');
  vi.resetModules();
  for (const d of dirs.splice(0)) await removeDir(d);
});
async function newDir(): Promise<string> {
  const d = await tempDir('sealtrail-wd-');
  dirs.push(d);
  return d;
}

// The addon has writeDurable on Linux (the only platform the agent ships for); elsewhere the ledger
// uses node:fs and there is nothing native to test — those rows are skipped with this reason.
const hasNative = nativeWriteDurable !== undefined;

describe('nativeWriteDurable', () => {
  it('is available whenever the addon is loaded on Linux', () => {
    expect(hasNative).toBe(nativeHashLoaded && process.platform === 'linux');
  });

  it.skipIf(!hasNative)('writes any list of buffers (empty ones, more than IOV_MAX) back to back from the position', async () => {
    const dir = await newDir();
    const file = path.join(dir, 'f');
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 40 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.boolean(),
        async (bufs, position, datasync) => {
          const fd = fs.openSync(file, 'w+');
          try {
            await nativeWriteDurable!(fd, bufs, position, datasync);
            const want = Buffer.concat([Buffer.alloc(position), ...bufs.map((b) => Buffer.from(b))]);
            const got = fs.readFileSync(file);
            // Nothing written leaves the file empty (no hole is made for an empty write).
            expect(got.equals(bufs.some((b) => b.length > 0) ? want : Buffer.alloc(0))).toBe(true);
          } finally {
            fs.closeSync(fd);
          }
        },
      ),
      { numRuns: 60 },
    );
    // 3,000 small buffers: more than one pwritev (IOV_MAX is 1024 on Linux).
    const many = Array.from({ length: 3000 }, (_, i) => Uint8Array.of(i & 0xff, (i >> 8) & 0xff, 0x5a));
    const fd = fs.openSync(file, 'w+');
    try {
      await nativeWriteDurable!(fd, many, 7, true);
    } finally {
      fs.closeSync(fd);
    }
    expect(fs.readFileSync(file).equals(Buffer.concat([Buffer.alloc(7), ...many.map((b) => Buffer.from(b))]))).toBe(true);
  });

  it.skipIf(!hasNative)('rejects with the errno code and the failed step: the write on a bad or read-only fd, the fdatasync on a pipe', async () => {
    const dir = await newDir();
    const file = path.join(dir, 'ro');
    fs.writeFileSync(file, 'x');
    const ro = fs.openSync(file, 'r');
    try {
      await expect(nativeWriteDurable!(ro, [Buffer.from('no')], 0, true)).rejects.toMatchObject({
        code: 'EBADF',
        errno: -9,
        syscall: 'pwritev',
        message: expect.stringMatching(/^EBADF: bad file descriptor, pwritev$/),
      });
    } finally {
      fs.closeSync(ro);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('x');
    // fdatasync on a FIFO fails (EINVAL): the step after a write that had nothing to write.
    const [r, w] = fifoFds(dir);
    try {
      await expect(nativeWriteDurable!(w, [], 0, true)).rejects.toMatchObject({ code: 'EINVAL', syscall: 'fdatasync' });
    } finally {
      fs.closeSync(r);
      fs.closeSync(w);
    }
  });

  it.skipIf(!hasNative)('a write cut short by the file-size limit rejects (EFBIG) and leaves exactly the bytes that fit, in order', async () => {
    // A child with RLIMIT_FSIZE of 5 KiB (SIGXFSZ ignored, so pwritev returns a short count and then
    // EFBIG instead of killing it) writes ten 1,000-byte buffers: the first pwritev stops at 5,120
    // bytes, the loop continues from the middle of the sixth buffer, and the next call fails.
    const dir = await newDir();
    const file = path.join(dir, 'limited');
    const script = path.join(dir, 'child.mjs');
    const addon = fileURLToPath(new URL('../../build/Release/sealtrail_hash.node', import.meta.url));
    fs.writeFileSync(
      script,
      `import fs from 'node:fs';
import { createRequire } from 'node:module';
const a = createRequire(import.meta.url)(${JSON.stringify(addon)});
const fd = fs.openSync(${JSON.stringify(file)}, 'w+');
const bufs = Array.from({ length: 10 }, (_, i) => Buffer.alloc(1000, 65 + i));
try { await a.writeDurable(fd, bufs, 0, true); console.log(JSON.stringify({ ok: true })); }
catch (e) { console.log(JSON.stringify({ ok: false, code: e.code, syscall: e.syscall })); }
`,
    );
    const r = spawnSync('bash', ['-c', `ulimit -f 5; trap "" XFSZ; exec "${process.execPath}" "${script}"`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ ok: false, code: 'EFBIG', syscall: 'pwritev' });
    const want = Buffer.concat(Array.from({ length: 10 }, (_, i) => Buffer.alloc(1000, 65 + i))).subarray(0, 5120);
    expect(fs.readFileSync(file).equals(want)).toBe(true);
  });

  it.skipIf(!hasNative)('refuses malformed arguments with a RangeError, before any I/O', () => {
    const bad: unknown[][] = [
      [-1, [], 0, true],
      [3, 'not an array', 0, true],
      [3, [new Uint16Array(2)], 0, true],
      [3, [], -5, true],
      [3, [], 0, 'yes'],
      [3, []],
    ];
    for (const args of bad) {
      expect(() => (nativeWriteDurable as unknown as (...a: unknown[]) => unknown)(...args), JSON.stringify(args)).toThrow(RangeError);
    }
  });
});

/** Both ends of a FIFO made with mkfifo(1) (node:fs cannot make one), opened non-blocking. */
function fifoFds(dir: string): [number, number] {
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const r = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const w = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  return [r, w];
}

describe('the ledger and its native jobs (commit writer, writeDurable, fileOps)', () => {
  async function ledgerModuleWithSpy(): Promise<{
    Ledger: typeof import('../../src/ledger/ledger.js').Ledger;
    calls: { datasync: boolean; settled: boolean }[];
    batches: { datasync: boolean; settled: boolean; end?: number }[];
    opLists: string[][];
  }> {
    const calls: { datasync: boolean; settled: boolean }[] = [];
    const batches: { datasync: boolean; settled: boolean; end?: number }[] = [];
    const opLists: string[][] = [];
    const writers = new WeakMap<object, { datasync: boolean; mine: Map<number, { datasync: boolean; settled: boolean }> }>();
    vi.resetModules();
    vi.doMock('../../src/ledger/native-hash.js', async (orig) => {
      const real = await orig<typeof import('../../src/ledger/native-hash.js')>();
      return {
        ...real,
        nativeWriteDurable: async (fd: number, bufs: readonly Uint8Array[], position: number, datasync: boolean) => {
          const c = { datasync, settled: false };
          calls.push(c);
          await real.nativeWriteDurable!(fd, bufs, position, datasync);
          c.settled = true;
        },
        // The group commit's writer: every batch handed to it, settled once its commit was reported.
        nativeCommitWriter: real.nativeCommitWriter && {
          commitWriter: (onDone: Parameters<NonNullable<typeof real.nativeCommitWriter>['commitWriter']>[0], datasync: boolean, direct?: boolean, zeroAhead?: number) => {
            const mine = new Map<number, { datasync: boolean; settled: boolean }>();
            const w = real.nativeCommitWriter!.commitWriter((first, last, err, sys, secs) => {
              for (let id = first; ; id++) {
                const b = mine.get(id);
                if (b) b.settled = true;
                if (id === last) break;
              }
              onDone(first, last, err, sys, secs);
            }, datasync, direct, zeroAhead);
            writers.set(w as object, { datasync, mine });
            return w;
          },
          cwSubmit: (w: unknown, id: number, fd: number, bufs: readonly Uint8Array[], position: number, end?: number) => {
            const meta = writers.get(w as object)!;
            const b = { datasync: meta.datasync, settled: false, end };
            meta.mine.set(id, b);
            batches.push(b);
            real.nativeCommitWriter!.cwSubmit(w, id, fd, bufs, position, end);
          },
          cwClose: (w: unknown) => real.nativeCommitWriter!.cwClose(w),
          cwDropDirect: (w: unknown) => real.nativeCommitWriter!.cwDropDirect?.(w),
        },
        nativeFileOps: async (ops: readonly (readonly [number, string, string | Uint8Array | undefined])[]) => {
          opLists.push(ops.map(([code, a, b]) => `${['', 'rename', 'fsyncDir', 'writeFile'][code]} ${path.basename(a)}${typeof b === 'string' ? ` -> ${path.basename(b)}` : ''}`));
          await real.nativeFileOps!(ops);
        },
      };
    });
    const { Ledger } = await import('../../src/ledger/ledger.js');
    return { Ledger, calls, batches, opLists };
  }

  it.skipIf(!hasNative)('with the default file system: every batch goes through the native commit writer with fdatasync, acknowledged after its commit was reported', async () => {
    const dir = await newDir();
    const { Ledger, batches } = await ledgerModuleWithSpy();
    const l = await Ledger.open({ config: ledgerConfig(dir), signer: testSigner(), logger: silentLogger() });
    const outs = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const o = await l.append([entry(`n${i}`)]);
        // Acknowledged only once a commit of the native writer had been reported.
        expect(batches.length).toBeGreaterThan(0);
        expect(batches.every((c) => c.datasync)).toBe(true);
        return { o, settledAtAck: batches.filter((c) => c.settled).length };
      }),
    );
    expect(outs.every(({ o }) => o.kind === 'ok')).toBe(true);
    expect(outs.every(({ settledAtAck }) => settledAtAck > 0)).toBe(true);
    expect(batches.every((c) => c.settled)).toBe(true);
    await l.close();
    expect(readLog(dir).entries.map(text)).toEqual(Array.from({ length: 200 }, (_, i) => text(entry(`n${i}`))));
  });

  it.skipIf(!hasNative)('durability none: the commit\'s native job writes without fdatasync; the seal\'s trailer is still fdatasync\'d', async () => {
    const dir = await newDir();
    const { Ledger, calls, batches } = await ledgerModuleWithSpy();
    const l = await Ledger.open({ config: ledgerConfig(dir, { durability: 'none' }), signer: testSigner(), logger: silentLogger() });
    expect((await l.append([entry('x')])).kind).toBe('ok');
    expect(batches.map((c) => c.datasync)).toEqual([false]);
    expect(calls).toEqual([]);
    await l.close(); // seals: the trailer goes through writeDurable, with fdatasync
    expect(calls.map((c) => c.datasync)).toEqual([true]);
  });

  // Written reason: needs the addon's syncDrop (Linux) and fincore (util-linux-extra; .ci/run installs it).
  it.skipIf(nativeSyncDrop === undefined || !haveFincore)('durability none: the background fdatasync drops the pages it made durable from the page cache', async () => {
    const dir = await newDir();
    const { Ledger } = await ledgerModuleWithSpy();
    const l = await Ledger.open({ config: ledgerConfig(dir, { durability: 'none', max_segment_bytes: 1 << 30 }), signer: testSigner(), logger: silentLogger() });
    const big = new Uint8Array(64 * 1024).fill(0x62);
    // 10 MiB in 64 KiB entries: the commit that passes 8 MiB starts the background fdatasync.
    for (let i = 0; i < 160; i++) expect((await l.append([big])).kind).toBe('ok');
    await l.seal(); // waits for the background fdatasync (and its drop) before the trailer
    await l.close();
    const segDir = path.join(dir, 'segments');
    const seg = fs.readdirSync(segDir).map((f) => path.join(segDir, f)).find((f) => fs.statSync(f).size > 8 * 2 ** 20)!;
    const size = fs.statSync(seg).size;
    const cached = cachedBytes(seg)!;
    // At least the first 8 MiB are on disk and gone from memory; what was written after the
    // background fdatasync started (flushed by the seal) may still be cached.
    expect(size - cached).toBeGreaterThanOrEqual(8 * 2 ** 20);
    expect(readLog(dir).entries).toHaveLength(160); // and it all reads back
  });

  it('with an injected file system: no native job, every write and fdatasync goes through the seam', async () => {
    const dir = await newDir();
    const { Ledger, calls, batches, opLists } = await ledgerModuleWithSpy();
    let syncs = 0;
    const l = await Ledger.open({
      config: ledgerConfig(dir),
      signer: testSigner(),
      logger: silentLogger(),
      fs: { ...nodeLedgerFs, fdatasync: async (fd) => { syncs++; await nodeLedgerFs.fdatasync(fd); } },
    });
    syncs = 0;
    expect((await l.append([entry('y')])).kind).toBe('ok');
    expect(syncs).toBeGreaterThan(0);
    await l.close();
    expect(calls).toEqual([]);
    expect(batches).toEqual([]);
    expect(opLists).toEqual([]);
  });

  it.skipIf(!hasNative)('with the default file system: a seal publishes in ONE native job, in the order recovery relies on', async () => {
    const dir = await newDir();
    const { Ledger, opLists } = await ledgerModuleWithSpy();
    const l = await Ledger.open({ config: ledgerConfig(dir), signer: testSigner(), logger: silentLogger() });
    expect((await l.append([entry('z')])).kind).toBe('ok');
    opLists.length = 0;
    await l.seal();
    const cp = l.checkpoints().at(-1)!.name;
    // The three new files are prepared in parallel (one job each, any order; the next segment's
    // directory entry made durable too: appends go into it from then on), then published.
    expect(opLists.slice(0, 3).map((x) => x.join('; ')).sort()).toEqual(
      [`writeFile ${cp}.tmp`, 'writeFile 0000000000000001.seg.open.tmp; fsyncDir segments', 'writeFile head.checkpoint.tmp'].sort(),
    );
    expect(opLists.slice(3)).toEqual([
      [
        'rename head.checkpoint.tmp -> head.checkpoint',
        `fsyncDir ${path.basename(dir)}`,
        `rename ${cp}.tmp -> ${cp}`,
        'rename 0000000000000000.seg.open -> 0000000000000000.seg',
        'fsyncDir segments',
        'fsyncDir checkpoints',
        'rename 0000000000000001.seg.open.tmp -> 0000000000000001.seg.open',
        'fsyncDir segments',
      ],
    ]);
    await l.close();
    expect(readLog(dir).entries.map(text)).toEqual([text(entry('z'))]);
  });
});

describe('nativeFileOps', () => {
  /** Every file under dir (relative path → content), directories as "dir/". */
  function tree(dir: string): Record<string, string> {
    const out: Record<string, string> = {};
    const walk = (rel: string): void => {
      for (const d of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
        const r = path.join(rel, d.name);
        if (d.isDirectory()) {
          out[`${r}/`] = '';
          walk(r);
        } else out[r] = fs.readFileSync(path.join(dir, r), 'utf8');
      }
    };
    walk('');
    return out;
  }
  function script(dir: string): FileOp[] {
    const p = (...x: string[]): string => path.join(dir, ...x);
    return [
      { kind: 'writeFile', path: p('a.tmp'), data: Buffer.from('first') },
      { kind: 'writeFile', path: p('sub', 'b.tmp'), data: new Uint8Array(0) },
      { kind: 'rename', from: p('a.tmp'), to: p('a') },
      { kind: 'fsyncDir', dir: p() },
      { kind: 'writeFile', path: p('a'), data: Buffer.from('replaced, longer than before') },
      { kind: 'rename', from: p('sub', 'b.tmp'), to: p('b') },
      { kind: 'fsyncDir', dir: p('sub') },
    ];
  }

  it.skipIf(!nativeFileOps)('does what the step-by-step executor does, and stops at the first error with node:fs\'s error shape', async () => {
    const results: Record<string, string>[] = [];
    const errors: unknown[] = [];
    for (const run of [fileOpsRunner(undefined), (ops: readonly FileOp[]) => runFileOpsWith(nodeLedgerFs, ops)]) {
      const dir = await newDir();
      fs.mkdirSync(path.join(dir, 'sub'));
      await run(script(dir));
      results.push(tree(dir));
      // A rename of a missing file fails; the step after it must not run.
      const err = await run([
        { kind: 'rename', from: path.join(dir, 'missing'), to: path.join(dir, 'x') },
        { kind: 'writeFile', path: path.join(dir, 'never'), data: Buffer.from('no') },
      ]).catch((e: unknown) => e);
      expect(fs.existsSync(path.join(dir, 'never'))).toBe(false);
      const e = err as NodeJS.ErrnoException & { dest?: string };
      errors.push({ code: e.code, syscall: e.syscall, path: path.basename(e.path ?? ''), dest: path.basename(e.dest ?? ''), message: e.message.replace(dir, 'DIR').replace(dir, 'DIR') });
    }
    expect(results[0]).toEqual({ 'a': 'replaced, longer than before', 'b': '', 'sub/': '' });
    expect(results[0]).toEqual(results[1]);
    expect(errors[0]).toEqual(errors[1]);
    expect(errors[0]).toMatchObject({ code: 'ENOENT', syscall: 'rename', path: 'missing', dest: 'x' });
  });

  it.skipIf(!nativeFileOps)('names the failed step: a file in a missing directory (open), a missing directory to fsync (open)', async () => {
    const dir = await newDir();
    const run = fileOpsRunner(undefined);
    await expect(run([{ kind: 'writeFile', path: path.join(dir, 'no', 'f'), data: Buffer.from('x') }])).rejects.toMatchObject({
      code: 'ENOENT',
      syscall: 'open',
      message: `ENOENT: no such file or directory, open '${path.join(dir, 'no', 'f')}'`,
    });
    await expect(run([{ kind: 'fsyncDir', dir: path.join(dir, 'gone') }])).rejects.toMatchObject({ code: 'ENOENT', syscall: 'open' });
  });

  it.skipIf(!nativeFileOps)('refuses malformed op lists with a RangeError, before any I/O', async () => {
    const dir = await newDir();
    const bad: unknown[] = [
      'not an array',
      [[9, path.join(dir, 'x')]],
      [[1, path.join(dir, 'x')]],
      [[3, path.join(dir, 'x'), 'not bytes']],
      [[2, `${dir}/a\0b`]],
      [[3, path.join(dir, 'y'), new Uint8Array(1)], 'not an op'],
    ];
    for (const ops of bad) expect(() => nativeFileOps!(ops as never), JSON.stringify(ops)).toThrow(RangeError);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
