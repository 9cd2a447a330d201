/**
 * Reused buffers for OTLP/HTTP request bodies that arrive in more than one socket read (the large
 * ones: a 1,000-record protobuf request is ≈ 370 KB, six or more reads; a 100-record JSON one ≈ 70 KB).
 *
 * Why: such a body used to be joined with Buffer.concat into a fresh ArrayBuffer per request. V8
 * frees ArrayBuffers only when a garbage collection finds them dead and lets them pile up to its
 * external-memory limit between collections, so under 1,000-record requests the joined bodies were a
 * good part of the agent's resident memory — and its peak RSS is a target of issue 7 (≤ 150 MB),
 * with little room left. Measured on an agent pinned as in the benchmark, 1,000-record OTLP/HTTP
 * protobuf requests, 8 in flight, 12 s (docs/benchmarks.md "Where the time goes", session 9): peak RSS
 * 106.8 and 107.2 MiB before, 94.2 and 95.9 MiB with the pool; external memory 34.0/32.8 → 23.6 MiB.
 * (gRPC messages up to 64 KiB are pooled the same way in slabs, src/receiver/grpc-wire.ts.)
 *
 * The contract (as EntryArena's in src/otlp/wire.ts): `takeBody` hands out a buffer; the caller gives
 * it back with `giveBody` only when nothing reads the body any more — the HTTP receiver after the
 * request's decode and append are finished (the decoder copies what it keeps into the entry arena).
 * Bounded: at most POOL_BYTES are kept; a body larger than MAX_POOLED is allocated on its own and
 * never pooled. In tests (SEALTRAIL_ARENA_POISON=1, as for the slabs) given-back buffers are overwritten, so a
 * read after `giveBody` shows as altered bytes.
 */
import { POOL_POISON } from '../otlp/index.js';


/** Smallest buffer handed out (bodies of two 64 KiB socket reads fit). */
export const MIN_CLASS = 128 * 1024;
/** Largest buffer kept for reuse; larger bodies (up to max_request_body_size) are one-offs. */
export const MAX_POOLED = 4 * 1024 * 1024;
/**
 * Most bytes kept in the pool in all. 4 MiB was measured worse (bench harness VmHWM 178.4 and 171.1 MB
 * against 145.6 and 154.2 MB with 16 MiB; docs/benchmarks.md session 9). The likely reason, not measured
 * on its own: 64 JSON bodies of 128 KiB in flight need 8 MiB, so with 4 MiB most were fresh allocations.
 */
export const POOL_BYTES = 16 * 1024 * 1024;

const free = new Map<number, ArrayBuffer[]>();
/** The buffers in `free`: a buffer given back twice would otherwise be handed to two requests. */
const inPool = new WeakSet<ArrayBuffer>();
let pooledBytes = 0;

/** Capacity class of a body of `n` bytes: a power of two ≥ MIN_CLASS. */
function classOf(n: number): number {
  let c = MIN_CLASS;
  while (c < n) c *= 2;
  return c;
}

/** Bodies above MAX_POOLED, allocated at their exact size and never pooled (giveBody only poisons them). */
const oneOff = new WeakSet<ArrayBuffer>();

/** A Buffer of exactly `n` bytes, not zero-filled (the caller writes all of it), from the pool when it can. */
export function takeBody(n: number): Buffer {
  const c = classOf(n);
  if (c > MAX_POOLED) {
    // Exactly n: rounding a body of up to max_request_body_size up to a power of two could nearly double it.
    const big = Buffer.allocUnsafeSlow(n);
    oneOff.add(big.buffer as ArrayBuffer);
    return big;
  }
  const ab = free.get(c)?.pop();
  if (ab !== undefined) {
    inPool.delete(ab);
    pooledBytes -= c;
    return Buffer.from(ab, 0, n);
  }
  // allocUnsafeSlow: an ArrayBuffer of its own (never node's shared pool), so it can be reused whole.
  return Buffer.from(Buffer.allocUnsafeSlow(c).buffer, 0, n);
}

/** Gives back a buffer from takeBody; nothing may read or write it afterwards. */
export function giveBody(body: Buffer): void {
  const ab = body.buffer as ArrayBuffer;
  if (oneOff.has(ab)) {
    oneOff.delete(ab);
    if (POOL_POISON) new Uint8Array(ab).fill(0xdb);
    return;
  }
  const c = ab.byteLength;
  if (body.byteOffset !== 0 || c !== classOf(c) || c > MAX_POOLED) throw new Error('giveBody: not a buffer from takeBody');
  if (inPool.has(ab)) throw new Error('giveBody: buffer given back twice');
  if (POOL_POISON) new Uint8Array(ab).fill(0xdb);
  if (pooledBytes + c > POOL_BYTES) return;
  let list = free.get(c);
  if (list === undefined) free.set(c, (list = []));
  list.push(ab);
  inPool.add(ab);
  pooledBytes += c;
}

/** Bytes held by the pool now (tests, metrics). */
export function pooledBodyBytes(): number {
  return pooledBytes;
}
