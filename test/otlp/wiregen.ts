/**
 * fast-check generators of OTLP/protobuf wire bytes, from the grammar of proto/opentelemetry with
 * deliberate faults. Used by test/otlp/fastpath.test.ts (decoder vs the frozen reference) and
 * test/otlp/native-check.test.ts (native record check vs the JS walker).
 */
import fc from 'fast-check';
import { cat, varint } from './wirebuild.js';

/*
 * Wire-level generator. A field is written from (field number, wire type, payload); `fault` turns a
 * well-formed field into one of the malformations the general path has to report.
 */
type Part = Uint8Array;
const WT = { varint: 0, i64: 1, len: 2, i32: 5 } as const;

const keyBytes = (field: number, wire: number, longKey: boolean): number[] => {
  const k = varint(field * 8 + wire);
  // A non-minimal key (an extra 0x80 continuation byte, then 0x00): valid protobuf that only the
  // general path reads.
  if (longKey) return [...k.slice(0, -1), k[k.length - 1]! | 0x80, 0x00];
  return k;
};

const lenBytes = (n: number, longLen: boolean): number[] => (longLen ? [...varint(n).slice(0, -1), varint(n).at(-1)! | 0x80, 0x00] : varint(n));

interface FieldSpec {
  field: number;
  wire: number;
  payload: Part;
}

const faultArb = fc.oneof(
  { weight: 12, arbitrary: fc.constant('none' as const) },
  fc.constantFrom('longKey', 'longLen', 'wrongWire', 'unknownField', 'short', 'short'),
);

function writeField(spec: FieldSpec, fault: string): Part {
  let { field, wire } = spec;
  if (fault === 'wrongWire') wire = wire === WT.len ? WT.varint : WT.len;
  if (fault === 'unknownField') field = 100 + field;
  const key = keyBytes(field, wire, fault === 'longKey');
  // A value cut short inside a well-formed parent: a fixed-width value missing bytes, a varint
  // whose last byte still has the continuation bit, a length-delimited payload missing its last byte
  // (caught as a length running past its message only when the field is the last one).
  if (fault === 'short') {
    if (wire === WT.i64 || wire === WT.i32) return cat(key, spec.payload.subarray(0, spec.payload.length - 1 - (spec.payload[0]! % 3)));
    if (wire === WT.varint && spec.wire === WT.varint) return cat(key, spec.payload.subarray(0, -1), [spec.payload.at(-1)! | 0x80]);
    if (wire === WT.len) return cat(key, varint(spec.payload.length + 1), spec.payload);
  }
  switch (wire) {
    case WT.len:
      return cat(key, lenBytes(spec.payload.length, fault === 'longLen'), spec.payload);
    case WT.varint:
      return cat(key, spec.wire === WT.varint ? spec.payload : varint(spec.payload.length));
    default:
      return cat(key, spec.payload);
  }
}

const field = (f: number, wire: number, payload: fc.Arbitrary<Part>) =>
  fc.tuple(payload, faultArb).map(([p, fault]) => writeField({ field: f, wire, payload: p }, fault));
/** The containers above the records: faults there are rarer, so that most requests reach their records. */
const outer = (f: number, payload: fc.Arbitrary<Part>) =>
  fc.oneof({ weight: 9, arbitrary: payload.map((p) => writeField({ field: f, wire: WT.len, payload: p }, 'none')) }, field(f, WT.len, payload));

export const utf8 = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 40 }).map((s) => new TextEncoder().encode(s)) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }).map((s) => new TextEncoder().encode(s)) },
  // Long ASCII with a few non-ASCII or invalid bytes at random places (the 8-byte scan's edges).
  fc
    .tuple(fc.integer({ min: 0, max: 300 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0x80, max: 0xff })), { maxLength: 3 }))
    .map(([n, bad]) => {
      const b = new Uint8Array(n).fill(0x61);
      for (const [at, v] of bad) if (n > 0) b[at % n] = v;
      return b;
    }),
  fc.uint8Array({ maxLength: 10 }),
  // ASCII runs of every length around the scan's 8-byte steps, between multi-byte characters,
  // sometimes with one byte overwritten (an invalid or cut-off sequence anywhere).
  fc
    .tuple(
      fc.array(fc.oneof(fc.string({ unit: 'grapheme-ascii', maxLength: 20 }), fc.constantFrom('é', '—', '😀', '\u{10FFFF}', '\u07FF')), { maxLength: 12 }),
      fc.option(fc.tuple(fc.nat(), fc.integer({ min: 0x80, max: 0xff })), { freq: 2 }),
    )
    .map(([parts, bad]) => {
      const b = new TextEncoder().encode(parts.join(''));
      if (bad !== null && b.length > 0) b[bad[0] % b.length] = bad[1];
      return b;
    }),
);
const varintPayload = fc.oneof(fc.bigInt(0n, (1n << 64n) - 1n).map((v) => Uint8Array.from(varint(v))), fc.constant(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])));
const fixed = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const idBytes = (n: number) => fc.oneof(fc.uint8Array({ minLength: n, maxLength: n }), fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 20 }));
const msg = (fields: fc.Arbitrary<Part>, max = 6) => fc.array(fields, { maxLength: max }).map((parts) => cat(...parts));

export const { anyValue, keyValue } = fc.letrec<{ anyValue: Part; keyValue: Part }>((tie) => ({
  anyValue: msg(
    fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      field(1, WT.len, utf8),
      field(2, WT.varint, varintPayload),
      field(3, WT.varint, varintPayload),
      field(4, WT.i64, fixed(8)),
      field(5, WT.len, msg(field(1, WT.len, tie('anyValue')), 3)),
      field(6, WT.len, msg(field(1, WT.len, tie('keyValue')), 3)),
      field(7, WT.len, fc.uint8Array({ maxLength: 12 })),
    ),
    2,
  ),
  keyValue: msg(fc.oneof(field(1, WT.len, utf8), field(2, WT.len, tie('anyValue'))), 3),
}));

export const logRecord = msg(
  fc.oneof(
    field(1, WT.i64, fixed(8)),
    field(11, WT.i64, fixed(8)),
    field(2, WT.varint, varintPayload),
    field(7, WT.varint, varintPayload),
    field(3, WT.len, utf8),
    field(5, WT.len, anyValue),
    field(6, WT.len, keyValue),
    field(8, WT.i32, fixed(4)),
    field(9, WT.len, idBytes(16)),
    field(10, WT.len, idBytes(8)),
    field(12, WT.len, utf8),
    field(13, WT.len, fc.uint8Array({ maxLength: 8 })),
  ),
  14,
);
const scope = msg(fc.oneof(field(1, WT.len, utf8), field(2, WT.len, utf8), field(3, WT.len, keyValue), field(4, WT.varint, varintPayload)), 4);
const resource = msg(fc.oneof(field(1, WT.len, keyValue), field(2, WT.varint, varintPayload)), 4);
const scopeLogs = msg(fc.oneof({ weight: 5, arbitrary: outer(2, logRecord) }, outer(1, scope), field(3, WT.len, utf8)), 8);
const resourceLogs = msg(fc.oneof({ weight: 3, arbitrary: outer(2, scopeLogs) }, outer(1, resource), field(3, WT.len, utf8)), 4);
const request = msg(outer(1, resourceLogs), 3);

/** Cuts a request short somewhere, sometimes: fixed-width values and lengths running past the end. */
export const maybeTruncated = fc.tuple(request, fc.option(fc.nat(), { freq: 4 })).map(([b, cut]) => (cut === null || b.length === 0 ? b : b.subarray(0, cut % b.length)));

export const limitsArb = fc.record({
  maxNestingDepth: fc.oneof(fc.constant(32), fc.integer({ min: 1, max: 4 })),
  maxDecodedBytes: fc.oneof(fc.constant(undefined), fc.integer({ min: 0, max: 4000 })),
});

/** Byte-level edits of a seed message: up to three of set / insert / delete at a position, or truncate there. */
export const byteEdits = fc.array(fc.tuple(fc.constantFrom('set', 'insert', 'delete', 'truncate'), fc.nat(), fc.integer({ min: 0, max: 255 })), {
  minLength: 1,
  maxLength: 3,
});

/** `seed` with the edits of `byteEdits` applied (a new array). */
export function applyEdits(seed: Uint8Array, edits: readonly (readonly [string, number, number])[]): Uint8Array {
  const b = Array.from(seed);
  for (const [op, at, byte] of edits) {
    const i = b.length === 0 ? 0 : at % b.length;
    if (op === 'set') b[i] = byte;
    else if (op === 'insert') b.splice(i, 0, byte);
    else if (op === 'delete') b.splice(i, 1);
    else b.length = i;
  }
  return Uint8Array.from(b);
}
