/**
 * Bad inputs (DESIGN.md G7): each must give ok:false with a message naming what is wrong and where,
 * and never throw. Protobuf inputs are built by hand (test/otlp/wirebuild.ts) because no
 * well-behaved encoder produces them.
 */
import { describe, expect, it } from 'vitest';
import { decodeLogsJson, decodeLogsProtobuf } from '../../src/otlp/index.js';
import { LIMITS, encodeRequest } from './helpers.js';
import { cat, key, ld, nestedAnyValue, nestedAnyValueJson, oneScope, str, varint, vf } from './wirebuild.js';

const RECORD_OK = cat(str(3, 'INFO'), ld(5, str(1, 'hello')));
const R = 'resourceLogs[0].scopeLogs[0].logRecords[0]';

/** A request whose resourceLogs[0].scopeLogs[1].logRecords[3] is `bad` (the others are fine). */
function atDepth(bad: Uint8Array): Uint8Array {
  return ld(1, ld(2, ld(2, RECORD_OK)), ld(2, ld(2, RECORD_OK), ld(2, RECORD_OK), ld(2, RECORD_OK), ld(2, bad)));
}

const validWire = encodeRequest({
  resourceLogs: [
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
      scopeLogs: [{ scope: { name: 'lib' }, logRecords: [{ body: { stringValue: 'hello world' }, traceId: new Uint8Array(16).fill(7) }] }],
    },
  ],
});

const badUtf8: [string, number[]][] = [
  ['lone continuation byte', [0x61, 0x80]],
  ['truncated 2-byte sequence', [0xc3]],
  ['bad continuation', [0xc3, 0x28]],
  ['overlong NUL', [0xc0, 0x80]],
  ['overlong 3-byte', [0xe0, 0x80, 0xaf]],
  ['UTF-16 surrogate', [0xed, 0xa0, 0x80]],
  ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ['0xFF', [0xff]],
  ['long string, bad byte at the end (native check)', [...new Array(100).fill(0xc3a9).flatMap(() => [0xc3, 0xa9]), 0xc3]],
];

interface Case {
  name: string;
  body: Uint8Array;
  message: RegExp | string;
  maxNestingDepth?: number;
}

const protobufCases: Case[] = [
  // truncation
  { name: 'truncated by one byte', body: validWire.subarray(0, validWire.length - 1), message: /^request: length \d+ at byte 1 runs past the end of its message/ },
  ...[3, 10, 20, 30].map((n) => ({ name: `truncated to ${n} bytes`, body: validWire.subarray(0, n), message: /runs past the end|truncated/ })),
  { name: 'truncated varint', body: oneScope(cat([0x10, 0x80])), message: `${R}: truncated varint at byte 7` },
  { name: 'truncated fixed64', body: oneScope(cat([0x09, 1, 2, 3])), message: `${R}: truncated fixed64 at byte 7` },
  { name: 'truncated key', body: oneScope(cat([0x80])), message: `${R}: truncated field key at byte 6` },
  { name: 'varint longer than 10 bytes', body: oneScope(cat([0x10], new Array(10).fill(0xff), [0x01])), message: /varint at byte 7 is longer than 10 bytes/ },
  { name: 'varint overflowing 64 bits', body: oneScope(cat([0x10], new Array(9).fill(0xff), [0x02])), message: /varint at byte 7 overflows 64 bits/ },
  { name: 'length longer than 5 bytes', body: cat([0x0a], new Array(5).fill(0x80), [0x00]), message: /^request: length at byte 1 is longer than 5 bytes/ },
  // wrong wire types for known fields
  { name: 'traceId as varint', body: atDepth(vf(9, 1)), message: 'resourceLogs[0].scopeLogs[1].logRecords[3].traceId: wrong wire type: field 9 needs length-delimited, got varint' },
  { name: 'timeUnixNano as varint', body: oneScope(vf(1, 5)), message: `${R}.timeUnixNano: wrong wire type: field 1 needs fixed64, got varint` },
  { name: 'flags as fixed64', body: oneScope(cat(key(8, 1), new Array(8).fill(0))), message: `${R}.flags: wrong wire type: field 8 needs fixed32, got fixed64` },
  { name: 'body as fixed32', body: oneScope(cat(key(5, 5), [0, 0, 0, 0])), message: `${R}.body: wrong wire type` },
  { name: 'resourceLogs as varint', body: vf(1, 3), message: 'resourceLogs: wrong wire type: field 1 needs length-delimited, got varint' },
  { name: 'resource as varint', body: ld(1, vf(1, 3)), message: 'resourceLogs[0].resource: wrong wire type' },
  { name: 'stringValue as varint', body: oneScope(ld(5, vf(1, 3))), message: `${R}.body.stringValue: wrong wire type` },
  { name: 'attribute value as fixed32', body: oneScope(ld(6, str(1, 'k'), cat(key(2, 5), [0, 0, 0, 0]))), message: `${R}.attributes[0].value: wrong wire type` },
  // field numbers and wire types that are never valid here
  { name: 'field number 0', body: oneScope(cat([0x02, 0x00])), message: `${R}: field number 0 at byte 6 is not valid` },
  { name: 'start-group wire type', body: oneScope(cat(key(15, 3), key(15, 4))), message: `${R}: field 15: unsupported start-group` },
  { name: 'end-group wire type', body: oneScope(cat(key(15, 4))), message: `${R}: field 15: unsupported end-group` },
  { name: 'wire type 6', body: oneScope(cat(key(15, 6))), message: /field 15: unsupported wire type 6/ },
  { name: 'group at top level', body: cat(key(2, 3)), message: 'request: field 2: unsupported start-group' },
  // ids
  { name: 'traceId of 5 bytes', body: atDepth(ld(9, [1, 2, 3, 4, 5])), message: 'resourceLogs[0].scopeLogs[1].logRecords[3].traceId: must be 16 bytes (or empty), got 5' },
  { name: 'traceId of 17 bytes', body: oneScope(ld(9, new Array(17).fill(1))), message: `${R}.traceId: must be 16 bytes (or empty), got 17` },
  { name: 'spanId of 16 bytes', body: oneScope(ld(10, new Array(16).fill(1))), message: `${R}.spanId: must be 8 bytes (or empty), got 16` },
  // invalid UTF-8 in each kind of string field
  ...badUtf8.map(([what, bytes]) => ({ name: `severityText: ${what}`, body: oneScope(ld(3, bytes)), message: new RegExp(`^${escape(R)}\\.severityText: invalid UTF-8 at byte \\d+`) })),
  { name: 'body stringValue', body: oneScope(ld(5, ld(1, [0xff]))), message: `${R}.body.stringValue: invalid UTF-8 at byte 0 of the string (proto3 strings must be UTF-8)` },
  { name: 'eventName', body: oneScope(ld(12, [0x61, 0xff])), message: `${R}.eventName: invalid UTF-8 at byte 1` },
  { name: 'attribute key', body: oneScope(RECORD_OK, ld(6, ld(1, [0xc0, 0x80]))), message: 'resourceLogs[0].scopeLogs[0].logRecords[1].attributes[0].key: invalid UTF-8' },
  {
    name: 'nested kvlist key in a resource attribute',
    body: ld(1, ld(1, ld(1, str(1, 'k'), ld(2, ld(6, ld(1, ld(1, [0xff]))))))),
    message: 'resourceLogs[0].resource.attributes[0].value.kvlistValue.values[0].key: invalid UTF-8',
  },
  { name: 'scope name', body: ld(1, ld(2, ld(1, ld(1, [0xff])))), message: 'resourceLogs[0].scopeLogs[0].scope.name: invalid UTF-8' },
  { name: 'scopeLogs schemaUrl', body: ld(1, ld(2, ld(3, [0xff]))), message: 'resourceLogs[0].scopeLogs[0].schemaUrl: invalid UTF-8' },
  { name: 'resourceLogs schemaUrl', body: ld(1, ld(3, [0xff])), message: 'resourceLogs[0].schemaUrl: invalid UTF-8' },
  { name: 'entity ref id key', body: ld(1, ld(1, ld(3, ld(3, [0xff])))), message: 'resourceLogs[0].resource.entityRefs[0].idKeys[0]: invalid UTF-8' },
  // nesting
  { name: 'body nested 33 deep (limit 32)', body: oneScope(ld(5, nestedAnyValue(33))), message: /\.body(\.arrayValue\.values\[0\]){32}: AnyValue nesting deeper than 32 levels \(limit receivers\.otlp\.max_nesting_depth\)$/ },
  { name: 'attribute nested 4 deep (limit 3)', maxNestingDepth: 3, body: oneScope(ld(6, str(1, 'k'), ld(2, nestedAnyValue(4)))), message: /attributes\[0\]\.value(\.arrayValue\.values\[0\]){3}: AnyValue nesting deeper than 3/ },
  { name: 'kvlist nesting counts too (limit 2)', maxNestingDepth: 2, body: oneScope(ld(5, ld(6, ld(1, str(1, 'a'), ld(2, ld(6, ld(1, str(1, 'b'), ld(2, str(1, 'x'))))))))), message: /body\.kvlistValue\.values\[0\]\.value\.kvlistValue\.values\[0\]\.value: AnyValue nesting deeper than 2/ },
];

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const jr = (record: unknown) => enc({ resourceLogs: [{ scopeLogs: [{ logRecords: [record] }] }] });

const jsonCases: Case[] = [
  { name: 'not UTF-8', body: Uint8Array.of(0x7b, 0xff, 0x7d), message: 'request: body is not valid UTF-8 (OTLP/JSON bodies are UTF-8 JSON)' },
  { name: 'invalid JSON', body: enc('{"resourceLogs": ['), message: /^request: invalid JSON: / },
  { name: 'trailing garbage', body: enc('{} x'), message: /^request: invalid JSON: / },
  { name: 'empty body', body: enc(''), message: /^request: invalid JSON: / },
  { name: 'top-level array', body: enc('[]'), message: 'request: expected a JSON object (ExportLogsServiceRequest), got an array' },
  { name: 'top-level null', body: enc('null'), message: 'request: expected a JSON object (ExportLogsServiceRequest), got null' },
  { name: 'resourceLogs an object', body: enc({ resourceLogs: {} }), message: 'resourceLogs: expected an array, got an object' },
  { name: 'resource a string', body: enc({ resourceLogs: [{ resource: 'x' }] }), message: 'resourceLogs[0].resource: expected an object, got the string "x"' },
  { name: 'logRecord a number', body: jr(5), message: `${R}: expected an object, got number 5` },
  { name: 'severityNumber not a number', body: jr({ severityNumber: 'abc' }), message: `${R}.severityNumber: expected an integer, got the string "abc"` },
  { name: 'severityNumber fractional', body: jr({ severityNumber: 9.5 }), message: `${R}.severityNumber: expected an integer, got number 9.5` },
  { name: 'severityNumber beyond int32', body: jr({ severityNumber: 2 ** 31 }), message: `${R}.severityNumber: 2147483648 is out of range [-2147483648, 2147483647]` },
  { name: 'severityText a number', body: jr({ severityText: 3 }), message: `${R}.severityText: expected a string, got number 3` },
  { name: 'timeUnixNano negative', body: jr({ timeUnixNano: '-1' }), message: `${R}.timeUnixNano: expected an unsigned decimal integer string, got the string "-1"` },
  { name: 'timeUnixNano not decimal', body: jr({ timeUnixNano: '0x10' }), message: /timeUnixNano: expected an unsigned decimal integer string/ },
  { name: 'timeUnixNano beyond uint64', body: jr({ timeUnixNano: '18446744073709551616' }), message: `${R}.timeUnixNano: 18446744073709551616 is out of range for uint64` },
  { name: 'timeUnixNano as an imprecise JSON number', body: enc(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":1700000000000000001}]}]}]}`), message: /timeUnixNano: integer 1700000000000000000 given as a JSON number is beyond 2\^53 and may have lost precision; send 64-bit integers as decimal strings/ },
  { name: 'timeUnixNano a boolean', body: jr({ timeUnixNano: true }), message: `${R}.timeUnixNano: expected an integer (number or decimal string), got boolean true` },
  { name: 'flags negative', body: jr({ flags: -1 }), message: `${R}.flags: -1 is out of range [0, 4294967295]` },
  { name: 'traceId too short', body: jr({ traceId: 'abcd' }), message: `${R}.traceId: must be 32 hex digits (16 bytes) or empty, got 4 digits` },
  { name: 'traceId non-hex', body: jr({ traceId: 'zz'.repeat(16) }), message: /traceId: must be hexadecimal \(OTLP\/JSON ids are hex, not base64\)/ },
  { name: 'traceId as base64 (protobuf JSON habit)', body: jr({ traceId: 'AQEBAQEBAQEBAQEBAQEBAQ==' }), message: /traceId: must be hexadecimal/ },
  { name: 'spanId of 9 bytes', body: jr({ spanId: '01'.repeat(9) }), message: `${R}.spanId: must be 16 hex digits (8 bytes) or empty, got 18 digits` },
  { name: 'spanId a number', body: jr({ spanId: 5 }), message: `${R}.spanId: expected a string, got number 5` },
  { name: 'attributes an object', body: jr({ attributes: {} }), message: `${R}.attributes: expected an array, got an object` },
  { name: 'attribute key a number', body: jr({ attributes: [{ key: 1 }] }), message: `${R}.attributes[0].key: expected a string, got number 1` },
  { name: 'body a string', body: jr({ body: 'hello' }), message: `${R}.body: expected an object, got the string "hello"` },
  { name: 'stringValue a number', body: jr({ body: { stringValue: 5 } }), message: `${R}.body.stringValue: expected a string, got number 5` },
  { name: 'boolValue a string', body: jr({ body: { boolValue: 'true' } }), message: `${R}.body.boolValue: expected true or false, got the string "true"` },
  { name: 'two AnyValue kinds at once', body: jr({ body: { stringValue: 'a', intValue: '1' } }), message: `${R}.body: more than one value set (stringValue and intValue); AnyValue holds one` },
  { name: 'intValue beyond int64', body: jr({ body: { intValue: '9223372036854775808' } }), message: `${R}.body.intValue: 9223372036854775808 is out of range for int64` },
  { name: 'intValue below int64', body: jr({ body: { intValue: '-9223372036854775809' } }), message: /intValue: -9223372036854775809 is out of range for int64/ },
  { name: 'intValue fractional', body: jr({ body: { intValue: 1.5 } }), message: `${R}.body.intValue: expected an integer, got number 1.5` },
  { name: 'doubleValue a word', body: jr({ body: { doubleValue: 'many' } }), message: `${R}.body.doubleValue: expected a number, got the string "many"` },
  { name: 'bytesValue not base64', body: jr({ body: { bytesValue: '!!!' } }), message: `${R}.body.bytesValue: must be base64, got "!!!"` },
  { name: 'arrayValue values an object', body: jr({ body: { arrayValue: { values: {} } } }), message: `${R}.body.arrayValue.values: expected an array, got an object` },
  { name: 'kvlist entry a string', body: jr({ body: { kvlistValue: { values: ['x'] } } }), message: `${R}.body.kvlistValue.values[0]: expected an object, got the string "x"` },
  { name: 'lone surrogate in a key', body: enc('{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"a\\ud800"}]}]}]}]}'), message: `${R}.attributes[0].key: string contains a lone UTF-16 surrogate (not valid Unicode)` },
  { name: 'scope name a number', body: enc({ resourceLogs: [{ scopeLogs: [{ scope: { name: 1 } }] }] }), message: 'resourceLogs[0].scopeLogs[0].scope.name: expected a string, got number 1' },
  { name: 'entityRefs idKeys entry a number', body: enc({ resourceLogs: [{ resource: { entityRefs: [{ idKeys: [1] }] } }] }), message: 'resourceLogs[0].resource.entityRefs[0].idKeys[0]: expected a string, got number 1' },
  { name: 'body nested 33 deep (limit 32)', body: jr({ body: nestedAnyValueJson(33) }), message: /\.body(\.arrayValue\.values\[0\]){32}: AnyValue nesting deeper than 32 levels/ },
  { name: 'attribute nested 4 deep (limit 3)', maxNestingDepth: 3, body: jr({ attributes: [{ key: 'k', value: nestedAnyValueJson(4) }] }), message: /attributes\[0\]\.value(\.arrayValue\.values\[0\]){3}: AnyValue nesting deeper than 3/ },
];

function check(decode: typeof decodeLogsJson, c: Case): void {
  let r: ReturnType<typeof decodeLogsJson> | undefined;
  expect(() => {
    r = decode(c.body, { maxNestingDepth: c.maxNestingDepth ?? LIMITS.maxNestingDepth });
  }).not.toThrow();
  expect(r!.ok).toBe(false);
  const message = (r as { message: string }).message;
  if (typeof c.message === 'string') expect(message).toContain(c.message);
  else expect(message).toMatch(c.message);
}

describe('decodeLogsProtobuf refuses bad input', () => {
  it.each(protobufCases.map((c) => [c.name, c] as const))('%s', (_name, c) => check(decodeLogsProtobuf, c));
});

describe('decodeLogsJson refuses bad input', () => {
  it.each(jsonCases.map((c) => [c.name, c] as const))('%s', (_name, c) => check(decodeLogsJson, c));
});

describe('limits are inclusive', () => {
  it('accepts nesting exactly at the limit on both routes', () => {
    for (const limit of [1, 3, 32]) {
      const p = decodeLogsProtobuf(oneScope(ld(5, nestedAnyValue(limit))), { maxNestingDepth: limit });
      expect(p).toMatchObject({ ok: true, entries: [expect.any(Uint8Array)] });
      const j = decodeLogsJson(jr({ body: nestedAnyValueJson(limit) }), { maxNestingDepth: limit });
      expect(j).toMatchObject({ ok: true, entries: [expect.any(Uint8Array)] });
      expect(Buffer.from((j as { entries: Uint8Array[] }).entries[0]!)).toEqual(Buffer.from((p as { entries: Uint8Array[] }).entries[0]!));
    }
  });

  it('does not overflow the stack on absurd nesting (100 000 levels)', () => {
    const deep = '{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":' + '{"arrayValue":{"values":['.repeat(100_000) + ']}}'.repeat(100_000) + '}]}]}]}';
    const j = decodeLogsJson(enc(deep), LIMITS);
    expect(j.ok).toBe(false);
    // 20 000 levels of AnyValue{array_value: ArrayValue{values: …}}, built with native copies.
    let wire: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 20_000; i++) {
      const inner = Buffer.concat([Buffer.from(key(1, 2)), Buffer.from(varint(wire.length)), wire]);
      wire = Buffer.concat([Buffer.from(key(5, 2)), Buffer.from(varint(inner.length)), inner]);
      if (wire.length > 1_000_000) break;
    }
    const p = decodeLogsProtobuf(oneScope(ld(5, wire)), LIMITS);
    expect(p).toMatchObject({ ok: false, message: expect.stringContaining('AnyValue nesting deeper than 32') });
  });
});

describe('valid edge cases', () => {
  it('empty requests decode to no entries', () => {
    expect(decodeLogsProtobuf(new Uint8Array(0), LIMITS)).toEqual({ ok: true, entries: [] });
    expect(decodeLogsProtobuf(ld(1, ld(2)), LIMITS)).toEqual({ ok: true, entries: [] });
    expect(decodeLogsProtobuf(ld(1), LIMITS)).toEqual({ ok: true, entries: [] });
    expect(decodeLogsJson(enc({}), LIMITS)).toEqual({ ok: true, entries: [] });
    expect(decodeLogsJson(enc({ resourceLogs: [] }), LIMITS)).toEqual({ ok: true, entries: [] });
    expect(decodeLogsJson(enc({ resourceLogs: null }), LIMITS)).toEqual({ ok: true, entries: [] });
    expect(decodeLogsJson(enc({ resourceLogs: [{ scopeLogs: [{ logRecords: [] }] }] }), LIMITS)).toEqual({ ok: true, entries: [] });
  });

  it('keeps unknown protobuf fields inside a record as received', () => {
    const record = cat(RECORD_OK, vf(100, 42), ld(101, [1, 2, 3]), cat(key(102, 5), [9, 9, 9, 9]), cat(key(103, 1), new Array(8).fill(8)));
    const r = decodeLogsProtobuf(oneScope(record), LIMITS);
    if (!r.ok) throw new Error(r.message);
    expect(Buffer.from(r.entries[0]!).includes(Buffer.from(record))).toBe(true);
  });

  it('skips unknown protobuf fields at every level without validating their contents', () => {
    const junk = ld(99, [0xff, 0xfe]); // not UTF-8, not a message: unknown, so not ours to judge
    const r = decodeLogsProtobuf(cat(junk, ld(1, junk, ld(2, junk, ld(2, RECORD_OK)))), LIMITS);
    expect(r.ok).toBe(true);
  });

  it('ignores unknown JSON keys, including snake_case spellings, as the OTLP spec requires', () => {
    const r = decodeLogsJson(jr({ body: { stringValue: 'x', future: 1 }, trace_id: 'not even hex', somethingNew: { a: [1] } }), LIMITS);
    const plain = decodeLogsJson(jr({ body: { stringValue: 'x' } }), LIMITS);
    expect(r.ok && plain.ok).toBe(true);
    expect(Buffer.from((r as { entries: Uint8Array[] }).entries[0]!)).toEqual(Buffer.from((plain as { entries: Uint8Array[] }).entries[0]!));
  });

  it('accepts severity enum names and unknown severity numbers (proto3 enums are open)', () => {
    const byName = decodeLogsJson(jr({ severityNumber: 'SEVERITY_NUMBER_WARN' }), LIMITS);
    const byNumber = decodeLogsJson(jr({ severityNumber: 13 }), LIMITS);
    expect(byName).toEqual(byNumber);
    expect(decodeLogsJson(jr({ severityNumber: 99 }), LIMITS).ok).toBe(true);
    expect(decodeLogsProtobuf(oneScope(vf(2, 99)), LIMITS).ok).toBe(true);
    expect(decodeLogsProtobuf(oneScope(vf(2, -1)), LIMITS).ok).toBe(true);
  });

  it('accepts empty ids and uppercase hex ids', () => {
    const upper = decodeLogsJson(jr({ traceId: 'AB'.repeat(16), spanId: '' }), LIMITS);
    const lower = decodeLogsJson(jr({ traceId: 'ab'.repeat(16) }), LIMITS);
    expect(upper).toEqual(lower);
    expect(decodeLogsProtobuf(oneScope(cat(ld(9, []), ld(10, []))), LIMITS).ok).toBe(true);
  });

  it('merges a repeated resource field (protobuf merge = concatenation)', () => {
    const body = ld(1, ld(1, ld(1, str(1, 'a'))), ld(1, ld(1, str(1, 'b'))), ld(2, ld(2, RECORD_OK)));
    const r = decodeLogsProtobuf(body, LIMITS);
    if (!r.ok) throw new Error(r.message);
    const merged = Buffer.from(ld(1, ld(1, str(1, 'a')), ld(1, str(1, 'b'))));
    expect(Buffer.from(r.entries[0]!).subarray(0, merged.length)).toEqual(merged);
  });

  it('a varint of exactly 10 bytes (int64 -1) is fine', () => {
    expect(varint(-1)).toHaveLength(10);
    expect(decodeLogsProtobuf(oneScope(ld(5, vf(3, -1))), LIMITS).ok).toBe(true);
  });
});

describe('decoded-size budget (maxDecodedBytes)', () => {
  // A 100 KB resource shared by 5 000 empty records: a 110 KB body that would decode into 500 MB.
  const bigResource = ld(1, ld(1, str(1, 'k'), ld(2, str(1, 'x'.repeat(100_000)))));
  const emptyRecords = Buffer.concat(Array.from({ length: 5000 }, () => Buffer.from([0x12, 0x00])));
  const bomb = ld(1, bigResource, ld(2, emptyRecords));

  it('refuses a resource-amplification bomb at the default cap, marked tooLarge, before allocating', () => {
    expect(bomb.length).toBeLessThan(120_000);
    const t0 = performance.now();
    const r = decodeLogsProtobuf(bomb, LIMITS);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(r).toEqual({
      ok: false,
      tooLarge: true,
      message: `request: the request would decode into more than ${256 * 1024 * 1024} bytes of entries (every record carries a copy of its resource and scope); send fewer records per request`,
    });
  });

  it('refuses the same in OTLP/JSON', () => {
    const json = enc({ resourceLogs: [{ resource: { attributes: [{ key: 'k', value: { stringValue: 'x'.repeat(100_000) } }] }, scopeLogs: [{ logRecords: Array.from({ length: 5000 }, () => ({})) }] }] });
    const r = decodeLogsJson(json, LIMITS);
    expect(r).toMatchObject({ ok: false, tooLarge: true, message: expect.stringMatching(/^request: the request would decode into more than 268435456 bytes/) });
  });

  it('counts entry bytes plus a fixed overhead per entry, and accepts exactly at the cap', () => {
    const body = oneScope(RECORD_OK, RECORD_OK);
    const r = decodeLogsProtobuf(body, LIMITS);
    if (!r.ok) throw new Error(r.message);
    const need = r.entries.reduce((n, e) => n + e.length + 256, 0);
    expect(decodeLogsProtobuf(body, { maxNestingDepth: 32, maxDecodedBytes: need }).ok).toBe(true);
    expect(decodeLogsProtobuf(body, { maxNestingDepth: 32, maxDecodedBytes: need - 1 })).toMatchObject({ ok: false, tooLarge: true });
    const j = decodeLogsJson(jr({ severityText: 'INFO', body: { stringValue: 'hello' } }), LIMITS);
    if (!j.ok) throw new Error(j.message);
    const jneed = j.entries[0]!.length + 256;
    expect(decodeLogsJson(jr({ severityText: 'INFO', body: { stringValue: 'hello' } }), { maxNestingDepth: 32, maxDecodedBytes: jneed }).ok).toBe(true);
    expect(decodeLogsJson(jr({ severityText: 'INFO', body: { stringValue: 'hello' } }), { maxNestingDepth: 32, maxDecodedBytes: jneed - 1 })).toMatchObject({ ok: false, tooLarge: true });
  });

  it('other refusals are not marked tooLarge', () => {
    expect(decodeLogsProtobuf(oneScope(ld(9, [1])), LIMITS)).not.toHaveProperty('tooLarge');
    expect(decodeLogsJson(enc('{'), LIMITS)).not.toHaveProperty('tooLarge');
  });
});
