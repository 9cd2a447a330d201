/**
 * End-to-end with the real OpenTelemetry JS SDK: logs emitted through @opentelemetry/api-logs and
 * the SDK's LoggerProvider, exported by each official OTLP logs exporter (gRPC, HTTP/protobuf,
 * HTTP/JSON; plain and gzip) to our receivers on 127.0.0.1:0. The stored entries are decoded with
 * protobufjs (independent of our decoder) and compared with what the SDK was given, and byte for
 * byte with the SDK's own protobuf serialisation of the same records.
 */
import { ROOT_CONTEXT, TraceFlags, trace } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter as GrpcExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as JsonExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as ProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import type { CompressionAlgorithm } from '@opentelemetry/otlp-exporter-base';
import { ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchLogRecordProcessor,
  InMemoryLogRecordExporter,
  LoggerProvider,
  type LogRecordExporter,
  type ReadableLogRecord,
  SimpleLogRecordProcessor,
} from '@opentelemetry/sdk-logs';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GrpcReceiver } from '../../src/receiver/grpc.js';
import type { HttpReceiver } from '../../src/receiver/http.js';
import { FlakySink, MemorySink, newMetrics, otlpRoot, startGrpc, startHttp } from './helpers.js';
import type { Metrics } from '../../src/telemetry/metrics.js';

const TRACE_ID = '5b8efff798038103d269b633813fc60c';
const SPAN_ID = 'eee19b7ec3c1b174';
const BYTES = Uint8Array.from([0, 1, 2, 0xfe, 0xff, 0x80, 0x7f]);
// 2023-11-14T22:13:20.123456789Z as HrTime: nanosecond precision must survive.
const TIME: [number, number] = [1_700_000_000, 123_456_789];
const OBSERVED: [number, number] = [1_700_000_001, 987_654_321];
const hrToNanos = (t: [number, number]): bigint => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);

const ATTRIBUTES = {
  'str': 'héllo wörld ✓',
  'bool': true,
  'int': 42,
  'negative.int': -7,
  'double': 3.25,
  'array': ['a', 1, false],
  'kvlist': { inner: 'v', nested: { deep: 2 } },
  'bytes': BYTES,
};

type Decoded = {
  resource?: { attributes: KV[] };
  scopeLogs: Array<{
    scope?: { name: string; version: string };
    logRecords: Array<{
      timeUnixNano: bigint | string;
      observedTimeUnixNano: bigint | string;
      severityNumber: number;
      severityText: string;
      body?: AnyValue;
      attributes: KV[];
      traceId: Uint8Array;
      spanId: Uint8Array;
      flags: number;
    }>;
  }>;
};
type KV = { key: string; value: AnyValue };
type AnyValue = {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
  arrayValue?: { values: AnyValue[] };
  kvlistValue?: { values: KV[] };
  bytesValue?: Uint8Array;
};

/** AnyValue → plain JS (ints as numbers; they are small here), for comparison with what was emitted. */
function plain(v: AnyValue | undefined): unknown {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.bytesValue !== undefined) return Uint8Array.from(v.bytesValue);
  if (v.arrayValue) return v.arrayValue.values.map(plain);
  if (v.kvlistValue) return Object.fromEntries(v.kvlistValue.values.map((kv) => [kv.key, plain(kv.value)]));
  return undefined;
}
const attrs = (kvs: KV[]): Record<string, unknown> => Object.fromEntries(kvs.map((kv) => [kv.key, plain(kv.value)]));

function decodeEntry(entry: Uint8Array): Decoded {
  const T = otlpRoot().lookupType('opentelemetry.proto.logs.v1.ResourceLogs');
  // longs as strings, bytes as Uint8Array, oneof members only when set.
  return T.toObject(T.decode(entry), { longs: String, arrays: true, defaults: true, oneofs: false }) as unknown as Decoded;
}

/**
 * What each entry must be when the request came as protobuf: the record's bytes exactly as the SDK
 * put them on the wire, with its resource and scope fields copied verbatim, framed as
 * ResourceLogs{resource, ScopeLogs{scope, [record], schema_url}, schema_url} (api-otlp.md, entry
 * format). The field ranges are found with protobufjs's Reader, independent of our walker. The
 * SDK's encoder writes some proto3 defaults explicitly (dropped_attributes_count = 0), so this is
 * not the same as a canonical re-encoding — verbatim is the point: what is stored is what was sent.
 */
function verbatimEntries(records: ReadableLogRecord[]): Uint8Array[] {
  const wire = ProtobufLogsSerializer.serializeRequest(records)!;
  const fields = (buf: Uint8Array, start: number, end: number): Array<{ no: number; from: number; payload: [number, number] }> => {
    const r = protobuf.Reader.create(buf.subarray(0, end));
    r.pos = start;
    const out: Array<{ no: number; from: number; payload: [number, number] }> = [];
    while (r.pos < end) {
      const from = r.pos;
      const tag = r.uint32();
      if ((tag & 7) !== 2) {
        r.skipType(tag & 7);
        continue;
      }
      const len = r.uint32();
      out.push({ no: tag >>> 3, from, payload: [r.pos, r.pos + len] });
      r.pos += len;
    }
    return out;
  };
  const varint = (n: number): number[] => {
    const b: number[] = [];
    while (n > 0x7f) {
      b.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    b.push(n);
    return b;
  };
  const raw = (f: { from: number; payload: [number, number] } | undefined): number[] => (f ? [...wire.subarray(f.from, f.payload[1])] : []);
  const out: Uint8Array[] = [];
  for (const rl of fields(wire, 0, wire.length).filter((f) => f.no === 1)) {
    const rlf = fields(wire, ...rl.payload);
    for (const sl of rlf.filter((f) => f.no === 2)) {
      const slf = fields(wire, ...sl.payload);
      for (const rec of slf.filter((f) => f.no === 2)) {
        const recBytes = [...wire.subarray(...rec.payload)];
        const scopeLogs = [...raw(slf.find((f) => f.no === 1)), 0x12, ...varint(recBytes.length), ...recBytes, ...raw(slf.find((f) => f.no === 3))];
        out.push(Uint8Array.from([...raw(rlf.find((f) => f.no === 1)), 0x12, ...varint(scopeLogs.length), ...scopeLogs, ...raw(rlf.find((f) => f.no === 3))]));
      }
    }
  }
  return out;
}

/**
 * What each entry must be when the request came as JSON: the otlp decoder re-encodes it
 * deterministically (field order, proto3 defaults omitted), which is what protobufjs produces for
 * the same values.
 */
function canonicalEntries(records: ReadableLogRecord[]): Uint8Array[] {
  const wire = ProtobufLogsSerializer.serializeRequest(records)!;
  const root = otlpRoot();
  const Req = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
  const RL = root.lookupType('opentelemetry.proto.logs.v1.ResourceLogs');
  const req = Req.decode(wire) as unknown as { resourceLogs: Array<Record<string, unknown> & { scopeLogs: Array<Record<string, unknown> & { logRecords: unknown[] }> }> };
  const out: Uint8Array[] = [];
  for (const rl of req.resourceLogs) {
    for (const sl of rl.scopeLogs) {
      for (const rec of sl.logRecords) {
        out.push(RL.encode(RL.create({ ...rl, scopeLogs: [{ ...sl, logRecords: [rec] }] })).finish());
      }
    }
  }
  return out;
}

async function emitThrough(exporter: LogRecordExporter): Promise<ReadableLogRecord[]> {
  const memory = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'e2e-svc', 'host.name': 'node-a', 'deployment.replica': 3 }),
    // Batch processor: both records travel in one export request, as in production.
    processors: [new BatchLogRecordProcessor({ exporter }), new SimpleLogRecordProcessor({ exporter: memory })],
  });
  const logger = provider.getLogger('audit.scope', '1.2.3');
  const ctx = trace.setSpanContext(ROOT_CONTEXT, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.SAMPLED });
  logger.emit({
    timestamp: TIME,
    observedTimestamp: OBSERVED,
    severityNumber: SeverityNumber.WARN,
    severityText: 'WARN',
    body: 'user alice deleted record 17',
    attributes: ATTRIBUTES,
    context: ctx,
  });
  logger.emit({
    timestamp: TIME,
    observedTimestamp: OBSERVED,
    severityNumber: SeverityNumber.INFO2,
    severityText: 'info',
    body: { action: 'login', ok: true, tries: 2 },
  });
  await provider.forceFlush();
  const records = [...memory.getFinishedLogRecords()];
  await provider.shutdown();
  return records;
}

function checkEntries(entries: Uint8Array[], records: ReadableLogRecord[], wireEncoding: 'protobuf' | 'json'): void {
  expect(entries).toHaveLength(2);
  const [a, b] = entries.map(decodeEntry);
  for (const d of [a!, b!]) {
    expect(attrs(d.resource!.attributes)).toMatchObject({ 'service.name': 'e2e-svc', 'host.name': 'node-a', 'deployment.replica': 3 });
    expect(d.scopeLogs).toHaveLength(1);
    expect(d.scopeLogs[0]!.scope).toMatchObject({ name: 'audit.scope', version: '1.2.3' });
    expect(d.scopeLogs[0]!.logRecords).toHaveLength(1);
  }
  const ra = a!.scopeLogs[0]!.logRecords[0]!;
  expect(BigInt(ra.timeUnixNano)).toBe(hrToNanos(TIME));
  expect(BigInt(ra.observedTimeUnixNano)).toBe(hrToNanos(OBSERVED));
  expect(ra.severityNumber).toBe(SeverityNumber.WARN);
  expect(ra.severityText).toBe('WARN');
  expect(plain(ra.body)).toBe('user alice deleted record 17');
  expect(attrs(ra.attributes)).toEqual(ATTRIBUTES);
  // the value kinds, not only the values: int stays int, double stays double, bytes stay bytes
  const kinds = Object.fromEntries(ra.attributes.map((kv) => [kv.key, Object.keys(kv.value).find((k) => (kv.value as Record<string, unknown>)[k] !== undefined)]));
  expect(kinds).toEqual({
    str: 'stringValue',
    bool: 'boolValue',
    int: 'intValue',
    'negative.int': 'intValue',
    double: 'doubleValue',
    array: 'arrayValue',
    kvlist: 'kvlistValue',
    bytes: 'bytesValue',
  });
  expect(Buffer.from(ra.traceId).toString('hex')).toBe(TRACE_ID);
  expect(Buffer.from(ra.spanId).toString('hex')).toBe(SPAN_ID);
  expect(ra.flags & 0xff).toBe(TraceFlags.SAMPLED);

  const rb = b!.scopeLogs[0]!.logRecords[0]!;
  expect(rb.severityNumber).toBe(SeverityNumber.INFO2);
  expect(rb.severityText).toBe('info');
  expect(plain(rb.body)).toEqual({ action: 'login', ok: true, tries: 2 });
  expect(rb.traceId.length).toBe(0);
  expect(rb.spanId.length).toBe(0);

  // Byte for byte: each entry is the SDK's bytes for that record with its resource and scope.
  const expected = wireEncoding === 'protobuf' ? verbatimEntries(records) : canonicalEntries(records);
  expect(expected).toHaveLength(2);
  expect(entries.map((e) => Buffer.from(e).toString('hex'))).toEqual(expected.map((e) => Buffer.from(e).toString('hex')));
}

describe('real OpenTelemetry JS SDK exporters → receivers', () => {
  let http: HttpReceiver;
  let grpc: GrpcReceiver;
  let httpUrl: string;
  let grpcAddr: string;
  const httpSink = new MemorySink();
  const grpcSink = new MemorySink();
  let metrics: Metrics;

  beforeAll(async () => {
    metrics = newMetrics();
    ({ rx: http, url: httpUrl } = await startHttp(httpSink, {}, metrics));
    ({ rx: grpc, address: grpcAddr } = await startGrpc(grpcSink, {}, metrics));
  });
  afterAll(async () => {
    await Promise.all([http.shutdown(), grpc.shutdown()]);
  });

  const GZIP = 'gzip' as CompressionAlgorithm;
  const NONE = 'none' as CompressionAlgorithm;
  const runs: Array<{ name: string; make: () => LogRecordExporter; sink: () => MemorySink; enc: 'protobuf' | 'json' }> = [
    { name: 'gRPC', enc: 'protobuf', make: () => new GrpcExporter({ url: `http://${grpcAddr}`, compression: NONE }), sink: () => grpcSink },
    { name: 'gRPC + gzip', enc: 'protobuf', make: () => new GrpcExporter({ url: `http://${grpcAddr}`, compression: GZIP }), sink: () => grpcSink },
    { name: 'HTTP/protobuf', enc: 'protobuf', make: () => new ProtoExporter({ url: `${httpUrl}/v1/logs`, compression: NONE }), sink: () => httpSink },
    { name: 'HTTP/protobuf + gzip', enc: 'protobuf', make: () => new ProtoExporter({ url: `${httpUrl}/v1/logs`, compression: GZIP }), sink: () => httpSink },
    { name: 'HTTP/JSON', enc: 'json', make: () => new JsonExporter({ url: `${httpUrl}/v1/logs`, compression: NONE }), sink: () => httpSink },
    { name: 'HTTP/JSON + gzip', enc: 'json', make: () => new JsonExporter({ url: `${httpUrl}/v1/logs`, compression: GZIP }), sink: () => httpSink },
  ];

  it.each(runs)('$name: every field arrives intact', async ({ make, sink, enc }) => {
    const s = sink();
    const before = s.entries.length;
    const records = await emitThrough(make());
    expect(records).toHaveLength(2);
    checkEntries(s.entries.slice(before), records, enc);
  });

  it('counted the accepted records once per request', async () => {
    const text = await metrics.registry.metrics();
    // 4 HTTP runs and 2 gRPC runs, each one request (batch processor) of 2 records.
    expect(text).toMatch(/sealtrail_receiver_accepted_log_records_total\{transport="http"\} 8\n/);
    expect(text).toMatch(/sealtrail_receiver_accepted_log_records_total\{transport="grpc"\} 4\n/);
    expect(text).toMatch(/sealtrail_receiver_requests_total\{transport="http",status="200"\} 4\n/);
    expect(text).toMatch(/sealtrail_receiver_requests_total\{transport="grpc",status="OK"\} 2\n/);
  });
});

describe('real SDK HTTP exporters honour our retryable refusals (G2)', () => {
  it.each([
    { name: 'HTTP/protobuf, 429 overloaded', reason: 'overloaded' as const, make: (url: string) => new ProtoExporter({ url }) },
    { name: 'HTTP/JSON, 503 disk_full', reason: 'disk_full' as const, make: (url: string) => new JsonExporter({ url }) },
  ])('$name: refused once, retried after Retry-After, stored exactly once', async ({ reason, make }) => {
    const sink = new FlakySink(1, reason, 1_000);
    const metrics = newMetrics();
    const { rx, url } = await startHttp(sink, {}, metrics);
    try {
      const t0 = Date.now();
      const records = await emitThrough(make(`${url}/v1/logs`));
      expect(sink.refused).toBe(1);
      // the exporter waited for Retry-After (1 s) before the second attempt, which was stored
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      expect(sink.entries).toHaveLength(2);
      expect(records).toHaveLength(2);
      const text = await metrics.registry.metrics();
      expect(text).toContain(`sealtrail_receiver_refused_log_records_total{transport="http",reason="${reason}"} 2`);
      expect(text).toContain('sealtrail_receiver_accepted_log_records_total{transport="http"} 2');
    } finally {
      await rx.shutdown();
    }
  });
});
