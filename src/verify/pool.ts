/**
 * Segment scans in worker threads: verification is CPU-bound hashing (per entry a CRC-32C, the
 * leaf hash, the chain hash and on average one Merkle node), and segments can be scanned
 * independently (scan.ts), so the verifier hands segments to a pool while it checks checkpoints in
 * order on the main thread.
 *
 * Streaming with bounded memory: a segment is never held whole. A sealed segment of a directory
 * source arrives as an open descriptor (ObjectReader.mappable): the worker maps it itself,
 * {@link MAP_WINDOW} at a time, scans each window in place (frame-scan.ts) and unmaps it — no byte
 * is read(2)-copied or sent between threads. Anything else (the open segment, remote objects) the
 * main thread reads into a few fixed buffers per worker ({@link BUFFERS_PER_WORKER} ×
 * {@link CHUNK_BYTES}) and transfers them (zero-copy) to the worker, which sends each back once
 * scanned: read-ahead is bounded by the free buffers. Jobs queued for a worker hold no buffer and
 * no open file until their turn.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { nativeFileMap } from '../ledger/native-hash.js';
import { type SegmentScan, type WireScan, scanFromWire } from './scan.js';
import type { ObjectReader } from './source.js';

/** Size of one read: large enough that the per-message cost (~50 µs) is noise, small enough to bound memory. */
export const CHUNK_BYTES = 4 * 1024 * 1024;
/** Buffers per worker: one being scanned, one queued behind it, one being read. */
export const BUFFERS_PER_WORKER = 3;
/** Window a worker maps at a time of a mappable object (a sealed segment of a directory source). */
export const MAP_WINDOW = 8 * 1024 * 1024;

/** Messages to a worker. */
export type ToWorker =
  | { readonly t: 'start'; readonly id: number; readonly probe: readonly number[]; readonly digest: boolean; readonly parse: boolean }
  | { readonly t: 'chunk'; readonly id: number; readonly buf: ArrayBuffer; readonly len: number }
  | { readonly t: 'map'; readonly id: number; readonly fd: number; readonly offset: number; readonly length: number }
  | { readonly t: 'end'; readonly id: number };
/** Messages from a worker. */
export type FromWorker =
  | { readonly t: 'buf'; readonly buf: ArrayBuffer }
  | { readonly t: 'done'; readonly id: number; readonly scan: WireScan }
  | { readonly t: 'error'; readonly id: number; readonly error: string };

/** What one job asks for. `parse: false` only hashes the bytes (digest) and counts them. */
export interface ScanJob {
  readonly open: () => Promise<ObjectReader>;
  readonly probe: Iterable<number>;
  readonly digest: boolean;
  readonly parse: boolean;
}

/**
 * A mapped view copied into a transfer buffer: a user-space copy from the mapping costs less CPU
 * than read(2)'s copy out of the page cache (mapped memory cannot be transferred to a worker).
 */
function copyView(v: Uint8Array | null, buf: ArrayBuffer): number {
  if (!v) return 0;
  new Uint8Array(buf).set(v);
  return v.length;
}

interface Slot {
  readonly w: Worker;
  /** Jobs given to this worker and not finished. */
  busy: number;
  /** Buffers currently on this side (not in the worker). */
  readonly free: ArrayBuffer[];
  /** Feeders waiting for a buffer to come back. */
  readonly waiting: ((b: ArrayBuffer | null) => void)[];
  /** The feed of the job before: the next job's reads start when it has sent its last chunk. */
  tail: Promise<void>;
}

interface Pending {
  readonly resolve: (s: SegmentScan) => void;
  readonly reject: (e: Error) => void;
}

/** A fixed set of scan workers; each job goes to the worker with the fewest unfinished jobs. */
export class ScanPool {
  readonly #slots: Slot[] = [];
  readonly #pending = new Map<number, Pending>();
  #next = 0;
  #closed = false;

  private constructor(n: number, script: URL) {
    for (let i = 0; i < n; i++) {
      const w = new Worker(script);
      w.unref();
      const slot: Slot = { w, busy: 0, free: [], waiting: [], tail: Promise.resolve() };
      for (let b = 0; b < BUFFERS_PER_WORKER; b++) slot.free.push(new ArrayBuffer(CHUNK_BYTES));
      w.on('message', (m: FromWorker) => {
        if (m.t === 'buf') {
          this.#giveBack(slot, m.buf);
          return;
        }
        slot.busy--;
        const p = this.#pending.get(m.id);
        this.#pending.delete(m.id);
        if (!p) return;
        if (m.t === 'done') p.resolve(scanFromWire(m.scan));
        else p.reject(new Error(`segment scan worker: ${m.error}`));
      });
      w.on('error', (e) => {
        for (const p of this.#pending.values()) p.reject(e);
        this.#pending.clear();
      });
      this.#slots.push(slot);
    }
  }

  /**
   * A pool of `n` workers, or null when `n` is 0 or the compiled worker script is not there
   * (running from TypeScript sources, e.g. under vitest). Default: one worker per available core
   * (at most 8) — but none on a single core (e.g. under `taskset -c 0`), where a worker would only
   * add its start-up (~0.1 s of CPU) and the hand-over to the scan the main thread can do itself.
   */
  static create(n?: number): ScanPool | null {
    const cores = availableParallelism();
    const count = n ?? (cores > 1 ? Math.min(8, cores) : 0);
    if (count <= 0) return null;
    const script = new URL('./scan-worker.js', import.meta.url);
    if (script.protocol !== 'file:' || !existsSync(fileURLToPath(script))) return null;
    return new ScanPool(count, script);
  }

  get size(): number {
    return this.#slots.length;
  }

  /**
   * Scans one object in a worker, streaming it through that worker's buffers.
   * @throws (rejects) whatever the reader throws (SealtrailError IO), or an Error if the worker fails
   */
  scan(job: ScanJob): Promise<SegmentScan> {
    if (this.#closed) return Promise.reject(new Error('scan pool is closed'));
    const slot = this.#slots.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = this.#next++;
    slot.busy++;
    const result = new Promise<SegmentScan>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    const feed = slot.tail.then(() => this.#feed(slot, id, job, result));
    slot.tail = feed.catch(() => undefined);
    // A read error fails the job; the worker still gets its `end` (sent by #feed) and answers.
    return Promise.all([result, feed]).then(([s]) => s);
  }

  async #feed(slot: Slot, id: number, job: ScanJob, result: Promise<SegmentScan>): Promise<void> {
    slot.w.postMessage({ t: 'start', id, probe: [...job.probe], digest: job.digest, parse: job.parse } satisfies ToWorker);
    let reader: ObjectReader | undefined;
    try {
      reader = await job.open();
      const m = reader.mappable;
      if (m && nativeFileMap) {
        // The worker maps the windows itself: no bytes cross threads, nothing is copied. The
        // descriptor stays open until the worker has answered for this job.
        for (let off = 0; off < m.size; off += MAP_WINDOW) {
          slot.w.postMessage({ t: 'map', id, fd: m.fd, offset: off, length: Math.min(MAP_WINDOW, m.size - off) } satisfies ToWorker);
        }
        const r = reader;
        reader = undefined;
        const close = (): Promise<void> => r.close().catch(() => undefined);
        void result.then(close, close);
        return;
      }
      for (;;) {
        const buf = await this.#take(slot);
        let n: number;
        try {
          n = reader.view ? copyView(await reader.view(buf.byteLength), buf) : await reader.read(new Uint8Array(buf));
        } catch (e) {
          this.#giveBack(slot, buf);
          throw e;
        }
        if (n === 0) {
          this.#giveBack(slot, buf);
          break;
        }
        slot.w.postMessage({ t: 'chunk', id, buf, len: n } satisfies ToWorker, [buf]);
        if (!reader.view && n < buf.byteLength) break; // a short read is the end of the object
      }
    } finally {
      if (!this.#closed) slot.w.postMessage({ t: 'end', id } satisfies ToWorker);
      await reader?.close();
    }
  }

  #take(slot: Slot): Promise<ArrayBuffer> {
    const b = slot.free.pop();
    if (b) return Promise.resolve(b);
    if (this.#closed) return Promise.reject(new Error('scan pool is closed'));
    return new Promise((resolve, reject) => slot.waiting.push((x) => (x ? resolve(x) : reject(new Error('scan pool is closed')))));
  }

  #giveBack(slot: Slot, buf: ArrayBuffer): void {
    const w = slot.waiting.shift();
    if (w) w(buf);
    else slot.free.push(buf);
  }

  /** Stops the workers (pending reads end with an error). Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    const slots = this.#slots.splice(0);
    for (const s of slots) for (const w of s.waiting.splice(0)) w(null);
    await Promise.all(slots.map((s) => s.w.terminate()));
  }
}
