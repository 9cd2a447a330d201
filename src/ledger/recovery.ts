/**
 * Recovery's decisions, as pure functions over a segment's bytes (the I/O is in ledger.ts):
 * which frames are good, where a torn tail starts, and when damage is corruption that must never
 * be "repaired". docs/format.md "Ledger directory" states the rules; test/ledger/recovery.test.ts
 * cuts a segment at every byte offset and flips bits to hold them to it.
 *
 * The rule (G1: only unacknowledged data may be lost; G3: nothing is silently repaired):
 * - A torn append can only remove bytes from the end of the file or leave zeros / unwritten pages
 *   in the last, unsynced part. So bytes after the last good frame are cut off only when they look
 *   like that: an incomplete frame, a length field whose complement disagrees but that is followed
 *   by zeros only, or frames that fail their CRC with no CRC-valid frame (or trailer) after them.
 * - Anything else is corruption before the tail: a CRC-valid frame whose chain value is wrong
 *   (someone rewrote it), a bad frame followed by a good one, a damaged length field followed by
 *   non-zero bytes. Those throw SegmentFormatError with the offset, frame, index and check.
 */
import { chainHash, hashEqual, leafHash } from './hash.js';
import { Frontier } from './merkle.js';
import { SCAN_FRONTIER_BYTES, SCAN_LIMIT, nativeScanFrames, scanFrames, scanFrontierBytes } from './native-hash.js';
import {
  FOOTER_BYTES,
  type SegmentHeader,
  SegmentFormatError,
  type SegmentTrailer,
  checkFooter,
  decodeHeader,
  decodeTrailer,
  probeFrame,
} from './segment-format.js';

export interface SegmentScan {
  readonly header: SegmentHeader;
  readonly headerLength: number;
  /** Good frames. */
  readonly count: number;
  /** File offset just after the last good frame (where the trailer is, or where a torn tail starts). */
  readonly goodEnd: number;
  /** Chain value after the last good frame. */
  readonly chain: Uint8Array;
  /** Frontier after the last good frame (the header's frontier plus every good leaf). */
  readonly frontier: Frontier;
  /** Roots at the tree sizes asked for in `rootsAt` that fall inside this segment. */
  readonly roots: ReadonlyMap<number, Uint8Array>;
  /** A complete, CRC-valid trailer with a valid footer and nothing after it. */
  readonly trailer?: { readonly trailer: SegmentTrailer; readonly offset: number };
  /** Bytes after `goodEnd` that a crash left behind and recovery cuts off (open segments only). */
  readonly torn?: { readonly offset: number; readonly bytes: number; readonly reason: string };
}

function allZero(b: Uint8Array, from: number): boolean {
  for (let i = from; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** The torn-tail reason for an open segment that ends in zeros only (as the commit writer writes them ahead of its commits). */
export const ZERO_TAIL = 'zero-filled tail';

/**
 * Scans a whole segment file. `sealed: true` demands a complete trailer and footer and tolerates
 * nothing (a sealed segment is never cut); `sealed: false` (the open segment) applies the torn-tail
 * rule above. `rootsAt` asks for Merkle roots at some tree sizes (e.g. the last checkpoint's).
 * @throws SegmentFormatError naming offset, frame, global index and check for corruption
 */
export function scanSegment(bytes: Uint8Array, opts: { sealed: boolean; rootsAt?: readonly number[] }): SegmentScan {
  const { header, length: headerLength } = decodeHeader(bytes);
  const want = new Set(opts.rootsAt ?? []);
  const roots = new Map<number, Uint8Array>();
  let frontier = header.frontier.clone();
  if (want.has(frontier.size)) roots.set(frontier.size, frontier.root());
  let chain = header.chainPrev;
  let off = headerLength;
  let count = 0;

  // Fast prefix: walk the good frames in one native call per stretch (CRC, leaf, chain, frontier),
  // stopping at every tree size a root is wanted for. The first frame it does not accept (or the
  // trailer) is then judged by the loop below, which knows the torn-tail rules and names errors
  // exactly; so the result is the same as walking every frame in JS, only faster (start-up with a
  // backlog of sealed segments re-checks every one of them).
  if (nativeScanFrames) {
    const chainState = chain.slice();
    const state = new Uint8Array(SCAN_FRONTIER_BYTES);
    state.set(frontier.toBytes());
    const out = new Uint32Array(2);
    const stops = [...want].filter((w) => w > frontier.size).sort((a, b) => a - b);
    for (;;) {
      const limit = stops.length > 0 ? stops[0]! : -1;
      const status = scanFrames(bytes, off, bytes.length, chainState, state, limit, out);
      off = out[0]!;
      count += out[1]!;
      frontier = Frontier.fromBytes(scanFrontierBytes(state));
      if (status !== SCAN_LIMIT) break;
      roots.set(frontier.size, frontier.root());
      stops.shift();
    }
    chain = chainState;
  }
  const where = () => ({ frame: count, index: header.firstIndex + count });

  const torn = (reason: string): SegmentScan => {
    if (opts.sealed) throw new SegmentFormatError('truncated', off, `sealed segment is cut or damaged at its end: ${reason}`, where());
    return { header, headerLength, count, goodEnd: off, chain, frontier, roots, torn: { offset: off, bytes: bytes.length - off, reason } };
  };

  for (;;) {
    if (off === bytes.length) {
      if (opts.sealed) throw new SegmentFormatError('truncated', off, 'sealed segment has no trailer', where());
      return { header, headerLength, count, goodEnd: off, chain, frontier, roots };
    }
    const p = probeFrame(bytes, off);
    if (p.kind === 'incomplete') return torn(`incomplete frame (${bytes.length - off} of ${p.need} bytes)`);
    if (p.kind === 'bad_length') {
      if (!opts.sealed && allZero(bytes, off)) return torn(ZERO_TAIL);
      throw new SegmentFormatError('frame_length', off, p.detail, where());
    }
    if (p.kind === 'trailer') {
      let t: ReturnType<typeof decodeTrailer>;
      try {
        t = decodeTrailer(bytes, off, off, where());
      } catch (e) {
        // A trailer damaged at the very end of an open segment is an interrupted seal: cut it and seal again.
        if (!opts.sealed && e instanceof SegmentFormatError && e.check === 'trailer_crc') return torn('trailer CRC mismatch (interrupted seal)');
        throw e;
      }
      if ('need' in t) return torn('incomplete trailer (interrupted seal)');
      const tr = t.trailer;
      const fAt = off + t.length;
      if (bytes.length - fAt < FOOTER_BYTES) return torn('incomplete footer (interrupted seal)');
      if (bytes.length - fAt > FOOTER_BYTES) {
        throw new SegmentFormatError('trailing_bytes', fAt + FOOTER_BYTES, `${bytes.length - fAt - FOOTER_BYTES} bytes after the footer`, where());
      }
      checkFooter(bytes.subarray(fAt), fAt, off);
      if (tr.count !== count) throw new SegmentFormatError('trailer_field', off + 8, `trailer says ${tr.count} entries, the segment has ${count}`, where());
      if (!hashEqual(tr.chainLast, chain)) throw new SegmentFormatError('trailer_field', off + 16, 'trailer chain_last differs from the last entry', where());
      if (!tr.endFrontier.equals(frontier)) throw new SegmentFormatError('trailer_field', off + 48, 'trailer end frontier differs from the recomputed tree', where());
      return { header, headerLength, count, goodEnd: off, chain, frontier, roots, trailer: { trailer: tr, offset: off } };
    }
    if (!p.crcOk) {
      if (opts.sealed) throw new SegmentFormatError('frame_crc', off, 'frame CRC-32C mismatch', where());
      // Step over it with its (complement-checked) length: any CRC-valid frame or a trailer after
      // it proves the damage is not a torn tail.
      let q = off + p.length;
      while (q < bytes.length) {
        const n = probeFrame(bytes, q);
        if ((n.kind === 'frame' && n.crcOk) || n.kind === 'trailer') {
          throw new SegmentFormatError('frame_crc', off, `frame CRC-32C mismatch, and a valid ${n.kind} follows at offset ${q}: corruption before the tail`, where());
        }
        if (n.kind !== 'frame') break;
        q += n.length;
      }
      return torn('frame CRC mismatch at the tail');
    }
    const entry = bytes.subarray(off + 40, off + 40 + p.entryLength);
    const leaf = leafHash(entry);
    const next = chainHash(chain, leaf);
    if (!hashEqual(next, bytes.subarray(off + 8, off + 40))) {
      // The CRC matched, so these bytes are what was written (or what someone rewrote): not a torn write.
      throw new SegmentFormatError('chain', off + 8, 'stored chain value differs from SHA-256(previous chain ‖ leaf hash)', where());
    }
    chain = next;
    frontier.append(leaf);
    count++;
    if (want.has(frontier.size)) roots.set(frontier.size, frontier.root());
    off += p.length;
  }
}
