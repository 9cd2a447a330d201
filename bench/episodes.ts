/**
 * Where the slow requests of an open-loop window lie in time, and what the server's garbage collector
 * did meanwhile — for bench/fixed-rate.ts's `--slow-ms` and `--gc` (latency studies, issue 7's p99).
 * A p99 tells how many requests were slow, not whether they came one by one or all in one stall; the
 * episodes do, and lined up with the collector's pauses they tell a pause from a backlog.
 */
import { constants } from 'node:perf_hooks';
import type { SlowRequest } from './loadgen.js';

export interface Episode {
  /** First and last scheduled time in it, ms after the window's start. */
  readonly startMs: number;
  readonly endMs: number;
  readonly requests: number;
  /** Of `requests`, how many failed (refused, error) rather than being slow. */
  readonly failed: number;
  /** The slowest answered request's latency (ms); 0 when all failed. */
  readonly maxMs: number;
}

/**
 * Groups slow or failed requests into episodes: requests scheduled less than `gapMs` after the
 * previous one of the group belong to it. Input in any order; episodes in time order.
 */
export function groupEpisodes(slow: readonly SlowRequest[], gapMs = 20): Episode[] {
  const xs = [...slow].sort((a, b) => a.atMs - b.atMs);
  const out: Episode[] = [];
  let cur: { startMs: number; endMs: number; requests: number; failed: number; maxMs: number } | undefined;
  for (const x of xs) {
    if (!cur || x.atMs - cur.endMs >= gapMs) {
      if (cur) out.push(cur);
      cur = { startMs: x.atMs, endMs: x.atMs, requests: 0, failed: 0, maxMs: 0 };
    }
    cur.endMs = x.atMs;
    cur.requests++;
    if (x.ms === undefined) cur.failed++;
    else cur.maxMs = Math.max(cur.maxMs, x.ms);
  }
  if (cur) out.push(cur);
  return out;
}

export type GcKind = 'scavenge' | 'mark-compact' | 'incremental marking' | 'weak callbacks' | 'other';

export interface GcEvent {
  /** Start, ms after the window's start. */
  readonly atMs: number;
  readonly ms: number;
  readonly kind: GcKind;
}

function kindOf(k: number): GcKind {
  switch (k) {
    case constants.NODE_PERFORMANCE_GC_MINOR:
      return 'scavenge';
    case constants.NODE_PERFORMANCE_GC_MAJOR:
      return 'mark-compact';
    case constants.NODE_PERFORMANCE_GC_INCREMENTAL:
      return 'incremental marking';
    case constants.NODE_PERFORMANCE_GC_WEAKCB:
      return 'weak callbacks';
    default:
      return 'other';
  }
}

/**
 * The preload that makes a server log its collections (`node --require FILE`): one line per 'gc'
 * performance entry, "<wall-clock start ms> <duration ms> <kind>", appended to the file named by
 * SEALTRAIL_BENCH_GC_LOG every half second and at exit. CommonJS, so that --require takes it.
 */
export const GC_PRELOAD = `'use strict';
const { PerformanceObserver, performance } = require('node:perf_hooks');
const fs = require('node:fs');
const file = process.env.SEALTRAIL_BENCH_GC_LOG;
if (file) {
  const lines = [];
  const flush = () => { if (lines.length > 0) fs.appendFileSync(file, lines.splice(0).join('\\n') + '\\n'); };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) lines.push((performance.timeOrigin + e.startTime).toFixed(3) + ' ' + e.duration.toFixed(3) + ' ' + (e.detail ? e.detail.kind : 0));
  }).observe({ entryTypes: ['gc'] });
  setInterval(flush, 500).unref();
  process.on('exit', flush);
}
`;

/** Parses GC_PRELOAD's log, times made relative to `windowStartEpochMs`; malformed lines are skipped. */
export function parseGcLog(text: string, windowStartEpochMs: number): GcEvent[] {
  const out: GcEvent[] = [];
  for (const line of text.split('\n')) {
    const [t, d, k] = line.trim().split(' ').map(Number);
    if (t === undefined || d === undefined || k === undefined || !Number.isFinite(t) || !Number.isFinite(d) || !Number.isFinite(k)) continue;
    out.push({ atMs: t - windowStartEpochMs, ms: d, kind: kindOf(k) });
  }
  return out;
}

/** "3 scavenges (4.1 ms, max 1.6), 1 mark-compact (9.2 ms, max 9.2)" for the events in [0, windowMs); "none" if empty. */
export function gcSummary(events: readonly GcEvent[], windowMs: number): string {
  const by = new Map<GcKind, { n: number; total: number; max: number }>();
  for (const e of events) {
    if (e.atMs < 0 || e.atMs >= windowMs) continue;
    const s = by.get(e.kind) ?? { n: 0, total: 0, max: 0 };
    s.n++;
    s.total += e.ms;
    s.max = Math.max(s.max, e.ms);
    by.set(e.kind, s);
  }
  if (by.size === 0) return 'none';
  const plural: Record<GcKind, string> = { scavenge: 'scavenges', 'mark-compact': 'mark-compacts', 'incremental marking': 'incremental marking steps', 'weak callbacks': 'weak-callback passes', other: 'others' };
  const order: GcKind[] = ['scavenge', 'mark-compact', 'incremental marking', 'weak callbacks', 'other'];
  return order
    .filter((k) => by.has(k))
    .map((k) => {
      const s = by.get(k)!;
      return `${s.n} ${s.n === 1 ? k : plural[k]} (${s.total.toFixed(1)} ms, max ${s.max.toFixed(1)})`;
    })
    .join(', ');
}

/** The collections that overlap an episode or end less than `beforeMs` before it starts. */
export function gcNear(events: readonly GcEvent[], e: Episode, beforeMs = 50): GcEvent[] {
  return events.filter((g) => g.atMs <= e.endMs && g.atMs + g.ms >= e.startMs - beforeMs);
}
