/**
 * Strict decoder for OTLP/protobuf ExportLogsServiceRequest bodies (OTLP specification,
 * "OTLP/HTTP" binary encoding and OTLP/gRPC). A hand-written wire walker: it validates every
 * known field of every message down to the AnyValue leaves and slices the byte ranges of the
 * Resource, InstrumentationScope and LogRecord messages, which go into the entries unchanged.
 * Measured against protobufjs in docs/benchmarks.md ("OTLP decode"); cross-checked against it in
 * test/otlp/crosscheck.test.ts.
 *
 * Field numbers are those of proto/opentelemetry/proto/** (common, resource, logs, collector/logs v1).
 */
import { DEFAULT_MAX_DECODED_BYTES, ENTRY_OVERHEAD_BYTES } from './types.js';
import type { DecodeLimits, DecodeResult } from './types.js';
import { FramedEntries } from '../ledger/types.js';
import { NATIVE_CHECK_MAX_DEPTH, nativeCheckLogRecords } from '../ledger/native-hash.js';
import {
  DecodeBudget,
  DecodeFailure,
  EMPTY,
  EntryAssembler,
  type EntryOut,
  type EntryArena,
  WT_I32,
  WT_I64,
  WT_LEN,
  WT_VARINT,
  addSegment,
  checkUtf8,
  concatRanges,
  expectWire,
  failureResult,
  lenField,
  nativeEntryAssembly,
  rField,
  rLen,
  rWire,
  readLen,
  readTag,
  skipValue,
  skipVarint,
  viewOf,
} from './wire.js';

/**
 * Decodes an OTLP/protobuf `ExportLogsServiceRequest` into entries, one per LogRecord.
 * Never throws on bad input: malformed wire data, a trace_id that is not 0 or 16 bytes, a span_id
 * not 0 or 8 bytes, invalid UTF-8 in a string field or AnyValue nesting deeper than
 * `limits.maxNestingDepth` give `{ ok: false, message }` naming the field path.
 * An empty body is a valid empty request.
 * With `arena`, the entries are built in its pooled memory (EntryArena) and stay valid only until
 * `arena.release()`; without one each chunk of entries is a fresh allocation. With `framed`, the
 * same bytes are returned as ledger frame runs (FramedEntries, src/ledger/types.ts) instead of one
 * view per entry: the receivers hand those to the ledger, which writes them without a copy.
 */
export function decodeLogsProtobuf(body: Uint8Array, limits: DecodeLimits, arena: EntryArena | undefined, framed: true): DecodeResult<FramedEntries>;
export function decodeLogsProtobuf(body: Uint8Array, limits: DecodeLimits, arena?: EntryArena): DecodeResult;
export function decodeLogsProtobuf(body: Uint8Array, limits: DecodeLimits, arena?: EntryArena, framed?: true): DecodeResult<EntryOut> {
  try {
    const entries: EntryOut = framed ? new FramedEntries() : [];
    // A plain Uint8Array view: Buffer's subarray() is markedly slower than Uint8Array's.
    const b = Buffer.isBuffer(body) ? new Uint8Array(body.buffer, body.byteOffset, body.byteLength) : body;
    budget = new DecodeBudget(limits.maxDecodedBytes ?? DEFAULT_MAX_DECODED_BYTES, arena);
    dv = viewOf(b);
    walkRequest(b, limits.maxNestingDepth, entries);
    return { ok: true, entries };
  } catch (e) {
    return failureResult(e);
  } finally {
    // Do not keep the request's bytes (or its arena) reachable until the next request.
    dv = NO_BODY;
    budget = NO_BUDGET;
  }
}

/** Budget of the request being decoded (decoding is synchronous: one request at a time). */
const NO_BUDGET = new DecodeBudget(DEFAULT_MAX_DECODED_BYTES);
let budget = NO_BUDGET;
const NO_BODY = viewOf(EMPTY);
/** viewOf(body) of the request being decoded, for the UTF-8 checks. */
let dv = NO_BODY;
/**
 * Record ranges `[start, end, …]` of the ScopeLogs being decoded, reused across ScopeLogs and
 * requests (walkScopeLogs never nests) so that finding records allocates nothing.
 */
let recs: number[] = [];

function walkRequest(b: Uint8Array, maxDepth: number, out: EntryOut): void {
  const end = b.length;
  let pos = 0;
  let i = 0;
  while (pos < end) {
    pos = readTag(b, pos, end);
    if (rField === 1) {
      expectWire('resourceLogs', WT_LEN);
      pos = readLen(b, pos, end);
      const e = pos + rLen;
      try {
        walkResourceLogs(b, pos, e, maxDepth, out);
      } catch (err) {
        addSegment(err, `resourceLogs[${i}]`);
      }
      i++;
      pos = e;
    } else {
      pos = skipValue(rWire, b, pos, end);
    }
  }
}

function walkResourceLogs(b: Uint8Array, pos: number, end: number, maxDepth: number, out: EntryOut): void {
  const resource: number[] = [];
  const scopeLogs: number[] = [];
  let schemaS = 0;
  let schemaE = 0;
  while (pos < end) {
    pos = readTag(b, pos, end);
    switch (rField) {
      case 1: {
        expectWire('resource', WT_LEN);
        pos = readLen(b, pos, end);
        const e = pos + rLen;
        try {
          walkResource(b, pos, e, maxDepth);
        } catch (err) {
          addSegment(err, 'resource');
        }
        resource.push(pos, e);
        pos = e;
        break;
      }
      case 2:
        expectWire('scopeLogs', WT_LEN);
        pos = readLen(b, pos, end);
        scopeLogs.push(pos, pos + rLen);
        pos += rLen;
        break;
      case 3:
        expectWire('schemaUrl', WT_LEN);
        pos = readLen(b, pos, end);
        checkUtf8('schemaUrl', b, dv, pos, pos + rLen);
        // A repeated singular scalar: the last one wins (protobuf encoding guide, "Last One Wins").
        schemaS = pos;
        schemaE = pos += rLen;
        break;
      default:
        pos = skipValue(rWire, b, pos, end);
    }
  }
  // A singular message field that occurs more than once is merged; for the encoding that is the
  // concatenation of the occurrences (protobuf encoding guide, "Last One Wins" for messages).
  const resourceField =
    resource.length === 0 ? EMPTY : lenField(1, resource.length === 2 ? b.subarray(resource[0], resource[1]) : concatRanges(b, resource));
  const rlSchemaField = schemaE > schemaS ? lenField(3, b.subarray(schemaS, schemaE)) : EMPTY;
  for (let k = 0; k < scopeLogs.length; k += 2) {
    try {
      walkScopeLogs(b, scopeLogs[k]!, scopeLogs[k + 1]!, maxDepth, resourceField, rlSchemaField, out);
    } catch (err) {
      addSegment(err, `scopeLogs[${k / 2}]`);
    }
  }
}

function walkScopeLogs(
  b: Uint8Array,
  pos: number,
  end: number,
  maxDepth: number,
  resourceField: Uint8Array,
  rlSchemaField: Uint8Array,
  out: EntryOut,
): void {
  const scope: number[] = [];
  const records = recs;
  let n = 0;
  const perEntry = resourceField.length + rlSchemaField.length + ENTRY_OVERHEAD_BYTES;
  let charged = 0;
  let schemaS = 0;
  let schemaE = 0;
  while (pos < end) {
    pos = readTag(b, pos, end);
    switch (rField) {
      case 1: {
        expectWire('scope', WT_LEN);
        pos = readLen(b, pos, end);
        const e = pos + rLen;
        try {
          walkScope(b, pos, e, maxDepth);
        } catch (err) {
          addSegment(err, 'scope');
        }
        scope.push(pos, e);
        pos = e;
        break;
      }
      case 2:
        expectWire('logRecords', WT_LEN);
        pos = readLen(b, pos, end);
        // Charged as the records are found, so that a flood of tiny records is refused before
        // even the list of their ranges grows large; scope and schema URL are charged below.
        budget.take(rLen + perEntry);
        charged += rLen + perEntry;
        records[n++] = pos;
        records[n++] = pos += rLen;
        break;
      case 3:
        expectWire('schemaUrl', WT_LEN);
        pos = readLen(b, pos, end);
        checkUtf8('schemaUrl', b, dv, pos, pos + rLen);
        schemaS = pos;
        schemaE = pos += rLen;
        break;
      default:
        pos = skipValue(rWire, b, pos, end);
    }
  }
  const asm = new EntryAssembler(
    resourceField,
    rlSchemaField,
    scope.length === 0 ? EMPTY : lenField(1, scope.length === 2 ? b.subarray(scope[0], scope[1]) : concatRanges(b, scope)),
    schemaE > schemaS ? lenField(3, b.subarray(schemaS, schemaE)) : EMPTY,
  );
  // The ranges as a Uint32Array for the addon's record check and entry assembly (buildAll).
  const ranges = n > 0 && (nativeCheck !== undefined || nativeEntryAssembly) ? copyRanges(records, n) : records;
  // Records before `from` are known to be ones walkLogRecord accepts (native record check, below);
  // the JS walker checks the rest, and gives a refusal its message.
  const from = nativeCheck !== undefined && n > 0 && Number.isInteger(maxDepth) && maxDepth >= 0 && maxDepth <= NATIVE_CHECK_MAX_DEPTH
    ? firstUnchecked(nativeCheck, b, ranges as Uint32Array, n, maxDepth)
    : 0;
  let total = 0;
  for (let k = 0; k < n; k += 2) {
    const s = records[k]!;
    const e = records[k + 1]!;
    if (k >= from) {
      try {
        walkLogRecord(b, s, e, maxDepth);
      } catch (err) {
        addSegment(err, `logRecords[${k / 2}]`);
      }
    }
    total += asm.size(e - s);
  }
  // The rest of the exact cost: scope, schema URL, keys and lengths of each entry.
  budget.take(total + (ENTRY_OVERHEAD_BYTES * n) / 2 - charged);
  // One allocation for all entries of this ScopeLogs; each entry is a view of its own range.
  // Allocating per entry cost a third of the decode time (measured, docs/benchmarks.md).
  asm.buildAll(b, ranges, n, total, out, budget.arena);
  // Do not keep huge scratch lists alive after a huge request.
  if (records.length > 1 << 17) recs = [];
  if (nativeRanges.length > 1 << 17) nativeRanges = new Uint32Array(512);
}

/*
 * Native record check. Walking the LogRecords was most of the decoder's time (≈ 13 % of the agent's
 * busy time; docs/benchmarks.md "LogRecords checked in C"); the addon does the same checks in C
 * (native/otlp_check.h) in one call per ScopeLogs. It only says whether every record is one
 * walkLogRecord accepts, and if not, which is the first that may not be: from there on the JS
 * walker runs as before and produces the refusal with its field path and message. So the JS walker
 * remains the reference for every answer, and a native check that were stricter than it would only
 * cost time. Used only after agreeing with walkLogRecord on the records of selfCheckRecords() at
 * load; SEALTRAIL_NATIVE_OTLP=0 turns it off. test/otlp/native-check.test.ts compares the two on
 * generated records, and the decoder suites run with it on.
 */
type RecordCheck = NonNullable<typeof nativeCheckLogRecords>;

/** Scratch copy of the record ranges for the native call, reused (grown when a ScopeLogs has more). */
let nativeRanges = new Uint32Array(512);

/** records[0..n) in the scratch Uint32Array for the native call (grown when needed; valid until the next ScopeLogs). */
function copyRanges(records: readonly number[], n: number): Uint32Array {
  if (nativeRanges.length < n) nativeRanges = new Uint32Array(Math.max(n, 2 * nativeRanges.length));
  const r = nativeRanges;
  for (let k = 0; k < n; k++) r[k] = records[k]!;
  return r;
}

/** Index k (even) of the first record the JS walker must check: n when the native check passed all. */
function firstUnchecked(check: RecordCheck, b: Uint8Array, ranges: Uint32Array, n: number, maxDepth: number): number {
  const bad = check(b, ranges, n, maxDepth);
  return bad < 0 ? n : bad;
}

/** The JS walker's verdict on one LogRecord, b[s, e): undefined when valid, else the refusal. */
export function logRecordRefusal(b: Uint8Array, s: number, e: number, maxDepth: number): string | undefined {
  const saved = dv;
  dv = viewOf(b);
  try {
    walkLogRecord(b, s, e, maxDepth);
    return undefined;
  } catch (err) {
    if (err instanceof DecodeFailure) return err.message();
    throw err;
  } finally {
    dv = saved;
  }
}

/**
 * LogRecords for the load-time agreement check, each `[bytes, maxDepth]`: a full valid record, and
 * one for each kind of fault the walker refuses (every rule of native/otlp_check.h is used once).
 */
export function selfCheckRecords(): [Uint8Array, number][] {
  const ld = (field: number, payload: number[]): number[] => [(field << 3) | 2, payload.length, ...payload];
  const str = (t: string): number[] => [...Buffer.from(t, 'utf8')];
  const kv = (k: string, value: number[]): number[] => [...ld(1, str(k)), ...ld(2, value)];
  const valid = [
    0x09, 1, 2, 3, 4, 5, 6, 7, 8, // time_unix_nano
    0x59, 1, 2, 3, 4, 5, 6, 7, 8, // observed_time_unix_nano
    0x10, 9, // severity_number
    ...ld(3, str('INFO')),
    ...ld(5, ld(1, str('héllo wörld — ✓ 𝄞 and then a longer ASCII tail'))), // body: string_value
    ...ld(6, kv('i', [0x18, 0xff, 0xff, 0x03])), // int_value
    ...ld(6, kv('d', [0x21, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f])), // double_value
    ...ld(6, kv('a', ld(5, [...ld(1, [0x10, 1]), ...ld(1, ld(7, [0xff, 0]))]))), // array of bool, bytes
    ...ld(6, kv('m', ld(6, ld(1, kv('x', ld(1, str('y'))))))), // kvlist
    0x38, 0, // dropped_attributes_count
    0x45, 1, 0, 0, 0, // flags
    ...ld(9, new Array<number>(16).fill(0xab)),
    ...ld(10, new Array<number>(8).fill(0xcd)),
    ...ld(12, str('event')),
    0xf8, 0x07, 0x01, // field 127, varint: unknown, skipped
    0x8a, 0x81, 0x00, 0x00, // a non-minimal (three-byte) key of field 17, length-delimited, unknown: skipped
  ];
  const cases: [number[], number][] = [
    [valid, 32],
    [[], 32],
    [ld(5, ld(1, [0x68, 0xc0, 0x80])), 32], // overlong UTF-8
    [ld(5, ld(1, [0xed, 0xa0, 0x80])), 32], // surrogate
    [ld(3, [0xf4, 0x90, 0x80, 0x80]), 32], // above U+10FFFF
    [ld(12, [0xe2, 0x82]), 32], // cut off
    [ld(9, [1, 2, 3, 4, 5]), 32], // trace_id length
    [ld(10, [1, 2, 3]), 32], // span_id length
    [[0x28, 0x01], 32], // body as a varint
    [[0x09, 1, 2, 3], 32], // fixed64 cut short
    [[0x45, 1, 2], 32], // fixed32 cut short
    [[0x0b], 32], // a group
    [[0x06, 0], 32], // field 0
    [[0xf8, 0xff, 0xff, 0xff, 0x10, 0x01], 32], // a five-byte key above 2^32 (a varint field if cut to 32 bits)
    [[0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], 32], // varint beyond 64 bits
    [[0x32, 0x05, 0x0a], 32], // length past the end
    [ld(6, kv('n', ld(5, ld(1, ld(5, ld(1, [])))))), 2], // nesting: an (empty) AnyValue at depth 3, limit 2
    [ld(6, kv('n', ld(5, ld(1, ld(5, ld(1, [])))))), 3], // the same within the limit
    [ld(6, ld(1, [0x80])), 32], // key not UTF-8
  ];
  return cases.map(([bytes, depth]) => [Uint8Array.from(bytes), depth]);
}

/** The addon's check, if present, not turned off, and in agreement with walkLogRecord on selfCheckRecords(). */
function loadRecordCheck(): RecordCheck | undefined {
  const check = nativeCheckLogRecords;
  if (check === undefined || process.env.SEALTRAIL_NATIVE_OTLP === '0') return undefined;
  try {
    for (const [rec, depth] of selfCheckRecords()) {
      const valid = check(rec, Uint32Array.of(0, rec.length), 2, depth) < 0;
      if (valid !== (logRecordRefusal(rec, 0, rec.length, depth) === undefined)) return undefined;
    }
    return check;
  } catch {
    return undefined;
  }
}

/*
 * Fast dispatch. The hot walkers (LogRecord, KeyValue, AnyValue) first switch on the field's key
 * byte, which for the fields of a well-formed request is one byte holding both the field number
 * and the wire type its declared type needs (protobuf encoding guide, "Message Structure"). A
 * matching key byte is handled on the spot with exactly the checks and error messages of the
 * general path; anything else (multi-byte keys, wrong wire types, unknown fields, a fixed-width
 * value cut short) falls through to the general path, readTag + switch on the field number, which
 * is the reference behaviour. test/otlp/fastpath.test.ts checks the two agree on every input.
 */

function walkLogRecord(b: Uint8Array, pos: number, end: number, maxDepth: number): void {
  let attr = 0;
  while (pos < end) {
    switch (b[pos]!) {
      case 0x09: // 1 time_unix_nano, fixed64
      case 0x59: // 11 observed_time_unix_nano, fixed64
        if (end - pos > 8) {
          pos += 9;
          continue;
        }
        break;
      case 0x10: // 2 severity_number, varint
      case 0x38: // 7 dropped_attributes_count, varint
        pos = skipVarint(b, pos + 1, end);
        continue;
      case 0x1a: // 3 severity_text
        pos = readLen(b, pos + 1, end);
        checkUtf8('severityText', b, dv, pos, pos + rLen);
        pos += rLen;
        continue;
      case 0x2a: {
        // 5 body
        pos = readLen(b, pos + 1, end);
        const e = pos + rLen;
        try {
          walkAnyValue(b, pos, e, 1, maxDepth);
        } catch (err) {
          addSegment(err, 'body');
        }
        pos = e;
        continue;
      }
      case 0x32: {
        // 6 attributes
        pos = readLen(b, pos + 1, end);
        const e = pos + rLen;
        try {
          walkKeyValue(b, pos, e, 1, maxDepth);
        } catch (err) {
          addSegment(err, `attributes[${attr}]`);
        }
        attr++;
        pos = e;
        continue;
      }
      case 0x45: // 8 flags, fixed32
        if (end - pos > 4) {
          pos += 5;
          continue;
        }
        break;
      case 0x4a: // 9 trace_id
        pos = readLen(b, pos + 1, end);
        if (rLen !== 0 && rLen !== 16) throw new DecodeFailure(`must be 16 bytes (or empty), got ${rLen}`, 'traceId');
        pos += rLen;
        continue;
      case 0x52: // 10 span_id
        pos = readLen(b, pos + 1, end);
        if (rLen !== 0 && rLen !== 8) throw new DecodeFailure(`must be 8 bytes (or empty), got ${rLen}`, 'spanId');
        pos += rLen;
        continue;
      case 0x62: // 12 event_name
        pos = readLen(b, pos + 1, end);
        checkUtf8('eventName', b, dv, pos, pos + rLen);
        pos += rLen;
        continue;
    }
    pos = readTag(b, pos, end);
    if (rField === 6) {
      expectWire('attributes', WT_LEN);
      pos = readLen(b, pos, end);
      const e = pos + rLen;
      try {
        walkKeyValue(b, pos, e, 1, maxDepth);
      } catch (err) {
        addSegment(err, `attributes[${attr}]`);
      }
      attr++;
      pos = e;
    } else {
      pos = logRecordField(b, pos, end, maxDepth);
    }
  }
}

/**
 * General path: the value of one LogRecord field other than attributes, whose key readTag has just
 * read (rField, rWire) and which starts at `pos`; returns the position after it.
 */
function logRecordField(b: Uint8Array, pos: number, end: number, maxDepth: number): number {
  switch (rField) {
    case 1: // time_unix_nano
    case 11: // observed_time_unix_nano
      expectWire(rField === 1 ? 'timeUnixNano' : 'observedTimeUnixNano', WT_I64);
      return skipValue(WT_I64, b, pos, end);
    case 2: // severity_number: an open enum in proto3, unknown values are kept as received
      expectWire('severityNumber', WT_VARINT);
      return skipVarint(b, pos, end);
    case 3:
      expectWire('severityText', WT_LEN);
      pos = readLen(b, pos, end);
      checkUtf8('severityText', b, dv, pos, pos + rLen);
      return pos + rLen;
    case 5: {
      expectWire('body', WT_LEN);
      pos = readLen(b, pos, end);
      const e = pos + rLen;
      try {
        walkAnyValue(b, pos, e, 1, maxDepth);
      } catch (err) {
        addSegment(err, 'body');
      }
      return e;
    }
    case 7:
      expectWire('droppedAttributesCount', WT_VARINT);
      return skipVarint(b, pos, end);
    case 8:
      expectWire('flags', WT_I32);
      return skipValue(WT_I32, b, pos, end);
    case 9:
      expectWire('traceId', WT_LEN);
      pos = readLen(b, pos, end);
      // OTLP: an all-absent (empty) id means "no trace"; otherwise exactly 16 bytes.
      if (rLen !== 0 && rLen !== 16) throw new DecodeFailure(`must be 16 bytes (or empty), got ${rLen}`, 'traceId');
      return pos + rLen;
    case 10:
      expectWire('spanId', WT_LEN);
      pos = readLen(b, pos, end);
      if (rLen !== 0 && rLen !== 8) throw new DecodeFailure(`must be 8 bytes (or empty), got ${rLen}`, 'spanId');
      return pos + rLen;
    case 12:
      expectWire('eventName', WT_LEN);
      pos = readLen(b, pos, end);
      checkUtf8('eventName', b, dv, pos, pos + rLen);
      return pos + rLen;
    default:
      return skipValue(rWire, b, pos, end);
  }
}

function walkResource(b: Uint8Array, pos: number, end: number, maxDepth: number): void {
  let attr = 0;
  let ref = 0;
  while (pos < end) {
    pos = readTag(b, pos, end);
    switch (rField) {
      case 1: {
        expectWire('attributes', WT_LEN);
        pos = readLen(b, pos, end);
        const e = pos + rLen;
        try {
          walkKeyValue(b, pos, e, 1, maxDepth);
        } catch (err) {
          addSegment(err, `attributes[${attr}]`);
        }
        attr++;
        pos = e;
        break;
      }
      case 2:
        expectWire('droppedAttributesCount', WT_VARINT);
        pos = skipVarint(b, pos, end);
        break;
      case 3: {
        expectWire('entityRefs', WT_LEN);
        pos = readLen(b, pos, end);
        const e = pos + rLen;
        try {
          walkEntityRef(b, pos, e);
        } catch (err) {
          addSegment(err, `entityRefs[${ref}]`);
        }
        ref++;
        pos = e;
        break;
      }
      default:
        pos = skipValue(rWire, b, pos, end);
    }
  }
}

function walkEntityRef(b: Uint8Array, pos: number, end: number): void {
  let ids = 0;
  let descs = 0;
  while (pos < end) {
    pos = readTag(b, pos, end);
    const f = rField;
    if (f >= 1 && f <= 4) {
      const name = f === 1 ? 'schemaUrl' : f === 2 ? 'type' : f === 3 ? `idKeys[${ids++}]` : `descriptionKeys[${descs++}]`;
      expectWire(name, WT_LEN);
      pos = readLen(b, pos, end);
      checkUtf8(name, b, dv, pos, pos + rLen);
      pos += rLen;
    } else {
      pos = skipValue(rWire, b, pos, end);
    }
  }
}

function walkScope(b: Uint8Array, pos: number, end: number, maxDepth: number): void {
  let attr = 0;
  while (pos < end) {
    pos = readTag(b, pos, end);
    switch (rField) {
      case 1:
      case 2: {
        const name = rField === 1 ? 'name' : 'version';
        expectWire(name, WT_LEN);
        pos = readLen(b, pos, end);
        checkUtf8(name, b, dv, pos, pos + rLen);
        pos += rLen;
        break;
      }
      case 3: {
        expectWire('attributes', WT_LEN);
        pos = readLen(b, pos, end);
        const e = pos + rLen;
        try {
          walkKeyValue(b, pos, e, 1, maxDepth);
        } catch (err) {
          addSegment(err, `attributes[${attr}]`);
        }
        attr++;
        pos = e;
        break;
      }
      case 4:
        expectWire('droppedAttributesCount', WT_VARINT);
        pos = skipVarint(b, pos, end);
        break;
      default:
        pos = skipValue(rWire, b, pos, end);
    }
  }
}

/** `depth` is the nesting depth its value will have: 1 for a body or attribute value. */
function walkKeyValue(b: Uint8Array, pos: number, end: number, depth: number, maxDepth: number): void {
  while (pos < end) {
    const t = b[pos]!;
    if (t === 0x0a) {
      // 1 key (fast dispatch, see above)
      pos = readLen(b, pos + 1, end);
      checkUtf8('key', b, dv, pos, pos + rLen);
      pos += rLen;
      continue;
    }
    if (t === 0x12) {
      // 2 value
      pos = readLen(b, pos + 1, end);
      const e = pos + rLen;
      try {
        walkAnyValue(b, pos, e, depth, maxDepth);
      } catch (err) {
        addSegment(err, 'value');
      }
      pos = e;
      continue;
    }
    pos = readTag(b, pos, end);
    if (rField === 1) {
      expectWire('key', WT_LEN);
      pos = readLen(b, pos, end);
      checkUtf8('key', b, dv, pos, pos + rLen);
      pos += rLen;
    } else if (rField === 2) {
      expectWire('value', WT_LEN);
      pos = readLen(b, pos, end);
      const e = pos + rLen;
      try {
        walkAnyValue(b, pos, e, depth, maxDepth);
      } catch (err) {
        addSegment(err, 'value');
      }
      pos = e;
    } else {
      pos = skipValue(rWire, b, pos, end);
    }
  }
}

/**
 * Validates one AnyValue. Depth counts AnyValue messages from the outermost (body or attribute
 * value, depth 1) inwards; more than `maxDepth` is refused before descending, so recursion is
 * bounded by the configured limit whatever the input. The scalar members are handled here (small
 * enough to be inlined into its callers); arrays, key-value lists and everything unusual go to
 * anyValueField.
 */
function walkAnyValue(b: Uint8Array, pos: number, end: number, depth: number, maxDepth: number): void {
  if (depth > maxDepth) {
    throw new DecodeFailure(
      `AnyValue nesting deeper than ${maxDepth} levels (limit receivers.otlp.max_nesting_depth)`,
    );
  }
  while (pos < end) {
    const t = b[pos]!;
    if (t === 0x0a) {
      // 1 string_value
      pos = readLen(b, pos + 1, end);
      checkUtf8('stringValue', b, dv, pos, pos + rLen);
      pos += rLen;
    } else if (t === 0x18 || t === 0x10) {
      // 3 int_value, 2 bool_value
      pos = skipVarint(b, pos + 1, end);
    } else if (t === 0x21 && end - pos > 8) {
      // 4 double_value
      pos += 9;
    } else {
      pos = anyValueField(b, pos, end, depth, maxDepth);
    }
  }
}

/** General path: one AnyValue field at `pos` (its key included); returns the position after it. */
function anyValueField(b: Uint8Array, pos: number, end: number, depth: number, maxDepth: number): number {
  pos = readTag(b, pos, end);
  switch (rField) {
    case 1:
      expectWire('stringValue', WT_LEN);
      pos = readLen(b, pos, end);
      checkUtf8('stringValue', b, dv, pos, pos + rLen);
      return pos + rLen;
    case 2:
    case 3:
      expectWire(rField === 2 ? 'boolValue' : 'intValue', WT_VARINT);
      return skipVarint(b, pos, end);
    case 4:
      expectWire('doubleValue', WT_I64);
      return skipValue(WT_I64, b, pos, end);
    case 5: {
      expectWire('arrayValue', WT_LEN);
      pos = readLen(b, pos, end);
      const e = pos + rLen;
      try {
        walkArrayValue(b, pos, e, depth + 1, maxDepth);
      } catch (err) {
        addSegment(err, 'arrayValue');
      }
      return e;
    }
    case 6: {
      expectWire('kvlistValue', WT_LEN);
      pos = readLen(b, pos, end);
      const e = pos + rLen;
      try {
        walkKeyValueList(b, pos, e, depth + 1, maxDepth);
      } catch (err) {
        addSegment(err, 'kvlistValue');
      }
      return e;
    }
    case 7:
      expectWire('bytesValue', WT_LEN);
      pos = readLen(b, pos, end);
      return pos + rLen;
    default:
      return skipValue(rWire, b, pos, end);
  }
}

function walkArrayValue(b: Uint8Array, pos: number, end: number, depth: number, maxDepth: number): void {
  let i = 0;
  while (pos < end) {
    pos = readTag(b, pos, end);
    if (rField === 1) {
      expectWire('values', WT_LEN);
      pos = readLen(b, pos, end);
      const e = pos + rLen;
      try {
        walkAnyValue(b, pos, e, depth, maxDepth);
      } catch (err) {
        addSegment(err, `values[${i}]`);
      }
      i++;
      pos = e;
    } else {
      pos = skipValue(rWire, b, pos, end);
    }
  }
}

function walkKeyValueList(b: Uint8Array, pos: number, end: number, depth: number, maxDepth: number): void {
  let i = 0;
  while (pos < end) {
    pos = readTag(b, pos, end);
    if (rField === 1) {
      expectWire('values', WT_LEN);
      pos = readLen(b, pos, end);
      const e = pos + rLen;
      try {
        walkKeyValue(b, pos, e, depth, maxDepth);
      } catch (err) {
        addSegment(err, `values[${i}]`);
      }
      i++;
      pos = e;
    } else {
      pos = skipValue(rWire, b, pos, end);
    }
  }
}

// Last in the module: the check runs the walkers above, which must all be initialised.
const nativeCheck = loadRecordCheck();

/** True when the decoder uses the native record check (addon present, agreed at load, not turned off). */
export const nativeRecordCheck: boolean = nativeCheck !== undefined;
