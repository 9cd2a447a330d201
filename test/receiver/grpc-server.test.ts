/**
 * The OTLP/gRPC receiver's own gRPC-over-HTTP/2 server (src/receiver/grpc.ts on node:http2), at the
 * wire level and with a real @grpc/grpc-js client: framing split across DATA frames, the size limit
 * on the prefix, Compressed-Flag and grpc-encoding rules (grpc/grpc doc/compression.md), content
 * types and methods, grpc-timeout deadlines, percent-encoded grpc-message, HTTP/2 settings, idle
 * connections, GOAWAY on shutdown and the grace period, metrics for refusals, TLS handshake counting.
 */
import http2 from 'node:http2';
import zlib from 'node:zlib';
import grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  GRPC_MAX_CONCURRENT_STREAMS,
  GRPC_MAX_HEADER_LIST_SIZE,
  GrpcReceiver,
  OTLP_GRPC_PATHS,
} from '../../src/receiver/grpc.js';
import { ConcurrencyGate } from '../../src/receiver/limits.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import type { Metrics } from '../../src/telemetry/metrics.js';
import { makePki } from '../security/helpers.js';
import {
  GRPC_DEFAULTS,
  GatedSink,
  MemorySink,
  decodeStatus,
  deps,
  exportRequestType,
  grpcFrame,
  newMetrics,
  retryDelayFromStatus,
  sampleRequest,
  startGrpc,
} from './helpers.js';

const OK = 0;
const DEADLINE_EXCEEDED = 4;
const RESOURCE_EXHAUSTED = 8;
const UNIMPLEMENTED = 12;
const INTERNAL = 13;
const INVALID_ARGUMENT = 3;
const UNAVAILABLE = 14;

const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(sink = new MemorySink(), over: Parameters<typeof startGrpc>[1] = {}, metrics?: Metrics) {
  const s = await startGrpc(sink, over, metrics);
  cleanups.push(() => s.rx.shutdown(1_000));
  return { ...s, sink };
}

interface RawReply {
  httpStatus: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  code: number;
  message: string;
  details?: Buffer;
  data: Buffer;
  rstCode: number;
  ms: number;
}

/**
 * One call over plain node:http2 with full control: extra/overridden headers, the body as a list
 * of chunks written one by one with `gapMs` between them (each becomes its own DATA frame), and
 * `end: false` to leave the request open.
 */
function rawCall(
  address: string,
  opts: { headers?: http2.OutgoingHttpHeaders; chunks?: Buffer[]; gapMs?: number; end?: boolean; session?: http2.ClientHttp2Session } = {},
): Promise<RawReply> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const session = opts.session ?? http2.connect(`http://${address}`);
    session.on('error', () => undefined);
    const stream = session.request({
      ':method': 'POST',
      ':path': OTLP_GRPC_PATHS.logs,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...(opts.headers ?? {}),
    });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const data: Buffer[] = [];
    stream.on('response', (h) => (headers = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => data.push(c));
    stream.on('error', () => undefined); // write-after-reset errors: the reply is what matters
    stream.on('close', () => {
      if (!opts.session) session.close();
      const st = trailers['grpc-status'] !== undefined ? trailers : headers;
      const d = st['grpc-status-details-bin'];
      resolve({
        httpStatus: Number(headers[':status'] ?? 0),
        headers,
        trailers,
        code: st['grpc-status'] === undefined ? -1 : Number(st['grpc-status']),
        message: st['grpc-message'] === undefined ? '' : decodeURIComponent(String(st['grpc-message'])),
        ...(d !== undefined ? { details: Buffer.from(String(d), 'base64') } : {}),
        data: Buffer.concat(data),
        rstCode: stream.rstCode ?? -1,
        ms: performance.now() - t0,
      });
    });
    const chunks = opts.chunks ?? [];
    let i = 0;
    const next = (): void => {
      if (stream.destroyed || stream.closed) return;
      if (i < chunks.length) {
        stream.write(chunks[i++]!);
        if (opts.gapMs) setTimeout(next, opts.gapMs);
        else next();
      } else if (opts.end !== false) stream.end();
    };
    next();
    setTimeout(() => reject(new Error('rawCall: no answer within 10 s')), 10_000).unref();
  });
}

function split(buf: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const s of sizes) {
    out.push(buf.subarray(at, at + s));
    at += s;
  }
  if (at < buf.length) out.push(buf.subarray(at));
  return out;
}

async function counter(metrics: Metrics, name: 'receiverRequests' | 'receiverRefusedRequests', labels: Record<string, string>): Promise<number> {
  const v = (await metrics[name].get()).values.find((x) => Object.entries(labels).every(([k, val]) => (x.labels as Record<string, string | number | undefined>)[k] === val));
  return v?.value ?? 0;
}

describe('framing', () => {
  it('a message whose prefix and body are split across many DATA frames (1-byte prefix pieces, delays) is stored', async () => {
    const { address, sink } = await server();
    const frame = grpcFrame(sampleRequest(3), false);
    const res = await rawCall(address, { chunks: split(frame, [1, 1, 1, 1, 1, 7, 20, 1]), gapMs: 15 });
    expect(res.code).toBe(OK);
    expect(res.httpStatus).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/grpc/);
    expect(res.data).toEqual(Buffer.from([0, 0, 0, 0, 0])); // one empty ExportLogsServiceResponse
    expect(sink.entries).toHaveLength(3);
  });

  it('a gzip message split across DATA frames is stored', async () => {
    const { address, sink } = await server();
    const frame = grpcFrame(zlib.gzipSync(sampleRequest(2)), true);
    const res = await rawCall(address, { headers: { 'grpc-encoding': 'gzip' }, chunks: split(frame, [3, 4, 10]), gapMs: 5 });
    expect(res.code).toBe(OK);
    expect(sink.entries).toHaveLength(2);
  });

  it('a declared length above the limit is refused from the 5-byte prefix alone: RESOURCE_EXHAUSTED without RetryInfo, body never sent, counted', async () => {
    const metrics = newMetrics();
    const { address, sink } = await server(new MemorySink(), { max_recv_msg_size_mib: 1 }, metrics);
    const prefix = Buffer.from([0, 0, 0x10, 0, 1]); // 1 MiB + 1
    const res = await rawCall(address, { chunks: [prefix], end: false });
    expect(res.code).toBe(RESOURCE_EXHAUSTED);
    expect(res.message).toMatch(/larger than max \(1048577 vs 1048576 bytes, receivers\.otlp\.protocols\.grpc\.max_recv_msg_size_mib/);
    expect(res.details).toBeUndefined();
    expect(res.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR); // "Early Server Closure": the client may stop sending
    expect(sink.batches).toEqual([]);
    expect(await counter(metrics, 'receiverRequests', { transport: 'grpc', status: 'RESOURCE_EXHAUSTED' })).toBe(1);
    expect(await counter(metrics, 'receiverRefusedRequests', { transport: 'grpc', reason: 'too_large' })).toBe(1);
  });

  it('a message of exactly the limit is accepted (decoded: not valid OTLP here, so INVALID_ARGUMENT, not RESOURCE_EXHAUSTED)', async () => {
    const { address } = await server(new MemorySink(), { max_recv_msg_size_mib: 1 / 16 });
    const res = await rawCall(address, { chunks: [grpcFrame(new Uint8Array(65_536).fill(0xff), false)] });
    expect(res.code).toBe(INVALID_ARGUMENT);
  });

  const bad: Array<{ name: string; chunks: Buffer[]; headers?: http2.OutgoingHttpHeaders; code: number; message: RegExp }> = [
    { name: 'Compressed-Flag 2', chunks: [Buffer.concat([Buffer.from([2, 0, 0, 0, 1]), Buffer.from([0])])], code: INTERNAL, message: /Compressed-Flag 2/ },
    {
      name: 'Compressed-Flag 1 without grpc-encoding (compression.md case 6)',
      chunks: [grpcFrame(zlib.gzipSync(sampleRequest(1)), true)],
      code: INTERNAL,
      message: /marked compressed.*no grpc-encoding/,
    },
    {
      name: 'Compressed-Flag 1 with grpc-encoding identity',
      headers: { 'grpc-encoding': 'identity' },
      chunks: [grpcFrame(zlib.gzipSync(sampleRequest(1)), true)],
      code: INTERNAL,
      message: /marked compressed/,
    },
    { name: 'two messages in a unary call', chunks: [grpcFrame(sampleRequest(1), false), grpcFrame(sampleRequest(1), false)], code: INTERNAL, message: /more than one/ },
    { name: 'no message at all', chunks: [], code: INTERNAL, message: /without a message/ },
    { name: 'message cut short', chunks: [grpcFrame(sampleRequest(2), false).subarray(0, 20)], code: INTERNAL, message: /ended inside a message/ },
    { name: 'gzip message that is not gzip', headers: { 'grpc-encoding': 'gzip' }, chunks: [grpcFrame(sampleRequest(1), true)], code: INTERNAL, message: /decompress/ },
    { name: 'invalid grpc-timeout', headers: { 'grpc-timeout': '5 seconds' }, chunks: [grpcFrame(sampleRequest(1), false)], code: INTERNAL, message: /invalid grpc-timeout/ },
  ];
  it.each(bad)('$name → code $code, nothing stored', async (c) => {
    const { address, sink } = await server();
    const res = await rawCall(address, { chunks: c.chunks, ...(c.headers ? { headers: c.headers } : {}) });
    expect(res.code).toBe(c.code);
    expect(res.message).toMatch(c.message);
    expect(res.httpStatus).toBe(200);
    expect(sink.batches).toEqual([]);
  });

  it('grpc-encoding compressed messages: the flag 0 with grpc-encoding gzip means an uncompressed message (allowed)', async () => {
    const { address, sink } = await server();
    const res = await rawCall(address, { headers: { 'grpc-encoding': 'gzip' }, chunks: [grpcFrame(sampleRequest(1), false)] });
    expect(res.code).toBe(OK);
    expect(sink.entries).toHaveLength(1);
  });
});

describe('headers', () => {
  it('an unknown grpc-encoding → UNIMPLEMENTED naming the supported ones, grpc-accept-encoding without it (compression.md case 4)', async () => {
    const metrics = newMetrics();
    const { address, sink } = await server(new MemorySink(), {}, metrics);
    const res = await rawCall(address, { headers: { 'grpc-encoding': 'snappy' }, chunks: [grpcFrame(Buffer.from('xx'), true)] });
    expect(res.code).toBe(UNIMPLEMENTED);
    expect(res.message).toMatch(/"snappy" is not supported.*identity,deflate,gzip/);
    expect(String(res.headers['grpc-accept-encoding']).split(',')).toEqual(['identity', 'deflate', 'gzip']);
    expect(sink.batches).toEqual([]);
    expect(await counter(metrics, 'receiverRefusedRequests', { transport: 'grpc', reason: 'unsupported_encoding' })).toBe(1);
  });

  it('a content type that is not gRPC → HTTP 415 (PROTOCOL-HTTP2.md); application/grpc+json → INVALID_ARGUMENT', async () => {
    const { address, sink } = await server();
    const plain = await rawCall(address, { headers: { 'content-type': 'application/json' }, chunks: [Buffer.from('{}')] });
    expect(plain.httpStatus).toBe(415);
    expect(plain.message).toMatch(/not gRPC: send application\/grpc/);
    const json = await rawCall(address, { headers: { 'content-type': 'application/grpc+json' }, chunks: [grpcFrame(Buffer.from('{}'), false)] });
    expect(json.httpStatus).toBe(200);
    expect(json.code).toBe(INVALID_ARGUMENT);
    expect(json.message).toMatch(/protobuf/);
    const proto = await rawCall(address, { headers: { 'content-type': 'application/grpc+proto' }, chunks: [grpcFrame(sampleRequest(1), false)] });
    expect(proto.code).toBe(OK);
    expect(sink.entries).toHaveLength(1);
  });

  it('GET → HTTP 405 with Allow: POST; unknown method path → UNIMPLEMENTED with the path percent-encoded in grpc-message', async () => {
    const { address } = await server();
    const get = await rawCall(address, { headers: { ':method': 'GET' }, end: true });
    expect(get.httpStatus).toBe(405);
    expect(get.headers.allow).toBe('POST');
    const unknown = await rawCall(address, { headers: { ':path': '/no.Such/Method%41' }, chunks: [grpcFrame(new Uint8Array(0), false)] });
    expect(unknown.code).toBe(UNIMPLEMENTED);
    // On the wire '%' travels as %25 (grpc-message is percent-encoded); decoded it is the path as sent.
    expect(unknown.message).toMatch(/unknown method \/no\.Such\/Method%41/);
  });

  it('every reply is Trailers-Only or headers + message + trailers, never grpc-status in both', async () => {
    const { address } = await server();
    const ok = await rawCall(address, { chunks: [grpcFrame(sampleRequest(1), false)] });
    expect(ok.headers['grpc-status']).toBeUndefined();
    expect(ok.trailers['grpc-status']).toBe('0');
    const refused = await rawCall(address, { chunks: [grpcFrame(Uint8Array.from([0x08, 0x01]), false)] });
    expect(refused.headers['grpc-status']).toBe(String(INVALID_ARGUMENT));
    expect(refused.trailers['grpc-status']).toBeUndefined();
    expect(refused.data.length).toBe(0);
  });

  it('HTTP/2 settings: max concurrent streams and header list size are advertised; a header block above the limit resets only its stream', async () => {
    const { address, sink } = await server();
    const session = http2.connect(`http://${address}`);
    cleanups.push(() => session.destroy());
    await new Promise<void>((resolve) => session.once('remoteSettings', () => resolve()));
    expect(session.remoteSettings.maxConcurrentStreams).toBe(GRPC_MAX_CONCURRENT_STREAMS);
    expect(session.remoteSettings.maxHeaderListSize).toBe(GRPC_MAX_HEADER_LIST_SIZE);
    const big = await rawCall(address, { session, headers: { 'x-big': 'a'.repeat(GRPC_MAX_HEADER_LIST_SIZE) }, chunks: [grpcFrame(sampleRequest(1), false)] });
    expect(big.code).toBe(-1); // no gRPC status: the stream was reset
    expect(big.rstCode).not.toBe(http2.constants.NGHTTP2_NO_ERROR);
    const ok = await rawCall(address, { session, chunks: [grpcFrame(sampleRequest(1), false)] });
    expect(ok.code).toBe(OK);
    expect(sink.entries).toHaveLength(1);
  });
});

describe('deadlines', () => {
  it('grpc-timeout passing while the ledger has not answered → DEADLINE_EXCEEDED; the slot is held until the append settles', async () => {
    const sink = new GatedSink();
    const gate = new ConcurrencyGate(4);
    const metrics = newMetrics();
    const rx = new GrpcReceiver({ endpoint: '127.0.0.1:0', max_recv_msg_size_mib: 4, ...GRPC_DEFAULTS }, { ...deps(sink, metrics), gate });
    const { port } = await rx.start();
    cleanups.push(() => rx.shutdown(1_000));
    const res = await rawCall(`127.0.0.1:${port}`, { headers: { 'grpc-timeout': '200m' }, chunks: [grpcFrame(sampleRequest(2), false)] });
    expect(res.code).toBe(DEADLINE_EXCEEDED);
    expect(res.message).toMatch(/deadline \(grpc-timeout 200 ms\) passed/);
    expect(res.ms).toBeGreaterThanOrEqual(190);
    expect(res.ms).toBeLessThan(2_000);
    expect(sink.pending).toBe(1);
    expect(gate.inUse).toBe(1); // the append is still running
    sink.release();
    await waitFor(() => gate.inUse === 0);
    // The append went through after all (at-least-once: the client may send it again).
    expect(sink.entries).toHaveLength(2);
    expect(await counter(metrics, 'receiverRequests', { transport: 'grpc', status: 'DEADLINE_EXCEEDED' })).toBe(1);
    expect(await counter(metrics, 'receiverRequests', { transport: 'grpc', status: 'OK' })).toBe(0);
  });

  it('grpc-timeout passing while the message is still arriving → DEADLINE_EXCEEDED, slot released, nothing stored', async () => {
    const sink = new MemorySink();
    const gate = new ConcurrencyGate(4);
    const rx = new GrpcReceiver({ endpoint: '127.0.0.1:0', max_recv_msg_size_mib: 4, ...GRPC_DEFAULTS }, { ...deps(sink), gate });
    const { port } = await rx.start();
    cleanups.push(() => rx.shutdown(1_000));
    const frame = grpcFrame(sampleRequest(2), false);
    const res = await rawCall(`127.0.0.1:${port}`, { headers: { 'grpc-timeout': '150000u' }, chunks: [frame.subarray(0, 10)], end: false });
    expect(res.code).toBe(DEADLINE_EXCEEDED);
    expect(gate.inUse).toBe(0);
    expect(sink.batches).toEqual([]);
  });
});

describe('with a real @grpc/grpc-js client', () => {
  const id = (b: Buffer): Buffer => b;
  function call(
    port: number,
    payload: Uint8Array,
    opts: { path?: string; compression?: 'gzip' | 'deflate'; deadlineMs?: number } = {},
  ): Promise<{ code: number; details: string; metadata?: grpc.Metadata; response?: Buffer }> {
    const algo = opts.compression === 'gzip' ? 2 : opts.compression === 'deflate' ? 1 : 0;
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': algo });
    return new Promise((resolve) => {
      client.makeUnaryRequest(
        opts.path ?? OTLP_GRPC_PATHS.logs,
        id,
        id,
        Buffer.from(payload),
        new grpc.Metadata(),
        { deadline: Date.now() + (opts.deadlineMs ?? 5_000) },
        (err: grpc.ServiceError | null, response?: Buffer) => {
          client.close();
          if (err) resolve({ code: err.code, details: err.details, metadata: err.metadata });
          else resolve({ code: OK, details: '', ...(response ? { response } : {}) });
        },
      );
    });
  }

  it('plain, gzip and deflate calls are stored; the response decodes as ExportLogsServiceResponse', async () => {
    const { port, sink } = await server();
    for (const compression of [undefined, 'gzip', 'deflate'] as const) {
      const r = await call(port, sampleRequest(2), compression ? { compression } : {});
      expect(r.code, compression ?? 'identity').toBe(OK);
      expect(r.response?.length).toBe(0);
    }
    expect(sink.entries).toHaveLength(6);
    // The empty response is a valid ExportLogsServiceResponse (no partial_success).
    expect(exportRequestType().root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse').decode(Buffer.alloc(0))).toBeDefined();
  });

  it('status codes and messages arrive as grpc-js reports them: logs only, unknown method, too large, bad data', async () => {
    const { port, sink } = await server(new MemorySink(), { max_recv_msg_size_mib: 1 });
    const traces = await call(port, new Uint8Array(0), { path: OTLP_GRPC_PATHS.traces });
    expect(traces.code).toBe(UNIMPLEMENTED);
    expect(traces.details).toMatch(/traces: this agent takes logs only/);
    const unknown = await call(port, new Uint8Array(0), { path: '/opentelemetry.proto.collector.logs.v1.LogsService/Import' });
    expect(unknown.code).toBe(UNIMPLEMENTED);
    const big = await call(port, new Uint8Array(1024 * 1024 + 1));
    expect(big.code).toBe(RESOURCE_EXHAUSTED);
    expect(big.details).toMatch(/larger than max/);
    const bomb = await call(port, new Uint8Array(8 * 1024 * 1024), { compression: 'gzip' });
    expect(bomb.code).toBe(RESOURCE_EXHAUSTED);
    expect(bomb.details).toMatch(/decompresses to a size larger than/);
    const invalid = await call(port, Uint8Array.from([0x08, 0x01]));
    expect(invalid.code).toBe(INVALID_ARGUMENT);
    expect(invalid.details).toMatch(/wire|type/i);
    expect(sink.batches).toEqual([]);
  });

  it('a non-ASCII status message survives percent-encoding (grpc-js decodes grpc-message)', async () => {
    const sink = { append: async () => ({ kind: 'retryable' as const, reason: 'disk_full' as const, afterMs: 2_000, detail: 'volume « logs » 100% full ✓' }) };
    const rx = new GrpcReceiver({ endpoint: '127.0.0.1:0', max_recv_msg_size_mib: 1, ...GRPC_DEFAULTS }, deps(sink));
    const { port } = await rx.start();
    cleanups.push(() => rx.shutdown(1_000));
    const r = await call(port, sampleRequest(1));
    expect(r.code).toBe(RESOURCE_EXHAUSTED);
    expect(r.details).toContain('(volume « logs » 100% full ✓)');
    const details = r.metadata?.get('grpc-status-details-bin')[0];
    expect(Buffer.isBuffer(details)).toBe(true);
    expect(retryDelayFromStatus(details as Buffer)).toBe(2);
    expect(decodeStatus(details as Buffer).message).toContain('100% full ✓');
  });

  it('grpc-js deadline shorter than the append → DEADLINE_EXCEEDED at the client', async () => {
    const sink = new GatedSink();
    const { port } = await server(sink);
    const r = await call(port, sampleRequest(1), { deadlineMs: 300 });
    expect(r.code).toBe(DEADLINE_EXCEEDED);
    sink.release();
  });

  it('shutting down: UNAVAILABLE with RetryInfo through grpc-js', async () => {
    const { port, rx } = await server();
    rx.stopAccepting();
    const r = await call(port, sampleRequest(1));
    expect(r.code).toBe(UNAVAILABLE);
    expect(retryDelayFromStatus(r.metadata?.get('grpc-status-details-bin')[0] as Buffer)).toBe(5);
  });
});

describe('connections', () => {
  it('a connection idle for the configured time is closed with GOAWAY; one with calls in between is not', async () => {
    const rx = new GrpcReceiver({ endpoint: '127.0.0.1:0', max_recv_msg_size_mib: 1, ...GRPC_DEFAULTS }, deps(new MemorySink()), { maxConnectionIdleMs: 300 });
    const { port } = await rx.start();
    cleanups.push(() => rx.shutdown(1_000));
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
    const t0 = performance.now();
    // Keep it busy for ~400 ms (longer than the idle limit), then let it idle.
    for (let i = 0; i < 4; i++) {
      expect((await rawCall(`127.0.0.1:${port}`, { session, chunks: [grpcFrame(sampleRequest(1), false)] })).code).toBe(OK);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await goaway).toBe(http2.constants.NGHTTP2_NO_ERROR);
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThan(600); // 4 × ~100 ms busy + ≥ 300 ms idle
    await new Promise<void>((resolve) => (session.closed ? resolve() : session.once('close', () => resolve())));
  });

  it('client keepalive PINGs are answered, but do not keep an idle connection open (idle = no calls)', async () => {
    const rx = new GrpcReceiver({ endpoint: '127.0.0.1:0', max_recv_msg_size_mib: 1, ...GRPC_DEFAULTS }, deps(new MemorySink()), { maxConnectionIdleMs: 400 });
    const { port } = await rx.start();
    cleanups.push(() => rx.shutdown(1_000));
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    let goaway = false;
    session.once('goaway', () => (goaway = true));
    await new Promise<void>((resolve) => session.once('connect', () => resolve()));
    let acks = 0;
    while (!goaway && acks < 100) {
      const ok = await new Promise<boolean>((resolve) => {
        if (!session.ping((err) => resolve(!err))) resolve(false);
      });
      if (!ok) break;
      acks++;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(acks).toBeGreaterThan(2); // pings were acknowledged…
    await waitFor(() => goaway || session.closed); // …and the call-less connection was still closed
    session.destroy();
  });

  it('shutdown sends GOAWAY on open connections, lets the in-flight call finish, and the port closes', async () => {
    const sink = new GatedSink();
    const { rx, port } = await server(sink);
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
    const inflight = rawCall(`127.0.0.1:${port}`, { session, chunks: [grpcFrame(sampleRequest(2), false)] });
    await waitFor(() => sink.pending === 1);
    const shut = rx.shutdown(5_000);
    await goaway;
    sink.release();
    expect((await inflight).code).toBe(OK);
    await shut;
    expect(sink.entries).toHaveLength(2);
    session.destroy();
    const refused = await new Promise<string>((resolve) => {
      const s = http2.connect(`http://127.0.0.1:${port}`);
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      s.on('connect', () => {
        s.destroy();
        resolve('connected');
      });
    });
    expect(refused).toBe('ECONNREFUSED');
  });

  it('a call still running when the grace period ends is cut off and shutdown resolves', async () => {
    const sink = new GatedSink();
    const rx = new GrpcReceiver({ endpoint: '127.0.0.1:0', max_recv_msg_size_mib: 1, ...GRPC_DEFAULTS }, { ...deps(sink), logger: silentLogger() });
    const { port } = await rx.start();
    const inflight = rawCall(`127.0.0.1:${port}`, { chunks: [grpcFrame(sampleRequest(1), false)] });
    await waitFor(() => sink.pending === 1);
    const t0 = performance.now();
    await rx.shutdown(300);
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(290);
    expect(ms).toBeLessThan(3_000);
    const r = await inflight;
    expect(r.code).toBe(-1); // connection closed without a status
    sink.release();
  });

  it('failed TLS handshakes are counted (reason tls_handshake)', async () => {
    const pki = makePki();
    cleanups.push(() => pki.remove());
    const metrics = newMetrics();
    const { port } = await server(new MemorySink(), { tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.ca.cert, min_version: '1.2', reload_interval: 0 } }, metrics);
    // Plaintext HTTP/2 against the TLS port: the handshake fails.
    const s = http2.connect(`http://127.0.0.1:${port}`);
    await new Promise<void>((resolve) => {
      s.on('error', () => resolve());
      s.on('close', () => resolve());
    });
    s.destroy();
    await waitFor(async () => (await counter(metrics, 'receiverRefusedRequests', { transport: 'grpc', reason: 'tls_handshake' })) >= 1);
  }, 30_000);
});

async function waitFor(cond: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
