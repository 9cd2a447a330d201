/**
 * bench/episodes.ts: slow requests grouped into episodes, and the garbage-collection log a server
 * writes under GC_PRELOAD, for bench/fixed-rate.ts's --slow-ms and --gc. The preload is run for real
 * in a child node process that is made to collect.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GC_PRELOAD, gcNear, gcSummary, groupEpisodes, parseGcLog } from '../../bench/episodes.js';

describe('groupEpisodes', () => {
  it('puts requests less than the gap apart into one episode, in time order, counting failures apart', () => {
    const eps = groupEpisodes(
      [
        { atMs: 130, ms: 6 },
        { atMs: 100, ms: 9 },
        { atMs: 110 }, // failed
        { atMs: 119.9, ms: 7 },
        { atMs: 500, ms: 12 },
        { atMs: 139.9, ms: 5 }, // 9.9 ms after 130: same episode
        { atMs: 160, ms: 5 }, // 20.1 ms after 139.9: a new one
      ],
      20,
    );
    expect(eps).toEqual([
      { startMs: 100, endMs: 139.9, requests: 5, failed: 1, maxMs: 9 },
      { startMs: 160, endMs: 160, requests: 1, failed: 0, maxMs: 5 },
      { startMs: 500, endMs: 500, requests: 1, failed: 0, maxMs: 12 },
    ]);
  });

  it('has no episode without slow requests, and an all-failed episode has max 0', () => {
    expect(groupEpisodes([])).toEqual([]);
    expect(groupEpisodes([{ atMs: 5 }, { atMs: 6 }])).toEqual([{ startMs: 5, endMs: 6, requests: 2, failed: 2, maxMs: 0 }]);
  });
});

describe('the collection log', () => {
  it('parses lines relative to the window, names the kinds and skips what is not a line of it', () => {
    const ev = parseGcLog(['1000.5 1.25 1', '1010 9.5 4', 'garbage', '', '1020 0.3 8', '1030 0.1 16', '1040 2 3'].join('\n'), 1000);
    expect(ev).toEqual([
      { atMs: 0.5, ms: 1.25, kind: 'scavenge' },
      { atMs: 10, ms: 9.5, kind: 'mark-compact' },
      { atMs: 20, ms: 0.3, kind: 'incremental marking' },
      { atMs: 30, ms: 0.1, kind: 'weak callbacks' },
      { atMs: 40, ms: 2, kind: 'other' },
    ]);
  });

  it('sums the window only, with counts, totals and maxima per kind', () => {
    const ev = parseGcLog(['990 5 4', '1001 1 1', '1002 2 1', '1050 9 4', '2000 3 1'].join('\n'), 1000);
    expect(gcSummary(ev, 1000)).toBe('2 scavenges (3.0 ms, max 2.0), 1 mark-compact (9.0 ms, max 9.0)');
    expect(gcSummary(ev, 1)).toBe('none');
  });

  it('finds the collections that overlap an episode or end shortly before it', () => {
    const ev = parseGcLog(['1100 2 1', '1180 10 4', '1300 1 1', '1500 1 1'].join('\n'), 1000);
    const near = gcNear(ev, { startMs: 240, endMs: 310, requests: 3, failed: 0, maxMs: 8 }, 50);
    // 100..102 ends 138 ms before: no; 180..190 ends 50 ms before: yes; 300 inside: yes; 500 after: no
    expect(near.map((g) => g.atMs)).toEqual([180, 300]);
  });

  it('GC_PRELOAD makes a node process log its real collections', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sealtrail-gc-preload-'));
    try {
      const preload = path.join(dir, 'p.cjs');
      const log = path.join(dir, 'gc.log');
      writeFileSync(preload, GC_PRELOAD);
      const t0 = Date.now();
      const r = spawnSync(process.execPath, ['--expose-gc', '--require', preload, '-e', 'let a = []; for (let i = 0; i < 2e5; i++) a.push({ i }); a = null; globalThis.gc(); setTimeout(() => {}, 50);'], {
        env: { ...process.env, SEALTRAIL_BENCH_GC_LOG: log },
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(r.status, r.stderr).toBe(0);
      const ev = parseGcLog(readFileSync(log, 'utf8'), t0);
      expect(ev.some((g) => g.kind === 'mark-compact')).toBe(true); // the forced gc()
      for (const g of ev) {
        expect(g.atMs).toBeGreaterThanOrEqual(-1000); // wall-clock times of this run
        expect(g.atMs).toBeLessThan(30_000);
        expect(g.ms).toBeGreaterThanOrEqual(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
