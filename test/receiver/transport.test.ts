/**
 * Transport details that well-behaved SDKs do not exercise: the accepted spellings of
 * Content-Type and Content-Encoding, keep-alive reuse, parallel requests, and a client that goes
 * away mid-body (nothing stored, server unaffected).
 */
import http from 'node:http';
import net from 'node:net';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpReceiver } from '../../src/receiver/http.js';
import type { GrpcReceiver } from '../../src/receiver/grpc.js';
import { OTLP_GRPC_PATHS } from '../../src/receiver/grpc.js';
import { MemorySink, grpcCall, httpRequest, sampleRequest, sampleRequestJson, startGrpc, startHttp } from './helpers.js';

describe('OTLP/HTTP accepted spellings', () => {
  const sink = new MemorySink();
  let rx: HttpReceiver;
  let url: string;
  let port: number;
  beforeAll(async () => {
    ({ rx, url, port } = await startHttp(sink));
  });
  afterAll(() => rx.shutdown());

  const body = sampleRequest(1);
  const cases: Array<{ name: string; headers: Record<string, string>; body: Uint8Array | string }> = [
    { name: 'Content-Type in upper case with charset', headers: { 'content-type': 'Application/X-Protobuf; charset=utf-8' }, body },
    { name: 'JSON with quoted charset', headers: { 'content-type': 'application/json; charset="UTF-8"' }, body: sampleRequestJson(1) },
    { name: 'Content-Encoding: identity', headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'identity' }, body },
    { name: 'Content-Encoding: x-gzip (RFC 9110 alias)', headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'x-gzip' }, body: zlib.gzipSync(body) },
    { name: 'Content-Encoding: GZIP', headers: { 'content-type': 'application/json', 'content-encoding': 'GZIP' }, body: zlib.gzipSync(sampleRequestJson(1)) },
    { name: 'deflate as zlib stream (RFC 9110 §8.4.1.2)', headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'deflate' }, body: zlib.deflateSync(body) },
    { name: 'deflate sent as raw DEFLATE (common client mistake)', headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'deflate' }, body: zlib.deflateRawSync(body) },
  ];
  it.each(cases)('$name → 200, stored', async (c) => {
    const before = sink.entries.length;
    const res = await httpRequest(url, { headers: c.headers, body: c.body });
    expect(res.status).toBe(200);
    expect(sink.entries.length).toBe(before + 1);
  });

  it('keep-alive: several requests on one connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    try {
      for (let i = 0; i < 3; i++) {
        await new Promise<void>((resolve, reject) => {
          const req = http.request(`${url}/v1/logs`, { method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf' } }, (res) => {
            sockets.add(res.socket);
            expect(res.statusCode).toBe(200);
            expect(res.headers['connection']).not.toBe('close');
            res.resume();
            res.on('end', resolve);
          });
          req.on('error', reject);
          req.end(body);
        });
      }
      expect(sockets.size).toBe(1);
    } finally {
      agent.destroy();
    }
  });

  it('64 parallel requests are all stored, each acknowledged', async () => {
    const before = sink.entries.length;
    const res = await Promise.all(Array.from({ length: 64 }, () => httpRequest(url, { headers: { 'content-type': 'application/x-protobuf' }, body: sampleRequest(3) })));
    expect(res.every((r) => r.status === 200)).toBe(true);
    expect(sink.entries.length).toBe(before + 64 * 3);
  });

  /** Sends headers with Expect: 100-continue; sends the body only after a 100; returns everything the server said. */
  function expectContinue(headers: string, body: Uint8Array): Promise<{ text: string; sentBody: boolean }> {
    return new Promise((resolve, reject) => {
      let text = '';
      let sentBody = false;
      const s = net.connect(port, '127.0.0.1', () => s.write(`POST /v1/logs HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n${headers}\r\n`));
      s.on('data', (d) => {
        text += d.toString('latin1');
        if (!sentBody && text.startsWith('HTTP/1.1 100')) {
          sentBody = true;
          s.write(body);
        }
        if (/HTTP\/1\.1 [2-5]\d\d/.test(text)) s.end();
      });
      s.on('close', () => resolve({ text, sentBody }));
      s.on('error', reject);
    });
  }

  it('Expect: 100-continue — a wanted body gets 100 then 200', async () => {
    const before = sink.entries.length;
    const r = await expectContinue(`Content-Type: application/x-protobuf\r\nContent-Length: ${body.length}\r\n`, body);
    expect(r.sentBody).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200/);
    expect(sink.entries.length).toBe(before + 1);
  });

  it('Expect: 100-continue — an oversize or unsupported upload is refused before the body is sent', async () => {
    const big = await expectContinue(`Content-Type: application/x-protobuf\r\nContent-Length: ${100 * 1024 * 1024}\r\n`, body);
    expect(big.sentBody).toBe(false);
    expect(big.text).toMatch(/^HTTP\/1\.1 413/);
    const wrongType = await expectContinue(`Content-Type: text/plain\r\nContent-Length: 10\r\n`, body);
    expect(wrongType.sentBody).toBe(false);
    expect(wrongType.text).toMatch(/^HTTP\/1\.1 415/);
  });

  it('malformed HTTP gets 400 and a closed connection; nothing stored', async () => {
    const before = sink.batches.length;
    const reply = await new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('POST /v1/logs HTTP/1.1\r\nContent-Length: x\r\n\r\n'));
      let got = '';
      s.on('data', (d) => (got += d.toString()));
      s.on('close', () => resolve(got));
      s.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    expect(sink.batches.length).toBe(before);
  });

  it('a client that disconnects mid-body stores nothing and does not disturb the server', async () => {
    const before = sink.batches.length;
    const full = sampleRequest(50);
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.write(`POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${full.length}\r\n\r\n`);
        s.write(full.subarray(0, full.length >> 1));
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 50);
      });
      s.on('error', reject);
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(sink.batches.length).toBe(before);
    expect((await httpRequest(url, { headers: { 'content-type': 'application/x-protobuf' }, body })).status).toBe(200);
  });
});

describe('OTLP/gRPC transport', () => {
  const sink = new MemorySink();
  let rx: GrpcReceiver;
  let address: string;
  beforeAll(async () => {
    ({ rx, address } = await startGrpc(sink));
  });
  afterAll(() => rx.shutdown());

  it('grpc-encoding deflate is accepted too', async () => {
    const res = await grpcCall(address, OTLP_GRPC_PATHS.logs, zlib.deflateSync(sampleRequest(2)), 'deflate');
    expect(res.code).toBe(0);
    expect(sink.entries).toHaveLength(2);
  });

  it('64 parallel calls are all stored', async () => {
    const before = sink.entries.length;
    const res = await Promise.all(Array.from({ length: 64 }, () => grpcCall(address, OTLP_GRPC_PATHS.logs, sampleRequest(3))));
    expect(res.every((r) => r.code === 0)).toBe(true);
    expect(sink.entries.length).toBe(before + 64 * 3);
  });
});
