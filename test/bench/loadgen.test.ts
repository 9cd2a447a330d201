/**
 * The benchmark must measure valid traffic (issue 7): the load generator's pre-encoded requests
 * decode with protobufjs (an independent decoder) into what was meant, are accepted by src/otlp's
 * decoders, and its lean clients get success from the real receivers (grpc-js server for gRPC,
 * node:http server for OTLP/HTTP) with the records arriving in the sink. Also the hand-written
 * histogram against exact quantiles. Nothing here is timed.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GrpcClient, HttpClient, type OtlpClient } from '../../bench/clients.js';
import { Histogram } from '../../bench/histogram.js';
import type { LoadJob, LoadResult } from '../../bench/loadgen.js';
import { LoadgenProcess, cpuSeconds } from '../../bench/procs.js';
import { VARIANTS, encodeRequest, exportRequestType, grpcFrame } from '../../bench/payloads.js';
import { configSchema } from '../../src/config/schema.js';
import { type AppendOutcome, type EntrySink, type Entries, entryCount } from '../../src/ledger/types.js';
import { decodeLogsJson, decodeLogsProtobuf } from '../../src/otlp/index.js';
import { GrpcReceiver } from '../../src/receiver/grpc.js';
import { HttpReceiver } from '../../src/receiver/http.js';
import { silentLogger } from '../../src/telemetry/logger.js';

const LIMITS = { maxNestingDepth: 32 };

interface DecodedRecord {
  body: { stringValue: string };
  attributes: { key: string }[];
  traceId: Uint8Array;
  spanId: Uint8Array;
  timeUnixNano: unknown;
  severityNumber: number;
}

describe('pre-encoded requests', () => {
  it.each(VARIANTS)('%i-record request decodes with protobufjs into the intended records', (n) => {
    const r = encodeRequest(n, 1);
    const Req = exportRequestType();
    const obj = Req.toObject(Req.decode(r.protobuf), { longs: String }) as {
      resourceLogs: { resource: { attributes: { key: string }[] }; scopeLogs: { scope: { name: string }; logRecords: DecodedRecord[] }[] }[];
    };
    expect(obj.resourceLogs).toHaveLength(1);
    const rl = obj.resourceLogs[0]!;
    expect(rl.resource.attributes.map((a) => a.key)).toContain('service.name');
    expect(rl.scopeLogs[0]!.scope.name).toBe('com.example.audit');
    const recs = rl.scopeLogs[0]!.logRecords;
    expect(recs).toHaveLength(n);
    for (const rec of recs) {
      expect(Buffer.byteLength(rec.body.stringValue)).toBe(200);
      expect(rec.attributes).toHaveLength(4);
      expect(rec.traceId).toHaveLength(16);
      expect(rec.spanId).toHaveLength(8);
      expect(rec.severityNumber).toBe(9);
      expect(String(rec.timeUnixNano)).toMatch(/^17643\d{14}$/);
    }
    expect(r.bodyBytes).toBe(200 * n);
    // Records differ from each other (no trivially repeated bytes).
    expect(new Set(recs.map((x) => x.body.stringValue)).size).toBe(n);
  });

  it.each(VARIANTS)('%i-record request is accepted by decodeLogsProtobuf and decodeLogsJson, with the same entries', (n) => {
    const r = encodeRequest(n, 2);
    const pb = decodeLogsProtobuf(r.protobuf, LIMITS);
    const js = decodeLogsJson(r.json, LIMITS);
    if (!pb.ok) throw new Error(pb.message);
    if (!js.ok) throw new Error(js.message);
    expect(pb.entries).toHaveLength(n);
    expect(js.entries).toHaveLength(n);
    // protobufjs writes fields in field-number order, like the agent's JSON → protobuf encoder, so the
    // two routes must agree byte for byte (api-otlp.md, "Entry format").
    for (let i = 0; i < n; i++) expect(Buffer.from(js.entries[i]!).equals(Buffer.from(pb.entries[i]!))).toBe(true);
  });

  it('frames a gRPC message with flag 0 and a big-endian length', () => {
    const f = grpcFrame(Uint8Array.from([1, 2, 3]));
    expect([...f]).toEqual([0, 0, 0, 0, 3, 1, 2, 3]);
  });
});

class CountingSink implements EntrySink {
  entries = 0;
  append(entries: Entries): Promise<AppendOutcome> {
    const firstIndex = this.entries;
    const count = entryCount(entries);
    this.entries += count;
    return Promise.resolve({ kind: 'ok', firstIndex, count });
  }
}

function send(client: OtlpClient, i: number): Promise<{ status: string; ok: boolean }> {
  return new Promise((resolve) => client.request(i, (status, ok) => resolve({ status, ok })));
}

describe('lean clients against the real receivers', () => {
  const sink = new CountingSink();
  const cfg = configSchema.parse({ receivers: { otlp: { protocols: { http: { endpoint: '127.0.0.1:0' }, grpc: { endpoint: '127.0.0.1:0' } } } } });
  const deps = { sink, limits: LIMITS, logger: silentLogger() };
  const httpRx = new HttpReceiver(cfg.receivers.otlp.protocols.http!, deps);
  const grpcRx = new GrpcReceiver(cfg.receivers.otlp.protocols.grpc!, deps);
  let httpAddr: { host: string; port: number };
  let grpcAddr: { host: string; port: number };
  const reqs = [encodeRequest(100, 0), encodeRequest(100, 1)];

  beforeAll(async () => {
    httpAddr = await httpRx.start();
    grpcAddr = await grpcRx.start();
  });
  afterAll(async () => {
    await Promise.all([httpRx.shutdown(1000), grpcRx.shutdown(1000)]);
  });

  it('OTLP/HTTP protobuf and JSON: 200 and every record stored, over reused connections', async () => {
    for (const [type, bodies] of [
      ['application/x-protobuf', reqs.map((r) => r.protobuf)],
      ['application/json', reqs.map((r) => r.json)],
    ] as const) {
      const c = new HttpClient(httpAddr.host, httpAddr.port, type, bodies);
      await c.warm(1);
      const before = sink.entries;
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await send(c, i)); // one connection, sequential: keep-alive parsing
      results.push(...(await Promise.all([0, 1, 2].map((i) => send(c, i))))); // and a few in parallel
      c.close();
      expect(results.every((r) => r.ok && r.status === 'http 200')).toBe(true);
      expect(sink.entries - before).toBe(7 * 100);
    }
  });

  it('OTLP/HTTP protobuf with chunked bodies (as the OTel JS SDK sends them): 200 and every record stored', async () => {
    const c = new HttpClient(httpAddr.host, httpAddr.port, 'application/x-protobuf', reqs.map((r) => r.protobuf), { chunked: true });
    await c.warm(1);
    const before = sink.entries;
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await send(c, i));
    c.close();
    expect(results.every((r) => r.ok && r.status === 'http 200')).toBe(true);
    expect(sink.entries - before).toBe(3 * 100);
    // What went on the wire: chunked, no Content-Length, the body intact.
    const seen: Array<{ te?: string; cl?: string; bytes: number }> = [];
    const srv = http.createServer((req, res) => {
      let bytes = 0;
      req.on('data', (d: Buffer) => (bytes += d.length));
      req.on('end', () => {
        seen.push({ te: req.headers['transfer-encoding'], cl: req.headers['content-length'], bytes });
        res.end();
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const c2 = new HttpClient('127.0.0.1', (srv.address() as AddressInfo).port, 'application/x-protobuf', [reqs[0]!.protobuf], { chunked: true });
    await c2.warm(1);
    expect(await send(c2, 0)).toEqual({ status: 'http 200', ok: true });
    c2.close();
    srv.close();
    expect(seen).toEqual([{ te: 'chunked', cl: undefined, bytes: reqs[0]!.protobuf.length }]);
  });

  it('OTLP/HTTP over TLS: the client trusts the given CA for "localhost" and reads the answers', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sealtrail-loadgen-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'k'), '-out', path.join(dir, 'c'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
      const cert = readFileSync(path.join(dir, 'c'), 'utf8');
      let sawTls = false;
      const srv = https.createServer({ cert, key: readFileSync(path.join(dir, 'k')) }, (req, res) => {
        sawTls = (req.socket as TLSSocket).encrypted === true;
        req.resume();
        req.on('end', () => res.end());
      });
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      const c = new HttpClient('127.0.0.1', (srv.address() as AddressInfo).port, 'application/x-protobuf', [reqs[0]!.protobuf], { tlsCa: cert });
      await c.warm(1);
      expect(await send(c, 0)).toEqual({ status: 'http 200', ok: true });
      c.close();
      expect(sawTls).toBe(true);
      // Trusting another certificate: the handshake fails, and the request is not counted as a success.
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'k2'), '-out', path.join(dir, 'c2'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
      const other = new HttpClient('127.0.0.1', (srv.address() as AddressInfo).port, 'application/x-protobuf', [reqs[0]!.protobuf], { tlsCa: readFileSync(path.join(dir, 'c2'), 'utf8') });
      const r = await send(other, 0);
      other.close();
      srv.close();
      expect(r.ok).toBe(false);
      expect(r.status).toMatch(/^error /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('OTLP/gRPC over node:http2: grpc-status 0 from the grpc-js server and every record stored', async () => {
    const c = new GrpcClient(grpcAddr.host, grpcAddr.port, reqs.map((r) => r.protobuf));
    await c.warm(2);
    const before = sink.entries;
    const results = await Promise.all([0, 1, 2, 3, 4].map((i) => send(c, i)));
    c.close();
    expect(results).toEqual(Array(5).fill({ status: 'grpc 0', ok: true }));
    expect(sink.entries - before).toBe(500);
  });

  it('OTLP/gRPC: a refused call is reported with its grpc-status, not as success', async () => {
    const c = new GrpcClient(grpcAddr.host, grpcAddr.port, [Uint8Array.from([0xff, 0xff])]); // not a valid request
    await c.warm(1);
    const r = await send(c, 0);
    c.close();
    expect(r).toEqual({ status: 'grpc 3', ok: false }); // INVALID_ARGUMENT
  });

  it('HTTP client: reads chunked bodies and non-200 statuses', async () => {
    const srv = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.headers['content-type'] === 'text/plain') {
          res.writeHead(503, { 'retry-after': '1' });
          res.end('busy');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/x-protobuf' });
        res.write('ab'); // no content-length: chunked
        res.end('cd');
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    const ok = new HttpClient('127.0.0.1', port, 'application/x-protobuf', [Uint8Array.from([1])]);
    const busy = new HttpClient('127.0.0.1', port, 'text/plain', [Uint8Array.from([1])]);
    const r1 = await send(ok, 0);
    const r2 = await send(ok, 0); // same connection again after a chunked response
    const r3 = await send(busy, 0);
    ok.close();
    busy.close();
    srv.closeAllConnections();
    await new Promise((r) => srv.close(r));
    expect([r1, r2, r3]).toEqual([
      { status: 'http 200', ok: true },
      { status: 'http 200', ok: true },
      { status: 'http 503', ok: false },
    ]);
  });
});

describe('open loop', () => {
  // The built load generator (dist/bench/loadgen.js, as `npm run bench` runs it) against a node:http
  // server that answers 200 at once; 1,000 req/s is one send per ms.
  async function openLoop(pace: LoadJob['pace']): Promise<{ r: LoadResult; busy: number }> {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end());
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const lg = new LoadgenProcess(undefined, process.execPath, 'dist/bench/loadgen.js');
    try {
      await lg.ready;
      const port = (server.address() as AddressInfo).port;
      const job: LoadJob = { id: 'open', transport: 'http-protobuf', host: '127.0.0.1', port, records: 1, mode: 'open', concurrency: 64, rate: 1000, warmupMs: 300, durationMs: 1500, ...(pace ? { pace } : {}) };
      const cpu0 = cpuSeconds(lg.child.pid!);
      const t0 = performance.now();
      const r = await lg.run(job, () => undefined);
      return { r, busy: (cpuSeconds(lg.child.pid!) - cpu0) / ((performance.now() - t0) / 1000) };
    } finally {
      lg.child.kill();
      server.close();
    }
  }

  function expectEverySendTimed(r: LoadResult): void {
    expect(r.statuses).toEqual({ 'http 200': r.okRequests });
    expect(r.scheduled).toBeGreaterThan(1200); // ≈ 1,500 due in the window
    expect(r.okRequests).toBeGreaterThan(r.scheduled! - 20);
    // every request of the window went out when due (no free slot was ever missing) and was timed
    expect(r.sendLateness!.count).toBe(r.scheduled);
  }

  it('pace "sleep": sleeps between sends instead of spinning, and reports how late it sent', async () => {
    const { r, busy } = await openLoop('sleep');
    expectEverySendTimed(r);
    expect(r.sendLateness!.p50Us).toBeLessThan(5000);
    expect(busy).toBeLessThan(0.5); // spinning: ≈ 1
  });

  it('the default pace spins when a send is close: sends go out on time', async () => {
    const { r } = await openLoop(undefined);
    expectEverySendTimed(r);
    expect(r.sendLateness!.p50Us).toBeLessThan(250); // sleeping on node's timers: ≈ 500–700 µs
  });
});

describe('Histogram', () => {
  it('quantiles are within 1/64 above the exact value (and never above max)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 50_000_000 }), { minLength: 1, maxLength: 300 }), fc.double({ min: 0.01, max: 1, noNaN: true }), (xs, q) => {
        const h = new Histogram();
        for (const x of xs) h.record(x);
        const sorted = [...xs].sort((a, b) => a - b);
        const exact = sorted[Math.max(0, Math.ceil(q * xs.length) - 1)]!;
        const got = h.quantile(q);
        expect(got).toBeGreaterThanOrEqual(exact);
        expect(got).toBeLessThanOrEqual(Math.min(exact + exact / 64 + 1, sorted[sorted.length - 1]!));
      }),
    );
  });

  it('summary of a known set', () => {
    const h = new Histogram();
    for (let i = 1; i <= 100; i++) h.record(i);
    const s = h.summary();
    expect(s.count).toBe(100);
    expect(s.minUs).toBe(1);
    expect(s.maxUs).toBe(100);
    expect(s.p50Us).toBe(50);
    expect(s.p99Us).toBe(99);
    expect(s.meanUs).toBeCloseTo(50.5);
  });
});
