/**
 * `sealtrail check-destinations --config FILE [--json]`: the write-once canary (G6) on demand.
 * For each configured destination, writes a canary object the way the forwarder writes log
 * objects, then tries to overwrite and to delete it (src/forward/canary.ts).
 *
 * Exit codes (DESIGN.md): 0 every destination is write-once; 1 at least one is unsafe (reported
 * even when the config accepts it with `accept_unsafe: true`: this command answers the question,
 * the agent's readiness applies the policy); 2 usage, config or I/O error (a destination could not
 * be checked at all).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../../config/load.js';
import { type DestinationConfig, parseDurationMs } from '../../config/schema.js';
import { errorMessage } from '../../errors.js';
import { type CanaryResult, runCanary } from '../../forward/canary.js';
import { createDestination } from '../../forward/factory.js';
import { type CliIO, EXIT } from '../io.js';

const USAGE = `Usage: sealtrail check-destinations --config FILE [--json] [--lock DURATION]

Writes a canary object to every destination in the config and tries to overwrite and to delete it.
A destination that allows either is UNSAFE (not write-once).
Options:
  --config FILE     the agent's configuration (its destinations are checked)
  --json            one JSON object on stdout instead of text
  --lock DURATION   S3 Object Lock retention of the canary (default 1d); it must outlive the attack
Exit: 0 all write-once, 1 at least one unsafe, 2 usage, config or I/O error.
`;

function where(d: DestinationConfig, cwd: string): string {
  return d.type === 'fs' ? `fs ${resolve(cwd, d.path)}` : `s3 s3://${d.bucket}${d.prefix ? `/${d.prefix}` : ''}${d.endpoint ? ` at ${d.endpoint}` : ''}`;
}

/** Runs the command; never throws. */
export async function run(argv: string[], io: CliIO): Promise<number> {
  let values: { config?: string; json?: boolean; lock?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { config: { type: 'string' }, json: { type: 'boolean' }, lock: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    io.stderr.write(`sealtrail check-destinations: ${errorMessage(e)}\n\n${USAGE}`);
    return EXIT.ERROR;
  }
  if (values.help) {
    io.stdout.write(USAGE);
    return EXIT.OK;
  }
  if (!values.config) {
    io.stderr.write(`sealtrail check-destinations: --config FILE is required\n\n${USAGE}`);
    return EXIT.ERROR;
  }
  let lockSeconds = 86_400;
  if (values.lock !== undefined) {
    const ms = parseDurationMs(values.lock);
    if (ms === undefined || ms < 1000) {
      io.stderr.write(`sealtrail check-destinations: --lock ${JSON.stringify(values.lock)}: use a duration of at least 1s, e.g. 1h or 1d\n`);
      return EXIT.ERROR;
    }
    lockSeconds = Math.ceil(ms / 1000);
  }

  let cfg;
  try {
    cfg = loadConfigFile(resolve(io.cwd, values.config));
  } catch (e) {
    io.stderr.write(`sealtrail check-destinations: ${errorMessage(e)}\n`);
    return EXIT.ERROR;
  }
  if (cfg.destinations.length === 0) {
    if (values.json) io.stdout.write(`${JSON.stringify({ destinations: [], safe: true })}\n`);
    else io.stdout.write('no destinations configured (local-only ledger): nothing to check\n');
    return EXIT.OK;
  }

  const results: { config: DestinationConfig; result: CanaryResult }[] = [];
  for (const d of cfg.destinations) {
    // Relative fs paths are relative to the working directory, as in the agent.
    const dc: DestinationConfig = d.type === 'fs' ? { ...d, path: resolve(io.cwd, d.path) } : d;
    let result: CanaryResult;
    try {
      const dest = await createDestination(dc);
      try {
        result = await runCanary(dest, { lockSeconds });
      } finally {
        dest.close();
      }
    } catch (e) {
      result = { destination: d.name, type: d.type, safe: undefined, checks: [], error: errorMessage(e) };
    }
    results.push({ config: d, result });
  }

  const anyError = results.some((r) => r.result.safe === undefined);
  const anyUnsafe = results.some((r) => r.result.safe === false);
  if (values.json) {
    io.stdout.write(
      `${JSON.stringify({
        safe: !anyError && !anyUnsafe,
        destinations: results.map(({ config, result }) => ({
          name: config.name,
          type: config.type,
          where: where(config, io.cwd),
          verdict: result.safe === undefined ? 'error' : result.safe ? 'safe' : 'unsafe',
          accept_unsafe: config.accept_unsafe,
          checks: result.checks,
          ...(result.error !== undefined ? { error: result.error } : {}),
        })),
      })}\n`,
    );
  } else {
    for (const { config, result } of results) {
      const verdict =
        result.safe === undefined
          ? 'ERROR (could not check)'
          : result.safe
            ? 'SAFE (write-once)'
            : `UNSAFE${config.accept_unsafe ? ' (accepted in the config by accept_unsafe: true)' : ''}`;
      io.stdout.write(`${config.name} (${where(config, io.cwd)}): ${verdict}\n`);
      for (const c of result.checks) io.stdout.write(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}\n`);
      if (result.error !== undefined) io.stdout.write(`  error: ${result.error}\n`);
    }
  }
  return anyError ? EXIT.ERROR : anyUnsafe ? EXIT.FINDINGS : EXIT.OK;
}
