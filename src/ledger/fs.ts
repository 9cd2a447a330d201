/**
 * The few file-system operations the ledger uses, behind an interface so that a unit test can make
 * one of them fail (an fsync error must switch the ledger to its failed state, never be ignored).
 * Production code uses `nodeLedgerFs`, thin promise wrappers over node:fs's fd-based calls (the
 * callback API: cheaper per call than FileHandle on the hot path).
 */
import * as fs from 'node:fs';
import { nativeFileMap } from './native-hash.js';

/** A file's whole contents and the call that gives them back (see LedgerFs.readSealed). */
export interface SealedBytes {
  readonly bytes: Uint8Array;
  /** Nothing may read `bytes` (or a view of them) afterwards: a mapping is gone, its views empty. */
  release(): void;
}

export interface LedgerFs {
  open(path: string, flags: string, mode?: number): Promise<number>;
  /** Writes all of `buf` at `position` (loops over short writes). */
  writeAll(fd: number, buf: Uint8Array, position: number): Promise<void>;
  /** Writes the buffers back to back from `position` (one writev where the kernel takes it all). */
  writevAll(fd: number, bufs: readonly Uint8Array[], position: number): Promise<void>;
  fdatasync(fd: number): Promise<void>;
  fsync(fd: number): Promise<void>;
  ftruncate(fd: number, length: number): Promise<void>;
  close(fd: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** fsync of a directory, so that a create/rename/unlink in it is durable (POSIX needs this). */
  fsyncDir(path: string): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
  /**
   * The whole contents of a file that nothing changes while they are in use — a sealed segment at
   * start-up — until `release()`. nodeLedgerFs maps it where the native addon is loaded (no copy out
   * of the page cache and no fresh buffer the size of a segment), and reads it otherwise.
   */
  readSealed(path: string): Promise<SealedBytes>;
  readdir(path: string): Promise<string[]>;
  size(path: string): Promise<number>;
  mkdirp(path: string): Promise<void>;
}

function cb<T>(f: (done: (err: NodeJS.ErrnoException | null, v?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v as T))));
}

async function writeAll(fd: number, buf: Uint8Array, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const n = await cb<number>((d) => fs.write(fd, buf, off, buf.length - off, position + off, d));
    if (n <= 0) throw new Error(`write returned ${n}`);
    off += n;
  }
}

async function writevAll(fd: number, bufs: readonly Uint8Array[], position: number): Promise<void> {
  if (bufs.length === 1) return writeAll(fd, bufs[0]!, position);
  const total = bufs.reduce((s, b) => s + b.length, 0);
  const n = await cb<number>((d) => fs.writev(fd, bufs as Uint8Array[], position, d));
  if (n === total) return;
  // A short writev: finish piece by piece from where it stopped.
  let done = n;
  let pos = position;
  for (const b of bufs) {
    if (done >= b.length) {
      done -= b.length;
      pos += b.length;
      continue;
    }
    await writeAll(fd, b.subarray(done), pos + done);
    pos += b.length;
    done = 0;
  }
}

export const nodeLedgerFs: LedgerFs = {
  open: (path, flags, mode = 0o644) => cb<number>((d) => fs.open(path, flags, mode, d)),
  writeAll,
  writevAll,
  fdatasync: (fd) => cb<void>((d) => fs.fdatasync(fd, d)),
  fsync: (fd) => cb<void>((d) => fs.fsync(fd, d)),
  ftruncate: (fd, len) => cb<void>((d) => fs.ftruncate(fd, len, d)),
  close: (fd) => cb<void>((d) => fs.close(fd, d)),
  rename: (a, b) => fs.promises.rename(a, b),
  unlink: (p) => fs.promises.unlink(p),
  async fsyncDir(path) {
    const fd = await cb<number>((d) => fs.open(path, 'r', d));
    try {
      await cb<void>((d) => fs.fsync(fd, d));
    } finally {
      await cb<void>((d) => fs.close(fd, d));
    }
  },
  readFile: async (p) => new Uint8Array(await fs.promises.readFile(p)),
  async readSealed(p) {
    const map = nativeFileMap;
    if (map === undefined) return { bytes: new Uint8Array(await fs.promises.readFile(p)), release: () => {} };
    const fd = await cb<number>((d) => fs.open(p, 'r', d));
    try {
      const size = (await cb<fs.Stats>((d) => fs.fstat(fd, d))).size;
      if (size === 0) return { bytes: new Uint8Array(0), release: () => {} };
      // A private read-only use of the file's pages; the mapping outlives the descriptor. Only for a
      // file nobody shrinks meanwhile: touching a page past a new end of file raises SIGBUS.
      const ab = map.map(fd, 0, size);
      let mapped = true;
      return {
        bytes: new Uint8Array(ab),
        release: () => {
          if (mapped) map.unmap(ab);
          mapped = false;
        },
      };
    } finally {
      await cb<void>((d) => fs.close(fd, d));
    }
  },
  readdir: (p) => fs.promises.readdir(p),
  size: async (p) => (await fs.promises.stat(p)).size,
  mkdirp: async (p) => {
    await fs.promises.mkdir(p, { recursive: true });
  },
};
