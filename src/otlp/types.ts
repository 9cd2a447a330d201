/** Limits applied while decoding untrusted OTLP requests (DESIGN.md G7). */
export interface DecodeLimits {
  /** Deepest AnyValue nesting accepted (config `receivers.otlp.max_nesting_depth`, default 32). */
  readonly maxNestingDepth: number;
}

/**
 * Outcome of decoding one export request. `entries` holds one entry per LogRecord in request
 * order (see api-otlp.md / docs/format.md "Entries"); a failure names the offending field path.
 */
export type DecodeResult =
  | { readonly ok: true; readonly entries: Uint8Array[] }
  | { readonly ok: false; readonly message: string };
