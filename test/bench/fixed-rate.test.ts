/**
 * bench/fixed-rate.ts: one open-loop window at a fixed rate against a fresh server (the latency
 * study of issue 7). Runs the built tool (dist/, see global-setup) as an operator would: it refuses
 * arguments it cannot use before starting anything, and a short window against the bare receiver
 * and against the fsync agent reports every request it scheduled as answered, with ordered quantiles.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const TOOL = 'dist/bench/fixed-rate.js';

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [TOOL, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const LINE =
  /^(\w+) http-protobuf @(\d+)\/s: (\d+) of (\d+) answered; ms p50 ([\d.]+) p90 ([\d.]+) p99 ([\d.]+) p99\.9 ([\d.]+) max ([\d.]+); sent late p50 ([\d.]+) p99 ([\d.]+); CPU \d+ %/;

function parsed(stdout: string): { server: string; answered: number; scheduled: number; q: number[]; late: number[] } {
  const m = LINE.exec(stdout.trim());
  expect(m, stdout).not.toBeNull();
  return { server: m![1]!, answered: Number(m![3]), scheduled: Number(m![4]), q: m!.slice(5, 10).map(Number), late: m!.slice(10, 12).map(Number) };
}

describe('bench fixed-rate window', () => {
  it.each([
    [['--server', 'x'], /--server must be bare, none or fsync/],
    [['--server', 'bare', '--rate', '0'], /--rate must be/],
    [['--server', 'bare', '--transport', 'udp'], /--transport must be one of http-protobuf, http-json, grpc/],
    [['--server', 'bare', '--segment-bytes', '65536'], /--segment-bytes applies to the agents/],
    [['--server', 'none', '--segment-bytes', '100'], /--segment-bytes must be a whole number of bytes, at least 4096/],
    [['--server', 'bare', '--bogus'], /Unknown option '--bogus'/],
    [['--server', 'bare', '--pace', 'busy'], /--pace must be spin or sleep/],
    [['--server', 'bare', '--slow-ms', '0'], /--slow-ms must be a number of milliseconds above 0/],
    [['--server', 'bare', '--slow-ms', 'soon'], /--slow-ms must be a number of milliseconds above 0/],
  ])('refuses %j with exit 2 and says why', (args, why) => {
    const r = run(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(why);
    expect(r.stderr).toContain('usage: node dist/bench/fixed-rate.js');
    expect(r.stdout).toBe('');
  });

  it.each(['bare', 'fsync'])('a 1-second window against %s: every scheduled request answered, quantiles in order', (server) => {
    const r = run(['--server', server, '--rate', '200', '--seconds', '1', '--pre-seconds', '0.5']);
    expect(r.status, r.stderr).toBe(0);
    const p = parsed(r.stdout);
    expect(p.server).toBe(server);
    expect(p.scheduled).toBeGreaterThanOrEqual(195);
    expect(p.scheduled).toBeLessThanOrEqual(205);
    expect(p.answered).toBeGreaterThanOrEqual(p.scheduled - 2); // requests at the window's edges
    for (let i = 1; i < p.q.length; i++) expect(p.q[i]).toBeGreaterThanOrEqual(p.q[i - 1]!);
    // how late the load generator sent: part of the latency, so never above it
    expect(p.late[1]).toBeGreaterThanOrEqual(p.late[0]!);
    expect(p.late[0]).toBeLessThanOrEqual(p.q[0]!);
    if (server === 'fsync') expect(r.stdout).toMatch(/; [1-9]\d* commits, [\d.]+ ms each/);
    else expect(r.stdout).not.toContain('commits');
    expect(r.stdout).toMatch(/CPU \d+ %, [\d.]+ µs per record/);
    // without --slow-ms / --gc: one line only
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('--slow-ms lists episodes that hold every slow request, --gc what the agent collected', () => {
    // A threshold every answered request reaches: the episodes must account for all of them.
    const r = run(['--server', 'fsync', '--rate', '200', '--seconds', '1', '--pre-seconds', '0.5', '--slow-ms', '0.001', '--gc']);
    expect(r.status, r.stderr).toBe(0);
    const p = parsed(r.stdout);
    const lines = r.stdout.trim().split('\n');
    const head = /^ {2}slow \(≥ 0\.001 ms\) or failed: (\d+) slow and (\d+) failed requests in (\d+) episodes/.exec(lines[1] ?? '');
    expect(head, r.stdout).not.toBeNull();
    const [slow, failed, n] = head!.slice(1, 4).map(Number) as [number, number, number];
    // every answered request of the window, plus those answered in it that were scheduled just before it
    expect(slow).toBeGreaterThanOrEqual(p.answered);
    expect(slow).toBeLessThanOrEqual(p.answered + 5);
    expect(failed).toBe(0);
    const eps = lines.filter((l) => /^ {4}[-+]\d+\.\.[-+]\d+ ms: \d+ requests/.test(l));
    expect(eps).toHaveLength(Math.min(n, 40));
    const inEpisodes = eps.reduce((a, l) => a + Number(/: (\d+) requests/.exec(l)![1]), 0);
    if (n <= 40) expect(inEpisodes).toBe(slow);
    expect(lines.at(-1)).toMatch(/^ {2}collections in the window: (none|\d+ \w)/);
  });
});
