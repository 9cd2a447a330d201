/**
 * Building proofs from a stored log (G4): inclusion of one entry in its segment's seal, and
 * consistency between two checkpoints. Pure (reads through a LogSource). Only the segments that
 * are needed are read: the seal checkpoint file names say which segment holds an index.
 *
 * An inclusion proof is segment-local: the audit-path siblings that lie left of the segment's
 * start are exactly the subtrees of the start frontier stored in its header (merkle.ts TreeSlice),
 * so one segment suffices, whatever the size of the log.
 */
import { SealtrailError } from '../errors.js';
import { type Checkpoint, parseCheckpointBody, parseSignedNote } from '../ledger/checkpoint.js';
import { hashEqual, leafHash } from '../ledger/hash.js';
import { type Frontier, consistencyProof, inclusionProof, verifyConsistency, verifyInclusion } from '../ledger/merkle.js';
import { SegmentFormatError, SegmentParser, decodeHeader, parseSegmentFileName } from '../ledger/segment-format.js';
import { formatConsistencyProof, formatInclusionProof } from './proof.js';
import { type LogSource, type StoredItem, parseCheckpointFileName } from './source.js';

const dec = new TextDecoder('utf-8', { fatal: true });

interface Indexed {
  readonly segments: { seq: number; item: StoredItem; open: boolean }[];
  readonly cps: { item: StoredItem; seq: number; size: number; kind: 'seal' | 'heartbeat' }[];
}

async function index(src: LogSource): Promise<Indexed> {
  const items = (await src.list()).filter((i) => i.versionIndex === 0 && !i.deleteMarker);
  const segments: Indexed['segments'] = [];
  const cps: Indexed['cps'] = [];
  for (const it of items) {
    if (it.kind === 'segment' || it.kind === 'open-segment') {
      const seq = parseSegmentFileName(it.name.replace(/\.open$/, ''));
      if (seq !== undefined) segments.push({ seq, item: it, open: it.kind === 'open-segment' });
    } else if (it.kind === 'checkpoint') {
      const n = parseCheckpointFileName(it.name);
      if (n) cps.push({ item: it, seq: n.seq, size: n.size, kind: n.kind });
    }
  }
  segments.sort((a, b) => a.seq - b.seq);
  cps.sort((a, b) => (a.item.name < b.item.name ? -1 : 1));
  return { segments, cps };
}

async function readAll(src: LogSource, item: StoredItem): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of src.read(item)) parts.push(c);
  return parts.length === 1 ? parts[0]! : new Uint8Array(Buffer.concat(parts));
}

/** Header of a segment from its first bytes only. */
async function firstIndexOf(src: LogSource, item: StoredItem): Promise<number> {
  for await (const c of src.read(item)) {
    try {
      return decodeHeader(c).header.firstIndex;
    } catch {
      break; // header larger than one chunk or damaged: fall back to reading the whole file
    }
  }
  return decodeHeader(await readAll(src, item)).header.firstIndex;
}

interface SegmentLeaves {
  frontier: Frontier;
  leaves: Uint8Array[];
  entryAt: Map<number, Uint8Array>;
  seal: string | undefined;
  firstIndex: number;
}

/**
 * Reads one segment: start frontier, leaf hashes, chosen entries, the seal note.
 * @throws SealtrailError LEDGER_CORRUPT when the segment does not parse (run verify for details)
 */
async function readLeaves(src: LogSource, item: StoredItem, open: boolean, want: ReadonlySet<number>): Promise<SegmentLeaves> {
  const p = new SegmentParser();
  const out: SegmentLeaves = { frontier: undefined!, leaves: [], entryAt: new Map(), seal: undefined, firstIndex: 0 };
  try {
    for await (const c of src.read(item)) {
      for (const it of p.push(c)) {
        if (it.kind === 'header') {
          out.frontier = it.header.frontier.clone();
          out.firstIndex = it.header.firstIndex;
        } else if (it.kind === 'frame') {
          out.leaves.push(it.leaf.slice());
          if (want.has(it.index)) out.entryAt.set(it.index, it.entry.slice());
        } else {
          out.seal = dec.decode(it.trailer.checkpoint);
        }
      }
    }
    if (!open) p.end();
  } catch (e) {
    if (e instanceof SegmentFormatError) {
      throw new SealtrailError('LEDGER_CORRUPT', `${src.description}: ${item.name} does not parse (${e.message}); run sealtrail verify for the findings`, { cause: e });
    }
    throw e;
  }
  if (!out.frontier) throw new SealtrailError('LEDGER_CORRUPT', `${src.description}: ${item.name} has no header`);
  return out;
}

function parseNote(note: string, what: string): Checkpoint {
  const n = parseSignedNote(note);
  if (!n.ok) throw new SealtrailError('LEDGER_CORRUPT', `${what}: checkpoint does not parse (${n.detail})`);
  const b = parseCheckpointBody(n.value.body);
  if (!b.ok) throw new SealtrailError(b.reason === 'unknown_version' ? 'FORMAT_UNSUPPORTED' : 'LEDGER_CORRUPT', `${what}: ${b.detail}`);
  return b.value;
}

/** Finds the stored segment that holds global index `i` (seal file names first, then headers). */
async function segmentFor(src: LogSource, ix: Indexed, i: number): Promise<Indexed['segments'][number]> {
  const seals = new Map(ix.cps.filter((c) => c.kind === 'seal').map((c) => [c.seq, c.size]));
  const known = ix.segments.filter((s) => seals.has(s.seq));
  if (known.length === ix.segments.filter((s) => !s.open).length) {
    const hit = ix.segments.find((s) => !s.open && seals.get(s.seq)! > i);
    if (hit) return hit;
    const open = ix.segments.find((s) => s.open);
    if (open) return open;
  } else {
    // No seal names for every segment: walk the headers (first chunk of each file).
    let best: Indexed['segments'][number] | undefined;
    for (const s of ix.segments) {
      if ((await firstIndexOf(src, s.item)) <= i) best = s;
      else break;
    }
    if (best) return best;
  }
  throw new SealtrailError('USAGE', `${src.description}: no stored segment holds entry ${i}`);
}

/**
 * An inclusion proof of entry `i` in the seal of its segment, as tlog-proof text.
 * @throws SealtrailError USAGE (no such entry, not sealed yet), LEDGER_CORRUPT (segment does not
 *   match its own seal: run verify), IO
 */
export async function proveInclusion(src: LogSource, i: number): Promise<{ text: string; checkpoint: Checkpoint; entry: Uint8Array }> {
  const ix = await index(src);
  const seg = await segmentFor(src, ix, i);
  if (seg.open) throw new SealtrailError('USAGE', `entry ${i} is in the open segment and not sealed yet; prove it once its segment is sealed (at most ledger.max_segment_age)`);
  const r = await readLeaves(src, seg.item, false, new Set([i]));
  const entry = r.entryAt.get(i);
  if (!entry || r.seal === undefined) throw new SealtrailError('USAGE', `${src.description}: entry ${i} is not in ${seg.item.name} (entries ${r.firstIndex}..${r.firstIndex + r.leaves.length - 1})`);
  const cp = parseNote(r.seal, `${seg.item.name} trailer`);
  const slice = { frontier: r.frontier, leafHashes: r.leaves };
  const end = r.frontier.clone();
  for (const l of r.leaves) end.append(l);
  if (end.size !== cp.size || !hashEqual(end.root(), cp.root)) {
    throw new SealtrailError('LEDGER_CORRUPT', `${src.description}: ${seg.item.name} does not match its own seal; run sealtrail verify for the findings`);
  }
  const path = inclusionProof(i, cp.size, slice);
  if (!verifyInclusion(leafHash(entry), i, cp.size, path, cp.root)) throw new SealtrailError('INTERNAL', 'the inclusion proof just built does not verify');
  return { text: formatInclusionProof({ entry, index: i, path, checkpoint: r.seal }), checkpoint: cp, entry };
}

/**
 * A consistency proof between the stored checkpoints of tree sizes `m` < `n`.
 * Memory: one leaf hash (32 bytes) per entry from the start of m's segment up to n.
 * @throws SealtrailError USAGE (no checkpoint of that size), LEDGER_CORRUPT, IO
 */
export async function proveConsistency(src: LogSource, m: number, n: number): Promise<{ text: string }> {
  if (!(m <= n)) throw new SealtrailError('USAGE', `--consistency OLD NEW: OLD (${m}) must not be larger than NEW (${n})`);
  const ix = await index(src);
  const noteOf = async (size: number): Promise<string> => {
    const c = ix.cps.find((x) => x.size === size);
    if (!c) {
      const sizes = [...new Set(ix.cps.map((x) => x.size))];
      throw new SealtrailError('USAGE', `${src.description}: no checkpoint of tree size ${size} (stored sizes: ${sizes.slice(0, 20).join(', ')}${sizes.length > 20 ? ', …' : ''})`);
    }
    return dec.decode(await readAll(src, c.item));
  };
  const oldNote = await noteOf(m);
  const newNote = await noteOf(n);
  const oldCp = parseNote(oldNote, `checkpoint of size ${m}`);
  const newCp = parseNote(newNote, `checkpoint of size ${n}`);
  let proof: Uint8Array[] = [];
  if (m > 0 && m < n) {
    const first = await segmentFor(src, ix, Math.min(m, n - 1));
    let frontier: Frontier | undefined;
    const leaves: Uint8Array[] = [];
    for (const s of ix.segments.filter((x) => x.seq >= first.seq)) {
      const r = await readLeaves(src, s.item, s.open, new Set());
      if (!frontier) frontier = r.frontier;
      else if (r.firstIndex !== frontier.size + leaves.length) {
        throw new SealtrailError('LEDGER_CORRUPT', `${src.description}: ${s.item.name} does not continue the previous segment; run sealtrail verify`);
      }
      leaves.push(...r.leaves);
      if (frontier.size + leaves.length >= n) break;
    }
    if (!frontier || frontier.size > m || frontier.size + leaves.length < n) {
      throw new SealtrailError('USAGE', `${src.description}: the stored segments do not cover entries ${m}..${n - 1}`);
    }
    proof = consistencyProof(m, n, { frontier, leafHashes: leaves.slice(0, n - frontier.size) });
  }
  if (!verifyConsistency(m, n, oldCp.root, newCp.root, proof)) {
    throw new SealtrailError('LEDGER_CORRUPT', `${src.description}: the checkpoints of sizes ${m} and ${n} are not consistent with the stored entries; run sealtrail verify`);
  }
  return { text: formatConsistencyProof({ oldSize: m, newSize: n, proof, oldNote, newNote }) };
}
