/**
 * One open-loop window at a fixed rate against one fresh server, for latency studies (issue 7's
 * "p99 at 50 % of max"): the harness ties its open-loop rates to the maximum it measured a moment
 * before, which drifts on this machine; this tool keeps the rate fixed so that runs with different
 * servers, durability or segment sizes compare like with like.
 *
 *   npm run build
 *   node dist/bench/fixed-rate.js --server bare|none|fsync [--transport http-protobuf|http-json|grpc]
 *        [--rate REQ_PER_S] [--seconds S] [--pre-seconds S] [--segment-bytes N] [--repeat N] [--pace spin|sleep]
 *        [--slow-ms MS] [--gc]
 *
 * The server runs on CPU 0 and the load generator (bench/loadgen.ts, 100-record requests) on CPU 1
 * where taskset exists, as in `npm run bench`. Each window is preceded by --pre-seconds (default 4) at
 * half the rate (JIT warm-up: a cold agent falls behind at the full rate and the backlog would reach
 * into the window),
 * then 1 s of warm-up at the rate. Latency counts from each request's scheduled send time. Prints
 * one line per window: p50 / p90 / p99 / p99.9 / max, how late the load generator sent (p50 / p99;
 * part of the latency, bench/loadgen.ts), the server's CPU (also as µs per acknowledged record) and the
 * steal on its CPU, and for agents the group commits (count, mean write + fdatasync time) in the window.
 *
 * `--slow-ms MS` lists under that line the episodes of requests that took at least MS or failed
 * (requests scheduled less than 20 ms apart form one episode: a stall, or a backlog draining).
 * `--gc` starts the server with a preload that logs its garbage collections (bench/episodes.ts) and
 * prints what it collected in the window, and, with --slow-ms, the collections near each episode.
 * Both are for studying where a p99 comes from; the logging preload is not in the shipped agent.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { GC_PRELOAD, type GcEvent, gcNear, gcSummary, groupEpisodes, parseGcLog } from './episodes.js';
import { TRANSPORTS, type Transport } from './clients.js';
import { isSuccessStatus } from './report.js';
import { LoadgenProcess, type MetricMap, cpuSeconds, cpuTicks, hasTaskset, metricSum, scrape, startFreshServer, stealPct } from './procs.js';

const SERVER_CPU = 0;
const LOADGEN_CPU = 1;
const USAGE = `usage: node dist/bench/fixed-rate.js --server bare|none|fsync [--transport ${TRANSPORTS.join('|')}]
       [--rate REQ_PER_S (default 1000)] [--seconds S (default 10)] [--pre-seconds S (default 4)]
       [--segment-bytes N] [--repeat N (default 1)] [--pace spin|sleep (how the load generator waits between sends; default spin)]
       [--slow-ms MS (list the episodes of requests that took at least MS or failed)] [--gc (log the server's collections)]
`;
/** Episodes listed at most per window (the largest, in time order). */
const MAX_EPISODES = 40;

const ms = (us: number): string => (us / 1000).toFixed(2);
/** A time relative to the window's start, with its sign: "+104", "-16". */
const rel = (x: number): string => {
  const r = Math.round(x);
  return r < 0 ? String(r) : `+${r}`;
};

interface Plan {
  readonly kind: string;
  readonly transport: Transport;
  readonly rate: number;
  readonly seconds: number;
  readonly preSeconds: number;
  readonly segmentBytes: number | undefined;
  readonly pace: 'spin' | 'sleep';
  readonly slowMs: number | undefined;
  /** --gc: the preload file, and a directory for each window's log. */
  readonly gc: { readonly preload: string; readonly dir: string } | undefined;
}

let windows = 0;

async function window(lg: LoadgenProcess, { kind, transport, rate, seconds, preSeconds, segmentBytes, pace, slowMs, gc }: Plan): Promise<string> {
  const gcLog = gc ? path.join(gc.dir, `gc-${++windows}.log`) : undefined;
  // The server inherits this process's environment (bench/procs.ts): the preload logs to this window's file.
  if (gcLog) process.env.SEALTRAIL_BENCH_GC_LOG = gcLog;
  const srv = await startFreshServer(kind as 'bare' | 'none' | 'fsync', {
    cpu: SERVER_CPU,
    ...(segmentBytes !== undefined ? { segmentBytes } : {}),
    ...(gc ? { extraNodeFlags: ['--require', gc.preload] } : {}),
  });
  let stopped = false;
  try {
    const base = { transport, host: '127.0.0.1', port: transport === 'grpc' ? srv.ports.grpc : srv.ports.http, records: 100, mode: 'open', concurrency: 256, pace } as const;
    if (preSeconds > 0) await lg.run({ ...base, id: `pre-${srv.pid}`, rate: rate / 2, warmupMs: 0, durationMs: preSeconds * 1000 }, () => undefined);
    let cpu0 = 0;
    let ticks0: ReturnType<typeof cpuTicks>;
    let m0: MetricMap | undefined;
    let measuring: Promise<void> = Promise.resolve();
    // --gc alone still needs the window's start time, which comes with the slow list: a threshold nothing reaches.
    const slow = slowMs ?? (gc ? 1e9 : undefined);
    const r = await lg.run({ ...base, id: `win-${srv.pid}`, rate, warmupMs: 1000, durationMs: seconds * 1000, ...(slow !== undefined ? { slowMs: slow } : {}) }, () => {
      cpu0 = cpuSeconds(srv.pid);
      ticks0 = cpuTicks(SERVER_CPU);
      measuring = srv.metricsUrl ? scrape(srv.metricsUrl).then((m) => void (m0 = m)) : Promise.resolve();
    });
    await measuring;
    const cpu = ((cpuSeconds(srv.pid) - cpu0) / (r.elapsedMs / 1000)) * 100;
    const steal = stealPct(ticks0, cpuTicks(SERVER_CPU));
    let commits = '';
    if (srv.metricsUrl) {
      const m1 = await scrape(srv.metricsUrl);
      const d = (n: string): number => metricSum(m1, n) - metricSum(m0, n);
      const n = d('sealtrail_ledger_group_commit_entries_count');
      commits = `; ${n} commits, ${n ? ((d('sealtrail_ledger_fsync_duration_seconds_sum') / n) * 1000).toFixed(2) : '–'} ms each`;
    }
    const L = r.latency;
    const late = r.sendLateness ? `; sent late p50 ${ms(r.sendLateness.p50Us)} p99 ${ms(r.sendLateness.p99Us)}` : '';
    const errors = Object.entries(r.statuses).filter(([k]) => !isSuccessStatus(k));
    const records = r.okRequests * 100;
    const perRecord = records > 0 ? `, ${((cpu * 1e4) / (records / (r.elapsedMs / 1000))).toFixed(2)} µs per record` : '';
    const lines = [
      `${kind} ${transport} @${rate}/s: ${r.okRequests} of ${r.scheduled ?? '?'} answered; ms p50 ${ms(L.p50Us)} p90 ${ms(L.p90Us)} p99 ${ms(L.p99Us)} ` +
        `p99.9 ${ms(L.p999Us)} max ${ms(L.maxUs)}${late}; CPU ${cpu.toFixed(0)} %${perRecord}${steal !== undefined ? ` (steal ${steal.toFixed(0)} %)` : ''}${commits}` +
        `${errors.length ? `; errors ${JSON.stringify(Object.fromEntries(errors))}` : ''}`,
    ];
    let gcEvents: GcEvent[] | undefined;
    if (gcLog && r.windowStartEpochMs !== undefined) {
      await srv.stop(); // its exit flushes the log
      stopped = true;
      let text = '';
      try {
        text = readFileSync(gcLog, 'utf8');
      } catch {
        // no collection logged at all
      }
      gcEvents = parseGcLog(text, r.windowStartEpochMs);
    }
    if (slowMs !== undefined && r.slow) {
      const eps = groupEpisodes(r.slow);
      const failed = r.slow.filter((x) => x.ms === undefined).length;
      lines.push(
        `  slow (≥ ${slowMs} ms) or failed: ${r.slow.length - failed} slow and ${failed} failed requests in ${eps.length} episodes (a gap of 20 ms or more separates two)` +
          `${r.slowDropped ? `; ${r.slowDropped} more not listed` : ''}${eps.length > MAX_EPISODES ? `; the ${MAX_EPISODES} with the most requests:` : ''}`,
      );
      const shown = eps.length > MAX_EPISODES ? [...eps].sort((a, b) => b.requests - a.requests).slice(0, MAX_EPISODES).sort((a, b) => a.startMs - b.startMs) : eps;
      for (const e of shown) {
        const near = gcEvents ? gcNear(gcEvents, e).map((g) => `${g.kind} ${g.ms.toFixed(1)} ms at ${rel(g.atMs)}`) : [];
        lines.push(
          `    ${rel(e.startMs)}..${rel(e.endMs)} ms: ${e.requests} requests${e.failed ? ` (${e.failed} failed)` : ''}, max ${e.maxMs.toFixed(1)} ms` +
            `${near.length ? `; gc: ${near.join(', ')}` : ''}`,
        );
      }
    }
    if (gcEvents) lines.push(`  collections in the window: ${gcSummary(gcEvents, r.elapsedMs)}`);
    return lines.join('\n');
  } finally {
    if (!stopped) await srv.stop();
  }
}

async function main(): Promise<number> {
  let v;
  try {
    v = parseArgs({
      options: {
        server: { type: 'string' },
        transport: { type: 'string', default: 'http-protobuf' },
        rate: { type: 'string', default: '1000' },
        seconds: { type: 'string', default: '10' },
        'pre-seconds': { type: 'string', default: '4' },
        'segment-bytes': { type: 'string' },
        repeat: { type: 'string', default: '1' },
        pace: { type: 'string', default: 'spin' },
        'slow-ms': { type: 'string' },
        gc: { type: 'boolean' },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`bench/fixed-rate: ${(e as Error).message.split('\n')[0]}\n${USAGE}`);
    return 2;
  }
  const rate = Number(v.rate);
  const seconds = Number(v.seconds);
  const repeat = Number(v.repeat);
  const preSeconds = Number(v['pre-seconds']);
  const seg = v['segment-bytes'] === undefined ? undefined : Number(v['segment-bytes']);
  const slowMs = v['slow-ms'] === undefined ? undefined : Number(v['slow-ms']);
  const bad =
    !['bare', 'none', 'fsync'].includes(v.server ?? '') ? '--server must be bare, none or fsync'
    : !(TRANSPORTS as readonly string[]).includes(v.transport) ? `--transport must be one of ${TRANSPORTS.join(', ')}`
    : !(rate > 0 && rate <= 100_000) ? '--rate must be a number of requests per second from 1 to 100000'
    : !(seconds >= 1 && seconds <= 600) ? '--seconds must be from 1 to 600'
    : !(preSeconds >= 0 && preSeconds <= 600) ? '--pre-seconds must be from 0 to 600'
    : !(Number.isInteger(repeat) && repeat >= 1 && repeat <= 20) ? '--repeat must be a whole number from 1 to 20'
    : seg !== undefined && !(Number.isInteger(seg) && seg >= 4096) ? '--segment-bytes must be a whole number of bytes, at least 4096'
    : seg !== undefined && v.server === 'bare' ? '--segment-bytes applies to the agents (none, fsync), not the bare receiver'
    : v.pace !== 'spin' && v.pace !== 'sleep' ? '--pace must be spin or sleep'
    : slowMs !== undefined && !(slowMs > 0 && slowMs <= 60_000) ? '--slow-ms must be a number of milliseconds above 0, at most 60000'
    : undefined;
  if (bad) {
    process.stderr.write(`bench/fixed-rate: ${bad}\n${USAGE}`);
    return 2;
  }
  if (!hasTaskset()) process.stderr.write('bench/fixed-rate: taskset not available — server and load generator are NOT pinned\n');
  let gc: Plan['gc'];
  if (v.gc) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sealtrail-fixed-rate-gc-'));
    gc = { preload: path.join(dir, 'gc-preload.cjs'), dir };
    writeFileSync(gc.preload, GC_PRELOAD);
  }
  const lg = new LoadgenProcess(LOADGEN_CPU, process.execPath);
  await lg.ready;
  try {
    for (let i = 0; i < repeat; i++) {
      const plan: Plan = { kind: v.server!, transport: v.transport as Transport, rate, seconds, preSeconds, segmentBytes: seg, pace: v.pace as 'spin' | 'sleep', slowMs, gc };
      process.stdout.write(`${await window(lg, plan)}\n`);
    }
  } finally {
    lg.stop();
    if (gc) rmSync(gc.dir, { recursive: true, force: true });
  }
  return 0;
}

process.exitCode = await main();
