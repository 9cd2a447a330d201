/**
 * Proof files (DESIGN.md G4): an inclusion proof of one entry in a signed checkpoint, and a
 * consistency proof between two checkpoints. Both verify offline with nothing but the file and
 * the operator's trusted key(s).
 *
 * Inclusion proofs use the C2SP tlog-proof@v1 text format (c2sp.org/tlog-proof): the first line
 * `c2sp.org/tlog-proof@v1`, an `extra` line, `index N`, the RFC 6962 §2.1.1 audit path (one base64
 * hash per line, leaf's sibling first), an empty line, then the checkpoint note verbatim. The spec
 * leaves `extra` to the application: sealtrail puts the base64 of the entry's bytes there. It is
 * not trusted as such — the verifier hashes it into the leaf (SHA-256(0x00 ‖ entry), RFC 9162
 * §2.1.1) and only a matching audit path to the signed root makes it proven.
 *
 * Consistency proofs have no C2SP text format yet; sealtrail uses the same style:
 *   sealtrail.dev/consistency-proof@v1
 *   old <size>
 *   new <size>
 *   <base64 hash lines, RFC 9162 §2.1.4>
 *   <empty line>
 *   <old checkpoint note verbatim><new checkpoint note verbatim>
 */
import { type Checkpoint, verifyCheckpoint } from '../ledger/checkpoint.js';
import { leafHash } from '../ledger/hash.js';
import { verifyConsistency, verifyInclusion } from '../ledger/merkle.js';
import { type Verifier, parseVerifierKey } from '../keys/keys.js';

export const INCLUSION_HEADER = 'c2sp.org/tlog-proof@v1';
export const CONSISTENCY_HEADER = 'sealtrail.dev/consistency-proof@v1';

const B64_HASH = /^[A-Za-z0-9+/]{43}=$/;

function b64(b: Uint8Array): string {
  return Buffer.from(b).toString('base64');
}

/** Strict base64 of exactly 32 bytes (canonical: re-encoding gives the same text). */
function hashFromB64(line: string): Uint8Array | undefined {
  if (!B64_HASH.test(line)) return undefined;
  const b = Buffer.from(line, 'base64');
  if (b.length !== 32 || b.toString('base64') !== line) return undefined;
  return new Uint8Array(b);
}

/** Decimal without leading zeros (C2SP tlog-proof: "no leading zeroes unless 0"). */
function decimal(s: string): number | undefined {
  if (!/^(0|[1-9]\d{0,15})$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Formats an inclusion proof file. @throws RangeError on malformed arguments */
export function formatInclusionProof(p: { entry: Uint8Array; index: number; path: readonly Uint8Array[]; checkpoint: string }): string {
  if (!Number.isSafeInteger(p.index) || p.index < 0) throw new RangeError('index must be a non-negative safe integer');
  if (!p.checkpoint.endsWith('\n')) throw new RangeError('checkpoint note must end with a newline');
  const lines = [INCLUSION_HEADER, `extra ${b64(p.entry)}`, `index ${p.index}`, ...p.path.map(b64), ''];
  return `${lines.join('\n')}\n${p.checkpoint}`;
}

/** Formats a consistency proof file. @throws RangeError on malformed arguments */
export function formatConsistencyProof(p: { oldSize: number; newSize: number; proof: readonly Uint8Array[]; oldNote: string; newNote: string }): string {
  if (!p.oldNote.endsWith('\n') || !p.newNote.endsWith('\n')) throw new RangeError('checkpoint notes must end with a newline');
  const lines = [CONSISTENCY_HEADER, `old ${p.oldSize}`, `new ${p.newSize}`, ...p.proof.map(b64), ''];
  return `${lines.join('\n')}\n${p.oldNote}${p.newNote}`;
}

/** Outcome of checking a proof file; `ok: false` is a finding (exit 1), not an exception. */
export type ProofResult =
  | {
      readonly ok: true;
      readonly kind: 'inclusion';
      readonly index: number;
      readonly entry: Uint8Array;
      readonly checkpoint: Checkpoint;
      readonly signedBy: readonly string[];
    }
  | {
      readonly ok: true;
      readonly kind: 'consistency';
      readonly oldCheckpoint: Checkpoint;
      readonly newCheckpoint: Checkpoint;
      readonly signedBy: readonly string[];
    }
  | { readonly ok: false; readonly problem: 'malformed' | 'checkpoint' | 'proof'; readonly message: string };

/** Splits "one note, then another" where each note is body, empty line, signature lines (C2SP signed-note). */
function splitNotes(text: string): [string, string] | undefined {
  const lines = text.split('\n');
  let i = lines.indexOf('');
  if (i < 0) return undefined;
  i++;
  while (i < lines.length && lines[i]!.startsWith('\u2014 ')) i++;
  if (i >= lines.length) return undefined;
  const first = `${lines.slice(0, i).join('\n')}\n`;
  return [first, text.slice(first.length)];
}

/**
 * Checks a proof file offline: parses it strictly, verifies the checkpoint signature(s) with the
 * trusted keys (strict RFC 8032, via checkpoint.ts), then the Merkle proof against the signed root.
 * `origin`, when given, must match the checkpoint's; otherwise the signed origin is reported.
 * Never throws on bad input.
 */
export function verifyProofText(text: string, trusted: readonly Verifier[], origin?: string): ProofResult {
  const bad = (message: string): ProofResult => ({ ok: false, problem: 'malformed', message });
  const header = text.slice(0, text.indexOf('\n'));
  const lines = text.split('\n');
  let i = 1;
  if (header === INCLUSION_HEADER) {
    let entry: Uint8Array | undefined;
    if (lines[i]?.startsWith('extra ')) {
      const t = lines[i]!.slice(6);
      const b = Buffer.from(t, 'base64');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || b.toString('base64') !== t) return bad('the extra line is not canonical base64');
      entry = new Uint8Array(b);
      i++;
    }
    if (!entry) return bad('the proof carries no entry bytes (extra line): it cannot show what was logged');
    const im = /^index (\S+)$/.exec(lines[i] ?? '');
    const index = im ? decimal(im[1]!) : undefined;
    if (index === undefined) return bad(`line ${i + 1}: expected "index N" (decimal, no leading zeros)`);
    i++;
    const path: Uint8Array[] = [];
    for (; i < lines.length && lines[i] !== ''; i++) {
      const h = hashFromB64(lines[i]!);
      if (!h) return bad(`line ${i + 1}: not a base64 SHA-256 hash`);
      path.push(h);
    }
    if (i >= lines.length) return bad('missing the empty line before the checkpoint');
    const note = lines.slice(i + 1).join('\n');
    const v = verifyCheckpoint(note, trusted, origin ?? originOf(note));
    if (!v.ok) return { ok: false, problem: 'checkpoint', message: `checkpoint: ${v.reason}: ${v.detail}` };
    const cp = v.checkpoint;
    if (index >= cp.size) return { ok: false, problem: 'proof', message: `index ${index} is not below the checkpoint's tree size ${cp.size}` };
    if (!verifyInclusion(leafHash(entry), index, cp.size, path, cp.root)) {
      return { ok: false, problem: 'proof', message: `the audit path does not lead from entry ${index} to the signed root of tree size ${cp.size}` };
    }
    return { ok: true, kind: 'inclusion', index, entry, checkpoint: cp, signedBy: v.signedBy.map((k) => k.text) };
  }
  if (header === CONSISTENCY_HEADER) {
    const om = /^old (\S+)$/.exec(lines[1] ?? '');
    const nm = /^new (\S+)$/.exec(lines[2] ?? '');
    const m = om ? decimal(om[1]!) : undefined;
    const n = nm ? decimal(nm[1]!) : undefined;
    if (m === undefined || n === undefined) return bad('expected "old M" and "new N" lines');
    const proof: Uint8Array[] = [];
    for (i = 3; i < lines.length && lines[i] !== ''; i++) {
      const h = hashFromB64(lines[i]!);
      if (!h) return bad(`line ${i + 1}: not a base64 SHA-256 hash`);
      proof.push(h);
    }
    if (i >= lines.length) return bad('missing the empty line before the checkpoints');
    const notes = splitNotes(lines.slice(i + 1).join('\n'));
    if (!notes) return bad('expected two checkpoint notes after the proof');
    const want = origin ?? originOf(notes[0]);
    const vo = verifyCheckpoint(notes[0], trusted, want);
    if (!vo.ok) return { ok: false, problem: 'checkpoint', message: `old checkpoint: ${vo.reason}: ${vo.detail}` };
    // The new checkpoint may be signed by a key the old one announced (rotation).
    const rotated = [...trusted];
    for (const k of vo.checkpoint.keys) {
      const match = trusted.find((t) => t.text === k);
      if (!match) {
        try {
          rotated.push(parseVerifierKey(k));
        } catch {
          /* an unparsable announcement adds nothing */
        }
      }
    }
    const vn = verifyCheckpoint(notes[1], rotated, want);
    if (!vn.ok) return { ok: false, problem: 'checkpoint', message: `new checkpoint: ${vn.reason}: ${vn.detail}` };
    if (vo.checkpoint.size !== m || vn.checkpoint.size !== n) {
      return { ok: false, problem: 'proof', message: `the sizes ${m} and ${n} do not match the checkpoints (${vo.checkpoint.size}, ${vn.checkpoint.size})` };
    }
    if (!verifyConsistency(m, n, vo.checkpoint.root, vn.checkpoint.root, proof)) {
      return { ok: false, problem: 'proof', message: `the tree of size ${n} does not extend the tree of size ${m}: the log was rewritten between the two checkpoints` };
    }
    return { ok: true, kind: 'consistency', oldCheckpoint: vo.checkpoint, newCheckpoint: vn.checkpoint, signedBy: [...vo.signedBy, ...vn.signedBy].map((k) => k.text) };
  }
  return bad(`unknown proof format: the first line must be "${INCLUSION_HEADER}" or "${CONSISTENCY_HEADER}"`);
}

/** The origin line of a note (only used when the operator gave none; the signature still has to verify). */
function originOf(note: string): string {
  const nl = note.indexOf('\n');
  return nl < 0 ? note : note.slice(0, nl);
}

