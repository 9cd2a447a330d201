/**
 * `sealtrail verify-proof FILE --key PUB [--key PUB…] [--origin ORIGIN] [--json]` — checks an
 * inclusion or consistency proof written by `sealtrail prove`, offline, with nothing else: the
 * checkpoint must be signed by a trusted key (strict RFC 8032) and the Merkle proof must lead to its
 * root. Exit 0 valid, 1 invalid (the proof or its checkpoint fails), 2 usage / unreadable file.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SealtrailError, errorMessage } from '../../errors.js';
import { entryToOtlpJson } from '../../otlp/index.js';
import { verifyProofText } from '../../verify/proof.js';
import { type CliIO, EXIT } from '../io.js';
import { loadTrustedKeys, requireOrigin, usageError } from '../verify-common.js';

const USAGE = 'FILE --key PUB [--key PUB…] [--origin ORIGIN] [--json]';

function b64(b: Uint8Array): string {
  return Buffer.from(b).toString('base64');
}

function otlp(entry: Uint8Array): unknown {
  try {
    return entryToOtlpJson(entry);
  } catch {
    return null; // proven bytes that are not an OTLP entry: shown as base64 only
  }
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { key: { type: 'string', multiple: true }, origin: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    throw usageError('verify-proof', e, USAGE);
  }
  const v = parsed.values;
  if (v.help) {
    io.stdout.write(`usage: sealtrail verify-proof ${USAGE}\n`);
    return EXIT.OK;
  }
  if (parsed.positionals.length !== 1) throw new SealtrailError('USAGE', `give exactly one proof FILE\nusage: sealtrail verify-proof ${USAGE}`);
  const trusted = loadTrustedKeys(v.key, io.cwd);
  const origin = v.origin === undefined ? undefined : requireOrigin(v.origin);
  const file = resolve(io.cwd, parsed.positionals[0]!);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new SealtrailError('IO', `cannot read ${file}: ${errorMessage(e)}`, { cause: e });
  }
  const r = verifyProofText(text, trusted, origin);
  if (!r.ok) {
    if (v.json) io.stdout.write(`${JSON.stringify({ schema: 'sealtrail.verify-proof/v1', result: 'invalid', problem: r.problem, message: r.message }, null, 2)}\n`);
    io.stderr.write(`sealtrail verify-proof: INVALID: ${r.message}\n`);
    return EXIT.FINDINGS;
  }
  if (r.kind === 'inclusion') {
    const cp = r.checkpoint;
    if (v.json) {
      io.stdout.write(
        `${JSON.stringify(
          { schema: 'sealtrail.verify-proof/v1', result: 'valid', kind: 'inclusion', origin: cp.origin, index: r.index, treeSize: cp.size, root: b64(cp.root), segment: cp.seq, signedBy: r.signedBy, time: new Date(cp.toMs).toISOString(), entry: b64(r.entry), otlp: otlp(r.entry) },
          null,
          2,
        )}\n`,
      );
    } else {
      io.stdout.write(
        `VALID: entry ${r.index} is in log ${cp.origin} at tree size ${cp.size} (root ${b64(cp.root)}, segment ${cp.seq}, sealed ${new Date(cp.toMs).toISOString()}), signed by ${r.signedBy.join(', ')}\n` +
          `${JSON.stringify(otlp(r.entry) ?? { entryBase64: b64(r.entry) })}\n`,
      );
    }
  } else {
    const o = r.oldCheckpoint;
    const n = r.newCheckpoint;
    if (v.json) {
      io.stdout.write(`${JSON.stringify({ schema: 'sealtrail.verify-proof/v1', result: 'valid', kind: 'consistency', origin: o.origin, oldSize: o.size, oldRoot: b64(o.root), newSize: n.size, newRoot: b64(n.root), signedBy: r.signedBy }, null, 2)}\n`);
    } else {
      io.stdout.write(`VALID: in log ${o.origin}, the tree of size ${n.size} (root ${b64(n.root)}) extends the tree of size ${o.size} (root ${b64(o.root)}); signed by ${[...new Set(r.signedBy)].join(', ')}\n`);
    }
  }
  return EXIT.OK;
}
