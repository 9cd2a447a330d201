/**
 * Checkpoints: the C2SP tlog-checkpoint body (c2sp.org/tlog-checkpoint) carried in a C2SP signed
 * note (c2sp.org/signed-note), with sealtrail's extension lines. Pure: no I/O, no clock.
 *
 * Body (each line ends in "\n", order fixed, docs/format.md "Checkpoints (signed notes)"):
 *   <origin>
 *   <tree size>                     decimal, no leading zeros
 *   <root>                          base64 of the 32-byte RFC 9162 root
 *   sealtrail-format 1
 *   sealtrail-seg <seq>
 *   sealtrail-kind seal|heartbeat
 *   sealtrail-prev <base64 SHA-256 of the previous checkpoint body>|genesis
 *   sealtrail-time <from_ms> <to_ms>
 *   sealtrail-key <verifier key>    0..n, key rotation announcements
 * Note = body ‖ "\n" ‖ signature lines "— <key name> <base64(key ID ‖ signature)>\n".
 *
 * Parsing is strict so that a note can only be read one way: exact line structure, no CR, no
 * trailing or doubled spaces, canonical decimals and base64, no unknown or repeated lines. A note
 * that could be read two ways could be signed as one thing and shown as another (issue 4, attack 8).
 * Verification returns a result with a reason code and never throws on bad input; an unknown
 * format version is reported as `unknown_version`, never as a bad signature (sigstore-js #561).
 */
import { type Signer, type Verifier, parseVerifierKey, validateKeyName } from '../keys/keys.js';
import { HASH_SIZE, base64DecodeStrict, base64Encode, hashEqual, sha256, toHex } from './hash.js';

/** The only checkpoint format version this code reads and writes. */
export const CHECKPOINT_FORMAT_VERSION = 1;
/** Notes larger than this are refused unread (a checkpoint is well under 1 KiB plus rotation keys). */
export const MAX_NOTE_BYTES = 64 * 1024;
/** At most this many signature lines (c2sp.org/signed-note: verifiers MUST accept at least 16). */
export const MAX_SIGNATURES = 100;

const EM_DASH_PREFIX = '\u2014 ';

export type CheckpointKind = 'seal' | 'heartbeat';

/** What the ledger puts into a checkpoint. */
export interface CheckpointFields {
  readonly origin: string;
  readonly size: number;
  readonly root: Uint8Array;
  /** Segment sequence number this checkpoint belongs to. */
  readonly seq: number;
  readonly kind: CheckpointKind;
  /** SHA-256 of the previous checkpoint's body (`checkpointBodyHash`); null only for a log's first checkpoint. */
  readonly prev: Uint8Array | null;
  /** Milliseconds since the Unix epoch: `toMs` of the previous checkpoint (genesis: its own toMs). */
  readonly fromMs: number;
  /** Milliseconds since the Unix epoch when this checkpoint was made. */
  readonly toMs: number;
  /** Verifier keys announced for rotation (trusted from the next checkpoint on). */
  readonly keys?: readonly string[];
}

/** A parsed checkpoint body. */
export interface Checkpoint extends CheckpointFields {
  readonly version: number;
  readonly keys: readonly string[];
  /** The exact body text (what the signatures cover). */
  readonly body: string;
  /** SHA-256 of the body bytes: the value the next checkpoint's `sealtrail-prev` line names. */
  readonly bodyHash: Uint8Array;
}

/** One signature line of a signed note. */
export interface NoteSignature {
  readonly name: string;
  readonly keyId: Uint8Array;
  readonly signature: Uint8Array;
}

/** A syntactically valid signed note. */
export interface SignedNote {
  /** The whole note. */
  readonly text: string;
  /** The signed text: everything before the separating blank line, including its final newline. */
  readonly body: string;
  readonly signatures: readonly NoteSignature[];
}

export type ParseFailure = 'bad_format' | 'unknown_version';
export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: ParseFailure; detail: string };

export type CheckpointFailure =
  | 'bad_format'
  | 'unknown_version'
  | 'wrong_origin'
  | 'no_trusted_signature'
  | 'bad_signature'
  | 'key_id_mismatch';

export type CheckpointVerification =
  | {
      ok: true;
      checkpoint: Checkpoint;
      note: SignedNote;
      /** Trusted keys whose signatures verified. */
      signedBy: readonly Verifier[];
      /** Signature lines from keys not in the trusted set (ignored, as c2sp.org/signed-note requires). */
      ignored: readonly NoteSignature[];
      /** Among `ignored`: lines with a trusted key NAME but another key ID (e.g. a key not yet trusted). */
      keyIdMismatches: readonly NoteSignature[];
    }
  | {
      ok: false;
      reason: CheckpointFailure;
      detail: string;
      /** Present when the body parsed (e.g. wrong_origin, signature failures). */
      checkpoint?: Checkpoint;
      /** Whether a trusted key's signature over the body verified (undefined if the note did not parse). */
      signatureVerified?: boolean;
    };

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const DECIMAL = /^(?:0|[1-9][0-9]*)$/;
// eslint-disable-next-line no-control-regex
const CONTROL_EXCEPT_NL = /[\u0000-\u0009\u000b-\u001f]/;
// eslint-disable-next-line no-control-regex
const ORIGIN_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function parseDecimal(s: string): number | null {
  if (!DECIMAL.test(s) || s.length > 16) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

/** Why `origin` cannot be a checkpoint origin line, or null. */
export function originProblem(origin: string): string | null {
  if (typeof origin !== 'string' || origin.length === 0) return 'origin must not be empty';
  if (origin.length > 1024) return 'origin must be at most 1024 characters';
  if (ORIGIN_FORBIDDEN.test(origin)) return 'origin must not contain control characters or line breaks';
  if (LONE_SURROGATE.test(origin)) return 'origin must be well-formed Unicode';
  if (/^\s|\s$/u.test(origin)) return 'origin must not start or end with a space';
  return null;
}

/** SHA-256 of a checkpoint body (the signed text). Named by the next checkpoint's `sealtrail-prev`. */
export function checkpointBodyHash(body: string | Uint8Array): Uint8Array {
  return sha256(typeof body === 'string' ? utf8.encode(body) : body);
}

function isMs(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/**
 * The checkpoint body text for `f`.
 * @throws RangeError naming the first invalid field
 * @throws SealtrailError KEY_INVALID if an announced key (`keys`) is not a valid verifier key
 */
export function formatCheckpoint(f: CheckpointFields): string {
  const why = originProblem(f.origin);
  if (why !== null) throw new RangeError(why);
  if (!isMs(f.size)) throw new RangeError('size must be a safe non-negative integer');
  if (!(f.root instanceof Uint8Array) || f.root.length !== HASH_SIZE) throw new RangeError('root must be 32 bytes');
  if (!isMs(f.seq)) throw new RangeError('seq must be a safe non-negative integer');
  if (f.kind !== 'seal' && f.kind !== 'heartbeat') throw new RangeError("kind must be 'seal' or 'heartbeat'");
  if (f.prev !== null && (!(f.prev instanceof Uint8Array) || f.prev.length !== HASH_SIZE)) {
    throw new RangeError('prev must be 32 bytes or null (genesis)');
  }
  if (!isMs(f.fromMs) || !isMs(f.toMs)) throw new RangeError('fromMs and toMs must be safe non-negative integers');
  if (f.fromMs > f.toMs) throw new RangeError('fromMs must not be after toMs');
  const keys = f.keys ?? [];
  const seen = new Set<string>();
  for (const k of keys) {
    parseVerifierKey(k); // throws SealtrailError KEY_INVALID naming the problem
    if (k.endsWith('\n')) throw new RangeError('announced keys must not end in a newline');
    if (seen.has(k)) throw new RangeError('an announced key is listed twice');
    seen.add(k);
  }
  const lines = [
    f.origin,
    String(f.size),
    base64Encode(f.root),
    `sealtrail-format ${CHECKPOINT_FORMAT_VERSION}`,
    `sealtrail-seg ${f.seq}`,
    `sealtrail-kind ${f.kind}`,
    `sealtrail-prev ${f.prev === null ? 'genesis' : base64Encode(f.prev)}`,
    `sealtrail-time ${f.fromMs} ${f.toMs}`,
    ...keys.map((k) => `sealtrail-key ${k}`),
  ];
  return lines.join('\n') + '\n';
}

/**
 * Parse a checkpoint body strictly. `unknown_version` when line 4 is not `sealtrail-format 1`
 * (missing, or another version); `bad_format` with the line number for anything else. Never throws.
 */
export function parseCheckpointBody(body: string): ParseResult<Checkpoint> {
  const bad = (detail: string): ParseResult<Checkpoint> => ({ ok: false, reason: 'bad_format', detail });
  if (typeof body !== 'string') return bad('checkpoint body must be text');
  if (!body.endsWith('\n')) return bad('checkpoint body must end with a newline');
  if (body.includes('\r')) return bad('checkpoint contains a carriage return (CR)');
  const lines = body.slice(0, -1).split('\n');
  // Version first, before any other rule: a newer format must be reported as such, whatever else
  // it changed (sigstore-js #561). Line 4 must be exactly "sealtrail-format 1".
  const vline = lines[3];
  if (vline === undefined || !vline.startsWith('sealtrail-format')) {
    // A format line elsewhere means lines were inserted or removed (e.g. a newline injected into
    // the origin shifts everything down): that is a broken body, not a newer format.
    const at = lines.findIndex((l) => l.startsWith('sealtrail-format'));
    if (at >= 0) return bad(`the "sealtrail-format" line is line ${at + 1}, not line 4: lines were inserted or removed`);
    return {
      ok: false,
      reason: 'unknown_version',
      detail: 'line 4 is not a "sealtrail-format" line: not a sealtrail checkpoint, or a format this version cannot read',
    };
  }
  if (vline !== `sealtrail-format ${CHECKPOINT_FORMAT_VERSION}`) {
    const vtext = vline.slice('sealtrail-format'.length).trim();
    return {
      ok: false,
      reason: 'unknown_version',
      detail: `checkpoint format version ${JSON.stringify(vtext)}; this sealtrail reads version ${CHECKPOINT_FORMAT_VERSION}`,
    };
  }
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i] as string;
    if (l.length === 0) return bad(`line ${i + 1} is empty`);
    if (i > 0 && (l !== l.trim() || l.includes('  '))) return bad(`line ${i + 1} has leading, trailing or repeated spaces`);
  }
  const [originLine, sizeLine, rootLine] = lines as [string, string, string];
  const op = originProblem(originLine);
  if (op !== null) return bad(`line 1: ${op}`);
  const size = parseDecimal(sizeLine);
  if (size === null) return bad('line 2: tree size must be a decimal number without leading zeros');
  const root = base64DecodeStrict(rootLine);
  if (root === null || root.length !== HASH_SIZE) return bad('line 3: root must be canonical base64 of 32 bytes');

  const field = (i: number, name: string): string | null => {
    const l = lines[i];
    if (l === undefined || !l.startsWith(`${name} `)) return null;
    return l.slice(name.length + 1);
  };
  const segText = field(4, 'sealtrail-seg');
  const seq = segText === null ? null : parseDecimal(segText);
  if (seq === null) return bad('line 5 must be "sealtrail-seg <decimal>"');
  const kind = field(5, 'sealtrail-kind');
  if (kind !== 'seal' && kind !== 'heartbeat') return bad('line 6 must be "sealtrail-kind seal" or "sealtrail-kind heartbeat"');
  const prevText = field(6, 'sealtrail-prev');
  let prev: Uint8Array | null;
  if (prevText === 'genesis') prev = null;
  else {
    prev = prevText === null ? null : base64DecodeStrict(prevText);
    if (prev === null || prev.length !== HASH_SIZE) return bad('line 7 must be "sealtrail-prev <base64 of 32 bytes>" or "sealtrail-prev genesis"');
  }
  const timeText = field(7, 'sealtrail-time');
  const times = timeText === null ? [] : timeText.split(' ');
  const fromMs = times.length === 2 ? parseDecimal(times[0] as string) : null;
  const toMs = times.length === 2 ? parseDecimal(times[1] as string) : null;
  if (fromMs === null || toMs === null) return bad('line 8 must be "sealtrail-time <from_ms> <to_ms>"');
  if (fromMs > toMs) return bad('line 8: from_ms is after to_ms');
  const keys: string[] = [];
  for (let i = 8; i < lines.length; i++) {
    const k = field(i, 'sealtrail-key');
    if (k === null) return bad(`line ${i + 1}: unexpected line (only "sealtrail-key" lines may follow "sealtrail-time")`);
    try {
      parseVerifierKey(k);
    } catch (e) {
      return bad(`line ${i + 1}: ${(e as Error).message}`);
    }
    if (keys.includes(k)) return bad(`line ${i + 1}: key announced twice`);
    keys.push(k);
  }
  return {
    ok: true,
    value: Object.freeze({
      version: CHECKPOINT_FORMAT_VERSION,
      origin: originLine,
      size,
      root,
      seq,
      kind,
      prev,
      fromMs,
      toMs,
      keys: Object.freeze(keys),
      body,
      bodyHash: checkpointBodyHash(body),
    }),
  };
}

function noteTextProblem(text: string): string | null {
  if (CONTROL_EXCEPT_NL.test(text)) {
    return text.includes('\r') ? 'note contains a carriage return (CR)' : 'note contains a control character';
  }
  if (LONE_SURROGATE.test(text)) return 'note is not well-formed Unicode';
  return null;
}

/**
 * Parse a C2SP signed note strictly (never throws): valid UTF-8, no control characters but
 * newline, text ending in newline, one blank line, then 1..MAX_SIGNATURES lines of exactly
 * "— <name> <base64>" where the base64 is canonical and decodes to a 4-byte key ID plus at least one
 * byte. Duplicate signature lines or two lines for the same (name, key ID) are refused.
 */
export function parseSignedNote(input: string | Uint8Array): ParseResult<SignedNote> {
  const bad = (detail: string): ParseResult<SignedNote> => ({ ok: false, reason: 'bad_format', detail });
  let text: string;
  if (typeof input === 'string') {
    text = input;
    if (utf8.encode(text).length > MAX_NOTE_BYTES) return bad(`note is larger than ${MAX_NOTE_BYTES} bytes`);
  } else if (input instanceof Uint8Array) {
    if (input.length > MAX_NOTE_BYTES) return bad(`note is larger than ${MAX_NOTE_BYTES} bytes`);
    try {
      text = utf8Strict.decode(input);
    } catch {
      return bad('note is not valid UTF-8');
    }
    if (text.startsWith('\ufeff')) return bad('note starts with a byte order mark');
  } else {
    return bad('note must be text or bytes');
  }
  const tp = noteTextProblem(text);
  if (tp !== null) return bad(tp);
  if (!text.endsWith('\n')) return bad('note must end with a newline');
  // c2sp.org/signed-note: the text is separated from the signatures by the LAST empty line.
  const sep = text.lastIndexOf('\n\n');
  if (sep < 0) return bad('note has no blank line before its signatures (signature line stripped?)');
  const body = text.slice(0, sep + 1);
  if (body.length === 0 || body === '\n') return bad('note text is empty');
  const sigBlock = text.slice(sep + 2);
  if (sigBlock.length === 0) return bad('note has no signature lines');
  const lines = sigBlock.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) return bad(`note has more than ${MAX_SIGNATURES} signature lines`);
  const signatures: NoteSignature[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const where = `signature line ${i + 1}`;
    if (!line.startsWith(EM_DASH_PREFIX)) return bad(`${where} does not start with an em dash (U+2014) and a space`);
    const parts = line.slice(EM_DASH_PREFIX.length).split(' ');
    if (parts.length !== 2) return bad(`${where} must be "— <key name> <base64 signature>" with single spaces`);
    const [name, b64] = parts as [string, string];
    const nameWhy = validateKeyName(name);
    if (nameWhy !== null) return bad(`${where}: ${nameWhy}`);
    const raw = base64DecodeStrict(b64);
    if (raw === null) return bad(`${where}: signature is not canonical base64`);
    if (raw.length < 5) return bad(`${where}: signature is shorter than a key ID plus one byte`);
    const keyId = raw.slice(0, 4);
    const id = `${name} ${toHex(keyId)}`;
    if (seen.has(id)) return bad(`${where}: a second signature by the same key (${name}, ${toHex(keyId)})`);
    seen.add(id);
    signatures.push(Object.freeze({ name, keyId, signature: raw.slice(4) }));
  }
  return { ok: true, value: Object.freeze({ text, body, signatures: Object.freeze(signatures) }) };
}

/**
 * Sign `body` (a note text ending in newline) with each signer and return the signed note.
 * @throws RangeError if the body is not a valid note text or two signers share a name and key ID
 */
export function signNote(body: string, signers: readonly Signer[]): string {
  if (typeof body !== 'string' || !body.endsWith('\n') || body === '\n') {
    throw new RangeError('note text must be non-empty and end with a newline');
  }
  const tp = noteTextProblem(body);
  if (tp !== null) throw new RangeError(tp);
  if (signers.length === 0) throw new RangeError('at least one signer is needed');
  if (signers.length > MAX_SIGNATURES) throw new RangeError(`at most ${MAX_SIGNATURES} signers`);
  const msg = utf8.encode(body);
  const seen = new Set<string>();
  let out = body + '\n';
  for (const s of signers) {
    const id = `${s.name} ${toHex(s.keyId)}`;
    if (seen.has(id)) throw new RangeError(`signer ${s.name} is listed twice`);
    seen.add(id);
    const sig = s.sign(msg);
    const raw = new Uint8Array(4 + sig.length);
    raw.set(s.keyId, 0);
    raw.set(sig, 4);
    out += `${EM_DASH_PREFIX}${s.name} ${base64Encode(raw)}\n`;
  }
  return out;
}

/**
 * Sign a checkpoint body. The body is parsed first, so the agent never signs a checkpoint that a
 * verifier would refuse to read.
 * @throws RangeError if the body is not a valid version-1 checkpoint body
 */
export function signCheckpoint(body: string, signers: readonly Signer[]): string {
  const p = parseCheckpointBody(body);
  if (!p.ok) throw new RangeError(`refusing to sign an invalid checkpoint body (${p.reason}): ${p.detail}`);
  return signNote(body, signers);
}

interface SignatureCheck {
  status: 'ok' | 'bad_signature' | 'key_id_mismatch' | 'no_trusted_signature';
  detail: string;
  signedBy: Verifier[];
  ignored: NoteSignature[];
  keyIdMismatches: NoteSignature[];
}

/**
 * c2sp.org/signed-note "Signatures": lines from unknown keys (name AND key ID) are ignored; a line
 * from a known key MUST verify, and if one fails the whole note is rejected; at least one known key
 * must have signed.
 */
function checkSignatures(note: SignedNote, trusted: readonly Verifier[]): SignatureCheck {
  const msg = utf8.encode(note.body);
  const signedBy: Verifier[] = [];
  const ignored: NoteSignature[] = [];
  const keyIdMismatches: NoteSignature[] = [];
  let failed: string | null = null;
  for (const s of note.signatures) {
    const v = trusted.find((t) => t.name === s.name && hashEqual(t.keyId, s.keyId));
    if (v === undefined) {
      ignored.push(s);
      if (trusted.some((t) => t.name === s.name)) keyIdMismatches.push(s);
      continue;
    }
    if (v.verify(msg, s.signature)) {
      if (!signedBy.includes(v)) signedBy.push(v);
    } else if (failed === null) {
      failed = `the signature by trusted key ${s.name} (key ID ${toHex(s.keyId)}) does not verify`;
    }
  }
  if (failed !== null) return { status: 'bad_signature', detail: failed, signedBy, ignored, keyIdMismatches };
  if (signedBy.length > 0) return { status: 'ok', detail: '', signedBy, ignored, keyIdMismatches };
  if (keyIdMismatches.length > 0) {
    const m = keyIdMismatches[0] as NoteSignature;
    return {
      status: 'key_id_mismatch',
      detail: `signed as ${m.name} with key ID ${toHex(m.keyId)}, which is not the ID of any trusted key of that name`,
      signedBy,
      ignored,
      keyIdMismatches,
    };
  }
  const names = [...new Set(note.signatures.map((s) => s.name))].join(', ');
  return {
    status: 'no_trusted_signature',
    detail: `no signature by a trusted key (signed by: ${names})`,
    signedBy,
    ignored,
    keyIdMismatches,
  };
}

/**
 * Verify a signed checkpoint against the operator's trusted keys and expected origin. Order:
 * note syntax (bad_format) → format version (unknown_version) → body syntax (bad_format) →
 * origin (wrong_origin) → signatures (bad_signature / key_id_mismatch / no_trusted_signature).
 * Failures after the note parsed carry `signatureVerified`. Never throws on bad input.
 */
export function verifyCheckpoint(
  text: string | Uint8Array,
  trusted: readonly Verifier[],
  expectedOrigin: string,
): CheckpointVerification {
  const note = parseSignedNote(text);
  if (!note.ok) {
    // A well-formed checkpoint body whose signature lines were cut off (attack: strip the signature)
    // is reported as unsigned, which is what it is, rather than as a syntax error.
    const t = typeof text === 'string' ? text : Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('utf8');
    const unsigned = [t, t.endsWith('\n\n') ? t.slice(0, -1) : null].some(
      (b) => b !== null && parseCheckpointBody(b).ok,
    );
    if (unsigned) {
      return { ok: false, reason: 'no_trusted_signature', detail: 'the checkpoint carries no signature line (stripped?)', signatureVerified: false };
    }
    return { ok: false, reason: 'bad_format', detail: note.detail };
  }
  const sigs = checkSignatures(note.value, trusted);
  const signatureVerified = sigs.status === 'ok';
  const cp = parseCheckpointBody(note.value.body);
  if (!cp.ok) return { ok: false, reason: cp.reason, detail: cp.detail, signatureVerified };
  const checkpoint = cp.value;
  if (checkpoint.origin !== expectedOrigin) {
    return {
      ok: false,
      reason: 'wrong_origin',
      detail: `checkpoint origin is ${JSON.stringify(checkpoint.origin)}, expected ${JSON.stringify(expectedOrigin)}`,
      checkpoint,
      signatureVerified,
    };
  }
  if (sigs.status !== 'ok') {
    return { ok: false, reason: sigs.status, detail: sigs.detail, checkpoint, signatureVerified };
  }
  return {
    ok: true,
    checkpoint,
    note: note.value,
    signedBy: sigs.signedBy,
    ignored: sigs.ignored,
    keyIdMismatches: sigs.keyIdMismatches,
  };
}
