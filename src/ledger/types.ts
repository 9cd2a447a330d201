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

/**
 * Where receivers hand validated entries. `append` resolves only after the entries are durable
 * (written and fsync'd when durability is `fsync`), or with a retryable refusal in which case none
 * of the entries were stored. It never rejects for a refusal; a rejection is a programming error.
 * An empty array resolves `ok` with count 0 and stores nothing.
 *
 * Memory: the sink reads the entries' bytes only until the returned promise settles and keeps no
 * reference to them afterwards, so the caller may then reuse that memory (the receivers recycle it,
 * src/otlp EntryArena); until then the caller must not change them.
 */
export interface EntrySink {
  append(entries: readonly Uint8Array[]): Promise<AppendOutcome>;
}
