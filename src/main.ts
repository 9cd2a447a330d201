/**
 * Wiring only: config → key → ledger → forwarder → receivers → telemetry, and the shutdown
 * sequence. The data flows one way (DESIGN.md): receivers hand validated entries to the ledger,
 * which acknowledges only after fsync (G1); the forwarder ships what the ledger sealed.
 */
import { basename, dirname, extname } from 'node:path';
import type { Config } from './config/schema.js';
import { SealtrailError, errorMessage } from './errors.js';
import { createDestination } from './forward/factory.js';
import type { Destination } from './forward/destination.js';
import { Replicator } from './forward/replicator.js';
import { ledgerSealedSource } from './forward/ledger-source.js';
import { loadSigner, writeKeyPair } from './keys/files.js';
import { validateKeyName, type Signer } from './keys/keys.js';
import { Ledger } from './ledger/ledger.js';
import { GrpcReceiver } from './receiver/grpc.js';
import { HttpReceiver } from './receiver/http.js';
import { ConcurrencyGate } from './receiver/limits.js';
import type { ReceiverDeps } from './receiver/types.js';
import { Health, READINESS_CHECKS } from './telemetry/health.js';
import type { Logger } from './telemetry/logger.js';
import { Metrics } from './telemetry/metrics.js';
import { TelemetryServer } from './telemetry/server.js';
import { packageVersion } from './version.js';

export interface AgentAddresses {
  readonly grpc?: { host: string; port: number };
  readonly http?: { host: string; port: number };
  readonly metrics?: { host: string; port: number };
  readonly health?: { host: string; port: number };
}

interface Receiver {
  start(): Promise<{ host: string; port: number }>;
  stopAccepting(): void;
  shutdown(graceMs?: number): Promise<void>;
}

/** The signed-note key name for a generated key: the origin when it is a valid key name (C2SP advice). */
function generatedKeyName(origin: string): string {
  return validateKeyName(origin) === null ? origin : 'sealtrail';
}

/**
 * Load the signing key; when it is missing and the config allows it (the embedded default only),
 * generate one with a loud warning.
 * @throws SealtrailError KEY_MISSING / KEY_PERMISSIONS / KEY_INVALID
 */
async function loadOrCreateSigner(cfg: Config, log: Logger): Promise<Signer> {
  const file = cfg.signing.key_file;
  try {
    return await loadSigner(file);
  } catch (e) {
    if (!(e instanceof SealtrailError) || e.code !== 'KEY_MISSING' || !cfg.signing.generate_if_missing) throw e;
  }
  if (extname(file) !== '.key') {
    throw new SealtrailError('KEY_MISSING', `signing.key_file ${file} does not exist and can only be generated with a .key name; run "sealtrail keygen --dir DIR" and point signing.key_file at DIR/signing.key`);
  }
  const { keyPath, pubPath } = await writeKeyPair(dirname(file), basename(file, '.key'), generatedKeyName(cfg.ledger.origin));
  log.warn(
    { keyPath, pubPath },
    'GENERATED A NEW SIGNING KEY because signing.key_file was missing and signing.generate_if_missing is true. ' +
      'Fine for trying sealtrail out; in production create the key with "sealtrail keygen", keep the .pub safe for verifiers, and set generate_if_missing: false.',
  );
  return loadSigner(file);
}

/**
 * A running agent. `start` brings components up in dependency order; `shutdown` takes them down in
 * reverse, so nothing is acknowledged after the ledger closed and no accepted record is lost.
 */
export class Agent {
  readonly #cfg: Config;
  readonly #log: Logger;
  readonly metrics: Metrics;
  readonly health: Health;
  #ledger: Ledger | undefined;
  #replicator: Replicator | undefined;
  #destinations: Destination[] = [];
  #receivers: Receiver[] = [];
  #telemetry: TelemetryServer | undefined;
  #addresses: AgentAddresses = {};
  #shutdown: Promise<void> | undefined;

  constructor(cfg: Config, log: Logger, opts: { defaultMetrics?: boolean } = {}) {
    this.#cfg = cfg;
    this.#log = log;
    this.metrics = new Metrics({ defaultMetrics: opts.defaultMetrics ?? true });
    this.metrics.buildInfo.set({ version: packageVersion(), nodejs: process.versions.node }, 1);
    this.health = new Health({ expect: Object.values(READINESS_CHECKS), metrics: this.metrics });
  }

  get addresses(): AgentAddresses {
    return this.#addresses;
  }

  get ledger(): Ledger | undefined {
    return this.#ledger;
  }

  /**
   * Start everything; on failure, stops what was started and rethrows.
   * @throws SealtrailError for key, ledger (recovery) and listen problems
   */
  async start(): Promise<AgentAddresses> {
    try {
      await this.#start();
    } catch (e) {
      await this.shutdown().catch(() => undefined);
      throw e;
    }
    return this.#addresses;
  }

  async #start(): Promise<void> {
    const cfg = this.#cfg;
    const log = this.#log;
    const metrics = this.metrics;

    // Telemetry first, so readiness reports "not ready" (and why) while the rest starts.
    this.#telemetry = new TelemetryServer({
      metricsEndpoint: cfg.telemetry.metrics.endpoint,
      healthEndpoint: cfg.telemetry.health.endpoint,
      metrics,
      health: this.health,
      logger: log,
    });
    await this.#telemetry.start();

    const signer = await loadOrCreateSigner(cfg, log);
    const previousSigner = cfg.signing.previous_key_file ? await loadSigner(cfg.signing.previous_key_file) : undefined;
    this.health.register(READINESS_CHECKS.keyLoaded, () => ({ ok: true, detail: `key ${signer.name}` }));

    const ledger = await Ledger.open({ config: cfg.ledger, signer, previousSigner, logger: log, metrics });
    this.#ledger = ledger;
    metrics.ledgerDiskBudgetBytes.set(cfg.ledger.max_disk_bytes);
    this.health.register(READINESS_CHECKS.ledgerWritable, () => {
      const failure = ledger.failure;
      return failure === undefined ? { ok: true } : { ok: false, detail: failure };
    });
    this.health.register(READINESS_CHECKS.diskBudget, () =>
      ledger.diskFull
        ? { ok: false, detail: `ledger uses ${ledger.diskBytes} of ${cfg.ledger.max_disk_bytes} bytes (ledger.max_disk_bytes); forwarding must catch up` }
        : { ok: true, detail: `${ledger.diskBytes} of ${cfg.ledger.max_disk_bytes} bytes` },
    );

    if (cfg.destinations.length === 0) {
      log.warn('destinations: [] — local-only ledger: sealed segments are not copied anywhere; a lost disk loses the log');
      this.health.register(READINESS_CHECKS.quorumReachable, () => ({ ok: true, detail: 'no destinations configured (local-only)' }));
      this.health.register(READINESS_CHECKS.noUnsafeDestination, () => ({ ok: true, detail: 'no destinations configured' }));
    } else {
      this.#destinations = await Promise.all(cfg.destinations.map((d) => createDestination(d, log)));
      const replicator = new Replicator({
        source: ledgerSealedSource(ledger),
        destinations: this.#destinations,
        forwarding: cfg.forwarding,
        stateDir: `${cfg.ledger.dir}/forward`,
        origin: cfg.ledger.origin,
        metrics,
        logger: log,
        acceptUnsafe: new Set(cfg.destinations.filter((d) => d.accept_unsafe).map((d) => d.name)),
        canary: true,
      });
      this.#replicator = replicator;
      await replicator.start();
      const checks = replicator.readinessChecks();
      this.health.register(READINESS_CHECKS.quorumReachable, checks.quorumReachable);
      this.health.register(READINESS_CHECKS.noUnsafeDestination, checks.noUnsafeDestination);
    }

    const deps: ReceiverDeps = {
      sink: ledger,
      limits: { maxNestingDepth: cfg.receivers.otlp.max_nesting_depth, maxRecordsPerRequest: cfg.receivers.otlp.max_records_per_request },
      // One admission gate for both receivers: max_concurrent_requests is global (issue 8).
      gate: new ConcurrencyGate(cfg.receivers.otlp.max_concurrent_requests),
      metrics,
      logger: log,
    };
    const { grpc, http } = cfg.receivers.otlp.protocols;
    if (grpc) {
      const r = new GrpcReceiver(grpc, deps);
      this.#receivers.push(r);
      this.#addresses = { ...this.#addresses, grpc: await r.start() };
    }
    if (http) {
      const r = new HttpReceiver(http, deps);
      this.#receivers.push(r);
      this.#addresses = { ...this.#addresses, http: await r.start() };
    }
    this.#addresses = { ...this.#addresses, metrics: this.#telemetry.metricsAddress, health: this.#telemetry.healthAddress };
    log.info(
      { origin: cfg.ledger.origin, treeSize: ledger.treeSize, ...this.#addresses, destinations: cfg.destinations.map((d) => d.name) },
      'sealtrail agent started',
    );
  }

  /**
   * Graceful shutdown (safe to call twice): stop accepting (retryable status), finish in-flight
   * requests, seal the open segment, forward within the grace period, then stop telemetry.
   */
  shutdown(): Promise<void> {
    this.#shutdown ??= this.#doShutdown();
    return this.#shutdown;
  }

  async #doShutdown(): Promise<void> {
    const graceMs = this.#cfg.shutdown.grace_period;
    const deadline = Date.now() + graceMs;
    const remaining = (): number => Math.max(0, deadline - Date.now());
    this.health.beginShutdown();
    for (const r of this.#receivers) r.stopAccepting();
    this.#ledger?.stopAccepting();
    await Promise.all(this.#receivers.map((r) => r.shutdown(remaining())));
    let failure: unknown;
    try {
      await this.#ledger?.close();
    } catch (e) {
      failure = e;
      this.#log.error({ err: errorMessage(e) }, 'ledger close failed');
    }
    if (this.#replicator) {
      const drained = await this.#replicator.drained(remaining()).catch((e: unknown) => {
        this.#log.warn({ err: errorMessage(e) }, 'forwarding drain failed');
        return false;
      });
      if (!drained) this.#log.warn('shutdown.grace_period ended before every sealed segment reached every destination; the rest is forwarded after restart (local copies kept)');
      await this.#replicator.stop();
    }
    for (const d of this.#destinations) d.close();
    await this.#telemetry?.shutdown();
    this.#log.info('sealtrail agent stopped');
    if (failure !== undefined) throw failure;
  }
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGINT: 2, SIGTERM: 15 };

/**
 * Run the agent until SIGTERM/SIGINT, then shut down gracefully; resolves with the exit code.
 * A second signal exits at once (128 + signal number): safe, because every acknowledged record is
 * already fsync'd, frames carry CRCs, and progress files are replaced atomically — the next start
 * cuts a torn tail. This is the one place that calls process.exit.
 */
export async function runAgent(cfg: Config, log: Logger): Promise<number> {
  const agent = new Agent(cfg, log);
  let stopping = false;
  let resolveStopped!: (code: number) => void;
  const stopped = new Promise<number>((resolve) => (resolveStopped = resolve));
  let started: Promise<unknown> = Promise.resolve();
  // Handlers go in before start-up: a SIGTERM that arrives while components start still gets a
  // graceful stop (after start settles), never the default kill.
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now without waiting (acknowledged records are already durable)');
      process.exit(128 + (SIGNAL_NUMBERS[signal] ?? 15));
    }
    stopping = true;
    log.info({ signal, gracePeriodMs: cfg.shutdown.grace_period }, 'shutting down: refusing new requests, finishing in-flight ones, sealing');
    // Watchdog: a shutdown that overruns its grace period by far is stuck; exit non-zero.
    setTimeout(() => {
      log.error('shutdown overran shutdown.grace_period by 5s; exiting');
      process.exit(1);
    }, cfg.shutdown.grace_period + 5_000).unref();
    void started
      .catch(() => undefined)
      .then(() => agent.shutdown())
      .then(
        () => resolveStopped(0),
        (e: unknown) => {
          log.error({ err: errorMessage(e) }, 'shutdown failed');
          resolveStopped(1);
        },
      );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    started = agent.start();
    await started;
  } catch (e) {
    log.fatal({ err: errorMessage(e), code: e instanceof SealtrailError ? e.code : undefined }, 'sealtrail agent failed to start');
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    throw e;
  }
  return stopped;
}
