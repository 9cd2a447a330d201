/**
 * Young-generation collections paced by bytes read (src/receiver/read-gc.ts): one per READ_GC_BYTES
 * counted, none before, and each a real minor collection of V8 (seen by a PerformanceObserver).
 * Its effect on the agent's memory is measured with the real agent in docs/benchmarks.md (session 11).
 */
import { type PerformanceEntry, PerformanceObserver, constants } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { READ_GC_BYTES, noteBytesRead, readGcRuns } from '../../src/receiver/read-gc.js';

describe('read-paced young-generation collections', () => {
  it('collects the young generation once per READ_GC_BYTES read, and not before', async () => {
    const minors: number[] = [];
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if ((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) minors.push(e.startTime);
      }
    });
    obs.observe({ entryTypes: ['gc'] });
    try {
      const before = readGcRuns();
      // Below the threshold in many small reads: no paced collection.
      for (let i = 0; i < 63; i++) noteBytesRead(READ_GC_BYTES / 64);
      expect(readGcRuns()).toBe(before);
      // The read that reaches it triggers one; the count starts again from there.
      const t0 = performance.now();
      noteBytesRead(READ_GC_BYTES / 64);
      expect(readGcRuns()).toBe(before + 1);
      noteBytesRead(READ_GC_BYTES - 1);
      expect(readGcRuns()).toBe(before + 1);
      noteBytesRead(1);
      expect(readGcRuns()).toBe(before + 2);
      // One large read counts as what it is (not as several thresholds at once).
      noteBytesRead(5 * READ_GC_BYTES);
      expect(readGcRuns()).toBe(before + 3);
      // GC entries are delivered asynchronously.
      await new Promise((r) => setTimeout(r, 50));
      expect(minors.filter((t) => t >= t0).length).toBeGreaterThanOrEqual(3);
    } finally {
      obs.disconnect();
    }
  });

  it('does not leave a global gc function behind', () => {
    noteBytesRead(READ_GC_BYTES);
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
  });
});
