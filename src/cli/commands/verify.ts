/**
 * `sealtrail verify SOURCE... --key PUB [--key PUB…] --origin ORIGIN [--json] [--expect-fresh DUR]
 * [--since T] [--until T]` — checks every frame, chain value, Merkle root, signature and link of
 * the log in each SOURCE and compares the sources (docs/verify.md).
 * Exit 0 intact, 1 integrity findings, 2 could not verify (usage, I/O, unknown format version).
 */
import { parseArgs } from 'node:util';
import { SealtrailError, errorMessage } from '../../errors.js';
import { renderHuman, renderJson, renderJsonError } from '../../verify/findings.js';
import type { LogSource } from '../../verify/source.js';
import { verifyLog } from '../../verify/verifier.js';
import { type CliIO, EXIT } from '../io.js';
import { openLogSource } from '../log-sources.js';
import {
  SOURCE_FLAGS,
  loadTrustedKeys,
  parseDurationArg,
  parseTimeArg,
  requireOrigin,
  sourceOptions,
  usageError,
} from '../verify-common.js';

const USAGE =
  'SOURCE... --key PUB [--key PUB…] --origin ORIGIN [--json] [--expect-fresh DUR] [--since T] [--until T] [--workers N] [--quiet]\n' +
  '  SOURCE: ledger dir | fs destination dir | s3://bucket/prefix [--endpoint URL --region R --force-path-style] | dest:NAME --config FILE';

export async function run(argv: string[], io: CliIO): Promise<number> {
  const json = argv.includes('--json');
  try {
    return await verifyCommand(argv, io);
  } catch (e) {
    if (!json) throw e;
    const code = e instanceof SealtrailError ? e.code : 'INTERNAL';
    io.stdout.write(renderJsonError(code, errorMessage(e)));
    io.stderr.write(`sealtrail verify: ${errorMessage(e)}\n`);
    return EXIT.ERROR;
  }
}

async function verifyCommand(argv: string[], io: CliIO): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        key: { type: 'string', multiple: true },
        origin: { type: 'string' },
        json: { type: 'boolean' },
        'expect-fresh': { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
        quiet: { type: 'boolean' },
        workers: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        ...SOURCE_FLAGS,
      },
    });
  } catch (e) {
    throw usageError('verify', e, USAGE);
  }
  const v = parsed.values;
  if (v.help) {
    io.stdout.write(`usage: sealtrail verify ${USAGE}\n`);
    return EXIT.OK;
  }
  if (parsed.positionals.length === 0) throw new SealtrailError('USAGE', `give at least one SOURCE\nusage: sealtrail verify ${USAGE}`);
  const origin = requireOrigin(v.origin);
  const trusted = loadTrustedKeys(v.key, io.cwd);
  const now = Date.now();
  const expectFreshMs = parseDurationArg('--expect-fresh', v['expect-fresh']);
  const since = parseTimeArg('--since', v.since, now);
  const until = parseTimeArg('--until', v.until, now);
  if (since !== null && until !== null && since > until) throw new SealtrailError('USAGE', '--since is after --until');
  let workers: number | undefined;
  if (v.workers !== undefined) {
    if (!/^\d{1,2}$/.test(v.workers)) throw new SealtrailError('USAGE', `--workers ${v.workers}: expected 0..99 (0 = scan on the main thread)`);
    workers = Number(v.workers);
  }
  const so = sourceOptions(v, origin, io.cwd);
  const sources: LogSource[] = [];
  try {
    for (const arg of parsed.positionals) sources.push(await openLogSource(arg, so));
    const report = await verifyLog(sources, {
      origin,
      trusted,
      expectFreshMs,
      since,
      until,
      ...(workers !== undefined ? { workers } : {}),
      ...(v.quiet ? {} : { onProgress: (line: string) => io.stderr.write(`sealtrail verify: ${line}\n`) }),
    });
    io.stdout.write(v.json ? renderJson(report) : renderHuman(report));
    return report.findings.length === 0 ? EXIT.OK : EXIT.FINDINGS;
  } finally {
    for (const s of sources) s.close();
  }
}
