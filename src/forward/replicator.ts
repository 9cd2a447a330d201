/**
 * The forwarder: copies every sealed segment and every checkpoint file to all destinations
 * (DESIGN.md "Forwarding", G2, G5, G6).
 *
 * - One worker per destination uploads the items it has not confirmed, in the source's order.
 * - An item is *safe* once `forwarding.quorum` (W) destinations confirmed it by reading it back.
 *   Confirmations from a destination the canary found unsafe (and the config did not accept) do not
 *   count: a copy that can be deleted is not redundancy.
 * - Failures are retried forever with capped exponential backoff and full jitter
 *   (delay = random(0, min(retry_max, retry_initial * 2^attempt))), so N agents hitting one store
 *   after an outage spread out instead of retrying in lock-step.
 * - Per-destination progress is a JSON file `<stateDir>/<destination>.json`, replaced atomically
 *   (temp file, fsync, rename, fsync dir) after every confirmation, so a restart neither skips an
 *   item nor uploads it again (and a re-upload of the same bytes is confirmed by the destination as
 *   already present, never written as a second version).
 * - The local copy is released only after every destination confirmed it (`delete_after: all`) or
 *   after W confirmed and it is `min_local_age` old (`delete_after: quorum`).
 */
import { constants as C } from 'node:fs';
import { mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { runCanary, type CanaryResult } from './canary.js';
import type { Destination, FileBody, PutResult } from './destination.js';
import { fsyncDir, hashFile } from './fs.js';
import { type ItemKind, objectKey } from './keys.js';

/** One sealed, immutable file the ledger wants forwarded. */
export interface SealedItem {
  readonly kind: ItemKind;
  /** The ledger's file name (also the last component of the object key). */
  readonly name: string;
  /** Where to read the bytes. */
  readonly path: string;
  /** When it was sealed (ms since epoch); the file's mtime when not given. */
  readonly sealedAt?: number;
}

/** What the replicator needs from the ledger (an adapter over src/ledger/ledger.ts is in ledger-source.ts). */
export interface SealedSource {
  /** Every sealed item still held locally, in forwarding order. */
  list(): Promise<SealedItem[]>;
  /** Called after new items became durable; returns an unsubscribe function. */
  onNew(cb: () => void): () => void;
  /** Delete the local copy; called only after the item was forwarded as `forwarding` says. */
  release(item: SealedItem): Promise<void>;
}

export type ForwardingConfig = Config['forwarding'];

export interface ReplicatorOptions {
  readonly source: SealedSource;
  readonly destinations: readonly Destination[];
  readonly forwarding: ForwardingConfig;
  /** The log's origin (part of every object key). */
  readonly origin: string;
  /** `<ledger.dir>/forward`. */
  readonly stateDir: string;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
  /** Destination names whose config says `accept_unsafe: true`. */
  readonly acceptUnsafe?: ReadonlySet<string>;
  /** Run the write-once canary on each destination before uploading to it (default true). */
  readonly canary?: boolean;
  /** Uploads in flight per destination (default 2): hides per-request latency of remote stores. */
  readonly concurrency?: number;
  /** Re-list the source this often as a safety net for missed notifications (default 5 s). */
  readonly pollIntervalMs?: number;
  readonly clock?: () => number;
  readonly random?: () => number;
}

export interface DestinationStatus {
  readonly name: string;
  readonly type: 'fs' | 's3';
  /** undefined until the first attempt; false after a failed attempt until the next success. */
  readonly healthy: boolean | undefined;
  /** undefined until the canary ran. */
  readonly unsafe: boolean | undefined;
  readonly acceptedUnsafe: boolean;
  readonly lagItems: number;
  readonly lagSeconds: number;
  readonly consecutiveFailures: number;
  readonly lastError?: string;
  readonly canary?: CanaryResult;
}

export interface ReplicatorStatus {
  /** quorumReachable and no unsafe (unaccepted) destination. */
  readonly ready: boolean;
  readonly quorum: number;
  readonly quorumReachable: boolean;
  /** Names of destinations found unsafe and not accepted by the config. */
  readonly unsafe: readonly string[];
  /** Items held locally that have not reached quorum yet. */
  readonly pendingQuorum: number;
  readonly quorumUnmetSeconds: number;
  readonly destinations: readonly DestinationStatus[];
}

interface Tracked {
  readonly item: SealedItem;
  readonly key: string;
  sealedAt: number;
  readonly confirmedBy: Set<string>;
  released: boolean;
  releasing: boolean;
  ageTimer?: NodeJS.Timeout;
}

interface StateEntry {
  sha256: string;
  size: number;
  versionId?: string;
  at: string;
}

interface StateFile {
  version: 1;
  destination: string;
  confirmed: Record<string, StateEntry>;
}

/** Writes `data` to `file` atomically and durably: temp file + fsync, rename, fsync dir. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const dir = join(file, '..');
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, C.O_WRONLY | C.O_CREAT | C.O_TRUNC, 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  await fsyncDir(dir);
}

class Worker {
  state: StateFile;
  healthy: boolean | undefined;
  unsafe: boolean | undefined;
  canary: CanaryResult | undefined;
  attempt = 0;
  lastError: string | undefined;
  /** Item names being uploaded by this worker's lanes right now. */
  readonly inflight = new Set<string>();
  /** Serialises writes of the progress file between lanes. */
  saveChain: Promise<void> = Promise.resolve();
  readonly #sleepers = new Set<{ wake: () => void; backingOff: boolean }>();
  done: Promise<void> = Promise.resolve();

  constructor(
    readonly dest: Destination,
    readonly file: string,
    readonly accepted: boolean,
  ) {
    this.state = { version: 1, destination: dest.name, confirmed: {} };
  }

  /** Waits until woken or `ms` elapsed (idle, no timeout, when ms is undefined). */
  sleep(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const s = {
        backingOff: ms !== undefined,
        wake: () => {
          if (timer) clearTimeout(timer);
          this.#sleepers.delete(s);
          resolve();
        },
      };
      this.#sleepers.add(s);
      if (ms !== undefined) timer = setTimeout(s.wake, ms);
    });
  }

  /** Wakes idle lanes (new items) or, with force, also those backing off (shutdown). */
  wake(force = false): void {
    for (const s of [...this.#sleepers]) if (force || !s.backingOff) s.wake();
  }

  /** Confirmations from this destination count toward quorum. */
  get counts(): boolean {
    return this.unsafe !== true || this.accepted;
  }
}

export class Replicator {
  readonly #o: ReplicatorOptions;
  readonly #workers: Worker[];
  readonly #items = new Map<string, Tracked>();
  #order: Tracked[] = [];
  /** Size and SHA-256 of each item being forwarded, computed once for all destinations (dropped when it is confirmed everywhere or released). */
  readonly #hashes = new Map<string, Promise<{ body: FileBody; sha256: Uint8Array }>>();
  #running = false;
  #stopping = false;
  #unsubscribe: (() => void) | undefined;
  #poll: NodeJS.Timeout | undefined;
  #gauges: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  #refreshAgain = false;
  /** Aborted by stop(): uploads in flight end early (they are retried after restart). */
  #abort = new AbortController();
  readonly #clock: () => number;
  readonly #random: () => number;

  constructor(o: ReplicatorOptions) {
    if (o.destinations.length > 0 && o.forwarding.quorum > o.destinations.length) {
      throw new RangeError(`forwarding.quorum ${o.forwarding.quorum} is larger than the ${o.destinations.length} destinations`);
    }
    const names = new Set<string>();
    for (const d of o.destinations) {
      if (names.has(d.name)) throw new RangeError(`duplicate destination name ${d.name}`);
      names.add(d.name);
    }
    this.#o = o;
    this.#clock = o.clock ?? Date.now;
    this.#random = o.random ?? Math.random;
    this.#workers = o.destinations.map((d) => new Worker(d, join(o.stateDir, `${d.name}.json`), o.acceptUnsafe?.has(d.name) ?? false));
  }

  /**
   * Loads the durable progress, lists the source and starts one worker per destination.
   * Safe to call twice.
   * @throws SealtrailError IO when the state directory cannot be created or a state file is unreadable.
   */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#stopping = false;
    this.#abort = new AbortController();
    await mkdir(this.#o.stateDir, { recursive: true });
    for (const w of this.#workers) w.state = await this.#loadState(w);
    this.#unsubscribe = this.#o.source.onNew(() => this.wake());
    await this.#refresh();
    for (const w of this.#workers) w.done = this.#run(w);
    const poll = this.#o.pollIntervalMs ?? 5000;
    this.#poll = setInterval(() => this.wake(), poll);
    this.#poll.unref();
    this.#gauges = setInterval(() => this.#updateGauges(), 1000);
    this.#gauges.unref();
    this.#updateGauges();
  }

  /** Stops after the uploads in flight finish; progress is already durable. Safe to call twice. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#stopping = true;
    this.#unsubscribe?.();
    if (this.#poll) clearInterval(this.#poll);
    if (this.#gauges) clearInterval(this.#gauges);
    for (const t of this.#items.values()) if (t.ageTimer) clearTimeout(t.ageTimer);
    for (const w of this.#workers) w.wake(true);
    this.#abort.abort();
    await Promise.all(this.#workers.map((w) => w.done));
    await this.#refreshing;
    this.#running = false;
  }

  /** Re-list the source and wake idle workers (called on ledger notifications). */
  wake(): void {
    if (this.#stopping) return;
    void this.#refresh().then(
      () => {
        for (const w of this.#workers) w.wake();
      },
      (e: unknown) => this.#o.logger?.error({ err: errorMessage(e) }, 'forwarder: cannot list sealed items'),
    );
  }

  /** Resolves when every listed item was released or `timeoutMs` passed (tests, shutdown). */
  async drained(timeoutMs: number): Promise<boolean> {
    const end = this.#clock() + timeoutMs;
    for (;;) {
      await this.#refresh();
      // An item whose release is under way has already vanished from the listing: wait for it too.
      if (this.#order.every((t) => t.released) && [...this.#items.values()].every((t) => !t.releasing)) return true;
      if (this.#clock() >= end) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  status(): ReplicatorStatus {
    const now = this.#clock();
    const W = this.#o.forwarding.quorum;
    const live = this.#order.filter((t) => !t.released);
    const dests: DestinationStatus[] = this.#workers.map((w) => {
      const lag = live.filter((t) => !t.confirmedBy.has(w.dest.name));
      return {
        name: w.dest.name,
        type: w.dest.type,
        healthy: w.healthy,
        unsafe: w.unsafe,
        acceptedUnsafe: w.accepted,
        lagItems: lag.length,
        lagSeconds: lag.length ? Math.max(0, (now - Math.min(...lag.map((t) => t.sealedAt))) / 1000) : 0,
        consecutiveFailures: w.attempt,
        ...(w.lastError !== undefined ? { lastError: w.lastError } : {}),
        ...(w.canary !== undefined ? { canary: w.canary } : {}),
      };
    });
    const unsafe = this.#workers.filter((w) => w.unsafe === true && !w.accepted).map((w) => w.dest.name);
    const reachable = this.#workers.filter((w) => w.healthy !== false && w.counts).length;
    const quorumReachable = this.#workers.length === 0 || reachable >= W;
    const unmet = live.filter((t) => !this.#quorumMet(t));
    return {
      ready: quorumReachable && unsafe.length === 0,
      quorum: W,
      quorumReachable,
      unsafe,
      pendingQuorum: unmet.length,
      quorumUnmetSeconds: unmet.length ? Math.max(0, (now - Math.min(...unmet.map((t) => t.sealedAt))) / 1000) : 0,
      destinations: dests,
    };
  }

  /** Readiness checks in the shape src/telemetry/health.ts registers. */
  readinessChecks(): { quorumReachable: () => { ok: boolean; detail: string }; noUnsafeDestination: () => { ok: boolean; detail: string } } {
    return {
      quorumReachable: () => {
        const s = this.status();
        if (this.#workers.length === 0) return { ok: true, detail: 'no destinations configured (local-only)' };
        const down = s.destinations.filter((d) => d.healthy === false).map((d) => `${d.name}: ${d.lastError ?? 'failing'}`);
        if (s.quorumReachable) {
          return { ok: true, detail: `quorum ${s.quorum} of ${s.destinations.length} reachable${down.length ? `; failing: ${down.join('; ')}` : ''}` };
        }
        // Name every destination that does not count yet, so the operator sees why at once.
        const notCounting = [
          ...down,
          ...s.destinations.filter((d) => d.healthy === undefined).map((d) => `${d.name}: no confirmed upload yet`),
          ...s.unsafe.map((n) => `${n}: unsafe (accepts delete or overwrite), does not count`),
        ];
        return { ok: false, detail: `fewer than ${s.quorum} destinations reachable; ${notCounting.join('; ') || 'none confirmed yet'}` };
      },
      noUnsafeDestination: () => {
        const s = this.status();
        return s.unsafe.length === 0
          ? { ok: true, detail: 'no unsafe destination' }
          : { ok: false, detail: `unsafe (accept deletes or overwrites): ${s.unsafe.join(', ')}` };
      },
    };
  }

  #quorumMet(t: Tracked): boolean {
    let n = 0;
    for (const w of this.#workers) if (w.counts && t.confirmedBy.has(w.dest.name)) n++;
    return n >= this.#o.forwarding.quorum;
  }

  async #loadState(w: Worker): Promise<StateFile> {
    let text: string;
    try {
      text = await readFile(w.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, destination: w.dest.name, confirmed: {} };
      throw e;
    }
    try {
      const s = JSON.parse(text) as StateFile;
      if (s.version === 1 && typeof s.confirmed === 'object' && s.confirmed !== null) return s;
    } catch {
      // handled below
    }
    // Starting from nothing is safe: every upload first checks what the destination holds, and
    // identical bytes are confirmed as already present without writing a new version.
    this.#o.logger?.error({ file: w.file }, 'forwarder: unreadable progress file; re-checking every local item at this destination');
    return { version: 1, destination: w.dest.name, confirmed: {} };
  }

  async #saveState(w: Worker): Promise<void> {
    // Keep only items still held locally: released ones are safe at every destination already.
    const keep = new Set(this.#order.filter((t) => !t.released).map((t) => t.key));
    for (const k of Object.keys(w.state.confirmed)) if (!keep.has(k)) delete w.state.confirmed[k];
    await writeFileAtomic(w.file, JSON.stringify(w.state));
  }

  /** Lists the source; new items are tracked, vanished ones dropped. Serialised. */
  async #refresh(): Promise<void> {
    if (this.#refreshing) {
      this.#refreshAgain = true;
      return this.#refreshing;
    }
    this.#refreshing = (async () => {
      do {
        this.#refreshAgain = false;
        const listed = await this.#o.source.list();
        const seen = new Set<string>();
        const order: Tracked[] = [];
        for (const item of listed) {
          seen.add(item.name);
          let t = this.#items.get(item.name);
          if (!t) {
            const key = objectKey(this.#o.origin, item.kind, item.name);
            let sealedAt = item.sealedAt;
            if (sealedAt === undefined) sealedAt = await stat(item.path).then((s) => s.mtimeMs, () => this.#clock());
            t = { item, key, sealedAt, confirmedBy: new Set(), released: false, releasing: false };
            for (const w of this.#workers) if (w.state.confirmed[key]) t.confirmedBy.add(w.dest.name);
            this.#items.set(item.name, t);
            // Confirmed everywhere before a restart but not yet released: release now.
            queueMicrotask(() => void this.#maybeRelease(t!));
          }
          if (!t.released) order.push(t);
        }
        for (const [name, t] of this.#items) {
          if (!seen.has(name) && !t.releasing) {
            t.released = true;
            if (t.ageTimer) clearTimeout(t.ageTimer);
            this.#items.delete(name);
          }
        }
        this.#order = order;
      } while (this.#refreshAgain);
    })().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  /**
   * The item as a FileBody with its SHA-256, hashed a chunk at a time: destinations then read the
   * file themselves, a chunk at a time, so an upload in flight costs a chunk of memory, not the
   * segment (a sealed file does not change; if it did, the destination's read-back would not match).
   */
  async #read(t: Tracked): Promise<{ body: FileBody; sha256: Uint8Array }> {
    const hit = this.#hashes.get(t.item.name);
    if (hit) return hit;
    const p = hashFile(t.item.path).then(({ size, sha256 }) => ({ body: { file: t.item.path, size }, sha256: new Uint8Array(Buffer.from(sha256, 'hex')) }));
    this.#hashes.set(t.item.name, p);
    return p.catch((e: unknown) => {
      this.#hashes.delete(t.item.name);
      throw e;
    });
  }

  #evict(name: string): void {
    this.#hashes.delete(name);
  }

  #backoff(w: Worker, afterMs: number, permanent: boolean): number {
    const f = this.#o.forwarding;
    if (permanent) return Math.max(afterMs, f.retry_max * (0.5 + 0.5 * this.#random()));
    const cap = Math.min(f.retry_max, f.retry_initial * 2 ** Math.min(w.attempt - 1, 30));
    return Math.max(afterMs, this.#random() * cap);
  }

  async #run(w: Worker): Promise<void> {
    const log = this.#o.logger?.child({ destination: w.dest.name });
    const m = this.#o.metrics;
    const label = { destination: w.dest.name };
    // The canary runs before the first upload to a destination.
    while (!this.#stopping && this.#o.canary !== false && w.canary === undefined) {
      const r = await runCanary(w.dest);
      if (this.#stopping) break;
      if (r.safe === undefined) {
        w.attempt++;
        w.healthy = false;
        w.lastError = `canary: ${r.error ?? 'did not run'}`;
        log?.warn({ err: w.lastError }, 'forwarder: destination unreachable for the write-once canary; retrying');
        await w.sleep(this.#backoff(w, 0, false));
        continue;
      }
      w.canary = r;
      w.unsafe = !r.safe;
      w.attempt = 0;
      w.healthy = true; // the canary wrote and read back an object
      w.lastError = undefined;
      m?.destinationUnsafe.set(label, r.safe ? 0 : 1);
      if (!r.safe) {
        const failed = r.checks.filter((c) => !c.ok).map((c) => c.detail).join('; ');
        if (w.accepted) log?.warn({ failed }, 'forwarder: destination is NOT write-once (accepted by accept_unsafe: true)');
        else log?.error({ failed }, 'forwarder: destination is NOT write-once: its copies do not count toward quorum');
      }
    }
    const lanes = Math.max(1, this.#o.concurrency ?? 2);
    await Promise.all(Array.from({ length: lanes }, () => this.#lane(w, log, label)));
  }

  /** One upload at a time; a worker runs `concurrency` lanes over the same item list. */
  async #lane(w: Worker, log: Logger | undefined, label: { destination: string }): Promise<void> {
    const m = this.#o.metrics;
    while (!this.#stopping) {
      const next = this.#order.find((t) => !t.released && !t.confirmedBy.has(w.dest.name) && !w.inflight.has(t.item.name));
      if (!next) {
        await w.sleep();
        continue;
      }
      w.inflight.add(next.item.name);
      try {
        await this.#upload(w, next, log, label, m);
      } finally {
        w.inflight.delete(next.item.name);
      }
    }
  }

  /** One attempt at one item; on failure the lane backs off here (keeping the item in flight). */
  async #upload(w: Worker, next: Tracked, log: Logger | undefined, label: { destination: string }, m: Metrics | undefined): Promise<void> {
    let res: PutResult;
    let size = 0;
    try {
      const { body, sha256 } = await this.#read(next);
      size = body.size;
      res = await w.dest.put({ key: next.key, body, sha256 }, { signal: this.#abort.signal });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        // Released or removed meanwhile: re-list and move on.
        await this.#refresh().catch(() => undefined);
        return;
      }
      res = { kind: 'retryable', afterMs: 0, reason: `${w.dest.name}: ${errorMessage(e)}` };
    }
    if (this.#stopping && res.kind !== 'confirmed') return;
    if (res.kind !== 'confirmed' && (next.released || next.releasing)) {
      // Released meanwhile (enough other destinations have it, delete_after: quorum): its file is
      // gone, so this attempt could not read it, and this destination is no longer owed it. Not a
      // failure of the destination.
      await this.#refresh().catch(() => undefined);
      return;
    }
    if (res.kind === 'confirmed') {
      w.state.confirmed[next.key] = {
        sha256: res.receipt.sha256,
        size: res.receipt.size,
        ...(res.receipt.versionId !== undefined ? { versionId: res.receipt.versionId } : {}),
        at: res.receipt.confirmedAt,
      };
      try {
        const saved = w.saveChain.then(() => this.#saveState(w));
        w.saveChain = saved.catch(() => undefined);
        await saved;
      } catch (e) {
        // Without a durable record the confirmation does not count yet; the next attempt finds
        // the identical object and confirms it as already present.
        delete w.state.confirmed[next.key];
        w.attempt++;
        w.lastError = `cannot save forwarder state ${w.file}: ${errorMessage(e)}`;
        log?.error({ err: w.lastError }, 'forwarder: state write failed');
        await w.sleep(this.#backoff(w, 0, false));
        return;
      }
      next.confirmedBy.add(w.dest.name);
      w.attempt = 0;
      w.healthy = true;
      w.lastError = undefined;
      m?.exporterSent.inc(label);
      m?.exporterSentBytes.inc(label, size);
      log?.debug({ key: next.key, versionId: res.receipt.versionId, alreadyPresent: res.receipt.alreadyPresent }, 'forwarder: confirmed');
      if (this.#workers.every((x) => next.confirmedBy.has(x.dest.name))) this.#evict(next.item.name);
      this.#updateGauges();
      await this.#maybeRelease(next);
      return;
    }
    w.attempt++;
    w.healthy = false;
    w.lastError = res.reason;
    m?.exporterSendFailed.inc(label);
    if (res.kind === 'failed') {
      m?.verificationFailures.inc({ check: 'forward' });
      log?.error({ key: next.key, reason: res.reason }, 'forwarder: destination refused the object; retrying slowly (needs attention)');
    } else if (w.attempt === 1 || w.attempt % 10 === 0) {
      log?.warn({ key: next.key, reason: res.reason, attempt: w.attempt }, 'forwarder: upload failed; retrying with backoff');
    }
    this.#updateGauges();
    await w.sleep(this.#backoff(w, res.kind === 'retryable' ? res.afterMs : 0, res.kind === 'failed'));
  }

  /** Releases the local copy once forwarding says it may (never before the state is durable). */
  async #maybeRelease(t: Tracked): Promise<void> {
    if (t.released || t.releasing || this.#workers.length === 0 || !this.#quorumMet(t)) return;
    const f = this.#o.forwarding;
    if (f.delete_after === 'all' && !this.#workers.every((w) => t.confirmedBy.has(w.dest.name))) return;
    const age = this.#clock() - t.sealedAt;
    if (age < f.min_local_age) {
      if (!t.ageTimer && !this.#stopping) {
        t.ageTimer = setTimeout(() => {
          t.ageTimer = undefined;
          void this.#maybeRelease(t);
        }, f.min_local_age - age + 5);
        t.ageTimer.unref();
      }
      return;
    }
    t.releasing = true;
    try {
      await this.#o.source.release(t.item);
      t.released = true;
      this.#evict(t.item.name);
      this.#items.delete(t.item.name);
      this.#order = this.#order.filter((x) => x !== t);
    } catch (e) {
      this.#o.logger?.error({ item: t.item.name, err: errorMessage(e) }, 'forwarder: cannot release the local copy; will retry');
    } finally {
      t.releasing = false;
    }
    this.#updateGauges();
  }

  #updateGauges(): void {
    const m = this.#o.metrics;
    if (!m) return;
    const s = this.status();
    for (const d of s.destinations) {
      const label = { destination: d.name };
      m.exporterLagSegments.set(label, this.#order.filter((t) => !t.released && t.item.kind === 'segment' && !t.confirmedBy.has(d.name)).length);
      m.exporterLagSeconds.set(label, d.lagSeconds);
    }
    m.exporterQuorumUnmetSeconds.set(s.quorumUnmetSeconds);
  }
}
