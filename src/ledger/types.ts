/**
 * The contract between receivers and the ledger. Retry status is data (STYLE.md habit 4): the
 * receivers map it to gRPC / HTTP codes in one place (src/receiver/status.ts).
 */

/** Why the ledger refuses an append for now; each maps to a retryable status (G2). */
export type RefusalReason =
  | 'disk_full' //           max_disk_bytes reached (HTTP 503/429 + Retry-After, gRPC RESOURCE_EXHAUSTED)
  | 'shutting_down' //       graceful shutdown in progress (HTTP 503, gRPC UNAVAILABLE)
  | 'overloaded' //          too many pending appends (HTTP 429, gRPC RESOURCE_EXHAUSTED)
  | 'ledger_failed'; //      an fsync/write failed: the ledger stopped acknowledging (HTTP 503, gRPC UNAVAILABLE)

export type AppendOutcome =
  | { readonly kind: 'ok'; readonly firstIndex: number; readonly count: number }
  | { readonly kind: 'retryable'; readonly reason: RefusalReason; readonly afterMs: number; readonly detail?: string };

/** Bytes a ledger frame keeps before its entry (len, ~len, chain value) and after it (CRC-32C); docs/format.md "Frames". */
export const FRAME_HEAD_ROOM = 40;
export const FRAME_TAIL_ROOM = 4;

/**
 * Entries built where the ledger's frames will be (the receivers' decoders write them so): run r
 * holds whole frames back to back, entry k of the run at `runs[r][spans[r][2k], spans[r][2k+1])`
 * with FRAME_HEAD_ROOM bytes before it and FRAME_TAIL_ROOM bytes after it. The ledger fills that
 * room and writes the runs as they are, instead of copying every entry into a buffer of its own
 * (docs/benchmarks.md "What changed in session 6"). The entries' own bytes are never changed.
 * One FramedEntries is appended once: a second append while the first is still being written would
 * rewrite the frame room under that write.
 */
export class FramedEntries {
  readonly runs: Uint8Array[] = [];
  readonly spans: Uint32Array[] = [];
  count = 0;
  /** Sum of the entries' lengths (without the frame room). */
  entryBytes = 0;

  add(run: Uint8Array, spans: Uint32Array): void {
    this.runs.push(run);
    this.spans.push(spans);
    const n = spans.length >>> 1;
    this.count += n;
    this.entryBytes += run.length - n * (FRAME_HEAD_ROOM + FRAME_TAIL_ROOM);
  }

  /** The entries as views of the runs (for sinks other than the ledger, and tests). */
  toArray(): Uint8Array[] {
    const out: Uint8Array[] = [];
    this.runs.forEach((run, r) => {
      const sp = this.spans[r]!;
      for (let k = 0; k < sp.length; k += 2) out.push(run.subarray(sp[k]!, sp[k + 1]!));
    });
    return out;
  }
}

/** What a sink is given: entries as separate arrays, or already laid out as frames. */
export type Entries = readonly Uint8Array[] | FramedEntries;

/** Number of entries in `e`. */
export function entryCount(e: Entries): number {
  return e instanceof FramedEntries ? e.count : e.length;
}

/** `e` as a list of entries (views of the runs for FramedEntries). */
export function entryList(e: Entries): readonly Uint8Array[] {
  return e instanceof FramedEntries ? e.toArray() : e;
}

/**
 * Where receivers hand validated entries. `append` resolves only after the entries are durable
 * (written and fsync'd when durability is `fsync`), or with a retryable refusal in which case none
 * of the entries were stored. It never rejects for a refusal; a rejection is a programming error.
 * An empty array resolves `ok` with count 0 and stores nothing.
 *
 * Memory: the sink reads the entries' bytes only until the returned promise settles and keeps no
 * reference to them afterwards, so the caller may then reuse that memory (the receivers recycle it,
 * src/otlp EntryArena); until then the caller must not change them. Given FramedEntries, the sink
 * may also write the frame room around each entry until then (the ledger does), never the entries.
 */
export interface EntrySink {
  append(entries: Entries): Promise<AppendOutcome>;
}
