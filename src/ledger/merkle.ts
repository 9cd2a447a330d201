/**
 * The log's Merkle tree, exactly as RFC 9162 §2.1 (= RFC 6962 §2.1) defines it: leaf hash
 * SHA-256(0x00 ‖ entry), node hash SHA-256(0x01 ‖ left ‖ right), split at the largest power of
 * two smaller than n. Pure: no I/O, no clocks.
 *
 * Three things live here:
 * - `Frontier`: the right frontier (a compact range [0, size)): the roots of the perfect subtrees
 *   that the binary representation of `size` cuts the tree into. A writer keeps it to get the root
 *   in O(log n) per append; a segment stores the frontier at its start so that a verifier can check
 *   that one segment alone (its root before = previous checkpoint, its root after = this checkpoint).
 * - Proof generation over a `TreeSlice` (frontier at `start` + the leaf hashes from `start` on).
 *   Every audit-path or consistency-path node that lies entirely left of `start` is either one of
 *   the frontier's subtrees or a union of them (the RFC recursion only ever produces aligned
 *   left children), so proofs for leaves of one segment need nothing but that segment.
 * - Proof verification, transcribed from RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency).
 */
import { EMPTY_ROOT, HASH_SIZE, hashEqual, nodeHash } from './hash.js';

const MAX_SIZE = Number.MAX_SAFE_INTEGER;

function isSize(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** Largest power of two strictly smaller than n (n ≥ 2): the RFC 9162 §2.1.1 split point k. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function popcount(n: number): number {
  let c = 0;
  while (n > 0) {
    if (n % 2 === 1) c++;
    n = Math.floor(n / 2);
  }
  return c;
}

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

/** Sizes of the frontier's perfect subtrees for a tree of `size` leaves, largest first. */
function subtreeSizes(size: number): number[] {
  const out: number[] = [];
  let bit = 1;
  while (bit * 2 <= size) bit *= 2;
  let rest = size;
  for (; bit >= 1 && rest > 0; bit /= 2) {
    if (rest >= bit) {
      out.push(bit);
      rest -= bit;
    }
  }
  return out;
}

/** Byte length of a serialised frontier for a tree of `size` leaves: 8 + 32·popcount(size). */
export function frontierByteLength(size: number): number {
  if (!isSize(size)) throw new RangeError(`tree size must be a safe non-negative integer, got ${String(size)}`);
  return 8 + HASH_SIZE * popcount(size);
}

/**
 * The right frontier of a Merkle tree of `size` leaves: one root per set bit of `size`, largest
 * (leftmost) subtree first. Enough to compute the tree's root and to keep appending.
 */
export class Frontier {
  #size: number;
  #hashes: Uint8Array[];

  private constructor(size: number, hashes: Uint8Array[]) {
    this.#size = size;
    this.#hashes = hashes;
  }

  /** The frontier of the empty tree. */
  static empty(): Frontier {
    return new Frontier(0, []);
  }

  /**
   * A frontier from its subtree roots (largest first); `hashes.length` must equal popcount(size).
   * @throws RangeError if the size or the number or length of hashes is wrong
   */
  static fromSubtrees(size: number, hashes: readonly Uint8Array[]): Frontier {
    if (!isSize(size)) throw new RangeError(`frontier size must be a safe non-negative integer, got ${String(size)}`);
    const want = popcount(size);
    if (hashes.length !== want) {
      throw new RangeError(`a frontier of size ${size} has ${want} subtree hashes, got ${hashes.length}`);
    }
    return new Frontier(
      size,
      hashes.map((h, i) => {
        if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) {
          throw new RangeError(`frontier subtree hash ${i} must be ${HASH_SIZE} bytes`);
        }
        return h.slice();
      }),
    );
  }

  /**
   * Parse the serialisation written by `toBytes`: u64 big-endian size ‖ popcount(size) × 32-byte
   * subtree roots, largest first. Strict: the length must match the size exactly.
   * @throws RangeError naming what is wrong (too short, size too large, length mismatch)
   */
  static fromBytes(bytes: Uint8Array): Frontier {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('frontier bytes must be a Uint8Array');
    if (bytes.length < 8) throw new RangeError(`frontier is ${bytes.length} bytes; at least 8 (the size) are required`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const big = view.getBigUint64(0, false);
    if (big > BigInt(MAX_SIZE)) throw new RangeError(`frontier size ${big} exceeds 2^53-1`);
    const size = Number(big);
    const want = frontierByteLength(size);
    if (bytes.length !== want) {
      throw new RangeError(`frontier of size ${size} must be ${want} bytes, got ${bytes.length}`);
    }
    // One private copy, viewed per root: the ledger parses a frontier after every group commit, and a
    // slice per root was an ArrayBuffer (with its own backing store for the GC to track) each.
    const copy = bytes.slice(8, want);
    const hashes: Uint8Array[] = [];
    for (let off = 0; off < copy.length; off += HASH_SIZE) hashes.push(copy.subarray(off, off + HASH_SIZE));
    return new Frontier(size, hashes);
  }

  /** Number of leaves covered. */
  get size(): number {
    return this.#size;
  }

  /** Copies of the subtree roots, largest (leftmost) first. */
  get subtrees(): readonly Uint8Array[] {
    return this.#hashes.map((h) => h.slice());
  }

  /**
   * Append one leaf hash: merge equal-sized subtrees while the size's low bits are set (the same
   * carry as incrementing a binary counter). Amortised O(1), worst case O(log n) node hashes.
   * @throws RangeError if `leafHash` is not 32 bytes or the tree is full (2^53-1 leaves)
   */
  append(leafHash: Uint8Array): void {
    if (!(leafHash instanceof Uint8Array) || leafHash.length !== HASH_SIZE) {
      throw new RangeError(`leaf hash must be ${HASH_SIZE} bytes`);
    }
    if (this.#size >= MAX_SIZE) throw new RangeError('tree size would exceed 2^53-1');
    let cur: Uint8Array = leafHash.slice();
    let s = this.#size;
    while (s % 2 === 1) {
      cur = nodeHash(this.#hashes.pop() as Uint8Array, cur);
      s = (s - 1) / 2;
    }
    this.#hashes.push(cur);
    this.#size += 1;
  }

  /**
   * MTH(D[0:size]): fold the subtree roots right to left. Because the RFC splits at the largest
   * power of two, the leftmost subtree is the left child of the root, and so on down the right edge.
   */
  root(): Uint8Array {
    const h = this.#hashes;
    if (h.length === 0) return EMPTY_ROOT.slice();
    let r = h[h.length - 1] as Uint8Array;
    for (let j = h.length - 2; j >= 0; j--) r = nodeHash(h[j] as Uint8Array, r);
    return r.slice();
  }

  /** An independent copy. */
  clone(): Frontier {
    return new Frontier(this.#size, this.#hashes.map((h) => h.slice()));
  }

  /** Serialise: u64 big-endian size ‖ subtree roots (largest first). */
  toBytes(): Uint8Array {
    const out = new Uint8Array(8 + HASH_SIZE * this.#hashes.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(this.#size), false);
    this.#hashes.forEach((h, i) => out.set(h, 8 + i * HASH_SIZE));
    return out;
  }

  /** Same size and same subtree roots. */
  equals(other: Frontier): boolean {
    if (other.size !== this.#size) return false;
    const o = other.#hashes;
    return this.#hashes.every((h, i) => hashEqual(h, o[i] as Uint8Array));
  }
}

/**
 * Root of the tree a frontier describes (bytes are parsed with `Frontier.fromBytes`). A verifier
 * checks "previous checkpoint root == rootFromFrontier(segment's start frontier)".
 * @throws RangeError if the bytes are not a valid frontier
 */
export function rootFromFrontier(f: Frontier | Uint8Array): Uint8Array {
  return (f instanceof Frontier ? f : Frontier.fromBytes(f)).root();
}

/**
 * MTH of a list of leaf hashes (RFC 9162 §2.1.1), EMPTY_ROOT for an empty list.
 * @throws RangeError if a leaf hash is not 32 bytes
 */
export function merkleRoot(leafHashes: readonly Uint8Array[]): Uint8Array {
  const f = Frontier.empty();
  for (const h of leafHashes) f.append(h);
  return f.root();
}

/**
 * What a prover holds: the frontier of the tree at `start = frontier.size` and the leaf hashes
 * of indices start, start+1, … . The full tree is `fullSlice(allLeafHashes)`. Do not mutate
 * `leafHashes` after handing a slice to a proof function (intermediate hashes are cached per slice).
 */
export interface TreeSlice {
  readonly frontier: Frontier;
  readonly leafHashes: readonly Uint8Array[];
}

/** A slice holding the whole tree: the empty frontier plus every leaf hash. */
export function fullSlice(leafHashes: readonly Uint8Array[]): TreeSlice {
  return { frontier: Frontier.empty(), leafHashes };
}

/** Computes MTH(D[a:b]) from a slice, caching every range it computes. */
class SliceHasher {
  readonly start: number;
  readonly end: number;
  readonly #leaves: readonly Uint8Array[];
  // frontier subtree start → [end, hash]
  readonly #spans = new Map<number, { end: number; hash: Uint8Array }>();
  readonly #cache = new Map<string, Uint8Array>();

  constructor(slice: TreeSlice) {
    this.start = slice.frontier.size;
    this.end = this.start + slice.leafHashes.length;
    this.#leaves = slice.leafHashes;
    const sizes = subtreeSizes(this.start);
    const hashes = slice.frontier.subtrees;
    let a = 0;
    sizes.forEach((sz, i) => {
      this.#spans.set(a, { end: a + sz, hash: hashes[i] as Uint8Array });
      a += sz;
    });
  }

  /** MTH(D[a:b]), 0 ≤ a < b. Throws RangeError when the slice lacks what that range needs. */
  range(a: number, b: number): Uint8Array {
    if (b > this.end) {
      throw new RangeError(`leaves up to index ${b - 1} are needed but the slice ends at ${this.end - 1}`);
    }
    if (a < this.start) {
      // Left of the slice only the frontier's subtrees (and unions of them) are known.
      const span = this.#spans.get(a);
      if (span === undefined || span.end > b) {
        throw new RangeError(`subtree [${a}, ${b}) lies left of the slice start ${this.start} and is not in its frontier`);
      }
      if (span.end === b) return span.hash;
    }
    if (b - a === 1) {
      const leaf = this.#leaves[a - this.start];
      if (leaf === undefined || leaf.length !== HASH_SIZE) throw new RangeError(`leaf hash ${a} must be ${HASH_SIZE} bytes`);
      return leaf;
    }
    const key = `${a}:${b}`;
    const hit = this.#cache.get(key);
    if (hit !== undefined) return hit;
    const k = splitPoint(b - a);
    const h = nodeHash(this.range(a, a + k), this.range(a + k, b));
    this.#cache.set(key, h);
    return h;
  }
}

const hashers = new WeakMap<TreeSlice, SliceHasher>();

function hasherFor(slice: TreeSlice): SliceHasher {
  let h = hashers.get(slice);
  if (h === undefined) {
    h = new SliceHasher(slice);
    hashers.set(slice, h);
  }
  return h;
}

/**
 * MTH(D[0:size]) computed from a slice (`size` up to the slice's end).
 * @throws RangeError if the slice does not hold what is needed
 */
export function sliceRoot(size: number, slice: TreeSlice): Uint8Array {
  if (!isSize(size)) throw new RangeError(`tree size must be a safe non-negative integer, got ${String(size)}`);
  if (size === 0) return EMPTY_ROOT.slice();
  return hasherFor(slice).range(0, size).slice();
}

/**
 * Audit path of leaf `index` in the tree of `size` leaves (RFC 9162 §2.1.3.1 PATH), sibling
 * nearest the leaf first. Works on a segment-local slice when `slice.frontier.size ≤ index < size ≤
 * slice end`.
 * @throws RangeError if index ≥ size or the slice lacks the leaves or subtrees needed
 */
export function inclusionProof(index: number, size: number, slice: TreeSlice): Uint8Array[] {
  if (!isSize(index) || !isSize(size) || index >= size) {
    throw new RangeError(`inclusion proof needs 0 ≤ index < size, got index ${String(index)}, size ${String(size)}`);
  }
  const h = hasherFor(slice);
  const out: Uint8Array[] = [];
  // PATH(m, D[lo:hi]); siblings are pushed after the recursion, i.e. bottom-up.
  const path = (lo: number, hi: number): void => {
    if (hi - lo <= 1) return;
    const k = splitPoint(hi - lo);
    if (index < lo + k) {
      path(lo, lo + k);
      out.push(h.range(lo + k, hi).slice());
    } else {
      path(lo + k, hi);
      out.push(h.range(lo, lo + k).slice());
    }
  };
  path(0, size);
  return out;
}

/**
 * Consistency proof between tree sizes m and n (RFC 9162 §2.1.4.1 PROOF / SUBPROOF). Empty for
 * m = 0 and m = n. Works on a segment-local slice when `slice.frontier.size ≤ m ≤ n ≤ slice end`.
 * @throws RangeError if m > n or the slice lacks what is needed
 */
export function consistencyProof(m: number, n: number, slice: TreeSlice): Uint8Array[] {
  if (!isSize(m) || !isSize(n) || m > n) {
    throw new RangeError(`consistency proof needs 0 ≤ m ≤ n, got m ${String(m)}, n ${String(n)}`);
  }
  if (m === 0 || m === n) return [];
  const h = hasherFor(slice);
  const out: Uint8Array[] = [];
  // SUBPROOF(mm, D[lo:hi], b), mm relative to lo.
  const sub = (mm: number, lo: number, hi: number, b: boolean): void => {
    const len = hi - lo;
    if (mm === len) {
      if (!b) out.push(h.range(lo, hi).slice());
      return;
    }
    const k = splitPoint(len);
    if (mm <= k) {
      sub(mm, lo, lo + k, b);
      out.push(h.range(lo + k, hi).slice());
    } else {
      sub(mm - k, lo + k, hi, false);
      out.push(h.range(lo, lo + k).slice());
    }
  };
  sub(m, 0, n, true);
  return out;
}

function validPath(path: unknown): path is readonly Uint8Array[] {
  return Array.isArray(path) && path.every((p) => p instanceof Uint8Array && p.length === HASH_SIZE);
}

const half = (x: number): number => Math.floor(x / 2);
const odd = (x: number): boolean => x % 2 === 1;

/**
 * The root that an audit path implies for `leafHash` at `index` in a tree of `size` leaves
 * (RFC 9162 §2.1.3.2 steps 1–4, without the final comparison), or null when the proof is
 * malformed (index ≥ size, wrong length, non-32-byte element). Never throws.
 */
export function rootFromInclusionProof(
  leafHash: Uint8Array,
  index: number,
  size: number,
  path: readonly Uint8Array[],
): Uint8Array | null {
  if (!(leafHash instanceof Uint8Array) || leafHash.length !== HASH_SIZE) return null;
  if (!isSize(index) || !isSize(size) || index >= size || !validPath(path)) return null;
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leafHash;
  for (const p of path) {
    if (sn === 0) return null; // path longer than the tree is high
    if (odd(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!odd(fn)) {
        // fn is a right-edge node with no right sibling at these levels: climb until it has one.
        while (!odd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) return null; // path shorter than the tree is high
  return r;
}

/**
 * RFC 9162 §2.1.3.2: does `path` prove `leafHash` at `index` in the tree of `size` leaves with
 * root `root`? Malformed input gives false, never an exception.
 */
export function verifyInclusion(
  leafHash: Uint8Array,
  index: number,
  size: number,
  path: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  const r = rootFromInclusionProof(leafHash, index, size, path);
  return r !== null && root instanceof Uint8Array && hashEqual(r, root);
}

/**
 * RFC 9162 §2.1.4.2: does `proof` show that the tree of size m with root `rootM` is a prefix of
 * the tree of size n with root `rootN`? m = n needs an empty proof and equal roots; m = 0 needs an
 * empty proof and rootM = EMPTY_ROOT (the empty tree is a prefix of every tree). Never throws.
 */
export function verifyConsistency(
  m: number,
  n: number,
  rootM: Uint8Array,
  rootN: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  if (!isSize(m) || !isSize(n) || m > n || !validPath(proof)) return false;
  if (!(rootM instanceof Uint8Array) || !(rootN instanceof Uint8Array)) return false;
  if (rootM.length !== HASH_SIZE || rootN.length !== HASH_SIZE) return false;
  if (m === 0) return proof.length === 0 && hashEqual(rootM, EMPTY_ROOT);
  if (m === n) return proof.length === 0 && hashEqual(rootM, rootN);
  if (proof.length === 0) return false;
  // Step 2: when m is a power of two, the old root is itself a node of the new tree and is not sent.
  const path = isPowerOfTwo(m) ? [rootM, ...proof] : [...proof];
  let fn = m - 1;
  let sn = n - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0] as Uint8Array;
  let sr = fr;
  for (let i = 1; i < path.length; i++) {
    const c = path[i] as Uint8Array;
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && hashEqual(fr, rootM) && hashEqual(sr, rootN);
}
