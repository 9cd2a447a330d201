/**
 * The OTLP/HTTP fast path (src/receiver/http-fast.ts): plain requests of exactly the exporter's shape
 * are answered without node:http; everything else — and every request that does not arrive complete
 * quickly — goes to node:http on the same connection, in order (G1: answered only after the sink
 * took the entries; G7: bad input changes nothing). Which path answered is visible on the wire:
 * node:http always sends a Connection header on HTTP/1.1, the fast path never does.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FAST_GRACE_MS, parseFastHead } from '../../src/receiver/http-fast.js';
import { HttpReceiver } from '../../src/receiver/http.js';
import { ConcurrencyGate } from '../../src/receiver/limits.js';
import { GatedSink, HTTP_DEFAULTS, MemorySink, RefusingSink, decodeStatus, deps, newMetrics, sampleRequest, startHttp } from './helpers.js';
import type { Metrics } from '../../src/telemetry/metrics.js';
import type { EntrySink } from '../../src/ledger/types.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const MAX_HEAD = 16 * 1024;
const MAX_BODY = 1 << 20;

function head(len: number, extra = '', first = 'POST /v1/logs HTTP/1.1'): string {
  return `${first}\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${len}\r\n${extra}\r\n`;
}

function plain(body: Uint8Array, extra = ''): Buffer {
  return Buffer.concat([Buffer.from(head(body.length, extra), 'latin1'), body]);
}

function verdict(text: string): string {
  return parseFastHead(Buffer.from(text, 'latin1'), MAX_HEAD, MAX_BODY).kind;
}

describe('parseFastHead: only the exporter\'s plain request shape', () => {
  it('takes POST /v1/logs HTTP/1.1 with one Host, one Content-Length and a protobuf Content-Type; says where the body starts', () => {
    const h = head(42, 'User-Agent: OTel-OTLP-Exporter-JavaScript/0.57.0\r\nConnection: keep-alive\r\nAccept: */*\r\n');
    expect(parseFastHead(Buffer.from(h, 'latin1'), MAX_HEAD, MAX_BODY)).toEqual({ kind: 'request', bodyStart: h.length, contentLength: 42 });
    expect(verdict(head(0).replace('application/x-protobuf', 'Application/Protobuf'))).toBe('request');
    expect(verdict(head(7).replace('Content-Length: 7', 'content-length:7'))).toBe('request');
  });

  it('calls every prefix of such a head incomplete', () => {
    const h = head(10);
    for (let i = 1; i < h.length; i++) expect(verdict(h.slice(0, i)), JSON.stringify(h.slice(0, i))).toBe('incomplete');
  });

  it.each([
    ['another method', head(1, '', 'PUT /v1/logs HTTP/1.1')],
    ['another path', head(1, '', 'POST /v1/traces HTTP/1.1')],
    ['a query string', head(1, '', 'POST /v1/logs?x=1 HTTP/1.1')],
    ['HTTP/1.0', head(1, '', 'POST /v1/logs HTTP/1.0')],
    ['Transfer-Encoding', head(1, 'Transfer-Encoding: chunked\r\n')],
    ['two Content-Lengths', head(1, 'Content-Length: 1\r\n')],
    ['a signed Content-Length', head(1).replace('Content-Length: 1', 'Content-Length: +1')],
    ['a Content-Length with a space inside', head(1).replace('Content-Length: 1', 'Content-Length: 1 2')],
    ['a Content-Length over max_request_body_size', head(MAX_BODY + 1)],
    ['no Content-Length', head(1).replace('Content-Length: 1\r\n', '')],
    ['no Host', head(1).replace('Host: x\r\n', '')],
    ['two Hosts', head(1, 'Host: y\r\n')],
    ['a JSON body', head(1).replace('application/x-protobuf', 'application/json')],
    ['a Content-Type parameter', head(1).replace('application/x-protobuf', 'application/x-protobuf; charset=utf-8')],
    ['Connection: close', head(1, 'Connection: close\r\n')],
    ['Expect: 100-continue', head(1, 'Expect: 100-continue\r\n')],
    ['Content-Encoding', head(1, 'Content-Encoding: gzip\r\n')],
    ['Authorization', head(1, 'Authorization: Bearer t\r\n')],
    ['Upgrade', head(1, 'Upgrade: h2c\r\n')],
    ['an obs-fold continuation line', head(1, 'X-A: a\r\n b\r\n')],
    ['a bare LF ending a line', head(1, 'X-A: a\n')],
    ['a bare CR inside a value', head(1, 'X-A: a\rb\r\n')],
    ['whitespace before the colon', head(1, 'X-A : a\r\n')],
    ['a control character in a value', head(1, 'X-A: a\x01b\r\n')],
    ['an empty header name', head(1, ': a\r\n')],
    ['a head larger than max_request_header_size', head(1, `X-A: ${'a'.repeat(MAX_HEAD)}\r\n`)],
  ])('leaves %s to node:http', (_what, text) => {
    expect(verdict(text)).toBe('other');
  });

  it('leaves an unfinished head larger than max_request_header_size to node:http (which answers 431)', () => {
    expect(verdict(`POST /v1/logs HTTP/1.1\r\nX-A: ${'a'.repeat(MAX_HEAD)}`)).toBe('other');
  });
});

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Writes `parts` (a pause between each) on one connection and reads `n` responses in order. */
function exchange(port: number, parts: Array<Buffer | string>, n: number, pauseMs = 0): Promise<Reply[]> {
  return new Promise((resolve, reject) => {
    const replies: Reply[] = [];
    let buf = Buffer.alloc(0);
    const s = net.connect(port, '127.0.0.1', async () => {
      for (const [i, p] of parts.entries()) {
        if (i > 0 && pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
        s.write(p);
      }
    });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buf.toString('latin1', 0, end).split('\r\n');
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
        const len = Number(headers['content-length'] ?? 0);
        if (buf.length < end + 4 + len) return;
        replies.push({ status: Number(lines[0]!.split(' ')[1]), headers, body: buf.subarray(end + 4, end + 4 + len) });
        buf = buf.subarray(end + 4 + len);
        if (replies.length === n) {
          s.destroy();
          resolve(replies);
          return;
        }
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(replies));
    setTimeout(() => reject(new Error(`timed out with ${replies.length} of ${n} replies`)), 10_000).unref();
  });
}

const byFastPath = (r: Reply): boolean => r.headers['connection'] === undefined;

/** The receiver's counters as label → value (scraped as Prometheus text, so the per-request tallies are in). */
async function counters(metrics: Metrics): Promise<Record<string, string>> {
  const text = await metrics.registry.metrics();
  return Object.fromEntries(
    text
      .split('\n')
      .filter((l) => l.startsWith('sealtrail_receiver_') && !l.includes('_bucket') && !l.includes('_sum') && !l.includes('_count'))
      .map((l) => [l.slice(0, l.lastIndexOf(' ')), l.slice(l.lastIndexOf(' ') + 1)]),
  );
}

async function receiver(sink: EntrySink, fast: boolean, over: Record<string, unknown> = {}, metrics?: Metrics): Promise<{ rx: HttpReceiver; port: number }> {
  const saved = process.env.SEALTRAIL_HTTP_FAST;
  if (!fast) process.env.SEALTRAIL_HTTP_FAST = '0';
  try {
    const { rx, port } = await startHttp(sink, over, metrics);
    cleanups.push(() => rx.shutdown(1_000));
    return { rx, port };
  } finally {
    if (saved === undefined) delete process.env.SEALTRAIL_HTTP_FAST;
    else process.env.SEALTRAIL_HTTP_FAST = saved;
  }
}

describe('the fast path on the wire', () => {
  it('answers plain requests like node:http does — status, Content-Type, body — and stores them once', async () => {
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    const cases: Array<[string, Uint8Array, () => EntrySink]> = [
      ['two records', sampleRequest(2), () => new MemorySink()],
      ['no records', new Uint8Array(0), () => new MemorySink()],
      ['malformed protobuf', garbage, () => new MemorySink()],
      ['a ledger that refuses (disk_full)', sampleRequest(1), () => new RefusingSink('disk_full', 30_000)],
    ];
    for (const [what, body, makeSink] of cases) {
      const fastSink = makeSink();
      const nodeSink = makeSink();
      const fastMetrics = newMetrics();
      const nodeMetrics = newMetrics();
      const f = await receiver(fastSink, true, {}, fastMetrics);
      const n = await receiver(nodeSink, false, {}, nodeMetrics);
      const [rf] = await exchange(f.port, [plain(body)], 1);
      const [rn] = await exchange(n.port, [plain(body)], 1);
      expect(byFastPath(rf!), what).toBe(true);
      expect(byFastPath(rn!), what).toBe(false);
      expect(rf!.status, what).toBe(rn!.status);
      expect(rf!.headers['content-type'], what).toBe(rn!.headers['content-type']);
      expect(rf!.headers['retry-after'], what).toBe(rn!.headers['retry-after']);
      expect(rf!.headers['date'], what).toMatch(/GMT$/);
      expect(rf!.body.equals(rn!.body), what).toBe(true);
      if (fastSink instanceof MemorySink && nodeSink instanceof MemorySink) expect(fastSink.entries, what).toEqual(nodeSink.entries);
      // Counted alike: requests by status, refusals by reason, bytes and records taken.
      expect(await counters(fastMetrics), what).toEqual(await counters(nodeMetrics));
    }
  });

  it('answers only after the sink has taken the entries (G1): nothing on the wire while the append is pending', async () => {
    const sink = new GatedSink();
    const { port } = await receiver(sink, true);
    const s = net.connect(port, '127.0.0.1');
    cleanups.push(() => void s.destroy());
    let got = '';
    s.on('data', (d) => (got += d.toString('latin1')));
    s.write(plain(sampleRequest(2)));
    while (sink.pending === 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toBe('');
    expect(sink.entries).toHaveLength(0);
    sink.release();
    for (let i = 0; i < 400 && !/\r\n\r\n/.test(got); i++) await new Promise((r) => setTimeout(r, 5));
    expect(got).toMatch(/^HTTP\/1\.1 200 /);
    expect(got).not.toMatch(/\r\nConnection:/i);
    expect(sink.entries).toHaveLength(2);
  });

  it('answers pipelined requests in order, and hands the connection to node:http at the first request of another shape', async () => {
    const sink = new MemorySink();
    const { port } = await receiver(sink, true);
    const chunkedBody = sampleRequest(3);
    const chunked = Buffer.concat([
      Buffer.from('POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n', 'latin1'),
      Buffer.from(`${chunkedBody.length.toString(16)}\r\n`, 'latin1'),
      chunkedBody,
      Buffer.from('\r\n0\r\n\r\n', 'latin1'),
    ]);
    const replies = await exchange(port, [Buffer.concat([plain(sampleRequest(1)), plain(sampleRequest(2)), chunked, plain(sampleRequest(1))])], 4);
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(replies.map(byFastPath)).toEqual([true, true, false, false]); // node:http keeps the connection once it has it
    expect(sink.batches.map((b) => b.length)).toEqual([1, 2, 3, 1]);
  });

  it('takes a request whose parts arrive within the grace period; hands over one that stalls longer, which node:http still serves', async () => {
    const sink = new MemorySink();
    const { port } = await receiver(sink, true);
    const whole = plain(sampleRequest(2));
    const [quick] = await exchange(port, [whole.subarray(0, 30), whole.subarray(30, 100), whole.subarray(100)], 1, 10);
    expect(quick!.status).toBe(200);
    expect(byFastPath(quick!)).toBe(true);
    const [slow] = await exchange(port, [whole.subarray(0, 30), whole.subarray(30)], 1, FAST_GRACE_MS * 3);
    expect(slow!.status).toBe(200);
    expect(byFastPath(slow!)).toBe(false);
    expect(sink.entries).toHaveLength(4);
  });

  it('counts the grace period once per request: a client trickling a byte every 20 ms is handed over and cut off by read_header_timeout', async () => {
    const sink = new MemorySink();
    const { port } = await receiver(sink, true, { read_header_timeout: 1_000, read_timeout: 2_000 });
    const whole = plain(sampleRequest(1));
    const t0 = Date.now();
    const reply = await new Promise<string>((resolve) => {
      let got = '';
      const s = net.connect(port, '127.0.0.1', () => {
        let i = 0;
        const t = setInterval(() => {
          if (s.destroyed || i >= whole.length) return clearInterval(t);
          s.write(whole.subarray(i, ++i));
        }, 20);
      });
      s.on('data', (d) => (got += d.toString('latin1')));
      s.on('error', () => undefined);
      s.on('close', () => resolve(got));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 408/); // node:http's slow-client answer, not the fast path's 200
    expect(Date.now() - t0).toBeLessThan(4_000);
    expect(sink.entries).toHaveLength(0);
  });

  it('hands over a request whose body is still arriving after the grace period with all its bytes, and node:http stores it once', async () => {
    const sink = new MemorySink();
    const { port } = await receiver(sink, true);
    const body = sampleRequest(3);
    const whole = plain(body);
    const cut = whole.length - 10; // head and most of the body now, the last 10 bytes after the grace period
    const [r] = await exchange(port, [whole.subarray(0, cut), whole.subarray(cut)], 1, FAST_GRACE_MS * 3);
    expect(r!.status).toBe(200);
    expect(byFastPath(r!)).toBe(false);
    expect(sink.entries).toHaveLength(3);
  });

  it.each([
    ['Content-Length and Transfer-Encoding together', (b: Uint8Array) => plain(b, 'Transfer-Encoding: chunked\r\n')],
    ['two different Content-Lengths', (b: Uint8Array) => plain(b, `Content-Length: ${b.length + 5}\r\n`)],
    ['an obs-fold line', (b: Uint8Array) => plain(b, 'X-A: a\r\n b\r\n')],
  ])('request-smuggling shapes go to node:http and store nothing: %s', async (_what, make) => {
    const sink = new MemorySink();
    const { port } = await receiver(sink, true);
    const replies = await exchange(port, [make(sampleRequest(1))], 1);
    expect(replies).toHaveLength(1);
    expect(byFastPath(replies[0]!)).toBe(false);
    expect(replies[0]!.status).toBe(400);
    expect(sink.entries).toHaveLength(0);
  });

  it('admits before reading a body: with max_concurrent_requests taken it reads and drops the body, answers 429 and keeps the connection', async () => {
    const sink = new GatedSink();
    const gate = new ConcurrencyGate(1);
    const rx = new HttpReceiver({ endpoint: '127.0.0.1:0', max_request_body_size: 4 * MAX_BODY, ...HTTP_DEFAULTS }, { ...deps(sink), gate });
    const { port } = await rx.start();
    cleanups.push(() => rx.shutdown(1_000));
    const first = exchange(port, [plain(sampleRequest(1))], 1);
    while (sink.pending === 0) await new Promise((r) => setTimeout(r, 5));
    // One connection: a refused request, then (once the slot is free) an accepted one.
    const s = net.connect(port, '127.0.0.1');
    cleanups.push(() => void s.destroy());
    let got = '';
    s.on('data', (d) => (got += d.toString('latin1')));
    const until = async (re: RegExp): Promise<void> => {
      for (let i = 0; i < 400 && !re.test(got); i++) await new Promise((r) => setTimeout(r, 5));
    };
    s.write(plain(sampleRequest(1)));
    const complete = (): boolean => {
      const end = got.indexOf('\r\n\r\n');
      return end >= 0 && got.length >= end + 4 + Number(/\r\nContent-Length: (\d+)/i.exec(got)?.[1] ?? 0);
    };
    for (let i = 0; i < 400 && !complete(); i++) await new Promise((r) => setTimeout(r, 5));
    expect(got).toMatch(/^HTTP\/1\.1 429 /);
    expect(decodeStatus(Buffer.from(got.slice(got.indexOf('\r\n\r\n') + 4), 'latin1')).code).toBe(8); // RESOURCE_EXHAUSTED
    expect(got).toMatch(/\r\nRetry-After: \d+\r\n/);
    expect(got).not.toMatch(/\r\nConnection:/i); // answered on the fast path, connection kept
    sink.release();
    expect((await first)[0]!.status).toBe(200);
    got = '';
    s.write(plain(sampleRequest(2)));
    await until(/^HTTP\/1\.1 200 [\s\S]*\r\n\r\n/);
    expect(got).toMatch(/^HTTP\/1\.1 200 /);
    expect(gate.inUse).toBe(0);
    expect(sink.entries).toHaveLength(3);
    // A refused body larger than what is worth reading (1 MiB) goes to node:http, which answers and closes.
    const hold = new GatedSink();
    const rx2 = new HttpReceiver({ endpoint: '127.0.0.1:0', max_request_body_size: 4 * MAX_BODY, ...HTTP_DEFAULTS }, { ...deps(hold), gate: new ConcurrencyGate(1) });
    const { port: port2 } = await rx2.start();
    cleanups.push(() => rx2.shutdown(1_000));
    const held = exchange(port2, [plain(sampleRequest(1))], 1);
    while (hold.pending === 0) await new Promise((r) => setTimeout(r, 5));
    const [big] = await exchange(port2, [plain(new Uint8Array(2 * MAX_BODY))], 1);
    expect(big!.status).toBe(429);
    expect(big!.headers['connection']).toBe('close');
    hold.release();
    expect((await held)[0]!.status).toBe(200);
  });

  it('closes a keep-alive connection that stays idle for idle_timeout after its last answer', async () => {
    const { port } = await receiver(new MemorySink(), true, { idle_timeout: 300 });
    const t0 = Date.now();
    const closedAfter = await new Promise<number>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(plain(sampleRequest(1))));
      s.on('data', () => undefined);
      s.on('close', () => resolve(Date.now() - t0));
      s.on('error', reject);
    });
    expect(closedAfter).toBeGreaterThanOrEqual(250);
    expect(closedAfter).toBeLessThan(3_000);
  });

  it('shutdown closes idle fast-path connections and waits for a request being answered', async () => {
    const sink = new GatedSink();
    const rx = new HttpReceiver({ endpoint: '127.0.0.1:0', max_request_body_size: MAX_BODY, ...HTTP_DEFAULTS }, deps(sink));
    const { port } = await rx.start();
    await exchange(port, [plain(new Uint8Array(0))], 1); // a connection that stays open and idle…
    const idle = net.connect(port, '127.0.0.1');
    await new Promise((r) => idle.once('connect', r));
    const idleClosed = new Promise((r) => idle.once('close', r));
    const answering = exchange(port, [plain(sampleRequest(1))], 1);
    while (sink.pending === 0) await new Promise((r) => setTimeout(r, 5));
    const down = rx.shutdown(10_000);
    await idleClosed;
    sink.release();
    expect((await answering)[0]!.status).toBe(200);
    await down;
    expect(sink.entries).toHaveLength(1);
  });

  it('SEALTRAIL_HTTP_FAST=0 leaves every connection to node:http', async () => {
    const { port } = await receiver(new MemorySink(), false);
    const [r] = await exchange(port, [plain(sampleRequest(1))], 1);
    expect(r!.status).toBe(200);
    expect(byFastPath(r!)).toBe(false);
  });
});
