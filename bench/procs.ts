/**
 * Process plumbing for the harness: CPU pinning with taskset, CPU time and memory from /proc
 * (proc(5): utime/stime in /proc/PID/stat, VmRSS/VmHWM in /proc/PID/status), the agent's
 * /metrics scraped as Prometheus text, starting/stopping the built agent with a temporary config and
 * a fresh key, and the load generator and bare receiver children (bench/run.ts, bench/fixed-rate.ts,
 * bench/cpu-split.ts).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { AGENT_ENV, AGENT_NODE_FLAGS } from '../src/cli/node-flags.js';
import type { FromLoadgen, LoadJob, LoadResult, ToLoadgen } from './loadgen.js';

let tasksetOk: boolean | undefined;

/** True when `taskset` exists and can pin to CPUs 0 and 1 (util-linux). */
export function hasTaskset(): boolean {
  if (tasksetOk === undefined) {
    const r0 = spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
    const r1 = spawnSync('taskset', ['-c', '1', 'true'], { stdio: 'ignore' });
    tasksetOk = r0.status === 0 && r1.status === 0;
  }
  return tasksetOk;
}

/**
 * Spawn `cmd args` pinned to one CPU when taskset works (taskset execs the command, so the child's
 * pid is the command's own pid and /proc figures are the command's).
 */
export function spawnPinned(cpu: number | undefined, cmd: string, args: string[], opts: Parameters<typeof spawn>[2]): ChildProcess {
  if (cpu !== undefined && hasTaskset()) return spawn('taskset', ['-c', String(cpu), cmd, ...args], opts);
  return spawn(cmd, args, opts);
}

const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // Fields after the command name (which may contain spaces) start after the last ')':
  // state(3) ppid(4) … utime(14) stime(15).
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

/** One CPU's counters from /proc/stat, in clock ticks: steal and the total of all states. */
export interface CpuTicks {
  readonly steal: number;
  readonly total: number;
}

/**
 * The counters of CPU `cpu` (the `cpuN` line of /proc/stat), or undefined where there is no such line.
 * Steal is time this virtual CPU was ready to run while the hypervisor ran something else.
 */
export function cpuTicks(cpu: number, stat = readFileSync('/proc/stat', 'latin1')): CpuTicks | undefined {
  const line = new RegExp(`^cpu${cpu} (.*)$`, 'm').exec(stat)?.[1];
  if (line === undefined) return undefined;
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
  const f = line.trim().split(/\s+/).slice(0, 8).map(Number);
  if (f.length < 8 || f.some((x) => !Number.isFinite(x))) return undefined;
  return { steal: f[7]!, total: f.reduce((a, b) => a + b, 0) };
}

/**
 * Whether this machine's virtio balloon reports free pages to the host (VIRTIO_BALLOON_F_REPORTING,
 * feature bit 5; the kernel shows a device's feature bits as a string of 0/1, bit 0 first): then the
 * host takes back memory the guest frees, and the next first write into such a page faults in the
 * host — on the benchmark VM that made page-cache writes 2–3× dearer (docs/benchmarks.md, session 18).
 * Undefined where there is no virtio balloon (bare metal, other hypervisors) or nothing to read.
 */
export function freePageReporting(devices = '/sys/bus/virtio/devices'): boolean | undefined {
  let names: string[];
  try {
    names = readdirSync(devices);
  } catch {
    return undefined;
  }
  for (const n of names) {
    try {
      if (Number(readFileSync(path.join(devices, n, 'device'), 'latin1').trim()) !== 5) continue; // 5: balloon
      return readFileSync(path.join(devices, n, 'features'), 'latin1').trim()[5] === '1';
    } catch {
      // a device without these files: not the balloon
    }
  }
  return undefined;
}

/** Steal between two readings of one CPU, in % of its time then; undefined without both readings. */
export function stealPct(a: CpuTicks | undefined, b: CpuTicks | undefined): number | undefined {
  if (!a || !b || b.total <= a.total) return undefined;
  return ((b.steal - a.steal) / (b.total - a.total)) * 100;
}

/** VmRSS and VmHWM (peak RSS) in bytes. @throws Error when the process is gone (or is a zombie, whose status has no memory lines) */
export function memory(pid: number): { rss: number; hwm: number } {
  return memoryFromStatus(readFileSync(`/proc/${pid}/status`, 'latin1'), pid);
}

/**
 * VmRSS and VmHWM from the text of /proc/PID/status. An exited process not yet reaped (a zombie) still
 * has a status file, without those lines: that throws like a missing file, so that a poller's
 * "process gone" path takes it — never a NaN that would stick in a running maximum.
 */
export function memoryFromStatus(status: string, pid: number): { rss: number; hwm: number } {
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  const rss = kb('VmRSS');
  const hwm = kb('VmHWM');
  if (!Number.isFinite(rss) || !Number.isFinite(hwm)) throw new Error(`process ${pid} has no memory figures in /proc/${pid}/status (it has exited)`);
  return { rss, hwm };
}

/** Samples VmRSS every `everyMs` while running: peak and a time series (for the steadiness check). */
export class RssSampler {
  readonly samples: { tMs: number; rss: number }[] = [];
  #timer: NodeJS.Timeout | undefined;
  #t0 = 0;
  peak = 0;

  constructor(readonly pid: number, readonly everyMs = 200) {}

  start(): void {
    this.#t0 = performance.now();
    const take = (): void => {
      try {
        const { rss } = memory(this.pid);
        this.peak = Math.max(this.peak, rss);
        this.samples.push({ tMs: performance.now() - this.#t0, rss });
      } catch {
        /* process gone */
      }
    };
    take();
    this.#timer = setInterval(take, this.everyMs);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** A Prometheus text exposition as a map "name{labels}" → value (comments skipped). */
export type MetricMap = Map<string, number>;

export async function scrape(url: string): Promise<MetricMap> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  const out: MetricMap = new Map();
  for (const line of (await res.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

/** Sum of every series of `name` (all label sets), e.g. a counter split by label. */
export function metricSum(m: MetricMap | undefined, name: string): number {
  if (!m) return 0;
  let s = 0;
  for (const [k, v] of m) if (k === name || k.startsWith(`${name}{`)) s += v;
  return s;
}

/**
 * The benchmark agents' ledger budget (`ledger.max_disk_bytes`): the agent refuses appends as disk_full
 * once its ledger holds this much, and with `destinations: []` nothing is ever released. A 300 s soak
 * at ≈ 360k records/s (631 bytes each on disk) writes ≈ 68 GB, so on this machine it reaches the budget
 * (session 19); the report says so when it happens.
 */
export const BENCH_MAX_DISK_BYTES = 64 * 2 ** 30;

export interface AgentOptions {
  readonly node: string;
  /** dist/src/cli/bin.js */
  readonly bin: string;
  /** Working directory (temp): keys/, ledger/, worm/, agent.yaml, agent.log live here. */
  readonly dir: string;
  readonly durability: 'fsync' | 'none';
  readonly cpu?: number;
  /** Extra config merged at the top level (e.g. destinations, forwarding). */
  readonly extra?: Record<string, unknown>;
  readonly ledger?: Record<string, unknown>;
  readonly origin?: string;
  /** Reuse an existing key file instead of generating one. */
  readonly keyFile?: string;
  /** Write a V8 CPU profile to this directory (node --cpu-prof). */
  readonly cpuProfDir?: string;
  /** Node flags for the agent process instead of the shipped AGENT_NODE_FLAGS (experiments, e.g. --max-semi-space-size=4). */
  readonly nodeFlags?: readonly string[];
  /** Default true: wait for /readyz 200 and 1 s more (start-up time, idle RSS). */
  readonly waitReady?: boolean;
}

export interface AgentAddress {
  host: string;
  port: number;
}

/** Generates a key pair with the real CLI (`sealtrail keygen --dir DIR`). */
export function keygen(node: string, bin: string, dir: string): { keyFile: string; pubFile: string } {
  const r = spawnSync(node, [bin, 'keygen', '--dir', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sealtrail keygen --dir ${dir} failed (exit ${r.status}): ${r.stderr}`);
  return { keyFile: path.join(dir, 'signing.key'), pubFile: path.join(dir, 'signing.pub') };
}

/** The built agent as a child process. */
export class AgentProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly spawnedAt: number;
  readonly configFile: string;
  grpc!: AgentAddress;
  http!: AgentAddress;
  metricsUrl!: string;
  readyzUrl!: string;
  /** ms from spawn to the first /readyz 200. */
  startupMs = 0;
  /** VmRSS 1 s after ready, before any load. */
  idleRss = 0;
  readonly #exited: Promise<number | null>;
  readonly #started: Promise<void>;

  private constructor(o: AgentOptions, configFile: string) {
    this.configFile = configFile;
    const nodeArgs = [...(o.nodeFlags ?? AGENT_NODE_FLAGS), ...(o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir] : [])];
    this.spawnedAt = performance.now();
    // The agent's environment as shipped (AGENT_ENV); a variable set for the harness overrides it (A/B runs).
    const env = { ...AGENT_ENV, ...process.env };
    this.child = spawnPinned(o.cpu, o.node, [...nodeArgs, o.bin, 'agent', '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'], env });
    if (this.child.pid === undefined) throw new Error(`could not start the agent (${o.node} ${o.bin})`);
    this.pid = this.child.pid;
    this.#exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    const log = createWriteStream(path.join(o.dir, 'agent.log'));
    const lines = createInterface({ input: this.child.stderr! });
    this.#started = new Promise((resolve, reject) => {
      lines.on('line', (line) => {
        log.write(`${line}\n`);
        if (!line.includes('sealtrail agent started')) return;
        try {
          const j = JSON.parse(line) as { grpc: AgentAddress; http: AgentAddress; metrics: AgentAddress; health: AgentAddress };
          this.grpc = j.grpc;
          this.http = j.http;
          this.metricsUrl = `http://${j.metrics.host}:${j.metrics.port}/metrics`;
          this.readyzUrl = `http://${j.health.host}:${j.health.port}/readyz`;
          resolve();
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
      this.#exited.then((code) => reject(new Error(`the agent exited with ${code} before it started; see ${path.join(o.dir, 'agent.log')}`)), () => undefined);
    });
    this.#started.catch(() => undefined);
  }

  /**
   * Write the config (JSON is YAML), start the agent, wait for /readyz 200; records start-up time and idle RSS.
   * @throws Error when the agent exits or is not ready within 60 s
   */
  static async start(o: AgentOptions): Promise<AgentProcess> {
    await mkdir(o.dir, { recursive: true });
    const keyFile = o.keyFile ?? keygen(o.node, o.bin, path.join(o.dir, 'keys')).keyFile;
    const cfg = {
      receivers: { otlp: { protocols: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0' } } } },
      // A disk budget the runs cannot reach (the default 10 GiB fills in about two minutes at full
      // ingest with nothing forwarded; the soak would then measure disk_full refusals, not ingest).
      ledger: { dir: path.join(o.dir, 'ledger'), origin: o.origin ?? 'bench.sealtrail.local/agent', durability: o.durability, max_disk_bytes: BENCH_MAX_DISK_BYTES, ...o.ledger },
      signing: { key_file: keyFile },
      destinations: [],
      telemetry: { metrics: { endpoint: '127.0.0.1:0' }, health: { endpoint: '127.0.0.1:0' }, logs: { level: 'info' } },
      ...o.extra,
    };
    const configFile = path.join(o.dir, 'agent.yaml');
    await writeFile(configFile, `${JSON.stringify(cfg, null, 2)}\n`);
    const a = new AgentProcess(o, configFile);
    const deadline = performance.now() + 60_000;
    try {
      await Promise.race([a.#started, new Promise((_, rej) => setTimeout(() => rej(new Error('agent did not log "sealtrail agent started" within 60 s')), 60_000).unref())]);
      if (o.waitReady === false) return a;
      for (;;) {
        const ok = await fetch(a.readyzUrl).then((r) => r.status === 200, () => false);
        if (ok) break;
        if (performance.now() > deadline) throw new Error(`agent not ready within 60 s (${a.readyzUrl}; its log: ${path.join(o.dir, 'agent.log')})`);
        await new Promise((r) => setTimeout(r, 5));
      }
    } catch (e) {
      // An agent that never became ready is not left running (it kept the harness alive, and its core busy).
      a.child.kill('SIGKILL');
      throw e;
    }
    a.startupMs = performance.now() - a.spawnedAt;
    await new Promise((r) => setTimeout(r, 1000));
    a.idleRss = memory(a.pid).rss;
    return a;
  }

  /** SIGTERM and wait for the exit code (SIGKILL after 30 s). */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    const code = await this.#exited;
    clearTimeout(t);
    return code;
  }
}

/** dist/bench: the harness's child scripts (loadgen.js, bare.js) sit next to this module. */
const benchDir = path.dirname(fileURLToPath(import.meta.url));

/**
 * The load generator (bench/loadgen.ts) as a child process on `cpu`, driven over IPC: one job at a
 * time or several, each settled by its result; `onMeasuring` is called when a job's warm-up ends.
 */
export class LoadgenProcess {
  readonly child: ChildProcess;
  readonly #waiters = new Map<string, { onMeasuring: () => void; resolve: (r: LoadResult) => void; reject: (e: Error) => void }>();
  /** Settles when the child said it is ready (its payloads encoded); rejects if it exits first. */
  readonly ready: Promise<void>;

  /** `script`: the built load generator (default: loadgen.js next to this module; tests run this module from source). */
  constructor(cpu: number | undefined, node: string, script = path.join(benchDir, 'loadgen.js')) {
    this.child = spawnPinned(cpu, node, [script], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let onReady!: () => void;
    let onFail!: (e: Error) => void;
    this.ready = new Promise((resolve, reject) => {
      onReady = resolve;
      onFail = reject;
    });
    this.ready.catch(() => undefined);
    this.child.on('message', (m: FromLoadgen) => {
      if (m.type === 'ready') onReady();
      else if (m.type === 'measuring') this.#waiters.get(m.id)?.onMeasuring();
      else if (m.type === 'result') {
        this.#waiters.get(m.result.id)?.resolve(m.result);
        this.#waiters.delete(m.result.id);
      } else if (m.type === 'failed') {
        this.#waiters.get(m.id)?.reject(new Error(`load generator: ${m.message}`));
        this.#waiters.delete(m.id);
      }
    });
    this.child.on('exit', (code) => {
      onFail(new Error(`load generator exited (${code}) before it was ready`));
      for (const w of this.#waiters.values()) w.reject(new Error(`load generator exited (${code})`));
      this.#waiters.clear();
    });
  }

  run(job: LoadJob, onMeasuring: () => void): Promise<LoadResult> {
    return new Promise((resolve, reject) => {
      this.#waiters.set(job.id, { onMeasuring, resolve, reject });
      this.child.send({ type: 'job', job } satisfies ToLoadgen);
    });
  }

  stop(): void {
    if (this.child.connected) this.child.send({ type: 'exit' } satisfies ToLoadgen);
    setTimeout(() => this.child.kill('SIGTERM'), 2000).unref();
  }
}

/** The bare receiver (bench/bare.ts) as a child process on `cpu` (with `nodeFlags`), once it reported its ports. */
export async function startBareReceiver(cpu: number | undefined, node: string, nodeFlags: readonly string[] = []): Promise<{ pid: number; ports: { http: number; grpc: number }; child: ChildProcess }> {
  const child = spawnPinned(cpu, node, [...nodeFlags, path.join(benchDir, 'bare.js')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ports = await new Promise<{ http: number; grpc: number }>((resolve, reject) => {
    child.once('message', (m: { http: number; grpc: number }) => resolve(m));
    child.once('exit', (c) => reject(new Error(`bare receiver exited (${c})`)));
  });
  return { pid: child.pid!, ports, child };
}

/** A server started for one window of the side tools (fixed-rate.ts, cpu-split.ts), stopped after it. */
export interface FreshServer {
  readonly pid: number;
  readonly ports: { http: number; grpc: number };
  /** The agent's /metrics (agents only). */
  readonly metricsUrl?: string;
  /** Stops it and removes what it left: its temp dir, and /tmp/perf-PID.map under --perf-basic-prof. */
  stop(): Promise<void>;
}

/**
 * A fresh bare receiver or agent (`durability: none` or `fsync`, temp dir, shipped node flags plus
 * `extraNodeFlags`) on `cpu`; `segmentBytes` sets the agent's ledger.max_segment_bytes.
 */
export async function startFreshServer(
  kind: 'bare' | 'none' | 'fsync',
  o: {
    readonly cpu?: number;
    readonly segmentBytes?: number;
    readonly extraNodeFlags?: readonly string[];
    /** Agents only: TLS on the OTLP/HTTP receiver with this certificate and key (files). */
    readonly httpTls?: { readonly certFile: string; readonly keyFile: string };
  } = {},
): Promise<FreshServer> {
  const extra = o.extraNodeFlags ?? [];
  const perfMap = async (pid: number): Promise<void> => {
    if (extra.includes('--perf-basic-prof')) await rm(`/tmp/perf-${pid}.map`, { force: true });
  };
  if (kind === 'bare') {
    if (o.httpTls) throw new Error('the bare receiver speaks plain HTTP only; TLS is for the agents');
    const { pid, ports, child } = await startBareReceiver(o.cpu, process.execPath, extra);
    return {
      pid,
      ports,
      stop: async () => {
        if (child.exitCode === null) {
          child.kill('SIGTERM');
          await new Promise((r) => child.once('exit', r));
        }
        await perfMap(pid);
      },
    };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), `sealtrail-bench-${kind}-`));
  const a = await AgentProcess.start({
    node: process.execPath,
    bin: path.join(path.dirname(benchDir), 'src', 'cli', 'bin.js'),
    dir,
    durability: kind,
    ...(o.cpu !== undefined ? { cpu: o.cpu } : {}),
    ...(extra.length > 0 ? { nodeFlags: [...AGENT_NODE_FLAGS, ...extra] } : {}),
    ...(o.segmentBytes !== undefined ? { ledger: { max_segment_bytes: o.segmentBytes } } : {}),
    ...(o.httpTls
      ? {
          extra: {
            receivers: {
              otlp: { protocols: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0', tls: { cert_file: o.httpTls.certFile, key_file: o.httpTls.keyFile } } } },
            },
          },
        }
      : {}),
  });
  return {
    pid: a.pid,
    ports: { http: a.http.port, grpc: a.grpc.port },
    metricsUrl: a.metricsUrl,
    stop: async () => {
      await a.stop();
      await rm(dir, { recursive: true, force: true });
      await perfMap(a.pid);
    },
  };
}
