/**
 * What the verifier needs from a place that holds a log: a listing and the bytes of each object.
 * This file only declares the shape (no I/O): the CLI implements it for a ledger directory, a
 * filesystem destination, S3 and configured destinations (src/cli/log-sources.ts), so that
 * `src/verify/` stays pure and offline (STYLE.md: a verifier package with no network code).
 */

/** One stored object (one version of it, for object stores that keep versions). */
export interface StoredItem {
  /** `open-segment` only exists in a ledger directory (`*.seg.open`, the segment being written). */
  readonly kind: 'segment' | 'open-segment' | 'checkpoint' | 'unknown';
  /** Last path component: the ledger's file name. */
  readonly name: string;
  /** Where it is (relative key or path), for messages. */
  readonly key: string;
  readonly size: number;
  /** How many versions the store holds of this key (1 for filesystems). */
  readonly versions: number;
  /** 0 = oldest version. The verifier checks the oldest (the original write) and reports the others. */
  readonly versionIndex: number;
  readonly deleteMarker: boolean;
  readonly versionId?: string;
}

/** A log as stored somewhere; implemented outside src/verify. */
export interface LogSource {
  /** As the operator named it on the command line (`./data/ledger`, `s3://b/p`, `dest:s3-a`). */
  readonly description: string;
  /** A ledger directory may legitimately lack segments the forwarder released. */
  readonly kind: 'ledger' | 'destination';
  /** Every object under the log's folders, every version; order does not matter. */
  list(): Promise<StoredItem[]>;
  /** The exact bytes of one object version, in chunks (one chunk is fine). @throws SealtrailError IO */
  read(item: StoredItem): AsyncIterable<Uint8Array>;
  /**
   * Optional fast path for large objects: the same bytes as `read`, but filled into the caller's
   * buffers (the verifier reuses a few fixed buffers instead of allocating one per chunk).
   * @throws SealtrailError IO
   */
  openReader?(item: StoredItem): Promise<ObjectReader>;
  /** Names the ledger's forwarder released (deleted locally after forwarding); empty for destinations. */
  released(): Promise<ReadonlySet<string>>;
  close(): void;
}

/** Sequential reads of one object into caller-owned buffers. */
export interface ObjectReader {
  /** Fills `buf` from the current position; returns the bytes read, less than buf.length only at the end (0 = end). @throws SealtrailError IO */
  read(buf: Uint8Array): Promise<number>;
  /**
   * Optional zero-copy alternative to `read` (do not mix the two on one reader): the next at most
   * `max` bytes as a view (e.g. of a memory-mapped file), null at the end. A view is valid only
   * until the next call or `close`.
   * @throws SealtrailError IO
   */
  view?(max: number): Promise<Uint8Array | null>;
  /**
   * Optional: an open descriptor of the whole object that stays valid until `close`, for an object
   * that cannot shrink meanwhile (a sealed segment) — a worker thread maps it itself (the same
   * process, so the descriptor is valid there) instead of being sent copies of its bytes.
   */
  readonly mappable?: { readonly fd: number; readonly size: number };
  close(): Promise<void>;
}

/** An {@link ObjectReader} over a source's `read` chunks (copied into the caller's buffers). */
export function chunkReader(chunks: AsyncIterable<Uint8Array>): ObjectReader {
  const it = chunks[Symbol.asyncIterator]();
  let cur: Uint8Array | undefined;
  let at = 0;
  let done = false;
  return {
    async read(buf: Uint8Array): Promise<number> {
      let n = 0;
      while (n < buf.length && !done) {
        if (!cur || at === cur.length) {
          const r = await it.next();
          if (r.done) {
            done = true;
            break;
          }
          cur = r.value;
          at = 0;
          continue;
        }
        const take = Math.min(buf.length - n, cur.length - at);
        buf.set(cur.subarray(at, at + take), n);
        n += take;
        at += take;
      }
      return n;
    },
    async close(): Promise<void> {
      if (!done) await it.return?.();
    },
  };
}

/** Checkpoint file names: `<seq16>-<size16>-<toMs15>-<seal|heartbeat>.cp` (ledger.ts, docs/format.md). */
export interface CheckpointName {
  readonly seq: number;
  readonly size: number;
  readonly toMs: number;
  readonly kind: 'seal' | 'heartbeat';
}

/** Parses a checkpoint file name, or undefined when it is not one. */
export function parseCheckpointFileName(name: string): CheckpointName | undefined {
  const m = /^(\d{1,20})-(\d{1,20})-(\d{1,20})-(seal|heartbeat)\.cp$/.exec(name);
  if (!m) return undefined;
  const seq = Number(m[1]);
  const size = Number(m[2]);
  const toMs = Number(m[3]);
  if (![seq, size, toMs].every(Number.isSafeInteger)) return undefined;
  return { seq, size, toMs, kind: m[4] as 'seal' | 'heartbeat' };
}
