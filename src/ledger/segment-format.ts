/**
 * The segment file format: header, frames, trailer, footer. Pure (no I/O, no clocks): the ledger
 * writer, recovery, `sealtrail inspect` and the offline verifier all use this one module, so the
 * bytes that are written are the bytes that are checked. docs/format.md "Segments" and "Frames"
 * give every byte; test/vectors/segment-v1.* is a worked example.
 *
 * All integers are unsigned big-endian (network order, as in RFC 9162 / TLS presentation).
 *
 *   header   magic ‖ version ‖ header_len ‖ seq ‖ first_index ‖ created_ms ‖ prev_checkpoint_hash
 *            ‖ chain_prev ‖ origin_len ‖ origin ‖ start frontier ‖ crc32c
 *   frame    len ‖ ~len ‖ chain_i ‖ entry ‖ crc32c            (one per entry, back to back)
 *   trailer  0xFFFFFFFF ‖ "STTR" ‖ count ‖ chain_last ‖ end frontier ‖ note_len ‖ note ‖ crc32c
 *   footer   trailer_offset ‖ crc32c(trailer_offset) ‖ "STFT"   (always the last 16 bytes)
 *
 * Why the length is stored twice (len and its complement): a torn write and a flipped bit must be
 * told apart on recovery. A frame header whose two copies disagree cannot come from a torn append
 * (those cut bytes off or leave zeros), so it is reported as corruption instead of being cut off;
 * and with a trusted length the recovery can step over a bad frame and see whether good frames
 * follow it (then it is corruption before the tail, never repaired).
 */
import { SealtrailError } from '../errors.js';
import { crc32c } from './crc32c.js';
import { HASH_SIZE, chainHash, hashEqual, sha256 } from './hash.js';
import { Frontier, frontierByteLength } from './merkle.js';
import { leafChainBatch, leafChainBatchJs, nativeFrameBatch } from './native-hash.js';
import { FRAME_HEAD_ROOM, FRAME_TAIL_ROOM } from './types.js';

/** "\x89STSEG\r\n": the 0x89 and CRLF catch 7-bit and newline-translating transfers (as PNG does). */
export const SEGMENT_MAGIC: Uint8Array = Uint8Array.from([0x89, 0x53, 0x54, 0x53, 0x45, 0x47, 0x0d, 0x0a]);
export const SEGMENT_FORMAT_VERSION = 1;
/** Bytes a frame adds to its entry: len 4 + ~len 4 + chain 32 (FRAME_HEAD_ROOM) + crc 4 (FRAME_TAIL_ROOM). */
export const FRAME_OVERHEAD = FRAME_HEAD_ROOM + FRAME_TAIL_ROOM;
/**
 * Largest entry a frame may carry; a larger length field is invalid. 1 GiB = the largest request the
 * config allows (grpc max_recv_msg_size_mib ≤ 1024), so no accepted record can exceed it. The
 * length's complement, not this bound, is what catches a damaged length field.
 */
export const MAX_ENTRY_BYTES = 1024 * 1024 * 1024;
/** Stands where a frame length would: never a valid length, so the trailer cannot be read as a frame. */
export const TRAILER_MARKER = 0xffffffff;
export const TRAILER_MAGIC: Uint8Array = Uint8Array.from([0x53, 0x54, 0x54, 0x52]); // "STTR"
export const FOOTER_MAGIC: Uint8Array = Uint8Array.from([0x53, 0x54, 0x46, 0x54]); // "STFT"
export const FOOTER_BYTES = 16;
/** Fixed part of the header before the origin: magic 8, version 2, len 2, seq 8, first 8, created 8, prev 32, chain 32, origin_len 1. */
const HEADER_FIXED = 101;
/** Largest possible header: fixed + 255-byte origin + frontier of 53 subtrees + crc. */
export const MAX_HEADER_BYTES = HEADER_FIXED + 255 + 8 + 53 * HASH_SIZE + 4;
const ZERO_HASH = new Uint8Array(HASH_SIZE);

/** Segment file names: 16 decimal digits (2^53−1 has 16) so that names sort in sequence order. */
export const SEGMENT_SUFFIX = '.seg';
export const OPEN_SEGMENT_SUFFIX = '.seg.open';

export interface SegmentHeader {
  readonly version: number;
  readonly seq: number;
  readonly firstIndex: number;
  /** Wall-clock ms when the segment was opened (informational; the checkpoint's time range is signed). */
  readonly createdMs: number;
  readonly origin: string;
  /** checkpointBodyHash of the newest checkpoint when the segment was opened; 32 zero bytes = none. */
  readonly prevCheckpointHash: Uint8Array;
  /** chain_{firstIndex-1}: chainSeed(origin) for index 0, else the previous segment's last chain value. */
  readonly chainPrev: Uint8Array;
  /** The Merkle tree's right frontier over entries [0, firstIndex). */
  readonly frontier: Frontier;
}

export interface SegmentTrailer {
  /** Entries (frames) in this segment. */
  readonly count: number;
  /** Chain value of the last entry (= header.chainPrev when count is 0). */
  readonly chainLast: Uint8Array;
  /** Frontier over [0, firstIndex + count): the next segment's start frontier. */
  readonly endFrontier: Frontier;
  /** The seal: a C2SP signed note (checkpoint.ts), UTF-8 bytes exactly as signed. */
  readonly checkpoint: Uint8Array;
}

export type FormatCheck =
  | 'header_magic'
  | 'header_version'
  | 'header_crc'
  | 'header_field'
  | 'frame_length'
  | 'zero_fill'
  | 'frame_truncated'
  | 'frame_crc'
  | 'chain'
  | 'trailer_crc'
  | 'trailer_field'
  | 'footer'
  | 'trailing_bytes'
  | 'truncated';

/**
 * A segment that does not parse. `check` names the failed check; `offset` is the byte offset in
 * the file of the structure that failed; `frame`/`index` are the 0-based frame number in this
 * segment and the global entry index when the failure is in or after a frame.
 * Code FORMAT_UNSUPPORTED for an unknown version (never reported as tampering), else LEDGER_CORRUPT.
 */
export class SegmentFormatError extends SealtrailError {
  readonly check: FormatCheck;
  readonly offset: number;
  readonly frame: number | undefined;
  readonly index: number | undefined;

  constructor(check: FormatCheck, offset: number, detail: string, where: { frame?: number; index?: number } = {}) {
    const loc =
      `offset ${offset}` +
      (where.frame !== undefined ? `, frame ${where.frame}` : '') +
      (where.index !== undefined ? `, index ${where.index}` : '');
    super(check === 'header_version' ? 'FORMAT_UNSUPPORTED' : 'LEDGER_CORRUPT', `${check} at ${loc}: ${detail}`);
    this.name = 'SegmentFormatError';
    this.check = check;
    this.offset = offset;
    this.frame = where.frame;
    this.index = where.index;
  }
}

/** "0000000000000007.seg" for seq 7. @throws RangeError if seq is not a safe non-negative integer */
export function segmentFileName(seq: number): string {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`segment seq must be a safe non-negative integer, got ${seq}`);
  return String(seq).padStart(16, '0') + SEGMENT_SUFFIX;
}

/** The seq of a sealed segment file name, or undefined if `name` is not one. */
export function parseSegmentFileName(name: string): number | undefined {
  const m = /^(\d{16})\.seg$/.exec(name);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

function u64(view: DataView, off: number): number {
  const v = view.getBigUint64(off, false);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(v);
}

function viewOf(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Checks the origin the way the config does (C2SP tlog-checkpoint: one printable line). */
function validOrigin(o: string): boolean {
  return o.length >= 1 && o.length <= 255 && /^[\x21-\x7e][\x20-\x7e]*$/.test(o);
}

/**
 * Encodes a segment header (version SEGMENT_FORMAT_VERSION).
 * @throws RangeError if a field is out of range (origin not printable ASCII 1..255, hash not 32 bytes,
 *   frontier size ≠ firstIndex)
 */
export function encodeHeader(h: Omit<SegmentHeader, 'version'>): Uint8Array {
  if (!validOrigin(h.origin)) throw new RangeError('origin must be 1..255 printable ASCII characters, no leading space');
  if (h.prevCheckpointHash.length !== HASH_SIZE || h.chainPrev.length !== HASH_SIZE) {
    throw new RangeError('prevCheckpointHash and chainPrev must be 32 bytes');
  }
  for (const [k, v] of [['seq', h.seq], ['firstIndex', h.firstIndex], ['createdMs', h.createdMs]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${k} must be a safe non-negative integer, got ${v}`);
  }
  if (h.frontier.size !== h.firstIndex) {
    throw new RangeError(`start frontier covers ${h.frontier.size} entries but firstIndex is ${h.firstIndex}`);
  }
  const fr = h.frontier.toBytes();
  const len = HEADER_FIXED + h.origin.length + fr.length + 4;
  const out = new Uint8Array(len);
  const v = viewOf(out);
  out.set(SEGMENT_MAGIC, 0);
  v.setUint16(8, SEGMENT_FORMAT_VERSION, false);
  v.setUint16(10, len, false);
  v.setBigUint64(12, BigInt(h.seq), false);
  v.setBigUint64(20, BigInt(h.firstIndex), false);
  v.setBigUint64(28, BigInt(h.createdMs), false);
  out.set(h.prevCheckpointHash, 36);
  out.set(h.chainPrev, 68);
  out[100] = h.origin.length;
  for (let i = 0; i < h.origin.length; i++) out[HEADER_FIXED + i] = h.origin.charCodeAt(i);
  out.set(fr, HEADER_FIXED + h.origin.length);
  v.setUint32(len - 4, crc32c(out, 0, len - 4), false);
  return out;
}

/**
 * How many bytes the header at the start of `bytes` needs (from its length field), or 0 when fewer
 * than 12 bytes are available. Checks magic and version first, so an unknown version is named as such.
 * @throws SegmentFormatError header_magic / header_version / header_field
 */
export function headerLength(bytes: Uint8Array): number {
  if (bytes.length < 12) return 0;
  for (let i = 0; i < 8; i++) {
    if (bytes[i] !== SEGMENT_MAGIC[i]) throw new SegmentFormatError('header_magic', 0, 'not a sealtrail segment (bad magic)');
  }
  const v = viewOf(bytes);
  const version = v.getUint16(8, false);
  if (version !== SEGMENT_FORMAT_VERSION) {
    throw new SegmentFormatError('header_version', 8, `segment format version ${version} is not supported (this build reads version ${SEGMENT_FORMAT_VERSION}); upgrade sealtrail`);
  }
  const len = v.getUint16(10, false);
  if (len < HEADER_FIXED + 1 + 8 + 4 || len > MAX_HEADER_BYTES) {
    throw new SegmentFormatError('header_field', 10, `header length ${len} is outside ${HEADER_FIXED + 13}..${MAX_HEADER_BYTES}`);
  }
  return len;
}

/**
 * Decodes and checks the header at the start of `bytes` (magic, version, length, CRC, fields).
 * @throws SegmentFormatError (check header_*, or truncated when `bytes` is too short)
 */
export function decodeHeader(bytes: Uint8Array): { header: SegmentHeader; length: number } {
  const len = headerLength(bytes);
  if (len === 0 || bytes.length < len) {
    throw new SegmentFormatError('truncated', bytes.length, 'file ends inside the segment header');
  }
  const v = viewOf(bytes);
  const crc = v.getUint32(len - 4, false);
  if (crc32c(bytes, 0, len - 4) !== crc) throw new SegmentFormatError('header_crc', len - 4, 'header CRC-32C mismatch');
  const seq = u64(v, 12);
  const firstIndex = u64(v, 20);
  const createdMs = u64(v, 28);
  if (seq < 0 || firstIndex < 0 || createdMs < 0) throw new SegmentFormatError('header_field', 12, 'a 64-bit field exceeds 2^53-1');
  const originLen = bytes[100]!;
  if (originLen === 0 || HEADER_FIXED + originLen + 8 + 4 > len) {
    throw new SegmentFormatError('header_field', 100, `origin length ${originLen} does not fit the ${len}-byte header`);
  }
  const origin = String.fromCharCode(...bytes.subarray(HEADER_FIXED, HEADER_FIXED + originLen));
  if (!validOrigin(origin)) throw new SegmentFormatError('header_field', HEADER_FIXED, 'origin is not printable ASCII');
  const frStart = HEADER_FIXED + originLen;
  let frontier: Frontier;
  try {
    frontier = Frontier.fromBytes(bytes.subarray(frStart, len - 4));
  } catch (e) {
    throw new SegmentFormatError('header_field', frStart, `start frontier: ${(e as Error).message}`);
  }
  if (frontier.size !== firstIndex) {
    throw new SegmentFormatError('header_field', frStart, `start frontier covers ${frontier.size} entries but first index is ${firstIndex}`);
  }
  return {
    header: {
      version: SEGMENT_FORMAT_VERSION,
      seq,
      firstIndex,
      createdMs,
      origin,
      prevCheckpointHash: bytes.slice(36, 68),
      chainPrev: bytes.slice(68, 100),
      frontier,
    },
    length: len,
  };
}

/** Frame size on disk for an entry of `entryLength` bytes. */
export function frameLength(entryLength: number): number {
  return FRAME_OVERHEAD + entryLength;
}

/**
 * Writes the frame of `entry` at `out[offset]` and computes its hashes on the way, without
 * allocating a concatenation: the entry is copied into place, the byte just before it (the last
 * chain byte, not yet written) is set to 0x00 so that `out[offset+39 .. end)` is exactly the
 * RFC 9162 leaf-hash input 0x00 ‖ entry, and the chain value then overwrites that byte.
 * Returns the leaf hash, the new chain value and the bytes written (FRAME_OVERHEAD + entry.length).
 * @throws RangeError if the entry is larger than MAX_ENTRY_BYTES, prevChain is not 32 bytes, or out is too small
 */
export function writeFrame(
  out: Uint8Array,
  offset: number,
  entry: Uint8Array,
  prevChain: Uint8Array,
): { leaf: Uint8Array; chain: Uint8Array; length: number } {
  const n = entry.length;
  if (n > MAX_ENTRY_BYTES) throw new RangeError(`entry of ${n} bytes exceeds the ${MAX_ENTRY_BYTES}-byte frame limit`);
  if (offset + FRAME_OVERHEAD + n > out.length) throw new RangeError('output buffer too small for the frame');
  out.set(entry, offset + 40);
  out[offset + 39] = 0x00;
  const leaf = sha256(out.subarray(offset + 39, offset + 40 + n));
  const chain = chainHash(prevChain, leaf);
  // len, ~len, the chain value (over the 0x00 byte) and the CRC: the same code as the batch path.
  return { leaf, chain, length: finishFrame(out, offset, n, chain) };
}

/**
 * Completes a frame whose entry (`entryLength` bytes) was already copied to `out[offset+40 ..]`:
 * writes len, ~len, the given chain value and the CRC-32C (same bytes as {@link writeFrame}).
 * For batch hashing (src/ledger/native-hash.ts): the ledger places a batch's entries first, hashes
 * them in one native call, then finishes each frame. Returns the frame length.
 * @throws RangeError if the entry is larger than MAX_ENTRY_BYTES, chain is not 32 bytes, or out is too small
 */
export function finishFrame(out: Uint8Array, offset: number, entryLength: number, chain: Uint8Array): number {
  const n = entryLength;
  if (n > MAX_ENTRY_BYTES) throw new RangeError(`entry of ${n} bytes exceeds the ${MAX_ENTRY_BYTES}-byte frame limit`);
  if (chain.length !== HASH_SIZE) throw new RangeError('chain must be 32 bytes');
  if (offset + FRAME_OVERHEAD + n > out.length) throw new RangeError('output buffer too small for the frame');
  // len and ~len, big-endian, written bytewise (no DataView per frame: this is the hot path).
  out[offset] = n >>> 24;
  out[offset + 1] = (n >>> 16) & 0xff;
  out[offset + 2] = (n >>> 8) & 0xff;
  out[offset + 3] = n & 0xff;
  const c = ~n >>> 0;
  out[offset + 4] = c >>> 24;
  out[offset + 5] = (c >>> 16) & 0xff;
  out[offset + 6] = (c >>> 8) & 0xff;
  out[offset + 7] = c & 0xff;
  out.set(chain, offset + 8);
  const crc = crc32c(out, offset, offset + 40 + n);
  out[offset + 40 + n] = crc >>> 24;
  out[offset + 41 + n] = (crc >>> 16) & 0xff;
  out[offset + 42 + n] = (crc >>> 8) & 0xff;
  out[offset + 43 + n] = crc & 0xff;
  return FRAME_OVERHEAD + n;
}

/**
 * Hashes and finishes a batch of frames in place: entry i already sits at
 * `buf[spans[2i], spans[2i+1])` with its frame starting 40 bytes before it (room for len, ~len and
 * chain) and 4 bytes free after it (the CRC). Writes leaf_i and chain_i to `outLeaves`/`outChains`
 * (chain_{-1} = prevChain) and completes every frame exactly as {@link writeFrame} would. One
 * native call per batch when the addon is loaded (leaf, chain and CRC-32C for every frame); the JS
 * fallback computes the same bytes.
 * @throws RangeError if a span does not leave room for its frame, an entry exceeds MAX_ENTRY_BYTES,
 *   prevChain is not 32 bytes or an output is too small
 */
export function finishFrames(buf: Uint8Array, spans: Uint32Array, prevChain: Uint8Array, outLeaves: Uint8Array, outChains: Uint8Array): void {
  if (nativeFrameBatch) {
    nativeFrameBatch(buf, spans, prevChain, outLeaves, outChains); // checks the same bounds itself
    return;
  }
  const n = spans.length >>> 1;
  for (let i = 0; i < n; i++) {
    const s = spans[2 * i]!;
    const e = spans[2 * i + 1]!;
    if (s < 40 || e < s || e + 4 > buf.length) throw new RangeError(`frame ${i} does not fit the buffer`);
    if (e - s > MAX_ENTRY_BYTES) throw new RangeError(`entry of ${e - s} bytes exceeds the ${MAX_ENTRY_BYTES}-byte frame limit`);
  }
  leafChainBatchJs(buf, spans, prevChain, outLeaves, outChains);
  for (let i = 0; i < n; i++) {
    const s = spans[2 * i]!;
    finishFrame(buf, s - 40, spans[2 * i + 1]! - s, outChains.subarray(HASH_SIZE * i, HASH_SIZE * (i + 1)));
  }
}

/** What lies at a frame position, judged from the bytes alone (used by the parser and by recovery). */
export type FrameProbe =
  | { readonly kind: 'frame'; readonly entryLength: number; readonly length: number; readonly crcOk: boolean }
  | { readonly kind: 'trailer' }
  | { readonly kind: 'incomplete'; readonly need: number }
  | { readonly kind: 'bad_length'; readonly detail: string };

/**
 * The error for a frame whose length fields do not agree: `zero_fill` when both are zero — where the
 * open segment's commit writer has written zeros ahead of its commits (native/sealtrail_hash.c,
 * cw_zero_ahead), the end of what is written so far, and damage anywhere else — else `frame_length`.
 */
export function badLengthError(bytes: Uint8Array, offset: number, fileOffset: number, detail: string, where?: { frame: number; index: number }): SegmentFormatError {
  let zero = offset + 8 <= bytes.length;
  for (let i = offset; zero && i < offset + 8; i++) zero = bytes[i] === 0;
  return zero
    ? new SegmentFormatError('zero_fill', fileOffset, 'zero bytes where a frame should start (an open segment ends there in space written ahead; anywhere else they are damage)', where)
    : new SegmentFormatError('frame_length', fileOffset, detail, where);
}

/**
 * Looks at `bytes[offset, end)`: a complete frame (and whether its CRC matches), the trailer
 * marker, too few bytes (`need` = total bytes the structure needs from `offset`), or a length field
 * that is invalid (its complement disagrees or it exceeds MAX_ENTRY_BYTES).
 */
export function probeFrame(bytes: Uint8Array, offset: number, end = bytes.length): FrameProbe {
  if (end - offset < 4) return { kind: 'incomplete', need: 8 };
  const n = ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
  if (n === TRAILER_MARKER) return { kind: 'trailer' };
  if (end - offset < 8) return { kind: 'incomplete', need: 8 };
  const c = ((bytes[offset + 4]! << 24) | (bytes[offset + 5]! << 16) | (bytes[offset + 6]! << 8) | bytes[offset + 7]!) >>> 0;
  if (c !== (~n >>> 0)) return { kind: 'bad_length', detail: `length ${n} and its complement field 0x${c.toString(16).padStart(8, '0')} disagree` };
  if (n > MAX_ENTRY_BYTES) return { kind: 'bad_length', detail: `length ${n} exceeds ${MAX_ENTRY_BYTES}` };
  const total = FRAME_OVERHEAD + n;
  if (end - offset < total) return { kind: 'incomplete', need: total };
  const stored =
    ((bytes[offset + 40 + n]! << 24) | (bytes[offset + 41 + n]! << 16) | (bytes[offset + 42 + n]! << 8) | bytes[offset + 43 + n]!) >>> 0;
  return { kind: 'frame', entryLength: n, length: total, crcOk: crc32c(bytes, offset, offset + 40 + n) === stored };
}


/**
 * Encodes the trailer and the footer for a trailer that starts at file offset `trailerOffset`.
 * @throws RangeError on out-of-range fields
 */
export function encodeTrailer(t: SegmentTrailer, trailerOffset: number): Uint8Array {
  if (t.chainLast.length !== HASH_SIZE) throw new RangeError('chainLast must be 32 bytes');
  if (!Number.isSafeInteger(t.count) || t.count < 0) throw new RangeError('count must be a safe non-negative integer');
  if (t.checkpoint.length > 0xffffffff - 1) throw new RangeError('checkpoint note too large');
  const fr = t.endFrontier.toBytes();
  const tlen = 48 + fr.length + 4 + t.checkpoint.length + 4;
  const out = new Uint8Array(tlen + FOOTER_BYTES);
  const v = viewOf(out);
  v.setUint32(0, TRAILER_MARKER, false);
  out.set(TRAILER_MAGIC, 4);
  v.setBigUint64(8, BigInt(t.count), false);
  out.set(t.chainLast, 16);
  out.set(fr, 48);
  v.setUint32(48 + fr.length, t.checkpoint.length, false);
  out.set(t.checkpoint, 52 + fr.length);
  v.setUint32(tlen - 4, crc32c(out, 0, tlen - 4), false);
  v.setBigUint64(tlen, BigInt(trailerOffset), false);
  v.setUint32(tlen + 8, crc32c(out, tlen, tlen + 8), false);
  out.set(FOOTER_MAGIC, tlen + 12);
  return out;
}

/**
 * Parses a trailer at `bytes[offset..]`. Returns undefined when more bytes are needed, with `need`.
 * @throws SegmentFormatError trailer_field / trailer_crc
 */
export function decodeTrailer(
  bytes: Uint8Array,
  offset: number,
  fileOffset: number,
  where: { frame: number; index: number },
): { trailer: SegmentTrailer; length: number } | { need: number } {
  const avail = bytes.length - offset;
  if (avail < 56) return { need: 56 };
  const v = new DataView(bytes.buffer, bytes.byteOffset + offset, avail);
  for (let i = 0; i < 4; i++) {
    if (bytes[offset + 4 + i] !== TRAILER_MAGIC[i]) throw new SegmentFormatError('trailer_field', fileOffset + 4, 'bad trailer magic (expected "STTR")', where);
  }
  const count = u64(v, 8);
  if (count < 0) throw new SegmentFormatError('trailer_field', fileOffset + 8, 'entry count exceeds 2^53-1', where);
  const frSizeBig = v.getBigUint64(48, false);
  if (frSizeBig > BigInt(Number.MAX_SAFE_INTEGER)) throw new SegmentFormatError('trailer_field', fileOffset + 48, 'end frontier size exceeds 2^53-1', where);
  const frLen = frontierByteLength(Number(frSizeBig));
  if (avail < 48 + frLen + 4) return { need: 48 + frLen + 4 };
  const noteLen = v.getUint32(48 + frLen, false);
  if (noteLen > MAX_ENTRY_BYTES) throw new SegmentFormatError('trailer_field', fileOffset + 48 + frLen, `checkpoint length ${noteLen} is implausible`, where);
  const tlen = 48 + frLen + 4 + noteLen + 4;
  if (avail < tlen) return { need: tlen };
  if (crc32c(bytes, offset, offset + tlen - 4) !== v.getUint32(tlen - 4, false)) {
    throw new SegmentFormatError('trailer_crc', fileOffset, 'trailer CRC-32C mismatch', where);
  }
  const endFrontier = Frontier.fromBytes(bytes.subarray(offset + 48, offset + 48 + frLen));
  return {
    trailer: {
      count,
      chainLast: bytes.slice(offset + 16, offset + 48),
      endFrontier,
      checkpoint: bytes.slice(offset + 52 + frLen, offset + 52 + frLen + noteLen),
    },
    length: tlen,
  };
}

/**
 * Checks a decoded trailer against the frames before it: its count, its chain_last (when `chain`,
 * the last entry's chain value, is given) and its end frontier's size. `offset` = the trailer's file
 * offset. Shared by SegmentParser and the verifier's in-place scanner (src/verify/frame-scan.ts).
 * @throws SegmentFormatError trailer_field
 */
export function checkTrailer(
  tr: SegmentTrailer,
  at: { frames: number; chain: Uint8Array | undefined; firstIndex: number; offset: number },
  where: { frame: number; index: number },
): void {
  if (tr.count !== at.frames) {
    throw new SegmentFormatError('trailer_field', at.offset + 8, `trailer says ${tr.count} entries, the segment has ${at.frames}`, where);
  }
  if (at.chain && !hashEqual(tr.chainLast, at.chain)) {
    throw new SegmentFormatError('trailer_field', at.offset + 16, 'trailer chain_last differs from the last entry chain value', where);
  }
  if (tr.endFrontier.size !== at.firstIndex + tr.count) {
    throw new SegmentFormatError('trailer_field', at.offset + 48, `end frontier covers ${tr.endFrontier.size} entries, expected ${at.firstIndex + tr.count}`, where);
  }
}

/**
 * Checks a 16-byte footer that should point at `trailerOffset`.
 * @throws SegmentFormatError footer
 */
export function checkFooter(footer: Uint8Array, fileOffset: number, trailerOffset: number): void {
  const v = viewOf(footer);
  for (let i = 0; i < 4; i++) {
    if (footer[12 + i] !== FOOTER_MAGIC[i]) throw new SegmentFormatError('footer', fileOffset + 12, 'bad footer magic (expected "STFT")');
  }
  if (crc32c(footer, 0, 8) !== v.getUint32(8, false)) throw new SegmentFormatError('footer', fileOffset + 8, 'footer CRC-32C mismatch');
  const at = v.getBigUint64(0, false);
  if (at !== BigInt(trailerOffset)) {
    throw new SegmentFormatError('footer', fileOffset, `footer points at offset ${at} but the trailer starts at ${trailerOffset}`);
  }
}

/**
 * Reads the footer at the end of a whole sealed segment and returns the trailer offset it names
 * (for tools that seek straight to the checkpoint).
 * @throws SegmentFormatError footer
 */
export function readFooter(file: Uint8Array): number {
  if (file.length < FOOTER_BYTES) throw new SegmentFormatError('footer', 0, 'file is shorter than a footer');
  const off = file.length - FOOTER_BYTES;
  const footer = file.subarray(off);
  const v = viewOf(footer);
  const at = Number(v.getBigUint64(0, false));
  checkFooter(footer, off, at);
  return at;
}

export type SegmentItem =
  | { readonly kind: 'header'; readonly header: SegmentHeader; readonly offset: 0; readonly length: number }
  | {
      readonly kind: 'frame';
      /** 0-based frame number in this segment. */
      readonly frame: number;
      /** Global entry index (header.firstIndex + frame). */
      readonly index: number;
      readonly offset: number;
      readonly length: number;
      readonly entry: Uint8Array;
      readonly chain: Uint8Array;
      /** SHA-256(0x00 ‖ entry), computed for the chain check; append it to a Frontier for the root. */
      readonly leaf: Uint8Array;
    }
  | { readonly kind: 'trailer'; readonly trailer: SegmentTrailer; readonly offset: number; readonly length: number };

/**
 * Streaming segment parser: feed chunks of any size with `push`, get the items that completed.
 * Memory is one frame plus one chunk, whatever the segment size. Checks magic, version, every CRC,
 * length/complement, the stored chain against the recomputed chain, the trailer's count and
 * chain_last, the footer, and that nothing follows the footer. Merkle roots and signatures are the
 * caller's (merkle.ts, checkpoint.ts). When a chunk holds good items and then a failure, `push`
 * returns the good items and the next `push` or `end` throws. After a throw the parser is unusable.
 * Frame items' `entry` and `chain` may alias the pushed chunk: copy them before reusing the chunk.
 */
export class SegmentParser {
  #pending: Uint8Array = new Uint8Array(0);
  #base = 0; // file offset of #pending[0]
  #state: 'header' | 'frames' | 'footer' | 'done' = 'header';
  #header: SegmentHeader | undefined;
  #frame = 0;
  #chain: Uint8Array = ZERO_HASH;
  #trailerOffset = 0;
  #deferred: SegmentFormatError | undefined;
  readonly #checkChain: boolean;
  // Frames of the current push whose leaf hash and chain check are still to be done: they are
  // hashed together at the end of push() in one leafChainBatch call (native-hash.ts: one native
  // call per chunk instead of two crypto.hash calls per frame, ~2.5 µs each mostly call overhead).
  #todo: { item: { leaf: Uint8Array; offset: number }; at: number; start: number; end: number; chainAt: number; where: { frame: number; index: number } }[] = [];
  #todoPrev: Uint8Array = ZERO_HASH;

  constructor(opts: { checkChain?: boolean } = {}) {
    this.#checkChain = opts.checkChain ?? true;
  }

  /** File offset up to which items were returned. */
  get offset(): number {
    return this.#base;
  }

  get header(): SegmentHeader | undefined {
    return this.#header;
  }

  /**
   * Feeds the next chunk; returns the items it completed, in file order.
   * @throws SegmentFormatError with offset, frame, index and check
   */
  push(chunk: Uint8Array): SegmentItem[] {
    if (this.#deferred) throw this.#deferred;
    if (this.#state === 'done' && chunk.length > 0) {
      throw new SegmentFormatError('trailing_bytes', this.#base, 'bytes after the footer');
    }
    let buf: Uint8Array;
    if (this.#pending.length === 0) buf = chunk;
    else {
      buf = new Uint8Array(this.#pending.length + chunk.length);
      buf.set(this.#pending, 0);
      buf.set(chunk, this.#pending.length);
    }
    const items: SegmentItem[] = [];
    let off = 0;
    this.#todo = [];
    for (;;) {
      let consumed: number;
      try {
        consumed = this.#step(buf, off, items);
      } catch (e) {
        // A chain mismatch in an earlier frame of this chunk comes first (as if frames were checked one by one).
        const failure = this.#hashFrames(buf, items) ?? e;
        // Hand out what was good before the failure first; the error comes with the next call.
        if (items.length === 0 || !(failure instanceof SegmentFormatError)) throw failure;
        this.#deferred = failure;
        return items;
      }
      if (consumed === 0) break;
      off += consumed;
      this.#base += consumed;
    }
    const failure = this.#hashFrames(buf, items);
    if (failure) {
      if (items.length === 0) throw failure;
      this.#deferred = failure;
      return items;
    }
    // Keep only the unconsumed rest (a copy, so a big chunk is not pinned by a small remainder).
    this.#pending = off === buf.length ? new Uint8Array(0) : buf.slice(off);
    if (this.#state === 'done' && this.#pending.length > 0) {
      // Deferred like any other failure after good items, so the result does not depend on whether
      // the extra bytes arrived in the same chunk as the footer.
      const e = new SegmentFormatError('trailing_bytes', this.#base, `${this.#pending.length} bytes after the footer`);
      if (items.length === 0) throw e;
      this.#deferred = e;
    }
    return items;
  }

  /**
   * Declares the end of the file.
   * @throws SegmentFormatError truncated / frame_truncated when the segment is incomplete (no trailer or footer)
   */
  end(): void {
    if (this.#deferred) throw this.#deferred;
    if (this.#state === 'done') return;
    const where = this.#header ? { frame: this.#frame, index: this.#header.firstIndex + this.#frame } : {};
    if (this.#state === 'frames' && this.#pending.length > 0) {
      const p = probeFrame(this.#pending, 0);
      if (p.kind === 'incomplete') {
        throw new SegmentFormatError('frame_truncated', this.#base, `file ends inside a frame (${this.#pending.length} of ${p.need} bytes)`, where);
      }
    }
    throw new SegmentFormatError(
      'truncated',
      this.#base + this.#pending.length,
      this.#state === 'header' ? 'file ends inside the header' : 'file ends without a complete trailer and footer (unsealed or cut off)',
      where,
    );
  }

  /** Consumes one structure from buf[off..] if complete; returns bytes consumed (0 = need more). */
  #step(buf: Uint8Array, off: number, items: SegmentItem[]): number {
    const avail = buf.length - off;
    switch (this.#state) {
      case 'header': {
        const rest = buf.subarray(off);
        const len = headerLength(rest);
        if (len === 0 || avail < len) return 0;
        const { header } = decodeHeader(rest.subarray(0, len));
        this.#header = header;
        this.#chain = header.chainPrev;
        this.#state = 'frames';
        items.push({ kind: 'header', header, offset: 0, length: len });
        return len;
      }
      case 'frames': {
        const h = this.#header!;
        const where = { frame: this.#frame, index: h.firstIndex + this.#frame };
        const p = probeFrame(buf, off);
        if (p.kind === 'incomplete') return 0;
        if (p.kind === 'bad_length') throw badLengthError(buf, off, this.#base, p.detail, where);
        if (p.kind === 'trailer') {
          const t = decodeTrailer(buf, off, this.#base, where);
          if ('need' in t) return 0;
          const tr = t.trailer;
          checkTrailer(tr, { frames: this.#frame, chain: this.#checkChain ? this.#chain : undefined, firstIndex: h.firstIndex, offset: this.#base }, where);
          this.#trailerOffset = this.#base;
          this.#state = 'footer';
          items.push({ kind: 'trailer', trailer: tr, offset: this.#base, length: t.length });
          return t.length;
        }
        if (!p.crcOk) throw new SegmentFormatError('frame_crc', this.#base, 'frame CRC-32C mismatch', where);
        const entry = buf.subarray(off + 40, off + 40 + p.entryLength);
        const chain = buf.subarray(off + 8, off + 40);
        // leaf and the chain check are filled in by #hashFrames before push() returns
        const item = { kind: 'frame' as const, frame: this.#frame, index: where.index, offset: this.#base, length: p.length, entry, chain, leaf: ZERO_HASH };
        if (this.#todo.length === 0) this.#todoPrev = this.#chain; // chain before the batch's first frame
        this.#todo.push({ item, at: items.length, start: off + 40, end: off + 40 + p.entryLength, chainAt: off + 8, where });
        this.#chain = chain.slice(); // the chunk may be reused by the caller
        items.push(item);
        this.#frame++;
        return p.length;
      }
      case 'footer': {
        if (avail < FOOTER_BYTES) return 0;
        checkFooter(buf.subarray(off, off + FOOTER_BYTES), this.#base, this.#trailerOffset);
        this.#state = 'done';
        return FOOTER_BYTES;
      }
      case 'done':
        return 0;
    }
  }

  /**
   * Leaf hashes and chain checks of the frames stepped over in this push, in one batch. On the
   * first frame whose stored chain differs from SHA-256(previous chain ‖ leaf) it drops that
   * frame's and every later item and returns the error; computing each chain from the previous
   * computed one finds the same first mismatch as checking each against the previous stored one.
   */
  #hashFrames(buf: Uint8Array, items: SegmentItem[]): SegmentFormatError | undefined {
    const todo = this.#todo;
    this.#todo = [];
    const n = todo.length;
    if (n === 0) return undefined;
    const spans = new Uint32Array(2 * n);
    for (let i = 0; i < n; i++) {
      spans[2 * i] = todo[i]!.start;
      spans[2 * i + 1] = todo[i]!.end;
    }
    const leaves = new Uint8Array(HASH_SIZE * n);
    const chains = new Uint8Array(HASH_SIZE * n);
    leafChainBatch(buf, spans, this.#todoPrev, leaves, chains);
    for (let i = 0; i < n; i++) {
      const t = todo[i]!;
      t.item.leaf = leaves.subarray(HASH_SIZE * i, HASH_SIZE * (i + 1));
      if (this.#checkChain && !hashEqual(chains.subarray(HASH_SIZE * i, HASH_SIZE * (i + 1)), buf.subarray(t.chainAt, t.chainAt + HASH_SIZE))) {
        items.length = t.at;
        this.#base = t.item.offset;
        return new SegmentFormatError('chain', t.item.offset + 8, 'stored chain value differs from SHA-256(previous chain ‖ leaf hash)', t.where);
      }
    }
    return undefined;
  }
}

/**
 * Parses a whole segment held in memory.
 * @throws SegmentFormatError as SegmentParser
 */
export function parseSegment(bytes: Uint8Array, opts: { checkChain?: boolean } = {}): SegmentItem[] {
  const p = new SegmentParser(opts);
  const items = p.push(bytes);
  p.end();
  return items;
}
