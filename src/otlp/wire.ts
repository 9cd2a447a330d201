/**
 * Protocol Buffers wire-format primitives used by the OTLP decoders and encoders
 * (https://protobuf.dev/programming-guides/encoding/). Internal to src/otlp.
 *
 * Readers work on `(buf, pos, end)` and return the new position; values that do not fit the return
 * value are left in module-level registers (`rLen`, `rField`, `rWire`). JavaScript runs this code
 * synchronously on one thread, so the registers cannot be observed half-written; avoiding an object
 * per read keeps the walker allocation-free (STYLE.md habit 7).
 */
import { isUtf8 } from 'node:buffer';
import { nativeAssembleEntries } from '../ledger/native-hash.js';
import { FRAME_HEAD_ROOM, FRAME_TAIL_ROOM, FramedEntries } from '../ledger/types.js';

/**
 * A decode failure travelling up the walker. `path` collects the field path innermost first
 * while the stack unwinds (each container adds its own segment), so the hot path builds no strings.
 */
export class DecodeFailure {
  readonly path: string[] = [];
  /** Set for a refusal of the request as a whole for its decoded size (see DecodeLimits.maxDecodedBytes). */
  tooLarge = false;
  constructor(
    readonly reason: string,
    segment?: string,
  ) {
    if (segment !== undefined && segment !== '') this.path.push(segment);
  }

  /** `resourceLogs[0].scopeLogs[1].logRecords[3].traceId: must be 16 bytes, got 5`. */
  message(): string {
    if (this.path.length === 0 || this.tooLarge) return `request: ${this.reason}`;
    return `${this.path.slice().reverse().join('.')}: ${this.reason}`;
  }
}

/** The decoded-size budget of one request (DecodeLimits.maxDecodedBytes). */
export class DecodeBudget {
  private left: number;
  constructor(
    readonly cap: number,
    /** Where the request's entries are built (see EntryArena); fresh allocations without one. */
    readonly arena?: EntryArena,
  ) {
    this.left = cap;
  }

  /** Spends `n` bytes; refuses the request once the cap is passed, before anything is allocated. */
  take(n: number): void {
    this.left -= n;
    if (this.left < 0) {
      const f = new DecodeFailure(
        `the request would decode into more than ${this.cap} bytes of entries (every record carries a copy of its resource and scope); send fewer records per request`,
      );
      f.tooLarge = true;
      throw f;
    }
  }
}

/** The result for a failure caught at the top of a decoder. */
export function failureResult(e: unknown): { ok: false; message: string; tooLarge?: true } {
  if (e instanceof DecodeFailure) return e.tooLarge ? { ok: false, message: e.message(), tooLarge: true } : { ok: false, message: e.message() };
  // A bug here must not take the receiver down, and must say it is ours, not the client's.
  return { ok: false, message: `request: internal decoder error: ${e instanceof Error ? e.message : String(e)}` };
}

/** Adds `segment` to a DecodeFailure passing through; anything else is rethrown untouched. */
export function addSegment(e: unknown, segment: string): never {
  if (e instanceof DecodeFailure) e.path.push(segment);
  throw e;
}

export const WT_VARINT = 0;
export const WT_I64 = 1;
export const WT_LEN = 2;
export const WT_SGROUP = 3;
export const WT_EGROUP = 4;
export const WT_I32 = 5;

const WIRE_NAMES = ['varint', 'fixed64', 'length-delimited', 'start-group', 'end-group', 'fixed32', 'wire type 6', 'wire type 7'];

/** Registers written by the readers below. */
export let rLen = 0;
export let rField = 0;
export let rWire = 0;

/**
 * Reads a field key (tag). Field numbers are 1..2^29-1 (protobuf encoding guide, "Message
 * Structure"); 0 is never valid, and groups (wire types 3/4, deprecated since proto3) and the
 * unassigned wire types 6/7 are refused rather than skipped: a strict edge parses nothing it cannot
 * vouch for.
 */
export function readTag(b: Uint8Array, pos: number, end: number): number {
  // Fast path, small enough for V8 to inline: a one-byte key (fields 1–15) of wire type 0, 1, 2 or 5.
  const c = b[pos]!;
  if (c < 0x80 && c >= 8 && ((0x27 >> (c & 7)) & 1) === 1) {
    rWire = c & 7;
    rField = c >> 3;
    return pos + 1;
  }
  return readTagSlow(b, pos, end);
}

function readTagSlow(b: Uint8Array, pos: number, end: number): number {
  let c = b[pos]!;
  let v: number;
  if (c < 0x80) {
    v = c;
    pos += 1;
  } else {
    v = c & 0x7f;
    let shift = 7;
    let i = pos + 1;
    for (;;) {
      if (i >= end) throw new DecodeFailure(`truncated field key at byte ${pos}`);
      c = b[i++]!;
      v += (c & 0x7f) * 2 ** shift;
      if (c < 0x80) break;
      shift += 7;
      if (shift > 28) throw new DecodeFailure(`field key at byte ${pos} is longer than 5 bytes`);
    }
    if (v > 0xffffffff) throw new DecodeFailure(`field key at byte ${pos} exceeds 32 bits`);
    pos = i;
  }
  rWire = v & 7;
  rField = Math.floor(v / 8);
  if (rField === 0) throw new DecodeFailure(`field number 0 at byte ${pos - 1} is not valid`);
  if (rWire > 5 || rWire === WT_SGROUP || rWire === WT_EGROUP) {
    throw new DecodeFailure(`field ${rField}: unsupported ${WIRE_NAMES[rWire]} (groups and wire types 6/7 are not accepted)`);
  }
  return pos;
}

/** Skips a varint (at most 10 bytes, the 10th holding only bit 63). */
export function skipVarint(b: Uint8Array, pos: number, end: number): number {
  const start = pos;
  for (let n = 0; n < 10; n++) {
    if (pos >= end) throw new DecodeFailure(`truncated varint at byte ${start}`);
    const c = b[pos++]!;
    if (c < 0x80) {
      if (n === 9 && c > 1) throw new DecodeFailure(`varint at byte ${start} overflows 64 bits`);
      return pos;
    }
  }
  throw new DecodeFailure(`varint at byte ${start} is longer than 10 bytes`);
}

/**
 * Reads the length prefix of a length-delimited field into `rLen` and checks that the payload fits
 * inside the enclosing message; returns the payload's start.
 */
export function readLen(b: Uint8Array, pos: number, end: number): number {
  // Fast paths (inlined): a one-byte length that fits, or a two-byte one (128–16383: records,
  // resources and long strings) that fits. Both give what readLenSlow gives for the same bytes.
  if (pos < end) {
    const c = b[pos]!;
    if (c < 0x80) {
      if (c <= end - pos - 1) {
        rLen = c;
        return pos + 1;
      }
    } else if (pos + 1 < end) {
      const c1 = b[pos + 1]!;
      const v = (c & 0x7f) | (c1 << 7);
      if (c1 < 0x80 && v <= end - pos - 2) {
        rLen = v;
        return pos + 2;
      }
    }
  }
  return readLenSlow(b, pos, end);
}

function readLenSlow(b: Uint8Array, pos: number, end: number): number {
  const start = pos;
  let c = pos < end ? b[pos]! : 0x80;
  if (pos < end && c < 0x80) {
    rLen = c;
    pos += 1;
  } else {
    let v = 0;
    let mul = 1;
    for (let n = 0; ; n++) {
      if (pos >= end) throw new DecodeFailure(`truncated length at byte ${start}`);
      if (n === 5) throw new DecodeFailure(`length at byte ${start} is longer than 5 bytes`);
      c = b[pos++]!;
      v += (c & 0x7f) * mul;
      if (c < 0x80) break;
      mul *= 128;
    }
    rLen = v;
  }
  if (rLen > end - pos) {
    throw new DecodeFailure(`length ${rLen} at byte ${start} runs past the end of its message (${end - pos} bytes left)`);
  }
  return pos;
}

/** Skips the value of a field of an unknown number (kept as received: protobuf forward compatibility). */
export function skipValue(wire: number, b: Uint8Array, pos: number, end: number): number {
  switch (wire) {
    case WT_VARINT:
      return skipVarint(b, pos, end);
    case WT_I64:
      if (end - pos < 8) throw new DecodeFailure(`truncated fixed64 at byte ${pos}`);
      return pos + 8;
    case WT_I32:
      if (end - pos < 4) throw new DecodeFailure(`truncated fixed32 at byte ${pos}`);
      return pos + 4;
    default: {
      const p = readLen(b, pos, end);
      return p + rLen;
    }
  }
}

/** Fails unless a known field arrived with the wire type its declared type requires. */
export function expectWire(name: string, want: number): void {
  if (rWire !== want) wrongWire(name, want);
}

function wrongWire(name: string, want: number): never {
  throw new DecodeFailure(`wrong wire type: field ${rField} needs ${WIRE_NAMES[want]}, got ${WIRE_NAMES[rWire]}`, name);
}

/** Strings this long or longer are checked by node's native (simdutf) validator; shorter ones inline. */
const NATIVE_UTF8_MIN = 256;

/**
 * A DataView over exactly the bytes of `b` (same buffer, offset and length), for the 8-bytes-at-a-time
 * ASCII scan of utf8ErrorAt. Decoders make one per request.
 */
export function viewOf(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Index of the first byte of `b[s..e)` that is not part of well-formed UTF-8 (Unicode 15 table
 * 3-7: no overlongs, no surrogates, nothing above U+10FFFF), or -1 when all is well. proto3
 * `string` fields must hold valid UTF-8 (protobuf language guide, "Scalar Value Types").
 * `dv` is viewOf(b).
 */
export function utf8ErrorAt(b: Uint8Array, dv: DataView, s: number, e: number): number {
  const i = asciiEnd(b, dv, s, e);
  return i === e ? -1 : utf8ErrorFrom(b, dv, s, i, e);
}

/**
 * End of the ASCII run that starts at `s` (the first byte ≥ 0x80, or `e`). Eight bytes per step
 * through the DataView (two little-endian int32 loads, one high-bit test): about 4× the byte loop
 * on 200-byte strings (docs/benchmarks.md "OTLP decode"). Small enough to be inlined.
 */
function asciiEnd(b: Uint8Array, dv: DataView, s: number, e: number): number {
  let i = s;
  for (; i + 8 <= e; i += 8) {
    if (((dv.getInt32(i, true) | dv.getInt32(i + 4, true)) & 0x80808080) !== 0) break;
  }
  while (i < e && b[i]! < 0x80) i++;
  return i;
}

/** utf8ErrorAt for `b[s..e)` whose bytes before `i` are known to be ASCII. */
function utf8ErrorFrom(b: Uint8Array, dv: DataView, s: number, i: number, e: number): number {
  if (e - s >= NATIVE_UTF8_MIN && isUtf8(b.subarray(i, e))) return -1;
  while (i < e) {
    const c = b[i]!;
    if (c < 0x80) {
      // Back to ASCII after a multi-byte character (text with the odd accent or dash).
      i = asciiEnd(b, dv, i, e);
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c === 0xe0) {
      need = 2;
      lo = 0xa0;
    } else if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) need = 2;
    else if (c === 0xed) {
      need = 2;
      hi = 0x9f;
    } else if (c === 0xf0) {
      need = 3;
      lo = 0x90;
    } else if (c >= 0xf1 && c <= 0xf3) need = 3;
    else if (c === 0xf4) {
      need = 3;
      hi = 0x8f;
    } else return i;
    if (i + need >= e) return i; // sequence cut off by the end of the string
    const c1 = b[i + 1]!;
    if (c1 < lo || c1 > hi) return i;
    for (let k = 2; k <= need; k++) {
      const ck = b[i + k]!;
      if (ck < 0x80 || ck > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** Validates a string field's payload, failing with the field name and the offending byte. */
export function checkUtf8(name: string, b: Uint8Array, dv: DataView, s: number, e: number): void {
  const i = asciiEnd(b, dv, s, e);
  if (i !== e) checkUtf8From(name, b, dv, s, i, e);
}

function checkUtf8From(name: string, b: Uint8Array, dv: DataView, s: number, i: number, e: number): void {
  const at = utf8ErrorFrom(b, dv, s, i, e);
  if (at >= 0) {
    throw new DecodeFailure(`invalid UTF-8 at byte ${at - s} of the string (proto3 strings must be UTF-8)`, name);
  }
}

/** Number of bytes of `v` (0 ≤ v < 2^35) as a varint. */
export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  return 5;
}

/** Writes `v` (0 ≤ v < 2^35) as a varint at `pos`; returns the new position. */
export function putVarint(out: Uint8Array, pos: number, v: number): number {
  while (v >= 0x80) {
    out[pos++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  out[pos++] = v;
  return pos;
}

/** A complete length-delimited field: key `(field << 3) | 2`, length, payload. Fields here are < 16. */
export function lenField(field: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + varintSize(payload.length) + payload.length);
  out[0] = (field << 3) | WT_LEN;
  out.set(payload, putVarint(out, 1, payload.length));
  return out;
}

/** Concatenation of byte ranges `[s0, e0, s1, e1, …]` of `b` (used when a singular message field repeats). */
export function concatRanges(b: Uint8Array, ranges: readonly number[]): Uint8Array {
  let n = 0;
  for (let i = 0; i < ranges.length; i += 2) n += ranges[i + 1]! - ranges[i]!;
  const out = new Uint8Array(n);
  let p = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    out.set(b.subarray(ranges[i]!, ranges[i + 1]!), p);
    p += ranges[i + 1]! - ranges[i]!;
  }
  return out;
}

export const EMPTY: Uint8Array = new Uint8Array(0);

/** Bytes of a pooled slab: the most bytes of entries built in one allocation (see EntryAssembler.buildAll). */
export const SLAB_BYTES = 64 * 1024;
const ENTRY_CHUNK = SLAB_BYTES;

/**
 * Slabs of SLAB_BYTES that finished requests left for the next ones: their entries (EntryArena)
 * and, over gRPC, their request messages (src/receiver/grpc-wire.ts). At most POOL_SLABS are kept
 * (8 MiB): a 100-record request holds one slab of entries and one of message, and the receivers
 * let at most `max_concurrent_requests` (default 64) requests in at once.
 */
const freeSlabs: ArrayBuffer[] = [];
const POOL_SLABS = 128;
/**
 * Tests set SEALTRAIL_ARENA_POISON=1 (vitest.config.ts): released slabs (and the HTTP body pool's
 * buffers, src/receiver/body-pool.ts) are overwritten, so entries, messages or bodies read after their
 * release show up as altered bytes instead of passing by luck.
 */
export const POOL_POISON = process.env.SEALTRAIL_ARENA_POISON === '1';

/** A slab of SLAB_BYTES from the pool, or a new one; not zero-filled (its user writes what it reads). */
export function takeSlab(): ArrayBuffer {
  // allocUnsafeSlow: a whole ArrayBuffer of its own (never node's shared pool).
  return freeSlabs.pop() ?? (Buffer.allocUnsafeSlow(SLAB_BYTES).buffer as ArrayBuffer);
}

/** Gives a slab back for the next request; nothing may read or write it afterwards. */
export function giveBackSlab(slab: ArrayBuffer): void {
  if (POOL_POISON) new Uint8Array(slab).fill(0xdb);
  if (freeSlabs.length < POOL_SLABS) freeSlabs.push(slab);
}

/**
 * Memory for the entries of one request, recycled instead of left to the garbage collector.
 *
 * Why: every request's entries (≈ 60 KB per 100 records) used to be a fresh ArrayBuffer. V8 counts
 * those as external memory and answers ≈ 140 MB/s of them with extra scavenges and about two
 * mark-compacts a second, whose pauses were the largest part of the agent's latency tail
 * (docs/benchmarks.md "Where the time goes"). With an arena the entries live in pooled slabs.
 *
 * The contract: the caller creates one arena per request, passes it to the decoder, and calls
 * `release()` only when nothing reads the entries any more — for the receivers, after the
 * ledger's `append` promise settled (the receivers decode into FramedEntries, whose runs the ledger
 * hashes in place and writes as they are; it is done with them when the append resolves, see
 * EntrySink). After `release()` the same memory holds another request's entries.
 */
export class EntryArena {
  #slabs: ArrayBuffer[] = [];
  #used = ENTRY_CHUNK;
  #released = false;

  /**
   * Room for `size` bytes (≤ ENTRY_CHUNK) in this arena's current slab or a new one, as
   * `[buffer, offset]`; `undefined` when `size` is larger than a slab (the caller allocates).
   * @throws Error after release() (a bug: the memory may already hold another request's entries)
   */
  take(size: number): [ArrayBuffer, number] | undefined {
    if (this.#released) throw new Error('EntryArena.take after release()');
    if (size > ENTRY_CHUNK) return undefined;
    if (this.#used + size > ENTRY_CHUNK) {
      // Not zero-filled: the assembler writes every byte it hands out.
      this.#slabs.push(takeSlab());
      this.#used = 0;
    }
    const at = this.#used;
    this.#used += size;
    return [this.#slabs[this.#slabs.length - 1]!, at];
  }

  /** Gives the slabs back for reuse. Idempotent; the arena cannot be used afterwards. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    for (const slab of this.#slabs) giveBackSlab(slab);
    this.#slabs = [];
  }
}

/**
 * Where EntryAssembler puts what it builds: one view per entry, or whole frame runs for the ledger
 * (FramedEntries, src/ledger/types.ts).
 */
export type EntryOut = Uint8Array[] | FramedEntries;

/**
 * Builds entries for the records of one ScopeLogs. The parts that are the same for every record
 * (resource field, scope field, the two schema_url fields) are encoded once by the caller; each
 * entry is then one allocation and a few copies:
 *
 *   ResourceLogs{ resource(1)?, scope_logs(2) = ScopeLogs{ scope(1)?, log_records(2), schema_url(3)? }, schema_url(3)? }
 */
export class EntryAssembler {
  constructor(
    /** `resource` field (key, length, payload) or empty. */
    readonly resourceField: Uint8Array,
    /** ResourceLogs `schema_url` field or empty. */
    readonly rlSchemaField: Uint8Array,
    /** `scope` field or empty. */
    readonly scopeField: Uint8Array,
    /** ScopeLogs `schema_url` field or empty. */
    readonly slSchemaField: Uint8Array,
  ) {}

  /** Size of the entry for a LogRecord of `recLen` bytes. */
  size(recLen: number): number {
    const slLen = this.scopeField.length + 1 + varintSize(recLen) + recLen + this.slSchemaField.length;
    return this.resourceField.length + 1 + varintSize(slLen) + slLen + this.rlSchemaField.length;
  }

  /**
   * Builds the entries of the LogRecords `src[ranges[k]..ranges[k+1])` (k = 0, 2, … < n), `total`
   * bytes in all (the sum of size() over the records, already charged to the budget), in chunks of
   * at most ENTRY_CHUNK bytes — taken from `arena` when given (see EntryArena) — and appends one view
   * per entry to `out`.
   *
   * Per entry that is three copies done natively (resource and scope fields, LogRecord) and a few
   * key/length bytes. From the second entry on, the head of the entry (resource field, ScopeLogs key
   * and length, scope field, LogRecord key) is one copyWithin of the previous entry's head with the
   * ScopeLogs length rewritten in place when its varint has the same size, which saves a native
   * call per entry; copyWithin/set on a plain Uint8Array rather than the Buffer also measured faster
   * (docs/benchmarks.md "OTLP decode").
   * @throws Error if the bytes written do not add up to `total` (a bug, never bad input)
   */
  buildAll(src: Uint8Array, ranges: ArrayLike<number>, n: number, total: number, out: EntryOut, arena?: EntryArena): void {
    // Allocations of at most ENTRY_CHUNK bytes (one or more records' entries each): a larger one
    // gets fresh pages from the kernel every time (malloc's mmap threshold), whose page faults
    // made 512- and 1,000-record requests cost markedly more per record than 100-record ones.
    // Framed (FramedEntries): each entry gets the ledger's frame room around it (see there).
    const room = out instanceof FramedEntries ? FRAME_HEAD_ROOM + FRAME_TAIL_ROOM : 0;
    let written = 0;
    for (let k = 0; k < n; ) {
      let g = k;
      let size = 0;
      while (g < n) {
        const sz = this.size(ranges[g + 1]! - ranges[g]!) + room;
        if (g > k && size + sz > ENTRY_CHUNK) break;
        size += sz;
        g += 2;
      }
      this.buildChunk(src, ranges, k, g, size, out, arena);
      written += size - ((g - k) / 2) * room;
      k = g;
    }
    if (written !== total) throw new Error(`entry sizes disagree (${written} written, ${total} computed)`);
  }

  /**
   * buildAll for the records k0, k0 + 2, … < k1, whose entries take `size` bytes. Framed entries with
   * the ranges in a Uint32Array are built natively when the addon has assembleEntries and agreed
   * with the code below at load (loadNativeAssemble): the same bytes in one call, without a view per
   * record for `set` — those views were 40 % of the agent's allocations under 100-record OTLP/HTTP
   * protobuf load (session 11, docs/benchmarks.md).
   */
  private buildChunk(
    src: Uint8Array,
    ranges: ArrayLike<number>,
    k0: number,
    k1: number,
    size: number,
    out: EntryOut,
    arena: EntryArena | undefined,
  ): void {
    // Memory from the request's arena when there is one, else allocUnsafeSlow (no zero-filling, not
    // the shared pool). Either way every byte is written below, which the check after the loop
    // confirms before any entry leaves this function.
    const slot = arena?.take(size);
    let ab: ArrayBuffer;
    let base: number;
    if (slot) {
      [ab, base] = slot;
    } else {
      const all = Buffer.allocUnsafeSlow(size);
      ab = all.buffer as ArrayBuffer;
      base = all.byteOffset;
    }
    const o = new Uint8Array(ab, base, size);
    const assemble = native.assemble;
    if (assemble !== undefined && out instanceof FramedEntries && ranges instanceof Uint32Array) {
      const spans = new Uint32Array(k1 - k0);
      const used = assemble(o, src, ranges, k0, k1, this.resourceField, this.scopeField, this.slSchemaField, this.rlSchemaField, FRAME_HEAD_ROOM, FRAME_TAIL_ROOM, spans);
      if (used !== size) throw new Error(`entry sizes disagree (${used} written, ${size} computed)`);
      out.add(o, spans);
      return;
    }
    const res = this.resourceField;
    const scope = this.scopeField;
    const slSchema = this.slSchemaField;
    const rlSchema = this.rlSchemaField;
    const resLen = res.length;
    const scopeLen = scope.length;
    const reuseHead = resLen + scopeLen >= 16;
    const framed = out instanceof FramedEntries ? out : undefined;
    const spans = framed ? new Uint32Array(k1 - k0) : undefined;
    let p = 0;
    let prev = -1;
    let prevSlBytes = 0;
    for (let k = k0; k < k1; k += 2) {
      const s = ranges[k]!;
      const e = ranges[k + 1]!;
      const recLen = e - s;
      const slLen = scopeLen + 1 + varintSize(recLen) + recLen + slSchema.length;
      const slBytes = varintSize(slLen);
      if (spans) p += FRAME_HEAD_ROOM;
      const start = p;
      if (prev >= 0 && slBytes === prevSlBytes) {
        // resource ‖ 0x12 ‖ slLen ‖ scope ‖ 0x12 of the previous entry, then this entry's slLen.
        const headEnd = prev + resLen + 1 + slBytes + scopeLen + 1;
        o.copyWithin(p, prev, headEnd);
        putVarint(o, p + resLen + 1, slLen);
        p += headEnd - prev;
      } else {
        if (resLen > 0) {
          o.set(res, p);
          p += resLen;
        }
        o[p++] = (2 << 3) | WT_LEN;
        p = putVarint(o, p, slLen);
        if (scopeLen > 0) {
          o.set(scope, p);
          p += scopeLen;
        }
        o[p++] = (2 << 3) | WT_LEN;
      }
      if (reuseHead) {
        prev = start;
        prevSlBytes = slBytes;
      }
      p = putVarint(o, p, recLen);
      // copyWithin cannot cross buffers; set() needs a view, which costs more than a short loop.
      if (recLen < 64) {
        for (let i = s; i < e; i++) o[p++] = src[i]!;
      } else {
        o.set(src.subarray(s, e), p);
        p += recLen;
      }
      if (slSchema.length > 0) {
        o.set(slSchema, p);
        p += slSchema.length;
      }
      if (rlSchema.length > 0) {
        o.set(rlSchema, p);
        p += rlSchema.length;
      }
      if (spans) {
        spans[k - k0] = start;
        spans[k - k0 + 1] = p;
        p += FRAME_TAIL_ROOM;
      } else (out as Uint8Array[]).push(new Uint8Array(ab, base + start, p - start));
    }
    if (p !== size) throw new Error(`entry sizes disagree (${p} written, ${size} computed)`);
    if (framed) framed.add(o, spans!);
  }
}

/**
 * The addon's assembleEntries, if present, not turned off (SEALTRAIL_NATIVE_OTLP=0, as for the
 * native record check) and in agreement with EntryAssembler's own code on a sample at load: every
 * head field present and absent, records of 0, 1, 127 and 128 bytes (one- and two-byte lengths),
 * ranges not starting at 0. Otherwise undefined and the JS code builds every entry.
 */
function loadNativeAssemble(): typeof nativeAssembleEntries {
  const fn = nativeAssembleEntries;
  if (fn === undefined || process.env.SEALTRAIL_NATIVE_OTLP === '0') return undefined;
  try {
    const src = Uint8Array.from({ length: 400 }, (_, i) => (i * 31 + 7) & 0xff);
    const ranges = Uint32Array.of(3, 3, 10, 11, 20, 147, 150, 278, 300, 400);
    const field = (n: number, len: number): Uint8Array => lenField(n, src.subarray(50, 50 + len));
    for (const [res, rl, scope, sl] of [
      [EMPTY, EMPTY, EMPTY, EMPTY],
      [field(1, 20), field(3, 9), field(1, 130), field(3, 5)],
      [field(1, 140), EMPTY, EMPTY, field(3, 2)],
    ] as const) {
      const asm = new EntryAssembler(res, rl, scope, sl);
      let total = 0;
      for (let k = 0; k < ranges.length; k += 2) total += asm.size(ranges[k + 1]! - ranges[k]!);
      const viaJs = new FramedEntries();
      asm.buildAll(src, [...ranges], ranges.length, total, viaJs);
      const room = FRAME_HEAD_ROOM + FRAME_TAIL_ROOM;
      const o = new Uint8Array(total + (ranges.length / 2) * room);
      const spans = new Uint32Array(ranges.length);
      const used = fn(o, src, ranges, 0, ranges.length, res, scope, sl, rl, FRAME_HEAD_ROOM, FRAME_TAIL_ROOM, spans);
      const js = viaJs.toArray();
      if (used !== o.length || js.length !== spans.length / 2) return undefined;
      for (let i = 0; i < js.length; i++) {
        if (Buffer.compare(js[i]!, o.subarray(spans[2 * i]!, spans[2 * i + 1]!)) !== 0) return undefined;
      }
    }
    return fn;
  } catch {
    return undefined;
  }
}
// Set once the check passed: while loadNativeAssemble runs, buildChunk sees undefined (its JS code).
const native: { assemble: typeof nativeAssembleEntries } = { assemble: undefined };
native.assemble = loadNativeAssemble();

/** True when framed entries are assembled by the addon (tests, the bench report). */
export const nativeEntryAssembly: boolean = native.assemble !== undefined;
