/**
 * Ed25519 keys in the C2SP signed-note / Go sumdb/note text formats, and the signing and strict
 * verification primitives that checkpoints use. Pure: no I/O (key files are in files.ts).
 *
 * Verifier key:  <name>+<8 hex key ID>+<base64(0x01 ‖ 32-byte public key)>
 * Private key:   PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 ‖ 32-byte seed)>
 * Key ID:        SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]           (c2sp.org/signed-note)
 *
 * Signing uses node:crypto (OpenSSL): measured ~9x faster than @noble/ed25519 on this machine
 * (docs/benchmarks.md "Hashing"). Ed25519 signatures are deterministic (RFC 8032 §5.1.6), so both
 * produce identical bytes; the test suite checks that against the RFC 8032 §7.1 vectors.
 * Verification rules (docs/format.md "Signature rules"): strict RFC 8032 §5.1.7 — canonical S < L,
 * canonical encodings of A and R, small-order A and R rejected — then the group equation by
 * node:crypto. Key material never appears in an error message.
 */
import * as nodeCrypto from 'node:crypto';
import { Point } from '@noble/ed25519';
import { SealtrailError } from '../errors.js';
import { base64DecodeStrict, base64Encode, hashEqual, sha256, toHex } from '../ledger/hash.js';

/** Signature type byte for Ed25519 in signed-note key IDs and key encodings (c2sp.org/signed-note). */
export const ED25519_TYPE = 0x01;

/** Signs note texts. `sign` returns a 64-byte Ed25519 signature. */
export interface Signer {
  readonly name: string;
  readonly keyId: Uint8Array;
  readonly publicKey: Uint8Array;
  /** The matching verifier key text, `<name>+<hex id>+<base64>`. */
  readonly verifierKey: string;
  sign(msg: Uint8Array): Uint8Array;
}

/** Verifies note signatures with strict RFC 8032 rules; `verify` never throws on bad signatures. */
export interface Verifier {
  readonly name: string;
  readonly keyId: Uint8Array;
  readonly publicKey: Uint8Array;
  /** The verifier key text this verifier was parsed from (or formatted to). */
  readonly text: string;
  verify(msg: Uint8Array, sig: Uint8Array): boolean;
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const MAX_NAME_LENGTH = 1024;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why `name` is not a valid signed-note key name, or null if it is: non-empty, well-formed
 * Unicode, no Unicode spaces, no '+' (c2sp.org/signed-note "Key names"), and no control
 * characters (a signed note may not contain any below U+0020, and we refuse DEL and C1 too).
 */
export function validateKeyName(name: string): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'key name must not be empty';
  if (name.length > MAX_NAME_LENGTH) return `key name must be at most ${MAX_NAME_LENGTH} characters`;
  if (LONE_SURROGATE.test(name)) return 'key name must be well-formed Unicode';
  if (/\s/u.test(name)) return 'key name must not contain spaces';
  if (name.includes('+')) return "key name must not contain '+'";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/u.test(name)) return 'key name must not contain control characters';
  return null;
}

function checkName(name: string): void {
  const why = validateKeyName(name);
  if (why !== null) throw new SealtrailError('KEY_INVALID', why);
}

/** Signed-note key ID: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ publicKey)[:4] (c2sp.org/signed-note, Ed25519). */
export function keyId(name: string, publicKey: Uint8Array): Uint8Array {
  const n = new TextEncoder().encode(name);
  const buf = new Uint8Array(n.length + 2 + publicKey.length);
  buf.set(n, 0);
  buf[n.length] = 0x0a;
  buf[n.length + 1] = ED25519_TYPE;
  buf.set(publicKey, n.length + 2);
  return sha256(buf).slice(0, 4);
}

// ---- strict RFC 8032 checks -------------------------------------------------------------------

// L = 2^252 + 27742317777372353535851937790883648493, little-endian (RFC 8032 §5.1).
const L_LE = Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex');

/** S is canonical iff S < L (RFC 8032 §5.1.7 step 1: "If ... S ... out of range, fail"). */
function scalarIsCanonical(s: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    const a = s[i] as number;
    const b = L_LE[i] as number;
    if (a < b) return true;
    if (a > b) return false;
  }
  return false; // S == L
}

/**
 * Encodings of the eight points of small order (the torsion subgroup), canonical forms. A point
 * with one of these encodings makes [k]A or R carry no information about the key.
 * Checked against @noble/ed25519's point arithmetic in test/crypto/ed25519.test.ts.
 */
export const SMALL_ORDER_ENCODINGS: readonly string[] = [
  '0100000000000000000000000000000000000000000000000000000000000000', // identity (order 1)
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // order 2
  '0000000000000000000000000000000000000000000000000000000000000080', // order 4
  '0000000000000000000000000000000000000000000000000000000000000000', // order 4
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', // order 8
];
const SMALL_ORDER = new Set(SMALL_ORDER_ENCODINGS);

/**
 * Byte-level canonicity of a point encoding (RFC 8032 §5.1.3): y < p, and the sign bit is not set
 * when x would be 0 (y = 1 or y = p−1). Whether y is on the curve at all is left to the decoder.
 */
function encodingIsCanonical(e: Uint8Array): boolean {
  const top = (e[31] as number) & 0x7f;
  // y ≥ p = 2^255 − 19 ⇔ bytes ed..ff ff … ff 7f (little-endian)
  let allFF = top === 0x7f;
  for (let i = 1; i < 31 && allFF; i++) if (e[i] !== 0xff) allFF = false;
  if (allFF && (e[0] as number) >= 0xed) return false;
  const signBit = ((e[31] as number) & 0x80) !== 0;
  if (signBit) {
    // x = 0 only for y = 1 and y = p − 1; with the sign bit set those are non-canonical.
    let yIsOne = e[0] === 0x01 && top === 0;
    for (let i = 1; i < 31 && yIsOne; i++) if (e[i] !== 0) yIsOne = false;
    let yIsMinusOne = e[0] === 0xec && top === 0x7f;
    for (let i = 1; i < 31 && yIsMinusOne; i++) if (e[i] !== 0xff) yIsMinusOne = false;
    if (yIsOne || yIsMinusOne) return false;
  }
  return true;
}

/**
 * Why `publicKey` is unacceptable as an Ed25519 verification key, or null: it must be 32 bytes, a
 * canonical encoding (y < p, RFC 8032 §5.1.3) of a point on the curve, and not of small order.
 */
export function publicKeyProblem(publicKey: Uint8Array): string | null {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return 'public key must be 32 bytes';
  if (!encodingIsCanonical(publicKey)) return 'public key is not a canonical point encoding';
  let p: Point;
  try {
    p = Point.fromBytes(publicKey, false); // strict decoding (zip215 = false)
  } catch {
    return 'public key is not a point on Ed25519';
  }
  if (p.isSmallOrder()) return 'public key is a small-order point';
  return null;
}

const publicKeyObjects = new WeakMap<Uint8Array, nodeCrypto.KeyObject>();

function publicKeyObject(publicKey: Uint8Array): nodeCrypto.KeyObject {
  let k = publicKeyObjects.get(publicKey);
  if (k === undefined) {
    k = nodeCrypto.createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]), format: 'der', type: 'spki' });
    publicKeyObjects.set(publicKey, k);
  }
  return k;
}

/**
 * Strict Ed25519 verification (docs/format.md "Signature rules"): 64-byte signature; S < L; R a
 * canonical encoding and not of small order; A valid (see `publicKeyProblem`); then
 * [S]B = R + [k]A checked by node:crypto (OpenSSL), which RFC 8032 §5.1.7 allows in place of the
 * cofactored equation. Returns false for anything malformed; never throws.
 */
export function verifyEd25519(publicKey: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  if (!(sig instanceof Uint8Array) || sig.length !== 64 || !(msg instanceof Uint8Array)) return false;
  if (publicKeyProblem(publicKey) !== null) return false;
  return verifyChecked(publicKeyObject(publicKey), msg, sig);
}

function verifyChecked(key: nodeCrypto.KeyObject, msg: Uint8Array, sig: Uint8Array): boolean {
  if (!(sig instanceof Uint8Array) || sig.length !== 64 || !(msg instanceof Uint8Array)) return false;
  const r = sig.subarray(0, 32);
  const s = sig.subarray(32, 64);
  if (!scalarIsCanonical(s)) return false;
  if (!encodingIsCanonical(r) || SMALL_ORDER.has(toHex(r))) return false;
  try {
    return nodeCrypto.verify(null, msg, key, sig);
  } catch {
    return false;
  }
}

// ---- key text formats -------------------------------------------------------------------------

/** `<name>+<8 hex key ID>+<base64(0x01 ‖ publicKey)>`. @throws SealtrailError KEY_INVALID on a bad name */
export function formatVerifierKey(name: string, publicKey: Uint8Array): string {
  checkName(name);
  const body = new Uint8Array(33);
  body[0] = ED25519_TYPE;
  body.set(publicKey, 1);
  return `${name}+${toHex(keyId(name, publicKey))}+${base64Encode(body)}`;
}

function makeVerifier(name: string, publicKey: Uint8Array, text: string): Verifier {
  const pub = publicKey.slice();
  const key = publicKeyObject(pub);
  return Object.freeze({
    name,
    keyId: keyId(name, pub),
    publicKey: pub,
    text,
    verify: (msg: Uint8Array, sig: Uint8Array) => verifyChecked(key, msg, sig),
  });
}

/**
 * A signer from a 32-byte Ed25519 seed (RFC 8032 §5.1.5 private key).
 * @throws SealtrailError KEY_INVALID on a bad name or seed length
 */
export function signerFromSeed(name: string, seed: Uint8Array): Signer {
  checkName(name);
  if (!(seed instanceof Uint8Array) || seed.length !== 32) {
    throw new SealtrailError('KEY_INVALID', 'an Ed25519 private key seed must be 32 bytes');
  }
  const priv = nodeCrypto.createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const spki = nodeCrypto.createPublicKey(priv).export({ format: 'der', type: 'spki' });
  const publicKey = new Uint8Array(spki.subarray(spki.length - 32));
  const verifierKey = formatVerifierKey(name, publicKey);
  return Object.freeze({
    name,
    keyId: keyId(name, publicKey),
    publicKey,
    verifierKey,
    sign: (msg: Uint8Array) => new Uint8Array(nodeCrypto.sign(null, msg, priv)),
  });
}

function formatPrivateKey(name: string, seed: Uint8Array, publicKey: Uint8Array): string {
  const body = new Uint8Array(33);
  body[0] = ED25519_TYPE;
  body.set(seed, 1);
  const text = `PRIVATE+KEY+${name}+${toHex(keyId(name, publicKey))}+${base64Encode(body)}`;
  body.fill(0);
  return text;
}

/**
 * A new random key pair (seed from the OS CSPRNG) with its private and verifier key texts.
 * @throws SealtrailError KEY_INVALID on a bad name
 */
export function generateKeyPair(name: string): { signer: Signer; privateKey: string; verifierKey: string } {
  checkName(name);
  const seed = new Uint8Array(nodeCrypto.randomBytes(32));
  const signer = signerFromSeed(name, seed);
  const privateKey = formatPrivateKey(name, seed, signer.publicKey);
  seed.fill(0);
  return { signer, privateKey, verifierKey: signer.verifierKey };
}

/** Split `<name>+<hex>+<base64>`; the base64 part may itself contain '+'. */
function splitKeyText(rest: string): { name: string; hex: string; b64: string } | null {
  const i = rest.indexOf('+');
  if (i < 0) return null;
  const j = rest.indexOf('+', i + 1);
  if (j < 0) return null;
  return { name: rest.slice(0, i), hex: rest.slice(i + 1, j), b64: rest.slice(j + 1) };
}

/**
 * Parse a private key text (`PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>`, optionally
 * followed by one newline). Messages describe the problem, never the key bytes.
 * @throws SealtrailError KEY_INVALID if the text is not a valid Ed25519 private key
 */
export function parsePrivateKey(text: string): Signer {
  const bad = (why: string) => new SealtrailError('KEY_INVALID', `not a valid sealtrail private key: ${why}`);
  if (typeof text !== 'string') throw bad('expected text');
  const t = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (!t.startsWith('PRIVATE+KEY+')) throw bad("it must start with 'PRIVATE+KEY+' (write one with: sealtrail keygen)");
  if (/[\r\n\s]/u.test(t)) throw bad('it must be a single line without spaces');
  const parts = splitKeyText(t.slice('PRIVATE+KEY+'.length));
  if (parts === null) throw bad('expected PRIVATE+KEY+<name>+<key id>+<key>');
  const why = validateKeyName(parts.name);
  if (why !== null) throw bad(why);
  if (!/^[0-9a-f]{8}$/.test(parts.hex)) throw bad('the key ID must be 8 lower-case hex digits');
  const raw = base64DecodeStrict(parts.b64);
  if (raw === null || raw.length !== 33) throw bad('the key must be canonical base64 of 33 bytes');
  if (raw[0] !== ED25519_TYPE) {
    raw.fill(0);
    throw bad('unsupported key type (only Ed25519, type 0x01)');
  }
  const seed = raw.slice(1);
  raw.fill(0);
  const signer = signerFromSeed(parts.name, seed);
  seed.fill(0);
  if (toHex(signer.keyId) !== parts.hex) throw bad('the key ID does not match the name and key');
  return signer;
}

/**
 * Parse a verifier key text (`<name>+<hex id>+<base64(0x01 ‖ pub)>`, optionally followed by one
 * newline). The key ID must match, and the public key must pass `publicKeyProblem`.
 * @throws SealtrailError KEY_INVALID naming what is wrong
 */
export function parseVerifierKey(text: string): Verifier {
  const bad = (why: string) => new SealtrailError('KEY_INVALID', `not a valid verifier key: ${why}`);
  if (typeof text !== 'string') throw bad('expected text');
  const t = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (t.startsWith('PRIVATE+KEY+')) {
    throw bad('this is a PRIVATE key; give the public key (the .pub file written by sealtrail keygen)');
  }
  if (/[\r\n\s]/u.test(t)) throw bad('it must be a single line without spaces');
  const parts = splitKeyText(t);
  if (parts === null) throw bad('expected <name>+<key id>+<key>');
  const why = validateKeyName(parts.name);
  if (why !== null) throw bad(why);
  if (!/^[0-9a-f]{8}$/.test(parts.hex)) throw bad('the key ID must be 8 lower-case hex digits');
  const raw = base64DecodeStrict(parts.b64);
  if (raw === null || raw.length !== 33) throw bad('the key must be canonical base64 of 33 bytes');
  if (raw[0] !== ED25519_TYPE) throw bad('unsupported key type (only Ed25519, type 0x01)');
  const pub = raw.slice(1);
  const problem = publicKeyProblem(pub);
  if (problem !== null) throw bad(problem);
  if (toHex(keyId(parts.name, pub)) !== parts.hex) throw bad(`the key ID ${parts.hex} does not match the name and key`);
  return makeVerifier(parts.name, pub, t);
}

/** A verifier for a signer's public key (same rules as a parsed one). */
export function verifierFor(signer: Signer): Verifier {
  return parseVerifierKey(signer.verifierKey);
}

/** Same name, key ID and public key. */
export function sameKey(a: { name: string; keyId: Uint8Array; publicKey: Uint8Array }, b: typeof a): boolean {
  return a.name === b.name && hashEqual(a.keyId, b.keyId) && hashEqual(a.publicKey, b.publicKey);
}
