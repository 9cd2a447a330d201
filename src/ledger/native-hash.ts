/**
 * Batch SHA-256 for the ledger's hot path, through a small native addon (native/sealtrail_hash.c,
 * built by scripts/build-native.mjs at `npm ci`) with a pure node:crypto fallback.
 *
 * Why: each entry costs three SHA-256 calls (leaf, chain, ~one Merkle node) and, on Node 20.20,
 * `crypto.hash` costs ~2.2 µs per call for 64 bytes and ~2.8 µs for 300 bytes — the binding
 * overhead, not SHA-256 (~0.2–0.5 µs with SHA-NI), dominates. One native call per batch hashes
 * every entry of the batch with OpenSSL's SHA-256 (the copy inside the node binary). Numbers:
 * docs/benchmarks.md "Native batch hashing".
 *
 * The addon is optional: when build/Release/sealtrail_hash.node is missing, fails to load, or
 * fails the self-check below, every function here computes the same bytes with src/ledger/hash.ts
 * and merkle.ts. `SEALTRAIL_NATIVE_HASH=0` forces the fallback (benchmarks, tests).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { crc32cUpdate } from './crc32c.js';
import { HASH_SIZE, chainHash, hashEqual, leafHash } from './hash.js';
import { Frontier } from './merkle.js';

interface Addon {
  leafChainBatch(data: Uint8Array, spans: Uint32Array, prevChain: Uint8Array, outLeaves: Uint8Array, outChains: Uint8Array): void;
  frontierAppend(frontier: Uint8Array, leaves: Uint8Array): Uint8Array;
  frameBatch(buf: Uint8Array, spans: Uint32Array, prevChain: Uint8Array, outLeaves: Uint8Array, outChains: Uint8Array): void;
  crc32c(data: Uint8Array, start: number, end: number, crc: number): number;
}

/**
 * Leaf and chain hashes of a batch, without the addon. Entry i is `data[spans[2i], spans[2i+1])`;
 * leaf_i = SHA-256(0x00 ‖ entry_i) goes to `outLeaves[32i..]`, chain_i = SHA-256(chain_{i-1} ‖ leaf_i)
 * (chain_{-1} = prevChain) to `outChains[32i..]`.
 * @throws RangeError if prevChain is not 32 bytes, spans is odd or out of range, or an output is too small
 */
export function leafChainBatchJs(
  data: Uint8Array,
  spans: Uint32Array,
  prevChain: Uint8Array,
  outLeaves: Uint8Array,
  outChains: Uint8Array,
): void {
  const n = checkBatch(data, spans, prevChain, outLeaves, outChains);
  let chain = prevChain;
  for (let i = 0; i < n; i++) {
    const leaf = leafHash(data.subarray(spans[2 * i]!, spans[2 * i + 1]!));
    chain = chainHash(chain, leaf);
    outLeaves.set(leaf, HASH_SIZE * i);
    outChains.set(chain, HASH_SIZE * i);
  }
}

/**
 * Frontier bytes (merkle.ts `Frontier.toBytes` format) after appending the 32-byte leaf hashes
 * concatenated in `leaves`, without the addon.
 * @throws RangeError if the frontier bytes are malformed or leaves is not a multiple of 32 bytes
 */
export function frontierAppendJs(frontier: Uint8Array, leaves: Uint8Array): Uint8Array {
  if (leaves.length % HASH_SIZE !== 0) throw new RangeError('leaves must be a multiple of 32 bytes');
  const f = Frontier.fromBytes(frontier);
  for (let o = 0; o < leaves.length; o += HASH_SIZE) f.append(leaves.subarray(o, o + HASH_SIZE));
  return f.toBytes();
}

function checkBatch(data: Uint8Array, spans: Uint32Array, prevChain: Uint8Array, outLeaves: Uint8Array, outChains: Uint8Array): number {
  if (prevChain.length !== HASH_SIZE) throw new RangeError('prevChain must be 32 bytes');
  if (spans.length % 2 !== 0) throw new RangeError('spans must hold (start, end) pairs');
  const n = spans.length / 2;
  if (outLeaves.length < HASH_SIZE * n || outChains.length < HASH_SIZE * n) {
    throw new RangeError('outLeaves and outChains need 32 bytes per entry');
  }
  for (let i = 0; i < n; i++) {
    if (spans[2 * i]! > spans[2 * i + 1]! || spans[2 * i + 1]! > data.length) throw new RangeError(`span ${i} lies outside data`);
  }
  return n;
}

/** Candidate addon paths: from src/ledger/ (vitest) and dist/src/ledger/ (compiled) to the package root. */
const CANDIDATES = ['../../build/Release/sealtrail_hash.node', '../../../build/Release/sealtrail_hash.node'];

function loadAddon(): { addon: Addon | undefined; status: string } {
  if (process.env.SEALTRAIL_NATIVE_HASH === '0') return { addon: undefined, status: 'disabled by SEALTRAIL_NATIVE_HASH=0' };
  const file = CANDIDATES.map((p) => fileURLToPath(new URL(p, import.meta.url))).find((p) => existsSync(p));
  if (file === undefined) return { addon: undefined, status: 'build/Release/sealtrail_hash.node not built' };
  try {
    const addon = createRequire(import.meta.url)(file) as Addon;
    // Self-check against the JS definitions before trusting it with the ledger: a wrongly built
    // addon must cost speed, never correctness.
    const data = new TextEncoder().encode('sealtrail native self-check');
    const spans = Uint32Array.of(0, 5, 5, data.length, 3, 3);
    const prev = new Uint8Array(HASH_SIZE).fill(7);
    const got = [new Uint8Array(96), new Uint8Array(96)] as const;
    const want = [new Uint8Array(96), new Uint8Array(96)] as const;
    addon.leafChainBatch(data, spans, prev, got[0], got[1]);
    leafChainBatchJs(data, spans, prev, want[0], want[1]);
    const f = Frontier.empty().toBytes();
    if (!hashEqual(got[0], want[0]) || !hashEqual(got[1], want[1])
      || !hashEqual(addon.frontierAppend(f, want[0]), frontierAppendJs(f, want[0]))) {
      return { addon: undefined, status: `${file} failed the self-check` };
    }
    // CRC-32C over every length 0..600 at every alignment 0..7, against the JS tables.
    const crcData = new Uint8Array(608).map((_, i) => (i * 131 + 7) & 0xff);
    for (let a = 0; a < 8; a++) {
      for (let len = 0; len <= 600; len += len < 24 ? 1 : 37) {
        if (addon.crc32c(crcData, a, a + len, 0x1234) !== crc32cUpdate(0x1234, crcData, a, a + len)) {
          return { addon: undefined, status: `${file} failed the CRC-32C self-check` };
        }
      }
    }
    return { addon, status: `native (${file})` };
  } catch (e) {
    return { addon: undefined, status: `${file} did not load: ${e instanceof Error ? e.message : String(e)}` };
  }
}

const loaded = loadAddon();

/** True when the native addon is in use. */
export const nativeHashLoaded: boolean = loaded.addon !== undefined;
/** Which implementation is in use and, for the fallback, why (for one debug log line at start). */
export const nativeHashStatus: string = loaded.status;

/**
 * {@link leafChainBatchJs} in one native call when the addon is loaded (same bytes either way).
 * @throws RangeError as leafChainBatchJs
 */
export function leafChainBatch(
  data: Uint8Array,
  spans: Uint32Array,
  prevChain: Uint8Array,
  outLeaves: Uint8Array,
  outChains: Uint8Array,
): void {
  if (loaded.addon) loaded.addon.leafChainBatch(data, spans, prevChain, outLeaves, outChains);
  else leafChainBatchJs(data, spans, prevChain, outLeaves, outChains);
}

/**
 * The addon's frameBatch when it is loaded (segment-format.ts `finishFrames` wraps it with the JS
 * fallback): leafChainBatch, then len, ~len, chain and CRC-32C of every frame written in place.
 */
export const nativeFrameBatch: Addon['frameBatch'] | undefined = loaded.addon?.frameBatch;

/** The addon's CRC-32C (SSE4.2 where the CPU has it) when loaded: crc32c(data, start, end, crc). */
export const nativeCrc32c: Addon['crc32c'] | undefined = loaded.addon?.crc32c;

/**
 * {@link frontierAppendJs} in one native call when the addon is loaded (same bytes either way).
 * @throws RangeError as frontierAppendJs
 */
export function frontierAppend(frontier: Uint8Array, leaves: Uint8Array): Uint8Array {
  return loaded.addon ? loaded.addon.frontierAppend(frontier, leaves) : frontierAppendJs(frontier, leaves);
}
