/**
 * The addon's entry assembly (assembleEntries in native/sealtrail_hash.c, used by EntryAssembler in
 * src/otlp/wire.ts for framed entries) must write exactly the bytes of the JS code: an entry is what
 * the ledger hashes and signs, so one different byte would be a different log. Compared here on
 * generated head fields, record lengths around the varint boundaries and arbitrary sub-ranges, both
 * by calling the addon directly and through EntryAssembler.buildAll (Uint32Array ranges take the
 * native path, plain arrays the JS one). The decoder suites (fastpath.test.ts against the frozen
 * reference decoder) run with it on as well.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nativeAssembleEntries } from '../../src/ledger/native-hash.js';
import { FRAME_HEAD_ROOM, FRAME_TAIL_ROOM, FramedEntries } from '../../src/ledger/types.js';
import { EMPTY, EntryAssembler, lenField, nativeEntryAssembly } from '../../src/otlp/wire.js';

const RUNS = Number(process.env.FC_RUNS ?? 300);
const native = nativeAssembleEntries;

/** A head field: absent, or a length-delimited field of 0–300 bytes (one- and two-byte lengths). */
const field = (n: number): fc.Arbitrary<Uint8Array> =>
  fc.oneof(fc.constant(EMPTY), fc.uint8Array({ minLength: 0, maxLength: 300 }).map((p) => lenField(n, p)));

/** Record lengths, weighted to the varint boundaries 127/128 and 16383/16384. */
const recLen = fc.oneof(fc.integer({ min: 0, max: 400 }), fc.constantFrom(0, 1, 127, 128, 129, 16_383, 16_384, 16_385));

const input = fc.record({
  res: field(1),
  rl: field(3),
  scope: field(1),
  sl: field(3),
  lens: fc.array(recLen, { minLength: 1, maxLength: 40 }),
  gaps: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 40, maxLength: 40 }),
  seed: fc.integer({ min: 0, max: 255 }),
});

/** src with the records laid out at the given lengths and gaps; ranges [s0, e0, s1, e1, …]. */
function layout(lens: number[], gaps: number[], seed: number): { src: Uint8Array; ranges: number[] } {
  const ranges: number[] = [];
  let at = 0;
  lens.forEach((len, i) => {
    at += gaps[i]!;
    ranges.push(at, at + len);
    at += len;
  });
  const src = Uint8Array.from({ length: at + 3 }, (_, i) => (i * 131 + seed) & 0xff);
  return { src, ranges };
}

function totalOf(asm: EntryAssembler, ranges: ArrayLike<number>): number {
  let t = 0;
  for (let k = 0; k < ranges.length; k += 2) t += asm.size(ranges[k + 1]! - ranges[k]!);
  return t;
}

// The addon is built by `npm ci` (scripts/build-native.mjs); without it EntryAssembler's JS code builds every entry.
describe.skipIf(native === undefined)('native entry assembly', () => {
  it('is in use: the addon has it and it agreed with the JS code at load', () => {
    expect(nativeEntryAssembly).toBe(true);
  });

  it('writes the same entries as the JS code, framed one after another with the frame room between', () => {
    fc.assert(
      fc.property(input, fc.nat(), fc.nat(), ({ res, rl, scope, sl, lens, gaps, seed }, a, b) => {
        const { src, ranges } = layout(lens, gaps, seed);
        const asm = new EntryAssembler(res, rl, scope, sl);
        const js = new FramedEntries();
        asm.buildAll(src, ranges, ranges.length, totalOf(asm, ranges), js);
        const want = js.toArray();
        // A sub-range k0..k1 of the records, as buildChunk passes them.
        const n = ranges.length / 2;
        const i0 = a % n;
        const i1 = i0 + 1 + (b % (n - i0));
        const k0 = 2 * i0;
        const k1 = 2 * i1;
        const room = FRAME_HEAD_ROOM + FRAME_TAIL_ROOM;
        let size = 0;
        for (let k = k0; k < k1; k += 2) size += asm.size(ranges[k + 1]! - ranges[k]!) + room;
        const out = new Uint8Array(size + 5);
        const spans = new Uint32Array(k1 - k0);
        const used = native!(out, src, Uint32Array.from(ranges), k0, k1, res, scope, sl, rl, FRAME_HEAD_ROOM, FRAME_TAIL_ROOM, spans);
        expect(used).toBe(size);
        let at = 0;
        for (let i = i0; i < i1; i++) {
          const s = spans[2 * (i - i0)]!;
          const e = spans[2 * (i - i0) + 1]!;
          expect(s).toBe(at + FRAME_HEAD_ROOM);
          expect(Buffer.compare(out.subarray(s, e), want[i]!)).toBe(0);
          at = e + FRAME_TAIL_ROOM;
        }
        expect([...out.subarray(size)]).toEqual([0, 0, 0, 0, 0]); // nothing written past what it reported
      }),
      { numRuns: RUNS },
    );
  });

  it('through EntryAssembler.buildAll: Uint32Array ranges (native) give the entries and runs of plain ones (JS)', () => {
    fc.assert(
      fc.property(input, ({ res, rl, scope, sl, lens, gaps, seed }) => {
        const { src, ranges } = layout(lens, gaps, seed);
        const asm = new EntryAssembler(res, rl, scope, sl);
        const total = totalOf(asm, ranges);
        const js = new FramedEntries();
        asm.buildAll(src, ranges, ranges.length, total, js);
        const nat = new FramedEntries();
        asm.buildAll(src, Uint32Array.from(ranges), ranges.length, total, nat);
        expect(nat.count).toBe(js.count);
        expect(nat.entryBytes).toBe(js.entryBytes);
        expect(nat.runs.map((r) => r.length)).toEqual(js.runs.map((r) => r.length));
        expect(nat.spans.map((s) => [...s])).toEqual(js.spans.map((s) => [...s]));
        expect(nat.toArray().map((e) => Buffer.from(e).toString('hex'))).toEqual(js.toArray().map((e) => Buffer.from(e).toString('hex')));
      }),
      { numRuns: RUNS },
    );
  });

  it('refuses, without writing past out, a range outside src, an out too small and bad arguments', () => {
    const src = new Uint8Array(100).fill(7);
    const spans = new Uint32Array(2);
    const call = (out: Uint8Array, ranges: Uint32Array, k1 = 2, sp = spans): number =>
      native!(out, src, ranges, 0, k1, EMPTY, EMPTY, EMPTY, EMPTY, FRAME_HEAD_ROOM, FRAME_TAIL_ROOM, sp);
    const room = FRAME_HEAD_ROOM + FRAME_TAIL_ROOM;
    const fits = new Uint8Array(room + 1 + 1 + 1 + 1 + 50); // 0x12 len(SL) 0x12 len(rec) rec
    expect(call(fits, Uint32Array.of(10, 60))).toBe(fits.length);
    expect(() => call(fits, Uint32Array.of(60, 101))).toThrow(/record range outside src/);
    expect(() => call(fits, Uint32Array.of(60, 50))).toThrow(/record range outside src/);
    const short = new Uint8Array(fits.length - 1);
    expect(() => call(short, Uint32Array.of(10, 60))).toThrow(/out too small/);
    expect(short.every((x) => x === 0)).toBe(true);
    expect(() => call(fits, Uint32Array.of(10, 60, 70), 3)).toThrow(/even-length range/);
    expect(() => call(fits, Uint32Array.of(10, 60), 4)).toThrow(/even-length range/);
    expect(() => call(fits, Uint32Array.of(10, 60), 2, new Uint32Array(1))).toThrow(/spans must be/);
  });
});
