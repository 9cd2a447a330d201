/** Unit tests of the gRPC wire helpers (src/receiver/grpc-wire.ts) against grpc/grpc doc/PROTOCOL-HTTP2.md. */
import zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  UnaryMessageReader,
  checkGrpcContentType,
  decompressMessage,
  parseGrpcEncoding,
  parseGrpcTimeout,
  percentEncodeGrpcMessage,
} from '../../src/receiver/grpc-wire.js';
import { pooledBodyBytes } from '../../src/receiver/body-pool.js';
import { grpcFrame } from './helpers.js';

describe('UnaryMessageReader', () => {
  it('reassembles one message split at every possible pair of cut points', () => {
    const payload = Buffer.from(Array.from({ length: 40 }, (_, i) => i));
    const frame = grpcFrame(payload, false);
    for (let a = 0; a <= frame.length; a++) {
      for (let b = a; b <= frame.length; b++) {
        const r = new UnaryMessageReader(1024, 'limit');
        for (const part of [frame.subarray(0, a), frame.subarray(a, b), frame.subarray(b)]) expect(r.push(part)).toBeUndefined();
        const m = r.end();
        expect('kind' in m, `cut at ${a}/${b}`).toBe(false);
        if (!('kind' in m)) {
          expect(m.compressed).toBe(false);
          expect(Buffer.compare(m.data, payload)).toBe(0);
        }
      }
    }
  });

  it('any chunking of any message gives the message back (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat({ max: 310 }), { maxLength: 6 }), fc.boolean(), (bytes, cuts, compressed) => {
        const frame = grpcFrame(bytes, compressed);
        const points = [...new Set(cuts.map((c) => Math.min(c, frame.length)))].sort((x, y) => x - y);
        const r = new UnaryMessageReader(1000, 'limit');
        let prev = 0;
        for (const p of [...points, frame.length]) {
          expect(r.push(frame.subarray(prev, p))).toBeUndefined();
          prev = p;
        }
        const m = r.end();
        if ('kind' in m) return false;
        return m.compressed === compressed && Buffer.compare(m.data, Buffer.from(bytes)) === 0;
      }),
    );
  });

  it('refuses a declared length above the limit on the prefix alone, naming both sizes and the setting', () => {
    const r = new UnaryMessageReader(100, 'max_recv_msg_size_mib = 100 bytes');
    const prefix = Buffer.from([0, 0, 0, 0, 101]);
    expect(r.push(prefix.subarray(0, 3))).toBeUndefined();
    const err = r.push(prefix.subarray(3));
    expect(err).toEqual({ kind: 'too_large', message: expect.stringMatching(/larger than max \(101 vs 100 bytes, max_recv_msg_size_mib/) });
    // exactly the limit is fine
    const ok = new UnaryMessageReader(100, 'l');
    expect(ok.push(grpcFrame(new Uint8Array(100), false))).toBeUndefined();
    expect('kind' in ok.end()).toBe(false);
  });

  it('copies a message of up to 64 KiB into a pooled slab, larger ones into a pooled body; each reused only after release() (and poisoned then)', () => {
    const read = (payload: Uint8Array, cuts: number[]) => {
      const frame = grpcFrame(payload, false);
      const r = new UnaryMessageReader(1 << 20, 'l');
      let prev = 0;
      for (const c of [...cuts, frame.length]) {
        expect(r.push(frame.subarray(prev, c))).toBeUndefined();
        prev = c;
      }
      const m = r.end();
      if ('kind' in m) throw new Error(m.message);
      return m;
    };
    const a = Uint8Array.from({ length: 36_000 }, (_, i) => i % 251);
    const m1 = read(a, [3, 16_384, 32_768]); // the prefix itself split, then 16 KiB DATA chunks
    expect(Buffer.compare(m1.data, a)).toBe(0);
    expect(m1.data.buffer.byteLength).toBe(64 * 1024);
    const m2 = read(a, [20_000]);
    expect(m2.data.buffer).not.toBe(m1.data.buffer); // m1 still holds its buffer
    expect(process.env.SEALTRAIL_ARENA_POISON).toBe('1'); // vitest.config.ts
    m1.release();
    m1.release(); // twice: given back once
    expect(m1.data.every((x) => x === 0xdb)).toBe(true);
    const m3 = read(Uint8Array.of(1, 2, 3), []);
    expect(m3.data.buffer).toBe(m1.data.buffer);
    expect([...m3.data]).toEqual([1, 2, 3]);
    const m4 = read(Uint8Array.of(4), []);
    expect(m4.data.buffer).not.toBe(m1.data.buffer);
    // Larger messages go into a buffer of the body pool (a power-of-two class ≥ 128 KiB).
    const big = Uint8Array.from({ length: 370_000 }, (_, i) => (i * 7) % 256);
    const m5 = read(big, [2, 16_384, 32_768, 49_152, 65_536, 300_000]);
    expect(Buffer.compare(m5.data, big)).toBe(0);
    expect(m5.data.buffer.byteLength).toBe(512 * 1024);
    const before = pooledBodyBytes();
    m5.release();
    m5.release(); // twice: given back once
    expect(pooledBodyBytes()).toBe(before + 512 * 1024);
    expect(m5.data.every((x) => x === 0xdb)).toBe(true);
    const m6 = read(big.subarray(0, 300_000), [70_000]);
    expect(m6.data.buffer).toBe(m5.data.buffer);
    expect(Buffer.compare(m6.data, big.subarray(0, 300_000))).toBe(0);
    for (const m of [m2, m3, m4, m6]) m.release();
    // Bytes after the message are refused in the pooled path too.
    const r = new UnaryMessageReader(1 << 20, 'l');
    const f = grpcFrame(a.subarray(0, 100), false);
    expect(r.push(f.subarray(0, 50))).toBeUndefined();
    expect(r.push(Buffer.concat([f.subarray(50), Buffer.of(0)]))).toMatchObject({ kind: 'protocol_error', message: /more than one request message/ });
    // A message and a byte more in the first chunk: refused by push, and end() refuses too (it has no message to give).
    const r2 = new UnaryMessageReader(1 << 20, 'l');
    expect(r2.push(Buffer.concat([f, Buffer.of(0)]))).toMatchObject({ kind: 'protocol_error', message: /more than one request message/ });
    expect(r2.end()).toMatchObject({ kind: 'protocol_error', message: /more than one request message/ });
  });

  it('refuses a Compressed-Flag other than 0 or 1', () => {
    const f = grpcFrame(new Uint8Array(3), false);
    f[0] = 2;
    expect(new UnaryMessageReader(100, 'l').push(f)).toMatchObject({ kind: 'protocol_error', message: /Compressed-Flag 2/ });
  });

  it('refuses a second message, a missing message and a cut message', () => {
    const two = Buffer.concat([grpcFrame(new Uint8Array(2), false), grpcFrame(new Uint8Array(2), false)]);
    expect(new UnaryMessageReader(100, 'l').push(two)).toMatchObject({ kind: 'protocol_error', message: /more than one request message/ });
    expect(new UnaryMessageReader(100, 'l').end()).toMatchObject({ kind: 'protocol_error', message: /without a message/ });
    const cut = new UnaryMessageReader(100, 'l');
    cut.push(grpcFrame(new Uint8Array(10), false).subarray(0, 12));
    expect(cut.end()).toMatchObject({ kind: 'protocol_error', message: /ended inside a message \(12 of 15/ });
    const shortPrefix = new UnaryMessageReader(100, 'l');
    shortPrefix.push(Buffer.from([0, 0]));
    expect(shortPrefix.end()).toMatchObject({ kind: 'protocol_error', message: /ended inside a message \(2 of 5/ });
  });

  it('an empty message (length 0) is a message', () => {
    const r = new UnaryMessageReader(100, 'l');
    r.push(grpcFrame(new Uint8Array(0), false));
    const m = r.end();
    expect('kind' in m ? m : m.data.length).toBe(0);
  });
});

describe('grpc-timeout', () => {
  it('parses every unit into milliseconds, rounding up', () => {
    expect(parseGrpcTimeout(undefined)).toBeUndefined();
    expect(parseGrpcTimeout('2H')).toBe(7_200_000);
    expect(parseGrpcTimeout('3M')).toBe(180_000);
    expect(parseGrpcTimeout('10S')).toBe(10_000);
    expect(parseGrpcTimeout('250m')).toBe(250);
    expect(parseGrpcTimeout('1500u')).toBe(2);
    expect(parseGrpcTimeout('1n')).toBe(1);
    expect(parseGrpcTimeout('99999999H')).toBe(2_147_483_647); // capped at the largest timer
  });
  it('refuses malformed values (more than 8 digits, no unit, unknown unit, sign, space)', () => {
    for (const v of ['123456789S', '10', '10s', '-1S', ' 1S', '1.5S', 'S', '']) {
      expect(parseGrpcTimeout(v), v).toMatchObject({ kind: 'protocol_error', message: /invalid grpc-timeout/ });
    }
  });
});

describe('grpc-message percent-encoding', () => {
  it('leaves space and VCHAR except % alone and encodes the rest as UTF-8 %XX', () => {
    expect(percentEncodeGrpcMessage('plain text: ok (1/2) ~')).toBe('plain text: ok (1/2) ~');
    expect(percentEncodeGrpcMessage('100%')).toBe('100%25');
    expect(percentEncodeGrpcMessage('é\n✓')).toBe('%C3%A9%0A%E2%9C%93');
  });
  it('round-trips through decodeURIComponent for any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 50 }), (s) => {
        const enc = percentEncodeGrpcMessage(s);
        return /^[\x20-\x7e]*$/.test(enc) && decodeURIComponent(enc) === s;
      }),
    );
  });
});

describe('grpc-encoding and content-type', () => {
  it('accepts identity, gzip, deflate; anything else is unsupported_encoding listing what is', () => {
    expect(parseGrpcEncoding(undefined)).toBe('identity');
    expect(parseGrpcEncoding('identity')).toBe('identity');
    expect(parseGrpcEncoding('gzip')).toBe('gzip');
    expect(parseGrpcEncoding('deflate')).toBe('deflate');
    expect(parseGrpcEncoding('snappy')).toEqual({ kind: 'unsupported_encoding', message: expect.stringMatching(/"snappy".*identity,deflate,gzip/) });
  });
  it('application/grpc and +proto pass; +json is refused at gRPC level; anything else asks for HTTP 415', () => {
    expect(checkGrpcContentType('application/grpc')).toBeUndefined();
    expect(checkGrpcContentType('application/grpc+proto')).toBeUndefined();
    expect(checkGrpcContentType('Application/GRPC; charset=x')).toBeUndefined();
    expect(checkGrpcContentType('application/grpc+json')).toMatchObject({ kind: 'unsupported_media_type', http415: false });
    expect(checkGrpcContentType('application/json')).toMatchObject({ kind: 'unsupported_media_type', http415: true });
    expect(checkGrpcContentType(undefined)).toMatchObject({ kind: 'unsupported_media_type', http415: true, message: /\(none\)/ });
  });
});

describe('decompressMessage', () => {
  const data = Buffer.from('x'.repeat(5000));
  it('gzip, zlib-format deflate and raw deflate come back whole', async () => {
    expect(await decompressMessage('gzip', zlib.gzipSync(data), 5000, 'l')).toEqual(data);
    expect(await decompressMessage('deflate', zlib.deflateSync(data), 5000, 'l')).toEqual(data);
    expect(await decompressMessage('deflate', zlib.deflateRawSync(data), 5000, 'l')).toEqual(data);
  });
  it('output one byte above the limit is too_large; garbage is protocol_error', async () => {
    expect(await decompressMessage('gzip', zlib.gzipSync(data), 4999, 'the limit')).toMatchObject({
      kind: 'too_large',
      message: /decompresses to a size larger than 4999 bytes \(the limit\)/,
    });
    expect(await decompressMessage('gzip', Buffer.from('not gzip'), 5000, 'l')).toMatchObject({ kind: 'protocol_error', message: /failed to decompress/ });
  });
});
