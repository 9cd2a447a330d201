/**
 * `sealtrail inspect FILE [--json]` — one segment file: header, entries (each as OTLP/JSON), the
 * seal checkpoint. For investigators reading what they are proving; it checks the format (CRCs,
 * chain) and whether the recomputed root matches the checkpoint, but not signatures: that needs
 * trusted keys, which is `sealtrail verify`'s job.
 * Exit 0 = a well-formed segment (an open, unsealed one too); 1 = damaged (the finding is printed
 * after what could be read); 2 = usage or I/O error, or an unsupported format version.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { errorMessage } from '../../errors.js';
import { type Checkpoint, parseCheckpointBody, parseSignedNote } from '../../ledger/checkpoint.js';
import { hashEqual, toHex } from '../../ledger/hash.js';
import type { Frontier } from '../../ledger/merkle.js';
import { type SegmentHeader, SegmentFormatError, type SegmentItem, SegmentParser, type SegmentTrailer } from '../../ledger/segment-format.js';
import { entryToOtlpJson } from '../../otlp/index.js';
import { type CliIO, EXIT } from '../io.js';

const USAGE = 'usage: sealtrail inspect FILE [--json]\n  FILE: a segment file (NNNNNNNNNNNNNNNN.seg, or the open .seg.open)\n';

function headerJson(h: SegmentHeader) {
  return {
    version: h.version,
    seq: h.seq,
    origin: h.origin,
    firstIndex: h.firstIndex,
    createdMs: h.createdMs,
    created: new Date(h.createdMs).toISOString(),
    prevCheckpointHash: toHex(h.prevCheckpointHash),
    chainPrev: toHex(h.chainPrev),
    startFrontier: { size: h.frontier.size, subtrees: h.frontier.subtrees.map(toHex), root: toHex(h.frontier.root()) },
  };
}

function entryJson(entry: Uint8Array): { otlp: object } | { hex: string; otlpError: string } {
  try {
    return { otlp: entryToOtlpJson(entry) };
  } catch (e) {
    return { hex: toHex(entry), otlpError: errorMessage(e) };
  }
}

function checkpointJson(t: SegmentTrailer, root: Frontier) {
  const text = new TextDecoder().decode(t.checkpoint);
  const note = parseSignedNote(t.checkpoint);
  let cp: Checkpoint | undefined;
  let problem: string | undefined;
  if (!note.ok) problem = `${note.reason}: ${note.detail}`;
  else {
    const b = parseCheckpointBody(note.value.body);
    if (b.ok) cp = b.value;
    else problem = `${b.reason}: ${b.detail}`;
  }
  return {
    note: text,
    ...(cp
      ? {
          origin: cp.origin,
          size: cp.size,
          root: toHex(cp.root),
          seq: cp.seq,
          kind: cp.kind,
          prev: cp.prev ? toHex(cp.prev) : 'genesis',
          fromMs: cp.fromMs,
          toMs: cp.toMs,
          keys: cp.keys,
          signatures: note.ok ? note.value.signatures.map((s) => ({ name: s.name, keyId: toHex(s.keyId) })) : [],
          rootMatchesEntries: cp.size === root.size && hashEqual(cp.root, root.root()),
        }
      : { problem }),
  };
}

/** Runs the command. @throws nothing: every failure becomes an exit code and a message */
export async function run(argv: string[], io: CliIO): Promise<number> {
  let args: ReturnType<typeof parse>;
  const parse = (a: string[]) =>
    parseArgs({ args: a, options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  try {
    args = parse(argv);
  } catch (e) {
    io.stderr.write(`sealtrail inspect: ${errorMessage(e)}\n${USAGE}`);
    return EXIT.ERROR;
  }
  if (args.values.help) {
    io.stdout.write(USAGE);
    return EXIT.OK;
  }
  if (args.positionals.length !== 1) {
    io.stderr.write(`sealtrail inspect: expected exactly one FILE\n${USAGE}`);
    return EXIT.ERROR;
  }
  const file = path.resolve(io.cwd, args.positionals[0]!);
  const json = args.values.json === true;
  const out = io.stdout;

  const result: Record<string, unknown> = { file };
  const entries: unknown[] = [];
  let header: SegmentHeader | undefined;
  let frontier: Frontier | undefined;
  let trailer: { t: SegmentTrailer; offset: number } | undefined;
  let finding: SegmentFormatError | undefined;
  let count = 0;

  const onItem = (it: SegmentItem): void => {
    if (it.kind === 'header') {
      header = it.header;
      frontier = it.header.frontier.clone();
      if (!json) {
        const h = headerJson(it.header);
        out.write(
          `segment ${path.basename(file)}\n` +
            `  format version ${h.version}, seq ${h.seq}, origin ${h.origin}\n` +
            `  first index ${h.firstIndex}, created ${h.created}\n` +
            `  previous checkpoint (body SHA-256) ${h.prevCheckpointHash}\n` +
            `  chain before first entry ${h.chainPrev}\n` +
            `  start frontier: tree size ${h.startFrontier.size}, root ${h.startFrontier.root}\n` +
            `entries:\n`,
        );
      }
    } else if (it.kind === 'frame') {
      frontier!.append(it.leaf);
      count++;
      const e = { index: it.index, offset: it.offset, bytes: it.entry.length, chain: toHex(it.chain), leaf: toHex(it.leaf), ...entryJson(it.entry) };
      if (json) entries.push(e);
      else out.write(`  #${e.index} @${e.offset} ${e.bytes} B chain ${e.chain.slice(0, 16)}… ${'otlp' in e ? JSON.stringify(e.otlp) : `hex ${e.hex} (${e.otlpError})`}\n`);
    } else {
      trailer = { t: it.trailer, offset: it.offset };
    }
  };

  let stream: fs.ReadStream | undefined;
  try {
    stream = fs.createReadStream(file, { highWaterMark: 256 * 1024 });
    const parser = new SegmentParser();
    for await (const chunk of stream) for (const it of parser.push(chunk as Buffer)) onItem(it);
    parser.end();
  } catch (e) {
    stream?.destroy();
    if (e instanceof SegmentFormatError) {
      if (e.code === 'FORMAT_UNSUPPORTED') {
        io.stderr.write(`sealtrail inspect: ${file}: ${e.message}\n`);
        return EXIT.ERROR;
      }
      finding = e;
    } else {
      io.stderr.write(`sealtrail inspect: cannot read ${file}: ${errorMessage(e)}\n`);
      return EXIT.ERROR;
    }
  }

  // An open segment simply has no trailer yet: report it as unsealed, not as damage.
  // An open segment after a crash may also end in an incomplete frame: the torn tail recovery cuts.
  // And a live one may end in zeros its commit writer wrote ahead of the commits (cut at the seal).
  const unsealed =
    finding !== undefined &&
    (finding.check === 'truncated' || finding.check === 'frame_truncated' || finding.check === 'zero_fill') &&
    header !== undefined &&
    trailer === undefined &&
    file.endsWith('.open');
  const tornNote =
    unsealed && finding?.check === 'frame_truncated'
      ? `; incomplete frame at offset ${finding.offset} (a torn tail: recovery cuts it)`
      : unsealed && finding?.check === 'zero_fill'
        ? `; zeros from offset ${finding.offset} (space written ahead of the commits: the seal cuts it, and so does recovery after a crash)`
        : '';
  const cp = trailer && frontier ? checkpointJson(trailer.t, frontier) : undefined;
  if (json) {
    result.header = header ? headerJson(header) : null;
    result.entries = entries;
    result.sealed = trailer !== undefined;
    if (unsealed && finding?.check === 'frame_truncated') result.tornTailOffset = finding.offset;
    if (unsealed && finding?.check === 'zero_fill') result.zeroFillOffset = finding.offset;
    result.trailer = trailer
      ? { offset: trailer.offset, count: trailer.t.count, chainLast: toHex(trailer.t.chainLast), endFrontierSize: trailer.t.endFrontier.size, checkpoint: cp }
      : null;
    result.finding = finding && !unsealed ? { check: finding.check, offset: finding.offset, frame: finding.frame ?? null, index: finding.index ?? null, message: finding.message } : null;
    out.write(JSON.stringify(result, null, 2) + '\n');
  } else {
    if (trailer && cp) {
      out.write(`trailer at offset ${trailer.offset}: ${trailer.t.count} entries, chain_last ${toHex(trailer.t.chainLast)}\n`);
      out.write(`checkpoint:\n${cp.note.replace(/^/gm, '  ')}\n`);
      if ('rootMatchesEntries' in cp) {
        out.write(`  kind ${cp.kind}, segment ${cp.seq}, tree size ${cp.size}; root ${cp.rootMatchesEntries ? 'matches' : 'DOES NOT MATCH'} the entries (signature not checked: use sealtrail verify --key)\n`);
      } else out.write(`  checkpoint does not parse: ${cp.problem}\n`);
    } else if (unsealed) out.write(`unsealed (open segment): ${count} entries so far, no trailer yet${tornNote}\n`);
    if (finding && !unsealed) out.write(`FINDING: ${finding.message}\n`);
  }
  if (finding && !unsealed) return EXIT.FINDINGS;
  if (cp && 'rootMatchesEntries' in cp && !cp.rootMatchesEntries) return EXIT.FINDINGS;
  if (cp && !('rootMatchesEntries' in cp)) return EXIT.FINDINGS;
  return EXIT.OK;
}
