/**
 * Segment scans in worker threads: verification is CPU-bound hashing (three SHA-256 calls per
 * entry: leaf, chain, and on average one Merkle node), and segments can be scanned independently
 * (scan.ts), so the verifier hands whole segments to a pool while it checks checkpoints in order on
 * the main thread. Memory: the segments in flight (at most workers + 1).
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type SegmentScan, type WireScan, scanFromWire } from './scan.js';

interface Pending {
  readonly resolve: (s: SegmentScan) => void;
  readonly reject: (e: Error) => void;
}

/** A fixed set of scan workers, used round-robin by the least busy. */
export class ScanPool {
  readonly #workers: { w: Worker; busy: number }[] = [];
  readonly #pending = new Map<number, Pending>();
  #next = 0;

  private constructor(n: number, script: URL) {
    for (let i = 0; i < n; i++) {
      const w = new Worker(script);
      w.unref();
      const slot = { w, busy: 0 };
      w.on('message', (m: { id: number; scan?: WireScan; error?: string }) => {
        slot.busy--;
        const p = this.#pending.get(m.id);
        this.#pending.delete(m.id);
        if (!p) return;
        if (m.scan) p.resolve(scanFromWire(m.scan));
        else p.reject(new Error(`segment scan worker: ${m.error ?? 'no result'}`));
      });
      w.on('error', (e) => {
        for (const p of this.#pending.values()) p.reject(e);
        this.#pending.clear();
      });
      this.#workers.push(slot);
    }
  }

  /**
   * A pool of `n` workers (default: the available cores, at most 8), or null when `n` is 0 or the
   * compiled worker script is not there (running from TypeScript sources, e.g. under vitest).
   */
  static create(n?: number): ScanPool | null {
    const count = n ?? Math.min(8, availableParallelism());
    if (count <= 0) return null;
    const script = new URL('./scan-worker.js', import.meta.url);
    if (script.protocol !== 'file:' || !existsSync(fileURLToPath(script))) return null;
    return new ScanPool(count, script);
  }

  get size(): number {
    return this.#workers.length;
  }

  /** Scans one whole segment in a worker; `bytes` is transferred (unusable afterwards). */
  scan(bytes: Uint8Array, probe: Iterable<number>, digest: boolean): Promise<SegmentScan> {
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer ? bytes : bytes.slice();
    const slot = this.#workers.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = this.#next++;
    slot.busy++;
    return new Promise<SegmentScan>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      slot.w.postMessage({ id, bytes: own, probe: [...probe], digest }, [own.buffer as ArrayBuffer]);
    });
  }

  /** Stops the workers. Safe to call twice. */
  async close(): Promise<void> {
    const ws = this.#workers.splice(0);
    await Promise.all(ws.map((s) => s.w.terminate()));
  }
}
