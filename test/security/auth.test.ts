/**
 * Issue 8 — bearer-token authentication on both receivers, exercised with the real OpenTelemetry JS
 * exporters' own options (HTTP `headers`, gRPC `metadata`): the right token is accepted and stored,
 * a wrong or missing one gets 401 (RFC 6750 challenge) / UNAUTHENTICATED and nothing is stored.
 * The token is checked before the body is read: a refused request's body is never read,
 * decompressed or decoded. The token file is reloaded on change; a broken file keeps the old tokens.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import grpc from '@grpc/grpc-js';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter as GrpcExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as JsonExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as ProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, type LogRecordExporter, type ReadableLogRecord, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bearerFromAuthorization, parseTokenFile } from '../../src/receiver/auth.js';
import { OTLP_GRPC_PATHS } from '../../src/receiver/grpc.js';
import { MemorySink, grpcFrame, httpRequest, newMetrics, sampleRequest, startGrpc, startHttp } from '../receiver/helpers.js';
import { waitUntil } from './helpers.js';

const GOOD = 'good-client-token-0123456789abcdef';
const OTHER = 'second-client-token-fedcba9876543210';
const PB = { 'content-type': 'application/x-protobuf' };
let dir: string;
let tokenFile: string;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealtrail-auth-'));
  tokenFile = path.join(dir, 'tokens');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function writeTokens(text: string): void {
  const tmp = `${tokenFile}.tmp`;
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  fs.renameSync(tmp, tokenFile);
}

const auth = (reload = 0) => ({ bearer_token_file: tokenFile, reload_interval: reload });

/** Two log records made by the real SDK (read back from an in-memory exporter). */
async function sdkRecords(): Promise<ReadableLogRecord[]> {
  const memory = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'auth-test' }),
    processors: [new SimpleLogRecordProcessor({ exporter: memory })],
  });
  const logger = provider.getLogger('auth');
  logger.emit({ severityNumber: SeverityNumber.INFO, body: 'login ok' });
  logger.emit({ severityNumber: SeverityNumber.WARN, body: 'login failed' });
  await provider.forceFlush();
  const records = [...memory.getFinishedLogRecords()];
  await provider.shutdown();
  return records;
}

/** Exports through a real exporter and resolves its ExportResult (code 0 = success, 1 = failed). */
async function exportWith(exporter: LogRecordExporter, records: ReadableLogRecord[]): Promise<{ code: number; error?: Error }> {
  const r = await new Promise<{ code: number; error?: Error }>((resolve) => exporter.export(records, (res) => resolve(res)));
  await exporter.shutdown();
  return r;
}

describe('token file and Authorization parsing', () => {
  it('accepts TOKEN and NAME:TOKEN lines, comments and blanks; names unnamed tokens by line', () => {
    const r = parseTokenFile(`# clients\n\n${GOOD}\n  billing:${OTHER}  \r\n`);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.tokens.map((t) => t.name)).toEqual(['line-3', 'billing']);
  });
  it.each([
    ['short', 'abc', /line 1: token is shorter than 16/],
    ['bad characters', 'has space in the token 123456', /line 1: token must use only/],
    ['bad name', `bad name!:${GOOD}`, /line 1: token name must be/],
    ['duplicate token', `${GOOD}\n${GOOD}`, /line 2: the same token appears twice/],
    ['duplicate name', `a:${GOOD}\na:${OTHER}`, /line 2: duplicate token name "a"/],
    ['empty', '# nothing\n', /no tokens/],
  ])('refuses %s, naming the line but never the token', (_n, text, re) => {
    const r = parseTokenFile(text);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.problems.join('; ')).toMatch(re);
      expect(r.problems.join('; ')).not.toContain(GOOD);
    }
  });
  it('Authorization: Bearer with any case and spacing; other schemes are "no credentials"', () => {
    expect(bearerFromAuthorization(`Bearer ${GOOD}`)).toBe(GOOD);
    expect(bearerFromAuthorization(`bearer   ${GOOD} `)).toBe(GOOD);
    expect(bearerFromAuthorization(`Basic ${GOOD}`)).toBeUndefined();
    expect(bearerFromAuthorization('Bearer')).toBeUndefined();
    expect(bearerFromAuthorization(undefined)).toBeUndefined();
  });
});

describe('OTLP/HTTP bearer tokens', () => {
  it('real SDK exporters (HTTP/protobuf and HTTP/JSON) with the headers option: right token stored, wrong or missing refused', async () => {
    writeTokens(`app:${GOOD}\n`);
    const sink = new MemorySink();
    const metrics = newMetrics();
    const { rx, url } = await startHttp(sink, { auth: auth() }, metrics);
    cleanups.push(() => rx.shutdown());
    const records = await sdkRecords();
    const endpoint = `${url}/v1/logs`;
    for (const make of [
      (headers?: Record<string, string>) => new ProtoExporter({ url: endpoint, ...(headers ? { headers } : {}) }),
      (headers?: Record<string, string>) => new JsonExporter({ url: endpoint, ...(headers ? { headers } : {}) }),
    ]) {
      const before = sink.entries.length;
      expect((await exportWith(make({ Authorization: `Bearer ${GOOD}` }), records)).code).toBe(0);
      expect(sink.entries.length).toBe(before + 2);
      const wrong = await exportWith(make({ Authorization: `Bearer ${OTHER}` }), records);
      expect(wrong.code).toBe(1);
      expect((wrong.error as Error & { code?: number }).code).toBe(401);
      expect((await exportWith(make(), records)).code).toBe(1);
      expect(sink.entries.length).toBe(before + 2);
    }
    const text = await metrics.registry.metrics();
    expect(text).toContain('sealtrail_receiver_requests_total{transport="http",status="401"} 4');
    expect(text).toContain('sealtrail_receiver_refused_requests_total{transport="http",reason="unauthenticated"} 4');
  });

  it('401 carries the RFC 6750 challenge: no error code without credentials, invalid_token for a wrong one', async () => {
    writeTokens(`${GOOD}\n`);
    const sink = new MemorySink();
    const { rx, url } = await startHttp(sink, { auth: auth() });
    cleanups.push(() => rx.shutdown());
    const none = await httpRequest(url, { headers: PB, body: sampleRequest(1) });
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="sealtrail"');
    const basic = await httpRequest(url, { headers: { ...PB, authorization: `Basic ${GOOD}` }, body: sampleRequest(1) });
    expect(basic.status).toBe(401);
    expect(basic.headers['www-authenticate']).toBe('Bearer realm="sealtrail"');
    const wrong = await httpRequest(url, { headers: { ...PB, authorization: `Bearer ${GOOD}x` }, body: sampleRequest(1) });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['www-authenticate']).toBe('Bearer realm="sealtrail", error="invalid_token"');
    // Also on paths that do not exist: an unauthenticated client learns nothing about the server.
    const other = await httpRequest(url, { path: '/v1/traces', headers: PB, body: sampleRequest(1) });
    expect(other.status).toBe(401);
    const ok = await httpRequest(url, { headers: { ...PB, authorization: `Bearer ${GOOD}` }, body: sampleRequest(1) });
    expect(ok.status).toBe(200);
    expect(sink.entries).toHaveLength(1);
  });

  it('the token is checked before the body: a refused request is answered while its announced body was never sent', async () => {
    writeTokens(`${GOOD}\n`);
    const sink = new MemorySink();
    const metrics = newMetrics();
    const { rx, port } = await startHttp(sink, { auth: auth() }, metrics);
    cleanups.push(() => rx.shutdown());
    // Headers announce 10 MB of gzip; no body byte follows. Only a server that answers on the headers replies.
    const reply = await new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.write(
          'POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: gzip\r\n' +
            `Content-Length: 10000000\r\nAuthorization: Bearer wrong-token-0000000000000\r\n\r\n`,
        );
      });
      let got = '';
      s.on('data', (d) => (got += d.toString('latin1')));
      s.on('close', () => resolve(got));
      s.on('error', reject);
      setTimeout(() => s.destroy(), 3_000);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 401 /);
    expect(reply).toMatch(/Connection: close/i);
    expect(sink.entries).toHaveLength(0);
    expect((await metrics.receiverBytes.get()).values.reduce((a, v) => a + v.value, 0)).toBe(0);
  });

  it('the token file is reloaded: a new token works, the removed one stops working; a broken file keeps the tokens in force', async () => {
    writeTokens(`${GOOD}\n`);
    const sink = new MemorySink();
    const { rx, url } = await startHttp(sink, { auth: auth(100) });
    cleanups.push(() => rx.shutdown());
    const status = async (token: string): Promise<number> =>
      (await httpRequest(url, { headers: { ...PB, authorization: `Bearer ${token}` }, body: sampleRequest(1) })).status;
    expect(await status(GOOD)).toBe(200);
    expect(await status(OTHER)).toBe(401);
    writeTokens(`rotated:${OTHER}\n`);
    expect(await waitUntil(async () => (await status(OTHER)) === 200, 3_000)).toBe(true);
    expect(await status(GOOD)).toBe(401);
    writeTokens('short\n'); // invalid: refused, previous tokens stay
    await new Promise((r) => setTimeout(r, 400));
    expect(await status(OTHER)).toBe(200);
    expect(rx.bearerTokens?.names).toEqual(['rotated']);
    fs.rmSync(tokenFile); // unreadable: the same
    await new Promise((r) => setTimeout(r, 400));
    expect(await status(OTHER)).toBe(200);
    expect(sink.entries).toHaveLength(4); // exactly the four 200s above
  });

  it('start-up refuses a missing or token-less file, naming the key', async () => {
    writeTokens('# nobody\n');
    await expect(startHttp(new MemorySink(), { auth: auth() })).rejects.toThrow(/receivers\.otlp\.protocols\.http\.auth\.bearer_token_file: .*no tokens/);
    await expect(startHttp(new MemorySink(), { auth: { bearer_token_file: path.join(dir, 'absent'), reload_interval: 0 } })).rejects.toThrow(
      /receivers\.otlp\.protocols\.http\.auth\.bearer_token_file: cannot read .*absent: ENOENT/,
    );
  });
});

describe('OTLP/gRPC bearer tokens', () => {
  function call(port: number, payload: Uint8Array, token?: string): Promise<{ code: number; details: string }> {
    return new Promise((resolve) => {
      const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      const md = new grpc.Metadata();
      if (token !== undefined) md.set('authorization', `Bearer ${token}`);
      const id = (b: Buffer): Buffer => b;
      client.makeUnaryRequest(OTLP_GRPC_PATHS.logs, id, id, Buffer.from(payload), md, { deadline: Date.now() + 5_000 }, (err) => {
        client.close();
        resolve(err ? { code: err.code ?? -1, details: err.details ?? '' } : { code: 0, details: '' });
      });
    });
  }

  it('real SDK gRPC exporter with the metadata option: right token stored, wrong or missing refused with UNAUTHENTICATED', async () => {
    writeTokens(`app:${GOOD}\n`);
    const sink = new MemorySink();
    const metrics = newMetrics();
    const { rx, address, port } = await startGrpc(sink, { auth: auth() }, metrics);
    cleanups.push(() => rx.shutdown());
    const records = await sdkRecords();
    const withToken = (t?: string): GrpcExporter => {
      const metadata = new grpc.Metadata();
      if (t !== undefined) metadata.set('authorization', `Bearer ${t}`);
      return new GrpcExporter({ url: `http://${address}`, metadata });
    };
    expect((await exportWith(withToken(GOOD), records)).code).toBe(0);
    expect(sink.entries).toHaveLength(2);
    const wrong = await exportWith(withToken(OTHER), records);
    expect(wrong.code).toBe(1);
    expect(String(wrong.error)).toMatch(/UNAUTHENTICATED|16/);
    expect((await exportWith(withToken(), records)).code).toBe(1);
    expect(sink.entries).toHaveLength(2);
    // The status code itself, from a plain grpc-js client.
    expect((await call(port, sampleRequest(1), OTHER)).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await call(port, sampleRequest(1))).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await call(port, sampleRequest(1), GOOD)).code).toBe(0);
    expect(sink.entries).toHaveLength(3);
    const text = await metrics.registry.metrics();
    expect(text).toContain('sealtrail_receiver_requests_total{transport="grpc",status="UNAUTHENTICATED"} 4');
  });

  it('the token is checked before the message is read: an oversized or corrupt message from an unauthenticated caller gets UNAUTHENTICATED', async () => {
    writeTokens(`${GOOD}\n`);
    const sink = new MemorySink();
    const { rx, port, address } = await startGrpc(sink, { auth: auth(), max_recv_msg_size_mib: 1 });
    cleanups.push(() => rx.shutdown());
    // With the right token, the same oversized message is refused by the size limit — proof it is read only then.
    const big = new Uint8Array(2 * 1024 * 1024);
    expect((await call(port, big, GOOD)).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect((await call(port, big, OTHER)).code).toBe(grpc.status.UNAUTHENTICATED);
    // A message marked gzip that is not gzip: with a token the receiver would fail to inflate it; without, it is never touched.
    const bogus = await rawGrpc(address, grpcFrame(Buffer.from('not gzip at all'), true), 'gzip', 'Bearer wrong-token-00000000000');
    expect(bogus).toBe(grpc.status.UNAUTHENTICATED);
    const bogusGood = await rawGrpc(address, grpcFrame(zlib.deflateRawSync(Buffer.from('x')), true), 'gzip', `Bearer ${GOOD}`);
    expect(bogusGood).toBe(grpc.status.INTERNAL); // the receiver: the message does not decompress
    expect(sink.entries).toHaveLength(0);
  });
});

/** A gRPC call over node:http2 with a pre-built frame and an authorization header; resolves grpc-status. */
async function rawGrpc(address: string, frame: Buffer, encoding: string, authorization: string): Promise<number> {
  const http2 = await import('node:http2');
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`);
    session.on('error', reject);
    const stream = session.request({
      ':method': 'POST',
      ':path': OTLP_GRPC_PATHS.logs,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-encoding': encoding,
      authorization,
    });
    let code = -1;
    stream.on('response', (h) => {
      if (h['grpc-status'] !== undefined) code = Number(h['grpc-status']);
    });
    stream.on('trailers', (t) => {
      if (t['grpc-status'] !== undefined) code = Number(t['grpc-status']);
    });
    stream.resume();
    stream.on('close', () => {
      session.close();
      resolve(code);
    });
    stream.end(frame);
  });
}
