/**
 * Graceful shutdown with real signals against the real agent process (compiled dist/, which
 * test/global-setup.ts rebuilds when sources changed), under load (issue 6, G1, G2):
 *   - SIGTERM while 8 clients keep sending: exit 0; every acknowledged record is in the log exactly
 *     once; no record of a refused request is; the log is sealed and `sealtrail verify` says intact
 *     (ledger and write-once destination); readiness said "shutting down" while draining;
 *   - the metrics counters equal what the clients were told;
 *   - a second signal exits at once (143) and the next start continues the same log intact;
 *   - /readyz flips when the disk budget is used up (in-process agent), and a missing key
 *     stops the agent from starting at all (exit 2, the key file named).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentConfig, cli, jsonRequest, ORIGIN, tempDir } from '../e2e/helpers.js';
import { parseConfig } from '../../src/config/load.js';
import { Agent } from '../../src/main.js';
import { silentLogger } from '../../src/telemetry/logger.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const BIN = join(ROOT, 'dist/src/cli/bin.js');

interface Addr {
  host: string;
  port: number;
}

interface Running {
  child: ChildProcess;
  http: Addr;
  metrics: Addr;
  health: Addr;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawn `sealtrail agent --config FILE` and wait for its "started" log line (JSON on stderr). */
async function startAgent(configFile: string): Promise<Running> {
  const child = spawn(process.execPath, [BIN, 'agent', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  const started = new Promise<Record<string, Addr>>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      for (const line of err.split('\n')) {
        if (!line.includes('sealtrail agent started')) continue;
        resolve(JSON.parse(line) as Record<string, Addr>);
      }
    });
    void exited.then((x) => reject(new Error(`agent exited before it started (${JSON.stringify(x)}):\n${err}`)));
    setTimeout(() => reject(new Error(`agent did not start within 20 s:\n${err}`)), 20_000).unref();
  });
  const a = await started;
  // The "started" line is logged just before runAgent installs its signal handlers (a few
  // microtasks later); a signal inside that window would get Node's default action. Give it time.
  await new Promise((r) => setTimeout(r, 250));
  return { child, http: a.http!, metrics: a.metrics!, health: a.health!, stderr: () => err, exited };
}

type Outcome = 'acked' | 'refused' | 'unknown';

interface Sent {
  tag: string;
  n: number;
  outcome: Outcome;
  status?: number;
}

/** One client: POST OTLP/JSON requests of `n` records until `stop()` says so or the agent is gone. */
async function client(id: number, url: string, n: number, stop: () => boolean, sent: Sent[], pauseAt?: { when: () => boolean; gate: Promise<void> }): Promise<void> {
  for (let seq = 0; !stop(); seq++) {
    if (pauseAt?.when()) await pauseAt.gate;
    if (stop()) break;
    const tag = `c${id}-${seq}`;
    const rec: Sent = { tag, n, outcome: 'unknown' };
    sent.push(rec);
    try {
      const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonRequest(tag, n) });
      await r.arrayBuffer();
      rec.status = r.status;
      if (r.status === 200) rec.outcome = 'acked';
      else if (r.status === 503 || r.status === 429) {
        rec.outcome = 'refused';
        expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
      } else throw new Error(`unexpected HTTP ${r.status}`);
    } catch (e) {
      if (rec.status !== undefined) throw e;
      // connection refused/reset: the agent stopped listening. Outcome unknown only if the
      // request may have reached it; either way the loop ends here.
      return;
    }
  }
}

function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let total = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!want.every((w) => line.includes(w))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
    seen = true;
  }
  return seen ? total : NaN;
}

/** Record bodies from `sealtrail export` (one OTLP/JSON ExportLogsServiceRequest per line). */
function bodiesFromExport(jsonl: string): string[] {
  type Rl = { scopeLogs: Array<{ logRecords: Array<{ body?: { stringValue?: string } }> }> };
  const out: string[] = [];
  for (const line of jsonl.split('\n')) {
    if (!line.trim()) continue;
    const obj = JSON.parse(line) as { resourceLogs?: Rl[] } & Partial<Rl>;
    for (const rl of obj.resourceLogs ?? [obj as Rl]) for (const sl of rl.scopeLogs) for (const r of sl.logRecords) out.push(r.body?.stringValue ?? '');
  }
  return out;
}

let dir: string;
let pub: string;

beforeAll(async () => {
  expect(existsSync(BIN), `${BIN} (run npm run build)`).toBe(true);
  dir = await tempDir('sealtrail-sigterm-');
  const kg = await cli('keygen', '--dir', join(dir, 'keys'), '--key-name', 'sealtrail.test');
  expect(kg.code, kg.stderr).toBe(0);
  pub = join(dir, 'keys', 'signing.pub');
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function writeConfig(sub: string, cfg: Record<string, unknown>): Promise<string> {
  const file = join(dir, `${sub}.yaml`);
  await writeFile(file, stringify(cfg));
  return file;
}

function config(sub: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  const base = agentConfig(join(dir, sub));
  return {
    ...base,
    signing: { key_file: join(dir, 'keys', 'signing.key') },
    // keep every sealed segment locally too, so the ledger alone holds the whole log
    forwarding: { quorum: 1, retry_initial: '100ms', retry_max: '1s', min_local_age: '1h' },
    telemetry: { metrics: { endpoint: '127.0.0.1:0' }, health: { endpoint: '127.0.0.1:0' }, logs: { level: 'info' } },
    ...over,
  };
}

describe('SIGTERM under load (real signals, spawned agent)', () => {
  it('exits 0; every acknowledged record is in the sealed, verifiable log exactly once; metrics match', { timeout: 120_000 }, async () => {
    const sub = 'term';
    const file = await writeConfig(sub, config(sub));
    const agent = await startAgent(file);
    const url = `http://${agent.http.host}:${agent.http.port}/v1/logs`;
    const sent: Sent[] = [];
    let stopping = false;

    // Phase 1: load, then a quiet moment to compare the metrics with what the clients saw.
    let paused = false;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const clients = Array.from({ length: 8 }, (_, i) => client(i, url, 20, () => stopping, sent, { when: () => paused, gate }));
    await new Promise((r) => setTimeout(r, 1500));
    paused = true;
    // wait until every client is parked at the gate (no request in flight)
    await new Promise((r) => setTimeout(r, 300));
    for (let t = 0; sent.some((s) => s.outcome === 'unknown') && t < 500; t++) await new Promise((r) => setTimeout(r, 20));
    expect(sent.filter((s) => s.outcome === 'unknown')).toEqual([]);
    const acked1 = sent.filter((s) => s.outcome === 'acked');
    expect(acked1.length).toBeGreaterThan(20);
    const m1 = await (await fetch(`http://${agent.metrics.host}:${agent.metrics.port}/metrics`)).text();
    const ackedRecords1 = acked1.reduce((a, s) => a + s.n, 0);
    expect(metricValue(m1, 'sealtrail_receiver_accepted_log_records_total', { transport: 'http' })).toBe(ackedRecords1);
    expect(metricValue(m1, 'sealtrail_receiver_requests_total', { transport: 'http', status: '200' })).toBe(acked1.length);
    expect(metricValue(m1, 'sealtrail_ledger_entries_total')).toBe(ackedRecords1);
    expect(metricValue(m1, 'sealtrail_ledger_tree_size')).toBe(ackedRecords1);
    expect(metricValue(m1, 'sealtrail_ready')).toBe(1);

    // Phase 2: load again, SIGTERM in the middle of it, keep sending until the agent is gone.
    paused = false;
    release();
    await new Promise((r) => setTimeout(r, 700));
    const healthUrl = `http://${agent.health.host}:${agent.health.port}/readyz`;
    agent.child.kill('SIGTERM');
    // while it drains, readiness says so (telemetry stops last): poll until the endpoint is gone
    const answers: Array<{ status: number; state: string }> = [];
    for (let t = 0; t < 2000; t++) {
      const a = await fetch(healthUrl).then(
        async (r) => ({ status: r.status, state: ((await r.json()) as { status: string }).status }),
        () => undefined,
      );
      if (!a) break;
      answers.push(a);
      await new Promise((r) => setTimeout(r, 5));
    }
    const first503 = answers.findIndex((a) => a.status !== 200);
    expect(first503, JSON.stringify(answers.slice(-3))).toBeGreaterThanOrEqual(0);
    expect(answers.slice(first503)).toEqual(answers.slice(first503).map(() => ({ status: 503, state: 'shutting down' })));
    const exit = await agent.exited;
    stopping = true;
    await Promise.all(clients);
    expect(exit, agent.stderr()).toEqual({ code: 0, signal: null });

    const acked = sent.filter((s) => s.outcome === 'acked');
    const refused = sent.filter((s) => s.outcome === 'refused');
    expect(acked.length).toBeGreaterThan(acked1.length);

    // the log is sealed and intact, locally and at the write-once destination
    const ledgerDir = join(dir, sub, 'ledger');
    const segs = await readdir(join(ledgerDir, 'segments'));
    expect(segs.filter((f) => f.endsWith('.seg')).length).toBeGreaterThan(0);
    const v = await cli('verify', ledgerDir, '--key', pub, '--origin', ORIGIN);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    const vw = await cli('verify', join(dir, sub, 'worm'), '--key', pub, '--origin', ORIGIN);
    expect(vw.code, vw.stdout + vw.stderr).toBe(0);

    // every acknowledged record exactly once; nothing from a refused request
    const ex = await cli('export', ledgerDir, '--key', pub, '--origin', ORIGIN);
    expect(ex.code, ex.stderr).toBe(0);
    const bodies = bodiesFromExport(ex.stdout);
    const counts = new Map<string, number>();
    for (const b of bodies) counts.set(b, (counts.get(b) ?? 0) + 1);
    for (const s of acked) for (let i = 0; i < s.n; i++) expect(counts.get(`${s.tag}:${i}`), `${s.tag}:${i}`).toBe(1);
    for (const s of refused) for (let i = 0; i < s.n; i++) expect(counts.has(`${s.tag}:${i}`), `${s.tag}:${i} was refused`).toBe(false);
    // whole requests only: a request is in the log entirely or not at all
    const byTag = new Map<string, number>();
    for (const b of bodies) byTag.set(b.split(':')[0]!, (byTag.get(b.split(':')[0]!) ?? 0) + 1);
    for (const [tag, c] of byTag) expect(c, tag).toBe(20);
    // the only extra records can come from requests whose answer never arrived
    const unknown = sent.filter((s) => s.outcome === 'unknown').length;
    expect(bodies.length).toBeLessThanOrEqual((acked.length + unknown) * 20);
    console.log(`sigterm: ${acked.length} requests acked, ${refused.length} refused, ${unknown} unanswered; ${bodies.length} records in the sealed log`);
  });

  it('a second signal exits at once (143) and the next start continues the same log intact', { timeout: 120_000 }, async () => {
    const sub = 'twice';
    // a destination that never answers would make a graceful stop wait; an unreachable S3 endpoint does
    const cfg = config(sub, {
      shutdown: { grace_period: '30s' },
      destinations: [{ name: 's3-down', type: 's3', bucket: 'nowhere', endpoint: 'http://127.0.0.1:9', force_path_style: true, access_key_id: 'x', secret_access_key: 'y' }],
    });
    const file = await writeConfig(sub, cfg);
    let agent = await startAgent(file);
    const url = `http://${agent.http.host}:${agent.http.port}/v1/logs`;
    const sent: Sent[] = [];
    let stop = false;
    const clients = Array.from({ length: 4 }, (_, i) => client(i, url, 10, () => stop, sent));
    await new Promise((r) => setTimeout(r, 800));
    agent.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 150));
    const t0 = Date.now();
    agent.child.kill('SIGTERM');
    const exit = await agent.exited;
    stop = true;
    await Promise.all(clients);
    expect(exit, agent.stderr()).toEqual({ code: 143, signal: null });
    expect(Date.now() - t0).toBeLessThan(5_000); // not the 30 s grace period
    expect(agent.stderr()).toMatch(/second signal/);

    // restart on the same ledger: recovery, same log, and it verifies after a normal stop
    // (a short grace period: the unreachable destination would otherwise hold the stop for 30 s)
    agent = await startAgent(await writeConfig(`${sub}-restart`, { ...cfg, shutdown: { grace_period: '1s' } }));
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    const ledgerDir = join(dir, sub, 'ledger');
    const v = await cli('verify', ledgerDir, '--key', pub, '--origin', ORIGIN);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    const ex = await cli('export', ledgerDir, '--key', pub, '--origin', ORIGIN);
    const bodies = new Set(bodiesFromExport(ex.stdout));
    for (const s of sent.filter((x) => x.outcome === 'acked')) for (let i = 0; i < s.n; i++) expect(bodies.has(`${s.tag}:${i}`), `${s.tag}:${i}`).toBe(true);
  });

  it('without its key the agent does not start: exit 2 naming the key file', { timeout: 60_000 }, async () => {
    const missing = join(dir, 'nokey', 'signing.key');
    const file = await writeConfig('nokey', config('nokey', { signing: { key_file: missing } }));
    const child = spawn(process.execPath, [BIN, 'agent', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(2);
    expect(err).toContain(missing);
  });
});

describe('readiness flips (in-process agent, real HTTP and disk)', () => {
  it('/readyz fails "disk budget not exhausted" once the budget is used up, and data is refused with 503/429', { timeout: 60_000 }, async () => {
    const sub = 'budget';
    const raw = config(sub, {
      destinations: [],
      ledger: { dir: join(dir, sub, 'ledger'), origin: ORIGIN, max_segment_bytes: 8192, max_segment_age: '1h', seal_interval: '1h', max_disk_bytes: 256 * 1024 },
    });
    const agent = new Agent(parseConfig(raw), silentLogger(), { defaultMetrics: false });
    const addr = await agent.start();
    try {
      const readyz = async () => (await fetch(`http://${addr.health!.host}:${addr.health!.port}/readyz`)).json() as Promise<{ ready: boolean; checks: Array<{ name: string; ok: boolean; detail: string }> }>;
      expect((await readyz()).ready).toBe(true);
      const url = `http://${addr.http!.host}:${addr.http!.port}/v1/logs`;
      let refusedRecords = 0;
      let status = 200;
      for (let i = 0; i < 400 && status === 200; i++) {
        const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonRequest(`b${i}`, 20) });
        await r.arrayBuffer();
        status = r.status;
        if (status !== 200) refusedRecords += 20;
      }
      expect([503, 429]).toContain(status);
      const rep = await readyz();
      expect(rep.ready).toBe(false);
      const disk = rep.checks.find((c) => c.name === 'disk budget not exhausted')!;
      expect(disk.ok).toBe(false);
      expect(disk.detail).toMatch(/max_disk_bytes/);
      const m = await (await fetch(`http://${addr.metrics!.host}:${addr.metrics!.port}/metrics`)).text();
      expect(metricValue(m, 'sealtrail_receiver_refused_log_records_total', { transport: 'http', reason: 'disk_full' })).toBe(refusedRecords);
      expect(metricValue(m, 'sealtrail_readiness_check', { check: 'disk budget not exhausted' })).toBe(0);
    } finally {
      await agent.shutdown();
    }
  });

  it('/readyz fails "quorum reachable" while quorum destinations are down, naming the failing one', { timeout: 60_000 }, async () => {
    const sub = 'quorum';
    const raw = config(sub, {
      destinations: [
        { name: 'worm', type: 'fs', path: join(dir, sub, 'worm') },
        // nothing listens on the discard port: connection refused at once
        { name: 's3-down', type: 's3', bucket: 'nowhere', endpoint: 'http://127.0.0.1:9', force_path_style: true, access_key_id: 'x', secret_access_key: 'y' },
      ],
      forwarding: { quorum: 2, retry_initial: '100ms', retry_max: '500ms', min_local_age: '1h' },
      ledger: { dir: join(dir, sub, 'ledger'), origin: ORIGIN, max_segment_age: '300ms', seal_interval: '300ms' },
      shutdown: { grace_period: '1s' },
    });
    const agent = new Agent(parseConfig(raw), silentLogger(), { defaultMetrics: false });
    const addr = await agent.start();
    try {
      const r = await fetch(`http://${addr.http!.host}:${addr.http!.port}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonRequest('q', 5) });
      expect(r.status).toBe(200); // one destination down does not stop ingestion (G5)
      let check: { ok: boolean; detail: string } | undefined;
      for (let t = 0; t < 200; t++) {
        const rep = (await (await fetch(`http://${addr.health!.host}:${addr.health!.port}/readyz`)).json()) as { checks: Array<{ name: string; ok: boolean; detail: string }> };
        check = rep.checks.find((c) => c.name === 'quorum reachable');
        if (check && !check.ok) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      expect(check?.ok).toBe(false);
      expect(check?.detail).toMatch(/s3-down/);
    } finally {
      await agent.shutdown();
    }
  });
});
