/**
 * Strict decoder for OTLP/JSON ExportLogsServiceRequest bodies (OTLP specification, "JSON Protobuf
 * Encoding"): the proto3 JSON mapping with OTLP's deviations — lowerCamelCase keys only, trace and
 * span ids as hex strings (not base64), enums as integers. Each parsed Resource, scope and LogRecord
 * is re-encoded to protobuf by a deterministic hand-written encoder (field-number order, proto3
 * defaults omitted, oneof members always written) and wrapped into entries exactly as on the
 * protobuf path. The entry bytes of a record sent as JSON equal those of the same record sent as
 * protobuf only when the protobuf sender also wrote field-number order without explicit defaults;
 * the OTel JS SDK's protobuf serializer, for one, writes zero counts explicitly, and protobuf
 * entries keep the bytes as received. Both are valid encodings of the same message.
 *
 * Unknown keys are ignored: the OTLP specification says OTLP/JSON receivers MUST ignore message
 * fields with unknown names (forward compatibility). Keys in the original snake_case are therefore
 * unknown too — the specification makes lowerCamelCase the only valid spelling.
 */
import { isUtf8 } from 'node:buffer';
import { DEFAULT_MAX_DECODED_BYTES, ENTRY_OVERHEAD_BYTES } from './types.js';
import type { DecodeLimits, DecodeResult } from './types.js';
import { FramedEntries } from '../ledger/types.js';
import { DecodeBudget, DecodeFailure, EMPTY, type EntryArena, EntryAssembler, type EntryOut, addSegment, failureResult, lenField } from './wire.js';
import { Writer, isHexDigit } from './writer.js';


type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };
// String.prototype.isWellFormed is ES2024 (Node ≥ 20); tsconfig's lib stops at ES2023.

/**
 * Decodes an OTLP/JSON `ExportLogsServiceRequest` into entries, one per LogRecord.
 * Never throws on bad input: invalid UTF-8, invalid JSON, a value of the wrong JSON type, ids that
 * are not hex of the right length, 64-bit integers that lost precision, lone surrogates or AnyValue
 * nesting deeper than `limits.maxNestingDepth` give `{ ok: false, message }` naming the field path.
 * With `arena`, the entries are built in its pooled memory (EntryArena) and stay valid only until
 * `arena.release()`; without one each chunk of entries is a fresh allocation. With `framed`, the
 * same bytes are returned as ledger frame runs (FramedEntries, src/ledger/types.ts) instead of one
 * view per entry: the receivers hand those to the ledger, which writes them without a copy.
 */
export function decodeLogsJson(body: Uint8Array, limits: DecodeLimits, arena: EntryArena | undefined, framed: true): DecodeResult<FramedEntries>;
export function decodeLogsJson(body: Uint8Array, limits: DecodeLimits, arena?: EntryArena): DecodeResult;
export function decodeLogsJson(body: Uint8Array, limits: DecodeLimits, arena?: EntryArena, framed?: true): DecodeResult<EntryOut> {
  // Validate with simdutf (buffer.isUtf8), then decode natively: together several times faster than
  // TextDecoder({ fatal: true }) on large bodies (measured, docs/benchmarks.md "OTLP decode").
  if (!isUtf8(body)) return { ok: false, message: 'request: body is not valid UTF-8 (OTLP/JSON bodies are UTF-8 JSON)' };
  let text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  // RFC 8259 §8.1: a parser may ignore a leading byte order mark.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return { ok: false, message: `request: invalid JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
  try {
    const entries: EntryOut = framed ? new FramedEntries() : [];
    decodeRequest(doc as Json, limits.maxNestingDepth, new DecodeBudget(limits.maxDecodedBytes ?? DEFAULT_MAX_DECODED_BYTES, arena), entries);
    return { ok: true, entries };
  } catch (e) {
    return failureResult(e);
  }
}

function typeName(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${preview(v)}`;
  return `${typeof v} ${String(v)}`;
}

function preview(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

function wrongType(name: string, want: string, got: Json): never {
  throw new DecodeFailure(`expected ${want}, got ${typeName(got)}`, name);
}

function asObject(name: string, v: Json): JsonObject {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) wrongType(name, 'an object', v);
  return v as JsonObject;
}

/** A repeated field: absent or null means empty (proto3 JSON), otherwise an array. */
function asArray(name: string, v: Json | undefined): Json[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) wrongType(name, 'an array', v);
  return v;
}

function asString(name: string, v: Json): string {
  if (typeof v !== 'string') wrongType(name, 'a string', v);
  // JSON escapes can produce lone UTF-16 surrogates, which have no UTF-8 encoding: refuse rather
  // than store a replacement character the sender never sent.
  if (!(v as unknown as { isWellFormed(): boolean }).isWellFormed()) throw new DecodeFailure('string contains a lone UTF-16 surrogate (not valid Unicode)', name);
  return v;
}

/** `/^[0-9]+$/` for a non-empty string, without the regular expression call. */
function isDigits(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

// Module constants: a regular expression literal inside a function is a new object per evaluation.
const SIGNED_DECIMAL = /^-?[0-9]{1,20}$/;
const UNSIGNED_DECIMAL = /^[0-9]{1,20}$/;
const INT32_DECIMAL = /^-?[0-9]{1,11}$/;
const DOUBLE_STRING = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/** Result registers of decimalU64 (low and high 32 bits). */
let u64Lo = 0;
let u64Hi = 0;

/**
 * Parses a string of 1–20 decimal digits into u64Lo/u64Hi; false if a character is not a digit or
 * the value is 2^64 or more. Two base-2^32 limbs in doubles, all steps exact (lo·10 + 9 < 2^36,
 * hi < 2^36): a nanosecond timestamp (19 digits) without BigInt.
 */
function decimalU64(s: string): boolean {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < s.length; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return false;
    lo = lo * 10 + d;
    const carry = Math.floor(lo / 0x100000000);
    lo -= carry * 0x100000000;
    hi = hi * 10 + carry;
    if (hi > 0xffffffff) return false;
  }
  u64Lo = lo;
  u64Hi = hi;
  return true;
}

/**
 * A fixed64 timestamp field (time_unix_nano, observed_time_unix_nano), omitted when 0. The usual
 * spelling, a decimal string, is converted without BigInt; anything else (numbers, bad strings,
 * out of range) takes asInt64, which also words the refusals.
 */
function timestampField(w: Writer, field: number, name: string, v: Json): void {
  if (typeof v === 'string' && v.length > 0 && v.length <= 20 && decimalU64(v)) {
    if (u64Lo !== 0 || u64Hi !== 0) w.fixed64Parts(field, u64Lo, u64Hi);
    return;
  }
  const t = asInt64(name, v, false);
  if (t !== 0 && t !== 0n) w.fixed64Field(field, t);
}

const UINT64_MAX = (1n << 64n) - 1n;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/**
 * A 64-bit integer given as a JSON number or decimal string (proto3 JSON accepts both). A JSON
 * number beyond 2^53 has already been rounded by the JSON parser, so it is refused: storing a value
 * other than the one sent would defeat the ledger's purpose.
 */
function asInt64(name: string, v: Json, signed: boolean): bigint | number {
  // Fast path for the common case, a decimal string of up to 15 digits: exact as a double, and
  // returned as one (the writer takes non-negative safe integers as numbers, without BigInt).
  if (typeof v === 'string' && v.length > 0 && v.length <= 15 && isDigits(v)) return Number(v);
  let n: bigint;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) wrongType(name, 'an integer', v);
    if (!Number.isSafeInteger(v)) {
      throw new DecodeFailure(
        `integer ${v} given as a JSON number is beyond 2^53 and may have lost precision; send 64-bit integers as decimal strings`,
        name,
      );
    }
    n = BigInt(v);
  } else if (typeof v === 'string') {
    if (!(signed ? SIGNED_DECIMAL : UNSIGNED_DECIMAL).test(v)) {
      wrongType(name, signed ? 'a decimal integer string' : 'an unsigned decimal integer string', v);
    }
    n = BigInt(v);
  } else {
    wrongType(name, 'an integer (number or decimal string)', v);
  }
  if (signed ? n < INT64_MIN || n > INT64_MAX : n < 0n || n > UINT64_MAX) {
    throw new DecodeFailure(`${n} is out of range for ${signed ? 'int64' : 'uint64'}`, name);
  }
  return n;
}

/** A 32-bit integer as a JSON number or decimal string, within [min, max]. */
function asInt32(name: string, v: Json, min: number, max: number): number {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && INT32_DECIMAL.test(v)) n = Number(v);
  else wrongType(name, 'an integer', v);
  if (!Number.isInteger(n)) wrongType(name, 'an integer', v);
  if (n < min || n > max) throw new DecodeFailure(`${n} is out of range [${min}, ${max}]`, name);
  return n;
}

const SEVERITY_NAMES: ReadonlyMap<string, number> = new Map(
  ['UNSPECIFIED', 'TRACE', 'TRACE2', 'TRACE3', 'TRACE4', 'DEBUG', 'DEBUG2', 'DEBUG3', 'DEBUG4', 'INFO', 'INFO2', 'INFO3', 'INFO4', 'WARN', 'WARN2', 'WARN3', 'WARN4', 'ERROR', 'ERROR2', 'ERROR3', 'ERROR4', 'FATAL', 'FATAL2', 'FATAL3', 'FATAL4'].map(
    (n, i) => [`SEVERITY_NUMBER_${n}`, i] as const,
  ),
);

/**
 * severity_number: OTLP/JSON sends enums as integers; the proto3 JSON enum names are accepted
 * too since generic protobuf JSON encoders emit them. proto3 enums are open, so an integer outside
 * 0..24 is kept as sent, like on the protobuf path.
 */
function asSeverity(name: string, v: Json): number {
  if (typeof v === 'string') {
    const n = SEVERITY_NAMES.get(v);
    if (n !== undefined) return n;
  }
  return asInt32(name, v, -0x80000000, 0x7fffffff);
}

/**
 * trace_id / span_id: OTLP/JSON uses hex strings (case-insensitive), empty for "no id". Writes the
 * field (number `field`) unless the id is empty.
 */
function hexIdField(w: Writer, field: number, name: string, v: Json, bytes: number): void {
  const s = asString(name, v);
  if (s.length === 0) return;
  // The usual case, the right length: decode and check in one pass (hexField refuses a non-hex
  // digit before anything is used). Otherwise, or on a bad digit, the checks below word the refusal.
  if (s.length === bytes * 2 && w.hexField(field, s)) return;
  for (let i = 0; i < s.length; i++) {
    if (!isHexDigit(s.charCodeAt(i))) {
      throw new DecodeFailure(`must be hexadecimal (OTLP/JSON ids are hex, not base64), got ${preview(s)}`, name);
    }
  }
  throw new DecodeFailure(`must be ${bytes * 2} hex digits (${bytes} bytes) or empty, got ${s.length} digits`, name);
}

const BASE64 = /^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$/;

/** bytes: proto3 JSON uses base64, standard or URL-safe alphabet, padding optional. */
function asBase64(name: string, v: Json): Uint8Array {
  const s = asString(name, v);
  if (!BASE64.test(s)) throw new DecodeFailure(`must be base64, got ${preview(s)}`, name);
  return Buffer.from(s, s.includes('-') || s.includes('_') ? 'base64url' : 'base64');
}

/** double: a JSON number, or one of the strings proto3 JSON uses for non-finite and exact values. */
function asDouble(name: string, v: Json): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    if (v === 'NaN') return NaN;
    if (v === 'Infinity') return Infinity;
    if (v === '-Infinity') return -Infinity;
    if (DOUBLE_STRING.test(v)) return Number(v);
  }
  wrongType(name, 'a number', v);
}

/** Proto3 JSON: null stands for the default value, i.e. the field is absent. */
function present(v: Json | undefined): v is Json {
  return v !== undefined && v !== null;
}

let writer = new Writer(1 << 16);

function decodeRequest(doc: Json, maxDepth: number, budget: DecodeBudget, out: EntryOut): void {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new DecodeFailure(`expected a JSON object (ExportLogsServiceRequest), got ${typeName(doc)}`);
  }
  const rls = asArray('resourceLogs', doc.resourceLogs);
  // One writer for all requests (decoding is synchronous, and nothing refers to its buffer once
  // the entries are built): growing a fresh one to the size of a request's records every time
  // cost a tenth of the route. A buffer grown beyond 1 MiB by a large request is not kept.
  const w = writer.buf.length > 1 << 20 ? (writer = new Writer(1 << 16)) : writer;
  w.reset();
  for (let i = 0; i < rls.length; i++) {
    try {
      decodeResourceLogs(asObject('', rls[i]!), maxDepth, budget, w, out);
    } catch (e) {
      addSegment(e, `resourceLogs[${i}]`);
    }
  }
}

/** Encodes whatever `fill` writes and returns a copy of the bytes. */
function encoded(w: Writer, fill: () => void): Uint8Array {
  w.pos = 0;
  fill();
  return w.buf.slice(0, w.pos);
}

function decodeResourceLogs(rl: JsonObject, maxDepth: number, budget: DecodeBudget, w: Writer, out: EntryOut): void {
  let resourceField = EMPTY;
  if (present(rl.resource)) {
    try {
      resourceField = lenField(1, encoded(w, () => encodeResource(asObject('', rl.resource!), maxDepth, w)));
    } catch (e) {
      addSegment(e, 'resource');
    }
  }
  const rlSchema = present(rl.schemaUrl) ? asString('schemaUrl', rl.schemaUrl) : '';
  const rlSchemaField = rlSchema === '' ? EMPTY : lenField(3, utf8Bytes(w, rlSchema));
  const sls = asArray('scopeLogs', rl.scopeLogs);
  for (let i = 0; i < sls.length; i++) {
    try {
      decodeScopeLogs(asObject('', sls[i]!), maxDepth, budget, w, resourceField, rlSchemaField, out);
    } catch (e) {
      addSegment(e, `scopeLogs[${i}]`);
    }
  }
}

/** The UTF-8 bytes of a string (via the writer, which has the encoder at hand). */
function utf8Bytes(w: Writer, s: string): Uint8Array {
  w.pos = 0;
  w.stringField(1, s);
  // Key byte, then a length prefix of 1–5 bytes.
  let p = 1;
  while (w.buf[p]! >= 0x80) p++;
  return w.buf.slice(p + 1, w.pos);
}

function decodeScopeLogs(
  sl: JsonObject,
  maxDepth: number,
  budget: DecodeBudget,
  w: Writer,
  resourceField: Uint8Array,
  rlSchemaField: Uint8Array,
  out: EntryOut,
): void {
  let scopeField = EMPTY;
  if (present(sl.scope)) {
    try {
      scopeField = lenField(1, encoded(w, () => encodeScope(asObject('', sl.scope!), maxDepth, w)));
    } catch (e) {
      addSegment(e, 'scope');
    }
  }
  const slSchema = present(sl.schemaUrl) ? asString('schemaUrl', sl.schemaUrl) : '';
  const asm = new EntryAssembler(resourceField, rlSchemaField, scopeField, slSchema === '' ? EMPTY : lenField(3, utf8Bytes(w, slSchema)));
  const lrs = asArray('logRecords', sl.logRecords);
  // Encode every record back to back, then build all entries in one allocation (as on the protobuf path).
  w.pos = 0;
  const ranges: number[] = [];
  let total = 0;
  for (let i = 0; i < lrs.length; i++) {
    const start = w.pos;
    try {
      encodeLogRecord(asObject('', lrs[i]!), maxDepth, w);
    } catch (e) {
      addSegment(e, `logRecords[${i}]`);
    }
    ranges.push(start, w.pos);
    const size = asm.size(w.pos - start);
    budget.take(size + ENTRY_OVERHEAD_BYTES);
    total += size;
  }
  asm.buildAll(w.buf, ranges, ranges.length, total, out, budget.arena);
}

/*
 * Encoders: fields in field-number order (proto/opentelemetry/proto/**), proto3 defaults omitted.
 * Each reads the JSON keys it knows and ignores the rest (see the module comment).
 */

function encodeResource(r: JsonObject, maxDepth: number, w: Writer): void {
  encodeAttributes(w, 1, r.attributes, maxDepth);
  if (present(r.droppedAttributesCount)) {
    const n = asInt32('droppedAttributesCount', r.droppedAttributesCount, 0, 0xffffffff);
    if (n !== 0) w.uintField(2, n);
  }
  const refs = asArray('entityRefs', r.entityRefs);
  for (let i = 0; i < refs.length; i++) {
    try {
      const ref = asObject('', refs[i]!);
      w.fork(3);
      stringIfSet(w, 1, 'schemaUrl', ref.schemaUrl);
      stringIfSet(w, 2, 'type', ref.type);
      const ids = asArray('idKeys', ref.idKeys);
      for (let k = 0; k < ids.length; k++) w.stringField(3, asString(`idKeys[${k}]`, ids[k]!));
      const descs = asArray('descriptionKeys', ref.descriptionKeys);
      for (let k = 0; k < descs.length; k++) w.stringField(4, asString(`descriptionKeys[${k}]`, descs[k]!));
      w.join();
    } catch (e) {
      addSegment(e, `entityRefs[${i}]`);
    }
  }
}

function encodeScope(s: JsonObject, maxDepth: number, w: Writer): void {
  stringIfSet(w, 1, 'name', s.name);
  stringIfSet(w, 2, 'version', s.version);
  encodeAttributes(w, 3, s.attributes, maxDepth);
  if (present(s.droppedAttributesCount)) {
    const n = asInt32('droppedAttributesCount', s.droppedAttributesCount, 0, 0xffffffff);
    if (n !== 0) w.uintField(4, n);
  }
}

function stringIfSet(w: Writer, field: number, name: string, v: Json | undefined): void {
  if (!present(v)) return;
  const s = asString(name, v);
  if (s !== '') w.stringField(field, s);
}

function encodeLogRecord(r: JsonObject, maxDepth: number, w: Writer): void {
  if (present(r.timeUnixNano)) timestampField(w, 1, 'timeUnixNano', r.timeUnixNano);
  if (present(r.severityNumber)) {
    const n = asSeverity('severityNumber', r.severityNumber);
    if (n !== 0) w.int32Field(2, n);
  }
  stringIfSet(w, 3, 'severityText', r.severityText);
  if (present(r.body)) {
    try {
      encodeAnyValue(w, 5, asObject('', r.body), 1, maxDepth);
    } catch (e) {
      addSegment(e, 'body');
    }
  }
  encodeAttributes(w, 6, r.attributes, maxDepth);
  if (present(r.droppedAttributesCount)) {
    const n = asInt32('droppedAttributesCount', r.droppedAttributesCount, 0, 0xffffffff);
    if (n !== 0) w.uintField(7, n);
  }
  if (present(r.flags)) {
    const n = asInt32('flags', r.flags, 0, 0xffffffff);
    if (n !== 0) w.fixed32Field(8, n);
  }
  if (present(r.traceId)) hexIdField(w, 9, 'traceId', r.traceId, 16);
  if (present(r.spanId)) hexIdField(w, 10, 'spanId', r.spanId, 8);
  if (present(r.observedTimeUnixNano)) timestampField(w, 11, 'observedTimeUnixNano', r.observedTimeUnixNano);
  stringIfSet(w, 12, 'eventName', r.eventName);
}

function encodeAttributes(w: Writer, field: number, v: Json | undefined, maxDepth: number): void {
  const attrs = asArray('attributes', v);
  for (let i = 0; i < attrs.length; i++) {
    try {
      encodeKeyValue(w, field, asObject('', attrs[i]!), 1, maxDepth);
    } catch (e) {
      addSegment(e, `attributes[${i}]`);
    }
  }
}

function encodeKeyValue(w: Writer, field: number, kv: JsonObject, depth: number, maxDepth: number): void {
  w.fork(field);
  stringIfSet(w, 1, 'key', kv.key);
  if (present(kv.value)) {
    try {
      encodeAnyValue(w, 2, asObject('', kv.value), depth, maxDepth);
    } catch (e) {
      addSegment(e, 'value');
    }
  }
  w.join();
}

const ANY_KEYS = ['stringValue', 'boolValue', 'intValue', 'doubleValue', 'arrayValue', 'kvlistValue', 'bytesValue'] as const;

/** Fails naming the first two AnyValue members set, in field order. */
function moreThanOneMember(v: JsonObject): never {
  let kind: string | undefined;
  for (const k of ANY_KEYS) {
    if (present(v[k])) {
      if (kind !== undefined) throw new DecodeFailure(`more than one value set (${kind} and ${k}); AnyValue holds one`);
      kind = k;
    }
  }
  throw new Error('moreThanOneMember: fewer than two members set');
}

/** One AnyValue at nesting `depth` (1 = body or attribute value), as field `field` of its parent. */
function encodeAnyValue(w: Writer, field: number, v: JsonObject, depth: number, maxDepth: number): void {
  if (depth > maxDepth) {
    throw new DecodeFailure(`AnyValue nesting deeper than ${maxDepth} levels (limit receivers.otlp.max_nesting_depth)`);
  }
  // Seven named loads (monomorphic or polymorphic inline caches) rather than a loop of keyed loads
  // over ANY_KEYS, which go megamorphic: measured a tenth of the JSON route's own time.
  let kind: (typeof ANY_KEYS)[number] | undefined;
  let count = 0;
  if (present(v.stringValue)) {
    kind = 'stringValue';
    count++;
  }
  if (present(v.boolValue)) {
    kind ??= 'boolValue';
    count++;
  }
  if (present(v.intValue)) {
    kind ??= 'intValue';
    count++;
  }
  if (present(v.doubleValue)) {
    kind ??= 'doubleValue';
    count++;
  }
  if (present(v.arrayValue)) {
    kind ??= 'arrayValue';
    count++;
  }
  if (present(v.kvlistValue)) {
    kind ??= 'kvlistValue';
    count++;
  }
  if (present(v.bytesValue)) {
    kind ??= 'bytesValue';
    count++;
  }
  if (count > 1) moreThanOneMember(v);
  w.fork(field);
  // A oneof member is written even when it holds its type's default value (proto3: set oneof
  // fields are always serialized), so `{"intValue":"0"}` stays distinct from the empty AnyValue.
  switch (kind) {
    case undefined:
      break;
    case 'stringValue':
      w.stringField(1, asString(kind, v.stringValue!));
      break;
    case 'boolValue': {
      const b = v[kind];
      if (typeof b !== 'boolean') wrongType(kind, 'true or false', b!);
      w.uintField(2, b ? 1 : 0);
      break;
    }
    case 'intValue':
      w.int64Field(3, asInt64(kind, v.intValue!, true));
      break;
    case 'doubleValue':
      w.doubleField(4, asDouble(kind, v.doubleValue!));
      break;
    case 'arrayValue': {
      const arr = asObject(kind, v[kind]!);
      w.fork(5);
      const values = asArray('arrayValue.values', arr.values);
      for (let i = 0; i < values.length; i++) {
        try {
          encodeAnyValue(w, 1, asObject('', values[i]!), depth + 1, maxDepth);
        } catch (e) {
          addSegment(e, `arrayValue.values[${i}]`);
        }
      }
      w.join();
      break;
    }
    case 'kvlistValue': {
      const list = asObject(kind, v[kind]!);
      w.fork(6);
      const values = asArray('kvlistValue.values', list.values);
      for (let i = 0; i < values.length; i++) {
        try {
          encodeKeyValue(w, 1, asObject('', values[i]!), depth + 1, maxDepth);
        } catch (e) {
          addSegment(e, `kvlistValue.values[${i}]`);
        }
      }
      w.join();
      break;
    }
    case 'bytesValue':
      w.bytesField(7, asBase64(kind, v[kind]!));
      break;
  }
  w.join();
}
