/**
 * The harness's results: the JSON shape (`--json FILE`), the text tables printed at the end, the
 * issue 7 targets next to the measured figures, and the generated block of docs/benchmarks.md
 * (between `<!-- bench:begin -->` and `<!-- bench:end -->`; nothing outside the markers is touched).
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import type { Transport } from './clients.js';
import type { DiskProbe } from './disk.js';
import type { ProfileSummary } from './profile.js';

export const DOCS_BEGIN = '<!-- bench:begin -->';
export const DOCS_END = '<!-- bench:end -->';

export interface Row {
  server: 'bare' | 'none' | 'fsync';
  transport: Transport;
  records: number;
  mode: 'closed' | 'open';
  concurrency: number;
  rate?: number;
  rateShare?: number;
  /** Open loop: the maxima (requests/s) the rate is a share of the lower of — the median round, and a closed-loop window right before. */
  rateOf?: { medianRoundRps: number | null; rightBeforeRps: number };
  soak?: boolean;
  /** Closed-loop 100-record runs: which round (1…) of a, b, c in turn this window was. */
  round?: number;
  seconds: number;
  requestsPerSec: number;
  recordsPerSec: number;
  payloadMBps: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Open loop: how late the load generator sent requests after their scheduled time (part of latencyMs). Absent before session 17. */
  sendLateMs?: { p50: number; p99: number };
  cpuPct: number;
  /** CPU of the load generator: near 100 % means the client, not the server, was the limit. */
  loadgenCpuPct: number;
  /**
   * Steal on the servers' CPU in the window (pinned runs): % of its time the virtual CPU was ready to
   * run while the hypervisor ran something else. Absent in reports from before it was measured.
   */
  stealPct?: number;
  peakRssMB: number;
  statuses: Record<string, number>;
  groupCommits?: number;
  avgBatchEntries?: number;
  avgCommitMs?: number;
  acceptedByAgent?: number;
  /** Agents: bytes the ledger added to its disk in the window (sealtrail_ledger_disk_bytes), in MB. */
  writtenMB?: number;
  /** Agents: seconds the window's commits spent in write (+ fdatasync with durability fsync). */
  commitSeconds?: number;
  scheduled?: number;
  /** The measured window on the monotonic clock (µs), to cut CPU profiles to it. */
  monoWindowUs: [number, number];
}

export interface Target {
  readonly what: string;
  readonly target: string;
  readonly measured: string;
  /** null: not measured in this run. */
  readonly met: boolean | null;
}

export interface BenchReport {
  command: string;
  date: string;
  finished?: string;
  quick: boolean;
  machine: {
    nproc: number;
    cpuModel: string;
    node: string;
    kernel: string;
    memGiB: number;
    loadAvgStart: number[];
    taskset: boolean;
    tmpDisk: string;
    /** src/ledger/native-hash.ts status: whether the optional native SHA-256 batch addon was loaded. */
    nativeHash?: string;
    /** src/otlp: whether the addon checks LogRecords and assembles entries (else the JS code does). */
    nativeOtlp?: { recordCheck: boolean; entryAssembly: boolean };
    /** bench/procs.ts freePageReporting: the virtio balloon hands freed memory back to the host (absent: no balloon, or older reports). */
    freePageReporting?: boolean;
  };
  loadAvgEnd?: number[];
  settings: Record<string, number>;
  rows: Row[];
  startup?: { ms: number; idleRssMB: number; noneMs: number };
  /** Start-up of an agent on the existing verify log (local sealed segments are checked on open). */
  restart?: { ms: number; ledgerBytes: number; rssMB: number };
  sanity?: { sent: number; acceptedByAgent: number; exporters: string[] };
  soak?: {
    seconds: number;
    recordsPerSec: number;
    peakRssMB: number;
    firstThirdMeanMB: number;
    lastThirdMeanMB: number;
    hwmMB: number;
    memory?: { rssMB: number; heapTotalMB: number; heapUsedMB: number; newSpaceMB: number; externalMB: number };
    /** Requests answered with something other than success, by status (absent before session 19). */
    refused?: Record<string, number>;
    /** MB the agent's ledger wrote in the window, and the harness's ledger budget in bytes (absent before session 19). */
    writtenMB?: number;
    budgetBytes?: number;
  };
  agentPeakRssMB?: number;
  /** Session 21 on: agent (c) at maximum load with one destination, forwarding what it seals (bench/run.ts loadedPhase). */
  loaded?: {
    destination: string;
    seconds: number;
    recordsPerSec: number;
    refused: Record<string, number>;
    /** RSS sampled every 200 ms in the window, and the VmHWM of the agent's whole life (start-up, warm-up, window). */
    peakRssMB: number;
    hwmMB: number;
    forwardedMB: number;
    forwardedObjects: number;
    sealedSegments: number;
    lagSegmentsAtEnd: number;
    segmentBytes: number;
  }[];
  verify?: {
    exitCode: number | null;
    entries: number;
    bytes: number;
    segments: number;
    seconds: number;
    entriesPerSec: number;
    MBps: number;
    peakRssMB: number;
    fill: { seconds: number; entriesPerSec: number };
    reportSummary?: string;
  };
  forwarding: {
    destination: string;
    segments: number;
    bytes: number;
    complete: boolean;
    secondsFromSpawn: number;
    firstObjectAfterS: number;
    MBps: number;
    /** Session 20 on: the forwarding agent's VmHWM over the phase, and the size of the segments it forwarded. */
    peakRssMB?: number;
    segmentBytes?: number;
  }[];
  profile?: { file: string; summary: ProfileSummary };
  /** The disk alone (bench/disk.ts), once per transport and round of the 100-record maximum, at the fsync agent's commit size. */
  disk?: (DiskProbe & { transport: Transport; round: number })[];
  targets?: Target[];
}

const TRANSPORT_LABEL: Record<Transport, string> = { 'http-protobuf': 'OTLP/HTTP protobuf', 'http-json': 'OTLP/HTTP JSON', grpc: 'OTLP/gRPC' };
const SERVER_LABEL = { bare: '(a) bare receiver', none: '(b) agent, durability none', fsync: '(c) agent, fsync' } as const;

const int = (x: number): string => Math.round(x).toLocaleString('en-US');
const f1 = (x: number): string => x.toFixed(1);
const f2 = (x: number): string => x.toFixed(2);
const yes = (b: boolean | null): string => (b === null ? 'not measured' : b ? '**met**' : '**missed**');

/** The lower median of xs (the middle one for an odd count); NaN for none. */
export function lowerMedian(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

/** Every closed-loop (non-soak) window of one server, transport and request size, in round order. */
export function closedRounds(r: Pick<BenchReport, 'rows'>, server: Row['server'], transport: Transport, records = 100): Row[] {
  return r.rows
    .filter((x) => x.server === server && x.transport === transport && x.records === records && x.mode === 'closed' && !x.soak)
    .sort((a, b) => (a.round ?? 0) - (b.round ?? 0));
}

/**
 * The window that stands for a server's closed-loop maximum: with several rounds, the round with the
 * lower-median records/s (a whole measured window, so its latency, CPU and commits belong together).
 */
export function closedRow(r: Pick<BenchReport, 'rows'>, server: Row['server'], transport: Transport, records = 100): Row | undefined {
  const rows = closedRounds(r, server, transport, records);
  if (rows.length === 0) return undefined;
  const m = lowerMedian(rows.map((x) => x.recordsPerSec));
  return rows.find((x) => x.recordsPerSec === m);
}

/**
 * records/s of `num` ÷ records/s of `den` for each round both were measured in (neighbours in time),
 * and their lower median — the ratio the targets are judged by. Windows without a round number
 * (older reports) pair as one round.
 */
export function roundRatios(r: Pick<BenchReport, 'rows'>, num: Row['server'], den: Row['server'], transport: Transport): { each: number[]; median: number } | undefined {
  const ns = closedRounds(r, num, transport);
  const ds = closedRounds(r, den, transport);
  const each: number[] = [];
  for (const n of ns) {
    const d = ds.find((x) => (x.round ?? 0) === (n.round ?? 0));
    if (d && d.recordsPerSec > 0) each.push(n.recordsPerSec / d.recordsPerSec);
  }
  return each.length ? { each, median: lowerMedian(each) } : undefined;
}

/** A load generator status key that means success ("http 200", "grpc 0"); anything else is an error. */
export function isSuccessStatus(status: string): boolean {
  return status === 'http 200' || status === 'grpc 0';
}

/**
 * For the sustained run: "; N requests refused (…)" when the agent refused any, and, when its ledger had
 * by then written about the harness's whole budget (max_disk_bytes), that this is why and what it means
 * for the records/s (acknowledged records over the whole window). Empty when nothing was refused.
 */
export function soakRefusals(s: Pick<NonNullable<BenchReport['soak']>, 'refused' | 'writtenMB' | 'budgetBytes'>): string {
  const bad = Object.entries(s.refused ?? {}).filter(([k, v]) => !isSuccessStatus(k) && v > 0);
  if (bad.length === 0) return '';
  const n = bad.reduce((a, [, v]) => a + v, 0);
  let out = `; ${int(n)} requests refused (${bad.map(([k, v]) => `${k}: ${int(v)}`).join(', ')})`;
  if (s.writtenMB !== undefined && s.budgetBytes !== undefined && s.writtenMB * 1e6 >= 0.95 * s.budgetBytes) {
    out += ` — the ledger had written ${f1(s.writtenMB / 1e3)} GB, the harness's budget (max_disk_bytes ${f1(s.budgetBytes / 2 ** 30)} GiB, nothing forwarded or released), after which the agent refuses appends as disk_full: the records/s is below what the agent sustained while it had room`;
  }
  return out;
}

function errorsOf(row: Row): string {
  const bad = Object.entries(row.statuses).filter(([k]) => !isSuccessStatus(k));
  return bad.length ? bad.map(([k, v]) => `${k}: ${v}`).join(', ') : '0';
}

/**
 * For an open-loop row: "; overloaded: …" when the server refused requests or acknowledged fewer than
 * 99 % of those scheduled — then the window measured a queue, not the latency at that share of the
 * maximum (the machine slowed down after the maximum was taken). Empty otherwise.
 */
export function overloadNote(o: Row): string {
  const refused = Object.entries(o.statuses)
    .filter(([k]) => !isSuccessStatus(k))
    .reduce((n, [, v]) => n + v, 0);
  const acked = Math.round(o.requestsPerSec * o.seconds);
  const behind = o.scheduled !== undefined && acked < 0.99 * o.scheduled;
  if (refused === 0 && !behind) return '';
  const parts = [...(refused > 0 ? [`${int(refused)} requests refused`] : []), ...(o.scheduled !== undefined ? [`${int(acked)} of ${int(o.scheduled)} scheduled acknowledged`] : [])];
  return `; overloaded: ${parts.join(', ')}`;
}

/** The issue 7 targets with the measured figure next to each. */
export function targetsOf(r: BenchReport): Target[] {
  const t: Target[] = [];
  for (const [tr, goal] of [['http-protobuf', 400_000], ['grpc', 250_000]] as const) {
    const c = closedRow(r, 'fsync', tr);
    t.push({
      what: `${TRANSPORT_LABEL[tr]}, 100-record requests, ack after fsync`,
      target: `≥ ${int(goal)} records/s`,
      measured: c ? `${int(c.recordsPerSec)} records/s${roundsNote(r, 'fsync', tr)}` : '–',
      met: c ? c.recordsPerSec >= goal : null,
    });
  }
  for (const tr of ['http-protobuf', 'grpc', 'http-json'] as Transport[]) {
    const q = roundRatios(r, 'fsync', 'none', tr);
    t.push({
      what: `group commit: fsync ÷ none, ${TRANSPORT_LABEL[tr]}`,
      target: '≥ 0.90',
      measured: q ? ratioText(q) : '–',
      met: q ? q.median >= 0.9 : null,
    });
  }
  for (const tr of ['http-protobuf', 'grpc', 'http-json'] as Transport[]) {
    const o = r.rows.find((x) => x.server === 'fsync' && x.transport === tr && x.mode === 'open' && x.rateShare === 0.5);
    if (!o && tr === 'http-json') continue;
    t.push({
      what: `p99 ack latency at 50 % of max rate, ${TRANSPORT_LABEL[tr]}`,
      target: '≤ 5 ms',
      measured: o ? `${f2(o.latencyMs.p99)} ms (at ${int(o.rate ?? 0)} req/s${overloadNote(o)})` : '–',
      met: o ? o.latencyMs.p99 <= 5 : null,
    });
  }
  const peak = r.agentPeakRssMB;
  t.push({ what: 'agent peak RSS under sustained maximum load (VmHWM over all runs)', target: '≤ 150 MB', measured: peak !== undefined ? `${f1(peak)} MB` : '–', met: peak !== undefined ? peak <= 150 : null });
  for (const l of r.loaded ?? []) {
    t.push({
      what: `agent peak RSS at maximum load while forwarding to ${l.destination} (VmHWM over its life)`,
      target: '≤ 150 MB',
      measured: `${f1(l.hwmMB)} MB (${int(l.recordsPerSec)} records/s${soakRefusals({ refused: l.refused })})`,
      met: l.hwmMB <= 150,
    });
  }
  if (r.soak) {
    const growth = r.soak.lastThirdMeanMB / r.soak.firstThirdMeanMB - 1;
    t.push({
      what: `RSS steady over a ${r.soak.seconds} s sustained run (last third vs first third; the issue asks 5 min: --soak 300)`,
      target: 'not growing (≤ +10 %)',
      measured: `${f1(r.soak.firstThirdMeanMB)} → ${f1(r.soak.lastThirdMeanMB)} MB (${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(1)} %)`,
      met: growth <= 0.1,
    });
  } else {
    t.push({ what: 'RSS steady over a sustained run', target: 'not growing', measured: '–', met: null });
  }
  const v = r.verify;
  t.push({
    what: `sealtrail verify (${v ? `${f1(v.bytes / 2 ** 30)} GiB log` : 'log'})`,
    target: '≥ 1,000,000 entries/s',
    measured: v ? `${int(v.entriesPerSec)} entries/s${v.exitCode !== 0 ? ` (exit ${v.exitCode}!)` : ''}` : '–',
    met: v ? v.entriesPerSec >= 1_000_000 && v.exitCode === 0 : null,
  });
  return t;
}

/** " (median of 3 rounds: 201.3k, 197.2k, 188.0k)" when there were several rounds, else "". */
function roundsNote(r: Pick<BenchReport, 'rows'>, server: Row['server'], tr: Transport): string {
  const rows = closedRounds(r, server, tr);
  return rows.length > 1 ? ` (median of ${rows.length} rounds: ${rows.map((x) => `${f1(x.recordsPerSec / 1000)}k`).join(', ')})` : '';
}

/**
 * A ratio with two decimals, or three where two would round a value below the 0.90 target up to it
 * (0.896 shows as 0.896, not as a "missed" 0.90).
 */
export function fRatio(x: number): string {
  return x < 0.9 && Number(x.toFixed(2)) >= 0.9 ? x.toFixed(3) : f2(x);
}

/** "0.95" for one round; "0.95 (rounds 0.91, 0.95, 0.97)" for several. */
function ratioText(q: { each: number[]; median: number }): string {
  return q.each.length > 1 ? `${fRatio(q.median)} (rounds ${q.each.map(fRatio).join(', ')})` : fRatio(q.median);
}

function table(head: string[], rows: string[][]): string {
  const out = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) out.push(`| ${r.join(' | ')} |`);
  return out.join('\n');
}

function runCells(x: Row): string[] {
  return [
    int(x.recordsPerSec),
    f1(x.payloadMBps),
    `${f2(x.latencyMs.p50)} / ${f2(x.latencyMs.p99)} / ${f1(x.latencyMs.max)}`,
    `${int(x.cpuPct)} % / ${int(x.loadgenCpuPct)} %${x.stealPct !== undefined ? ` (steal ${int(x.stealPct)} %)` : ''}`,
    f1(x.peakRssMB),
    x.groupCommits !== undefined ? `${int(x.groupCommits)} / ${int(x.avgBatchEntries ?? 0)} / ${f2(x.avgCommitMs ?? 0)}` : '–',
    errorsOf(x),
  ];
}

const RUN_HEAD = ['records/s', 'payload MB/s', 'ack latency p50 / p99 / max (ms)', 'CPU server / loadgen', 'peak RSS MB', 'group commits / entries per commit / ms per write+fsync', 'errors'];

/**
 * What the fsync agent's median round wrote to its disk, next to the disk alone in the same round at
 * the same commit size, and the records/s those bytes per entry allow: the ceiling the disk sets on
 * agent (c) at that moment. Empty when no window has both.
 */
export function diskRows(r: Pick<BenchReport, 'rows' | 'disk'>): { transport: Transport; row: Row; bytesPerEntry: number; probe?: DiskProbe }[] {
  const out: { transport: Transport; row: Row; bytesPerEntry: number; probe?: DiskProbe }[] = [];
  for (const tr of ['http-protobuf', 'http-json', 'grpc'] as Transport[]) {
    const row = closedRow(r, 'fsync', tr);
    const entries = row ? (row.groupCommits ?? 0) * (row.avgBatchEntries ?? 0) : 0;
    if (!row || row.writtenMB === undefined || entries <= 0) continue;
    const probe = r.disk?.find((d) => d.transport === tr && d.round === (row.round ?? 1));
    out.push({ transport: tr, row, bytesPerEntry: (row.writtenMB * 1e6) / entries, ...(probe ? { probe } : {}) });
  }
  return out;
}

function diskTable(r: BenchReport): string | undefined {
  const rows = diskRows(r);
  if (rows.length === 0) return undefined;
  const goal: Partial<Record<Transport, number>> = { 'http-protobuf': 400_000, grpc: 250_000 };
  return `#### Disk: what agent (c) wrote, and the disk alone in the same round

Agent (c) acknowledges only after fdatasync, so it cannot take more records/s than the disk makes durable ÷ the bytes of one entry on disk. The disk alone (bench/disk.ts, pinned to the agents' CPU) appends chunks of the size of agent (c)'s commits in that round, each ${r.settings.diskWriter ? "committed by agent (c)'s own commit writer before the next — whole 4 KiB blocks written with O_DIRECT, the block a commit ends in through the page cache, then fdatasync, as agent (c) writes since session 19 (`--writer`)" : `written and fdatasync'd before the next${r.settings.diskDrop ? ' and then dropped from the page cache, as agent (c) does since session 18 (`--drop`)' : ''}`}, for ${r.settings.diskMs ?? '?'} ms right after the round's windows.

${table(
    [
      'transport',
      '(c) records/s (median round)',
      'bytes per entry on disk',
      '(c) MB/s written',
      'share of the window in write+fdatasync',
      '(c) MB/s while committing',
      'disk alone: commit size, MB/s, ms per commit p50 / p99',
      'records/s the disk alone allows at this entry size',
      'MB/s needed for the target',
    ],
    rows.map(({ transport, row, bytesPerEntry, probe }) => [
      TRANSPORT_LABEL[transport],
      int(row.recordsPerSec),
      int(bytesPerEntry),
      f1(row.writtenMB! / row.seconds),
      row.commitSeconds !== undefined ? `${int((row.commitSeconds / row.seconds) * 100)} %` : '–',
      row.commitSeconds ? f1(row.writtenMB! / row.commitSeconds) : '–',
      probe ? `${f2(probe.chunkBytes / 1e6)} MB, ${f1(probe.MBps)}, ${f2(probe.p50Ms)} / ${f2(probe.p99Ms)}` : '–',
      probe ? int((probe.MBps * 1e6) / bytesPerEntry) : '–',
      goal[transport] ? `${f1((goal[transport]! * bytesPerEntry) / 1e6)} (${int(goal[transport]!)} records/s)` : '–',
    ]),
  )}`;
}

/** Markdown tables of everything measured (printed to stdout and put into docs/benchmarks.md). */
export function renderTable(r: BenchReport): string {
  const m = r.machine;
  /** The order of the servers in the 100-record rounds. */
  const roundOrder = r.settings.alternating ? 'a, b, c and a, c, b in turn' : 'a, b, c in turn';
  const parts: string[] = [];
  parts.push(
    [
      `Command: \`${r.command}\` — ${r.quick ? 'quick run (short windows; for development, not for the record)' : 'full run'}`,
      `Date: ${r.date}${r.finished ? ` → ${r.finished}` : ''}`,
      `Machine: ${m.nproc} CPUs, ${m.cpuModel}, ${m.memGiB} GiB RAM, ${m.kernel}, Node ${m.node}; temp dir on ${m.tmpDisk || '?'}${
        m.freePageReporting === undefined
          ? ''
          : m.freePageReporting
            ? '; virtio balloon with free page reporting (freed memory goes back to the host, and a fresh page costs a fault there: session 18)'
            : '; virtio balloon without free page reporting'
      }`,
      `Ledger hashing: ${m.nativeHash ?? 'unknown'}`,
      ...(m.nativeOtlp
        ? [`OTLP/protobuf decoding: LogRecords checked ${m.nativeOtlp.recordCheck ? 'natively' : 'in JS'}, entries assembled ${m.nativeOtlp.entryAssembly ? 'natively' : 'in JS'}`]
        : []),
      `Load average at start: ${m.loadAvgStart.join(' ')}${r.loadAvgEnd ? `; at end: ${r.loadAvgEnd.join(' ')}` : ''}`,
      m.taskset
        ? `Pinning: servers (bare receiver, agents) on CPU ${r.settings.agentCpu}, load generator on CPU ${r.settings.loadgenCpu} (\`taskset -c\`); \`sealtrail verify\` unpinned (both cores, nothing else running).`
        : 'Pinning: taskset not available — processes were NOT pinned.',
      ...(r.rows.some((x) => x.stealPct !== undefined)
        ? [
            "Steal: the share of the servers' CPU time the hypervisor gave to something else while that CPU had work (/proc/stat), per window next to the server's CPU; it rises with the disk traffic on this virtual machine, and the server cannot use it.",
          ]
        : []),
      `Windows: ${r.settings.warmupMs} ms warm-up${r.settings.coldWarmupMs ? ` (${r.settings.coldWarmupMs} ms before the first window of each server process)` : ''}, then ${r.settings.mainMs} ms (100-record runs${(r.settings.rounds ?? 1) > 1 ? `, ${r.settings.rounds} rounds of ${roundOrder}` : ''}), ${r.settings.variantMs} ms (1 and 1,000 records), ${r.settings.openMs} ms (open loop); closed loop at ${r.settings.concurrency} requests in flight (${r.settings.variantConcurrency1 ?? r.settings.concurrency} for 1-record, ${r.settings.variantConcurrency1000 ?? 8} for 1,000-record requests).`,
      'Agents: built `node dist/src/cli/bin.js agent`, temporary config, fresh key from `sealtrail keygen`, `destinations: []` (ingest only), all endpoints on 127.0.0.1.' +
        ((r.settings.agentLives ?? 1) > 1
          ? ` Agents (b) and (c) started anew on empty ledgers (the old ones stopped and deleted) before ${r.settings.renewPerRound ? 'each 100-record round' : "each transport's 100-record rounds"} after the first and before each later phase: ${r.settings.agentLives} processes each; (c)'s peak RSS is the highest of its processes.`
          : '') +
        (r.loaded?.length ? ` The loaded phase's agents (${r.loaded.map((l) => l.destination).join(', ')}) each have one destination and forward what they seal.` : ''),
    ].join('  \n'),
  );
  if (r.targets) {
    parts.push(`#### Targets (issue 7)\n\n${table(['what', 'target', 'measured', ''], r.targets.map((t) => [t.what, t.target, t.measured, yes(t.met)]))}`);
  }
  const closed100 = r.rows.filter((x) => x.mode === 'closed' && x.records === 100 && !x.soak);
  if (closed100.length) {
    // One row per server and transport: the median round (closedRow), with every round's records/s.
    const transports = [...new Set(closed100.map((x) => x.transport))];
    const shown = transports.flatMap((tr) => (['bare', 'none', 'fsync'] as const).map((sv) => closedRow(r, sv, tr)).filter((x): x is Row => x !== undefined));
    const multi = shown.some((x) => closedRounds(r, x.server, x.transport).length > 1);
    parts.push(
      `#### Closed loop, 100-record requests (maximum throughput)\n\n${
        multi
          ? `Each server was measured in several rounds of ${roundOrder}; a row is its median round, whose figures all come from that one window.\n\n`
          : ''
      }${table(
        ['transport', 'server', ...RUN_HEAD, ...(multi ? ['records/s in each round'] : [])],
        shown.map((x) => [
          TRANSPORT_LABEL[x.transport],
          SERVER_LABEL[x.server],
          ...runCells(x),
          ...(multi ? [closedRounds(r, x.server, x.transport).map((y) => int(y.recordsPerSec)).join(', ')] : []),
        ]),
      )}`,
    );
    const ratios: string[][] = [];
    for (const tr of ['http-protobuf', 'http-json', 'grpc'] as Transport[]) {
      if (!closedRow(r, 'bare', tr) && !closedRow(r, 'none', tr) && !closedRow(r, 'fsync', tr)) continue;
      const q = (x: Row['server'], y: Row['server']): string => {
        const v = roundRatios(r, x, y, tr);
        return v ? ratioText(v) : '–';
      };
      ratios.push([TRANSPORT_LABEL[tr], q('fsync', 'none'), q('fsync', 'bare'), q('none', 'bare')]);
    }
    parts.push(
      `#### Ratios (records/s, same run)\n\n${multi ? 'Each ratio is taken within a round (neighbours in time); shown is the median of the rounds’ ratios, then each round’s.\n\n' : ''}${table(
        ['transport', 'c/b fsync ÷ none (≥ 0.90)', 'c/a agent ÷ bare', 'b/a none ÷ bare'],
        ratios,
      )}`,
    );
  }
  const disk = diskTable(r);
  if (disk) parts.push(disk);
  const variants = r.rows.filter((x) => x.mode === 'closed' && x.records !== 100);
  if (variants.length) {
    parts.push(
      `#### Closed loop, 1-record and 1,000-record requests\n\n${table(
        ['transport', 'records/request', 'server', 'in flight', ...RUN_HEAD],
        variants.map((x) => [TRANSPORT_LABEL[x.transport], int(x.records), SERVER_LABEL[x.server], String(x.concurrency), ...runCells(x)]),
      )}`,
    );
  }
  // By transport (in the order measured), then by share: the harness measures 40 % last (bench/run.ts).
  const measured = r.rows.filter((x) => x.mode === 'open');
  const transportOrder = [...new Set(measured.map((x) => x.transport))];
  const open = [...measured].sort((a, b) => transportOrder.indexOf(a.transport) - transportOrder.indexOf(b.transport) || (a.rateShare ?? 0) - (b.rateShare ?? 0));
  if (open.length) {
    const shares = [...new Set(open.map((x) => Math.round((x.rateShare ?? 0) * 100)))].sort((a, b) => a - b).map((p) => `${p} %`);
    const shareList = shares.length > 1 ? `${shares.slice(0, -1).join(', ')} and ${shares.at(-1)}` : (shares[0] ?? '');
    // Reports from before session 10 lack the maxima the rates were a share of: no column for them.
    const withMax = open.some((x) => x.rateOf);
    // Reports from before session 17 lack the load generator's send lateness: no column for them.
    const withLate = open.some((x) => x.sendLateMs);
    // Agent (c)'s CPU per record in the window and in its median closed-loop round of the same transport:
    // at a share of the maximum a record costs more than at the maximum (smaller commits; session 22).
    const cpuUs = (x: Row | undefined): string => (x && x.recordsPerSec > 0 ? f2((x.cpuPct * 1e4) / x.recordsPerSec) : '–');
    parts.push(
      `#### Open loop on (c), 100-record requests: latency at ${shareList} of the measured maximum\n\nLatency is measured from each request's scheduled send time (no coordinated omission).${
        withLate ? ' It includes how late the load generator sent each request after its scheduled time, shown on its own (bench/loadgen.ts).' : ''
      }${
        withMax ? ' The maximum is the lower of agent (c)’s median round and a closed-loop window measured right before the open-loop windows (both shown), because this machine’s speed drifts within minutes.' : ''
      } The agent’s CPU per record is its core’s busy time ÷ records acknowledged, in the window and in its median closed-loop round.\n\n${table(
        ['transport', 'share of max', 'rate req/s (scheduled / acked)', ...(withMax ? ['max req/s: median round / right before'] : []), ...(withLate ? ['sent late p50 / p99 (ms)'] : []), ...RUN_HEAD, 'agent CPU µs per record: here / median closed round'],
        open.map((x) => [
          TRANSPORT_LABEL[x.transport],
          `${Math.round((x.rateShare ?? 0) * 100)} %`,
          `${int(x.rate ?? 0)} / ${int(x.requestsPerSec)}`,
          ...(withMax ? [x.rateOf ? `${x.rateOf.medianRoundRps === null ? '–' : int(x.rateOf.medianRoundRps)} / ${int(x.rateOf.rightBeforeRps)}` : '–'] : []),
          ...(withLate ? [x.sendLateMs ? `${f2(x.sendLateMs.p50)} / ${f2(x.sendLateMs.p99)}` : '–'] : []),
          ...runCells(x),
          `${cpuUs(x)} / ${cpuUs(closedRow(r, 'fsync', x.transport))}`,
        ]),
      )}`,
    );
  }
  const other: string[][] = [];
  if (r.startup) other.push(['agent start-up to /readyz 200 (fsync agent, fresh ledger)', `${int(r.startup.ms)} ms (durability none: ${int(r.startup.noneMs)} ms)`]);
  if (r.startup) other.push(['agent idle RSS, 1 s after ready', `${f1(r.startup.idleRssMB)} MB`]);
  if (r.restart) other.push([`agent start-up to /readyz 200 on an existing ${f2(r.restart.ledgerBytes / 2 ** 30)} GiB ledger (the verify log)`, `${int(r.restart.ms)} ms, RSS 1 s later ${f1(r.restart.rssMB)} MB`]);
  if (r.agentPeakRssMB !== undefined) other.push(['agent (c) peak RSS over all its runs (VmHWM)', `${f1(r.agentPeakRssMB)} MB`]);
  if (r.soak) {
    other.push([
      `sustained load, ${r.soak.seconds} s OTLP/HTTP protobuf at maximum (c)`,
      `${int(r.soak.recordsPerSec)} records/s; RSS mean first third ${f1(r.soak.firstThirdMeanMB)} MB, last third ${f1(r.soak.lastThirdMeanMB)} MB, peak ${f1(r.soak.peakRssMB)} MB${soakRefusals(r.soak)}`,
    ]);
    const mm = r.soak.memory;
    if (mm) {
      other.push([
        'agent memory right after the sustained run (its /metrics)',
        `RSS ${f1(mm.rssMB)} MB = V8 heap ${f1(mm.heapTotalMB)} MB (used ${f1(mm.heapUsedMB)}, new space ${f1(mm.newSpaceMB)}) + external/Buffers ${f1(mm.externalMB)} MB + code, stacks and native`,
      ]);
    }
  }
  if (r.verify) {
    const v = r.verify;
    other.push([
      `\`sealtrail verify\` on a ${f2(v.bytes / 2 ** 30)} GiB log (${int(v.entries)} entries, ${v.segments} segments)`,
      `${int(v.entriesPerSec)} entries/s, ${f1(v.MBps)} MB/s, ${f1(v.seconds)} s wall incl. process start, exit ${v.exitCode}, peak RSS ${f1(v.peakRssMB)} MB`,
    ]);
    other.push(['log written for it by the Ledger in-process (durability none, 1,000-entry batches)', `${int(v.fill.entriesPerSec)} entries/s`]);
  }
  for (const l of r.loaded ?? []) {
    other.push([
      `maximum load, ${l.seconds} s OTLP/HTTP protobuf, on an agent (c) forwarding to ${l.destination} (${f1(l.segmentBytes / 2 ** 20)} MiB segments, quorum 1)`,
      `${int(l.recordsPerSec)} records/s; peak RSS ${f1(l.peakRssMB)} MB in the window, VmHWM ${f1(l.hwmMB)} MB; ` +
        `${l.sealedSegments} segments sealed and ${l.forwardedObjects} objects (${f1(l.forwardedMB)} MB) forwarded since its start, ${l.lagSegmentsAtEnd} segments not yet forwarded at the end${soakRefusals({ refused: l.refused })}`,
    ]);
  }
  for (const f of r.forwarding) {
    other.push([
      `forwarding a backlog of ${f.segments} sealed segments to the ${f.destination} destination`,
      `${f1(f.MBps)} MB/s between the first and the last confirmed object (${f1(f.bytes / 1e6)} MB${f.complete ? '' : ', INCOMPLETE'}); first object confirmed ${f1(f.firstObjectAfterS)} s after the agent was spawned` +
        (f.peakRssMB !== undefined ? `; the agent's peak RSS (VmHWM) ${f1(f.peakRssMB)} MB${f.segmentBytes !== undefined ? ` with ${f1(f.segmentBytes / 2 ** 20)} MiB segments` : ''}` : ''),
    ]);
  }
  if (!r.forwarding.some((f) => f.destination === 's3')) other.push(['forwarding to S3', 'not measured in this run (set SEALTRAIL_S3_ENDPOINT, see scripts/s3-server.sh)']);
  if (r.sanity) {
    other.push([
      'sanity: records sent by the real SDK exporters (' + r.sanity.exporters.join(', ') + ')',
      `${r.sanity.acceptedByAgent} of ${r.sanity.sent} accepted by the agent`,
    ]);
  }
  const acc = r.rows.filter((x) => x.acceptedByAgent !== undefined);
  if (acc.length) {
    const acked = acc.reduce((s, x) => s + x.recordsPerSec * x.seconds, 0);
    const stored = acc.reduce((s, x) => s + (x.acceptedByAgent ?? 0), 0);
    other.push(['cross-check: records acknowledged to the load generator vs counted by the agent (all agent runs)', `${int(acked)} vs ${int(stored)} (the agent's counter also includes in-flight requests at the window edges)`]);
  }
  if (other.length) parts.push(`#### Start-up, memory, verify, forwarding\n\n${table(['what', 'measured'], other)}`);
  return parts.join('\n\n');
}

/**
 * Rewrites the generated block of docs/benchmarks.md (creating the file or the markers when
 * missing); text outside the markers is kept byte for byte.
 */
export async function writeDocs(file: string, r: BenchReport): Promise<void> {
  const block = `${DOCS_BEGIN}\n<!-- Generated by \`npm run bench\` (bench/run.ts); do not edit by hand — rerun it. -->\n\n${renderTable(r)}\n\n${DOCS_END}`;
  const text = existsSync(file) ? await readFile(file, 'utf8') : '# Benchmarks\n';
  const b = text.indexOf(DOCS_BEGIN);
  const e = text.indexOf(DOCS_END);
  let next: string;
  if (b >= 0 && e > b) next = text.slice(0, b) + block + text.slice(e + DOCS_END.length);
  else next = `${text.trimEnd()}\n\n## End to end (\`npm run bench\`)\n\n${block}\n`;
  await writeFile(file, next);
}
