/**
 * G7 "Bad input changes nothing": a table of bad requests for both transports, each with its
 * expected status and message, and each asserting that the sink was never called.
 */
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MemorySink,
  decodeStatus,
  encodeRequest,
  grpcCall,
  httpRequest,
  newMetrics,
  retryDelayFromStatus,
  sampleRequest,
  sampleRequestJson,
  startGrpc,
  startHttp,
} from './helpers.js';
import type { HttpReceiver } from '../../src/receiver/http.js';
import type { GrpcReceiver } from '../../src/receiver/grpc.js';
import { OTLP_GRPC_PATHS } from '../../src/receiver/grpc.js';
import type { Metrics } from '../../src/telemetry/metrics.js';

const LIMIT = 4 * 1024 * 1024; // HTTP max_request_body_size and gRPC max_recv_msg_size_mib: 4 in this file
const PB = { 'content-type': 'application/x-protobuf' };
const JSN = { 'content-type': 'application/json' };

/** A gzip stream of `members` × 16 MiB of zeros: concatenated gzip members are one valid gzip body (RFC 1952 §2.2). */
function gzipBomb(members: number): Buffer {
  const one = zlib.gzipSync(Buffer.alloc(16 * 1024 * 1024), { level: 9 });
  return Buffer.concat(Array.from({ length: members }, () => one));
}

/** AnyValue nested `depth` levels deep (arrays in arrays), as a log record body. */
function nestedRequest(depth: number): Uint8Array {
  let v: Record<string, unknown> = { stringValue: 'leaf' };
  for (let i = 0; i < depth; i++) v = { arrayValue: { values: [v] } };
  return encodeRequest({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: v }] }] }] });
}

function withTraceId(traceId: Uint8Array, spanId: Uint8Array = new Uint8Array(8).fill(1)): Uint8Array {
  return encodeRequest({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ traceId, spanId, body: { stringValue: 'x' } }] }] }] });
}

/** The 1 GiB bomb is 1 MiB on the wire; built once (64 copies of one member, not 1 GiB of deflate work). */
let bomb: Buffer;

/** Runs `fn` while sampling external+arrayBuffer memory every 2 ms; returns the peak growth in bytes. */
async function peakMemoryDuring<T>(fn: () => Promise<T>): Promise<{ result: T; peakDelta: number; ms: number }> {
  globalThis.gc?.();
  const base = process.memoryUsage();
  const baseBytes = base.external + base.arrayBuffers;
  let peak = baseBytes;
  const t = setInterval(() => {
    const m = process.memoryUsage();
    peak = Math.max(peak, m.external + m.arrayBuffers);
  }, 2);
  const t0 = performance.now();
  try {
    const result = await fn();
    const m = process.memoryUsage();
    peak = Math.max(peak, m.external + m.arrayBuffers);
    return { result, peakDelta: peak - baseBytes, ms: performance.now() - t0 };
  } finally {
    clearInterval(t);
  }
}

describe('OTLP/HTTP bad input', () => {
  const sink = new MemorySink();
  let rx: HttpReceiver;
  let url: string;
  let metrics: Metrics;

  beforeAll(async () => {
    bomb ??= gzipBomb(64);
    metrics = newMetrics();
    ({ rx, url } = await startHttp(sink, { max_request_body_size: LIMIT }, metrics));
  });
  afterAll(async () => {
    await rx.shutdown();
    // The whole table ran against one sink: not one append reached it (G7).
    expect(sink.batches).toEqual([]);
  });

  type Case = {
    name: string;
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: Uint8Array | string;
    chunked?: boolean;
    status: number;
    message: RegExp;
    /** Encoding the error body is in. */
    reply: 'protobuf' | 'json' | 'text';
  };
  const cases: Case[] = [
    { name: 'truncated protobuf', headers: PB, body: sampleRequest(3).subarray(0, sampleRequest(3).length - 5), status: 400, message: /./, reply: 'protobuf' },
    // field 1 (resource_logs) must be length-delimited; sent as a varint
    { name: 'wrong wire type', headers: PB, body: Uint8Array.from([0x08, 0x01]), status: 400, message: /wire|type/i, reply: 'protobuf' },
    { name: 'bad JSON', headers: JSN, body: '{"resourceLogs":[', status: 400, message: /json/i, reply: 'json' },
    { name: 'JSON of the wrong shape', headers: JSN, body: '{"resourceLogs":{"x":1}}', status: 400, message: /resourceLogs/, reply: 'json' },
    { name: 'trace id of 5 bytes (protobuf)', headers: PB, body: withTraceId(new Uint8Array(5).fill(7)), status: 400, message: /traceId/, reply: 'protobuf' },
    {
      name: 'span id not hex (JSON)',
      headers: JSN,
      body: JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ spanId: 'zz00000000000000', body: { stringValue: 'x' } }] }] }] }),
      status: 400,
      message: /spanId/,
      reply: 'json',
    },
    { name: 'nesting deeper than max_nesting_depth (32)', headers: PB, body: nestedRequest(40), status: 400, message: /nest|depth/i, reply: 'protobuf' },
    { name: 'text/plain content type', headers: { 'content-type': 'text/plain' }, body: 'hello', status: 415, message: /application\/x-protobuf/, reply: 'text' },
    { name: 'no content type', body: sampleRequest(), status: 415, message: /Content-Type/, reply: 'text' },
    { name: 'JSON in latin1', headers: { 'content-type': 'application/json; charset=latin1' }, body: '{}', status: 415, message: /charset/, reply: 'text' },
    { name: 'GET /v1/logs', method: 'GET', status: 405, message: /POST/, reply: 'text' },
    { name: 'PUT /v1/logs (protobuf)', method: 'PUT', headers: PB, body: sampleRequest(), status: 405, message: /POST/, reply: 'protobuf' },
    { name: 'unknown path', path: '/v1/log', headers: PB, body: sampleRequest(), status: 404, message: /\/v1\/logs/, reply: 'protobuf' },
    { name: 'traces', path: '/v1/traces', headers: PB, body: Uint8Array.from([]), status: 404, message: /logs only/, reply: 'protobuf' },
    { name: 'metrics (JSON)', path: '/v1/metrics', headers: JSN, body: '{}', status: 404, message: /logs only/, reply: 'json' },
    { name: 'unknown Content-Encoding br', headers: { ...PB, 'content-encoding': 'br' }, body: sampleRequest(), status: 400, message: /Content-Encoding "br"/, reply: 'protobuf' },
    { name: 'chained Content-Encoding', headers: { ...PB, 'content-encoding': 'gzip, gzip' }, body: sampleRequest(), status: 400, message: /chain/, reply: 'protobuf' },
    { name: 'gzip header, body not gzip', headers: { ...PB, 'content-encoding': 'gzip' }, body: sampleRequest(), status: 400, message: /not valid gzip/, reply: 'protobuf' },
    {
      name: 'gzip body that inflates to a truncated request',
      headers: { ...PB, 'content-encoding': 'gzip' },
      body: zlib.gzipSync(sampleRequest(3).subarray(0, 20)),
      status: 400,
      message: /./,
      reply: 'protobuf',
    },
    { name: 'oversize body, declared length', headers: PB, body: new Uint8Array(LIMIT + 1), status: 413, message: /max_request_body_size/, reply: 'protobuf' },
    { name: 'oversize body, chunked', headers: PB, body: new Uint8Array(LIMIT + 1), chunked: true, status: 413, message: /max_request_body_size/, reply: 'protobuf' },
    { name: 'empty deflate body', headers: { ...PB, 'content-encoding': 'deflate' }, body: '', status: 400, message: /empty/, reply: 'protobuf' },
  ];

  it.each(cases)('$name → $status', async (c) => {
    const res = await httpRequest(url, { method: c.method, path: c.path, headers: c.headers, body: c.body, chunked: c.chunked });
    expect(res.status).toBe(c.status);
    let message: string;
    if (c.reply === 'protobuf') {
      expect(res.headers['content-type']).toBe('application/x-protobuf');
      const st = decodeStatus(res.body);
      expect(st.code).toBeGreaterThan(0);
      message = st.message;
    } else if (c.reply === 'json') {
      expect(res.headers['content-type']).toBe('application/json');
      const st = JSON.parse(res.body.toString('utf8')) as { code: number; message: string };
      expect(st.code).toBeGreaterThan(0);
      message = st.message;
    } else {
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      message = res.body.toString('utf8');
    }
    expect(message).toMatch(c.message);
    if (c.status === 405) expect(res.headers['allow']).toBe('POST');
    expect(res.headers['retry-after']).toBeUndefined(); // none of these is retryable
    expect(sink.batches).toEqual([]);
  });

  it('gzip bomb (1 MiB that inflates to 1 GiB) → 413 quickly, without buffering the inflated body', async () => {
    const { result: res, peakDelta, ms } = await peakMemoryDuring(() =>
      httpRequest(url, { headers: { ...PB, 'content-encoding': 'gzip' }, body: bomb }),
    );
    expect(bomb.length).toBeLessThan(LIMIT); // the raw cap is not what stops it
    expect(res.status).toBe(413);
    expect(decodeStatus(res.body).message).toMatch(/after decompression/);
    // Inflating stops just past the 4 MiB limit; 1 GiB would take seconds and a GiB of memory.
    expect(ms).toBeLessThan(2_000);
    expect(peakDelta).toBeLessThan(48 * 1024 * 1024);
    expect(sink.batches).toEqual([]);
    console.log(`http gzip bomb: 413 in ${ms.toFixed(0)} ms, peak external memory growth ${(peakDelta / 1048576).toFixed(1)} MiB`);
  });

  it('deflate bomb → 413', async () => {
    const body = zlib.deflateSync(Buffer.alloc(64 * 1024 * 1024));
    const res = await httpRequest(url, { headers: { ...PB, 'content-encoding': 'deflate' }, body });
    expect(res.status).toBe(413);
    expect(sink.batches).toEqual([]);
  });

  it('empty protobuf request → 200 with an empty ExportLogsServiceResponse, nothing stored', async () => {
    const res = await httpRequest(url, { headers: PB, body: new Uint8Array(0) });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/x-protobuf');
    expect(res.body.length).toBe(0);
    expect(sink.batches).toEqual([]);
  });

  it('empty JSON request → 200 {}, nothing stored', async () => {
    for (const body of ['{}', '{"resourceLogs":[]}']) {
      const res = await httpRequest(url, { headers: JSN, body });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('application/json');
      expect(JSON.parse(res.body.toString())).toEqual({});
    }
    expect(sink.batches).toEqual([]);
  });

  it('counted once per request in metrics, by status', async () => {
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/sealtrail_receiver_requests_total\{transport="http",status="400"\} \d+/);
    expect(text).toMatch(/sealtrail_receiver_requests_total\{transport="http",status="413"\} \d+/);
    expect(text).toMatch(/sealtrail_receiver_requests_total\{transport="http",status="415"\} 3/);
    expect(text).toMatch(/sealtrail_receiver_requests_total\{transport="http",status="405"\} 2/);
    expect(text).not.toMatch(/sealtrail_receiver_accepted_log_records_total\{transport="http"\} [1-9]/);
  });

  it('a valid request on the same receiver is still stored (the table did not break it)', async () => {
    const res = await httpRequest(url, { headers: { 'content-type': 'application/json; charset=utf-8' }, body: sampleRequestJson(2) });
    expect(res.status).toBe(200);
    expect(sink.entries.length).toBe(2);
    sink.batches.length = 0; // keep the afterAll check about bad input only
  });
});

describe('OTLP/gRPC bad input', () => {
  const sink = new MemorySink();
  let rx: GrpcReceiver;
  let address: string;

  beforeAll(async () => {
    bomb ??= gzipBomb(64);
    ({ rx, address } = await startGrpc(sink, { max_recv_msg_size_mib: LIMIT / (1024 * 1024) }));
  });
  afterAll(async () => {
    await rx.shutdown();
    expect(sink.batches).toEqual([]);
  });

  const INVALID_ARGUMENT = 3;
  const RESOURCE_EXHAUSTED = 8;
  const UNIMPLEMENTED = 12;
  const INTERNAL = 13;

  type Case = { name: string; path?: string; payload: Uint8Array; encoding?: 'gzip' | 'deflate'; code: number; message: RegExp };
  const cases: Case[] = [
    { name: 'truncated protobuf', payload: sampleRequest(3).subarray(0, sampleRequest(3).length - 5), code: INVALID_ARGUMENT, message: /./ },
    { name: 'wrong wire type', payload: Uint8Array.from([0x08, 0x01]), code: INVALID_ARGUMENT, message: /wire|type/i },
    { name: 'trace id of 5 bytes', payload: withTraceId(new Uint8Array(5).fill(7)), code: INVALID_ARGUMENT, message: /traceId/ },
    { name: 'span id of 3 bytes', payload: withTraceId(new Uint8Array(16).fill(7), new Uint8Array(3)), code: INVALID_ARGUMENT, message: /spanId/ },
    { name: 'nesting deeper than max_nesting_depth (32)', payload: nestedRequest(40), code: INVALID_ARGUMENT, message: /nest|depth/i },
    { name: 'gzip-compressed invalid request', payload: zlib.gzipSync(Uint8Array.from([0x08, 0x01])), encoding: 'gzip', code: INVALID_ARGUMENT, message: /wire|type/i },
    { name: 'oversize message', payload: new Uint8Array(LIMIT + 1), code: RESOURCE_EXHAUSTED, message: /larger than/ },
    { name: 'traces service', path: OTLP_GRPC_PATHS.traces, payload: new Uint8Array(0), code: UNIMPLEMENTED, message: /logs only/ },
    { name: 'metrics service', path: OTLP_GRPC_PATHS.metrics, payload: new Uint8Array(0), code: UNIMPLEMENTED, message: /logs only/ },
    { name: 'unknown method', path: '/opentelemetry.proto.collector.logs.v1.LogsService/Import', payload: new Uint8Array(0), code: UNIMPLEMENTED, message: /./ },
    // The receiver answers a message it cannot inflate with INTERNAL (non-retryable for OTLP clients, as wanted).
    { name: 'grpc-encoding gzip, frame not gzip', payload: sampleRequest(), encoding: 'gzip', code: INTERNAL, message: /decompress/i },
  ];

  it.each(cases)('$name → code $code', async (c) => {
    const res = await grpcCall(address, c.path ?? OTLP_GRPC_PATHS.logs, c.payload, c.encoding);
    expect(res.code).toBe(c.code);
    expect(res.message).toMatch(c.message);
    // Non-retryable: no RetryInfo (RESOURCE_EXHAUSTED without it is final, spec "OTLP/gRPC Failures").
    if (res.details) expect(retryDelayFromStatus(res.details)).toBeUndefined();
    expect(sink.batches).toEqual([]);
  });

  it('gzip bomb (1 MiB that inflates to 1 GiB) → RESOURCE_EXHAUSTED quickly, memory bounded', async () => {
    const { result: res, peakDelta, ms } = await peakMemoryDuring(() => grpcCall(address, OTLP_GRPC_PATHS.logs, bomb, 'gzip'));
    expect(res.code).toBe(RESOURCE_EXHAUSTED);
    expect(res.message).toMatch(/decompresses to a size larger than/);
    expect(ms).toBeLessThan(2_000);
    expect(peakDelta).toBeLessThan(48 * 1024 * 1024);
    expect(sink.batches).toEqual([]);
    console.log(`grpc gzip bomb: RESOURCE_EXHAUSTED in ${ms.toFixed(0)} ms, peak external memory growth ${(peakDelta / 1048576).toFixed(1)} MiB`);
  });

  it('empty request → OK with an empty response, nothing stored', async () => {
    const res = await grpcCall(address, OTLP_GRPC_PATHS.logs, new Uint8Array(0));
    expect(res.code).toBe(0);
    expect(res.response?.length).toBe(0);
    expect(sink.batches).toEqual([]);
  });

  it('a valid request on the same receiver is still stored', async () => {
    const res = await grpcCall(address, OTLP_GRPC_PATHS.logs, zlib.gzipSync(sampleRequest(2)), 'gzip');
    expect(res.code).toBe(0);
    expect(sink.entries.length).toBe(2);
    sink.batches.length = 0;
  });
});
