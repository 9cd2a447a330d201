import * as nodeCrypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EMPTY_ROOT, chainHash, chainSeed, fromHex, hashEqual, leafHash, nodeHash, sha256, toHex } from '../../src/ledger/hash.js';

const ref = (...parts: Uint8Array[]) => new Uint8Array(nodeCrypto.createHash('sha256').update(Buffer.concat(parts)).digest());
const V = JSON.parse(readFileSync(new URL('../vectors/chain.json', import.meta.url), 'utf8')) as {
  origin: string;
  seed: string;
  entries: { entry: string; leaf: string; chain: string }[];
};

describe('hash.ts against node:crypto createHash (an independent code path)', () => {
  it('chain vectors (test/vectors/chain.json)', () => {
    const seed = chainSeed(V.origin);
    expect(toHex(seed)).toBe(V.seed);
    expect(toHex(seed)).toBe(toHex(ref(new Uint8Array([0x02]), new TextEncoder().encode(`sealtrail-chain-v1\n${V.origin}`))));
    let prev = seed;
    for (const e of V.entries) {
      const leaf = leafHash(fromHex(e.entry));
      expect(toHex(leaf)).toBe(e.leaf);
      prev = chainHash(prev, leaf);
      expect(toHex(prev)).toBe(e.chain);
    }
  });

  it('leaf, node and chain hashes for random inputs, including entries larger than the scratch buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 10_000 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (e, a, b) => {
        expect(toHex(leafHash(e))).toBe(toHex(ref(new Uint8Array([0]), e)));
        expect(toHex(nodeHash(a, b))).toBe(toHex(ref(new Uint8Array([1]), a, b)));
        expect(toHex(chainHash(a, b))).toBe(toHex(ref(a, b)));
        expect(toHex(sha256(e))).toBe(toHex(ref(e)));
      }),
      { numRuns: 300 },
    );
    const big = nodeCrypto.randomBytes(1 << 20);
    expect(toHex(leafHash(big))).toBe(toHex(ref(new Uint8Array([0]), big)));
  });

  it('results are fresh arrays (the reused scratch buffer never leaks)', () => {
    const a = leafHash(new Uint8Array([1]));
    const copy = toHex(a);
    leafHash(new Uint8Array(5000).fill(9));
    nodeHash(a, a);
    expect(toHex(a)).toBe(copy);
  });

  it('the seed depends on the origin; inputs are checked', () => {
    expect(hashEqual(chainSeed('a.example/x'), chainSeed('a.example/y'))).toBe(false);
    expect(toHex(EMPTY_ROOT)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(() => nodeHash(new Uint8Array(31), new Uint8Array(32))).toThrow(RangeError);
    expect(() => chainHash(new Uint8Array(32), new Uint8Array(33))).toThrow(RangeError);
    expect(() => fromHex('abc')).toThrow(RangeError);
    expect(() => fromHex('zz')).toThrow(RangeError);
  });
});
