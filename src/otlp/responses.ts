/**
 * Response bodies of the OTLP export call (OTLP specification, "Full Success", "Partial Success",
 * "Failures"): an ExportLogsServiceResponse on success, a google.rpc.Status on error, each in the
 * encoding of the request (OTLP/HTTP: "the response body MUST be the appropriate serialized
 * Protobuf message ... in the same encoding as the request").
 */
import { WT_LEN, WT_VARINT, putVarint, varintSize } from './wire.js';

const encoder = new TextEncoder();

/** A varint of a non-negative integer below 2^53, as bytes. */
function varint(v: number): Uint8Array {
  const out = new Uint8Array(10);
  let n = 0;
  while (v >= 0x80) {
    out[n++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  out[n++] = v;
  return out.subarray(0, n);
}

/** An int32 varint: negative values take 10 bytes (sign-extended to 64 bits, protobuf "int32"). */
function int32Varint(v: number): Uint8Array {
  if (v >= 0) return varint(v);
  const out = new Uint8Array(10);
  let x = BigInt.asUintN(64, BigInt(v));
  for (let i = 0; i < 10; i++) {
    const byte = Number(x & 0x7fn);
    x >>= 7n;
    out[i] = i < 9 ? byte | 0x80 : byte;
  }
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function stringField(field: number, s: string): Uint8Array[] {
  if (s === '') return [];
  const bytes = encoder.encode(s);
  return [Uint8Array.of((field << 3) | WT_LEN), varint(bytes.length), bytes];
}

function checkCount(rejected: number): void {
  if (!Number.isSafeInteger(rejected) || rejected < 0) {
    throw new RangeError(`rejected must be a non-negative safe integer, got ${rejected}`);
  }
}

/**
 * ExportLogsServiceResponse in protobuf. Full success (no arguments, or 0 and no message) is the
 * empty message, which encodes to zero bytes.
 * @throws RangeError if `rejected` is negative or not a safe integer.
 */
export function exportLogsResponseProtobuf(rejected = 0, message = ''): Uint8Array {
  checkCount(rejected);
  if (rejected === 0 && message === '') return new Uint8Array(0);
  const inner = concat([
    ...(rejected > 0 ? [Uint8Array.of((1 << 3) | WT_VARINT), varint(rejected)] : []),
    ...stringField(2, message),
  ]);
  const out = new Uint8Array(1 + varintSize(inner.length) + inner.length);
  out[0] = (1 << 3) | WT_LEN;
  out.set(inner, putVarint(out, 1, inner.length));
  return out;
}

/**
 * ExportLogsServiceResponse in OTLP/JSON: `{}` on full success, otherwise `partialSuccess` with
 * `rejectedLogRecords` as a decimal string (proto3 JSON maps int64 to a string).
 * @throws RangeError if `rejected` is negative or not a safe integer.
 */
export function exportLogsResponseJson(rejected = 0, message = ''): string {
  checkCount(rejected);
  if (rejected === 0 && message === '') return '{}';
  const ps: Record<string, string> = {};
  if (rejected > 0) ps.rejectedLogRecords = String(rejected);
  if (message !== '') ps.errorMessage = message;
  return JSON.stringify({ partialSuccess: ps });
}

/**
 * google.rpc.Status{code, message} in protobuf (the OTLP/HTTP error body for protobuf requests).
 * @throws RangeError if `code` is not an int32.
 */
export function rpcStatusProtobuf(code: number, message: string): Uint8Array {
  if (!Number.isInteger(code) || code < -0x80000000 || code > 0x7fffffff) throw new RangeError(`code must be an int32, got ${code}`);
  return concat([...(code !== 0 ? [Uint8Array.of((1 << 3) | WT_VARINT), int32Varint(code)] : []), ...stringField(2, message)]);
}

/**
 * google.rpc.Status in OTLP/JSON, `{"code":3,"message":"…"}` (the error body for JSON requests).
 * @throws RangeError if `code` is not an int32.
 */
export function rpcStatusJson(code: number, message: string): string {
  if (!Number.isInteger(code) || code < -0x80000000 || code > 0x7fffffff) throw new RangeError(`code must be an int32, got ${code}`);
  return JSON.stringify({ code, message });
}
