/**
 * G2 "No silent loss": when the ledger refuses, or the receiver is stopping, clients get a
 * retryable status with a retry hint, nothing is stored, and the refusal is counted. Also the
 * lifecycle: stopAccepting lets in-flight requests finish; shutdown is idempotent; TLS/auth that
 * is configured but unusable (missing files) stops start-up instead of serving plaintext.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { RefusalReason } from '../../src/ledger/types.js';
import { GrpcReceiver, OTLP_GRPC_PATHS } from '../../src/receiver/grpc.js';
import { HttpReceiver } from '../../src/receiver/http.js';
import { SealtrailError } from '../../src/errors.js';
import {
  GRPC_DEFAULTS,
  GatedSink,
  HTTP_DEFAULTS,
  MemorySink,
  RefusingSink,
  decodeStatus,
  deps,
  grpcCall,
  httpRequest,
  newMetrics,
  retryDelayFromStatus,
  sampleRequest,
  sampleRequestJson,
  startGrpc,
  startHttp,
} from './helpers.js';

const PB = { 'content-type': 'application/x-protobuf' };
const UNAVAILABLE = 14;
const RESOURCE_EXHAUSTED = 8;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const TABLE: Array<{ reason: RefusalReason; afterMs: number; http: number; retryAfter: string; grpc: number; delay: number }> = [
  { reason: 'disk_full', afterMs: 30_000, http: 503, retryAfter: '30', grpc: RESOURCE_EXHAUSTED, delay: 30 },
  { reason: 'overloaded', afterMs: 250, http: 429, retryAfter: '1', grpc: RESOURCE_EXHAUSTED, delay: 1 },
  { reason: 'shutting_down', afterMs: 5_000, http: 503, retryAfter: '5', grpc: UNAVAILABLE, delay: 5 },
  { reason: 'ledger_failed', afterMs: 10_500, http: 503, retryAfter: '11', grpc: UNAVAILABLE, delay: 11 },
];

describe('retryable refusals from the ledger', () => {
  it.each(TABLE)('HTTP: $reason → $http with Retry-After $retryAfter, in the request encoding', async (t) => {
    const sink = new RefusingSink(t.reason, t.afterMs, 'test detail');
    const metrics = newMetrics();
    const { rx, url } = await startHttp(sink, {}, metrics);
    cleanups.push(() => rx.shutdown());

    const res = await httpRequest(url, { headers: PB, body: sampleRequest(3) });
    expect(res.status).toBe(t.http);
    expect(res.headers['retry-after']).toBe(t.retryAfter);
    expect(res.headers['content-type']).toBe('application/x-protobuf');
    const st = decodeStatus(res.body);
    expect(st.code).toBe(t.grpc);
    expect(st.message).toContain('test detail');
    expect(st.message).toMatch(/retry/);

    const resJson = await httpRequest(url, { headers: { 'content-type': 'application/json' }, body: sampleRequestJson(1) });
    expect(resJson.status).toBe(t.http);
    expect(resJson.headers['retry-after']).toBe(t.retryAfter);
    expect(JSON.parse(resJson.body.toString()).message).toContain('test detail');

    expect(sink.calls).toBe(2);
    const text = await metrics.registry.metrics();
    expect(text).toContain(`sealtrail_receiver_refused_log_records_total{transport="http",reason="${t.reason}"} 4`);
    expect(text).toContain(`sealtrail_receiver_requests_total{transport="http",status="${t.http}"} 2`);
  });

  it.each(TABLE)('gRPC: $reason → code $grpc with RetryInfo $delay s', async (t) => {
    const sink = new RefusingSink(t.reason, t.afterMs);
    const metrics = newMetrics();
    const { rx, address } = await startGrpc(sink, {}, metrics);
    cleanups.push(() => rx.shutdown());

    const res = await grpcCall(address, OTLP_GRPC_PATHS.logs, sampleRequest(3));
    expect(res.code).toBe(t.grpc);
    expect(res.message).toMatch(/retry/);
    expect(res.details).toBeDefined();
    // RetryInfo is what makes RESOURCE_EXHAUSTED retryable for OTLP clients (spec "OTLP/gRPC Failures").
    expect(retryDelayFromStatus(res.details!)).toBe(t.delay);
    expect(decodeStatus(res.details!).code).toBe(t.grpc);
    const text = await metrics.registry.metrics();
    expect(text).toContain(`sealtrail_receiver_refused_log_records_total{transport="grpc",reason="${t.reason}"} 3`);
  });
});

describe('stopAccepting and shutdown', () => {
  it('HTTP: in-flight request finishes with 200; new requests get 503 shutting_down; shutdown twice is fine', async () => {
    const sink = new GatedSink();
    const { rx, url } = await startHttp(sink);
    const inflight = httpRequest(url, { headers: PB, body: sampleRequest(2) });
    await waitFor(() => sink.pending === 1);
    rx.stopAccepting();

    const refused = await httpRequest(url, { headers: PB, body: sampleRequest(1) });
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    expect(decodeStatus(refused.body).message).toMatch(/shutting down/);

    const shut = rx.shutdown();
    sink.release();
    expect((await inflight).status).toBe(200);
    await shut;
    await rx.shutdown(); // second call: same resolved promise, no throw
    expect(sink.entries).toHaveLength(2); // only the in-flight request's records
  });

  it('gRPC: in-flight call finishes with OK; new calls get UNAVAILABLE + RetryInfo; shutdown twice is fine', async () => {
    const sink = new GatedSink();
    const { rx, address } = await startGrpc(sink);
    const inflight = grpcCall(address, OTLP_GRPC_PATHS.logs, sampleRequest(2));
    await waitFor(() => sink.pending === 1);
    rx.stopAccepting();

    const refused = await grpcCall(address, OTLP_GRPC_PATHS.logs, sampleRequest(1));
    expect(refused.code).toBe(UNAVAILABLE);
    expect(refused.message).toMatch(/shutting down/);
    expect(retryDelayFromStatus(refused.details!)).toBe(5);

    const shut = rx.shutdown();
    sink.release();
    expect((await inflight).code).toBe(0);
    await shut;
    await rx.shutdown();
    expect(sink.entries).toHaveLength(2);
  });

  it('shutdown before start resolves', async () => {
    await new HttpReceiver({ endpoint: '127.0.0.1:0', max_request_body_size: 1024, ...HTTP_DEFAULTS }, deps(new MemorySink())).shutdown();
    await new GrpcReceiver({ endpoint: '127.0.0.1:0', max_recv_msg_size_mib: 1, ...GRPC_DEFAULTS }, deps(new MemorySink())).shutdown();
  });

  it('IPv6 loopback endpoints ([::1]:0) work for both transports', async () => {
    const sink = new MemorySink();
    const h = await startHttp(sink, { endpoint: '[::1]:0' });
    const g = await startGrpc(sink, { endpoint: '[::1]:0' });
    try {
      expect((await httpRequest(`http://[::1]:${h.port}`, { headers: PB, body: sampleRequest(1) })).status).toBe(200);
      expect((await grpcCall(`[::1]:${g.port}`, OTLP_GRPC_PATHS.logs, sampleRequest(1))).code).toBe(0);
      expect(sink.entries).toHaveLength(2);
    } finally {
      await Promise.all([h.rx.shutdown(), g.rx.shutdown()]);
    }
  });

  it('after shutdown the port is closed', async () => {
    const { rx, url } = await startHttp(new MemorySink());
    await rx.shutdown();
    await expect(httpRequest(url, { headers: PB, body: sampleRequest(1) })).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('start-up refusals', () => {
  const tls = { cert_file: 'c.pem', key_file: 'k.pem', min_version: '1.2' as const, reload_interval: 0 };
  it('HTTP with tls files missing refuses to start (never plaintext instead)', async () => {
    const rx = new HttpReceiver({ endpoint: '127.0.0.1:0', max_request_body_size: 1024, ...HTTP_DEFAULTS, tls }, deps(new MemorySink()));
    await expect(rx.start()).rejects.toThrow(SealtrailError);
    await expect(rx.start()).rejects.toThrow(/receivers\.otlp\.protocols\.http\.tls/);
  });
  it('gRPC with the token file missing refuses to start', async () => {
    const rx = new GrpcReceiver({ endpoint: '127.0.0.1:0', max_recv_msg_size_mib: 1, ...GRPC_DEFAULTS, auth: { bearer_token_file: 't', reload_interval: 0 } }, deps(new MemorySink()));
    await expect(rx.start()).rejects.toThrow(/receivers\.otlp\.protocols\.grpc\.auth/);
  });
  it('a port already in use is a clear IO error naming the key', async () => {
    const { rx, port } = await startHttp(new MemorySink());
    cleanups.push(() => rx.shutdown());
    const second = new HttpReceiver({ endpoint: `127.0.0.1:${port}`, max_request_body_size: 1024, ...HTTP_DEFAULTS }, deps(new MemorySink()));
    await expect(second.start()).rejects.toThrow(/receivers\.otlp\.protocols\.http\.endpoint.*EADDRINUSE/);
    const g = await startGrpc(new MemorySink());
    cleanups.push(() => g.rx.shutdown());
    const second2 = new GrpcReceiver({ endpoint: `127.0.0.1:${g.port}`, max_recv_msg_size_mib: 1, ...GRPC_DEFAULTS }, deps(new MemorySink()));
    await expect(second2.start()).rejects.toThrow(/receivers\.otlp\.protocols\.grpc\.endpoint/);
  });
});

async function waitFor(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
