/**
 * The OTLP/HTTP fast path (src/receiver/http-fast.ts): plain requests of exactly the exporter's shape
 * are answered without node:http; everything else — and every request that does not arrive complete
 * quickly — goes to node:http on the same connection, in order (G1: answered only after the sink
 * took the entries; G7: bad input changes nothing). Which path answered is visible on the wire:
 * node:http always sends a Connection header on HTTP/1.1, the fast path never does.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { OTLPLogExporter as ProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { afterEach, describe, expect, it } from 'vitest';
import { ChunkedBody, FAST_GRACE_MS, FastPath, type FastPathHost, MAX_FAST_CHUNKS, MAX_OWN_READ_CONNECTIONS, parseFastHead } from '../../src/receiver/http-fast.js';
import { ownReadAvailable } from '../../src/receiver/own-read.js';
import { HttpReceiver } from '../../src/receiver/http.js';
import { ConcurrencyGate } from '../../src/receiver/limits.js';
import { GatedSink, HTTP_DEFAULTS, MemorySink, type RawReply, RefusingSink, decodeStatus, deps, newMetrics, rawExchange, sampleRequest, startHttp } from './helpers.js';
import type { Metrics } from '../../src/telemetry/metrics.js';
import type { EntrySink } from '../../src/ledger/types.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Runs `fn` with process.env[name] set to `value` (removed when undefined); puts the old value back. */
async function withEnv<T>(name: string, value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const saved = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
  }
}

const MAX_HEAD = 16 * 1024;
const MAX_BODY = 1 << 20;

function head(len: number, extra = '', first = 'POST /v1/logs HTTP/1.1'): string {
  return `${first}\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${len}\r\n${extra}\r\n`;
}

function plain(body: Uint8Array, extra = ''): Buffer {
  return Buffer.concat([Buffer.from(head(body.length, extra), 'latin1'), body]);
}

function chunkedHead(extra = ''): string {
  return `POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n${extra}\r\n`;
}

/** The body in chunks of at most `size` bytes (one chunk by default, as the OTel JS SDK sends it), then the last chunk. */
function chunkedBody(body: Uint8Array, size = Infinity): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) {
    const c = body.subarray(i, Math.min(body.length, i + size));
    parts.push(Buffer.from(`${c.length.toString(16)}\r\n`, 'latin1'), Buffer.from(c), Buffer.from('\r\n', 'latin1'));
  }
  parts.push(Buffer.from('0\r\n\r\n', 'latin1'));
  return Buffer.concat(parts);
}

function chunked(body: Uint8Array, extra = '', size = Infinity): Buffer {
  return Buffer.concat([Buffer.from(chunkedHead(extra), 'latin1'), chunkedBody(body, size)]);
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

  it('takes a chunked body (Transfer-Encoding: chunked and no Content-Length) and hands on an Authorization value', () => {
    const c = chunkedHead('Transfer-Encoding-X: y\r\n');
    expect(parseFastHead(Buffer.from(c, 'latin1'), MAX_HEAD, MAX_BODY)).toEqual({ kind: 'request', bodyStart: c.length, contentLength: -1 });
    expect(verdict(chunkedHead().replace('chunked', 'Chunked'))).toBe('request');
    const a = head(3, 'Authorization:  Bearer abc \r\n');
    expect(parseFastHead(Buffer.from(a, 'latin1'), MAX_HEAD, MAX_BODY)).toEqual({ kind: 'request', bodyStart: a.length, contentLength: 3, authorization: 'Bearer abc' });
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
    ['Transfer-Encoding with a Content-Length', head(1, 'Transfer-Encoding: chunked\r\n')],
    ['Transfer-Encoding chunked twice', chunkedHead('Transfer-Encoding: chunked\r\n')],
    ['a Transfer-Encoding other than chunked', chunkedHead().replace('chunked', 'gzip, chunked')],
    ['Transfer-Encoding: identity', chunkedHead().replace('chunked', 'identity')],
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
    ['two Authorizations', head(1, 'Authorization: Bearer t\r\nAuthorization: Bearer u\r\n')],
    ['Upgrade', head(1, 'Upgrade: h2c\r\n')],
    ['an obs-fold continuation line', head(1, 'X-A: a\r\n b\r\n')],
    ['a bare LF ending a line', head(1, 'X-A: a\n')],
    ['a bare CR inside a value', head(1, 'X-A: a\rb\r\n')],
    ['whitespace before the colon', head(1, 'X-A : a\r\n')],
    ['a control character in a value', head(1, 'X-A: a\x01b\r\n')],
    ['a tab after the Content-Length (llhttp refuses it)', head(1).replace('Content-Length: 1', 'Content-Length: 1\t')],
    ['a tab after chunked (llhttp refuses it)', chunkedHead().replace('chunked', 'chunked\t')],
    ['a tab in any value', head(1, 'X-A: a\tb\r\n')],
    ['an empty header name', head(1, ': a\r\n')],
    ['a head larger than max_request_header_size', head(1, `X-A: ${'a'.repeat(MAX_HEAD)}\r\n`)],
  ])('leaves %s to node:http', (_what, text) => {
    expect(verdict(text)).toBe('other');
  });

  it('leaves an unfinished head larger than max_request_header_size to node:http (which answers 431)', () => {
    expect(verdict(`POST /v1/logs HTTP/1.1\r\nX-A: ${'a'.repeat(MAX_HEAD)}`)).toBe('other');
  });
});

describe('ChunkedBody: only the strict chunked form', () => {
  const text = (t: string): Buffer => Buffer.from(t, 'latin1');
  const read = (b: Buffer, limit = MAX_BODY): { verdict: string; end?: number; body?: string } => {
    const c = new ChunkedBody(limit);
    const v = c.feed(b, 0);
    return v.kind === 'done' ? { verdict: v.kind, end: v.end, body: c.body().body.toString('latin1') } : { verdict: v.kind };
  };

  it('reads one chunk, several, upper-case and zero-padded sizes, and an empty body; says where the body ends', () => {
    expect(read(text('5\r\nhello\r\n0\r\n\r\n'))).toEqual({ verdict: 'done', end: 15, body: 'hello' });
    expect(read(text('3\r\nabc\r\n0A\r\n0123456789\r\n00001\r\nz\r\n0\r\n\r\nPOST /v1/logs'))).toEqual({ verdict: 'done', end: 39, body: 'abc0123456789z' });
    expect(read(text('0\r\n\r\n'))).toEqual({ verdict: 'done', end: 5, body: '' });
  });

  it('gives the same body whatever the reads it arrives in, and calls every prefix unfinished', () => {
    const whole = chunkedBody(sampleRequest(3), 100);
    const expected = Buffer.from(sampleRequest(3)).toString('hex');
    for (const step of [1, 2, 7, 64, 100_000]) {
      const c = new ChunkedBody(MAX_BODY);
      let v;
      for (let i = 0; i < whole.length; i += step) {
        v = c.feed(whole.subarray(i, Math.min(whole.length, i + step)), 0);
        if (i + step < whole.length) expect(v.kind, `step ${step} at ${i}`).toBe('more');
      }
      expect(v, `step ${step}`).toEqual({ kind: 'done', end: ((whole.length - 1) % step) + 1 });
      const { body } = c.body();
      expect(body.toString('hex'), `step ${step}`).toBe(expected);
    }
    // One chunk read in one piece is used as it is, not copied.
    const one = chunkedBody(sampleRequest(3));
    const c = new ChunkedBody(MAX_BODY);
    expect(c.feed(one, 0).kind).toBe('done');
    const { body, pooled } = c.body();
    expect(pooled).toBeUndefined();
    expect(body.buffer).toBe(one.buffer);
  });

  it.each([
    ['a chunk extension', '5;a=b\r\nhello\r\n0\r\n\r\n'],
    ['an extension on the last chunk', '5\r\nhello\r\n0;a\r\n\r\n'],
    ['white space after the size', '5 \r\nhello\r\n0\r\n\r\n'],
    ['white space before the size', ' 5\r\nhello\r\n0\r\n\r\n'],
    ['a sign', '+5\r\nhello\r\n0\r\n\r\n'],
    ['a 0x prefix', '0x5\r\nhello\r\n0\r\n\r\n'],
    ['no size', '\r\nhello\r\n0\r\n\r\n'],
    ['more than 8 size digits', '000000005\r\nhello\r\n0\r\n\r\n'],
    ['a bare LF after the size', '5\nhello\r\n0\r\n\r\n'],
    ['data longer than its size', '4\r\nhello\r\n0\r\n\r\n'],
    ['no CRLF after the data', '5\r\nhello0\r\n\r\n'],
    ['a bare LF after the data', '5\r\nhello\n0\r\n\r\n'],
    ['a trailer field', '5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n'],
    ['a bare LF ending the body', '5\r\nhello\r\n0\r\n\n'],
  ])('leaves %s to node:http', (_what, t) => {
    expect(read(text(t)).verdict).toBe('other');
  });

  it('leaves a body over its limit, or of more than MAX_FAST_CHUNKS chunks, to node:http', () => {
    expect(read(text('5\r\nhello\r\n0\r\n\r\n'), 4).verdict).toBe('other');
    expect(read(text('5\r\nhello\r\n0\r\n\r\n'), 5).verdict).toBe('done');
    expect(read(chunkedBody(new Uint8Array(MAX_FAST_CHUNKS), 1)).verdict).toBe('done');
    expect(read(chunkedBody(new Uint8Array(MAX_FAST_CHUNKS + 1), 1)).verdict).toBe('other');
  });

  it('only counts the data of a body read to be dropped', () => {
    const c = new ChunkedBody(MAX_BODY, false);
    expect(c.feed(text('5\r\nhello\r\n0\r\n\r\n'), 0)).toEqual({ kind: 'done', end: 15 });
    expect(c.length).toBe(5);
    expect(c.body().body.length).toBe(0);
  });
});

/** A host that admits everything and records hand-overs; answers are never reached in these tests. */
function host(handedOver: net.Socket[]): FastPathHost {
  return {
    admit: () => () => undefined,
    overloaded: () => new Uint8Array(0),
    drainLimit: MAX_BODY,
    authenticate: () => ({ client: undefined }),
    answer: () => new Promise(() => undefined),
    handOver: (s) => void handedOver.push(s),
    accepting: () => true,
    headerTimeout: () => undefined,
    maxHeadBytes: MAX_HEAD,
    maxBody: MAX_BODY,
    readHeaderTimeoutMs: 10_000,
    idleTimeoutMs: 10_000,
  };
}

describe('FastPath on a socket fed by the test', () => {
  it('hands a chunked request that takes more than 1,024 reads to node:http with every byte, in order', () => {
    const handedOver: net.Socket[] = [];
    const socket = new net.Socket();
    cleanups.push(() => void socket.destroy());
    new FastPath(host(handedOver)).adopt(socket);
    const whole = chunked(sampleRequest(60)); // one chunk of about 2 KB, fed a byte at a time
    const head = whole.indexOf('\r\n\r\n') + 4;
    socket.emit('data', whole.subarray(0, head));
    let i = head;
    for (; i < whole.length && handedOver.length === 0; i++) socket.emit('data', whole.subarray(i, i + 1));
    expect(handedOver).toEqual([socket]);
    expect(i - head).toBe(1024); // the head's read and 1,024 more: one over the bound
    const back = socket.read() as Buffer | null;
    expect(back?.toString('latin1')).toBe(whole.subarray(0, i).toString('latin1'));
  });
});

describe('FastPath: plain connections read into a buffer of their own (src/receiver/own-read.ts)', () => {
  /** A server whose connections go to `fp`; returns its port. */
  async function serve(fp: FastPath): Promise<number> {
    const server = net.createServer((s) => fp.adopt(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    return (server.address() as net.AddressInfo).port;
  }
  const until = async (what: () => boolean): Promise<void> => {
    for (let i = 0; i < 400 && !what(); i++) await new Promise((r) => setTimeout(r, 5));
  };

  it(`is available on this node, used for up to MAX_OWN_READ_CONNECTIONS (${MAX_OWN_READ_CONNECTIONS}) connections at once, and counted until each closes`, async () => {
    // If node's internals stop matching (own-read.ts), the agent falls back to node's per-read
    // buffers and still works — this test is what notices the lost speed.
    expect(ownReadAvailable()).toBe(true);
    const fp = new FastPath(host([]));
    const port = await serve(fp);
    const clients: net.Socket[] = [];
    cleanups.push(() => clients.forEach((c) => c.destroy()));
    for (let i = 0; i < MAX_OWN_READ_CONNECTIONS + 3; i++) clients.push(net.connect(port, '127.0.0.1'));
    await until(() => fp.ownReadConnections() === MAX_OWN_READ_CONNECTIONS);
    await new Promise((r) => setTimeout(r, 50));
    expect(fp.ownReadConnections()).toBe(MAX_OWN_READ_CONNECTIONS); // the 3 over the bound read with node's buffers
    for (const c of clients.splice(0, 10)) c.destroy(); // ten that read into their own buffers
    await until(() => fp.ownReadConnections() === MAX_OWN_READ_CONNECTIONS - 10);
    expect(fp.ownReadConnections()).toBe(MAX_OWN_READ_CONNECTIONS - 10);
    // Freed places are taken again by new connections, up to the bound.
    for (let i = 0; i < 12; i++) clients.push(net.connect(port, '127.0.0.1'));
    await until(() => fp.ownReadConnections() === MAX_OWN_READ_CONNECTIONS);
    await new Promise((r) => setTimeout(r, 50));
    expect(fp.ownReadConnections()).toBe(MAX_OWN_READ_CONNECTIONS);
    for (const c of clients.splice(0)) c.destroy();
    await until(() => fp.ownReadConnections() === 0);
    expect(fp.ownReadConnections()).toBe(0);
  });

  it('SEALTRAIL_HTTP_OWN_READ=0 leaves every connection to node\'s per-read buffers', async () => {
    const fp = new FastPath(host([]));
    const port = await serve(fp);
    await withEnv('SEALTRAIL_HTTP_OWN_READ', '0', async () => {
      const c = net.connect(port, '127.0.0.1');
      cleanups.push(() => void c.destroy());
      await new Promise((r) => c.once('connect', r));
      await new Promise((r) => setTimeout(r, 50));
      expect(fp.ownReadConnections()).toBe(0);
    });
  });
});

type Reply = RawReply;

/** Writes `parts` (a pause between each) on one plain connection and reads `n` responses in order. */
function exchange(port: number, parts: Array<Buffer | string>, n: number, pauseMs = 0): Promise<Reply[]> {
  return rawExchange((ready) => net.connect(port, '127.0.0.1', ready), parts, n, pauseMs);
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
  return withEnv('SEALTRAIL_HTTP_FAST', fast ? process.env.SEALTRAIL_HTTP_FAST : '0', async () => {
    const { rx, port } = await startHttp(sink, over, metrics);
    cleanups.push(() => rx.shutdown(1_000));
    return { rx, port };
  });
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
    for (const [what0, body, makeSink] of cases) for (const framing of [plain, chunked]) {
      const what = `${what0}, ${framing.name}`;
      const fastSink = makeSink();
      const nodeSink = makeSink();
      const fastMetrics = newMetrics();
      const nodeMetrics = newMetrics();
      const f = await receiver(fastSink, true, {}, fastMetrics);
      const n = await receiver(nodeSink, false, {}, nodeMetrics);
      const [rf] = await exchange(f.port, [framing(body)], 1);
      const [rn] = await exchange(n.port, [framing(body)], 1);
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
    const withExtension = Buffer.from(chunked(sampleRequest(2)).toString('latin1').replace(/\r\n\r\n([0-9a-f]+)\r\n/, '\r\n\r\n$1;x=y\r\n'), 'latin1');
    const replies = await exchange(port, [Buffer.concat([plain(sampleRequest(1)), chunked(sampleRequest(3)), withExtension, plain(sampleRequest(1))])], 4);
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(replies.map(byFastPath)).toEqual([true, true, false, false]); // node:http keeps the connection once it has it
    expect(sink.batches.map((b) => b.length)).toEqual([1, 3, 2, 1]);
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

  /** Writes each part after its wait (ms) on one plain connection; the first reply. */
  function timedExchange(port: number, steps: Array<readonly [Buffer, number]>): Promise<Reply[]> {
    return rawExchange((ready) => {
      const s = net.connect(port, '127.0.0.1', async () => {
        ready();
        for (const [b, wait] of steps) {
          await new Promise((r) => setTimeout(r, wait));
          s.write(b);
        }
      });
      return s;
    }, [], 1);
  }

  // A connection's reads go into one buffer of its own, which each read overwrites from its start:
  // whatever the fast path keeps across reads (a head, the first part of a chunked body, what it hands
  // over) must be a copy. Each case sends the request in reads that overwrite what came before, and
  // compares the stored entries with those of the same request sent at once.
  it.each([
    ['its own buffer', undefined],
    ["node's per-read buffers", '0'],
  ])('keeps what it holds across reads intact, read into %s', async (_how, env) => {
    await withEnv('SEALTRAIL_HTTP_OWN_READ', env, async () => {
      const sink = new MemorySink();
      const { port } = await receiver(sink, true);
      const body = sampleRequest(20);
      expect(body.length).toBeGreaterThan(600); // every cut below falls inside the body
      const [ref] = await exchange(port, [plain(body)], 1);
      expect(ref!.status).toBe(200);
      const want = sink.entries.map((e) => Buffer.from(e).toString('hex'));
      expect(want).toHaveLength(20);
      const stored = (): string[] => sink.batches.at(-1)!.map((e) => Buffer.from(e).toString('hex'));

      // A chunked body whose first read holds the head and part of the chunk: fast path, in parts.
      const c = chunked(body);
      const h = c.indexOf('\r\n\r\n') + 4;
      const [r1] = await timedExchange(port, [[c.subarray(0, h + 100), 0], [c.subarray(h + 100, h + 300), 10], [c.subarray(h + 300), 10]]);
      expect(r1!.status).toBe(200);
      expect(byFastPath(r1!)).toBe(true);
      expect(stored()).toEqual(want);

      // A head that arrives in two reads, the second also carrying the whole body: fast path.
      const p = plain(body);
      const ph = p.indexOf('\r\n\r\n') + 4;
      const [r2] = await timedExchange(port, [[p.subarray(0, ph - 20), 0], [p.subarray(ph - 20), 10]]);
      expect(r2!.status).toBe(200);
      expect(byFastPath(r2!)).toBe(true);
      expect(stored()).toEqual(want);

      // A Content-Length body still arriving after the grace period, after two reads (head and part
      // of the body, then more of it): handed over with every byte, stored by node:http.
      const [r3] = await timedExchange(port, [[p.subarray(0, ph + 40), 0], [p.subarray(ph + 40, ph + 80), 10], [p.subarray(ph + 80), FAST_GRACE_MS * 3]]);
      expect(r3!.status).toBe(200);
      expect(byFastPath(r3!)).toBe(false);
      expect(stored()).toEqual(want);

      // A chunked body still arriving after the grace period, after two reads: handed over, stored.
      const [r4] = await timedExchange(port, [[c.subarray(0, h + 100), 0], [c.subarray(h + 100, h + 300), 10], [c.subarray(h + 300), FAST_GRACE_MS * 3]]);
      expect(r4!.status).toBe(200);
      expect(byFastPath(r4!)).toBe(false);
      expect(stored()).toEqual(want);
      expect(sink.batches).toHaveLength(5);
    });
  });

  it('takes a chunked body arriving in parts within the grace period; hands one that stalls over with all its bytes, stored once', async () => {
    const sink = new MemorySink();
    const { port } = await receiver(sink, true);
    const whole = chunked(sampleRequest(4), '', 300);
    const cuts = [20, 150, 151, 400, whole.length - 3, whole.length];
    const parts = cuts.map((c, i) => whole.subarray(i === 0 ? 0 : cuts[i - 1], c));
    const [quick] = await exchange(port, parts, 1, 5);
    expect(quick!.status).toBe(200);
    expect(byFastPath(quick!)).toBe(true);
    const [slow] = await exchange(port, [whole.subarray(0, whole.length - 3), whole.subarray(whole.length - 3)], 1, FAST_GRACE_MS * 3);
    expect(slow!.status).toBe(200);
    expect(byFastPath(slow!)).toBe(false);
    expect(sink.batches.map((b) => b.length)).toEqual([4, 4]);
  });

  const firstSize = /\r\n\r\n([0-9a-f]+)\r\n/;
  const edit = (b: Buffer, re: RegExp, to: string | ((m: string, h: string) => string)): Buffer =>
    Buffer.from(b.toString('latin1').replace(re, to as string), 'latin1');
  it.each([
    ['a chunk extension', (b: Uint8Array) => edit(chunked(b), firstSize, '\r\n\r\n$1;ext\r\n'), 200, 2],
    ['a trailer field', (b: Uint8Array) => edit(chunked(b), /0\r\n\r\n$/, '0\r\nX-T: 1\r\n\r\n'), 200, 2],
    [`more than ${MAX_FAST_CHUNKS} chunks`, (b: Uint8Array) => chunked(b, '', Math.max(1, Math.floor(b.length / (MAX_FAST_CHUNKS + 2)))), 200, 2],
    ['a size that is not hex', (b: Uint8Array) => edit(chunked(b), firstSize, '\r\n\r\nzz\r\n'), 400, 0],
    ['data longer than its size', (b: Uint8Array) => edit(chunked(b), firstSize, (_m, h) => `\r\n\r\n${(parseInt(h, 16) - 1).toString(16)}\r\n`), 400, 0],
    ['Transfer-Encoding and Content-Length', (b: Uint8Array) => chunked(b, `Content-Length: ${b.length}\r\n`), 400, 0],
  ])('a chunked request with %s goes to node:http, which answers it as always; its admission slot is given back', async (_what, make, status, stored) => {
    const sink = new MemorySink();
    const gate = new ConcurrencyGate(4);
    const rx = new HttpReceiver({ endpoint: '127.0.0.1:0', max_request_body_size: MAX_BODY, ...HTTP_DEFAULTS }, { ...deps(sink), gate });
    const { port } = await rx.start();
    cleanups.push(() => rx.shutdown(1_000));
    const [r] = await exchange(port, [make(sampleRequest(2))], 1);
    expect(byFastPath(r!)).toBe(false);
    expect(r!.status).toBe(status);
    expect(sink.entries).toHaveLength(stored);
    for (let i = 0; i < 200 && gate.inUse > 0; i++) await new Promise((res) => setTimeout(res, 5));
    expect(gate.inUse).toBe(0);
  });

  it('a chunked body larger than max_request_body_size goes to node:http (413), nothing stored', async () => {
    const sink = new MemorySink();
    const { port } = await receiver(sink, true, { max_request_body_size: 1000 });
    const [r] = await exchange(port, [chunked(sampleRequest(40))], 1);
    expect(byFastPath(r!)).toBe(false);
    expect(r!.status).toBe(413);
    expect(sink.entries).toHaveLength(0);
  });

  it('with bearer auth: a right token is answered on the fast path; a wrong or missing one by node:http (401), nothing stored', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealtrail-fast-auth-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const token = 'fast-path-client-token-0123456789';
    fs.writeFileSync(path.join(dir, 'tokens'), `fast:${token}\n`, { mode: 0o600 });
    const sink = new MemorySink();
    const { port } = await receiver(sink, true, { auth: { bearer_token_file: path.join(dir, 'tokens'), reload_interval: 0 } });
    const [ok, okChunked] = await exchange(port, [Buffer.concat([plain(sampleRequest(1), `Authorization: Bearer ${token}\r\n`), chunked(sampleRequest(2), `authorization: bearer ${token}\r\n`)])], 2);
    expect([ok!.status, okChunked!.status]).toEqual([200, 200]);
    expect([byFastPath(ok!), byFastPath(okChunked!)]).toEqual([true, true]);
    for (const [what, extra, challenge] of [
      ['wrong', `Authorization: Bearer ${token}x\r\n`, 'Bearer realm="sealtrail", error="invalid_token"'],
      ['missing', '', 'Bearer realm="sealtrail"'],
      ['another scheme', `Authorization: Basic ${token}\r\n`, 'Bearer realm="sealtrail"'],
    ] as const) {
      for (const framing of [plain, chunked]) {
        const [r] = await exchange(port, [framing(sampleRequest(1), extra)], 1);
        expect(r!.status, `${what}, ${framing.name}`).toBe(401);
        expect(r!.headers['www-authenticate'], what).toBe(challenge);
        expect(byFastPath(r!), what).toBe(false);
      }
    }
    expect(sink.entries).toHaveLength(3);
  });

  it("takes the real OTel JS SDK protobuf exporter's requests (chunked) on the fast path", async () => {
    const sink = new MemorySink();
    const { port } = await receiver(sink, true);
    // A relay between exporter and receiver that keeps what the receiver answered.
    let answered = '';
    const open = new Set<net.Socket>();
    const relay = net.createServer((client) => {
      open.add(client);
      client.on('close', () => open.delete(client));
      const upstream = net.connect(port, '127.0.0.1');
      client.pipe(upstream);
      upstream.on('data', (d: Buffer) => {
        answered += d.toString('latin1');
        client.write(d);
      });
      upstream.on('close', () => client.destroy());
      client.on('close', () => upstream.destroy());
      client.on('error', () => undefined);
      upstream.on('error', () => undefined);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    // The exporter keeps its connection alive; close waits for it, so it is cut here (the receiver's
    // idle_timeout, 30 s, would otherwise end it).
    cleanups.push(() => new Promise<void>((r) => {
      relay.close(() => r());
      for (const c of open) c.destroy();
    }));
    const exporter = new ProtoExporter({ url: `http://127.0.0.1:${(relay.address() as net.AddressInfo).port}/v1/logs` });
    const provider = new LoggerProvider({ resource: resourceFromAttributes({ 'service.name': 'fast' }), processors: [new SimpleLogRecordProcessor({ exporter })] });
    const logger = provider.getLogger('fast');
    for (let i = 0; i < 3; i++) {
      logger.emit({ body: `record ${i}` });
      await provider.forceFlush();
    }
    await provider.shutdown();
    expect(sink.entries).toHaveLength(3);
    const heads = answered.split(/(?=HTTP\/1\.1 )/).filter((h) => h.startsWith('HTTP/1.1 '));
    expect(heads).toHaveLength(3);
    for (const h of heads) {
      expect(h).toMatch(/^HTTP\/1\.1 200 /);
      expect(h).not.toMatch(/\r\nConnection:/i);
    }
  });

  it('SEALTRAIL_HTTP_FAST=0 leaves every connection to node:http', async () => {
    const { port } = await receiver(new MemorySink(), false);
    const [r] = await exchange(port, [plain(sampleRequest(1))], 1);
    expect(r!.status).toBe(200);
    expect(byFastPath(r!)).toBe(false);
  });
});
