/**
 * Issue 8 / G7 — fuzzing the OTLP/HTTP receiver end to end: random methods, paths, Content-Type,
 * Content-Encoding, Authorization and bodies (random bytes, mutated valid protobuf/JSON, gzip of
 * either) against a running receiver with a recording sink and bearer-token auth. Properties:
 * every request gets a well-formed HTTP response (a status from the documented set, Content-Type
 * and Content-Length that match the body; 401 with a challenge), the process never crashes, and a
 * request that is not answered 200 stores nothing. Raw-socket garbage gets 400 or a close, and
 * the receiver keeps serving afterwards.
 *
 * Runs: FUZZ_RUNS (default 200 requests per property; `npm run fuzz` raises it).
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpReceiver } from '../../src/receiver/http.js';
import { MemorySink, httpRequest, sampleRequest, sampleRequestJson, startHttp } from '../receiver/helpers.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
const SEED = process.env.FUZZ_SEED !== undefined ? { seed: Number(process.env.FUZZ_SEED) } : {};
const TOKEN = 'fuzz-token-0123456789abcdef0123';
/** Per-test time budget: about 15 ms a request, never below 60 s. */
const BUDGET_MS = Math.max(60_000, RUNS * 15);
const STATUSES = new Set([200, 400, 401, 404, 405, 413, 415, 429, 503]);

let dir: string;
let rx: HttpReceiver;
let port: number;
let url: string;
const sink = new MemorySink();

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealtrail-fuzz-'));
  fs.writeFileSync(path.join(dir, 'tokens'), `fuzz:${TOKEN}\n`, { mode: 0o600 });
  ({ rx, port, url } = await startHttp(sink, { max_request_body_size: 64 * 1024, auth: { bearer_token_file: path.join(dir, 'tokens'), reload_interval: 0 } }));
});
afterAll(async () => {
  await rx.shutdown(1000);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** HTTP token characters (RFC 9110 §5.6.2), so Node's client accepts them as method or header names. */
const tokenChars = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/);
/** Visible ASCII and spaces: a header value Node's client will send. */
const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,40}$/);

const validPb = Buffer.from(sampleRequest(2));
const validJson = Buffer.from(sampleRequestJson(2));

const bodyArb: fc.Arbitrary<{ body: Buffer; gzip: boolean }> = fc
  .tuple(
    fc.oneof(
      fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
      fc.constant(validPb),
      fc.constant(validJson),
      fc.tuple(fc.constantFrom(validPb, validJson), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([b, at, v]) => {
        const c = Buffer.from(b);
        c[at % c.length] = v;
        return c;
      }),
      fc.tuple(fc.constantFrom(validPb, validJson), fc.nat()).map(([b, at]) => b.subarray(0, at % b.length)),
    ),
    fc.boolean(),
  )
  .map(([body, gzip]) => ({ body: gzip ? zlib.gzipSync(body) : body, gzip }));

const randomRequestArb = fc.record({
  method: fc.oneof(fc.constantFrom('POST', 'POST', 'POST', 'GET', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'), tokenChars.map((s) => s.toUpperCase())),
  path: fc.oneof(fc.constantFrom('/v1/logs', '/v1/logs', '/v1/logs?x=1', '/v1/traces', '/v1/metrics', '/', '/v1/logs/'), fc.webPath().map((p) => `/${p.replace(/^\/+/, '')}`)),
  contentType: fc.option(fc.oneof(fc.constantFrom('application/x-protobuf', 'application/json', 'application/json; charset=utf-8', 'text/plain'), headerValue), { nil: undefined }),
  encoding: fc.option(fc.oneof(fc.constantFrom('gzip', 'deflate', 'identity', 'br'), headerValue), { nil: undefined }),
  auth: fc.oneof(fc.constant(`Bearer ${TOKEN}`), fc.constant(`Bearer ${TOKEN}`), fc.constant(undefined), headerValue.map((v) => `Bearer ${v}`), headerValue),
  extra: fc.option(fc.tuple(tokenChars, headerValue), { nil: undefined }),
  payload: bodyArb,
});

/** Close to a valid export: right method, path, token, matching type and encoding; body valid or slightly mutated. */
const nearValidArb = fc
  .tuple(
    fc.constantFrom('pb' as const, 'json' as const),
    fc.boolean(),
    fc.option(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { nil: undefined, freq: 2 }),
  )
  .map(([kind, gzip, flip]) => {
    const base = Buffer.from(kind === 'pb' ? validPb : validJson);
    if (flip) base[flip[0] % base.length] = flip[1];
    return {
      method: 'POST',
      path: '/v1/logs',
      contentType: kind === 'pb' ? 'application/x-protobuf' : 'application/json',
      encoding: gzip ? 'gzip' : undefined,
      auth: `Bearer ${TOKEN}` as string | undefined,
      extra: undefined as [string, string] | undefined,
      payload: { body: gzip ? zlib.gzipSync(base) : base, gzip },
    };
  });

const requestArb = fc.oneof({ arbitrary: randomRequestArb, weight: 3 }, { arbitrary: nearValidArb, weight: 1 });

type Req = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;

function send(r: Req): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const headers: Record<string, string | number> = { 'content-length': r.payload.body.length };
  if (r.contentType !== undefined) headers['content-type'] = r.contentType;
  if (r.encoding !== undefined) headers['content-encoding'] = r.encoding;
  if (r.auth !== undefined) headers['authorization'] = r.auth;
  if (r.extra !== undefined && !/^(content-length|host|transfer-encoding|connection|expect|upgrade)$/i.test(r.extra[0])) headers[r.extra[0]] = r.extra[1];
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: r.method, path: r.path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(r.payload.body);
  });
}

describe('fuzz: OTLP/HTTP receiver', () => {
  it('random requests always get a well-formed response; nothing is stored unless the answer is 200', async () => {
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(requestArb, async (r) => {
        const before = sink.entries.length;
        const res = await send(r);
        seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
        expect(STATUSES.has(res.status), `status ${res.status}`).toBe(true);
        if (r.method !== 'HEAD') expect(Number(res.headers['content-length'])).toBe(res.body.length);
        expect(res.headers['content-type']).toMatch(/^(application\/x-protobuf|application\/json|text\/plain)/);
        if (res.status === 401) expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="sealtrail"/);
        if (res.status !== 200) expect(sink.entries.length).toBe(before);
        if (res.status === 200) expect(r.auth).toBe(`Bearer ${TOKEN}`);
        if (res.status >= 400 && res.status !== 401) expect(res.body.length).toBeGreaterThan(0); // a message naming what was wrong
      }),
      { numRuns: RUNS, ...SEED },
    );
    console.log(`HTTP fuzz statuses: ${JSON.stringify(Object.fromEntries([...seen].sort((a, b) => a[0] - b[0])))}`);
    // The generator reaches both sides of the fence.
    expect(seen.get(200) ?? 0).toBeGreaterThan(0);
    expect(seen.get(401) ?? 0).toBeGreaterThan(0);
  }, BUDGET_MS);

  it('raw-socket garbage gets 400 (or a close), never a crash; the receiver serves afterwards', async () => {
    const before = sink.entries.length;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.from(b)),
          fc.tuple(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 64 })).map(([a, b]) => Buffer.concat([Buffer.from('POST /v1/logs HTTP/1.1\r\n'), a, Buffer.from('\r\n\r\n'), b])),
        ),
        async (bytes) => {
          const reply = await new Promise<string>((resolve) => {
            let got = '';
            const s = net.connect(port, '127.0.0.1', () => s.end(bytes));
            s.on('data', (d) => (got += d.toString('latin1')));
            s.on('error', () => resolve(got));
            s.on('close', () => resolve(got));
            setTimeout(() => s.destroy(), 2_000).unref();
          });
          if (reply !== '') expect(reply).toMatch(/^HTTP\/1\.1 (400|401|404|405|408|413|415|431|505) /);
        },
      ),
      { numRuns: Math.max(20, Math.floor(RUNS / 4)), ...SEED },
    );
    expect(sink.entries.length).toBe(before);
    const ok = await httpRequest(url, { headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${TOKEN}` }, body: sampleRequest(1) });
    expect(ok.status).toBe(200);
  }, BUDGET_MS);
});
