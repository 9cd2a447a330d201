/**
 * The OpenTelemetry JS SDK's own OTLP serializers (@opentelemetry/otlp-transformer, the code inside
 * the real exporters) as producers: records emitted through the real SDK, serialized as protobuf
 * and as OTLP/JSON, must decode with our decoders into entries that render to the same OTLP/JSON and
 * carry every field the SDK set — a check against a real-world encoder, not only protobufjs.
 */
import { SeverityNumber } from '@opentelemetry/api-logs';
import { JsonLogsSerializer, ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { describe, expect, it } from 'vitest';
import { decodeLogsJson, decodeLogsProtobuf, entryToOtlpJson } from '../../src/otlp/index.js';
import { LIMITS } from './helpers.js';

type O = Record<string, unknown>;

function emit() {
  const exporter = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'sdk-check', 'host.name': 'node-a' }),
    processors: [new SimpleLogRecordProcessor({ exporter })],
  });
  const logger = provider.getLogger('audit-scope', '2.0.0');
  const spanContext = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 };
  logger.emit({
    severityNumber: SeverityNumber.WARN,
    severityText: 'WARN',
    body: 'user 4711 changed role → admin',
    timestamp: new Date('2026-11-28T05:00:00.123Z'),
    eventName: 'role.changed',
    attributes: {
      str: 'é',
      int: 42,
      negative: -7,
      dbl: 2.5,
      bool: true,
      arr: ['a', 'b'],
      bytes: new Uint8Array([0, 255]),
      map: { nested: { deeper: [1, 2] } },
    },
  });
  // Trace context: the SDK reads the span from the record's context under the API's span key.
  logger.emit({ body: { structured: 'body', n: 1 }, severityNumber: SeverityNumber.INFO, ...withSpan(spanContext) });
  return exporter.getFinishedLogRecords();
}

function withSpan(sc: { traceId: string; spanId: string; traceFlags: number }) {
  const key = Symbol.for('OpenTelemetry Context Key SPAN');
  const span = { spanContext: () => sc };
  const ctx = {
    getValue: (k: symbol) => (k === key ? span : undefined),
    setValue: () => ctx,
    deleteValue: () => ctx,
  };
  return { context: ctx as never };
}

function records(entries: Uint8Array[]): { resource: O; scope: O; record: O }[] {
  return entries.map((e) => {
    const rl = entryToOtlpJson(e) as { resource: O; scopeLogs: { scope: O; logRecords: O[] }[] };
    return { resource: rl.resource, scope: rl.scopeLogs[0]!.scope, record: rl.scopeLogs[0]!.logRecords[0]! };
  });
}

/** Drops keys whose value is a proto3 default, which a serializer may or may not write. */
function withoutDefaults(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutDefaults);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== 0 && x !== '' && x !== '0').map(([k, x]) => [k, withoutDefaults(x)]));
  }
  return v;
}

describe('the OTel JS SDK serializers as producers', () => {
  const logs = emit();

  it('protobuf and JSON serializations decode to the same records, with every field intact', () => {
    const pb = ProtobufLogsSerializer.serializeRequest(logs);
    const js = JsonLogsSerializer.serializeRequest(logs);
    if (!pb || !js) throw new Error('serializer returned nothing');
    const viaPb = decodeLogsProtobuf(pb, LIMITS);
    const viaJs = decodeLogsJson(js, LIMITS);
    if (!viaPb.ok) throw new Error(viaPb.message);
    if (!viaJs.ok) throw new Error(viaJs.message);
    expect(viaPb.entries).toHaveLength(2);
    expect(viaJs.entries).toHaveLength(2);
    // Renderings agree once the explicit zero defaults the protobuf serializer writes are ignored
    // (they are kept in protobuf entries, as received; see api-otlp.md).
    expect(withoutDefaults(records(viaJs.entries))).toEqual(withoutDefaults(records(viaPb.entries)));

    const [first, second] = records(viaPb.entries);
    expect(first!.resource).toMatchObject({ attributes: expect.arrayContaining([{ key: 'service.name', value: { stringValue: 'sdk-check' } }]) });
    expect(first!.scope).toMatchObject({ name: 'audit-scope', version: '2.0.0' });
    expect(first!.record).toMatchObject({
      timeUnixNano: String(BigInt(Date.parse('2026-11-28T05:00:00.123Z')) * 1_000_000n),
      severityNumber: 13,
      severityText: 'WARN',
      eventName: 'role.changed',
      body: { stringValue: 'user 4711 changed role → admin' },
    });
    const attrs = Object.fromEntries((first!.record.attributes as { key: string; value: O }[]).map((a) => [a.key, a.value]));
    expect(attrs).toEqual({
      str: { stringValue: 'é' },
      int: { intValue: '42' },
      negative: { intValue: '-7' },
      dbl: { doubleValue: 2.5 },
      bool: { boolValue: true },
      arr: { arrayValue: { values: [{ stringValue: 'a' }, { stringValue: 'b' }] } },
      bytes: { bytesValue: 'AP8=' },
      map: { kvlistValue: { values: [{ key: 'nested', value: { kvlistValue: { values: [{ key: 'deeper', value: { arrayValue: { values: [{ intValue: '1' }, { intValue: '2' }] } } }] } } }] } },
    });
    expect(second!.record).toMatchObject({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      flags: 1,
      body: { kvlistValue: { values: [{ key: 'structured', value: { stringValue: 'body' } }, { key: 'n', value: { intValue: '1' } }] } },
    });
  });
});
