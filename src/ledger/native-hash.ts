/**
 * Batch SHA-256 for the ledger's hot path, through a small native addon (native/sealtrail_hash.c,
 * built by scripts/build-native.mjs at `npm ci`) with a pure node:crypto fallback.
 *
 * Why: each entry costs three SHA-256 calls (leaf, chain, ~one Merkle node) and, on Node 20.20,
 * `crypto.hash` costs ~2.2 µs per call for 64 bytes and ~2.8 µs for 300 bytes — the binding
 * overhead, not SHA-256 (~0.2–0.5 µs with SHA-NI), dominates. One native call per batch hashes
 * every entry of the batch — with the x86 SHA extensions (native/sha256_ni.h, two leaves at a time)
 * where the CPU has them, else with OpenSSL's SHA-256 (the copy inside the node binary). Numbers:
 * docs/benchmarks.md "Native batch hashing" and "Two leaf hashes at once".
 *
 * The addon is optional: when build/Release/sealtrail_hash.node is missing, fails to load, or
 * fails the self-check below, every function here computes the same bytes with src/ledger/hash.ts
 * and merkle.ts. `SEALTRAIL_NATIVE_HASH=0` forces the fallback (benchmarks, tests).
 *
 * The same addon carries the OTLP/protobuf decoder's LogRecord check, exported here as
 * nativeCheckLogRecords and vetted by src/otlp at its own load
 * (`SEALTRAIL_NATIVE_HASH=0` leaves the addon unloaded, so the decoder runs its JS path too).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { crc32cUpdate } from './crc32c.js';
import { HASH_SIZE, chainHash, hashEqual, leafHash } from './hash.js';
import { Frontier } from './merkle.js';

interface Addon {
  leafChainBatch(data: Uint8Array, spans: Uint32Array, prevChain: Uint8Array, outLeaves: Uint8Array, outChains: Uint8Array): void;
  frontierAppend(frontier: Uint8Array, leaves: Uint8Array): Uint8Array;
  frameBatch(buf: Uint8Array, spans: Uint32Array, prevChain: Uint8Array, outLeaves: Uint8Array, outChains: Uint8Array): void;
  crc32c(data: Uint8Array, start: number, end: number, crc: number): number;
  scanFrames?(buf: Uint8Array, start: number, end: number, chain: Uint8Array, frontier: Uint8Array, limit: number, out: Uint32Array): number;
  mapRange?(fd: number, offset: number, length: number): ArrayBuffer;
  unmapRange?(buffer: ArrayBuffer): void;
  writeDurable?(fd: number, bufs: readonly Uint8Array[], position: number, datasync: boolean): Promise<void>;
  syncDrop?(fd: number, from: number, to: number): Promise<void>;
  fileOps?(ops: readonly (readonly [number, string, string | Uint8Array | undefined])[]): Promise<void>;
  commitWriter?(
    onDone: (first: number, last: number, errno: number, syscall: string | undefined, seconds: number) => void,
    datasync: boolean,
    direct?: boolean,
    zeroAhead?: number,
  ): unknown;
  cwSubmit?(writer: unknown, id: number, fd: number, bufs: readonly Uint8Array[], position: number, end?: number): void;
  cwClose?(writer: unknown): void;
  cwDirectBytes?(writer: unknown): number;
  cwDropDirect?(writer: unknown): void;
  checkLogRecords?(body: Uint8Array, ranges: Uint32Array, n: number, maxDepth: number): number;
  assembleEntries?(
    out: Uint8Array,
    src: Uint8Array,
    ranges: Uint32Array,
    k0: number,
    k1: number,
    resource: Uint8Array,
    scope: Uint8Array,
    slSchema: Uint8Array,
    rlSchema: Uint8Array,
    headRoom: number,
    tailRoom: number,
    spans: Uint32Array,
  ): number;
  /** "sha-ni" (native/sha256_ni.h: CPU support, SEALTRAIL_SHA_NI not "0") or "openssl". */
  shaImpl?(): string;
}

/**
 * Leaf and chain hashes of a batch, without the addon. Entry i is `data[spans[2i], spans[2i+1])`;
 * leaf_i = SHA-256(0x00 ‖ entry_i) goes to `outLeaves[32i..]`, chain_i = SHA-256(chain_{i-1} ‖ leaf_i)
 * (chain_{-1} = prevChain) to `outChains[32i..]`.
 * @throws RangeError if prevChain is not 32 bytes, spans is odd or out of range, or an output is too small
 */
export function leafChainBatchJs(
  data: Uint8Array,
  spans: Uint32Array,
  prevChain: Uint8Array,
  outLeaves: Uint8Array,
  outChains: Uint8Array,
): void {
  const n = checkBatch(data, spans, prevChain, outLeaves, outChains);
  let chain = prevChain;
  for (let i = 0; i < n; i++) {
    const leaf = leafHash(data.subarray(spans[2 * i]!, spans[2 * i + 1]!));
    chain = chainHash(chain, leaf);
    outLeaves.set(leaf, HASH_SIZE * i);
    outChains.set(chain, HASH_SIZE * i);
  }
}

/**
 * Frontier bytes (merkle.ts `Frontier.toBytes` format) after appending the 32-byte leaf hashes
 * concatenated in `leaves`, without the addon.
 * @throws RangeError if the frontier bytes are malformed or leaves is not a multiple of 32 bytes
 */
export function frontierAppendJs(frontier: Uint8Array, leaves: Uint8Array): Uint8Array {
  if (leaves.length % HASH_SIZE !== 0) throw new RangeError('leaves must be a multiple of 32 bytes');
  const f = Frontier.fromBytes(frontier);
  for (let o = 0; o < leaves.length; o += HASH_SIZE) f.append(leaves.subarray(o, o + HASH_SIZE));
  return f.toBytes();
}

/** {@link scanFrames} results: why the walk stopped (native/sealtrail_hash.c uses the same numbers). */
export const SCAN_NEED_MORE = 0;
export const SCAN_TRAILER = 1;
export const SCAN_BAD_LENGTH = 2;
export const SCAN_BAD_CRC = 3;
export const SCAN_BAD_CHAIN = 4;
export const SCAN_LIMIT = 5;
/** Bytes of the frontier state buffer scanFrames works in: u64 size + room for 64 subtree roots. */
export const SCAN_FRONTIER_BYTES = 8 + 64 * HASH_SIZE;
/** segment-format.ts MAX_ENTRY_BYTES (not imported: segment-format.ts imports this module). */
const SCAN_MAX_ENTRY = 1024 * 1024 * 1024;

/**
 * The meaningful part of a scanFrames frontier state (u64 size ‖ popcount(size) roots, i.e.
 * merkle.ts Frontier.toBytes); the bytes after it are scratch space and may differ between the
 * implementations.
 * @throws RangeError if the size exceeds 2^53-1
 */
export function scanFrontierBytes(state: Uint8Array): Uint8Array {
  const size = new DataView(state.buffer, state.byteOffset, 8).getBigUint64(0, false);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('tree size beyond 2^53-1');
  let k = 0;
  for (let s = size; s > 0n; s >>= 1n) k += Number(s & 1n);
  return state.subarray(0, 8 + HASH_SIZE * k);
}

function be32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/**
 * The verifier's per-frame work without the addon, byte for byte what the native scanFrames does:
 * walks the frames in `buf[start, end)` in place; per frame checks len/~len (≤ 1 GiB), CRC-32C,
 * leaf = SHA-256(0x00 ‖ entry), chain = SHA-256(chain ‖ leaf) against the stored value, and appends
 * the leaf to the frontier. `chain` (32 bytes) and `frontier` ({@link SCAN_FRONTIER_BYTES}: u64 BE
 * size ‖ subtree roots as merkle.ts Frontier.toBytes) are updated in place per accepted frame.
 * Returns a SCAN_* code for the first frame not accepted (or SCAN_LIMIT once the tree size equals
 * `limit`, −1 = none); `out[0]` = its offset, `out[1]` = frames accepted.
 * @throws RangeError if the range, chain, frontier or out are malformed
 */
export function scanFramesJs(buf: Uint8Array, start: number, end: number, chain: Uint8Array, frontier: Uint8Array, limit: number, out: Uint32Array): number {
  if (start < 0 || start > end || end > buf.length) throw new RangeError('range outside buf');
  if (chain.length !== HASH_SIZE) throw new RangeError('chain must be 32 bytes');
  if (frontier.length < SCAN_FRONTIER_BYTES) throw new RangeError(`frontier must be ${SCAN_FRONTIER_BYTES} bytes`);
  if (out.length < 2) throw new RangeError('out must hold 2 numbers');
  const f = Frontier.fromBytes(scanFrontierBytes(frontier));
  let off = start;
  let frames = 0;
  let status: number;
  let c: Uint8Array = chain.slice();
  for (;;) {
    if (end - off < 4) { status = SCAN_NEED_MORE; break; }
    const n = be32(buf, off);
    if (n === 0xffffffff) { status = SCAN_TRAILER; break; }
    if (end - off < 8) { status = SCAN_NEED_MORE; break; }
    if (be32(buf, off + 4) !== (~n >>> 0) || n > SCAN_MAX_ENTRY) { status = SCAN_BAD_LENGTH; break; }
    if (end - off < 44 + n) { status = SCAN_NEED_MORE; break; }
    if (crc32cUpdate(0, buf, off, off + 40 + n) !== be32(buf, off + 40 + n)) { status = SCAN_BAD_CRC; break; }
    const leaf = leafHash(buf.subarray(off + 40, off + 40 + n));
    const next = chainHash(c, leaf);
    if (!hashEqual(next, buf.subarray(off + 8, off + 40))) { status = SCAN_BAD_CHAIN; break; }
    c = next;
    f.append(leaf);
    off += 44 + n;
    frames++;
    if (limit >= 0 && f.size === limit) { status = SCAN_LIMIT; break; }
  }
  chain.set(c);
  frontier.set(f.toBytes());
  out[0] = off;
  out[1] = frames;
  return status;
}

function checkBatch(data: Uint8Array, spans: Uint32Array, prevChain: Uint8Array, outLeaves: Uint8Array, outChains: Uint8Array): number {
  if (prevChain.length !== HASH_SIZE) throw new RangeError('prevChain must be 32 bytes');
  if (spans.length % 2 !== 0) throw new RangeError('spans must hold (start, end) pairs');
  const n = spans.length / 2;
  if (outLeaves.length < HASH_SIZE * n || outChains.length < HASH_SIZE * n) {
    throw new RangeError('outLeaves and outChains need 32 bytes per entry');
  }
  for (let i = 0; i < n; i++) {
    if (spans[2 * i]! > spans[2 * i + 1]! || spans[2 * i + 1]! > data.length) throw new RangeError(`span ${i} lies outside data`);
  }
  return n;
}

/** Candidate addon paths: from src/ledger/ (vitest) and dist/src/ledger/ (compiled) to the package root. */
const CANDIDATES = ['../../build/Release/sealtrail_hash.node', '../../../build/Release/sealtrail_hash.node'];

function loadAddon(): { addon: Addon | undefined; status: string } {
  if (process.env.SEALTRAIL_NATIVE_HASH === '0') return { addon: undefined, status: 'disabled by SEALTRAIL_NATIVE_HASH=0' };
  const file = CANDIDATES.map((p) => fileURLToPath(new URL(p, import.meta.url))).find((p) => existsSync(p));
  if (file === undefined) return { addon: undefined, status: 'build/Release/sealtrail_hash.node not built' };
  try {
    const addon = createRequire(import.meta.url)(file) as Addon;
    // Self-check against the JS definitions before trusting it with the ledger: a wrongly built
    // addon must cost speed, never correctness.
    // Entry lengths on both sides of SHA-256 block boundaries, in pairs whose block counts differ
    // (the SHA-NI code hashes two leaves at once), an odd count (the last one alone) and an
    // overlapping span.
    const lengths = [0, 1, 5, 54, 55, 56, 63, 64, 118, 119, 120, 200, 333, 7, 1000];
    const data = new Uint8Array(1000).map((_, i) => (i * 151 + 17) & 0xff);
    const spans = Uint32Array.from(lengths.flatMap((n, i) => [i, i + Math.min(n, 1000 - i)]));
    const prev = new Uint8Array(HASH_SIZE).fill(7);
    const got = [new Uint8Array(32 * lengths.length), new Uint8Array(32 * lengths.length)] as const;
    const want = [new Uint8Array(32 * lengths.length), new Uint8Array(32 * lengths.length)] as const;
    addon.leafChainBatch(data, spans, prev, got[0], got[1]);
    leafChainBatchJs(data, spans, prev, want[0], want[1]);
    const f = Frontier.empty().toBytes();
    if (!hashEqual(got[0], want[0]) || !hashEqual(got[1], want[1])
      || !hashEqual(addon.frontierAppend(f, want[0]), frontierAppendJs(f, want[0]))) {
      return { addon: undefined, status: `${file} failed the self-check` };
    }
    // CRC-32C over every length 0..600 at every alignment 0..7, against the JS tables.
    const crcData = new Uint8Array(608).map((_, i) => (i * 131 + 7) & 0xff);
    for (let a = 0; a < 8; a++) {
      for (let len = 0; len <= 600; len += len < 24 ? 1 : 37) {
        if (addon.crc32c(crcData, a, a + len, 0x1234) !== crc32cUpdate(0x1234, crcData, a, a + len)) {
          return { addon: undefined, status: `${file} failed the CRC-32C self-check` };
        }
      }
    }
    if (addon.scanFrames && !scanFramesAgree(addon.scanFrames)) return { addon: undefined, status: `${file} failed the scanFrames self-check` };
    return { addon, status: `native (${file}; SHA-256: ${addon.shaImpl?.() ?? 'openssl'})` };
  } catch (e) {
    return { addon: undefined, status: `${file} did not load: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** Three frames (the last with a wrong chain value) walked by the addon and by scanFramesJs must agree. */
function scanFramesAgree(native: NonNullable<Addon['scanFrames']>): boolean {
  const entries = [new Uint8Array(0), new TextEncoder().encode('sealtrail'), new Uint8Array(70).fill(3)];
  const buf = new Uint8Array(entries.reduce((a, e) => a + 44 + e.length, 0));
  let chain: Uint8Array = new Uint8Array(HASH_SIZE).fill(9);
  let off = 0;
  for (const [i, e] of entries.entries()) {
    chain = i === 2 ? new Uint8Array(HASH_SIZE) : chainHash(chain, leafHash(e));
    const v = new DataView(buf.buffer, off);
    v.setUint32(0, e.length);
    v.setUint32(4, ~e.length >>> 0);
    buf.set(chain, off + 8);
    buf.set(e, off + 40);
    v.setUint32(40 + e.length, crc32cUpdate(0, buf, off, off + 40 + e.length));
    off += 44 + e.length;
  }
  const run = (fn: NonNullable<Addon['scanFrames']>): string => {
    const c = new Uint8Array(HASH_SIZE).fill(9);
    const fr = new Uint8Array(SCAN_FRONTIER_BYTES);
    fr.set(Frontier.empty().toBytes());
    const out = new Uint32Array(2);
    const st = fn(buf, 0, buf.length, c, fr, -1, out);
    return `${st} ${out.join(',')} ${Buffer.from(c).toString('hex')} ${Buffer.from(scanFrontierBytes(fr)).toString('hex')}`;
  };
  return run(native) === run(scanFramesJs);
}

const loaded = loadAddon();

/** True when the native addon is in use. */
export const nativeHashLoaded: boolean = loaded.addon !== undefined;
/** Which implementation is in use and, for the fallback, why (for one debug log line at start). */
export const nativeHashStatus: string = loaded.status;

/**
 * {@link leafChainBatchJs} in one native call when the addon is loaded (same bytes either way).
 * @throws RangeError as leafChainBatchJs
 */
export function leafChainBatch(
  data: Uint8Array,
  spans: Uint32Array,
  prevChain: Uint8Array,
  outLeaves: Uint8Array,
  outChains: Uint8Array,
): void {
  if (loaded.addon) loaded.addon.leafChainBatch(data, spans, prevChain, outLeaves, outChains);
  else leafChainBatchJs(data, spans, prevChain, outLeaves, outChains);
}

/**
 * The addon's frameBatch when it is loaded (segment-format.ts `finishFrames` wraps it with the JS
 * fallback): leafChainBatch, then len, ~len, chain and CRC-32C of every frame written in place.
 */
export const nativeFrameBatch: Addon['frameBatch'] | undefined = loaded.addon?.frameBatch;

/** The addon's CRC-32C (SSE4.2 where the CPU has it) when loaded: crc32c(data, start, end, crc). */
export const nativeCrc32c: Addon['crc32c'] | undefined = loaded.addon?.crc32c;

/**
 * {@link scanFramesJs} in one native call when the addon is loaded (same results and state either way).
 * @throws RangeError as scanFramesJs
 */
export function scanFrames(buf: Uint8Array, start: number, end: number, chain: Uint8Array, frontier: Uint8Array, limit: number, out: Uint32Array): number {
  const native = loaded.addon?.scanFrames;
  return native ? native(buf, start, end, chain, frontier, limit, out) : scanFramesJs(buf, start, end, chain, frontier, limit, out);
}

/**
 * File mapping for the verifier's reads (src/cli/log-sources.ts), when the addon has it (POSIX):
 * `map(fd, offset, length)` returns the bytes of [offset, offset+length) of an open file as an
 * ArrayBuffer backed by a private mapping (offset page-aligned, range inside the file: only for
 * files that cannot shrink meanwhile); `unmap(buffer)` detaches it and releases the mapping — every
 * mapped buffer must be unmapped (no finalizer does it: see native/sealtrail_hash.c). Saves
 * read(2)'s copy out of the page cache (~0.45 s of CPU per GiB here). Undefined without the addon:
 * callers read instead (the same bytes).
 */
export const nativeFileMap: { map(fd: number, offset: number, length: number): ArrayBuffer; unmap(buffer: ArrayBuffer): void } | undefined =
  loaded.addon?.mapRange && loaded.addon.unmapRange
    ? { map: loaded.addon.mapRange.bind(loaded.addon), unmap: loaded.addon.unmapRange.bind(loaded.addon) }
    : undefined;

/**
 * The addon's OTLP LogRecord check when it has one (native/otlp_check.h), for
 * src/otlp/decode-protobuf.ts, which checks it against its own walker before using it:
 * `checkLogRecords(body, ranges, n, maxDepth)` is -1 when every record body[ranges[k], ranges[k+1])
 * (k = 0, 2, … < n) is one the JS walker accepts, else the first k that it may refuse.
 * maxDepth at most {@link NATIVE_CHECK_MAX_DEPTH}.
 * @throws RangeError for a range outside the body or maxDepth out of range
 */
export const nativeCheckLogRecords: Addon['checkLogRecords'] | undefined = loaded.addon?.checkLogRecords;
/**
 * The addon's entry assembly when it has one, for src/otlp/wire.ts (EntryAssembler, framed entries),
 * which checks it against its own code before using it: `assembleEntries(out, src, ranges, k0, k1,
 * resource, scope, slSchema, rlSchema, headRoom, tailRoom, spans)` writes the entry of each LogRecord
 * src[ranges[k], ranges[k+1]) (k = k0, k0 + 2, … < k1) into out with headRoom and tailRoom bytes left
 * free around it, sets spans, and returns the bytes of out used.
 * @throws RangeError for a range outside src or an out too small
 */
export const nativeAssembleEntries: Addon['assembleEntries'] | undefined = loaded.addon?.assembleEntries;
/** OTLP_CHECK_MAX_DEPTH of native/otlp_check.h: the deepest AnyValue nesting limit it takes. */
export const NATIVE_CHECK_MAX_DEPTH = 256;

/** True when {@link scanFrames} runs natively (an addon built before it existed lacks it). */
export const nativeScanFrames: boolean = loaded.addon?.scanFrames !== undefined;

/**
 * {@link frontierAppendJs} in one native call when the addon is loaded (same bytes either way).
 * @throws RangeError as frontierAppendJs
 */
export function frontierAppend(frontier: Uint8Array, leaves: Uint8Array): Uint8Array {
  return loaded.addon ? loaded.addon.frontierAppend(frontier, leaves) : frontierAppendJs(frontier, leaves);
}

/**
 * A write + fdatasync in one libuv thread-pool job when the addon has it (Linux; the ledger uses it
 * for a seal's trailer — group commits go through {@link nativeCommitWriter}):
 * `writeDurable(fd, bufs, position, datasync)` writes the buffers back to back from `position`
 * (short writes continued), then fdatasyncs when `datasync`; rejects with a node:fs-shaped error
 * (code, errno, syscall 'pwritev' or 'fdatasync'). With node:fs these are two jobs, and the second
 * starts only after the main thread has come round the event loop to the first one's callback —
 * several milliseconds under load (docs/benchmarks.md "Ledger"). Undefined without the addon:
 * the ledger then uses LedgerFs.writevAll + fdatasync (the same bytes, the same durability).
 */
export const nativeWriteDurable: Addon['writeDurable'] | undefined = loaded.addon?.writeDurable?.bind(loaded.addon);

/**
 * `syncDrop(fd, from, to)`: fdatasync(fd) in one thread-pool job, then drops the page-cache pages
 * lying wholly in [from, to) (posix_fadvise DONTNEED; the page `to` ends in stays). For durability
 * none's background fdatasync: once on disk, what the ledger appended is read only once more (to
 * forward the sealed segment), and keeping it cached costs the node memory — the commit writer does
 * the same after each commit with durability fsync (native/sealtrail_hash.c drop_durable_pages).
 * Rejects like writeDurable when the fdatasync fails (nothing dropped). Undefined without the addon:
 * the ledger then calls LedgerFs.fdatasync and leaves the pages to the kernel.
 */
export const nativeSyncDrop: Addon['syncDrop'] | undefined = loaded.addon?.syncDrop?.bind(loaded.addon);

/**
 * A list of file steps as one thread-pool job when the addon has it (Linux): each op is
 * `[1, from, to]` rename, `[2, dir]` directory fsync, or `[3, path, data]` whole-file write + fsync;
 * stops at the first error. Only through file-ops.ts, which builds the lists and runs the same ones
 * through LedgerFs otherwise.
 */
export const nativeFileOps: Addon['fileOps'] | undefined = loaded.addon?.fileOps?.bind(loaded.addon);

/**
 * The group commit's writer when the addon has it (Linux; src/ledger/commit-sink.ts uses it):
 * `commitWriter(onDone, datasync[, direct[, zeroAhead]])` makes one,
 * `cwSubmit(writer, id, fd, bufs, position[, end])` queues a batch (`end` 1: only the file's last batch
 * follows; 2: the file ends with it — a seal's trailer), and one thread-pool job at a time writes
 * every queued batch and fdatasyncs once,
 * then calls `onDone(firstId, lastId, errno, syscall, seconds)` on the main thread and takes what was
 * queued meanwhile. After a failure every later batch is reported with the same error, unwritten.
 * With datasync (and `direct` not false) whole 4 KiB blocks are written with O_DIRECT where the file
 * system allows it, through one O_DIRECT descriptor kept from commit to commit while the batches go to
 * the same file, and with up to `zeroAhead` bytes of zeros written ahead of small commits in idle
 * moments (the file may end in them until its last batch); `cwDropDirect(writer)` closes that
 * descriptor (the ledger closed the file), and `cwDirectBytes(writer)` says how many bytes went that way. `cwClose(writer)` releases it once
 * nothing is pending.
 */
export const nativeCommitWriter: (Required<Pick<Addon, 'commitWriter' | 'cwSubmit' | 'cwClose'>> & Pick<Addon, 'cwDirectBytes' | 'cwDropDirect'>) | undefined =
  loaded.addon?.commitWriter && loaded.addon.cwSubmit && loaded.addon.cwClose
    ? {
        commitWriter: loaded.addon.commitWriter.bind(loaded.addon),
        cwSubmit: loaded.addon.cwSubmit.bind(loaded.addon),
        cwClose: loaded.addon.cwClose.bind(loaded.addon),
        cwDirectBytes: loaded.addon.cwDirectBytes?.bind(loaded.addon),
        cwDropDirect: loaded.addon.cwDropDirect?.bind(loaded.addon),
      }
    : undefined;
