/**
 * `sealtrail prove SOURCE --index N [--out FILE] [--origin ORIGIN]` — an inclusion proof of entry N
 * in its segment's signed seal, in the C2SP tlog-proof@v1 text format (src/verify/proof.ts);
 * `sealtrail prove SOURCE --consistency OLD NEW [--out FILE]` — a consistency proof between the
 * stored checkpoints of tree sizes OLD and NEW. Check either offline with `sealtrail verify-proof`.
 * Exit 0 written, 1 the stored data does not match its own checkpoint (run verify), 2 usage / I/O.
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SealtrailError, errorMessage } from '../../errors.js';
import { proveConsistency, proveInclusion } from '../../verify/prover.js';
import { type CliIO, EXIT } from '../io.js';
import { openLogSource } from '../log-sources.js';
import { SOURCE_FLAGS, sourceOptions, usageError } from '../verify-common.js';

const USAGE = 'SOURCE --index N [--out FILE] [--origin ORIGIN]\n       sealtrail prove SOURCE --consistency OLD NEW [--out FILE] [--origin ORIGIN]';

function count(flag: string, v: string | undefined): number {
  if (v === undefined || !/^(0|[1-9]\d{0,15})$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw new SealtrailError('USAGE', `${flag} ${v ?? ''}: expected a non-negative integer (a global entry index or tree size)`);
  }
  return Number(v);
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        index: { type: 'string' },
        consistency: { type: 'boolean' },
        out: { type: 'string' },
        origin: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        ...SOURCE_FLAGS,
      },
    });
  } catch (e) {
    throw usageError('prove', e, USAGE);
  }
  const v = parsed.values;
  if (v.help) {
    io.stdout.write(`usage: sealtrail prove ${USAGE}\n`);
    return EXIT.OK;
  }
  const [srcArg, ...rest] = parsed.positionals;
  if (srcArg === undefined) throw new SealtrailError('USAGE', `give a SOURCE\nusage: sealtrail prove ${USAGE}`);
  if (v.consistency ? rest.length !== 2 || v.index !== undefined : rest.length !== 0 || v.index === undefined) {
    throw new SealtrailError('USAGE', `give either --index N or --consistency OLD NEW\nusage: sealtrail prove ${USAGE}`);
  }
  const src = await openLogSource(srcArg, sourceOptions(v, v.origin ?? '', io.cwd));
  let text: string;
  try {
    text = v.consistency ? (await proveConsistency(src, count('OLD', rest[0]), count('NEW', rest[1]))).text : (await proveInclusion(src, count('--index', v.index))).text;
  } catch (e) {
    if (e instanceof SealtrailError && e.code === 'LEDGER_CORRUPT') {
      io.stderr.write(`sealtrail prove: ${errorMessage(e)}\n`);
      return EXIT.FINDINGS;
    }
    throw e;
  } finally {
    src.close();
  }
  if (v.out !== undefined) {
    const out = resolve(io.cwd, v.out);
    try {
      await writeFile(out, text, { flag: 'wx' });
    } catch (e) {
      throw new SealtrailError('IO', `cannot write ${out}: ${errorMessage(e)} (an existing file is never overwritten)`, { cause: e });
    }
    io.stderr.write(`sealtrail prove: wrote ${out}\n`);
  } else {
    io.stdout.write(text);
  }
  return EXIT.OK;
}
