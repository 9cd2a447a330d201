/**
 * Every AnyValue kind survives both routes (OTLP/JSON and protobuf) and the rendering back to
 * OTLP/JSON; the entry format is pinned by hand-derived bytes; the response bodies decode with
 * protobufjs as the messages they claim to be.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeLogsJson,
  decodeLogsProtobuf,
  entryToOtlpJson,
  exportLogsResponseJson,
  exportLogsResponseProtobuf,
  exportRequestJsonFromEntries,
  rpcStatusJson,
  rpcStatusProtobuf,
} from '../../src/otlp/index.js';
import { AnyValue, CANON, ExportLogsServiceResponse, LIMITS, ResourceLogs, Status, encodeRequest } from './helpers.js';

const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

function jsonEntry(body: unknown): Uint8Array {
  const r = decodeLogsJson(enc({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body }] }] }] }), LIMITS);
  if (!r.ok) throw new Error(r.message);
  expect(r.entries).toHaveLength(1);
  return r.entries[0]!;
}

function renderedBody(entry: Uint8Array): unknown {
  const o = entryToOtlpJson(entry) as { scopeLogs: { logRecords: { body?: unknown }[] }[] };
  return o.scopeLogs[0]!.logRecords[0]!.body;
}

function protobufjsBody(entry: Uint8Array): Record<string, unknown> {
  const rl = ResourceLogs.toObject(ResourceLogs.decode(entry), { ...CANON, defaults: false }) as {
    scopeLogs: { logRecords: { body: Record<string, unknown> }[] }[];
  };
  return rl.scopeLogs[0]!.logRecords[0]!.body;
}

/** [name, OTLP/JSON body as sent, its canonical rendering, the protobufjs (toObject) view]. */
const kinds: [string, unknown, unknown, unknown][] = [
  ['string', { stringValue: 'héllo ✓ 😀' }, { stringValue: 'héllo ✓ 😀' }, { stringValue: 'héllo ✓ 😀' }],
  ['empty string (a set oneof member)', { stringValue: '' }, { stringValue: '' }, { stringValue: '' }],
  ['bool true', { boolValue: true }, { boolValue: true }, { boolValue: true }],
  ['bool false', { boolValue: false }, { boolValue: false }, { boolValue: false }],
  ['int 0', { intValue: '0' }, { intValue: '0' }, { intValue: '0' }],
  ['int -1', { intValue: '-1' }, { intValue: '-1' }, { intValue: '-1' }],
  ['int64 max as string', { intValue: '9223372036854775807' }, { intValue: '9223372036854775807' }, { intValue: '9223372036854775807' }],
  ['int64 min as string', { intValue: '-9223372036854775808' }, { intValue: '-9223372036854775808' }, { intValue: '-9223372036854775808' }],
  ['int as JSON number', { intValue: 42 }, { intValue: '42' }, { intValue: '42' }],
  ['int as the largest safe JSON number', { intValue: -9007199254740991 }, { intValue: '-9007199254740991' }, { intValue: '-9007199254740991' }],
  ['double', { doubleValue: 1.5 }, { doubleValue: 1.5 }, { doubleValue: 1.5 }],
  ['double 0', { doubleValue: 0 }, { doubleValue: 0 }, { doubleValue: 0 }],
  ['double -0 (as the string "-0")', { doubleValue: '-0' }, { doubleValue: '-0' }, { doubleValue: -0 }],
  ['double NaN', { doubleValue: 'NaN' }, { doubleValue: 'NaN' }, { doubleValue: NaN }],
  ['double Infinity', { doubleValue: 'Infinity' }, { doubleValue: 'Infinity' }, { doubleValue: Infinity }],
  ['double -Infinity', { doubleValue: '-Infinity' }, { doubleValue: '-Infinity' }, { doubleValue: -Infinity }],
  ['double as a numeric string', { doubleValue: '2.5e-3' }, { doubleValue: 0.0025 }, { doubleValue: 0.0025 }],
  ['double extremes', { doubleValue: 5e-324 }, { doubleValue: 5e-324 }, { doubleValue: 5e-324 }],
  ['bytes', { bytesValue: 'AQID/w==' }, { bytesValue: 'AQID/w==' }, { bytesValue: 'AQID/w==' }],
  ['bytes, URL-safe unpadded', { bytesValue: 'AQID_w' }, { bytesValue: 'AQID/w==' }, { bytesValue: 'AQID/w==' }],
  ['bytes, empty', { bytesValue: '' }, { bytesValue: '' }, { bytesValue: '' }],
  [
    'array of every scalar',
    { arrayValue: { values: [{ stringValue: 'a' }, { boolValue: true }, { intValue: '7' }, { doubleValue: 0.5 }, { bytesValue: 'AA==' }, {}] } },
    { arrayValue: { values: [{ stringValue: 'a' }, { boolValue: true }, { intValue: '7' }, { doubleValue: 0.5 }, { bytesValue: 'AA==' }, {}] } },
    { arrayValue: { values: [{ stringValue: 'a' }, { boolValue: true }, { intValue: '7' }, { doubleValue: 0.5 }, { bytesValue: 'AA==' }, {}] } },
  ],
  ['empty array', { arrayValue: {} }, { arrayValue: {} }, { arrayValue: { values: [] } }],
  [
    'kvlist with nested kvlist and array',
    { kvlistValue: { values: [{ key: 'k', value: { kvlistValue: { values: [{ key: 'n', value: { arrayValue: { values: [{ intValue: '1' }] } } }] } } }, { key: 'empty' }] } },
    { kvlistValue: { values: [{ key: 'k', value: { kvlistValue: { values: [{ key: 'n', value: { arrayValue: { values: [{ intValue: '1' }] } } }] } } }, { key: 'empty' }] } },
    { kvlistValue: { values: [{ key: 'k', value: { kvlistValue: { values: [{ key: 'n', value: { arrayValue: { values: [{ intValue: '1' }] } } }] } } }, { key: 'empty' }] } },
  ],
  ['empty kvlist', { kvlistValue: { values: [] } }, { kvlistValue: {} }, { kvlistValue: { values: [] } }],
  ['empty AnyValue', {}, {}, {}],
];

describe('every AnyValue kind round-trips', () => {
  it.each(kinds)('%s', (_name, sent, rendered, pbjs) => {
    const entry = jsonEntry(sent);
    // 1. JSON → entry → OTLP/JSON rendering.
    expect(renderedBody(entry)).toEqual(rendered);
    // 2. An independent decoder (protobufjs) reads the entry's body as the value sent.
    expect(protobufjsBody(entry)).toEqual(pbjs);
    // 3. The rendering, sent again as JSON, gives the same entry bytes.
    expect(hexOf(jsonEntry(rendered))).toBe(hexOf(entry));
    // 4. The same body encoded by protobufjs and sent as protobuf gives the same entry bytes.
    const wire = encodeRequest({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: AnyValue.toObject(AnyValue.decode(bodyBytes(entry))) }] }] }] });
    const r = decodeLogsProtobuf(wire, LIMITS);
    if (!r.ok) throw new Error(r.message);
    expect(hexOf(r.entries[0]!)).toBe(hexOf(entry));
  });

  it('keeps the sign of -0 in the entry', () => {
    // AnyValue{ double_value(4), wire type fixed64 } = key 0x21, then -0.0 little-endian.
    expect(hexOf(bodyBytes(jsonEntry({ doubleValue: '-0' })))).toBe('21' + '0000000000000080');
  });
});

/** The body AnyValue's bytes inside an entry produced for a record with only a body. */
function bodyBytes(entry: Uint8Array): Uint8Array {
  // entry = 12 L1 12 L2 2a L3 <AnyValue>; every length here is < 128 (one byte).
  expect([entry[0], entry[2], entry[4]]).toEqual([0x12, 0x12, 0x2a]);
  return entry.subarray(6, 6 + entry[5]!);
}

describe('entry format (api-otlp.md, docs/format.md)', () => {
  it('a record with only a body is ResourceLogs{scope_logs{log_records{body}}}', () => {
    // LogRecord{ body(5) = AnyValue{ string_value(1) = "hi" } }   = 2a 04 0a 02 68 69
    // ScopeLogs{ log_records(2) = that }                          = 12 06 ...
    // ResourceLogs{ scope_logs(2) = that }                        = 12 08 ...
    expect(hexOf(jsonEntry({ stringValue: 'hi' }))).toBe('1208' + '1206' + '2a04' + '0a026869');
  });

  it('carries resource, scope and both schema URLs, in field-number order', () => {
    const req = {
      resourceLogs: [
        {
          schemaUrl: 'R',
          resource: { attributes: [{ key: 'a', value: { boolValue: true } }] },
          scopeLogs: [{ schemaUrl: 'S', scope: { name: 'n' }, logRecords: [{ severityNumber: 9 }, { severityNumber: 17 }] }],
        },
      ],
    };
    // resource(1) = Resource{ attributes(1) = KeyValue{ key(1) "a", value(2) = AnyValue{ bool_value(2) true } } }
    const resource = '0a09' + '0a07' + '0a0161' + '1202' + '1001';
    // scope(1) = InstrumentationScope{ name(1) "n" }
    const scope = '0a03' + '0a016e';
    // scope_logs(2) = ScopeLogs{ scope, log_records(2) = LogRecord{ severity_number(2) }, schema_url(3) "S" }, schema_url(3) "R"
    const entry = (sev: string) => resource + '120c' + scope + '1202' + `10${sev}` + '1a0153' + '1a0152';
    const viaJson = decodeLogsJson(enc(req), LIMITS);
    const viaProto = decodeLogsProtobuf(encodeRequest(req), LIMITS);
    if (!viaJson.ok || !viaProto.ok) throw new Error('decode failed');
    expect(viaJson.entries.map(hexOf)).toEqual([entry('09'), entry('11')]);
    expect(viaProto.entries.map(hexOf)).toEqual([entry('09'), entry('11')]);
    expect(entryToOtlpJson(viaJson.entries[0]!)).toEqual({
      resource: { attributes: [{ key: 'a', value: { boolValue: true } }] },
      scopeLogs: [{ scope: { name: 'n' }, logRecords: [{ severityNumber: 9 }], schemaUrl: 'S' }],
      schemaUrl: 'R',
    });
  });

  it('renders every LogRecord field in OTLP/JSON form', () => {
    const record = {
      timeUnixNano: '1700000000000000001',
      observedTimeUnixNano: '18446744073709551615',
      severityNumber: 21,
      severityText: 'FATAL',
      body: { stringValue: 'x' },
      attributes: [{ key: 'k', value: { intValue: '1' } }],
      droppedAttributesCount: 4,
      flags: 1,
      traceId: '0102030405060708090a0b0c0d0e0f10',
      spanId: 'a1a2a3a4a5a6a7a8',
      eventName: 'login',
    };
    const r = decodeLogsJson(enc({ resourceLogs: [{ scopeLogs: [{ logRecords: [record] }] }] }), LIMITS);
    if (!r.ok) throw new Error(r.message);
    expect(exportRequestJsonFromEntries(r.entries)).toEqual({ resourceLogs: [{ scopeLogs: [{ logRecords: [record] }] }] });
  });

  it('entryToOtlpJson refuses bytes that are not an entry', () => {
    expect(() => entryToOtlpJson(Uint8Array.of(0x12, 0x05, 0x00))).toThrow(TypeError);
    expect(() => entryToOtlpJson(Uint8Array.of(0x12, 0x02, 0x0a, 0x01, 0xff))).toThrow(/not a valid entry/);
  });
});

describe('response bodies', () => {
  it('full success is an empty ExportLogsServiceResponse: 0 bytes, {} in JSON', () => {
    expect(exportLogsResponseProtobuf()).toEqual(new Uint8Array(0));
    expect(exportLogsResponseProtobuf(0, '')).toHaveLength(0);
    expect(exportLogsResponseJson()).toBe('{}');
  });

  it('partial success decodes with protobufjs and parses as OTLP/JSON', () => {
    const pb = ExportLogsServiceResponse.toObject(ExportLogsServiceResponse.decode(exportLogsResponseProtobuf(300, 'some dropped ✓')), { longs: String });
    expect(pb).toEqual({ partialSuccess: { rejectedLogRecords: '300', errorMessage: 'some dropped ✓' } });
    expect(JSON.parse(exportLogsResponseJson(300, 'some dropped ✓'))).toEqual({ partialSuccess: { rejectedLogRecords: '300', errorMessage: 'some dropped ✓' } });
    expect(() => exportLogsResponseProtobuf(-1)).toThrow(RangeError);
  });

  it('google.rpc.Status bodies decode with protobufjs', () => {
    const msg = 'resourceLogs[0].scopeLogs[0].logRecords[0].traceId: must be 16 bytes (or empty), got 5';
    expect(Status.toObject(Status.decode(rpcStatusProtobuf(3, msg)))).toEqual({ code: 3, message: msg });
    expect(Status.toObject(Status.decode(rpcStatusProtobuf(-2, 'neg')))).toEqual({ code: -2, message: 'neg' });
    expect(JSON.parse(rpcStatusJson(14, 'shutting down'))).toEqual({ code: 14, message: 'shutting down' });
    expect(() => rpcStatusProtobuf(1.5, 'x')).toThrow(RangeError);
  });
});
