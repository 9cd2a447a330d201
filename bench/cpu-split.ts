/**
 * Where a server's CPU goes, the whole process: the servers' core sampled with Linux `perf` during a
 * closed-loop window, each sample put in a category (SHA-256 in the addon, the kernel's page-cache
 * writes, V8's garbage collector, node's HTTP parser, our JavaScript, …) and shown as µs per record,
 * side by side for the bare receiver and the agents (issue 7, "profile and write down where the time
 * goes").
 *
 * Why besides `npm run bench -- --cpu-prof`: V8's profiler sees the main thread's JavaScript only. It
 * books a native call to the JavaScript that made it, and the kernel work a call causes — or that a
 * thread of the same process does meanwhile on the same core — to whatever was on the stack: in
 * session 13 it put 7 % of agent (c) in the commit writer's submit call, which perf shows as the
 * kernel copying commits into the page cache on the thread pool; and it cannot show the kernel's
 * share at all (14–24 % of an agent's core, docs/benchmarks.md "Session 13").
 *
 *   npm run build
 *   node dist/bench/cpu-split.js [--servers bare,none,fsync] [--transport http-protobuf|http-json|grpc]
 *        [--seconds S] [--warmup S] [--concurrency N] [--rate REQ_PER_S] [--segment-bytes N] [--chunked] [--tls] [--json FILE]
 *
 * `--rate R` drives the servers open loop at R requests/s (up to 256 in flight, as npm run bench's
 * open-loop windows) instead of the closed loop at --concurrency: where a record's CPU goes at half
 * the maximum, where a record costs more than at the maximum (docs/benchmarks.md, sessions 22 and 24).
 * `--chunked` (OTLP/HTTP): the load generator sends each body as one chunk, as the OTel JS SDK's
 * exporter does, instead of with a Content-Length. `--tls` (OTLP/HTTP, agents only): the agents'
 * receiver speaks TLS with a fresh self-signed P-256 certificate (made with `openssl` in the tool's
 * temp dir) and the load generator's connections trust it.
 *
 * Each server is started fresh on CPU 0 (the agents with their shipped node flags; every server with
 * perfNodeFlags, so that perf can name JIT-compiled functions), the load generator
 * (bench/loadgen.ts, 100-record requests, closed loop or --rate) runs on CPU 1, as in `npm run bench`. After
 * the warm-up (5 s by default: after 2 s V8's optimising compiler still took 3 % of the core, after
 * 14 s under 1 %), `perf record -e cpu-clock -C 0` samples CPU 0 for the window. Needs perf (Debian:
 * linux-perf) and the right to sample a CPU (root, or kernel.perf_event_paranoid ≤ 0).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TRANSPORTS, type Transport } from './clients.js';
import { isSuccessStatus } from './report.js';
import { LoadgenProcess, cpuSeconds, hasTaskset, startFreshServer } from './procs.js';

const SERVER_CPU = 0;
const LOADGEN_CPU = 1;
/** Requests the open-loop generator (--rate) may have in flight, as in npm run bench's open-loop windows. */
const OPEN_LOOP_IN_FLIGHT = 256;
/**
 * Node flags for every server: perf names JIT-compiled functions from /tmp/perf-PID.map (removed when
 * the server stops). --perf-basic-prof also makes V8 write a log — isolate-*-v8.log in the working
 * directory, or stdout for --logfile=/dev/null — so it goes to a file in `work` (removed at the end).
 */
function perfNodeFlags(work: string, kind: string): string[] {
  return ['--perf-basic-prof', `--logfile=${path.join(work, `v8-${kind}.log`)}`, '--no-logfile-per-isolate'];
}

/** One line of `perf report -n --sort pid,dso,sym`: samples, thread, object, symbol. */
export interface PerfRow {
  readonly samples: number;
  /** Thread id from the "pid" column ("12345:node"); −1 when the line has none. */
  readonly tid: number;
  readonly comm: string;
  readonly dso: string;
  readonly sym: string;
}

/**
 * Parses `perf report --stdio --no-children -g none -n --sort pid,dso,sym -t '\t'` output (columns:
 * overhead, samples, pid, dso, symbol). Lines that are not sample rows (headers, comments, blank)
 * are skipped. Counts, not the printed percentages: those are rounded to 0.01 %, and a report of a
 * few thousand one-sample rows adds up to several % more than 100 when they are summed.
 */
export function parsePerfReport(text: string): PerfRow[] {
  const rows: PerfRow[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const cols = line.split('\t').map((c) => c.trim());
    if (cols.length < 5 || !cols[0]!.endsWith('%')) continue;
    const samples = Number(cols[1]);
    if (!Number.isSafeInteger(samples)) continue;
    const m = /^(\d+):(.*)$/.exec(cols[2]!);
    rows.push({ samples, tid: m ? Number(m[1]) : -1, comm: m ? m[2]!.trim() : cols[2]!, dso: cols[3]!, sym: cols.slice(4).join('\t').replace(/^\[[.k]\]\s*/, '') });
  }
  return rows;
}

/** The categories, in the order they are shown. */
export const CATEGORIES = [
  'addon: SHA-256 (leaves, chain, Merkle nodes)',
  'addon: CRC-32C',
  'addon: OTLP record check',
  'addon: entry assembly and other',
  'JavaScript: sealtrail (dist/src)',
  "JavaScript: node's own (http, streams, events)",
  'JavaScript: dependencies and unnamed',
  'V8 garbage collection',
  'V8 compilers',
  'node HTTP parsers (llhttp, nghttp2)',
  'V8 builtins and runtime, node C++, libuv',
  'libc: memcpy, memmove, memset',
  'libc: malloc, free and other',
  'kernel: files (page-cache writes, ext4, block I/O)',
  'kernel: network (loopback TCP)',
  'kernel: syscalls, scheduling, epoll, other',
  'other native code',
] as const;
export type Category = (typeof CATEGORIES)[number];

const KERNEL_FILES = /ext4|jbd2|folio|mpage|filemap|iomap|bio_|_bio|blk_|block_|writeback|dquot|_es_|es_insert|es_lookup|buffer_|page_cache|fdatasync|fsync|vfs_write|generic_perform_write|balance_dirty|_extent|xas_|lru_|crc32c/;
const KERNEL_NET = /tcp|skb|sock|inet|^ip_|ip6|_copy_to_iter|datagram|^net_|netif|napi|loopback|^sk_|__sk_|dev_queue|dev_hard/;
const V8_GC = /Scaveng|MarkCompact|Marking|Sweep|Evacuat|Compactor|RememberedSet|SlotSet|MinorMC|Heap::|GCTracer|WeakObjects|ArrayBufferSweeper|heap::base|cppgc|Worklist|MemoryAllocator|LargeObjectSpace|PagedSpace|SemiSpace|NewSpace/;
const V8_COMPILER = /compiler::|maglev|Maglev|Turbofan|Compile|v8::internal::Parser|v8::internal::Scanner|Bytecode|interpreter::/;
const HTTP_PARSERS = /llhttp|nghttp2|http2|node::\(anonymous namespace\)::Parser/;
const JIT_DSO = /^\[JIT\]|^perf-\d+\.map$|^\[unknown\]$/;

/** The category of one sample row of the server's process. */
export function categorise(r: PerfRow): Category {
  const { dso, sym } = r;
  if (dso === '[kernel.kallsyms]' || dso.startsWith('[kernel')) {
    if (KERNEL_FILES.test(sym)) return 'kernel: files (page-cache writes, ext4, block I/O)';
    if (KERNEL_NET.test(sym)) return 'kernel: network (loopback TCP)';
    return 'kernel: syscalls, scheduling, epoll, other';
  }
  if (dso.startsWith('sealtrail_hash')) {
    if (/sha256|leaf|chain|frontier|merkle|node_hash/.test(sym)) return 'addon: SHA-256 (leaves, chain, Merkle nodes)';
    if (/crc32c/.test(sym)) return 'addon: CRC-32C';
    if (/^ot_|check_log_records/.test(sym)) return 'addon: OTLP record check';
    return 'addon: entry assembly and other';
  }
  if (JIT_DSO.test(dso) || sym.startsWith('JS:') || sym.startsWith('LazyCompile:')) {
    if (sym.includes('/dist/src/')) return 'JavaScript: sealtrail (dist/src)';
    if (/\bnode:/.test(sym)) return "JavaScript: node's own (http, streams, events)";
    return 'JavaScript: dependencies and unnamed';
  }
  if (dso === 'node' || dso.endsWith('/node')) {
    if (V8_GC.test(sym)) return 'V8 garbage collection';
    if (HTTP_PARSERS.test(sym)) return 'node HTTP parsers (llhttp, nghttp2)';
    if (V8_COMPILER.test(sym)) return 'V8 compilers';
    return 'V8 builtins and runtime, node C++, libuv';
  }
  if (/^libc[.-]/.test(dso)) return /^__mem(move|cpy|set)|^mem(move|cpy|set)/.test(sym) ? 'libc: memcpy, memmove, memset' : 'libc: malloc, free and other';
  return 'other native code';
}

export interface CpuSplit {
  /** Share of CPU 0's samples (0–1) per category, the server's threads only. */
  readonly shares: ReadonlyMap<Category, number>;
  /** Share of CPU 0 the server's threads used in all. */
  readonly server: number;
  /** Of `server`, the main thread's (event loop) share; the rest is the thread pool's and V8's helper threads. */
  readonly mainThread: number;
  /** Share of CPU 0 spent by other tasks (kernel workers, …) and idle. */
  readonly others: number;
  readonly idle: number;
}

/**
 * Splits the rows of a whole-CPU report into the server's categories (threads in `tids`; `mainTid`
 * is the process's main thread, whose tid is its pid), other tasks and idle.
 */
export function splitRows(rows: readonly PerfRow[], tids: ReadonlySet<number>, mainTid: number): CpuSplit {
  const shares = new Map<Category, number>();
  let server = 0;
  let mainThread = 0;
  let others = 0;
  let idle = 0;
  let total = 0;
  for (const r of rows) total += r.samples;
  for (const r of rows) {
    const p = total > 0 ? r.samples / total : 0;
    if (tids.has(r.tid)) {
      const c = categorise(r);
      shares.set(c, (shares.get(c) ?? 0) + p);
      server += p;
      if (r.tid === mainTid) mainThread += p;
    } else if (r.comm === 'swapper' || r.tid === 0) idle += p;
    else others += p;
  }
  return { shares, server, mainThread, others, idle };
}

function threadsOf(pid: number): Set<number> {
  try {
    return new Set(readdirSync(`/proc/${pid}/task`).map(Number));
  } catch {
    return new Set([pid]);
  }
}

export interface WindowResult {
  readonly server: string;
  /** The server's process id (its threads are the ones counted). */
  readonly pid: number;
  readonly recordsPerSec: number;
  readonly seconds: number;
  readonly cpuPct: number;
  readonly errors: Record<string, number>;
  readonly split: CpuSplit;
}

/** What every window of one run shares. */
interface WindowOptions {
  readonly transport: Transport;
  readonly seconds: number;
  readonly warmupMs: number;
  readonly concurrency: number;
  /** Open loop at this many requests/s instead of the closed loop (--rate). */
  readonly rate: number | undefined;
  readonly segmentBytes: number | undefined;
  readonly chunked: boolean;
  /** OTLP/HTTP over TLS (agents only): the receiver's certificate and key, and the CA the client trusts. */
  readonly tls: { readonly certFile: string; readonly keyFile: string; readonly caPem: string } | undefined;
}

async function window(lg: LoadgenProcess, kind: string, o: WindowOptions, work: string): Promise<WindowResult> {
  const { transport, seconds, warmupMs, concurrency, rate, segmentBytes, chunked, tls } = o;
  const srv = await startFreshServer(kind as 'bare' | 'none' | 'fsync', {
    cpu: SERVER_CPU,
    extraNodeFlags: perfNodeFlags(work, kind),
    ...(segmentBytes !== undefined ? { segmentBytes } : {}),
    ...(tls ? { httpTls: { certFile: tls.certFile, keyFile: tls.keyFile } } : {}),
  });
  const data = path.join(work, `${kind}.perf.data`);
  try {
    const port = transport === 'grpc' ? srv.ports.grpc : srv.ports.http;
    let perf: ReturnType<typeof spawn> | undefined;
    let perfDone: Promise<number | null> = Promise.resolve(null);
    let cpu0 = 0;
    const r = await lg.run({ id: `split-${kind}-${srv.pid}`, transport, host: '127.0.0.1', port, records: 100, ...(rate === undefined ? { mode: 'closed', concurrency } : { mode: 'open', rate, concurrency: OPEN_LOOP_IN_FLIGHT }), warmupMs, durationMs: seconds * 1000, ...(chunked ? { chunked } : {}), ...(tls ? { tlsCaPem: tls.caPem } : {}) }, () => {
      cpu0 = cpuSeconds(srv.pid);
      perf = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-C', String(SERVER_CPU), '-o', data, '--', 'sleep', String(seconds)], { stdio: ['ignore', 'ignore', 'pipe'] });
      perfDone = new Promise((res) => perf!.once('exit', res));
    });
    const cpuPct = ((cpuSeconds(srv.pid) - cpu0) / (r.elapsedMs / 1000)) * 100;
    const tids = threadsOf(srv.pid);
    const code = await perfDone;
    if (code !== 0) throw new Error(`perf record exited with ${code}`);
    const rep = spawnSync('perf', ['report', '-i', data, '--stdio', '--no-children', '-g', 'none', '-n', '--sort', 'pid,dso,sym', '--percent-limit', '0', '-t', '\t'], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20 });
    if (rep.status !== 0) throw new Error(`perf report failed (exit ${rep.status}): ${rep.stderr.slice(0, 500)}`);
    return {
      server: kind,
      pid: srv.pid,
      recordsPerSec: (r.okRecords / r.elapsedMs) * 1000,
      seconds: r.elapsedMs / 1000,
      cpuPct,
      errors: Object.fromEntries(Object.entries(r.statuses).filter(([k]) => !isSuccessStatus(k))),
      split: splitRows(parsePerfReport(rep.stdout), tids, srv.pid),
    };
  } finally {
    await srv.stop();
  }
}

const LABEL: Record<string, string> = { bare: '(a) bare receiver', none: '(b) agent, durability none', fsync: '(c) agent, fsync' };

/**
 * The table: a row per category (µs of CPU 0 per acknowledged record, and the share of CPU 0), a
 * column per server. µs per record = share × window seconds ÷ records acknowledged in the window.
 */
export function renderSplit(results: readonly WindowResult[], transport: string, rate?: number): string {
  const us = (w: WindowResult, share: number): number => (share * 1e6) / w.recordsPerSec;
  const cell = (w: WindowResult, share: number): string => `${us(w, share).toFixed(3)} (${(share * 100).toFixed(1)} %)`;
  const loop = rate === undefined ? 'closed loop' : `open loop at ${rate.toLocaleString('en-US')} requests/s`;
  const head = `| ${transport}, 100-record requests, ${loop} | ${results.map((w) => LABEL[w.server] ?? w.server).join(' | ')} |`;
  const lines = [head, `|---|${results.map(() => '---|').join('')}`];
  lines.push(`| records/s | ${results.map((w) => Math.round(w.recordsPerSec).toLocaleString('en-US')).join(' | ')} |`);
  for (const c of CATEGORIES) {
    if (results.every((w) => (w.split.shares.get(c) ?? 0) < 0.0005)) continue;
    lines.push(`| ${c} | ${results.map((w) => cell(w, w.split.shares.get(c) ?? 0)).join(' | ')} |`);
  }
  lines.push(`| **the server's process in all** | ${results.map((w) => `**${cell(w, w.split.server)}**`).join(' | ')} |`);
  lines.push(`| of which the main thread (the rest: thread pool, V8 helpers) | ${results.map((w) => cell(w, w.split.mainThread)).join(' | ')} |`);
  lines.push(`| other tasks on CPU 0 (kernel workers, …) | ${results.map((w) => cell(w, w.split.others)).join(' | ')} |`);
  lines.push(`| idle | ${results.map((w) => `${(w.split.idle * 100).toFixed(1)} %`).join(' | ')} |`);
  return `${lines.join('\n')}\n\nµs of CPU 0 per acknowledged record (share of CPU 0's samples in the window); perf cpu-clock samples on CPU 0, ${results.map((w) => `${LABEL[w.server] ?? w.server} (pid ${w.pid}): ${w.seconds.toFixed(1)} s, process CPU ${w.cpuPct.toFixed(0)} %${Object.keys(w.errors).length ? `, errors ${JSON.stringify(w.errors)}` : ''}`).join('; ')}.\n`;
}

const USAGE = `usage: node dist/bench/cpu-split.js [--servers bare,none,fsync] [--transport ${TRANSPORTS.join('|')}]
       [--seconds S (default 5)] [--warmup S (default 5)] [--concurrency N (closed loop; default 64)] [--rate REQ_PER_S (open loop instead)] [--segment-bytes N]
       [--chunked (OTLP/HTTP bodies sent chunked, as the OTel JS SDK does)] [--tls (OTLP/HTTP over TLS; agents only)]
       [--json FILE]
`;

/** A self-signed P-256 certificate for "localhost" / 127.0.0.1 in `dir` (openssl), for --tls. */
function selfSignedCertificate(dir: string): { certFile: string; keyFile: string; caPem: string } {
  const certFile = path.join(dir, 'tls.crt');
  const keyFile = path.join(dir, 'tls.key');
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    { encoding: 'utf8' },
  );
  if (r.error || r.status !== 0) throw new Error(`--tls needs openssl to make a certificate: ${r.error?.message ?? r.stderr.trim().split('\n').pop()}`);
  chmodSync(keyFile, 0o600);
  return { certFile, keyFile, caPem: readFileSync(certFile, 'utf8') };
}

function perfUsable(): string | undefined {
  const r = spawnSync('perf', ['record', '-q', '-e', 'cpu-clock', '-C', String(SERVER_CPU), '-o', '/dev/null', '--', 'true'], { encoding: 'utf8' });
  if (r.error) return 'perf not found: install it (Debian: apt-get install linux-perf) to use this tool';
  if (r.status !== 0) return `perf cannot sample CPU ${SERVER_CPU} (exit ${r.status}): run as root or set kernel.perf_event_paranoid to 0 or lower (${r.stderr.trim().split('\n')[0] ?? ''})`;
  return undefined;
}

async function main(): Promise<number> {
  let v;
  try {
    v = parseArgs({
      options: {
        servers: { type: 'string', default: 'bare,none,fsync' },
        transport: { type: 'string', default: 'http-protobuf' },
        seconds: { type: 'string', default: '5' },
        warmup: { type: 'string', default: '5' },
        concurrency: { type: 'string', default: '64' },
        rate: { type: 'string' },
        'segment-bytes': { type: 'string' },
        chunked: { type: 'boolean', default: false },
        tls: { type: 'boolean', default: false },
        json: { type: 'string' },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`bench/cpu-split: ${(e as Error).message.split('\n')[0]}\n${USAGE}`);
    return 2;
  }
  const servers = v.servers.split(',');
  const seconds = Number(v.seconds);
  const warmup = Number(v.warmup);
  const concurrency = Number(v.concurrency);
  const rate = v.rate === undefined ? undefined : Number(v.rate);
  const seg = v['segment-bytes'] === undefined ? undefined : Number(v['segment-bytes']);
  const bad =
    servers.some((s) => !['bare', 'none', 'fsync'].includes(s)) ? `--servers ${v.servers}: each must be bare, none or fsync`
    : !(TRANSPORTS as readonly string[]).includes(v.transport) ? `--transport must be one of ${TRANSPORTS.join(', ')}`
    : !(seconds >= 1 && seconds <= 120) ? '--seconds must be from 1 to 120'
    : !(warmup >= 0 && warmup <= 120) ? '--warmup must be from 0 to 120 seconds'
    : !(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 1024) ? '--concurrency must be a whole number from 1 to 1024'
    : rate !== undefined && !(rate >= 1 && rate <= 1_000_000) ? '--rate must be from 1 to 1000000 requests/s'
    : seg !== undefined && !(Number.isInteger(seg) && seg >= 4096) ? '--segment-bytes must be a whole number of bytes, at least 4096'
    : v.chunked && v.transport === 'grpc' ? '--chunked is for OTLP/HTTP transports (gRPC frames its messages itself)'
    : v.tls && v.transport === 'grpc' ? '--tls is for OTLP/HTTP transports'
    : v.tls && servers.includes('bare') ? '--tls measures the agents only (the bare receiver speaks plain HTTP): use --servers none,fsync'
    : undefined;
  if (bad) {
    process.stderr.write(`bench/cpu-split: ${bad}\n${USAGE}`);
    return 2;
  }
  const noPerf = perfUsable();
  if (noPerf) {
    process.stderr.write(`bench/cpu-split: ${noPerf}\n`);
    return 2;
  }
  if (!hasTaskset()) process.stderr.write('bench/cpu-split: taskset not available — servers and load generator are NOT pinned, and CPU 0 holds more than the server\n');
  const work = await mkdtemp(path.join(os.tmpdir(), 'sealtrail-cpu-split-perf-'));
  const lg = new LoadgenProcess(LOADGEN_CPU, process.execPath);
  const results: WindowResult[] = [];
  try {
    await lg.ready;
    const tls = v.tls ? selfSignedCertificate(work) : undefined;
    const o: WindowOptions = { transport: v.transport as Transport, seconds, warmupMs: warmup * 1000, concurrency, rate, segmentBytes: seg, chunked: v.chunked, tls };
    for (const s of servers) results.push(await window(lg, s, o, work));
  } catch (e) {
    // A server that did not start, perf failing mid-way: one line, not a stack (the windows done so far are lost).
    process.stderr.write(`bench/cpu-split: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  } finally {
    lg.stop();
    await rm(work, { recursive: true, force: true });
  }
  const label = [v.transport, v.chunked ? 'chunked bodies' : '', v.tls ? 'TLS' : ''].filter((x) => x !== '');
  process.stdout.write(renderSplit(results, label.length > 1 ? `${label[0]} (${label.slice(1).join(', ')})` : label[0]!, rate));
  if (v.json) {
    const plain = results.map((w) => ({ ...w, split: { ...w.split, shares: Object.fromEntries(w.split.shares) } }));
    await writeFile(v.json, `${JSON.stringify({ transport: v.transport, chunked: v.chunked, tls: v.tls, ...(rate === undefined ? { concurrency } : { rate }), results: plain }, null, 2)}\n`);
  }
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = await main();
