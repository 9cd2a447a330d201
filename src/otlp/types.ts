/** Limits applied while decoding untrusted OTLP requests (DESIGN.md G7). */
export interface DecodeLimits {
  /** Deepest AnyValue nesting accepted (config `receivers.otlp.max_nesting_depth`, default 32). */
  readonly maxNestingDepth: number;
  /**
   * Most bytes one request may decode into: the entries' bytes plus ENTRY_OVERHEAD_BYTES per entry
   * for its JavaScript objects. Default DEFAULT_MAX_DECODED_BYTES. Every entry carries a copy of its
   * resource and scope, so a small body with a large resource and many tiny records would otherwise
   * decode into gigabytes (an amplification attack, like a decompression bomb).
   */
  readonly maxDecodedBytes?: number;
}

/** 256 MiB: 65 536 records (the default max_records_per_request) of 3 KiB with a 1 KiB resource fit. */
export const DEFAULT_MAX_DECODED_BYTES = 256 * 1024 * 1024;

/** What one entry costs beyond its bytes (the Uint8Array view object and its slot), for the budget. */
export const ENTRY_OVERHEAD_BYTES = 256;

/**
 * Outcome of decoding one export request. `entries` holds one entry per LogRecord in request
 * order (as views, or as ledger frame runs when the decoder was asked for FramedEntries) (see api-otlp.md / docs/format.md "Entries"); a failure names the offending field path.
 * `tooLarge` marks a refusal for exceeding `maxDecodedBytes` (a size problem, HTTP 413 /
 * RESOURCE_EXHAUSTED, rather than malformed input).
 */
export type DecodeResult<E = Uint8Array[]> =
  | { readonly ok: true; readonly entries: E }
  | { readonly ok: false; readonly message: string; readonly tooLarge?: true };
