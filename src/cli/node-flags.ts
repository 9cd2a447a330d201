/**
 * Node/V8 flags (and environment) the agent is meant to run with. They must be given on node's command line (the
 * heap is configured before any of our code runs), so they appear in three places that a test keeps
 * equal to this list (test/ops/node-flags.test.ts): the `start` script in package.json, the
 * Dockerfile's ENTRYPOINT and the benchmark harness (bench/procs.ts), which runs the agent the way
 * it ships.
 *
 * --max-semi-space-size=4 (MiB): under sustained ingest V8 grows the young generation to its
 * default maximum of 16 MiB per semi-space (32 MiB committed) although little of it survives a
 * scavenge. Measured with the bench harness (09:07–09:09 UTC, load ≈ 1): agent RSS under closed-loop
 * OTLP/HTTP load 125–128 MB at 8 MiB vs 110–112 MB at 4 MiB, records/s within the run-to-run noise
 * for JSON and ≈ 9 % lower for protobuf in that one pair of runs. Chosen for the ≤ 150 MB peak-RSS
 * target of issue 7 (docs/benchmarks.md "Memory").
 *
 * --single-threaded-gc: V8 does its garbage collection on the main thread only, without helper
 * threads for concurrent marking and parallel scavenging. The agent is meant to get about one core
 * (a DaemonSet with a CPU limit; the benchmark pins it to one), and there the helper threads only
 * compete with the main thread and with the libuv threads that wait for write and fdatasync, whose
 * completions then sit in the run queue: `perf sched` showed thread-pool threads waiting up to
 * 12–17 ms for the CPU. Measured A/B with the bench harness (10:11–10:16 UTC, load ≈ 1, two pairs,
 * OTLP/HTTP protobuf): closed loop 119k and 95k → 136k and 142k records/s; p99 acknowledgement at
 * 50 % of the maximum 67 and 58 → 27 and 20 ms; peak RSS 110–112 → 124–128 MB. OTLP/HTTP JSON, whose
 * JSON.parse allocates far more, lost 5–10 % (two pairs at 10:58–11:01 UTC: 50.4k and 49.1k → 45.5k and
 * 46.8k records/s); protobuf is what the SDK exporters send by default, so the flag stays.
 *
 * --heap-growing-percent=50: after a full garbage collection V8 lets the old generation grow to about
 * 1.5 × what survived before the next one, instead of its own choice of up to ≈ 4 × for a fast
 * program. The agent keeps ≈ 16–27 MB alive, but under gRPC and large requests node:http2's and the
 * receivers' short-lived objects are promoted faster than V8 collected them, and the old generation
 * held 50–60 MB of garbage at its peaks: agent RSS after a sequence of OTLP/HTTP and gRPC closed-loop
 * runs (/tmp driver, session 9, 02:34–02:40 UTC) 146–162 MB by default, 118.5 MB with 50 and 125.8 MB
 * with 100. Bench harness, agent (c) VmHWM over throughput and variants runs (02:39–02:54 UTC, two
 * alternating pairs, docs/benchmarks.md session 9): 143.3 and 132.8 MB with it, 170.2 and 165.5 MB
 * without; agent (c) records/s with vs without: OTLP/HTTP protobuf 166.2k, 179.0k vs 183.6k, 174.0k,
 * gRPC 153.5k, 162.6k vs 160.4k, 156.1k, OTLP/HTTP JSON 64.7k vs 57.8k; CPU per record at a fixed
 * 1,200 requests/s 5.82, 6.03, 5.83 vs 5.83, 5.84, 5.79 µs. Chosen for the ≤ 150 MB peak-RSS target.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--single-threaded-gc', '--heap-growing-percent=50'];

/**
 * Environment the agent is meant to run with, set before node starts (glibc reads it when the
 * process starts): in the `start` script, the Dockerfile (ENV) and the benchmark harness, kept
 * equal by test/ops/node-flags.test.ts.
 *
 * MALLOC_ARENA_MAX=2: glibc's malloc gives threads their own arenas (up to 8 per core), and memory
 * freed into one arena is not reused by another: the agent's short-lived socket buffers, request
 * bodies and HTTP/2 frames are allocated on the main thread and by the runtime's helper threads,
 * so the peaks of several arenas add up. Measured with the bench harness, peak RSS of agent (c) over
 * the closed-loop runs incl. 1- and 1,000-record requests (VmHWM; `MALLOC_ARENA_MAX=… npm run bench
 * -- --only throughput,variants --transports http-protobuf,grpc --no-docs`, 12:41–12:50 UTC, two
 * pairs): 140.1 and 140.7 MB with it, 151.1 and 143.2 MB without; quick runs of all phases (12:38–12:41):
 * 134.3 vs 148.9 MB and 142.1 vs 163.3 MB. Records/s moved within the run-to-run spread in both
 * directions. Has no effect with another C library (musl ignores it).
 */
export const AGENT_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
