/** What both receivers are given: where entries go, the decode limits, and self-telemetry. */
import type { EntrySink } from '../ledger/types.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Logger } from '../telemetry/logger.js';

export interface ReceiverDeps {
  /** Validated entries go here; a request is acknowledged only when `append` resolved `ok` (G1). */
  readonly sink: EntrySink;
  /** Passed to the OTLP decoder (config `receivers.otlp.max_nesting_depth`). */
  readonly limits: { readonly maxNestingDepth: number };
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
