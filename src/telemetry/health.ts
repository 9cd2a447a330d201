/**
 * Readiness registry: components register named checks; `/readyz` (src/telemetry/server.ts)
 * answers 200 only when every check passes, and lists each check with the reason it fails.
 *
 * Liveness (`/healthz`) is deliberately not here: it only says the process answers HTTP. A failed
 * readiness check must not make Kubernetes restart the agent (a restart cannot fix a full disk or
 * an unreachable S3 bucket, and would interrupt a graceful shutdown).
 *
 * Details are shown to anyone who can reach the health endpoint, so a check's `detail` must never
 * carry key material, tokens or credentials: say "key file ./k/signing.key missing", not the key.
 * As a second line of defence, details are cut to one printable line of limited length.
 */
import { errorMessage } from '../errors.js';
import type { Metrics } from './metrics.js';

/** The result of one readiness check. */
export interface CheckResult {
  readonly ok: boolean;
  /** Why it fails (or a short status when it passes). Never secrets. */
  readonly detail?: string;
}

/** A readiness check: cheap, no side effects, resolves quickly (it runs on every probe). */
export type ReadinessCheck = () => CheckResult | Promise<CheckResult>;

/** The check names DESIGN.md / issue 6 require; components register under exactly these. */
export const READINESS_CHECKS = {
  keyLoaded: 'key loaded',
  ledgerWritable: 'ledger writable',
  diskBudget: 'disk budget not exhausted',
  quorumReachable: 'quorum reachable',
  noUnsafeDestination: 'no unsafe destination',
} as const;

/** The name of the synthetic check that fails once shutdown began. */
export const SHUTDOWN_CHECK = 'not shutting down';

export interface CheckReport {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface ReadinessReport {
  readonly ready: boolean;
  /** `ready`, `not ready`, or `shutting down` (which wins over `not ready`). */
  readonly status: 'ready' | 'not ready' | 'shutting down';
  /** Every check in registration order (expected-but-unregistered ones included). */
  readonly checks: readonly CheckReport[];
}

export interface HealthOptions {
  /**
   * Check names that must be registered before the agent can be ready. A name listed here but
   * not (yet) registered fails with "not registered" — so a component that never started cannot
   * be mistaken for a healthy one. main.ts passes `Object.values(READINESS_CHECKS)`.
   */
  readonly expect?: readonly string[];
  /** A check that does not settle within this many ms fails with "timed out". Default 2000. */
  readonly checkTimeoutMs?: number;
  /** When given, `sealtrail_readiness_check{check}` and `sealtrail_ready` follow each evaluation. */
  readonly metrics?: Metrics;
}

const MAX_DETAIL = 300;

/** One printable line, bounded: a detail must not be able to inject lines into logs or JSON readers. */
function cleanDetail(s: string): string {
  // eslint-disable-next-line no-control-regex
  const one = s.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return one.length > MAX_DETAIL ? `${one.slice(0, MAX_DETAIL - 1)}…` : one;
}

export class Health {
  readonly #checks = new Map<string, ReadinessCheck>();
  readonly #expect: readonly string[];
  readonly #timeoutMs: number;
  readonly #metrics: Metrics | undefined;
  #shuttingDown = false;
  #inFlight: Promise<ReadinessReport> | undefined;

  /** @throws RangeError when checkTimeoutMs is not a positive number. */
  constructor(opts: HealthOptions = {}) {
    this.#expect = [...(opts.expect ?? [])];
    this.#timeoutMs = opts.checkTimeoutMs ?? 2000;
    if (!(this.#timeoutMs > 0)) throw new RangeError(`checkTimeoutMs must be > 0, got ${this.#timeoutMs}`);
    this.#metrics = opts.metrics;
  }

  /**
   * Register a named readiness check. Returns a function that removes it (for components that stop).
   * @throws TypeError when the name is empty or already registered (two components claiming one
   *   check is a wiring bug, and silently replacing one would hide a failing check).
   */
  register(name: string, check: ReadinessCheck): () => void {
    if (typeof name !== 'string' || name.trim() === '') throw new TypeError('readiness check name must be a non-empty string');
    if (this.#checks.has(name)) throw new TypeError(`readiness check "${name}" is already registered`);
    this.#checks.set(name, check);
    return () => {
      if (this.#checks.get(name) === check) this.#checks.delete(name);
    };
  }

  /** Names registered so far, in registration order. */
  names(): string[] {
    return [...this.#checks.keys()];
  }

  /**
   * Mark the agent as shutting down: from now on readiness fails with the check
   * "not shutting down". Idempotent. Liveness is unaffected.
   */
  beginShutdown(): void {
    this.#shuttingDown = true;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /**
   * Run every check (concurrently, each bounded by the timeout) and report. Concurrent callers
   * share one evaluation, so a burst of probes does not multiply the work. Never rejects: a check
   * that throws or rejects fails with its error message as detail.
   */
  evaluate(): Promise<ReadinessReport> {
    this.#inFlight ??= this.#evaluate().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #evaluate(): Promise<ReadinessReport> {
    const names = [...this.#checks.keys()];
    for (const n of this.#expect) if (!this.#checks.has(n)) names.push(n);
    const checks = await Promise.all(names.map((name) => this.#run(name, this.#checks.get(name))));
    if (this.#shuttingDown) {
      checks.push({ name: SHUTDOWN_CHECK, ok: false, detail: 'graceful shutdown in progress; new data is refused with a retryable status' });
    }
    const ready = checks.every((c) => c.ok);
    const report: ReadinessReport = {
      ready,
      status: ready ? 'ready' : this.#shuttingDown ? 'shutting down' : 'not ready',
      checks,
    };
    if (this.#metrics) {
      for (const c of checks) this.#metrics.readinessCheck.set({ check: c.name }, c.ok ? 1 : 0);
      this.#metrics.ready.set(ready ? 1 : 0);
    }
    return report;
  }

  async #run(name: string, check: ReadinessCheck | undefined): Promise<CheckReport> {
    if (!check) return { name, ok: false, detail: 'not registered: the component that reports this has not started' };
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<CheckResult>((resolve) => {
        timer = setTimeout(() => resolve({ ok: false, detail: `check timed out after ${this.#timeoutMs} ms` }), this.#timeoutMs);
        timer.unref();
      });
      const r = await Promise.race([Promise.resolve().then(check), timeout]);
      if (r === null || typeof r !== 'object' || typeof r.ok !== 'boolean') {
        return { name, ok: false, detail: 'check returned an invalid result (expected { ok: boolean, detail?: string })' };
      }
      return { name, ok: r.ok, detail: cleanDetail(r.detail ?? (r.ok ? 'ok' : 'failed')) };
    } catch (e) {
      return { name, ok: false, detail: cleanDetail(`check failed: ${errorMessage(e)}`) };
    } finally {
      clearTimeout(timer);
    }
  }
}
