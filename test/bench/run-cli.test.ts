/**
 * `npm run bench` (dist/bench/run.js) as an operator calls it: --help prints every option and exits 0,
 * and an option, phase or transport it does not know is named in a one-line error with exit 2 —
 * before any server or load generator is started (nothing here runs a benchmark).
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['dist/bench/run.js', ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('npm run bench: options', () => {
  it('--help lists every option and exits 0', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    for (const o of ['--quick', '--json FILE', '--docs', '--no-docs', '--soak', '--cpu-prof', '--only', '--transports', '--concurrency', '--rounds', '--loaded', '--agent-node-flags']) {
      expect(r.stdout).toContain(o);
    }
    expect(r.stderr).toBe('');
  });

  it.each([
    [['--bogus'], /^bench: Unknown option '--bogus'/],
    [['--json'], /^bench: Option '--json <value>' argument missing/],
    [['--only', 'throughput,thruput'], /^bench: --only thruput: not a phase \(throughput, variants, open, soak, loaded, verify, forward\)/],
    [['--transports', 'grpc,udp'], /^bench: --transports udp: not a transport \(http-protobuf, http-json, grpc\)/],
    [['--rounds', '0'], /^bench: --rounds must be a whole number from 1 to 20/],
    [['--loaded', 'x'], /^bench: --loaded must be a number of seconds from 1 to 3600, got "x"/],
    [['--loaded', '0'], /^bench: --loaded must be a number of seconds from 1 to 3600, got "0"/],
  ])('%j: a one-line error naming what was wrong, exit 2, nothing run', (args, why) => {
    const r = run(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(why);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(r.stdout).toBe(''); // no log of a started phase
  });
});
