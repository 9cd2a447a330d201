/**
 * Issue 8 / G2 — limits under abuse, on loopback, bounded in count and time:
 * - slowloris: a client trickling its headers (one byte a second) or its body is cut off within the
 *   configured timeout while a well-behaved client is served; gRPC calls whose message never
 *   completes end with DEADLINE_EXCEEDED after read_timeout and give their admission slot back;
 * - the global admission gate (shared by both receivers): 429 + Retry-After / RESOURCE_EXHAUSTED +
 *   RetryInfo when full, nothing stored, served again once requests finish;
 * - max_records_per_request → 413 / RESOURCE_EXHAUSTED without RetryInfo; header size → 431;
 * - a flood of concurrent clients: every acknowledged record is stored, every refusal is retryable,
 *   a well-behaved client still gets through, memory stays bounded.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppendOutcome, Entries } from '../../src/ledger/types.js';
import { OTLP_GRPC_PATHS } from '../../src/receiver/grpc.js';
import { ConcurrencyGate } from '../../src/receiver/limits.js';
import type { ReceiverDeps } from '../../src/receiver/types.js';
import {
  GatedSink,
  MemorySink,
  decodeStatus,
  deps,
  encodeRequest,
  grpcCall,
  grpcFrame,
  httpRequest,
  newMetrics,
  retryDelayFromStatus,
  sampleRequest,
  sampleRequestJson,
  startHttp,
} from '../receiver/helpers.js';
import { GrpcReceiver } from '../../src/receiver/grpc.js';
import { HttpReceiver } from '../../src/receiver/http.js';
import type { Metrics } from '../../src/telemetry/metrics.js';
import { GRPC_DEFAULTS, HTTP_DEFAULTS } from '../receiver/helpers.js';

const PB = { 'content-type': 'application/x-protobuf' };
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function refusedCount(metrics: Metrics, reason: string, transport = 'http'): Promise<number> {
  const v = (await metrics.receiverRefusedRequests.get()).values.find((x) => x.labels.reason === reason && x.labels.transport === transport);
  return v?.value ?? 0;
}

/** Opens a raw socket, runs `feed`, resolves when the server closes it: ms until close and what it answered. */
function rawClient(port: number, feed: (s: net.Socket) => void): Promise<{ ms: number; reply: string }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    let reply = '';
    const s = net.connect(port, '127.0.0.1', () => feed(s));
    s.on('data', (d) => (reply += d.toString('latin1')));
    s.on('error', () => undefined); // a reset is one way of being cut off
    s.on('close', () => resolve({ ms: Date.now() - t0, reply }));
    setTimeout(() => {
      s.destroy();
      reject(new Error(`server did not close the slow connection within 15 s (got ${JSON.stringify(reply)})`));
    }, 15_000).unref();
  });
}

function trickle(s: net.Socket, text: string, everyMs: number): NodeJS.Timeout {
  let i = 0;
  const t = setInterval(() => {
    if (s.destroyed || i >= text.length) return clearInterval(t);
    s.write(text[i++]!);
  }, everyMs);
  return t;
}

// Upper bounds leave room for a loaded CI machine (timers fire late under load); a trickling client
// that is never cut off would exceed them by far.
describe('slow clients (slowloris)', () => {
  it('HTTP: headers trickled one byte a second are cut off after read_header_timeout; a normal client is served meanwhile', async () => {
    const sink = new MemorySink();
    const metrics = newMetrics();
    const { rx, url, port } = await startHttp(sink, { read_header_timeout: 2_000, read_timeout: 4_000 }, metrics);
    cleanups.push(() => rx.shutdown());
    let timer: NodeJS.Timeout | undefined;
    const slow = rawClient(port, (s) => {
      s.write('POST /v1/logs HTTP/1.1\r\nHost: x\r\n');
      timer = trickle(s, 'X-Slow: ' + 'a'.repeat(100), 1_000);
    });
    // While the slow client holds its connection, well-behaved clients are served.
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; i < 3; i++) expect((await httpRequest(url, { headers: PB, body: sampleRequest(1) })).status).toBe(200);
    const { ms, reply } = await slow;
    clearInterval(timer);
    console.log(`slowloris (headers): cut off after ${ms} ms (read_header_timeout 2000 ms), answer ${JSON.stringify(reply.split('\r\n')[0])}`);
    expect(ms).toBeGreaterThanOrEqual(1_900);
    expect(ms).toBeLessThan(5_000);
    expect(reply).toMatch(/^HTTP\/1\.1 408/);
    expect(sink.entries).toHaveLength(3);
    expect(await refusedCount(metrics, 'timeout')).toBe(1);
  });

  it('HTTP: a body trickled one byte a second is cut off after read_timeout; its admission slot is released; nothing stored', async () => {
    const sink = new MemorySink();
    const gate = new ConcurrencyGate(1);
    const rx = new HttpReceiver(
      { endpoint: '127.0.0.1:0', max_request_body_size: 1 << 20, ...HTTP_DEFAULTS, read_header_timeout: 1_000, read_timeout: 2_000 },
      { ...deps(sink), gate },
    );
    const { port } = await rx.start();
    cleanups.push(() => rx.shutdown());
    const body = Buffer.from(sampleRequest(1));
    let timer: NodeJS.Timeout | undefined;
    const slow = rawClient(port, (s) => {
      s.write(`POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${body.length}\r\n\r\n`);
      timer = trickle(s, body.toString('latin1'), 1_000);
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(gate.inUse).toBe(1); // the slow request holds the only slot…
    const { ms, reply } = await slow;
    clearInterval(timer);
    console.log(`slowloris (body): cut off after ${ms} ms (read_timeout 2000 ms)`);
    expect(ms).toBeLessThan(5_000);
    expect(reply).toMatch(/^HTTP\/1\.1 408/);
    // …and gives it back. The server releases the slot on the response's 'close', which can come a
    // turn after this client has read the 408 (client and server share this process): wait, bounded.
    await waitFor(() => gate.inUse === 0, 2_000);
    expect(gate.inUse).toBe(0);
    expect(sink.entries).toHaveLength(0);
    expect((await httpRequest(`http://127.0.0.1:${port}`, { headers: PB, body })).status).toBe(200);
  });

  it('HTTP: a connection that sends nothing at all is closed after read_header_timeout', async () => {
    const { rx, port } = await startHttp(new MemorySink(), { read_header_timeout: 1_000, read_timeout: 2_000 });
    cleanups.push(() => rx.shutdown());
    const { ms } = await rawClient(port, () => undefined);
    console.log(`silent HTTP connection closed after ${ms} ms (read_header_timeout 1000 ms)`);
    expect(ms).toBeLessThan(4_000);
  });

  it('gRPC: a call whose message never completes ends with DEADLINE_EXCEEDED after read_timeout and releases its slot', async () => {
    const sink = new MemorySink();
    const gate = new ConcurrencyGate(2);
    const metrics = newMetrics();
    const rx = new GrpcReceiver({ endpoint: '127.0.0.1:0', max_recv_msg_size_mib: 4, ...GRPC_DEFAULTS, read_timeout: 1_000 }, { ...deps(sink, metrics), gate });
    const { port } = await rx.start();
    cleanups.push(() => rx.shutdown());
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined); // the server may cancel the half-sent stream's session state
    cleanups.push(() => void session.destroy());
    const t0 = Date.now();
    const code = await new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': OTLP_GRPC_PATHS.logs, 'content-type': 'application/grpc', te: 'trailers' });
      // A frame header announcing 1000 bytes, then only 10 of them; the stream stays open.
      const frame = grpcFrame(new Uint8Array(1000), false);
      stream.write(frame.subarray(0, 15));
      // The server answers (trailers-only) while our side is still open: resolve on its status.
      const done = (h: http2.IncomingHttpHeaders): void => {
        if (h['grpc-status'] === undefined) return;
        resolve(Number(h['grpc-status']));
        stream.close();
      };
      stream.on('response', done);
      stream.on('trailers', done);
      stream.resume();
      stream.on('close', () => resolve(-1));
      stream.on('error', reject);
    });
    const ms = Date.now() - t0;
    console.log(`gRPC slow message: DEADLINE_EXCEEDED after ${ms} ms (read_timeout 1000 ms)`);
    expect(code).toBe(4);
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(4_000);
    expect(gate.inUse).toBe(0);
    expect(await refusedCount(metrics, 'timeout', 'grpc')).toBe(1);
    expect((await grpcCall(`127.0.0.1:${port}`, OTLP_GRPC_PATHS.logs, sampleRequest(1))).code).toBe(0);
    expect(sink.entries).toHaveLength(1);
  });
});

describe('admission and size limits', () => {
  it('one gate shared by both receivers: full → 429 + Retry-After / RESOURCE_EXHAUSTED + RetryInfo, nothing stored; free again after', async () => {
    const sink = new GatedSink();
    const metrics = newMetrics();
    const gate = new ConcurrencyGate(2);
    const d: ReceiverDeps = { ...deps(sink, metrics), gate };
    const h = new HttpReceiver({ endpoint: '127.0.0.1:0', max_request_body_size: 1 << 20, ...HTTP_DEFAULTS }, d);
    const g = new GrpcReceiver({ endpoint: '127.0.0.1:0', max_recv_msg_size_mib: 1, ...GRPC_DEFAULTS }, d);
    const url = `http://127.0.0.1:${(await h.start()).port}`;
    const addr = `127.0.0.1:${(await g.start()).port}`;
    cleanups.push(() => Promise.all([h.shutdown(1000), g.shutdown(1000)]).then(() => undefined));
    // One HTTP and one gRPC request hold the two slots (the sink does not answer yet).
    const heldHttp = httpRequest(url, { headers: PB, body: sampleRequest(1) });
    const heldGrpc = grpcCall(addr, OTLP_GRPC_PATHS.logs, sampleRequest(1));
    await waitFor(() => sink.pending === 2);
    const r = await httpRequest(url, { headers: PB, body: sampleRequest(1) });
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('1');
    expect(decodeStatus(r.body).message).toMatch(/max_concurrent_requests \(2\)/);
    const gr = await grpcCall(addr, OTLP_GRPC_PATHS.logs, sampleRequest(1));
    expect(gr.code).toBe(8);
    expect(retryDelayFromStatus(gr.details!)).toBe(1);
    sink.release();
    expect((await heldHttp).status).toBe(200);
    expect((await heldGrpc).code).toBe(0);
    expect(sink.entries).toHaveLength(2);
    expect(gate.inUse).toBe(0);
    expect((await httpRequest(url, { headers: PB, body: sampleRequest(1) })).status).toBe(200);
    expect(await refusedCount(metrics, 'overloaded', 'http')).toBe(1);
    expect(await refusedCount(metrics, 'overloaded', 'grpc')).toBe(1);
  });

  // A 429 for a full gate keeps a keep-alive connection when the body is small (it is read and
  // discarded) — declared or chunked; a body too large to be worth reading closes it.
  it('429 for a full gate: a small body (declared or chunked) is drained and the connection stays usable; a large chunked one is closed', async () => {
    // A receiver whose one admission slot is taken by a request the sink holds until release().
    const held = async (): Promise<{ port: number; sink: GatedSink; first: ReturnType<typeof httpRequest> }> => {
      const sink = new GatedSink();
      const h = new HttpReceiver({ endpoint: '127.0.0.1:0', max_request_body_size: 4 << 20, ...HTTP_DEFAULTS }, { ...deps(sink), gate: new ConcurrencyGate(1) });
      const port = (await h.start()).port;
      cleanups.push(() => h.shutdown(1000));
      const first = httpRequest(`http://127.0.0.1:${port}`, { headers: PB, body: sampleRequest(1) });
      await waitFor(() => sink.pending === 1);
      return { port, sink, first };
    };
    const body = Buffer.from(sampleRequest(200)); // tens of KB: more than one socket read
    const head = (extra: string): string => `POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n${extra}\r\n`;
    const declared = (b: Buffer): Buffer => Buffer.concat([Buffer.from(head(`Content-Length: ${b.length}\r\n`)), b]);
    const chunked = (b: Buffer): Buffer => Buffer.concat([Buffer.from(`${head('Transfer-Encoding: chunked\r\n')}${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n0\r\n\r\n')]);
    for (const framing of [declared, chunked]) {
      const { port, sink, first } = await held();
      const conn = new RawConnection(port);
      const refused = await conn.exchange(framing(body));
      expect(refused.status, framing.name).toBe(429);
      expect(refused.headers['connection'], framing.name).not.toBe('close');
      sink.release();
      expect((await first).status).toBe(200);
      // The same socket carries the retry, which is accepted: the refused body was consumed exactly.
      const retried = await conn.exchange(framing(body));
      expect(retried.status, framing.name).toBe(200);
      expect(conn.connects).toBe(1);
      conn.close();
      expect(sink.entries).toHaveLength(1 + 200);
    }

    // A chunked body larger than is worth reading (1 MiB): 429 with Connection: close, socket ends.
    const { port, sink, first } = await held();
    const c2 = new RawConnection(port);
    const r2 = await c2.exchange(chunked(Buffer.alloc(2 << 20, 0x41)));
    expect(r2.status).toBe(429);
    expect(r2.headers['connection']).toBe('close');
    await c2.ended;
    sink.release();
    expect((await first).status).toBe(200);
    expect(sink.entries).toHaveLength(1);
  });

  // Found by the differential fuzz test (test/fuzz/http.test.ts): node emits 'close' only on the
  // response being written, so a pipelined request whose answer was still queued when the connection
  // went kept its admission slot and its in-flight count for good.
  it('a pipelined request whose connection is cut before its answer gives back its admission slot (both paths)', async () => {
    for (const fast of ['0', '1']) {
      const saved = process.env.SEALTRAIL_HTTP_FAST;
      process.env.SEALTRAIL_HTTP_FAST = fast;
      const sink = new GatedSink();
      const gate = new ConcurrencyGate(4);
      const h = new HttpReceiver({ endpoint: '127.0.0.1:0', max_request_body_size: 1 << 20, ...HTTP_DEFAULTS }, { ...deps(sink), gate });
      let port: number;
      try {
        port = (await h.start()).port;
      } finally {
        if (saved === undefined) delete process.env.SEALTRAIL_HTTP_FAST;
        else process.env.SEALTRAIL_HTTP_FAST = saved;
      }
      // JSON first, so node:http has the connection on both paths; then a protobuf request queued
      // behind it; then bytes node cannot parse, which make it answer 400 and close the connection.
      const json = Buffer.from(sampleRequestJson(1));
      const pb = Buffer.from(sampleRequest(1));
      const bytes = Buffer.concat([
        Buffer.from(`POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n`),
        json,
        Buffer.from(`POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${pb.length}\r\n\r\n`),
        pb,
        Buffer.from('NOT HTTP\r\n\r\n'),
      ]);
      const closed = new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
        s.on('data', () => undefined);
        s.on('error', () => undefined);
        s.on('close', () => resolve());
      });
      await waitFor(() => sink.pending === 2);
      await closed;
      sink.release();
      await waitFor(() => gate.inUse === 0);
      expect(gate.inUse, `SEALTRAIL_HTTP_FAST=${fast}`).toBe(0);
      // Nothing left in flight either: shutdown does not wait for the grace period.
      const t0 = Date.now();
      await h.shutdown(5_000);
      expect(Date.now() - t0, `SEALTRAIL_HTTP_FAST=${fast}`).toBeLessThan(2_000);
    }
  });

  it('a request pipelined behind one answered with Connection: close is not stored: its answer could never be sent (both paths)', async () => {
    for (const fast of ['0', '1']) {
      const saved = process.env.SEALTRAIL_HTTP_FAST;
      process.env.SEALTRAIL_HTTP_FAST = fast;
      const sink = new MemorySink();
      let port: number;
      let h: HttpReceiver;
      try {
        h = new HttpReceiver({ endpoint: '127.0.0.1:0', max_request_body_size: 1 << 20, ...HTTP_DEFAULTS }, deps(sink));
        port = (await h.start()).port;
      } finally {
        if (saved === undefined) delete process.env.SEALTRAIL_HTTP_FAST;
        else process.env.SEALTRAIL_HTTP_FAST = saved;
      }
      cleanups.push(() => h.shutdown(1000));
      // An unsupported Content-Type is refused on its headers (415) with its body unread, so the answer
      // closes the connection; a valid request follows in the same write.
      const pb = Buffer.from(sampleRequest(2));
      const refused = Buffer.from('POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello');
      const valid = Buffer.concat([Buffer.from(`POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${pb.length}\r\n\r\n`), pb]);
      const exchange = (bytes: Buffer): Promise<string> =>
        new Promise<string>((resolve) => {
          let buf = '';
          const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
          s.on('data', (d) => (buf += d.toString('latin1')));
          s.on('error', () => undefined);
          s.on('close', () => resolve(buf));
        });
      const got = await exchange(Buffer.concat([refused, valid]));
      expect(got.match(/HTTP\/1\.1 \d+/g), `SEALTRAIL_HTTP_FAST=${fast}`).toEqual(['HTTP/1.1 415']);
      expect(got).toMatch(/\r\nConnection: close\r\n/i);
      await new Promise((r) => setTimeout(r, 100));
      expect(sink.entries, `SEALTRAIL_HTTP_FAST=${fast}`).toHaveLength(0);
      // A request before the refused one is stored and answered first, whatever order the work finishes in.
      const got2 = await exchange(Buffer.concat([valid, refused, valid]));
      expect(got2.match(/HTTP\/1\.1 \d+/g), `SEALTRAIL_HTTP_FAST=${fast}`).toEqual(['HTTP/1.1 200', 'HTTP/1.1 415']);
      expect(sink.entries, `SEALTRAIL_HTTP_FAST=${fast}`).toHaveLength(2);
    }
  });

  it('max_records_per_request → 413 / RESOURCE_EXHAUSTED without RetryInfo; at the limit accepted', async () => {
    const sink = new MemorySink();
    const metrics = newMetrics();
    const d: ReceiverDeps = { ...deps(sink, metrics), limits: { maxNestingDepth: 32, maxRecordsPerRequest: 3 } };
    const h = new HttpReceiver({ endpoint: '127.0.0.1:0', max_request_body_size: 1 << 20, ...HTTP_DEFAULTS }, d);
    const g = new GrpcReceiver({ endpoint: '127.0.0.1:0', max_recv_msg_size_mib: 1, ...GRPC_DEFAULTS }, d);
    const url = `http://127.0.0.1:${(await h.start()).port}`;
    const addr = `127.0.0.1:${(await g.start()).port}`;
    cleanups.push(() => Promise.all([h.shutdown(), g.shutdown()]).then(() => undefined));
    const r = await httpRequest(url, { headers: PB, body: sampleRequest(4) });
    expect(r.status).toBe(413);
    expect(r.headers['retry-after']).toBeUndefined();
    expect(decodeStatus(r.body).message).toMatch(/4 log records, more than receivers\.otlp\.max_records_per_request \(3\)/);
    const gr = await grpcCall(addr, OTLP_GRPC_PATHS.logs, sampleRequest(4));
    expect(gr.code).toBe(8);
    expect(gr.details).toBeUndefined();
    expect(sink.entries).toHaveLength(0);
    expect((await httpRequest(url, { headers: PB, body: sampleRequest(3) })).status).toBe(200);
    expect((await grpcCall(addr, OTLP_GRPC_PATHS.logs, sampleRequest(3))).code).toBe(0);
    expect(sink.entries).toHaveLength(6);
    expect(await refusedCount(metrics, 'too_many_records', 'http')).toBe(1);
  });

  it('a header block over max_request_header_size → 431, counted; nothing stored', async () => {
    const sink = new MemorySink();
    const metrics = newMetrics();
    const { rx, port } = await startHttp(sink, { max_request_header_size: 2048 }, metrics);
    cleanups.push(() => rx.shutdown());
    const { reply } = await rawClient(port, (s) =>
      s.write(`POST /v1/logs HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(4096)}\r\nContent-Length: 0\r\n\r\n`),
    );
    expect(reply).toMatch(/^HTTP\/1\.1 431/);
    expect(await refusedCount(metrics, 'header_too_large')).toBe(1);
    expect(sink.entries).toHaveLength(0);
  });
});

/** Stores like a ledger whose fsync takes a few milliseconds (group commit not modelled). */
class SlowDiskSink extends MemorySink {
  override async append(entries: Entries): Promise<AppendOutcome> {
    await new Promise((r) => setTimeout(r, 3));
    return super.append(entries);
  }
}

describe('flood', () => {
  it('200 concurrent clients for 3 s: every acknowledged record stored, refusals retryable, a polite client served, memory bounded', async () => {
    const sink = new SlowDiskSink();
    const metrics = newMetrics();
    const gate = new ConcurrencyGate(8);
    const rx = new HttpReceiver({ endpoint: '127.0.0.1:0', max_request_body_size: 1 << 20, ...HTTP_DEFAULTS }, { ...deps(sink, metrics), gate });
    const { port } = await rx.start();
    cleanups.push(() => rx.shutdown(2_000));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 200 });
    cleanups.push(() => agent.destroy());

    global.gc?.();
    const mem0 = process.memoryUsage();
    const acked: string[] = [];
    let refused = 0;
    let other = 0;
    let peakInUse = 0;
    const deadline = Date.now() + 3_000;
    let seq = 0;
    const post = (id: string): Promise<{ status: number; retryAfter?: string }> =>
      new Promise((resolve, reject) => {
        const body = Buffer.from(
          encodeRequest({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { stringValue: id } }, { body: { stringValue: `${id}-b` } }] }] }] }),
        );
        const req = http.request(
          { host: '127.0.0.1', port, path: '/v1/logs', method: 'POST', agent, headers: { ...PB, 'content-length': body.length } },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode!, ...(res.headers['retry-after'] ? { retryAfter: String(res.headers['retry-after']) } : {}) }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const flooder = async (): Promise<void> => {
      while (Date.now() < deadline) {
        const id = `flood-${seq++}`;
        const r = await post(id).catch(() => ({ status: -1 }));
        peakInUse = Math.max(peakInUse, gate.inUse);
        if (r.status === 200) acked.push(id);
        else if (r.status === 429 && 'retryAfter' in r && r.retryAfter === '1') refused++;
        else other++;
      }
    };
    // A polite client: retries a 429 after a short pause, like the SDK exporters do (they honour Retry-After).
    const polite = async (): Promise<number> => {
      const t0 = Date.now();
      for (;;) {
        const r = await post('polite-client');
        if (r.status === 200) return Date.now() - t0;
        await new Promise((res) => setTimeout(res, 100));
      }
    };
    const politeRun = (async () => {
      await new Promise((r) => setTimeout(r, 1_000));
      return polite();
    })();
    await Promise.all([...Array.from({ length: 200 }, flooder), politeRun]);
    const politeMs = await politeRun;
    const mem1 = process.memoryUsage();

    const stored = new Set(
      sink.entries.map((e) => {
        const m = /flood-\d+(-b)?|polite-client/.exec(Buffer.from(e).toString('latin1'));
        return m ? m[0] : '';
      }),
    );
    const lost = acked.filter((id) => !stored.has(id) || !stored.has(`${id}-b`));
    const growthMiB = (mem1.heapUsed + mem1.external - mem0.heapUsed - mem0.external) / (1 << 20);
    console.log(
      `flood: ${acked.length} acknowledged, ${refused} refused 429, ${other} other, peak in flight ${peakInUse}/8, ` +
        `polite client served after ${politeMs} ms, heap+external growth ${growthMiB.toFixed(1)} MiB`,
    );
    expect(lost).toEqual([]);
    expect(other).toBe(0);
    expect(acked.length).toBeGreaterThan(100);
    expect(peakInUse).toBeLessThanOrEqual(8);
    expect(refused).toBeGreaterThan(0); // the gate really was exercised
    expect(sink.entries.length).toBe(2 * acked.length + 2); // + the polite client's two records; nothing refused was stored
    expect(stored.has('polite-client')).toBe(true);
    expect(growthMiB).toBeLessThan(64);
    expect(await refusedCount(metrics, 'overloaded')).toBe(refused);
  }, 20_000);
});

async function waitFor(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** One HTTP/1.1 connection on a raw socket: sends a request, reads one response (Content-Length bodies). */
class RawConnection {
  readonly socket: net.Socket;
  connects = 0;
  readonly ended: Promise<void>;
  #buf = Buffer.alloc(0);
  #waiter: (() => void) | undefined;
  #closed = false;
  constructor(port: number) {
    this.socket = net.connect({ host: '127.0.0.1', port });
    this.socket.on('connect', () => this.connects++);
    this.socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#waiter?.();
    });
    this.ended = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.#closed = true;
        this.#waiter?.();
        resolve();
      }),
    );
  }
  async exchange(request: Buffer): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
    this.socket.write(request);
    for (;;) {
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const lines = this.#buf.subarray(0, end).toString('latin1').split('\r\n');
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        const len = Number(headers['content-length'] ?? 0);
        if (this.#buf.length >= end + 4 + len) {
          const body = this.#buf.subarray(end + 4, end + 4 + len);
          this.#buf = this.#buf.subarray(end + 4 + len);
          return { status: Number(lines[0]!.split(' ')[1]), headers, body };
        }
      }
      if (this.#closed) throw new Error('connection closed before a full response');
      await new Promise<void>((resolve) => (this.#waiter = resolve));
    }
  }
  close(): void {
    this.socket.destroy();
  }
}
