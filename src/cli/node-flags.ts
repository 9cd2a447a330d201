/**
 * Node/V8 flags the agent is meant to run with. They must be given on node's command line (the
 * heap is configured before any of our code runs), so they appear in three places that a test keeps
 * equal to this list (test/ops/node-flags.test.ts): the `start` script in package.json, the
 * Dockerfile's ENTRYPOINT and the benchmark harness (bench/procs.ts), which runs the agent the way
 * it ships.
 *
 * --max-semi-space-size=8 (MiB): under sustained ingest V8 grows the young generation to its
 * default maximum of 16 MiB per semi-space (32 MiB committed) although little of it survives a
 * scavenge. Capping it at 8 MiB lowered the agent's peak RSS and its CPU per record in the
 * measurements recorded in docs/benchmarks.md ("Memory").
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];
