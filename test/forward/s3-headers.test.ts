/**
 * The exact PutObject request on the wire (G6). The test server accepts a locked PUT without any
 * checksum, so only a test of the request itself can catch a missing Content-MD5 or SHA-256 header
 * (recipe: "CI cannot catch a missing checksum: unit-test that the header is always sent").
 * A capturing HTTP handler stands in for the network; it answers just enough S3 for `put` to reach
 * the PUT and records every request.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { S3Destination } from '../../src/forward/s3.js';

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
