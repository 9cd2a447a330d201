/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, the .cpuprofile JSON of the Chrome DevTools
 * protocol's Profiler.Profile: nodes with call frames, `samples` and `timeDeltas`) into self time per
 * function and per area of the code base, for docs/benchmarks.md "Where the time goes".
 *
 *   node dist/bench/profile.js FILE.cpuprofile [--top 30] [--window START_US-END_US …]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  /** Sampled time neither idle nor loading modules: the steady-state CPU (shares below are of this). */
  readonly busyMs: number;
  readonly startupMs: number;
  /** Self time by area (share of busy time; the idle area's share is of the total). */
  readonly areas: { area: string; ms: number; share: number }[];
  readonly top: { fn: string; where: string; area: string; ms: number; share: number }[];
}

/** Loading and compiling modules: start-up cost, left out of the steady-state shares. */
export const STARTUP_AREA = 'start-up: loading modules';
const IDLE_AREA = 'idle (waiting for I/O)';

/** Which part of the system a call frame belongs to (by script URL). */
export function areaOf(url: string, fn: string): string {
  if (fn === '(idle)') return IDLE_AREA;
  if (fn === '(garbage collector)') return 'garbage collection';
  if (fn === '(program)') return 'V8/native (program)';
  if (url.startsWith('node:internal/modules') || url.startsWith('node:internal/deps/cjs-module-lexer') || fn === 'compileFunction' || fn === 'compileFunctionForCJSLoader') {
    return STARTUP_AREA;
  }
  const m = /\/src\/([a-z]+)\//.exec(url);
  if (m && !url.includes('node_modules')) return `sealtrail src/${m[1]}`;
  if (url.includes('/node_modules/@grpc/')) return 'grpc-js';
  if (url.includes('/node_modules/prom-client/')) return 'prom-client';
  if (url.includes('/node_modules/pino')) return 'pino';
  if (url.includes('/node_modules/')) return 'other dependencies';
  if (url.startsWith('node:internal/http2') || url.startsWith('node:http2')) return 'node http2';
  if (url.startsWith('node:_http') || url.startsWith('node:http')) return 'node http';
  if (url.startsWith('node:internal/streams') || url.startsWith('node:stream')) return 'node streams';
  if (url.startsWith('node:net') || url.startsWith('node:internal/stream_base') || url.startsWith('node:internal/net')) return 'node net';
  if (url.startsWith('node:internal/crypto') || url.startsWith('node:crypto')) return 'node crypto';
  if (url.startsWith('node:internal/fs') || url.startsWith('node:fs')) return 'node fs';
  if (url.startsWith('node:')) return 'node other';
  if (url === '') return 'native bindings (fs, sockets, timers)';
  return 'other';
}

/**
 * Self time per function and per area.
 * @throws Error when the file is not a V8 CPU profile
 */
export function summariseProfile(file: string, topN = 30, windowsUs?: readonly (readonly [number, number])[]): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  if (!Array.isArray(p.nodes) || !Array.isArray(p.samples) || !Array.isArray(p.timeDeltas)) {
    throw new Error(`${file} is not a V8 CPU profile (no nodes/samples/timeDeltas)`);
  }
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; attribute it to the sample's node. Sample times are
  // on V8's monotonic clock (CLOCK_MONOTONIC on Linux, as process.hrtime), so `windowsUs` taken with
  // process.hrtime in another process select the measured windows.
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    const dt = Math.max(0, p.timeDeltas[i] ?? 0);
    t += p.timeDeltas[i] ?? 0;
    if (windowsUs && !windowsUs.some(([a, b]) => t >= a && t <= b)) continue;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  }
  const fns = new Map<string, { fn: string; where: string; area: string; us: number }>();
  const areas = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const fn = functionName || '(anonymous)';
    const where = url ? `${url.replace(/^.*\/(src|node_modules|bench)\//, '$1/')}:${lineNumber + 1}` : '';
    const area = areaOf(url, fn);
    const key = `${fn}@${where}`;
    const e = fns.get(key) ?? { fn, where, area, us: 0 };
    e.us += us;
    fns.set(key, e);
    areas.set(area, (areas.get(area) ?? 0) + us);
    total += us;
  }
  const idle = areas.get(IDLE_AREA) ?? 0;
  const startup = areas.get(STARTUP_AREA) ?? 0;
  const busy = total - idle - startup;
  const share = (us: number): number => (busy ? us / busy : 0);
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    startupMs: startup / 1000,
    areas: [...areas]
      .filter(([a]) => a !== IDLE_AREA && a !== STARTUP_AREA)
      .sort((a, b) => b[1] - a[1])
      .map(([area, us]) => ({ area, ms: us / 1000, share: share(us) })),
    top: [...fns.values()]
      .filter((e) => e.area !== IDLE_AREA && e.area !== STARTUP_AREA)
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map((e) => ({ fn: e.fn, where: e.where, area: e.area, ms: e.us / 1000, share: share(e.us) })),
  };
}

/** Text rendering: areas, then the top functions. */
export function renderProfile(s: ProfileSummary): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1).padStart(5)} %`;
  const lines = [
    `sampled ${(s.totalMs / 1000).toFixed(1)} s: start-up module loading ${(s.startupMs / 1000).toFixed(1)} s, ` +
      `steady-state busy ${(s.busyMs / 1000).toFixed(1)} s (the shares below are of this), the rest idle`,
    '',
    'self time by area:',
  ];
  for (const a of s.areas.filter((x) => x.share >= 0.002)) lines.push(`  ${pct(a.share)}  ${a.area}`);
  lines.push('', 'top functions (self time):');
  for (const f of s.top) lines.push(`  ${pct(f.share)}  ${f.fn}  ${f.where}`);
  return `${lines.join('\n')}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' }, window: { type: 'string', multiple: true } } });
  if (positionals.length !== 1) {
    process.stderr.write('usage: node dist/bench/profile.js FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  // --window START_US-END_US (monotonic µs), repeatable: only samples inside these windows.
  const windows = values.window?.map((w) => w.split('-').map(Number) as [number, number]);
  process.stdout.write(renderProfile(summariseProfile(positionals[0]!, Number(values.top), windows)));
}
