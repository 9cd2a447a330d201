/**
 * G1 under real crashes: the built agent runs as a child process, a load generator sends OTLP/HTTP
 * requests from several concurrent clients (half JSON, half protobuf: node:http's path and the fast path), and the agent is killed with SIGKILL at a random point,
 * again and again. After every restart the log must continue; at the end every acknowledged record
 * is present exactly once, each request's records contiguous and in order, nothing duplicated, and
 * the forwarded log verifies. Iterations: SEALTRAIL_CRASH_ITERATIONS (default 12).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeRequest } from '../receiver/helpers.js';
import { ORIGIN, agentConfig, bodiesFromExport, cli, jsonRequest, tempDir, writeConfig } from './helpers.js';

const ITERATIONS = Number(process.env.SEALTRAIL_CRASH_ITERATIONS ?? 12);
const RECORDS_PER_REQUEST = 20;
const CLIENTS = 6;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function startAgent(configFile: string): { child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; stderr: () => string } {
  const child = spawn(process.execPath, ['dist/src/cli/bin.js', 'agent', '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, exited, stderr: () => err };
}

async function waitReady(healthPort: number, exited: Promise<unknown>, stderr: () => string): Promise<void> {
  let dead = false;
  void exited.then(() => (dead = true));
  const until = Date.now() + 20_000;
  while (Date.now() < until) {
    if (dead) throw new Error(`agent exited during start-up:\n${stderr()}`);
    try {
      const r = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`agent not ready after 20 s:\n${stderr()}`);
}

describe('crash safety with kill -9 (G1)', () => {
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(`every acknowledged record survives ${ITERATIONS} SIGKILLs exactly once, in order`, { timeout: 240_000 }, async () => {
    dir = await tempDir('sealtrail-crash-');
    expect((await cli('keygen', '--dir', join(dir, 'keys'))).code).toBe(0);
    const [httpPort, grpcPort, metricsPort, healthPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const cfg = agentConfig(dir, {
      receivers: { otlp: { protocols: { grpc: { endpoint: `127.0.0.1:${grpcPort}` }, http: { endpoint: `127.0.0.1:${httpPort}` } } } },
      telemetry: { metrics: { endpoint: `127.0.0.1:${metricsPort}` }, health: { endpoint: `127.0.0.1:${healthPort}` }, logs: { level: 'warn' } },
    });
    (cfg.ledger as Record<string, unknown>).max_segment_bytes = 64 * 1024; // many seals under load
    const configFile = await writeConfig(dir, cfg);

    const acked: string[] = [];
    let protobufAcked = 0;
    let refused = 0;
    for (let it = 0; it < ITERATIONS; it++) {
      const agent = startAgent(configFile);
      await waitReady(healthPort, agent.exited, agent.stderr);
      let stop = false;
      const clients = Array.from({ length: CLIENTS }, async (_, w) => {
        for (let seq = 0; !stop; seq++) {
          const tag = `i${it}-c${w}-r${seq}`;
          try {
            // Half the clients send OTLP/JSON (node:http's path), half protobuf with a Content-Length
            // (the fast path, src/receiver/http-fast.ts): both must keep G1 across the kills.
            const json = jsonRequest(tag, RECORDS_PER_REQUEST);
            const res = await fetch(`http://127.0.0.1:${httpPort}/v1/logs`, {
              method: 'POST',
              headers: { 'content-type': w % 2 === 0 ? 'application/json' : 'application/x-protobuf' },
              body: w % 2 === 0 ? json : encodeRequest(JSON.parse(json) as Record<string, unknown>),
            });
            await res.arrayBuffer();
            if (res.status === 200) {
              acked.push(tag);
              if (w % 2 === 1) protobufAcked++;
            }
            else refused++;
          } catch {
            return; // connection reset by the kill: this request was not acknowledged
          }
        }
      });
      await new Promise((r) => setTimeout(r, 150 + Math.floor(Math.random() * 900)));
      agent.child.kill('SIGKILL');
      const exit = await agent.exited;
      stop = true;
      await Promise.all(clients);
      expect(exit.signal).toBe('SIGKILL');
    }

    // A last clean start: recovery, then a graceful SIGTERM seals and forwards everything.
    const last = startAgent(configFile);
    await waitReady(healthPort, last.exited, last.stderr);
    last.child.kill('SIGTERM');
    const exit = await last.exited;
    expect(exit.code, last.stderr()).toBe(0);

    expect(acked.length).toBeGreaterThan(ITERATIONS); // the load generator really got acknowledgements
    expect(protobufAcked).toBeGreaterThan(0); // and some of them on the fast path
    const pub = join(dir, 'keys', 'signing.pub');
    const worm = join(dir, 'worm');
    const verified = await cli('verify', worm, '--key', pub, '--origin', ORIGIN);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);

    const exported = await cli('export', worm, '--key', pub, '--origin', ORIGIN);
    expect(exported.code, exported.stderr).toBe(0);
    const bodies = bodiesFromExport(exported.stdout);
    // No record appears twice (acknowledged or not).
    expect(new Set(bodies).size).toBe(bodies.length);
    // Every acknowledged request: all its records, contiguous and in order.
    const position = new Map(bodies.map((b, i) => [b, i]));
    const lost: string[] = [];
    for (const tag of acked) {
      const first = position.get(`${tag}:0`);
      if (first === undefined) {
        lost.push(tag);
        continue;
      }
      for (let i = 0; i < RECORDS_PER_REQUEST; i++) expect(bodies[first + i]).toBe(`${tag}:${i}`);
    }
    expect(lost, `acknowledged but missing after crashes (refused: ${refused})`).toEqual([]);
  });
});
