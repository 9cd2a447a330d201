/**
 * The verifier's fast segment scan: the same checks as scan.ts `scanSegment` (which runs every frame
 * through SegmentParser and is kept for `export`, which needs each entry), with the per-frame work
 * done in place, one native call per chunk (src/ledger/native-hash.ts `scanFrames`: CRC-32C, leaf
 * hash, chain hash and check, Merkle frontier). Chunks are never concatenated or copied: only a
 * structure that straddles two chunks (at most one frame, header or trailer per chunk boundary) is
 * stitched together in a small carry buffer. So the caller may reuse a chunk's buffer as soon as
 * `push` returns, and memory is one chunk plus one frame whatever the segment size.
 *
 * Header, trailer and footer are decoded by src/ledger/segment-format.ts (decodeHeader,
 * decodeTrailer, checkTrailer, checkFooter), and every failure is the SegmentFormatError the
 * parser would raise (same check, offset, frame, index and message), so findings do not depend on
 * which scanner ran; test/verify/frame-scan.test.ts compares the two on damaged segments.
 */
import { type Hash, createHash } from 'node:crypto';
import { Frontier, frontierByteLength } from '../ledger/merkle.js';
import {
  SCAN_BAD_CHAIN,
  SCAN_BAD_CRC,
  SCAN_BAD_LENGTH,
  SCAN_FRONTIER_BYTES,
  SCAN_LIMIT,
  SCAN_NEED_MORE,
  SCAN_TRAILER,
  scanFrames,
} from '../ledger/native-hash.js';
import {
  badLengthError,
  FOOTER_BYTES,
  SEGMENT_FORMAT_VERSION,
  SEGMENT_MAGIC,
  SegmentFormatError,
  checkFooter,
  checkTrailer,
  decodeHeader,
  decodeTrailer,
  headerLength,
  probeFrame,
} from '../ledger/segment-format.js';
import type { ScanError, SegmentScan } from './scan.js';

/** Streams one segment's bytes through the checks; see the module comment. */
export class SegmentScanner {
  readonly #scan: SegmentScan = {
    header: undefined,
    frames: 0,
    lastChain: undefined,
    frontier: undefined,
    rootsAt: new Map(),
    trailer: undefined,
    error: undefined,
    unsupportedVersion: undefined,
    bytes: 0,
    digest: undefined,
  };
  #state: 'header' | 'frames' | 'footer' | 'done' = 'header';
  /** File offset of the first byte not yet consumed (= of carry[0] while the carry holds bytes). */
  #base = 0;
  #carry = new Uint8Array(4096);
  #carryLen = 0;
  /** The first 10 bytes (magic + version), to tell an unknown format version from damage. */
  readonly #head = new Uint8Array(10);
  #headLen = 0;
  /** Chain value before the next frame and the frontier state (native-hash.ts scanFrames). */
  readonly #chain = new Uint8Array(32);
  readonly #fr = new Uint8Array(SCAN_FRONTIER_BYTES);
  readonly #out = new Uint32Array(2);
  #firstIndex = 0;
  #trailerOffset = 0;
  /** Tree sizes at which the caller wants the root, ascending; #nextProbe indexes the next one. */
  readonly #probes: number[];
  #nextProbe = 0;
  readonly #hasher: Hash | undefined;

  constructor(opts: { probeSizes?: Iterable<number>; digest?: boolean } = {}) {
    this.#probes = [...new Set(opts.probeSizes ?? [])].sort((a, b) => a - b);
    this.#hasher = opts.digest ? createHash('sha256') : undefined;
  }

  /**
   * Feeds the next chunk of the segment. Never throws for bad bytes (they become `error` in the
   * result); the chunk is not referenced after the call returns.
   */
  push(input: Uint8Array): void {
    // A Buffer's slice() is a view, not a copy: decoded header/trailer fields must not alias a
    // chunk the caller will overwrite, so work on a plain Uint8Array view (slice() copies).
    const chunk = Buffer.isBuffer(input) ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength) : input;
    const s = this.#scan;
    s.bytes += chunk.length;
    this.#hasher?.update(chunk);
    if (this.#headLen < 10) {
      const take = Math.min(10 - this.#headLen, chunk.length);
      this.#head.set(chunk.subarray(0, take), this.#headLen);
      this.#headLen += take;
      if (this.#headLen === 10) s.unsupportedVersion = unsupportedVersion(this.#head);
    }
    if (s.error) return; // keep counting bytes and hashing for the digest
    try {
      this.#consume(chunk);
    } catch (e) {
      if (!(e instanceof SegmentFormatError)) throw e;
      s.error = scanError(e);
    }
  }

  /** Declares the end of the segment and returns the result. */
  end(): SegmentScan {
    const s = this.#scan;
    if (!s.error && this.#state !== 'done') s.error = scanError(this.#truncated());
    if (this.#state !== 'header') {
      const size = this.#firstIndex + s.frames;
      s.frontier = Frontier.fromBytes(this.#fr.subarray(0, frontierByteLength(size)));
    }
    // checkTrailer compared the trailer's chain_last with the recomputed chain, so a sealed
    // segment that parsed yields its last chain value; an unsealed one is the tail and needs none.
    s.lastChain = s.trailer?.chainLast;
    if (this.#hasher) s.digest = new Uint8Array(this.#hasher.digest());
    return s;
  }

  #consume(chunk: Uint8Array): void {
    if (this.#state === 'done' && chunk.length > 0) throw new SegmentFormatError('trailing_bytes', this.#base, 'bytes after the footer');
    let off = 0;
    // A structure cut by the previous chunk boundary: complete it from this chunk, then check it.
    while (this.#carryLen > 0) {
      const need = this.#need(this.#carry.subarray(0, this.#carryLen));
      if (need > this.#carryLen) {
        const take = Math.min(need - this.#carryLen, chunk.length - off);
        if (take === 0) return;
        this.#reserve(this.#carryLen + take);
        this.#carry.set(chunk.subarray(off, off + take), this.#carryLen);
        this.#carryLen += take;
        off += take;
        continue; // the need may grow (a trailer's length is known only from its first bytes)
      }
      const used = this.#run(this.#carry, 0, this.#carryLen);
      if (used === 0) throw new Error('segment scanner: a complete structure was not consumed'); // a bug, not data
      this.#carry.copyWithin(0, used, this.#carryLen);
      this.#carryLen -= used;
    }
    off = this.#run(chunk, off, chunk.length);
    const rest = chunk.length - off;
    if (rest > 0) {
      this.#reserve(rest);
      this.#carry.set(chunk.subarray(off));
      this.#carryLen = rest;
    }
  }

  #reserve(n: number): void {
    if (this.#carry.length >= n) return;
    const grown = new Uint8Array(Math.max(n, 2 * this.#carry.length));
    grown.set(this.#carry.subarray(0, this.#carryLen));
    this.#carry = grown;
  }

  #where(): { frame: number; index: number } {
    return { frame: this.#scan.frames, index: this.#firstIndex + this.#scan.frames };
  }

  /** Total bytes the structure at view[0] needs (≤ view.length once it is complete or known bad). */
  #need(view: Uint8Array): number {
    switch (this.#state) {
      case 'header': {
        const len = headerLength(view);
        return len === 0 ? 12 : len;
      }
      case 'frames': {
        const p = probeFrame(view, 0);
        if (p.kind === 'incomplete') return p.need;
        if (p.kind === 'frame') return p.length;
        if (p.kind === 'bad_length') return view.length;
        const t = decodeTrailer(view, 0, this.#base, this.#where());
        return 'need' in t ? t.need : t.length;
      }
      case 'footer':
        return FOOTER_BYTES;
      case 'done':
        return view.length;
    }
  }

  /** Consumes the complete structures in buf[off, end); returns the offset of the first one left. */
  #run(buf: Uint8Array, off: number, end: number): number {
    const s = this.#scan;
    const view = buf.subarray(0, end);
    for (;;) {
      switch (this.#state) {
        case 'header': {
          const rest = view.subarray(off);
          const len = headerLength(rest);
          if (len === 0 || rest.length < len) return off;
          const { header } = decodeHeader(rest.subarray(0, len));
          s.header = header;
          this.#firstIndex = header.firstIndex;
          this.#chain.set(header.chainPrev);
          this.#fr.set(header.frontier.toBytes());
          this.#state = 'frames';
          this.#base += len;
          off += len;
          while (this.#nextProbe < this.#probes.length && this.#probes[this.#nextProbe]! < header.firstIndex) this.#nextProbe++;
          if (this.#probes[this.#nextProbe] === header.firstIndex) {
            s.rootsAt.set(header.firstIndex, header.frontier.root());
            this.#nextProbe++;
          }
          continue;
        }
        case 'frames': {
          const limit = this.#nextProbe < this.#probes.length ? this.#probes[this.#nextProbe]! : -1;
          const status = scanFrames(buf, off, end, this.#chain, this.#fr, limit, this.#out);
          const reached = this.#out[0]!;
          s.frames += this.#out[1]!;
          this.#base += reached - off;
          off = reached;
          if (status === SCAN_NEED_MORE) return off;
          if (status === SCAN_LIMIT) {
            s.rootsAt.set(limit, Frontier.fromBytes(this.#fr.subarray(0, frontierByteLength(limit))).root());
            this.#nextProbe++;
            continue;
          }
          const where = this.#where();
          if (status === SCAN_TRAILER) {
            const t = decodeTrailer(view, off, this.#base, where);
            if ('need' in t) return off;
            checkTrailer(t.trailer, { frames: s.frames, chain: this.#chain, firstIndex: this.#firstIndex, offset: this.#base }, where);
            s.trailer = t.trailer;
            this.#trailerOffset = this.#base;
            this.#state = 'footer';
            this.#base += t.length;
            off += t.length;
            continue;
          }
          if (status === SCAN_BAD_LENGTH) {
            const p = probeFrame(view, off);
            throw badLengthError(view, off, this.#base, p.kind === 'bad_length' ? p.detail : 'invalid frame length', where);
          }
          if (status === SCAN_BAD_CRC) throw new SegmentFormatError('frame_crc', this.#base, 'frame CRC-32C mismatch', where);
          if (status === SCAN_BAD_CHAIN) {
            throw new SegmentFormatError('chain', this.#base + 8, 'stored chain value differs from SHA-256(previous chain ‖ leaf hash)', where);
          }
          throw new Error(`segment scanner: unknown scanFrames status ${status}`);
        }
        case 'footer': {
          if (end - off < FOOTER_BYTES) return off;
          checkFooter(view.subarray(off, off + FOOTER_BYTES), this.#base, this.#trailerOffset);
          this.#state = 'done';
          this.#base += FOOTER_BYTES;
          off += FOOTER_BYTES;
          continue;
        }
        case 'done':
          if (off < end) throw new SegmentFormatError('trailing_bytes', this.#base, `${end - off} bytes after the footer`);
          return off;
      }
    }
  }

  /** The error SegmentParser.end() gives for a segment that ends before its footer. */
  #truncated(): SegmentFormatError {
    const where = this.#state === 'header' ? {} : this.#where();
    if (this.#state === 'frames' && this.#carryLen > 0) {
      const p = probeFrame(this.#carry.subarray(0, this.#carryLen), 0);
      if (p.kind === 'incomplete') {
        return new SegmentFormatError('frame_truncated', this.#base, `file ends inside a frame (${this.#carryLen} of ${p.need} bytes)`, where);
      }
    }
    return new SegmentFormatError(
      'truncated',
      this.#base + this.#carryLen,
      this.#state === 'header' ? 'file ends inside the header' : 'file ends without a complete trailer and footer (unsealed or cut off)',
      where,
    );
  }
}

/** The version field of a segment with a valid magic when this build does not read it, else undefined. */
function unsupportedVersion(first: Uint8Array): number | undefined {
  for (let i = 0; i < SEGMENT_MAGIC.length; i++) if (first[i] !== SEGMENT_MAGIC[i]) return undefined;
  const v = (first[8]! << 8) | first[9]!;
  return v === SEGMENT_FORMAT_VERSION ? undefined : v;
}

function scanError(e: SegmentFormatError): ScanError {
  return { check: e.check, offset: e.offset, index: e.index, frame: e.frame, message: e.message };
}

/** A scan that only hashes and counts the bytes (is this object a copy of one verified before?). */
export class DigestOnlyScan {
  readonly #h: Hash = createHash('sha256');
  #bytes = 0;
  push(c: Uint8Array): void {
    this.#bytes += c.length;
    this.#h.update(c);
  }
  end(): SegmentScan {
    return {
      header: undefined,
      frames: 0,
      lastChain: undefined,
      frontier: undefined,
      rootsAt: new Map(),
      trailer: undefined,
      error: undefined,
      unsupportedVersion: undefined,
      bytes: this.#bytes,
      digest: new Uint8Array(this.#h.digest()),
    };
  }
}

/**
 * Scans a segment from its chunks with {@link SegmentScanner} (each chunk may be reused by the
 * producer once the next one is requested).
 * @throws whatever the chunk iterator throws (I/O errors)
 */
export async function scanSegmentFast(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  opts: { probeSizes?: Iterable<number>; digest?: boolean } = {},
): Promise<SegmentScan> {
  const s = new SegmentScanner(opts);
  for await (const c of chunks) s.push(c);
  return s.end();
}
