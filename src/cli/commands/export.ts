/**
 * `sealtrail export SOURCE --key PUB --origin ORIGIN [--since T] [--until T] [--unverified]` —
 * verified entries as OTLP/JSON, one `ExportLogsServiceRequest` object (`{"resourceLogs":[…]}`,
 * one ResourceLogs per entry) per line: the shape the Collector's otlpjsonfile receiver reads and an
 * OTLP/HTTP endpoint accepts, for loading into an investigation backend.
 *
 * The log is verified first (the same checks as `sealtrail verify`); on any finding nothing is
 * written to stdout and the exit code is 1, unless --unverified is given (then entries are written,
 * findings go to stderr and the exit code is still 1). Only entries covered by a validly signed
 * checkpoint are exported from a verified log. --since/--until select segments by their signed time
 * range and then entries by their own time (timeUnixNano, else observedTimeUnixNano).
 */
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { SealtrailError } from '../../errors.js';
import { entryToOtlpJson } from '../../otlp/index.js';
import { renderHuman } from '../../verify/findings.js';
import { verifyLog } from '../../verify/verifier.js';
import { type CliIO, EXIT } from '../io.js';
import { openLogSource } from '../log-sources.js';
import { SOURCE_FLAGS, loadTrustedKeys, parseTimeArg, requireOrigin, sourceOptions, usageError } from '../verify-common.js';

const USAGE = 'SOURCE --key PUB [--key PUB…] --origin ORIGIN [--since T] [--until T] [--unverified]';

/** The record's own time in ms (nanosecond strings in OTLP/JSON), or undefined. */
function recordTimeMs(rl: unknown): number | undefined {
  const rec = (rl as { scopeLogs?: { logRecords?: { timeUnixNano?: string; observedTimeUnixNano?: string }[] }[] }).scopeLogs?.[0]?.logRecords?.[0];
  const ns = rec?.timeUnixNano ?? rec?.observedTimeUnixNano;
  return ns === undefined ? undefined : Number(BigInt(ns) / 1_000_000n);
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        key: { type: 'string', multiple: true },
        origin: { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
        unverified: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        ...SOURCE_FLAGS,
      },
    });
  } catch (e) {
    throw usageError('export', e, USAGE);
  }
  const v = parsed.values;
  if (v.help) {
    io.stdout.write(`usage: sealtrail export ${USAGE}\n`);
    return EXIT.OK;
  }
  if (parsed.positionals.length !== 1) throw new SealtrailError('USAGE', `give exactly one SOURCE\nusage: sealtrail export ${USAGE}`);
  const origin = requireOrigin(v.origin);
  const trusted = loadTrustedKeys(v.key, io.cwd);
  const now = Date.now();
  const since = parseTimeArg('--since', v.since, now);
  const until = parseTimeArg('--until', v.until, now);
  const src = await openLogSource(parsed.positionals[0]!, sourceOptions(v, origin, io.cwd));
  try {
    const base = { origin, trusted, since, until };
    let limit = Number.MAX_SAFE_INTEGER;
    if (!v.unverified) {
      const report = await verifyLog([src], base);
      if (report.findings.length > 0) {
        io.stderr.write(renderHuman(report));
        io.stderr.write('sealtrail export: refusing to export from a log that fails verification (give --unverified to export anyway)\n');
        return EXIT.FINDINGS;
      }
      limit = report.sources[0]?.treeSize ?? 0;
    }
    let written = 0;
    let buffered = '';
    // Write in ~1 MiB pieces and wait for 'drain' when the consumer is slower than verification,
    // so memory stays flat however large the export.
    const flush = (): Promise<void> | undefined => {
      const chunk = buffered;
      buffered = '';
      if (chunk && !io.stdout.write(chunk)) return once(io.stdout, 'drain').then(() => undefined);
      return undefined;
    };
    const report = await verifyLog([src], {
      ...base,
      onEntry: (index, entry) => {
        if (index >= limit) return;
        let rl: object;
        try {
          rl = entryToOtlpJson(entry);
        } catch (e) {
          io.stderr.write(`sealtrail export: entry ${index} is not an OTLP entry (${(e as Error).message}); skipped\n`);
          return;
        }
        const t = recordTimeMs(rl);
        if (t !== undefined && ((since !== null && t < since) || (until !== null && t > until))) return;
        buffered += `${JSON.stringify({ resourceLogs: [rl] })}\n`;
        written++;
        if (buffered.length > 1 << 20) return flush();
        return undefined;
      },
    });
    await flush();
    io.stderr.write(`sealtrail export: ${written} entries written\n`);
    if (report.findings.length > 0) {
      io.stderr.write(renderHuman(report));
      return EXIT.FINDINGS;
    }
    return EXIT.OK;
  } finally {
    src.close();
  }
}
