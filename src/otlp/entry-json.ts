/**
 * Renders stored entries (protobuf ResourceLogs, see api-otlp.md / docs/format.md) as OTLP/JSON for
 * `sealtrail inspect` and `sealtrail export`: lowerCamelCase keys, trace/span ids as hex, enums as
 * integers, 64-bit integers as decimal strings, bytes as base64, proto3 defaults omitted (OTLP
 * specification, "JSON Protobuf Encoding"). Fields unknown to this version are not rendered (JSON
 * has no way to carry them); the entry bytes keep them.
 */
import { DecodeFailure, WT_I32, WT_I64, WT_LEN, WT_VARINT, expectWire, rField, rLen, rWire, readLen, readTag, skipValue } from './wire.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

type Obj = Record<string, unknown>;

/**
 * One entry as an OTLP/JSON `ResourceLogs` object.
 * @throws TypeError if `entry` is not a well-formed ResourceLogs message.
 */
export function entryToOtlpJson(entry: Uint8Array): object {
  try {
    return readResourceLogs(entry, 0, entry.length);
  } catch (e) {
    if (e instanceof DecodeFailure) throw new TypeError(`not a valid entry: ${e.message()}`);
    throw e;
  }
}

/**
 * Entries as one OTLP/JSON `ExportLogsServiceRequest` (one ResourceLogs per entry), which an
 * OTLP/HTTP endpoint accepts as is.
 * @throws TypeError if an entry is not a well-formed ResourceLogs message.
 */
export function exportRequestJsonFromEntries(entries: readonly Uint8Array[]): object {
  return { resourceLogs: entries.map((e) => entryToOtlpJson(e)) };
}

type FieldReader = (o: Obj, b: Uint8Array, s: number, e: number) => void;

/** Walks a message, handing each known field's payload range to its reader. */
function readMessage(b: Uint8Array, pos: number, end: number, fields: Record<number, [number, FieldReader]>): Obj {
  const o: Obj = {};
  while (pos < end) {
    pos = readTag(b, pos, end);
    const f = fields[rField];
    if (f === undefined) {
      pos = skipValue(rWire, b, pos, end);
      continue;
    }
    const [wire, read] = f;
    expectWire(String(rField), wire);
    let s = pos;
    if (wire === WT_LEN) {
      s = readLen(b, pos, end);
      pos = s + rLen;
    } else pos = skipValue(wire, b, pos, end);
    read(o, b, s, pos);
  }
  return o;
}

function str(b: Uint8Array, s: number, e: number): string {
  return utf8.decode(b.subarray(s, e));
}

function varint64(b: Uint8Array, s: number): bigint {
  let v = 0n;
  let shift = 0n;
  for (let i = s; ; i++) {
    const c = b[i]!;
    v |= BigInt(c & 0x7f) << shift;
    if (c < 0x80) return v;
    shift += 7n;
  }
}

function le64(b: Uint8Array, s: number): bigint {
  return new DataView(b.buffer, b.byteOffset + s, 8).getBigUint64(0, true);
}

function setString(key: string): FieldReader {
  return (o, b, s, e) => {
    const v = str(b, s, e);
    if (v !== '') o[key] = v;
    else delete o[key];
  };
}

function pushTo(key: string, read: (b: Uint8Array, s: number, e: number) => unknown): FieldReader {
  return (o, b, s, e) => {
    ((o[key] as unknown[] | undefined) ?? (o[key] = [])).push(read(b, s, e));
  };
}

function setUint32(key: string): FieldReader {
  return (o, b, s) => {
    const v = Number(BigInt.asUintN(32, varint64(b, s)));
    if (v !== 0) o[key] = v;
    else delete o[key];
  };
}

const hexOf = (b: Uint8Array, s: number, e: number): string => Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('hex');

function readAnyValue(b: Uint8Array, s: number, e: number): Obj {
  return readMessage(b, s, e, {
    1: [WT_LEN, (o, bb, ss, ee) => set1(o, 'stringValue', str(bb, ss, ee))],
    2: [WT_VARINT, (o, bb, ss) => set1(o, 'boolValue', varint64(bb, ss) !== 0n)],
    3: [WT_VARINT, (o, bb, ss) => set1(o, 'intValue', BigInt.asIntN(64, varint64(bb, ss)).toString())],
    4: [WT_I64, (o, bb, ss) => set1(o, 'doubleValue', jsonDouble(new DataView(bb.buffer, bb.byteOffset + ss, 8).getFloat64(0, true)))],
    5: [WT_LEN, (o, bb, ss, ee) => set1(o, 'arrayValue', readMessage(bb, ss, ee, { 1: [WT_LEN, pushTo('values', readAnyValue)] }))],
    6: [WT_LEN, (o, bb, ss, ee) => set1(o, 'kvlistValue', readMessage(bb, ss, ee, { 1: [WT_LEN, pushTo('values', readKeyValue)] }))],
    7: [WT_LEN, (o, bb, ss, ee) => set1(o, 'bytesValue', Buffer.from(bb.buffer, bb.byteOffset + ss, ee - ss).toString('base64'))],
  });
}

/** A oneof holds one member: a later one on the wire replaces an earlier one (protobuf "last one wins"). */
function set1(o: Obj, key: string, v: unknown): void {
  for (const k of Object.keys(o)) delete o[k];
  o[key] = v;
}

/**
 * proto3 JSON writes non-finite doubles as strings; -0 too, because JSON.stringify(-0) is "0" and
 * the rendering must not lose the sign the entry holds (decodeLogsJson reads "-0" back as -0).
 */
function jsonDouble(v: number): number | string {
  if (Object.is(v, -0)) return '-0';
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

function readKeyValue(b: Uint8Array, s: number, e: number): Obj {
  return readMessage(b, s, e, {
    1: [WT_LEN, setString('key')],
    2: [WT_LEN, (o, bb, ss, ee) => (o.value = readAnyValue(bb, ss, ee))],
  });
}

function readResource(b: Uint8Array, s: number, e: number): Obj {
  return readMessage(b, s, e, {
    1: [WT_LEN, pushTo('attributes', readKeyValue)],
    2: [WT_VARINT, setUint32('droppedAttributesCount')],
    3: [
      WT_LEN,
      pushTo('entityRefs', (bb, ss, ee) =>
        readMessage(bb, ss, ee, {
          1: [WT_LEN, setString('schemaUrl')],
          2: [WT_LEN, setString('type')],
          3: [WT_LEN, pushTo('idKeys', str)],
          4: [WT_LEN, pushTo('descriptionKeys', str)],
        }),
      ),
    ],
  });
}

function readScope(b: Uint8Array, s: number, e: number): Obj {
  return readMessage(b, s, e, {
    1: [WT_LEN, setString('name')],
    2: [WT_LEN, setString('version')],
    3: [WT_LEN, pushTo('attributes', readKeyValue)],
    4: [WT_VARINT, setUint32('droppedAttributesCount')],
  });
}

function setFixed64(key: string): FieldReader {
  return (o, b, s) => {
    const v = le64(b, s);
    if (v !== 0n) o[key] = v.toString();
    else delete o[key];
  };
}

function setId(key: string): FieldReader {
  return (o, b, s, e) => {
    if (e > s) o[key] = hexOf(b, s, e);
    else delete o[key];
  };
}

function readLogRecord(b: Uint8Array, s: number, e: number): Obj {
  return readMessage(b, s, e, {
    1: [WT_I64, setFixed64('timeUnixNano')],
    2: [
      WT_VARINT,
      (o, bb, ss) => {
        const v = Number(BigInt.asIntN(32, varint64(bb, ss)));
        if (v !== 0) o.severityNumber = v;
        else delete o.severityNumber;
      },
    ],
    3: [WT_LEN, setString('severityText')],
    5: [WT_LEN, (o, bb, ss, ee) => (o.body = readAnyValue(bb, ss, ee))],
    6: [WT_LEN, pushTo('attributes', readKeyValue)],
    7: [WT_VARINT, setUint32('droppedAttributesCount')],
    8: [
      WT_I32,
      (o, bb, ss) => {
        const v = new DataView(bb.buffer, bb.byteOffset + ss, 4).getUint32(0, true);
        if (v !== 0) o.flags = v;
        else delete o.flags;
      },
    ],
    9: [WT_LEN, setId('traceId')],
    10: [WT_LEN, setId('spanId')],
    11: [WT_I64, setFixed64('observedTimeUnixNano')],
    12: [WT_LEN, setString('eventName')],
  });
}

function readScopeLogs(b: Uint8Array, s: number, e: number): Obj {
  return readMessage(b, s, e, {
    1: [WT_LEN, (o, bb, ss, ee) => (o.scope = readScope(bb, ss, ee))],
    2: [WT_LEN, pushTo('logRecords', readLogRecord)],
    3: [WT_LEN, setString('schemaUrl')],
  });
}

function readResourceLogs(b: Uint8Array, s: number, e: number): Obj {
  return readMessage(b, s, e, {
    1: [WT_LEN, (o, bb, ss, ee) => (o.resource = readResource(bb, ss, ee))],
    2: [WT_LEN, pushTo('scopeLogs', readScopeLogs)],
    3: [WT_LEN, setString('schemaUrl')],
  });
}
