/**
 * The harness's results: the JSON shape (`--json FILE`), the text tables printed at the end, the
 * issue 7 targets next to the measured figures, and the generated block of docs/benchmarks.md
 * (between `<!-- bench:begin -->` and `<!-- bench:end -->`; nothing outside the markers is touched).
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import type { Transport } from './clients.js';
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
  soak?: boolean;
  seconds: number;
  requestsPerSec: number;
  recordsPerSec: number;
  payloadMBps: number;
  latencyMs: { p50: number; p99: number; max: number };
  cpuPct: number;
  /** CPU of the load generator: near 100 % means the client, not the server, was the limit. */
  loadgenCpuPct: number;
  peakRssMB: number;
  statuses: Record<string, number>;
  groupCommits?: number;
  avgBatchEntries?: number;
  avgCommitMs?: number;
  acceptedByAgent?: number;
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
  };
  agentPeakRssMB?: number;
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
  forwarding: { destination: string; segments: number; bytes: number; complete: boolean; secondsFromSpawn: number; firstObjectAfterS: number; MBps: number }[];
  profile?: { file: string; summary: ProfileSummary };
  targets?: Target[];
}

const TRANSPORT_LABEL: Record<Transport, string> = { 'http-protobuf': 'OTLP/HTTP protobuf', 'http-json': 'OTLP/HTTP JSON', grpc: 'OTLP/gRPC' };
const SERVER_LABEL = { bare: '(a) bare receiver', none: '(b) agent, durability none', fsync: '(c) agent, fsync' } as const;

const int = (x: number): string => Math.round(x).toLocaleString('en-US');
const f1 = (x: number): string => x.toFixed(1);
const f2 = (x: number): string => x.toFixed(2);
const yes = (b: boolean | null): string => (b === null ? 'not measured' : b ? '**met**' : '**missed**');

function closedRow(r: BenchReport, server: Row['server'], transport: Transport, records = 100): Row | undefined {
  return r.rows.find((x) => x.server === server && x.transport === transport && x.records === records && x.mode === 'closed' && !x.soak);
}

function errorsOf(row: Row): string {
  const bad = Object.entries(row.statuses).filter(([k]) => k !== 'http 200' && k !== 'grpc 0');
  return bad.length ? bad.map(([k, v]) => `${k}: ${v}`).join(', ') : '0';
}

/** The issue 7 targets with the measured figure next to each. */
export function targetsOf(r: BenchReport): Target[] {
  const t: Target[] = [];
  const http = closedRow(r, 'fsync', 'http-protobuf');
  const grpc = closedRow(r, 'fsync', 'grpc');
  t.push({ what: 'OTLP/HTTP protobuf, 100-record requests, ack after fsync', target: '≥ 400,000 records/s', measured: http ? `${int(http.recordsPerSec)} records/s` : '–', met: http ? http.recordsPerSec >= 400_000 : null });
  t.push({ what: 'OTLP/gRPC, 100-record requests, ack after fsync', target: '≥ 250,000 records/s', measured: grpc ? `${int(grpc.recordsPerSec)} records/s` : '–', met: grpc ? grpc.recordsPerSec >= 250_000 : null });
  for (const tr of ['http-protobuf', 'grpc', 'http-json'] as Transport[]) {
    const c = closedRow(r, 'fsync', tr);
    const b = closedRow(r, 'none', tr);
    t.push({
      what: `group commit: fsync ÷ none, ${TRANSPORT_LABEL[tr]}`,
      target: '≥ 0.90',
      measured: c && b ? f2(c.recordsPerSec / b.recordsPerSec) : '–',
      met: c && b ? c.recordsPerSec / b.recordsPerSec >= 0.9 : null,
    });
  }
  for (const tr of ['http-protobuf', 'grpc', 'http-json'] as Transport[]) {
    const o = r.rows.find((x) => x.server === 'fsync' && x.transport === tr && x.mode === 'open' && x.rateShare === 0.5);
    if (!o && tr === 'http-json') continue;
    t.push({
      what: `p99 ack latency at 50 % of max rate, ${TRANSPORT_LABEL[tr]}`,
      target: '≤ 5 ms',
      measured: o ? `${f2(o.latencyMs.p99)} ms (at ${int(o.rate ?? 0)} req/s)` : '–',
      met: o ? o.latencyMs.p99 <= 5 : null,
    });
  }
  const peak = r.agentPeakRssMB;
  t.push({ what: 'agent peak RSS under sustained maximum load (VmHWM over all runs)', target: '≤ 150 MB', measured: peak !== undefined ? `${f1(peak)} MB` : '–', met: peak !== undefined ? peak <= 150 : null });
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
    `${int(x.cpuPct)} % / ${int(x.loadgenCpuPct)} %`,
    f1(x.peakRssMB),
    x.groupCommits !== undefined ? `${int(x.groupCommits)} / ${int(x.avgBatchEntries ?? 0)} / ${f2(x.avgCommitMs ?? 0)}` : '–',
    errorsOf(x),
  ];
}

const RUN_HEAD = ['records/s', 'payload MB/s', 'ack latency p50 / p99 / max (ms)', 'CPU server / loadgen', 'peak RSS MB', 'group commits / entries per commit / ms per write+fsync', 'errors'];

/** Markdown tables of everything measured (printed to stdout and put into docs/benchmarks.md). */
export function renderTable(r: BenchReport): string {
  const m = r.machine;
  const parts: string[] = [];
  parts.push(
    [
      `Command: \`${r.command}\` — ${r.quick ? 'quick run (short windows; for development, not for the record)' : 'full run'}`,
      `Date: ${r.date}${r.finished ? ` → ${r.finished}` : ''}`,
      `Machine: ${m.nproc} CPUs, ${m.cpuModel}, ${m.memGiB} GiB RAM, ${m.kernel}, Node ${m.node}; temp dir on ${m.tmpDisk || '?'}`,
      `Ledger hashing: ${m.nativeHash ?? 'unknown'}`,
      `Load average at start: ${m.loadAvgStart.join(' ')}${r.loadAvgEnd ? `; at end: ${r.loadAvgEnd.join(' ')}` : ''}`,
      m.taskset
        ? `Pinning: servers (bare receiver, agents) on CPU ${r.settings.agentCpu}, load generator on CPU ${r.settings.loadgenCpu} (\`taskset -c\`); \`sealtrail verify\` unpinned (both cores, nothing else running).`
        : 'Pinning: taskset not available — processes were NOT pinned.',
      `Windows: ${r.settings.warmupMs} ms warm-up, then ${r.settings.mainMs} ms (100-record runs), ${r.settings.variantMs} ms (1 and 1,000 records), ${r.settings.openMs} ms (open loop); closed loop at ${r.settings.concurrency} requests in flight (8 for 1,000-record requests).`,
      'Agents: built `node dist/src/cli/bin.js agent`, temporary config, fresh key from `sealtrail keygen`, `destinations: []` (ingest only), all endpoints on 127.0.0.1.',
    ].join('  \n'),
  );
  if (r.targets) {
    parts.push(`#### Targets (issue 7)\n\n${table(['what', 'target', 'measured', ''], r.targets.map((t) => [t.what, t.target, t.measured, yes(t.met)]))}`);
  }
  const closed100 = r.rows.filter((x) => x.mode === 'closed' && x.records === 100 && !x.soak);
  if (closed100.length) {
    parts.push(
      `#### Closed loop, 100-record requests (maximum throughput)\n\n${table(
        ['transport', 'server', ...RUN_HEAD],
        closed100.map((x) => [TRANSPORT_LABEL[x.transport], SERVER_LABEL[x.server], ...runCells(x)]),
      )}`,
    );
    const ratios: string[][] = [];
    for (const tr of ['http-protobuf', 'http-json', 'grpc'] as Transport[]) {
      const a = closedRow(r, 'bare', tr);
      const b = closedRow(r, 'none', tr);
      const c = closedRow(r, 'fsync', tr);
      if (!a && !b && !c) continue;
      const q = (x?: Row, y?: Row): string => (x && y && y.recordsPerSec > 0 ? f2(x.recordsPerSec / y.recordsPerSec) : '–');
      ratios.push([TRANSPORT_LABEL[tr], q(c, b), q(c, a), q(b, a)]);
    }
    parts.push(`#### Ratios (records/s, same run)\n\n${table(['transport', 'c/b fsync ÷ none (≥ 0.90)', 'c/a agent ÷ bare', 'b/a none ÷ bare'], ratios)}`);
  }
  const variants = r.rows.filter((x) => x.mode === 'closed' && x.records !== 100);
  if (variants.length) {
    parts.push(
      `#### Closed loop, 1-record and 1,000-record requests\n\n${table(
        ['transport', 'records/request', 'server', 'in flight', ...RUN_HEAD],
        variants.map((x) => [TRANSPORT_LABEL[x.transport], int(x.records), SERVER_LABEL[x.server], String(x.concurrency), ...runCells(x)]),
      )}`,
    );
  }
  const open = r.rows.filter((x) => x.mode === 'open');
  if (open.length) {
    parts.push(
      `#### Open loop on (c), 100-record requests: latency at 50 % and 80 % of the measured maximum\n\nLatency is measured from each request's scheduled send time (no coordinated omission).\n\n${table(
        ['transport', 'share of max', 'rate req/s (scheduled / acked)', ...RUN_HEAD],
        open.map((x) => [
          TRANSPORT_LABEL[x.transport],
          `${Math.round((x.rateShare ?? 0) * 100)} %`,
          `${int(x.rate ?? 0)} / ${int(x.requestsPerSec)}`,
          ...runCells(x),
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
      `${int(r.soak.recordsPerSec)} records/s; RSS mean first third ${f1(r.soak.firstThirdMeanMB)} MB, last third ${f1(r.soak.lastThirdMeanMB)} MB, peak ${f1(r.soak.peakRssMB)} MB`,
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
  for (const f of r.forwarding) {
    other.push([
      `forwarding a backlog of ${f.segments} sealed segments to the ${f.destination} destination`,
      `${f1(f.MBps)} MB/s between the first and the last confirmed object (${f1(f.bytes / 1e6)} MB${f.complete ? '' : ', INCOMPLETE'}); first object confirmed ${f1(f.firstObjectAfterS)} s after the agent was spawned`,
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
