/**
 * Self-telemetry: Prometheus metrics on their own registry (never prom-client's global one), passed
 * to components. Names parallel the Collector's `otelcol_receiver_*` / `otelcol_exporter_*` where
 * the meaning is the same, under the `sealtrail_` prefix. docs/operations.md explains each one.
 * Hot paths update counters once per request or batch, never once per record.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * A plain number standing for one labelled series of a counter, for code that counts on every
 * request: prom-client's `inc(labels, n)` hashes the label object on each call (~0.3 µs in a loop
 * here, more in a busy agent — about 1.5 % of the agent's CPU at full ingest, docs/benchmarks.md).
 * The number is added to its counter whenever the counter is read (a scrape, `get()`), so scrapes
 * show the same totals as before.
 */
export interface Tally {
  n: number;
}

/** The tallies of one counter, by label set; folded into the counter when it is read. */
class Tallies {
  readonly #items: { readonly labels: Record<string, string>; readonly tally: Tally }[] = [];

  /** The tally for `labels` (the same one for equal label sets). */
  of(labels: Record<string, string>): Tally {
    const key = JSON.stringify(Object.entries(labels).sort());
    const found = this.#items.find((i) => JSON.stringify(Object.entries(i.labels).sort()) === key);
    if (found) return found.tally;
    const tally = { n: 0 };
    this.#items.push({ labels: { ...labels }, tally });
    return tally;
  }

  /** Adds each tally to `counter` and zeroes it (each increment is counted exactly once). */
  fold(counter: Counter<string>): void {
    for (const { labels, tally } of this.#items) {
      if (tally.n !== 0) {
        const n = tally.n;
        tally.n = 0;
        counter.inc(labels, n);
      }
    }
  }
}

/** Per-request counts of one receiver transport, as tallies (see {@link Tally}). */
export interface ReceiverTallies {
  /** sealtrail_receiver_accepted_log_records_total{transport} */
  readonly accepted: Tally;
  /** sealtrail_receiver_request_bytes_total{transport} */
  readonly bytes: Tally;
  /** sealtrail_receiver_requests_total{transport, status="200" (http) or "OK" (grpc)} */
  readonly okRequests: Tally;
}

export class Metrics {
  readonly registry = new Registry();
  readonly #acceptedTallies = new Tallies();
  readonly #bytesTallies = new Tallies();
  readonly #requestTallies = new Tallies();

  // receiver (per request, labelled by transport = grpc | http)
  readonly receiverAccepted: Counter<'transport'> = new Counter({
    name: 'sealtrail_receiver_accepted_log_records_total',
    help: 'Log records acknowledged to clients after they were durable in the ledger.',
    labelNames: ['transport'] as const,
    collect: (): void => this.#acceptedTallies.fold(this.receiverAccepted),
    registers: [this.registry],
  });
  readonly receiverRefused = new Counter({
    name: 'sealtrail_receiver_refused_log_records_total',
    help: 'Log records refused with a retryable or client-error status, by reason.',
    labelNames: ['transport', 'reason'] as const,
    registers: [this.registry],
  });
  readonly receiverRequests: Counter<'transport' | 'status'> = new Counter({
    name: 'sealtrail_receiver_requests_total',
    help: 'Export requests answered, by transport and status (HTTP code or gRPC status name).',
    labelNames: ['transport', 'status'] as const,
    collect: (): void => this.#requestTallies.fold(this.receiverRequests),
    registers: [this.registry],
  });
  /** Issue 8: one per refused request (auth, limits, bad input, timeouts), whatever its record count. */
  readonly receiverRefusedRequests = new Counter({
    name: 'sealtrail_receiver_refused_requests_total',
    help: 'Requests refused or cut off by the receiver, by reason (unauthenticated, overloaded, too_large, timeout, ...).',
    labelNames: ['transport', 'reason'] as const,
    registers: [this.registry],
  });
  readonly receiverBytes: Counter<'transport'> = new Counter({
    name: 'sealtrail_receiver_request_bytes_total',
    help: 'Request body bytes received after decompression.',
    labelNames: ['transport'] as const,
    collect: (): void => this.#bytesTallies.fold(this.receiverBytes),
    registers: [this.registry],
  });

  // ledger
  readonly ledgerEntries = new Counter({
    name: 'sealtrail_ledger_entries_total',
    help: 'Entries appended to the ledger (durable when durability is fsync).',
    registers: [this.registry],
  });
  readonly ledgerFsyncSeconds = new Histogram({
    name: 'sealtrail_ledger_fsync_duration_seconds',
    help: 'Duration of each group-commit write+fsync.',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [this.registry],
  });
  readonly ledgerBatchEntries = new Histogram({
    name: 'sealtrail_ledger_group_commit_entries',
    help: 'Entries per group commit (one write and one fsync).',
    buckets: [1, 10, 100, 500, 1000, 5000, 10000, 50000],
    registers: [this.registry],
  });
  readonly ledgerSegmentsSealed = new Counter({
    name: 'sealtrail_ledger_segments_sealed_total',
    help: 'Segments sealed with a signed checkpoint.',
    registers: [this.registry],
  });
  readonly ledgerCheckpointsSigned = new Counter({
    name: 'sealtrail_ledger_checkpoints_signed_total',
    help: 'Checkpoints signed (seals and heartbeats).',
    registers: [this.registry],
  });
  readonly ledgerDiskBytes = new Gauge({
    name: 'sealtrail_ledger_disk_bytes',
    help: 'Bytes the ledger holds locally (open and unforwarded sealed segments, checkpoints).',
    registers: [this.registry],
  });
  readonly ledgerDiskBudgetBytes = new Gauge({
    name: 'sealtrail_ledger_disk_budget_bytes',
    help: 'Configured ledger.max_disk_bytes.',
    registers: [this.registry],
  });
  readonly ledgerTreeSize = new Gauge({
    name: 'sealtrail_ledger_tree_size',
    help: 'Entries in the log (the next global index).',
    registers: [this.registry],
  });
  readonly ledgerWriteFailures = new Counter({
    name: 'sealtrail_ledger_write_failures_total',
    help: 'Write or fsync failures; after one the ledger stops acknowledging.',
    registers: [this.registry],
  });

  // forwarding (per destination)
  readonly exporterSent = new Counter({
    name: 'sealtrail_exporter_sent_objects_total',
    help: 'Objects (segments and checkpoints) confirmed by a destination after read-back.',
    labelNames: ['destination'] as const,
    registers: [this.registry],
  });
  readonly exporterSendFailed = new Counter({
    name: 'sealtrail_exporter_send_failed_objects_total',
    help: 'Failed upload or confirmation attempts, by destination.',
    labelNames: ['destination'] as const,
    registers: [this.registry],
  });
  readonly exporterSentBytes = new Counter({
    name: 'sealtrail_exporter_sent_bytes_total',
    help: 'Bytes confirmed by a destination.',
    labelNames: ['destination'] as const,
    registers: [this.registry],
  });
  readonly exporterLagSegments = new Gauge({
    name: 'sealtrail_exporter_lag_segments',
    help: 'Sealed segments not yet confirmed by the destination.',
    labelNames: ['destination'] as const,
    registers: [this.registry],
  });
  readonly exporterLagSeconds = new Gauge({
    name: 'sealtrail_exporter_lag_seconds',
    help: 'Age of the oldest sealed segment the destination has not confirmed (0 when caught up).',
    labelNames: ['destination'] as const,
    registers: [this.registry],
  });
  readonly exporterQuorumUnmetSeconds = new Gauge({
    name: 'sealtrail_exporter_quorum_unmet_seconds',
    help: 'Age of the oldest sealed segment not yet confirmed by forwarding.quorum destinations.',
    registers: [this.registry],
  });
  readonly destinationUnsafe = new Gauge({
    name: 'sealtrail_destination_unsafe',
    help: '1 when the write-once canary found the destination accepts deletes or overwrites.',
    labelNames: ['destination'] as const,
    registers: [this.registry],
  });

  // verification and readiness (ops, issue 6)
  readonly verificationFailures = new Counter({
    name: 'sealtrail_verification_failures_total',
    help: 'Integrity checks inside the agent that found a mismatch (read-back, recovery, self-check), by check.',
    labelNames: ['check'] as const,
    registers: [this.registry],
  });
  readonly readinessCheck = new Gauge({
    name: 'sealtrail_readiness_check',
    help: '1 when the named readiness check passes, 0 when it fails (evaluated on each /readyz and /metrics request).',
    labelNames: ['check'] as const,
    registers: [this.registry],
  });
  readonly ready = new Gauge({
    name: 'sealtrail_ready',
    help: '1 when every readiness check passes (what /readyz answers with 200).',
    registers: [this.registry],
  });
  readonly buildInfo = new Gauge({
    name: 'sealtrail_build_info',
    help: 'Always 1; labels carry the agent and Node.js versions.',
    labelNames: ['version', 'nodejs'] as const,
    registers: [this.registry],
  });

  /** Tallies for a receiver's per-request counts (accepted records, body bytes, successful requests). */
  receiverTallies(transport: 'http' | 'grpc'): ReceiverTallies {
    return {
      accepted: this.#acceptedTallies.of({ transport }),
      bytes: this.#bytesTallies.of({ transport }),
      okRequests: this.#requestTallies.of({ transport, status: transport === 'http' ? '200' : 'OK' }),
    };
  }

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'sealtrail_' });
  }
}
