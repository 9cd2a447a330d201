/**
 * The native batch-hashing addon (native/sealtrail_hash.c via src/ledger/native-hash.ts) must give
 * byte-identical results to src/ledger/hash.ts and merkle.ts, and the fallback must be the same
 * code path the ledger used before the addon. The addon is compared directly (loaded here with
 * createRequire), so these tests fail if it is built but wrong — the self-check in native-hash.ts
 * would otherwise silently hide a bad build behind the fallback.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { chainHash, chainSeed, fromHex, leafHash, toHex } from '../../src/ledger/hash.js';
import { Frontier, merkleRoot, rootFromFrontier } from '../../src/ledger/merkle.js';
import {
  frontierAppend,
  frontierAppendJs,
  leafChainBatch,
  leafChainBatchJs,
  nativeHashLoaded,
  nativeHashStatus,
} from '../../src/ledger/native-hash.js';
import { crc32c, crc32cUpdate } from '../../src/ledger/crc32c.js';
import { FRAME_OVERHEAD, SegmentFormatError, SegmentParser, encodeHeader, finishFrame, finishFrames, writeFrame } from '../../src/ledger/segment-format.js';

type BatchFn = typeof leafChainBatchJs;
type FrontierFn = typeof frontierAppendJs;
const ADDON = fileURLToPath(new URL('../../build/Release/sealtrail_hash.node', import.meta.url));
const built = existsSync(ADDON);
const addon = built
  ? (createRequire(import.meta.url)(ADDON) as {
      leafChainBatch: BatchFn;
      frontierAppend: FrontierFn;
      frameBatch: BatchFn;
      crc32c: (data: Uint8Array, start: number, end: number, crc: number) => number;
      shaImpl: () => string;
    })
  : undefined;

// Both implementations run through every check below; the native one only where it was built
// (`npm ci` builds it; a machine without a compiler uses the fallback and skips only its rows).
const impls: [string, BatchFn, FrontierFn][] = [['js', leafChainBatchJs, frontierAppendJs]];
if (addon) impls.push(['native', addon.leafChainBatch, addon.frontierAppend]);

const V = JSON.parse(readFileSync(new URL('../vectors/chain.json', import.meta.url), 'utf8')) as {
  origin: string;
  entries: { entry: string; leaf: string; chain: string }[];
};

/** Entries laid out in one buffer with `gap` bytes of noise before each, as spans. */
function layout(entries: Uint8Array[], gap: number): { data: Uint8Array; spans: Uint32Array } {
  const data = new Uint8Array(entries.reduce((s, e) => s + e.length + gap, 0)).fill(0xa5);
  const spans = new Uint32Array(2 * entries.length);
  let off = 0;
  entries.forEach((e, i) => {
    off += gap;
    data.set(e, off);
    spans[2 * i] = off;
    spans[2 * i + 1] = off + e.length;
    off += e.length;
  });
  return { data, spans };
}

describe('native batch hashing', () => {
  it('loads the addon whenever it was built', () => {
    expect(nativeHashLoaded, nativeHashStatus).toBe(built && process.env.SEALTRAIL_NATIVE_HASH !== '0');
  });

  for (const [name, batch, append] of impls) {
    it(`${name}: chain vectors (test/vectors/chain.json) in one batch`, () => {
      const entries = V.entries.map((e) => fromHex(e.entry));
      const { data, spans } = layout(entries, 3);
      const leaves = new Uint8Array(32 * entries.length);
      const chains = new Uint8Array(32 * entries.length);
      batch(data, spans, chainSeed(V.origin), leaves, chains);
      V.entries.forEach((e, i) => {
        expect(toHex(leaves.subarray(32 * i, 32 * i + 32))).toBe(e.leaf);
        expect(toHex(chains.subarray(32 * i, 32 * i + 32))).toBe(e.chain);
      });
      const f = Frontier.fromBytes(append(Frontier.empty().toBytes(), leaves));
      expect(toHex(f.root())).toBe(toHex(merkleRoot(V.entries.map((e) => fromHex(e.leaf)))));
    });

    it(`${name}: random batches equal leafHash/chainHash one by one`, () => {
      fc.assert(
        fc.property(
          fc.array(fc.uint8Array({ maxLength: 600, size: 'max' }), { maxLength: 40 }),
          fc.uint8Array({ minLength: 32, maxLength: 32 }),
          fc.nat({ max: 5 }),
          (entries, prev, gap) => {
            const { data, spans } = layout(entries, gap);
            const leaves = new Uint8Array(32 * entries.length);
            const chains = new Uint8Array(32 * entries.length);
            batch(data, spans, prev, leaves, chains);
            let chain: Uint8Array = prev;
            entries.forEach((e, i) => {
              const leaf = leafHash(e);
              chain = chainHash(chain, leaf);
              expect(toHex(leaves.subarray(32 * i, 32 * i + 32))).toBe(toHex(leaf));
              expect(toHex(chains.subarray(32 * i, 32 * i + 32))).toBe(toHex(chain));
            });
          },
        ),
        { numRuns: 300 },
      );
    });

    /** Appends `added` leaves in one call to a frontier of `before`; checks it against one-by-one appends. */
    function appendChecked(before: number, added: number, seed: number): { got: Uint8Array; leafAt: (i: number) => Uint8Array } {
      const leafAt = (i: number) => leafHash(Uint8Array.of(seed & 0xff, i & 0xff, i >>> 8));
      const f = Frontier.empty();
      for (let i = 0; i < before; i++) f.append(leafAt(i));
      const leaves = new Uint8Array(32 * added);
      for (let i = 0; i < added; i++) leaves.set(leafAt(before + i), 32 * i);
      const got = append(f.toBytes(), leaves);
      for (let i = 0; i < added; i++) f.append(leafAt(before + i));
      expect(toHex(got)).toBe(toHex(f.toBytes()));
      return { got, leafAt };
    }

    it(`${name}: frontier append equals Frontier.append for any start size`, () => {
      fc.assert(
        fc.property(fc.nat({ max: 300 }), fc.nat({ max: 300 }), fc.integer(), (before, added, seed) => {
          const { got, leafAt } = appendChecked(before, added, seed);
          const all = Array.from({ length: before + added }, (_, i) => leafAt(i));
          expect(toHex(rootFromFrontier(got))).toBe(toHex(merkleRoot(all)));
        }),
        { numRuns: 200 },
      );
      // Batches as large as the ledger's group commits (thousands of leaves), from any start size.
      fc.assert(
        fc.property(fc.nat({ max: 5000 }), fc.integer({ min: 1, max: 2500 }), fc.integer(), (before, added, seed) => void appendChecked(before, added, seed)),
        { numRuns: 40 },
      );
    });

    it(`${name}: refuses bad input with a RangeError naming it`, () => {
      const out = new Uint8Array(64);
      expect(() => batch(new Uint8Array(4), Uint32Array.of(0, 4), new Uint8Array(31), out, out)).toThrow(/prevChain/);
      expect(() => batch(new Uint8Array(4), Uint32Array.of(0, 5), new Uint8Array(32), out, out)).toThrow(/span/);
      expect(() => batch(new Uint8Array(4), Uint32Array.of(0, 4, 0, 4, 0, 4), new Uint8Array(32), out, out)).toThrow(/32 bytes per entry/);
      expect(() => append(new Uint8Array(8), new Uint8Array(31))).toThrow(RangeError);
      expect(() => append(Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 1), new Uint8Array(32))).toThrow(RangeError); // size 1 needs one root
    });
  }

  it('finishFrame after in-place batch hashing writes the same frames as writeFrame', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 400 }), { minLength: 1, maxLength: 20 }), (entries) => {
        const total = entries.reduce((s, e) => s + 44 + e.length, 0);
        const want = new Uint8Array(total);
        let chain = chainSeed('sealtrail.test/native');
        let off = 0;
        for (const e of entries) {
          const r = writeFrame(want, off, e, chain);
          chain = r.chain;
          off += r.length;
        }
        // the ledger's native path: place entries at frame offset + 40, hash in place, finish frames
        const got = new Uint8Array(total);
        const spans = new Uint32Array(2 * entries.length);
        off = 0;
        entries.forEach((e, i) => {
          got.set(e, off + 40);
          spans[2 * i] = off + 40;
          spans[2 * i + 1] = off + 40 + e.length;
          off += 44 + e.length;
        });
        const leaves = new Uint8Array(32 * entries.length);
        const chains = new Uint8Array(32 * entries.length);
        leafChainBatch(got, spans, chainSeed('sealtrail.test/native'), leaves, chains);
        off = 0;
        entries.forEach((e, i) => {
          off += finishFrame(got, off, e.length, chains.subarray(32 * i, 32 * i + 32));
        });
        expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  /** Frames of `entries` as writeFrame writes them, and the same buffer with only the entries placed. */
  function framesAndPlaced(entries: Uint8Array[]) {
    const total = entries.reduce((s, e) => s + 44 + e.length, 0);
    const want = new Uint8Array(total);
    const placed = new Uint8Array(total).fill(0x5a); // junk where len, ~len, chain and CRC go
    const spans = new Uint32Array(2 * entries.length);
    const wantLeaves: Uint8Array[] = [];
    let chain = chainSeed('sealtrail.test/native');
    let off = 0;
    entries.forEach((e, i) => {
      const r = writeFrame(want, off, e, chain);
      chain = r.chain;
      wantLeaves.push(r.leaf);
      placed.set(e, off + 40);
      spans[2 * i] = off + 40;
      spans[2 * i + 1] = off + 40 + e.length;
      off += r.length;
    });
    return { want, placed, spans, wantLeaves, lastChain: chain };
  }

  const frameImpls: [string, BatchFn][] = [['finishFrames (addon if loaded)', finishFrames]];
  if (addon) frameImpls.push(['native frameBatch', addon.frameBatch]);
  for (const [name, fn] of frameImpls) {
    it(`${name} writes the same frames, leaves and chains as writeFrame`, () => {
      fc.assert(
        fc.property(fc.array(fc.uint8Array({ maxLength: 700, size: 'max' }), { minLength: 1, maxLength: 20 }), (entries) => {
          const { want, placed, spans, wantLeaves, lastChain } = framesAndPlaced(entries);
          const leaves = new Uint8Array(32 * entries.length);
          const chains = new Uint8Array(32 * entries.length);
          fn(placed, spans, chainSeed('sealtrail.test/native'), leaves, chains);
          expect(Buffer.from(placed).equals(Buffer.from(want))).toBe(true);
          wantLeaves.forEach((l, i) => expect(toHex(leaves.subarray(32 * i, 32 * i + 32))).toBe(toHex(l)));
          expect(toHex(chains.subarray(-32))).toBe(toHex(lastChain));
        }),
        { numRuns: 100 },
      );
    });

    it(`${name} refuses a span that leaves no room for its frame header or CRC`, () => {
      const buf = new Uint8Array(100);
      const out = () => [new Uint8Array(32), new Uint8Array(32)] as const;
      expect(() => fn(buf, Uint32Array.of(39, 50), new Uint8Array(32), ...out())).toThrow(RangeError); // no room for len/~len/chain
      expect(() => fn(buf, Uint32Array.of(40, 97), new Uint8Array(32), ...out())).toThrow(RangeError); // no room for the CRC
      expect(() => fn(buf, Uint32Array.of(40, 96), new Uint8Array(31), ...out())).toThrow(RangeError); // bad prevChain
    });
  }

  it.runIf(addon !== undefined)('native crc32c equals the JS CRC-32C at every length and alignment, continuing a previous CRC', () => {
    // runIf: without a compiler the addon is not built; the JS CRC has its own vectors (crc32c.test.ts).
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 0xffffffff }), (data, a, b, init) => {
        const s = data.length === 0 ? 0 : a % data.length;
        const e = s + (data.length === 0 ? 0 : b % (data.length - s + 1));
        expect(addon!.crc32c(data, s, e, init)).toBe(crc32cUpdate(init, data, s, e));
      }),
      { numRuns: 300 },
    );
    // RFC 3720 Appendix B.4: 32 bytes of zeros -> 0x8A9136AA
    expect(addon!.crc32c(new Uint8Array(32), 0, 32, 0)).toBe(0x8a9136aa);
    expect(() => addon!.crc32c(new Uint8Array(4), 2, 5, 0)).toThrow(RangeError);
  });

  it('SegmentParser (leaf and chain hashed per chunk in one batch) reports the FIRST bad chain, after the good frames, before a later CRC error', () => {
    const origin = 'sealtrail.test/native';
    const entries = Array.from({ length: 8 }, (_, i) => new TextEncoder().encode(`entry ${i}`));
    const header = encodeHeader({ seq: 0, firstIndex: 0, createdMs: 1, origin, prevCheckpointHash: new Uint8Array(32), chainPrev: chainSeed(origin), frontier: Frontier.empty() });
    const file = new Uint8Array(header.length + entries.reduce((s, e) => s + FRAME_OVERHEAD + e.length, 0));
    file.set(header);
    let off = header.length;
    let chain = chainSeed(origin);
    const offsets: number[] = [];
    for (const e of entries) {
      offsets.push(off);
      const r = writeFrame(file, off, e, chain);
      chain = r.chain;
      off += r.length;
    }
    const resealCrc = (o: number, n: number) => {
      const crc = crc32c(file, o, o + 40 + n);
      file.set([crc >>> 24, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff], o + 40 + n);
    };
    file[offsets[3]! + 20]! ^= 1; // frame 3: wrong chain value with a valid CRC (only the chain check sees it)
    resealCrc(offsets[3]!, entries[3]!.length);
    file[offsets[5]! + 45]! ^= 1; // frame 5: CRC error, later in the same chunk
    const p = new SegmentParser();
    const items = p.push(file);
    expect(items.map((it) => it.kind)).toEqual(['header', 'frame', 'frame', 'frame']);
    items.slice(1).forEach((it, i) => {
      if (it.kind === 'frame') expect(toHex(it.leaf)).toBe(toHex(leafHash(entries[i]!)));
    });
    let err: unknown;
    try {
      p.end();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SegmentFormatError);
    expect((err as SegmentFormatError).check).toBe('chain');
    expect((err as SegmentFormatError).frame).toBe(3);
    expect((err as SegmentFormatError).offset).toBe(offsets[3]! + 8);
  });

  // native/sha256_ni.h: with the x86 SHA extensions the addon hashes two leaves at once and the
  // chain without OpenSSL. Two entries of a pair can need different numbers of SHA-256 blocks (the
  // longer one finishes alone) and each message's first and last blocks are assembled apart from the
  // entry, so every length across several block boundaries is paired with its neighbours here.
  const cpuHasSha = /^flags\s*:.*\bsha_ni\b/m.test(existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '');
  it.runIf(addon !== undefined)('uses its SHA-NI code exactly when the CPU has the SHA extensions', () => {
    // runIf: without a compiler there is no addon to ask.
    expect(addon!.shaImpl()).toBe(cpuHasSha && process.env.SEALTRAIL_SHA_NI !== '0' ? 'sha-ni' : 'openssl');
  });

  it.runIf(addon !== undefined)('native leafChainBatch and frameBatch equal hash.ts for every entry length 0..300, each paired with its neighbours', () => {
    const lengths = Array.from({ length: 301 }, (_, i) => i);
    const orders = [lengths, lengths.slice(1), [...lengths].reverse(), lengths.map((n, i) => (i % 2 ? 300 - n : n))];
    for (const order of orders) {
      const entries = order.map((n) => new Uint8Array(n).map((_, j) => (j * 7 + n) & 0xff));
      const prev = chainSeed('sealtrail.test/sha-ni');
      const wantLeaves = entries.map((e) => leafHash(e));
      const wantChains: Uint8Array[] = [];
      wantLeaves.reduce<Uint8Array>((c, l) => (wantChains.push(chainHash(c, l)), wantChains.at(-1)!), prev);
      const { data, spans } = layout(entries, 1);
      const leaves = new Uint8Array(32 * entries.length);
      const chains = new Uint8Array(32 * entries.length);
      addon!.leafChainBatch(data, spans, prev, leaves, chains);
      entries.forEach((e, i) => {
        expect(toHex(leaves.subarray(32 * i, 32 * i + 32)), `leaf of a ${e.length}-byte entry`).toBe(toHex(wantLeaves[i]!));
        expect(toHex(chains.subarray(32 * i, 32 * i + 32)), `chain after a ${e.length}-byte entry`).toBe(toHex(wantChains[i]!));
      });
      const f = framesAndPlaced(entries);
      addon!.frameBatch(f.placed, f.spans, chainSeed('sealtrail.test/native'), new Uint8Array(leaves.length), new Uint8Array(chains.length));
      expect(Buffer.from(f.placed).equals(Buffer.from(f.want))).toBe(true);
    }
  });

  it.runIf(addon !== undefined)('SEALTRAIL_SHA_NI=0 makes the addon use OpenSSL, with the same leaves, chains and Merkle frontier', () => {
    const script = `
      const a = require(${JSON.stringify(ADDON)});
      const n = 70, spans = new Uint32Array(2 * n), data = new Uint8Array(n * 300);
      for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
      for (let i = 0; i < n; i++) { spans[2 * i] = 300 * i; spans[2 * i + 1] = 300 * i + ((i * 37) % 300); }
      const l = new Uint8Array(32 * n), c = new Uint8Array(32 * n);
      a.leafChainBatch(data, spans, new Uint8Array(32).fill(1), l, c);
      const f = a.frontierAppend(new Uint8Array(8), l);
      console.log(a.shaImpl() + ' ' + Buffer.from(l).toString('hex') + Buffer.from(c).toString('hex') + Buffer.from(f).toString('hex'));`;
    const run = (env: string | undefined) =>
      execFileSync(process.execPath, ['-e', script], { env: { ...process.env, SEALTRAIL_SHA_NI: env }, encoding: 'utf8' }).trim().split(' ');
    const [offImpl, offHex] = run('0');
    const [onImpl, onHex] = run('1');
    expect(offImpl).toBe('openssl');
    expect(onImpl).toBe(cpuHasSha ? 'sha-ni' : 'openssl');
    expect(onHex).toBe(offHex);
  });

  it('SEALTRAIL_NATIVE_HASH=0 selects the node:crypto fallback, with the same results', async () => {
    vi.stubEnv('SEALTRAIL_NATIVE_HASH', '0');
    vi.resetModules();
    try {
      const m = await import('../../src/ledger/native-hash.js');
      expect(m.nativeHashLoaded).toBe(false);
      expect(m.nativeHashStatus).toMatch(/SEALTRAIL_NATIVE_HASH=0/);
      const data = new TextEncoder().encode('fallback');
      const a = [new Uint8Array(32), new Uint8Array(32)] as const;
      const b = [new Uint8Array(32), new Uint8Array(32)] as const;
      m.leafChainBatch(data, Uint32Array.of(0, data.length), new Uint8Array(32), a[0], a[1]);
      leafChainBatch(data, Uint32Array.of(0, data.length), new Uint8Array(32), b[0], b[1]);
      expect(toHex(a[1])).toBe(toHex(b[1]));
      expect(toHex(m.frontierAppend(new Uint8Array(8), a[0]))).toBe(toHex(frontierAppend(new Uint8Array(8), b[0])));
      // finishFrames' JS route (leafChainBatchJs + finishFrame) writes the same frames as writeFrame
      const sf = await import('../../src/ledger/segment-format.js');
      const entries = [new TextEncoder().encode('one'), new Uint8Array(0), new Uint8Array(333).fill(9)];
      const { want, placed, spans } = framesAndPlaced(entries);
      sf.finishFrames(placed, spans, chainSeed('sealtrail.test/native'), new Uint8Array(96), new Uint8Array(96));
      expect(Buffer.from(placed).equals(Buffer.from(want))).toBe(true);
    } finally {
      vi.unstubAllEnvs();
      vi.resetModules();
    }
  });
});
