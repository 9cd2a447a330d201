/**
 * SHA-256 helpers for the ledger's hot path: RFC 9162 §2.1.1 leaf and node hashes, the per-entry
 * chain (DESIGN.md "Chain") and its seed. Pure functions, no I/O.
 *
 * Speed: one SHA-256 call per record dominates the ledger's cost (issue 3). On Node 20.20
 * `crypto.hash('sha256', buf, 'buffer')` (one-shot, added in Node 20.12) beats `createHash()` and
 * @noble/hashes for every input size we hash (64, 65 and ~300 bytes); see docs/benchmarks.md
 * "Hashing" and `node dist/bench/hash.js`. Prefix bytes are written into a reused scratch buffer so
 * that a leaf hash costs one copy and one native call, not an allocation for the concatenation.
 */
import * as nodeCrypto from 'node:crypto';

/** Size in bytes of every hash in the ledger (SHA-256). */
export const HASH_SIZE = 32;

type Sha256 = (data: Uint8Array) => Uint8Array;

// crypto.hash exists from Node 20.12 / 21.7; older 20.x fall back to createHash (same result,
// ~1.5x slower below 1 KiB). Resolved once at load, not per call.
const oneShot = (nodeCrypto as { hash?: (alg: string, data: Uint8Array, enc: 'buffer') => Uint8Array }).hash;
const sha256Impl: Sha256 =
  typeof oneShot === 'function'
    ? (data) => oneShot('sha256', data, 'buffer')
    : (data) => nodeCrypto.createHash('sha256').update(data).digest();

/** SHA-256 of `data`. */
export function sha256(data: Uint8Array): Uint8Array {
  return sha256Impl(data);
}

/** MTH({}) = SHA-256 of the empty string: the root of the empty tree (RFC 9162 §2.1.1). */
export const EMPTY_ROOT: Uint8Array = sha256(new Uint8Array(0));

// Reused concatenation buffer. Safe because every function below is synchronous and the hash
// function copies nothing out of it after returning.
let scratch = new Uint8Array(4096);

function ensureScratch(n: number): Uint8Array {
  if (scratch.length < n) {
    let size = scratch.length;
    while (size < n) size *= 2;
    scratch = new Uint8Array(size);
  }
  return scratch;
}

function assertHash(h: Uint8Array, what: string): void {
  if (!(h instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
  if (h.length !== HASH_SIZE) throw new RangeError(`${what} must be ${HASH_SIZE} bytes, got ${h.length}`);
}

/**
 * Leaf hash of one entry: SHA-256(0x00 ‖ entry) (RFC 9162 §2.1.1). The 0x00 prefix keeps leaf
 * hashes disjoint from node hashes (0x01), so an interior node can never be passed off as a leaf.
 * @throws TypeError if `entry` is not a Uint8Array
 */
export function leafHash(entry: Uint8Array): Uint8Array {
  if (!(entry instanceof Uint8Array)) throw new TypeError('entry must be a Uint8Array');
  const n = entry.length + 1;
  const buf = ensureScratch(n);
  buf[0] = 0x00;
  buf.set(entry, 1);
  return sha256Impl(buf.subarray(0, n));
}

/**
 * Interior node hash: SHA-256(0x01 ‖ left ‖ right) (RFC 9162 §2.1.1).
 * @throws RangeError if either input is not 32 bytes
 */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  assertHash(left, 'left');
  assertHash(right, 'right');
  const buf = ensureScratch(65);
  buf[0] = 0x01;
  buf.set(left, 1);
  buf.set(right, 33);
  return sha256Impl(buf.subarray(0, 65));
}

/**
 * Chain step: chain_i = SHA-256(chain_{i-1} ‖ leaf_i), where leaf_i is the 32-byte LEAF HASH of
 * entry i (not the raw entry, so the chain costs one extra 64-byte hash per entry instead of
 * re-hashing the entry). The first entry uses `chainSeed(origin)` as chain_{-1}.
 * @throws RangeError if either input is not 32 bytes
 */
export function chainHash(prev: Uint8Array, leaf: Uint8Array): Uint8Array {
  assertHash(prev, 'prev');
  assertHash(leaf, 'leaf');
  const buf = ensureScratch(64);
  buf.set(prev, 0);
  buf.set(leaf, 32);
  return sha256Impl(buf.subarray(0, 64));
}

const CHAIN_SEED_LABEL = new TextEncoder().encode('sealtrail-chain-v1\n');

/**
 * chain_{-1} for the log named `origin`: SHA-256(0x02 ‖ "sealtrail-chain-v1" ‖ 0x0A ‖ UTF-8(origin)).
 * Why not 32 zero bytes: binding the origin makes every chain value specific to one log, so entries
 * copied from another origin's log fail the chain check at their first entry, before any Merkle
 * or signature work. The 0x02 prefix keeps the seed disjoint from leaf (0x00) and node (0x01)
 * hash inputs (RFC 9162 §2.1.1 domain separation, extended).
 * @throws TypeError if `origin` is not a string
 */
export function chainSeed(origin: string): Uint8Array {
  if (typeof origin !== 'string') throw new TypeError('origin must be a string');
  const o = new TextEncoder().encode(origin);
  const buf = new Uint8Array(1 + CHAIN_SEED_LABEL.length + o.length);
  buf[0] = 0x02;
  buf.set(CHAIN_SEED_LABEL, 1);
  buf.set(o, 1 + CHAIN_SEED_LABEL.length);
  return sha256Impl(buf);
}

/**
 * Byte equality of two hashes. Hashes in the ledger are public, so this need not be constant
 * time; it is anyway (XOR-accumulate) so that nobody has to check whether a caller compares secrets.
 */
export function hashEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= (a[i] as number) ^ (b[i] as number);
  return d === 0;
}

/** Lower-case hex of `b`. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/**
 * Bytes of a hex string (upper or lower case, even length).
 * @throws RangeError naming the problem if `s` is not hex
 */
export function fromHex(s: string): Uint8Array {
  if (typeof s !== 'string' || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw new RangeError('expected an even-length hex string');
  }
  return new Uint8Array(Buffer.from(s, 'hex'));
}

const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard base64 with padding (RFC 4648 §4), as C2SP signed notes and checkpoints use it. */
export function base64Encode(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

/**
 * Decode standard padded base64 (RFC 4648 §4) strictly: only the standard alphabet, correct
 * padding, and canonical (unused trailing bits zero, so exactly one text per byte string — two
 * spellings of one signature or root would let a note "parse differently than it was signed").
 * Returns null instead of throwing: callers turn that into their own precise error.
 */
export function base64DecodeStrict(s: string): Uint8Array | null {
  if (typeof s !== 'string' || s.length % 4 !== 0 || !B64_RE.test(s)) return null;
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64') !== s) return null;
  return new Uint8Array(b);
}
