/** What both receivers are given: where entries go, the decode limits, and self-telemetry. */
import type { EntrySink } from '../ledger/types.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Logger } from '../telemetry/logger.js';
import type { ConcurrencyGate } from './limits.js';

export interface ReceiverDeps {
  /** Validated entries go here; a request is acknowledged only when `append` resolved `ok` (G1). */
  readonly sink: EntrySink;
  /**
   * `maxNestingDepth` goes to the OTLP decoder (config `receivers.otlp.max_nesting_depth`);
   * `maxRecordsPerRequest` (`receivers.otlp.max_records_per_request`, default 65536) caps records per request.
   */
  readonly limits: { readonly maxNestingDepth: number; readonly maxRecordsPerRequest?: number };
  /**
   * Admission control (`receivers.otlp.max_concurrent_requests`). Pass ONE gate to both receivers so
   * the limit is global; without it each receiver makes its own with DEFAULT_MAX_CONCURRENT_REQUESTS.
   */
  readonly gate?: ConcurrencyGate;
  readonly metrics?: Metrics;
  readonly logger: Logger;
}

/** Where a started receiver listens; `port` is the real port when the config asked for port 0. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** Retry hint sent to clients refused because the receiver is stopping (G2). */
export const SHUTDOWN_RETRY_AFTER_MS = 5_000;

/** Used when `ReceiverDeps.limits.maxRecordsPerRequest` is not given (the config default). */
export const DEFAULT_MAX_RECORDS_PER_REQUEST = 65_536;
/** Used when `ReceiverDeps.gate` is not given (the config default of max_concurrent_requests). */
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 64;
