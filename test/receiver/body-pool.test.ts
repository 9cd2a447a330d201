/**
 * src/receiver/body-pool.ts and its use by the OTLP/HTTP receiver: bodies that arrive in several
 * reads are joined in reused buffers, given back only after the request's decode and append (the
 * tests run with SEALTRAIL_ARENA_POISON=1, so a buffer read after it was given back shows up as
 * altered bytes).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { decodeLogsProtobuf } from '../../src/otlp/index.js';
import { MAX_POOLED, MIN_CLASS, POOL_BYTES, giveBody, pooledBodyBytes, takeBody } from '../../src/receiver/body-pool.js';
import { type AppendOutcome, type EntrySink, type Entries, entryList } from '../../src/ledger/types.js';
import { httpRequest, startHttp, taggedRequest } from './helpers.js';

describe('body pool', () => {
  it('hands out buffers of exactly the asked length in power-of-two classes and reuses a given-back one', () => {
    const a = takeBody(200_000);
    expect(a.length).toBe(200_000);
    expect(a.byteOffset).toBe(0);
    expect(a.buffer.byteLength).toBe(256 * 1024);
    expect(takeBody(1).buffer.byteLength).toBe(MIN_CLASS);
    const before = pooledBodyBytes();
    giveBody(a);
    expect(pooledBodyBytes()).toBe(before + 256 * 1024);
    const b = takeBody(150_000); // same class
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBe(150_000);
    expect(pooledBodyBytes()).toBe(before);
    giveBody(b);
  });

  it('refuses a buffer given back twice or one it did not hand out', () => {
    const a = takeBody(300_000);
    giveBody(a);
    expect(() => giveBody(a)).toThrow(/given back twice/);
    expect(() => giveBody(Buffer.alloc(300_000))).toThrow(/not a buffer from takeBody/);
    expect(() => giveBody(Buffer.from(Buffer.allocUnsafeSlow(MIN_CLASS).buffer, 16, 100))).toThrow(/not a buffer from takeBody/);
  });

  it('overwrites given-back buffers in tests and keeps at most POOL_BYTES, never one above MAX_POOLED', () => {
    expect(process.env.SEALTRAIL_ARENA_POISON).toBe('1'); // vitest.config.ts
    const big = takeBody(MAX_POOLED + 1);
    expect(big.buffer.byteLength).toBe(MAX_POOLED + 1); // exactly its size: never rounded up to a class
    big.fill(7);
    const held = pooledBodyBytes();
    giveBody(big);
    expect(pooledBodyBytes()).toBe(held); // not pooled
    expect(big[0]).toBe(0xdb); // but poisoned: nobody may read it any more
    const many = Array.from({ length: POOL_BYTES / MAX_POOLED + 2 }, () => takeBody(MAX_POOLED));
    for (const m of many) giveBody(m);
    expect(pooledBodyBytes()).toBeLessThanOrEqual(POOL_BYTES);
  });
});

/** Keeps a copy of every append's entries; optionally holds the appends open until released. */
class CopySink implements EntrySink {
  readonly got: string[][] = [];
  append(given: Entries): Promise<AppendOutcome> {
    const entries = entryList(given);
    this.got.push(entries.map((e) => Buffer.from(e).toString('hex')));
    return Promise.resolve({ kind: 'ok', firstIndex: 0, count: entries.length });
  }
}

const request = (tag: string, n: number): Uint8Array => taggedRequest(tag, n, 20);

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

describe('OTLP/HTTP receiver: bodies of several reads', () => {
  it('stores exactly the records of large bodies sent one after another through the same pooled memory', async () => {
    const sink = new CopySink();
    const { rx, url } = await startHttp(sink);
    stops.push(() => rx.shutdown());
    const bodies = ['a', 'b', 'c', 'd'].map((t) => request(t, 1000)); // ≈ 260 KB each: several socket reads
    expect(bodies[0]!.length).toBeGreaterThan(200_000);
    for (const [i, body] of bodies.entries()) {
      const r = await httpRequest(url, { body, headers: { 'content-type': 'application/x-protobuf' }, chunked: i % 2 === 1 });
      expect(r.status).toBe(200);
    }
    // A body above MAX_POOLED takes the one-off path (exact size, not pooled) and is stored the same way.
    const large = taggedRequest('e', 2000, 200);
    expect(large.length).toBeGreaterThan(MAX_POOLED);
    expect((await httpRequest(url, { body: large, headers: { 'content-type': 'application/x-protobuf' } })).status).toBe(200);
    bodies.push(large);
    // The pool holds the joined bodies' memory for the next request (proof that the path was taken).
    expect(pooledBodyBytes()).toBeGreaterThanOrEqual(256 * 1024);
    expect(sink.got).toHaveLength(5);
    for (const [i, body] of bodies.entries()) {
      const want = decodeLogsProtobuf(Buffer.from(body), { maxNestingDepth: 32 });
      if (!want.ok) throw new Error(want.message);
      expect(sink.got[i]).toEqual(entryList(want.entries).map((e) => Buffer.from(e).toString('hex')));
    }
  });
});
