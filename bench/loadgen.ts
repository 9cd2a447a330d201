/**
 * The load generator process of `npm run bench` (issue 7). bench/run.ts starts it as a child
 * (`node dist/bench/loadgen.js`, pinned with `taskset -c 1` when available) and sends it jobs over
 * the IPC channel; it answers with one result per job. Requests are encoded once per variant
 * (bench/payloads.ts), so the timed loop only writes pre-built bytes.
 *
 * Modes:
 * - closed loop: `concurrency` requests in flight, the next sent when one is acknowledged — the
 *   maximum throughput;
 * - open loop: a fixed `rate` of requests per second regardless of answers. Latency is measured from
 *   each request's *scheduled* send time, so a stall of the server shows up in the latency instead of
 *   silently slowing the sender (coordinated omission). How late each request went out after its
 *   scheduled time is part of its latency and is reported on its own (`sendLateness`).
 *   `pace` says how the generator waits for the next send: 'spin' (the default) sleeps on a timer
 *   when the next send is over 2 ms away and otherwise spins (setImmediate, which still lets I/O
 *   run), so sends are not late by a timer tick (node's timers fire about 1 ms apart at best); at
 *   the rates of `npm run bench` that keeps its core busy. 'sleep' always sleeps on a timer. Neither
 *   is better everywhere on this 2-vCPU VM (docs/benchmarks.md, session 17): sleeping took steal off
 *   the agent's CPU and a third off its p99 at 1,500 OTLP/HTTP requests/s in fixed-rate pairs (not in a
 *   full run), but over gRPC the
 *   sleeping generator itself sent late (p99 13–15 ms against 3–4 ms), which doubled the p99 it
 *   measured even against the bare receiver.
 */
import { performance } from 'node:perf_hooks';
import { type OtlpClient, GrpcClient, HttpClient, type Transport } from './clients.js';
import { Histogram, type HistogramSummary } from './histogram.js';
import { type EncodedRequest, encodeVariant } from './payloads.js';

export interface LoadJob {
  readonly id: string;
  readonly transport: Transport;
  readonly host: string;
  readonly port: number;
  /** Records per request: 1, 100 or 1000. */
  readonly records: number;
  readonly mode: 'closed' | 'open';
  /** closed: requests in flight; open: the most requests in flight before sends queue up. */
  readonly concurrency: number;
  /** open loop only: requests per second. */
  readonly rate?: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** OTLP/HTTP only: bodies sent chunked, as the OTel JS SDK's exporter sends them (default: Content-Length). */
  readonly chunked?: boolean;
  /** OTLP/HTTP only: connect with TLS, trusting this CA (PEM) for the name "localhost". */
  readonly tlsCaPem?: string;
  /** open loop only: how to wait for the next send (see the top of this file); default 'spin'. */
  readonly pace?: 'spin' | 'sleep';
  /**
   * Also report each request of the window that took at least this long (ms) or failed, with its
   * scheduled time (`slow` in the result; at most SLOW_MAX of them). For latency studies (fixed-rate.ts).
   */
  readonly slowMs?: number;
}

/** The most slow or failed requests one result lists (`LoadResult.slow`); the rest are only counted. */
export const SLOW_MAX = 20_000;

/** A request of the window that was slow or failed: when it was scheduled, and its latency or failure. */
export interface SlowRequest {
  /** Scheduled (open loop) or actual (closed loop) send time, ms after the window's start. */
  readonly atMs: number;
  /** Latency in ms; undefined when the request failed (refused, error). */
  readonly ms?: number;
}

export interface LoadResult {
  readonly id: string;
  readonly job: LoadJob;
  /** Measured window length (ms). */
  readonly elapsedMs: number;
  /** Requests acknowledged with success inside the window. */
  readonly okRequests: number;
  readonly okRecords: number;
  /** Request body bytes of the acknowledged requests. */
  readonly okPayloadBytes: number;
  /** Every answered request in the window, by status key ("http 200", "grpc 14", "error ECONNRESET"). */
  readonly statuses: Record<string, number>;
  /** Latency of successful requests (µs), from (scheduled) send to acknowledgement. */
  readonly latency: HistogramSummary;
  /** open loop: requests actually scheduled in the window (okRequests < scheduled means it fell behind). */
  readonly scheduled?: number;
  /**
   * open loop: how late (µs) after its scheduled time each request of the window went out, for those
   * sent when due (not those that waited for a free slot: that wait is the server's). Part of `latency`.
   */
  readonly sendLateness?: HistogramSummary;
  /** With `slowMs`: the window's start as wall-clock ms (performance.timeOrigin + start), to line up other logs. */
  readonly windowStartEpochMs?: number;
  /** With `slowMs`: the slow and failed requests of the window in answer order (at most SLOW_MAX). */
  readonly slow?: readonly SlowRequest[];
  /** With `slowMs`: how many more there were than `slow` holds. */
  readonly slowDropped?: number;
}

export type ToLoadgen = { type: 'job'; job: LoadJob } | { type: 'exit' };
export type FromLoadgen =
  | { type: 'ready' }
  | { type: 'measuring'; id: string }
  | { type: 'result'; result: LoadResult }
  | { type: 'failed'; id: string; message: string };

const payloadCache = new Map<number, EncodedRequest[]>();

function payloads(records: number): EncodedRequest[] {
  let p = payloadCache.get(records);
  if (!p) {
    p = encodeVariant(records);
    payloadCache.set(records, p);
  }
  return p;
}

function httpOptions(job: LoadJob): { chunked?: boolean; tlsCa?: string } {
  return { ...(job.chunked ? { chunked: true } : {}), ...(job.tlsCaPem !== undefined ? { tlsCa: job.tlsCaPem } : {}) };
}

function makeClient(job: LoadJob): { client: OtlpClient; sizes: number[] } {
  const reqs = payloads(job.records);
  switch (job.transport) {
    case 'http-protobuf':
      return { client: new HttpClient(job.host, job.port, 'application/x-protobuf', reqs.map((r) => r.protobuf), httpOptions(job)), sizes: reqs.map((r) => r.protobuf.length) };
    case 'http-json':
      return { client: new HttpClient(job.host, job.port, 'application/json', reqs.map((r) => r.json), httpOptions(job)), sizes: reqs.map((r) => r.json.length) };
    case 'grpc':
      return { client: new GrpcClient(job.host, job.port, reqs.map((r) => r.protobuf)), sizes: reqs.map((r) => r.protobuf.length + 5) };
  }
}

class Window {
  measuring = false;
  stopped = false;
  start = 0;
  end = 0;
  okRequests = 0;
  okPayloadBytes = 0;
  hist = new Histogram();
  /** open loop: lateness of sends (µs). */
  late = new Histogram();
  statuses: Record<string, number> = {};
  /** With LoadJob.slowMs: the threshold (ms), and the slow or failed requests of the window. */
  slowMs: number | undefined;
  slow: SlowRequest[] = [];
  slowDropped = 0;

  reset(now: number): void {
    this.measuring = true;
    this.start = now;
    this.okRequests = 0;
    this.okPayloadBytes = 0;
    this.hist = new Histogram();
    this.late = new Histogram();
    this.statuses = {};
    this.slow = [];
    this.slowDropped = 0;
  }

  count(status: string, ok: boolean, sentAt: number, bytes: number): void {
    const now = performance.now();
    if (!this.measuring || now > this.end) return;
    this.statuses[status] = (this.statuses[status] ?? 0) + 1;
    if (ok) {
      this.okRequests++;
      this.okPayloadBytes += bytes;
      this.hist.record((now - sentAt) * 1000);
    }
    if (this.slowMs !== undefined && (!ok || now - sentAt >= this.slowMs)) {
      if (this.slow.length < SLOW_MAX) this.slow.push(ok ? { atMs: sentAt - this.start, ms: now - sentAt } : { atMs: sentAt - this.start });
      else this.slowDropped++;
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function runJob(job: LoadJob, notify: (m: FromLoadgen) => void): Promise<LoadResult> {
  const { client, sizes } = makeClient(job);
  const w = new Window();
  w.slowMs = job.slowMs;
  const gRpcSessions = Math.min(4, job.concurrency);
  await client.warm(job.transport === 'grpc' ? gRpcSessions : job.mode === 'closed' ? job.concurrency : Math.min(job.concurrency, 16));
  let inFlight = 0;
  let seq = 0;
  let scheduled = 0;
  const t0 = performance.now();
  w.end = t0 + job.warmupMs + job.durationMs;

  const startMeasuring = (): void => {
    w.reset(performance.now());
    w.end = w.start + job.durationMs;
    notify({ type: 'measuring', id: job.id });
  };
  const warmupTimer = setTimeout(startMeasuring, job.warmupMs);

  let finish!: () => void;
  const allDone = new Promise<void>((r) => (finish = r));

  if (job.mode === 'closed') {
    const fire = (): void => {
      const i = seq++;
      const sentAt = performance.now();
      inFlight++;
      client.request(i, (status, ok) => {
        inFlight--;
        w.count(status, ok, sentAt, sizes[i % sizes.length]!);
        if (performance.now() < w.end) {
          // A refused or failed request is retried after a short pause, like an exporter backing off,
          // so an error storm does not turn into a busy loop.
          if (ok) fire();
          else setTimeout(fire, 5);
        } else if (inFlight === 0) finish();
      });
    };
    for (let k = 0; k < job.concurrency; k++) fire();
  } else {
    const rate = job.rate ?? 1000;
    const queue: number[] = []; // scheduled times of requests waiting for a free slot
    const send = (scheduledAt: number): void => {
      const i = seq++;
      inFlight++;
      client.request(i, (status, ok) => {
        inFlight--;
        w.count(status, ok, scheduledAt, sizes[i % sizes.length]!);
        const next = queue.shift();
        if (next !== undefined) send(next);
        else if (performance.now() >= w.end && inFlight === 0) finish();
      });
    };
    let k = 0;
    const pump = (): void => {
      const now = performance.now();
      if (now >= w.end) {
        queue.length = 0;
        if (inFlight === 0) finish();
        return;
      }
      // Send every request whose scheduled time has come (the k-th is due at t0 + k/rate).
      for (;;) {
        const due = t0 + (k * 1000) / rate;
        if (due > now) break;
        k++;
        const inWindow = w.measuring && due >= w.start;
        if (inWindow) scheduled++;
        if (inFlight < job.concurrency) {
          if (inWindow) w.late.record((now - due) * 1000);
          send(due);
        } else queue.push(due);
      }
      // Sleep until the next send is due, or spin when it is close (see the top of this file).
      const wait = t0 + (k * 1000) / rate - performance.now();
      if (job.pace === 'sleep' || wait > 2) setTimeout(pump, job.pace === 'sleep' ? wait : 1);
      else setImmediate(pump);
    };
    pump();
  }

  // Safety net: if answers stop coming, end the job anyway.
  const timeout = setTimeout(() => finish(), job.warmupMs + job.durationMs + 30_000);
  await allDone;
  clearTimeout(timeout);
  clearTimeout(warmupTimer);
  client.close();
  await sleep(20);
  const elapsedMs = Math.max(1, Math.min(performance.now(), w.end) - w.start);
  const recordsPer = job.records;
  return {
    id: job.id,
    job,
    elapsedMs,
    okRequests: w.okRequests,
    okRecords: w.okRequests * recordsPer,
    okPayloadBytes: w.okPayloadBytes,
    statuses: w.statuses,
    latency: w.hist.summary(),
    ...(job.mode === 'open' ? { scheduled, sendLateness: w.late.summary() } : {}),
    ...(job.slowMs !== undefined ? { windowStartEpochMs: performance.timeOrigin + w.start, slow: w.slow, slowDropped: w.slowDropped } : {}),
  };
}

async function main(): Promise<void> {
  if (!process.send) {
    process.stderr.write('bench/loadgen: run by bench/run.ts over an IPC channel (npm run bench)\n');
    process.exitCode = 2;
    return;
  }
  const send = (m: FromLoadgen): void => {
    process.send!(m);
  };
  // Encode the variants up front so the first job's window does not include protobufjs start-up.
  for (const r of [1, 100, 1000]) payloads(r);
  let chain = Promise.resolve();
  process.on('message', (m: ToLoadgen) => {
    if (m.type === 'exit') {
      process.disconnect();
      return;
    }
    chain = chain.then(async () => {
      try {
        send({ type: 'result', result: await runJob(m.job, send) });
      } catch (e) {
        send({ type: 'failed', id: m.job.id, message: e instanceof Error ? e.message : String(e) });
      }
    });
  });
  send({ type: 'ready' });
}

await main();
