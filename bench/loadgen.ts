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
 *   silently slowing the sender (coordinated omission). Between sends the generator sleeps on a
 *   timer; it does not spin. Node's timers fire about 1 ms apart at best, so a request goes out up
 *   to ≈ 1 ms after its scheduled time and that lateness is part of its latency; the result reports
 *   it separately (`sendLateness`). Why not spin for punctual sends, as up to session 16: spinning
 *   kept the generator's core busy, and on this 2-vCPU VM a busy second vCPU made the hypervisor
 *   take time from the agent's — fixed-rate windows at 1,500 req/s (docs/benchmarks.md, session 17):
 *   steal on the agent's CPU 4–10 % against 0–2 %, p99 17.7–20.2 ms against 11.0–13.2 ms, p50
 *   1.1–1.25 ms against 1.8–2.4 ms. A client spinning on the agent's node is not what users run.
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

  reset(now: number): void {
    this.measuring = true;
    this.start = now;
    this.okRequests = 0;
    this.okPayloadBytes = 0;
    this.hist = new Histogram();
    this.late = new Histogram();
    this.statuses = {};
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
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function runJob(job: LoadJob, notify: (m: FromLoadgen) => void): Promise<LoadResult> {
  const { client, sizes } = makeClient(job);
  const w = new Window();
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
      // Sleep until the next send is due (see the top of this file: no spinning).
      setTimeout(pump, t0 + (k * 1000) / rate - performance.now());
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
