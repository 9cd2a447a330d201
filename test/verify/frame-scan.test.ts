/**
 * The verifier's fast path (src/verify/frame-scan.ts + native scanFrames) must find exactly what
 * the reference path finds (scan.ts scanSegment: SegmentParser frame by frame): same frames, same
 * first error (check, offset, frame, index, message), same roots at the probed sizes, same frontier,
 * trailer and digest — whatever the chunking and wherever the damage. And the native scanFrames
 * must behave byte for byte like its JS fallback (scanFramesJs), including the state it leaves.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainHash, leafHash } from '../../src/ledger/hash.js';
import { crc32c } from '../../src/ledger/crc32c.js';
import { Frontier } from '../../src/ledger/merkle.js';
import {
  SCAN_BAD_CHAIN,
  SCAN_BAD_CRC,
  SCAN_BAD_LENGTH,
  SCAN_FRONTIER_BYTES,
  SCAN_LIMIT,
  SCAN_NEED_MORE,
  SCAN_TRAILER,
  nativeScanFrames,
  scanFrames,
  scanFramesJs,
  scanFrontierBytes,
} from '../../src/ledger/native-hash.js';
import { SegmentScanner, scanSegmentFast } from '../../src/verify/frame-scan.js';
import { type SegmentScan, scanSegment } from '../../src/verify/scan.js';
import { buildLog, signer, tempDir } from './helpers.js';

type ScanFn = typeof scanFramesJs;
const ADDON = fileURLToPath(new URL('../../build/Release/sealtrail_hash.node', import.meta.url));
const addon = existsSync(ADDON) ? (createRequire(import.meta.url)(ADDON) as { scanFrames?: ScanFn }) : undefined;

/** Frames back to back (docs/format.md "Frames") continuing `chain`; returns the bytes. */
function frames(entries: Uint8Array[], chain: Uint8Array): Uint8Array {
  const out = new Uint8Array(entries.reduce((a, e) => a + 44 + e.length, 0));
  let off = 0;
  let c = chain;
  for (const e of entries) {
    c = chainHash(c, leafHash(e));
    const v = new DataView(out.buffer, off);
    v.setUint32(0, e.length);
    v.setUint32(4, ~e.length >>> 0);
    out.set(c, off + 8);
    out.set(e, off + 40);
    v.setUint32(40 + e.length, crc32c(out, off, off + 40 + e.length));
    off += 44 + e.length;
  }
  return out;
}

function runScan(fn: ScanFn, buf: Uint8Array, start: number, end: number, startSize: number, limit: number): string {
  const chain = new Uint8Array(32).fill(5);
  const f = Frontier.empty();
  for (let i = 0; i < startSize; i++) f.append(leafHash(Uint8Array.of(i & 0xff, i >> 8)));
  const fr = new Uint8Array(SCAN_FRONTIER_BYTES);
  fr.set(f.toBytes());
  const out = new Uint32Array(2);
  const st = fn(buf, start, end, chain, fr, limit, out);
  return JSON.stringify([st, [...out], Buffer.from(chain).toString('hex'), Buffer.from(scanFrontierBytes(fr)).toString('hex')]);
}

describe('scanFrames: native = JS fallback', () => {
  it('the native addon provides scanFrames whenever it is built', () => {
    expect(nativeScanFrames).toBe(addon?.scanFrames !== undefined && process.env.SEALTRAIL_NATIVE_HASH !== '0');
    if (addon) expect(typeof addon.scanFrames).toBe('function');
  });

  const impls: [string, ScanFn][] = [['js', scanFramesJs]];
  if (addon?.scanFrames) impls.push(['native', addon.scanFrames]);

  it('accepts good frames, updates chain and frontier, and stops at NEED_MORE / TRAILER / LIMIT', () => {
    const es = Array.from({ length: 9 }, (_, i) => new Uint8Array(i * 13).fill(i));
    const body = frames(es, new Uint8Array(32).fill(5));
    const withTrailer = new Uint8Array(body.length + 6);
    withTrailer.set(body);
    withTrailer.fill(0xff, body.length, body.length + 4);
    // Reference: the frontier after appending the leaves to a frontier of size 3.
    const ref = Frontier.empty();
    for (let i = 0; i < 3; i++) ref.append(leafHash(Uint8Array.of(i & 0xff, i >> 8)));
    for (const e of es) ref.append(leafHash(e));
    for (const [name, fn] of impls) {
      const all = JSON.parse(runScan(fn, body, 0, body.length, 3, -1)) as [number, number[], string, string];
      expect(all[0], name).toBe(SCAN_NEED_MORE);
      expect(all[1], name).toEqual([body.length, 9]);
      expect(all[3], name).toBe(Buffer.from(ref.toBytes()).toString('hex'));
      expect(JSON.parse(runScan(fn, withTrailer, 0, withTrailer.length, 3, -1))[0], name).toBe(SCAN_TRAILER);
      const lim = JSON.parse(runScan(fn, body, 0, body.length, 3, 7)) as [number, number[]];
      expect(lim[0], name).toBe(SCAN_LIMIT);
      expect(lim[1][1], name).toBe(4);
    }
  });

  it('names the first bad frame: length, CRC (before chain), chain — wherever it is', () => {
    // The native scan hashes frames two at a time (the second's chain checked against the first's
    // stored value), so every kind of damage is tried at every position: first or second of a
    // pair, and the last frame, which has no partner.
    const es = Array.from({ length: 5 }, (_, i) => new Uint8Array(20).fill(i));
    const body = frames(es, new Uint8Array(32).fill(5));
    const at = (k: number): number => k * 64; // 44 + 20 bytes per frame
    const cases: [string, (b: Uint8Array, k: number) => void, number][] = [
      ['length', (b, k) => (b[at(k) + 3]! ^= 1), SCAN_BAD_LENGTH],
      ['crc', (b, k) => (b[at(k) + 50]! ^= 1), SCAN_BAD_CRC],
      ['chain', (b, k) => {
        b[at(k) + 9]! ^= 1; // stored chain of frame k, CRC recomputed by the "attacker"
        new DataView(b.buffer).setUint32(at(k) + 60, crc32c(b, at(k), at(k) + 60));
      }, SCAN_BAD_CHAIN],
      ['entry', (b, k) => {
        b[at(k) + 45]! ^= 1; // entry byte of frame k, CRC recomputed: its leaf, so its chain, no longer match
        new DataView(b.buffer).setUint32(at(k) + 60, crc32c(b, at(k), at(k) + 60));
      }, SCAN_BAD_CHAIN],
    ];
    for (const [label, damage, status] of cases) {
      for (let k = 0; k < es.length; k++) {
        const b = body.slice();
        damage(b, k);
        for (const [name, fn] of impls) {
          for (const startSize of [0, 1]) {
            const r = JSON.parse(runScan(fn, b, 0, b.length, startSize, -1)) as [number, number[]];
            expect([r[0], r[1]], `${label} at frame ${k}, ${name}, start size ${startSize}`).toEqual([status, [at(k), k]]);
            // Stopping short of the damage (a limit) sees only good frames.
            const lim = JSON.parse(runScan(fn, b, 0, b.length, startSize, startSize + k)) as [number, number[]];
            expect([lim[0], lim[1]], `${label} at frame ${k}, ${name}, limit`).toEqual(k === 0 ? [status, [0, 0]] : [SCAN_LIMIT, [at(k), k]]);
          }
        }
      }
    }
  });

  it('a length above 1 GiB is bad, exactly 1 GiB only needs more bytes', () => {
    for (const [n, want] of [[2 ** 30 + 1, SCAN_BAD_LENGTH], [2 ** 30, SCAN_NEED_MORE]] as const) {
      const b = new Uint8Array(64);
      new DataView(b.buffer).setUint32(0, n);
      new DataView(b.buffer).setUint32(4, ~n >>> 0);
      for (const [name, fn] of impls) expect(JSON.parse(runScan(fn, b, 0, b.length, 0, -1))[0], name).toBe(want);
    }
  });

  it.skipIf(!addon?.scanFrames)('random frames, random damage, random ranges and limits: identical results and state', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 0, maxLength: 12 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { maxLength: 3 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: -1, max: 60 }),
        (es, flips, a, b, startSize, limit) => {
          const buf = frames(es, new Uint8Array(32).fill(5));
          for (const [pos, bit] of flips) if (buf.length > 0) buf[pos % buf.length]! ^= 1 << bit;
          const start = buf.length ? Math.min(a % (buf.length + 1), b % (buf.length + 1)) : 0;
          const end = buf.length ? Math.max(a % (buf.length + 1), b % (buf.length + 1)) : 0;
          expect(runScan(addon!.scanFrames!, buf, start, end, startSize, limit)).toBe(runScan(scanFramesJs, buf, start, end, startSize, limit));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects malformed arguments in both implementations', () => {
    for (const [, fn] of impls) {
      const fr = new Uint8Array(SCAN_FRONTIER_BYTES);
      expect(() => fn(new Uint8Array(8), 0, 9, new Uint8Array(32), fr, -1, new Uint32Array(2))).toThrow(RangeError);
      expect(() => fn(new Uint8Array(8), 0, 8, new Uint8Array(31), fr, -1, new Uint32Array(2))).toThrow(RangeError);
      expect(() => fn(new Uint8Array(8), 0, 8, new Uint8Array(32), new Uint8Array(100), -1, new Uint32Array(2))).toThrow(RangeError);
    }
  });
});

describe('SegmentScanner = scanSegment (SegmentParser) on real segments', () => {
  let dir: string;
  let seg: Uint8Array;
  let seg0: Uint8Array;
  let probes: number[];
  beforeAll(async () => {
    dir = await tempDir('sealtrail-framescan-');
    await buildLog({ dir, signer: signer(1), segments: 2, perSegment: 40 });
    const segs = path.join(dir, 'segments');
    seg0 = new Uint8Array(fs.readFileSync(path.join(segs, '0000000000000000.seg')));
    seg = new Uint8Array(fs.readFileSync(path.join(segs, '0000000000000001.seg')));
    probes = [40, 41, 55, 60, 79, 80, 81, 3];
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const plain = (s: SegmentScan): unknown => ({
    ...s,
    header: s.header ? { ...s.header, frontier: s.header.frontier.toBytes() } : undefined,
    frontier: s.frontier?.toBytes(),
    trailer: s.trailer ? { ...s.trailer, endFrontier: s.trailer.endFrontier.toBytes() } : undefined,
    rootsAt: [...s.rootsAt.entries()].sort((a, b) => a[0] - b[0]),
  });
  // Sources never yield empty chunks, and the reference reads the format version from the first
  // chunk only (the fast scanner from the first 10 bytes): so chunks are non-empty, the first ≥ 10 bytes.
  const chunked = (b: Uint8Array, cuts: number[]): Uint8Array[] => {
    const at = [...new Set(cuts.map((c) => (b.length ? c % (b.length + 1) : 0)))].filter((c) => c >= 10 && c < b.length).sort((x, y) => x - y);
    const out: Uint8Array[] = [];
    let prev = 0;
    for (const c of [...at, b.length]) {
      out.push(b.slice(prev, c));
      prev = c;
    }
    return out;
  };
  const both = async (b: Uint8Array, cuts: number[], probe: number[]): Promise<[unknown, unknown]> => {
    const ref = await scanSegment(chunked(b, cuts), { probeSizes: new Set(probe), digest: true });
    // The fast scanner gets chunks in ONE reused buffer, overwritten after each push (as the pool
    // does) — a Buffer, whose slice() would alias it if the scanner did not guard against that.
    const reuse = Buffer.alloc(b.length + 1);
    const s = new SegmentScanner({ probeSizes: probe, digest: true });
    for (const c of chunked(b, cuts)) {
      reuse.set(c);
      s.push(reuse.subarray(0, c.length));
      reuse.fill(0xee);
    }
    return [plain(s.end()), plain(ref)];
  };

  it('an intact segment, whole and in one-byte-to-many-byte chunks', async () => {
    for (const b of [seg0, seg]) {
      const [fast, ref] = await both(b, [], probes);
      expect(fast).toEqual(ref);
      expect((fast as { error: unknown }).error).toBeUndefined();
      expect(plain(await scanSegmentFast([b], { probeSizes: probes, digest: true }))).toEqual(ref);
    }
    const every = Array.from({ length: seg.length }, (_, i) => i);
    const [fast, ref] = await both(seg, every, probes);
    expect(fast).toEqual(ref);
  });

  it('random bit flips, truncations, appended bytes and chunkings give the same scan', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { maxLength: 2 }),
        fc.option(fc.nat(), { nil: undefined }),
        fc.uint8Array({ maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.subarray(probes),
        async (flips, cut, extra, cuts, probe) => {
          let b: Uint8Array = seg.slice();
          for (const [pos, bit] of flips) b[pos % b.length]! ^= 1 << bit;
          if (cut !== undefined) b = b.subarray(0, cut % (b.length + 1));
          if (extra.length) b = Uint8Array.from([...b, ...extra]);
          const [fast, ref] = await both(b, cuts, probe);
          expect(fast).toEqual(ref);
        },
      ),
      { numRuns: Number(process.env.FRAME_SCAN_RUNS ?? 250) },
    );
  });

  it('a frame whose chain was recomputed without the rest (forged insert) fails at the same frame', async () => {
    // Damage the stored chain of frame 7 and fix its CRC: the chain check, not the CRC, must catch it.
    const b = seg.slice();
    const { SegmentParser } = await import('../../src/ledger/segment-format.js');
    const f7 = new SegmentParser().push(seg).find((i) => i.kind === 'frame' && i.frame === 7)!;
    b[f7.offset + 8]! ^= 0x80;
    const n = f7.length - 44;
    new DataView(b.buffer).setUint32(f7.offset + 40 + n, crc32c(b, f7.offset, f7.offset + 40 + n));
    const [fast, ref] = await both(b, [f7.offset + 20], probes);
    expect(fast).toEqual(ref);
    expect((fast as { error: { check: string; frame: number } }).error).toMatchObject({ check: 'chain', frame: 7 });
  });
});

describe('scanFrames wrapper', () => {
  it('is the native function when loaded, else the JS one, with the same answer', () => {
    const body = frames([new Uint8Array(3)], new Uint8Array(32).fill(5));
    expect(runScan(scanFrames, body, 0, body.length, 0, -1)).toBe(runScan(scanFramesJs, body, 0, body.length, 0, -1));
  });
});
