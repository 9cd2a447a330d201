/**
 * The exact PutObject request on the wire (G6). The test server accepts a locked PUT without any
 * checksum, so only a test of the request itself can catch a missing Content-MD5 or SHA-256 header
 * (recipe: "CI cannot catch a missing checksum: unit-test that the header is always sent").
 * A capturing HTTP handler stands in for the network; it answers just enough S3 for `put` to reach
 * the PUT and records every request.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { S3Destination } from '../../src/forward/s3.js';
import type { Logger } from '../../src/telemetry/logger.js';

interface Captured {
  method: string;
  path: string;
  query: Record<string, unknown>;
  headers: Record<string, string>;
  body: Buffer;
}

function capturingHandler(log: Captured[]) {
  return {
    metadata: { handlerProtocol: 'http/1.1' },
    destroy() {},
    async handle(request: { method: string; path: string; query?: Record<string, unknown>; headers: Record<string, string>; body?: unknown }) {
      const body = request.body instanceof Uint8Array ? Buffer.from(request.body) : Buffer.alloc(0);
      log.push({ method: request.method, path: request.path, query: request.query ?? {}, headers: { ...request.headers }, body });
      const xml = (s: string) => ({ response: { statusCode: 200, headers: { 'content-type': 'application/xml' }, body: Readable.from([Buffer.from(s)]) } });
      if (request.method === 'GET' && 'versions' in (request.query ?? {})) {
        // ListObjectVersions: no versions yet, so put() goes on to the PUT.
        return xml('<?xml version="1.0" encoding="UTF-8"?><ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>false</IsTruncated></ListVersionsResult>');
      }
      if (request.method === 'PUT') {
        return { response: { statusCode: 200, headers: { etag: '"x"', 'x-amz-version-id': 'v1' }, body: Readable.from([]) } };
      }
      return { response: { statusCode: 503, headers: {}, body: Readable.from([]) } };
    },
  };
}

describe('S3 PutObject headers', () => {
  it('always sends Content-MD5, x-amz-checksum-sha256, COMPLIANCE lock, retain-until and If-None-Match: *', async () => {
    const log: Captured[] = [];
    const now = new Date('2026-11-28T05:00:00.000Z');
    const dest = new S3Destination({
      name: 's3-h',
      bucket: 'audit-a',
      prefix: 'logs/',
      endpoint: 'http://127.0.0.1:1',
      region: 'us-east-1',
      forcePathStyle: true,
      accessKeyId: 'AK',
      secretAccessKey: 'SK',
      retentionDays: 365,
      now: () => now,
      requestHandler: capturingHandler(log) as never,
    });
    const body = Buffer.from('sealed segment bytes');
    const sha = createHash('sha256').update(body).digest();
    const r = await dest.put({ key: 'sealtrail.local/dev/segments/0000000001.seg', body, sha256: sha });
    dest.close();
    // After the PUT the handler answers 503 to the read-back: the put is retryable, not confirmed.
    expect(r.kind).toBe('retryable');

    const puts = log.filter((c) => c.method === 'PUT');
    expect(puts).toHaveLength(1); // one single PutObject, never a multipart upload
    const p = puts[0]!;
    const h = Object.fromEntries(Object.entries(p.headers).map(([k, v]) => [k.toLowerCase(), v]));
    expect(p.path).toBe('/audit-a/logs/sealtrail.local/dev/segments/0000000001.seg');
    expect(h['content-md5']).toBe(createHash('md5').update(body).digest('base64'));
    expect(h['x-amz-checksum-sha256']).toBe(sha.toString('base64'));
    expect(h['x-amz-object-lock-mode']).toBe('COMPLIANCE');
    expect(h['x-amz-object-lock-retain-until-date']).toBe('2027-11-28T05:00:00Z') // ISO 8601, whole seconds;
    expect(h['if-none-match']).toBe('*');
    expect(h['content-length']).toBe(String(body.length));
    // No aws-chunked trailer (RGW answers 411 to it); the body goes as is.
    expect(h['content-encoding']).toBeUndefined();
    expect(h['x-amz-trailer']).toBeUndefined();
    expect(p.body.equals(body)).toBe(true);
    expect(log.some((c) => 'uploads' in c.query)).toBe(false);
  });
});

describe('S3 PutObject of a file body (a sealed segment streamed from disk)', () => {
  function fileDest(handler: unknown, logger?: Logger): S3Destination {
    return new S3Destination({
      name: 's3-f',
      bucket: 'audit-a',
      endpoint: 'http://127.0.0.1:1',
      region: 'us-east-1',
      forcePathStyle: true,
      accessKeyId: 'AK',
      secretAccessKey: 'SK',
      retentionDays: 1,
      requestHandler: handler as never,
      ...(logger ? { logger } : {}),
    });
  }

  it('sends the same checksums and length, the whole file as the body, without aws-chunked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sealtrail-s3file-'));
    try {
      const body = Buffer.alloc(3 * 1024 * 1024 + 11, 0).map((_, i) => (i * 13 + (i >> 16)) & 0xff);
      writeFileSync(join(dir, 'a.seg'), body);
      const seen: { headers: Record<string, string>; body: Buffer }[] = [];
      const handler = {
        metadata: { handlerProtocol: 'http/1.1' },
        destroy() {},
        async handle(request: { method: string; query?: Record<string, unknown>; headers: Record<string, string>; body?: unknown }) {
          if (request.method === 'GET' && 'versions' in (request.query ?? {})) {
            const xml = '<?xml version="1.0" encoding="UTF-8"?><ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>false</IsTruncated></ListVersionsResult>';
            return { response: { statusCode: 200, headers: { 'content-type': 'application/xml' }, body: Readable.from([Buffer.from(xml)]) } };
          }
          if (request.method === 'PUT') {
            const parts: Buffer[] = [];
            for await (const c of request.body as AsyncIterable<Buffer>) parts.push(Buffer.from(c));
            seen.push({ headers: Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v])), body: Buffer.concat(parts) });
            return { response: { statusCode: 200, headers: { etag: '"x"', 'x-amz-version-id': 'v1' }, body: Readable.from([]) } };
          }
          return { response: { statusCode: 503, headers: {}, body: Readable.from([]) } };
        },
      };
      const dest = fileDest(handler);
      const sha = createHash('sha256').update(body).digest();
      const r = await dest.put({ key: 'o/segments/0000000001.seg', body: { file: join(dir, 'a.seg'), size: body.length }, sha256: sha });
      dest.close();
      expect(r.kind).toBe('retryable'); // the handler answers 503 to the read-back
      expect(seen).toHaveLength(1);
      const h = seen[0]!.headers;
      expect(h['content-md5']).toBe(createHash('md5').update(body).digest('base64'));
      expect(h['x-amz-checksum-sha256']).toBe(sha.toString('base64'));
      expect(h['content-length']).toBe(String(body.length));
      expect(h['content-encoding']).toBeUndefined();
      expect(h['x-amz-trailer']).toBeUndefined();
      expect(seen[0]!.body.equals(body)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a streamed upload that fails is retryable, and the SDK\'s warning goes to our logger, never to the console', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sealtrail-s3file-'));
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      writeFileSync(join(dir, 'a.seg'), Buffer.alloc(100_000, 7));
      const handler = {
        metadata: { handlerProtocol: 'http/1.1' },
        destroy() {},
        async handle(request: { method: string; query?: Record<string, unknown> }) {
          if (request.method === 'GET' && 'versions' in (request.query ?? {})) {
            const xml = '<?xml version="1.0" encoding="UTF-8"?><ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>false</IsTruncated></ListVersionsResult>';
            return { response: { statusCode: 200, headers: { 'content-type': 'application/xml' }, body: Readable.from([Buffer.from(xml)]) } };
          }
          throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        },
      };
      const lines: unknown[] = [];
      const logger = pino({ level: 'debug' }, { write: (l: string) => lines.push(JSON.parse(l)) });
      const dest = fileDest(handler, logger);
      const r = await dest.put({ key: 'o/segments/0000000002.seg', body: { file: join(dir, 'a.seg'), size: 100_000 }, sha256: new Uint8Array(32) });
      dest.close();
      expect(r.kind).toBe('retryable');
      // The request failed before the body was read; put closes the stream it opened (else, with the
      // file removed below, its open would fail with an error event nobody listens to: an unhandled
      // error that fails this run — as it did before the stream was closed).
      expect(warn).not.toHaveBeenCalled();
      expect(lines).toContainEqual(expect.objectContaining({ level: 20, sdk: 'warn', detail: expect.stringMatching(/non-retryable streaming request/) }));
    } finally {
      warn.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
