/**
 * Shared helpers for whole-agent tests: temp configs, CLI runs in-process, entries read back.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { main } from '../../src/cli/main.js';
import type { CliIO } from '../../src/cli/io.js';

export const ORIGIN = 'sealtrail.test/e2e';

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A full agent config in `dir`, all listeners on 127.0.0.1:0, with an fs destination. */
export function agentConfig(dir: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    receivers: {
      otlp: {
        protocols: {
          grpc: { endpoint: '127.0.0.1:0' },
          http: { endpoint: '127.0.0.1:0' },
        },
      },
    },
    ledger: {
      dir: join(dir, 'ledger'),
      origin: ORIGIN,
      durability: 'fsync',
      max_segment_bytes: 256 * 1024,
      max_segment_age: '2s',
      seal_interval: '500ms',
      max_disk_bytes: 1024 * 1024 * 1024,
    },
    signing: { key_file: join(dir, 'keys', 'signing.key') },
    // A plain directory is not write-once for root (the canary says so); tests accept that.
    destinations: [{ name: 'worm', type: 'fs', path: join(dir, 'worm'), accept_unsafe: true }],
    forwarding: { quorum: 1, retry_initial: '100ms', retry_max: '1s' },
    telemetry: { metrics: { endpoint: '127.0.0.1:0' }, health: { endpoint: '127.0.0.1:0' }, logs: { level: 'warn' } },
    shutdown: { grace_period: '5s' },
    ...over,
  };
}

export async function writeConfig(dir: string, cfg: Record<string, unknown>): Promise<string> {
  const file = join(dir, 'agent.yaml');
  await writeFile(file, stringify(cfg));
  return file;
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `sealtrail ARGS` in-process through the real CLI entry. */
export async function cli(...argv: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void): Writable =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        append(chunk.toString());
        cb();
      },
    });
  const io: CliIO = {
    stdout: sink((s) => (stdout += s)),
    stderr: sink((s) => (stderr += s)),
    env: process.env,
    cwd: process.cwd(),
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

/** One OTLP/JSON request body with `n` records whose bodies are `${tag}:${i}`. */
export function jsonRequest(tag: string, n: number): string {
  return JSON.stringify({
    resourceLogs: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'e2e' } }] },
        scopeLogs: [
          {
            scope: { name: 'e2e-test' },
            logRecords: Array.from({ length: n }, (_, i) => ({
              timeUnixNano: String(Date.now() * 1_000_000),
              severityNumber: 9,
              body: { stringValue: `${tag}:${i}` },
            })),
          },
        ],
      },
    ],
  });
}

/** Record bodies from `sealtrail export` output (one OTLP/JSON request per line). */
export function bodiesFromExport(jsonl: string): string[] {
  const out: string[] = [];
  for (const line of jsonl.split('\n')) {
    if (!line.trim()) continue;
    // Each line is one OTLP/JSON ExportLogsServiceRequest (postable to any OTLP endpoint).
    const req = JSON.parse(line) as { resourceLogs: Array<{ scopeLogs: Array<{ logRecords: Array<{ body?: { stringValue?: string } }> }> }> };
    for (const rl of req.resourceLogs) for (const sl of rl.scopeLogs) for (const r of sl.logRecords) out.push(r.body?.stringValue ?? '');
  }
  return out;
}
