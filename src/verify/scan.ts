/**
 * Scanning one segment: the CPU-heavy part of verification (CRC-32C of every frame, the chain
 * hash, the leaf hash and the Merkle frontier). It depends on nothing but the segment's own bytes
 * and a set of tree sizes at which the caller wants the root (heartbeat checkpoints that fall
 * inside this segment), so segments can be scanned independently (one worker per segment).
 * Format checks come from src/ledger/segment-format.ts: the bytes the writer wrote are the bytes
 * checked here.
 */
import { createHash } from 'node:crypto';
import { Frontier } from '../ledger/merkle.js';
import { frontierAppend } from '../ledger/native-hash.js';
import {
  SEGMENT_FORMAT_VERSION,
  SEGMENT_MAGIC,
  SegmentFormatError,
  SegmentParser,
  type SegmentHeader,
  type SegmentTrailer,
} from '../ledger/segment-format.js';

/** A format failure as plain data (it crosses worker boundaries): SegmentFormatError's fields. */
export interface ScanError {
  readonly check: SegmentFormatError['check'];
  readonly offset: number;
  readonly index: number | undefined;
  readonly frame: number | undefined;
  readonly message: string;
}

function scanError(e: SegmentFormatError): ScanError {
  return { check: e.check, offset: e.offset, index: e.index, frame: e.frame, message: e.message };
}

/** The result of scanning one segment's bytes. */
export interface SegmentScan {
  header: SegmentHeader | undefined;
  /** Frames that passed every format check (CRC, length, chain). */
  frames: number;
  /** Chain value of the last good frame (header.chainPrev when none). */
  lastChain: Uint8Array | undefined;
  /** Frontier over [0, firstIndex + frames): computed here, never read from the file. */
  frontier: Frontier | undefined;
  /** Roots computed at the requested tree sizes that this segment reached. */
  rootsAt: Map<number, Uint8Array>;
  trailer: SegmentTrailer | undefined;
  /** The first format failure; scanning of this segment stops there (SegmentParser cannot resync). */
  error: ScanError | undefined;
  /** Version field when the header names a version this build does not read. */
  unsupportedVersion: number | undefined;
  bytes: number;
  /** SHA-256 of the whole object, when asked for (comparing sources). */
  digest: Uint8Array | undefined;
}

/** Reads the 16-bit version field of a segment with a valid magic, or undefined. */
function headerVersion(first: Uint8Array): number | undefined {
  if (first.length < 10) return undefined;
  for (let i = 0; i < SEGMENT_MAGIC.length; i++) if (first[i] !== SEGMENT_MAGIC[i]) return undefined;
  return (first[8]! << 8) | first[9]!;
}

/**
 * Scans a segment from its chunks. Never throws for bad bytes: format failures are returned in
 * `error` (a verification failure is data). `open` marks the ledger's open segment, for which a
 * missing trailer is expected.
 * @throws whatever the chunk iterator throws (I/O errors)
 */
export async function scanSegment(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  opts: { probeSizes?: ReadonlySet<number>; digest?: boolean; onEntry?: (index: number, entry: Uint8Array) => void | Promise<void> } = {},
): Promise<SegmentScan> {
  const probe = opts.probeSizes ?? new Set<number>();
  const hasher = opts.digest ? createHash('sha256') : undefined;
  const parser = new SegmentParser();
  const scan: SegmentScan = {
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
  let first = true;
  for await (const chunk of chunks) {
    scan.bytes += chunk.length;
    hasher?.update(chunk);
    if (first) {
      first = false;
      const v = headerVersion(chunk);
      if (v !== undefined && v !== SEGMENT_FORMAT_VERSION) scan.unsupportedVersion = v;
    }
    if (scan.error) continue; // keep reading for the digest and the byte count
    // Leaf hashes are appended to the frontier per chunk in one call (native-hash.ts: ~0.13 µs per
    // leaf natively vs ~2.9 µs for Frontier.append, whose node hash is mostly crypto.hash call
    // overhead), flushed early only where a probe size needs the root.
    let pending = new Uint8Array(0);
    let npending = 0;
    const flush = (): void => {
      if (npending === 0) return;
      scan.frontier = Frontier.fromBytes(frontierAppend(scan.frontier!.toBytes(), pending.subarray(0, 32 * npending)));
      npending = 0;
    };
    try {
      for (const item of parser.push(chunk)) {
        if (item.kind === 'frame') {
          if (pending.length < 32 * (npending + 1)) {
            const grown = new Uint8Array(Math.max(4096, 2 * pending.length));
            grown.set(pending.subarray(0, 32 * npending));
            pending = grown;
          }
          pending.set(item.leaf, 32 * npending++);
          scan.frames++;
          // A consumer that needs to wait (stdout backpressure in `export`) returns a promise.
          const wait = opts.onEntry?.(item.index, item.entry);
          if (wait) await wait;
          const size = scan.frontier!.size + npending;
          if (probe.has(size)) {
            flush();
            scan.rootsAt.set(size, scan.frontier!.root());
          }
        } else if (item.kind === 'header') {
          scan.header = item.header;
          scan.frontier = item.header.frontier.clone();
          if (probe.has(scan.frontier.size)) scan.rootsAt.set(scan.frontier.size, scan.frontier.root());
        } else {
          flush();
          scan.trailer = item.trailer;
        }
      }
    } catch (e) {
      if (!(e instanceof SegmentFormatError)) throw e;
      scan.error = scanError(e);
    } finally {
      flush();
    }
  }
  if (!scan.error) {
    try {
      parser.end();
    } catch (e) {
      if (!(e instanceof SegmentFormatError)) throw e;
      scan.error = scanError(e);
    }
  }
  // The parser compared the trailer's chain_last with the recomputed chain, so a sealed segment
  // that parsed yields its last chain value; an unsealed one is the tail and needs none.
  scan.lastChain = scan.trailer?.chainLast;
  if (hasher) scan.digest = new Uint8Array(hasher.digest());
  return scan;
}

/** A scan as structured-clone-able data (Frontier instances become their bytes). */
export interface WireScan {
  readonly header: (Omit<SegmentHeader, 'frontier'> & { frontier: Uint8Array }) | undefined;
  readonly frames: number;
  readonly lastChain: Uint8Array | undefined;
  readonly frontier: Uint8Array | undefined;
  readonly rootsAt: Map<number, Uint8Array>;
  readonly trailer: (Omit<SegmentTrailer, 'endFrontier'> & { endFrontier: Uint8Array }) | undefined;
  readonly error: ScanError | undefined;
  readonly unsupportedVersion: number | undefined;
  readonly bytes: number;
  readonly digest: Uint8Array | undefined;
}

/** For posting a scan from a worker. */
export function scanToWire(s: SegmentScan): WireScan {
  return {
    ...s,
    header: s.header ? { ...s.header, frontier: s.header.frontier.toBytes() } : undefined,
    frontier: s.frontier?.toBytes(),
    trailer: s.trailer ? { ...s.trailer, endFrontier: s.trailer.endFrontier.toBytes() } : undefined,
  };
}

/** The inverse of {@link scanToWire}. @throws RangeError on a malformed frontier (a worker bug) */
export function scanFromWire(w: WireScan): SegmentScan {
  return {
    ...w,
    header: w.header ? { ...w.header, frontier: Frontier.fromBytes(w.header.frontier) } : undefined,
    frontier: w.frontier ? Frontier.fromBytes(w.frontier) : undefined,
    trailer: w.trailer ? { ...w.trailer, endFrontier: Frontier.fromBytes(w.trailer.endFrontier) } : undefined,
  };
}
