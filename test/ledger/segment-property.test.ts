/**
 * Property tests (fast-check) for the pure segment format: any entries, any start index, any chunking
 * parse back to exactly what was written; any single bit flip anywhere in a sealed segment is
 * caught by the parser alone (CRCs, length complement, chain), before keys or Merkle work.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chainSeed, leafHash, sha256 } from '../../src/ledger/hash.js';
import { Frontier } from '../../src/ledger/merkle.js';
import {
  FRAME_OVERHEAD,
  SegmentFormatError,
  SegmentParser,
  encodeHeader,
  encodeTrailer,
  parseSegment,
  writeFrame,
} from '../../src/ledger/segment-format.js';

const ORIGIN = 'sealtrail.test/property';

function buildSegment(firstIndex: number, entries: Uint8Array[]): Uint8Array {
  const frontier = Frontier.empty();
  for (let i = 0; i < firstIndex; i++) frontier.append(sha256(Uint8Array.of(i & 0xff, i >> 8)));
  let chain = firstIndex === 0 ? chainSeed(ORIGIN) : sha256(Uint8Array.of(firstIndex & 0xff));
  const header = encodeHeader({ seq: 3, firstIndex, createdMs: 1, origin: ORIGIN, prevCheckpointHash: new Uint8Array(32), chainPrev: chain, frontier });
  const frames = new Uint8Array(entries.reduce((n, e) => n + FRAME_OVERHEAD + e.length, 0));
  let off = 0;
  for (const e of entries) {
    const r = writeFrame(frames, off, e, chain);
    chain = r.chain;
    frontier.append(r.leaf);
    off += r.length;
  }
  const trailer = encodeTrailer(
    { count: entries.length, chainLast: chain, endFrontier: frontier, checkpoint: new TextEncoder().encode('not a real note\n') },
    header.length + frames.length,
  );
  const out = new Uint8Array(header.length + frames.length + trailer.length);
  out.set(header, 0);
  out.set(frames, header.length);
  out.set(trailer, header.length + frames.length);
  return out;
}

const entriesArb = fc.array(fc.uint8Array({ minLength: 0, maxLength: 300 }), { maxLength: 12 });

describe('segment format properties', () => {
  it('round trip for any entries, start index and chunking', () => {
    fc.assert(
      fc.property(entriesArb, fc.integer({ min: 0, max: 70 }), fc.integer({ min: 1, max: 97 }), (entries, first, chunk) => {
        const file = buildSegment(first, entries);
        const p = new SegmentParser();
        const got: Uint8Array[] = [];
        const leaves: Uint8Array[] = [];
        for (let o = 0; o < file.length; o += chunk) {
          for (const it of p.push(file.slice(o, o + chunk))) {
            if (it.kind === 'frame') {
              expect(it.index).toBe(first + got.length);
              got.push(it.entry.slice());
              leaves.push(it.leaf);
            }
          }
        }
        p.end();
        expect(got.map((e) => Buffer.from(e).toString('hex'))).toEqual(entries.map((e) => Buffer.from(e).toString('hex')));
        leaves.forEach((l, i) => expect(Buffer.from(l).equals(leafHash(entries[i]!))).toBe(true));
      }),
      { numRuns: 200 },
    );
  });

  it('any single bit flip anywhere in a sealed segment is detected by the parser', () => {
    fc.assert(
      fc.property(entriesArb, fc.integer({ min: 0, max: 40 }), fc.nat(), fc.integer({ min: 0, max: 7 }), (entries, first, pos, bit) => {
        const file = buildSegment(first, entries);
        const at = pos % file.length;
        file[at] = file[at]! ^ (1 << bit);
        let err: unknown;
        try {
          parseSegment(file);
        } catch (e) {
          err = e;
        }
        expect(err, `flip of bit ${bit} at ${at}`).toBeInstanceOf(SegmentFormatError);
      }),
      { numRuns: 500 },
    );
  });
});
