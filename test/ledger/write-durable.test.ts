/**
 * The group commit's native disk step (native/sealtrail_hash.c writeDurable, exposed as
 * native-hash.ts nativeWriteDurable): one thread-pool job that writes the buffers back to back and
 * fdatasyncs. G1 rests on it in production — the ledger acknowledges a commit when this promise
 * resolves — so it is tested against the file's real bytes, and its errors must reject (never be
 * swallowed) with the code and the step that failed. The ledger must use it only with its default
 * file system: with an injected LedgerFs (fault injection) every write and fdatasync goes through
 * the seam.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { nodeLedgerFs } from '../../src/ledger/fs.js';
import { nativeHashLoaded, nativeWriteDurable } from '../../src/ledger/native-hash.js';
import { entry, ledgerConfig, removeDir, tempDir, testSigner, text, readLog } from './helpers.js';
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

describe('the ledger and nativeWriteDurable', () => {
  async function ledgerModuleWithSpy(): Promise<{ Ledger: typeof import('../../src/ledger/ledger.js').Ledger; calls: { datasync: boolean; settled: boolean }[] }> {
    const calls: { datasync: boolean; settled: boolean }[] = [];
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
      };
    });
    const { Ledger } = await import('../../src/ledger/ledger.js');
    return { Ledger, calls };
  }

  it.skipIf(!hasNative)('with the default file system: every group commit is one native write + fdatasync, acknowledged after it settled', async () => {
    const dir = await newDir();
    const { Ledger, calls } = await ledgerModuleWithSpy();
    const l = await Ledger.open({ config: ledgerConfig(dir), signer: testSigner(), logger: silentLogger() });
    const outs = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const o = await l.append([entry(`n${i}`)]);
        // Acknowledged only once the native job that carried it had finished.
        expect(calls.length).toBeGreaterThan(0);
        expect(calls.every((c) => c.datasync)).toBe(true);
        return { o, settledAtAck: calls.filter((c) => c.settled).length };
      }),
    );
    expect(outs.every(({ o }) => o.kind === 'ok')).toBe(true);
    expect(outs.every(({ settledAtAck }) => settledAtAck > 0)).toBe(true);
    await l.close();
    expect(readLog(dir).entries.map(text)).toEqual(Array.from({ length: 200 }, (_, i) => text(entry(`n${i}`))));
  });

  it.skipIf(!hasNative)('durability none: the native job writes without fdatasync', async () => {
    const dir = await newDir();
    const { Ledger, calls } = await ledgerModuleWithSpy();
    const l = await Ledger.open({ config: ledgerConfig(dir, { durability: 'none' }), signer: testSigner(), logger: silentLogger() });
    expect((await l.append([entry('x')])).kind).toBe('ok');
    await l.close();
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.every((c) => !c.datasync)).toBe(true);
  });

  it('with an injected file system: no native job, every write and fdatasync goes through the seam', async () => {
    const dir = await newDir();
    const { Ledger, calls } = await ledgerModuleWithSpy();
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
  });
});
