/**
 * The disk alone, for `npm run bench` (issue 7): appends chunks of a given size to a fresh file,
 * each written with one pwrite and made durable with fdatasync before the next — the agent's group
 * commit without the agent — for a fixed time, and reports MB/s and the latency of each commit.
 *
 * Why: agent (c) acknowledges only after fdatasync, so its records/s can never exceed what the disk
 * makes durable divided by the bytes of one entry on disk. This machine's disk is a virtual one
 * whose speed drifts within minutes; the harness therefore runs this probe inside each round of the
 * 100-record maximum, right after the agents' windows, with the chunk size the fsync agent's commits
 * had, so the run shows the ceiling the disk set at that moment next to what the agent reached.
 *
 * Run by bench/run.ts as `node dist/bench/disk.js --dir DIR --bytes N --ms T` pinned to the agents'
 * CPU (the agent's commits share that core too); prints one JSON object (DiskProbe) on stdout.
 * The file is deleted afterwards.
 *
 * `--prezeroed` (by hand, for comparison; the harness does not use it): the file is first filled
 * with zeros (--zero-mib, default 256) and fdatasync'd, and the chunks then overwrite it from the
 * start, wrapping around — commits that change no file size and allocate no block, which on ext4
 * need no journal commit in fdatasync. This is what a ledger that wrote its segment files ahead of
 * time would pay per commit (docs/benchmarks.md, session 12).
 *
 * `--drop` (bench/run.ts passes it wherever the addon is built): each chunk is made durable by the
 * addon's syncDrop instead — fdatasync, then its whole pages dropped from the page cache, as the agent's
 * commit writer does since session 18 — so that the next chunks reuse freed pages instead of taking
 * fresh ones (on this VM a fresh page costs a fault in the host; docs/benchmarks.md, session 18).
 *
 * `--writer` (bench/run.ts passes it wherever the addon is built, since session 19): each chunk is
 * committed by the agent's own commit writer (src/ledger/commit-sink.ts, native) — whole 4 KiB blocks
 * written with O_DIRECT, the block a chunk ends in through the page cache, then fdatasync — so the
 * probe writes exactly as agent (c) does; the report says how many bytes went directly.
 */
import { closeSync, fdatasyncSync, fstatSync, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { commitSink } from '../src/ledger/commit-sink.js';
import { nodeLedgerFs } from '../src/ledger/fs.js';
import { nativeCommitWriter, nativeSyncDrop } from '../src/ledger/native-hash.js';

export interface DiskProbe {
  /** Bytes per commit (one pwrite + one fdatasync). */
  chunkBytes: number;
  /** Present for --prezeroed runs: the size of the zero-filled file the chunks overwrite. */
  prezeroedBytes?: number;
  /** Present (true) for --drop runs: each chunk's pages were dropped from the page cache once durable. */
  dropped?: boolean;
  /** Present for --writer runs: bytes the agent's commit writer wrote with O_DIRECT (the rest through the page cache). */
  directBytes?: number;
  /** The file's size after the last commit (appending: commits × chunkBytes); absent in older reports. */
  fileBytes?: number;
  commits: number;
  seconds: number;
  /** Bytes made durable per second, in MB (10^6). */
  MBps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Smallest and largest chunk the probe accepts (the agent's commits lie far inside). */
export const MIN_CHUNK = 4096;
export const MAX_CHUNK = 64 * 2 ** 20;

/**
 * Appends `chunkBytes` chunks to `<dir>/disk-probe.bin` (created fresh), fdatasync after each, until
 * `ms` milliseconds have passed (at least one commit); removes the file.
 * @throws RangeError (as a rejection) for a chunk size outside MIN_CHUNK..MAX_CHUNK, a non-positive
 *   duration, `drop` or `writer` without the addon, or both; the fs error of a failed write or
 *   fdatasync (the file is removed in either case)
 */
export async function probeDisk(dir: string, chunkBytes: number, ms: number, opts: { prezeroedBytes?: number; drop?: boolean; writer?: boolean } = {}): Promise<DiskProbe> {
  if (!Number.isInteger(chunkBytes) || chunkBytes < MIN_CHUNK || chunkBytes > MAX_CHUNK) {
    throw new RangeError(`disk probe: chunk size must be a whole number of bytes from ${MIN_CHUNK} to ${MAX_CHUNK}, got ${chunkBytes}`);
  }
  if (!(ms > 0)) throw new RangeError(`disk probe: duration must be more than 0 ms, got ${ms}`);
  const zeroed = opts.prezeroedBytes;
  if (zeroed !== undefined && !(Number.isInteger(zeroed) && zeroed >= chunkBytes && zeroed <= 2 ** 34)) {
    throw new RangeError(`disk probe: the zero-filled size must be a whole number of bytes from the chunk size (${chunkBytes}) to 16 GiB, got ${zeroed}`);
  }
  const syncDrop = opts.drop ? nativeSyncDrop : undefined;
  if (opts.drop && syncDrop === undefined) throw new RangeError('disk probe: --drop needs the native addon, which npm install builds (node scripts/build-native.mjs; Linux)');
  if (opts.writer && nativeCommitWriter === undefined) throw new RangeError('disk probe: --writer needs the native addon, which npm install builds (node scripts/build-native.mjs; Linux)');
  if (opts.writer && opts.drop) throw new RangeError('disk probe: --writer and --drop exclude each other (the commit writer drops what it writes through the page cache itself)');
  const file = path.join(dir, 'disk-probe.bin');
  // Not zeros: a filesystem or virtual disk could treat zero pages specially.
  const chunk = Buffer.alloc(chunkBytes);
  for (let i = 0; i < chunkBytes; i++) chunk[i] = (i * 131 + 7) & 0xff;
  const lat: number[] = [];
  // Readable too: the commit writer reads back the part of a block before a commit (the ledger's segments are open r+).
  const fd = openSync(file, 'w+', 0o600);
  // The agent's commit writer with fdatasync, as agent (c) runs it (made once the file is open: closed in the finally below).
  const sink = opts.writer ? commitSink(undefined, nodeLedgerFs, true, () => undefined) : undefined;
  let t0 = 0;
  let t1 = 0;
  let fileBytes = 0;
  try {
    if (zeroed !== undefined) {
      const zeros = Buffer.alloc(Math.min(zeroed, 2 ** 20));
      for (let at = 0; at < zeroed; ) {
        const n = Math.min(zeros.length, zeroed - at);
        at += writeSync(fd, zeros, 0, n, at);
      }
      fdatasyncSync(fd);
    }
    // Overwriting: the last whole chunk that fits, then back to the start.
    const wrapAt = zeroed === undefined ? Infinity : zeroed - (zeroed % chunkBytes);
    t0 = performance.now();
    const end = t0 + ms;
    let pos = 0;
    do {
      if (pos + chunkBytes > wrapAt) pos = 0;
      const s = performance.now();
      if (sink) {
        const r = await sink.submit(fd, [chunk], pos, 1);
        if (!r.ok) throw r.error;
      } else {
        let off = 0;
        while (off < chunkBytes) off += writeSync(fd, chunk, off, chunkBytes - off, pos + off);
        if (syncDrop) await syncDrop(fd, pos, pos + chunkBytes);
        else fdatasyncSync(fd);
      }
      pos += chunkBytes;
      t1 = performance.now();
      lat.push(t1 - s);
    } while (t1 < end);
    fileBytes = fstatSync(fd).size;
  } finally {
    sink?.close();
    closeSync(fd);
    rmSync(file, { force: true });
  }
  const seconds = (t1 - t0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!;
  return {
    chunkBytes,
    ...(zeroed !== undefined ? { prezeroedBytes: zeroed } : {}),
    ...(syncDrop ? { dropped: true } : {}),
    ...(sink ? { directBytes: sink.directBytes() } : {}),
    fileBytes,
    commits: lat.length,
    seconds,
    MBps: (chunkBytes * lat.length) / seconds / 1e6,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    maxMs: lat[lat.length - 1]!,
  };
}

async function main(): Promise<number> {
  const usage = 'usage: node dist/bench/disk.js --dir DIR --bytes CHUNK_BYTES --ms DURATION_MS [--prezeroed [--zero-mib N]] [--drop | --writer]\n';
  let values;
  try {
    values = parseArgs({
      options: { dir: { type: 'string' }, bytes: { type: 'string' }, ms: { type: 'string' }, prezeroed: { type: 'boolean', default: false }, 'zero-mib': { type: 'string' }, drop: { type: 'boolean', default: false }, writer: { type: 'boolean', default: false } },
    }).values;
  } catch (e) {
    process.stderr.write(`bench/disk: ${(e as Error).message.split('\n')[0]}\n${usage}`);
    return 2;
  }
  if (values.dir === undefined || values.bytes === undefined || values.ms === undefined || (values['zero-mib'] !== undefined && !values.prezeroed)) {
    process.stderr.write(usage);
    return 2;
  }
  try {
    const opts = { ...(values.prezeroed ? { prezeroedBytes: Number(values['zero-mib'] ?? 256) * 2 ** 20 } : {}), ...(values.drop ? { drop: true } : {}), ...(values.writer ? { writer: true } : {}) };
    process.stdout.write(`${JSON.stringify(await probeDisk(values.dir, Number(values.bytes), Number(values.ms), opts))}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`bench/disk: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      process.stderr.write(`bench/disk: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
