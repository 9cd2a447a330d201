/*
 * Batch SHA-256 for the ledger hot path (src/ledger/native-hash.ts explains why).
 * One N-API call hashes a whole batch: per-call binding overhead of crypto.hash (~2 µs) dominated
 * the ~0.3 µs of actual SHA-256 work per record. Hash definitions: RFC 9162 §2.1.1 (leaf 0x00,
 * node 0x01) and DESIGN.md "Chain" (chain_i = SHA-256(chain_{i-1} ‖ leaf_i)).
 * SHA-256 itself: with the x86 SHA extensions, native/sha256_ni.h (leaves two at a time; chosen at
 * load, SEALTRAIL_SHA_NI=0 turns it off); otherwise OpenSSL's, exported by the node binary (no
 * separate OpenSSL is linked).
 * Also here, because they share the addon's build and loading: the ledger's file I/O jobs
 * (writeDurable, fileOps, mapRange, the commit writer), the OTLP/protobuf decoder's LogRecord check
 * (native/otlp_check.h; src/otlp/decode-protobuf.ts explains why) and its entry assembly
 * (assembleEntries; src/otlp/wire.ts explains why).
 */
#ifdef __linux__
#define _GNU_SOURCE /* O_DIRECT */
#endif
#define NAPI_VERSION 8
#include <node_api.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "crc32c.h"
#include "sha256_ni.h"
#include "otlp_check.h"
#if defined(__unix__) || defined(__APPLE__)
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>
#define SEALTRAIL_MMAP 1
#endif
#ifdef __linux__
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <uv.h>
#include <time.h>
#ifndef IOV_MAX
#define IOV_MAX 1024 /* Linux's UIO_MAXIOV; limits.h names it only with _XOPEN_SOURCE */
#endif
#define SEALTRAIL_COMMIT 1
#endif

#define THROW(env, msg) do { napi_throw_range_error((env), NULL, (msg)); return NULL; } while (0)

/* Borrow the bytes of a Uint8Array (or, for want_u32, a Uint32Array). Returns 0 on mismatch. */
static int bytes_of(napi_env env, napi_value v, int want_u32, void **data, size_t *len) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return 0;
  napi_typedarray_type t;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &t, len, data, &ab, &off) != napi_ok) return 0;
  if (want_u32 ? t != napi_uint32_array : t != napi_uint8_array) return 0;
  return 1;
}

/* 1 when the SHA-NI code of sha256_ni.h is used (CPU support, SEALTRAIL_SHA_NI not "0"); set at load. */
static int use_sha_ni = 0;

static void leaf_hash(const uint8_t *entry, size_t n, uint8_t out[32]) {
#ifdef SEALTRAIL_SHA_NI
  if (use_sha_ni) {
    sha256ni_leaf(entry, n, out);
    return;
  }
#endif
  static const uint8_t zero = 0x00;
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, &zero, 1);
  SHA256_Update(&c, entry, n);
  SHA256_Final(out, &c);
}

/* SHA-256([prefix] ‖ a ‖ b). SHA256_Init/Update/Final rather than the one-shot SHA256(): in
 * OpenSSL 3 the one-shot goes through EVP_Q_digest (an algorithm fetch per call): measured here,
 * leaf+chain per 300-byte entry 787 -> 378 ns and a frontier append 455 -> 129 ns. */
static void pair_hash(const uint8_t *prefix, const uint8_t a[32], const uint8_t b[32], uint8_t out[32]) {
#ifdef SEALTRAIL_SHA_NI
  if (use_sha_ni && (prefix == NULL || *prefix == 0x01)) {
    if (prefix == NULL) sha256ni_pair(a, b, out);
    else sha256ni_node(a, b, out);
    return;
  }
#endif
  uint8_t buf[65];
  size_t k = 0;
  if (prefix) buf[k++] = *prefix;
  memcpy(buf + k, a, 32);
  memcpy(buf + k + 32, b, 32);
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, buf, k + 64);
  SHA256_Final(out, &c);
}

/* Two leaf hashes that do not depend on each other (two lanes with SHA-NI). */
static void leaf_hash_x2(const uint8_t *e0, size_t n0, uint8_t out0[32], const uint8_t *e1, size_t n1, uint8_t out1[32]) {
#ifdef SEALTRAIL_SHA_NI
  if (use_sha_ni) {
    sha256ni_leaf_x2(e0, n0, out0, e1, n1, out1);
    return;
  }
#endif
  leaf_hash(e0, n0, out0);
  leaf_hash(e1, n1, out1);
}

/* Arguments shared by leafChainBatch and frameBatch: (data, spans, prevChain, outLeaves, outChains). */
typedef struct {
  uint8_t *data, *prev, *leaves, *chains;
  uint32_t *spans;
  size_t data_len, n;
} batch_args;

/* Parses and checks the five arguments; throws (returns 0) with `name` in the message. */
static int batch_args_of(napi_env env, napi_callback_info info, const char *name, batch_args *a) {
  size_t argc = 5;
  napi_value argv[5];
  size_t spans_len, prev_len, leaves_len, chains_len;
  const char *why = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5) why = "needs 5 arguments";
  else if (!bytes_of(env, argv[0], 0, (void **)&a->data, &a->data_len)) why = "data must be a Uint8Array";
  else if (!bytes_of(env, argv[1], 1, (void **)&a->spans, &spans_len)) why = "spans must be a Uint32Array";
  else if (!bytes_of(env, argv[2], 0, (void **)&a->prev, &prev_len) || prev_len != 32) why = "prevChain must be a 32-byte Uint8Array";
  else if (!bytes_of(env, argv[3], 0, (void **)&a->leaves, &leaves_len)) why = "outLeaves must be a Uint8Array";
  else if (!bytes_of(env, argv[4], 0, (void **)&a->chains, &chains_len)) why = "outChains must be a Uint8Array";
  else if (spans_len % 2 != 0) why = "spans must hold (start, end) pairs";
  else if (leaves_len < 32 * (spans_len / 2) || chains_len < 32 * (spans_len / 2)) why = "outLeaves and outChains need 32 bytes per entry";
  if (why) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s: %s", name, why);
    napi_throw_range_error(env, NULL, msg);
    return 0;
  }
  a->n = spans_len / 2;
  return 1;
}

/*
 * leaf and chain values of entry i (entry = data[spans[2i], spans[2i+1])) and, with SHA-NI, of
 * entry i+1 too: their leaf hashes are independent and are computed together (sha256_ni.h says
 * why); the chain values follow in order. Returns how many entries it did (1 or 2).
 */
static size_t leaf_chain_step(const batch_args *a, size_t i) {
  size_t count = 1;
  uint32_t s = a->spans[2 * i], e = a->spans[2 * i + 1];
#ifdef SEALTRAIL_SHA_NI
  if (use_sha_ni && i + 1 < a->n) {
    uint32_t s1 = a->spans[2 * i + 2], e1 = a->spans[2 * i + 3];
    sha256ni_leaf_x2(a->data + s, e - s, a->leaves + 32 * i, a->data + s1, e1 - s1, a->leaves + 32 * i + 32);
    count = 2;
  } else
#endif
    leaf_hash(a->data + s, e - s, a->leaves + 32 * i);
  for (size_t j = i; j < i + count; j++) pair_hash(NULL, j == 0 ? a->prev : a->chains + 32 * (j - 1), a->leaves + 32 * j, a->chains + 32 * j);
  return count;
}

/*
 * leafChainBatch(data: Uint8Array, spans: Uint32Array, prevChain: Uint8Array(32),
 *                outLeaves: Uint8Array(32n), outChains: Uint8Array(32n)): undefined
 * Entry i is data[spans[2i], spans[2i+1]); entries need not be contiguous (they can sit inside
 * encoded frames). leaf_i = SHA-256(0x00 ‖ entry_i); chain_i = SHA-256(chain_{i-1} ‖ leaf_i).
 */
static napi_value leaf_chain_batch(napi_env env, napi_callback_info info) {
  batch_args a;
  if (!batch_args_of(env, info, "leafChainBatch", &a)) return NULL;
  for (size_t i = 0; i < a.n; i++) {
    uint32_t s = a.spans[2 * i], e = a.spans[2 * i + 1];
    if (s > e || e > a.data_len) THROW(env, "span outside data");
  }
  for (size_t i = 0; i < a.n;) i += leaf_chain_step(&a, i);
  return NULL;
}

static int popcount64(uint64_t x) {
  int c = 0;
  while (x) { x &= x - 1; c++; }
  return c;
}

/*
 * frontierAppend(frontier: Uint8Array, leaves: Uint8Array(32n)): Uint8Array
 * frontier bytes = u64 BE size ‖ popcount(size) × 32-byte subtree roots, largest first
 * (src/ledger/merkle.ts). Returns the frontier after appending the n leaf hashes; merging
 * follows RFC 9162 §2.1.1 (node = SHA-256(0x01 ‖ left ‖ right)).
 */
static napi_value frontier_append(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) THROW(env, "frontierAppend needs 2 arguments");
  uint8_t *fr, *leaves;
  size_t fr_len, leaves_len;
  if (!bytes_of(env, argv[0], 0, (void **)&fr, &fr_len) || fr_len < 8) THROW(env, "frontier must be a Uint8Array of at least 8 bytes");
  if (!bytes_of(env, argv[1], 0, (void **)&leaves, &leaves_len) || leaves_len % 32 != 0) THROW(env, "leaves must be a Uint8Array of 32-byte hashes");
  uint64_t size = 0;
  for (int i = 0; i < 8; i++) size = (size << 8) | fr[i];
  size_t n = leaves_len / 32;
  if (size > 9007199254740991ULL || n > 9007199254740991ULL - size) THROW(env, "tree size beyond 2^53-1");
  int k = popcount64(size);
  if (fr_len != 8 + 32 * (size_t)k) THROW(env, "frontier length does not match its size");
  uint8_t stack[64][32];
  memcpy(stack, fr + 8, 32 * (size_t)k);
  static const uint8_t one = 0x01;
  for (size_t i = 0; i < n; i++) {
    memcpy(stack[k++], leaves + 32 * i, 32);
    for (uint64_t s = size; s & 1; s >>= 1) {
      pair_hash(&one, stack[k - 2], stack[k - 1], stack[k - 2]);
      k--;
    }
    size++;
  }
  napi_value ab, out;
  void *p;
  size_t out_len = 8 + 32 * (size_t)k;
  if (napi_create_arraybuffer(env, out_len, &p, &ab) != napi_ok) return NULL;
  uint8_t *o = p;
  for (int i = 0; i < 8; i++) o[i] = (uint8_t)(size >> (56 - 8 * i));
  memcpy(o + 8, stack, 32 * (size_t)k);
  if (napi_create_typedarray(env, napi_uint8_array, out_len, ab, 0, &out) != napi_ok) return NULL;
  return out;
}

/* Largest entry a frame may carry: src/ledger/segment-format.ts MAX_ENTRY_BYTES (1 GiB). */
#define MAX_ENTRY_BYTES (1u << 30)

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/*
 * frameBatch(buf: Uint8Array, spans: Uint32Array, prevChain: Uint8Array(32),
 *            outLeaves: Uint8Array(32n), outChains: Uint8Array(32n)): undefined
 * leafChainBatch, then finishes every frame in place (docs/format.md "Frames"): entry i already
 * sits at buf[spans[2i], spans[2i+1]) with its frame starting 40 bytes before it; writes len and
 * ~len (big-endian), chain_i, and the CRC-32C of [frame start, entry end) after the entry. Same bytes
 * as src/ledger/segment-format.ts finishFrame; one call per group commit instead of a JS CRC loop.
 */
static napi_value frame_batch(napi_env env, napi_callback_info info) {
  batch_args a;
  if (!batch_args_of(env, info, "frameBatch", &a)) return NULL;
  for (size_t i = 0; i < a.n; i++) {
    uint32_t s = a.spans[2 * i], e = a.spans[2 * i + 1];
    if (s < 40 || s > e || (size_t)e + 4 > a.data_len) THROW(env, "frame span outside buf");
    if (e - s > MAX_ENTRY_BYTES) THROW(env, "entry exceeds the 1 GiB frame limit");
  }
  for (size_t i = 0; i < a.n;) {
    /* Hash first (one or two entries), then finish those frames: a frame's head and CRC lie
     * outside every entry, so writing them cannot change what the next entry hashes to. */
    size_t done = leaf_chain_step(&a, i);
    for (size_t j = i; j < i + done; j++) {
      uint32_t s = a.spans[2 * j], e = a.spans[2 * j + 1], len = e - s;
      uint8_t *frame = a.data + s - 40;
      put_be32(frame, len);
      put_be32(frame + 4, ~len);
      memcpy(frame + 8, a.chains + 32 * j, 32);
      put_be32(a.data + e, crc32c_update(0, frame, 40 + (size_t)len));
    }
    i += done;
  }
  return NULL;
}

#define TRAILER_MARKER 0xffffffffu
#define FRONTIER_CAP 64

static uint32_t get_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Result codes of scanFrames (src/ledger/native-hash.ts SCAN_*). */
enum { SCAN_NEED_MORE = 0, SCAN_TRAILER = 1, SCAN_BAD_LENGTH = 2, SCAN_BAD_CRC = 3, SCAN_BAD_CHAIN = 4, SCAN_LIMIT = 5 };

/* frame_at's "the frame can be taken" (not one of the SCAN_* codes). */
#define FRAME_OK (-1)

/*
 * The checks on the frame at buf[off, end) that need no hashing, in the order SegmentParser makes
 * them: FRAME_OK with its entry length in *n_out, or NEED_MORE, TRAILER, BAD_LENGTH or BAD_CRC.
 */
static int frame_at(const uint8_t *buf, uint32_t off, uint32_t end, uint32_t *n_out) {
  if (end - off < 4) return SCAN_NEED_MORE;
  uint32_t n = get_be32(buf + off);
  if (n == TRAILER_MARKER) return SCAN_TRAILER;
  if (end - off < 8) return SCAN_NEED_MORE;
  if (get_be32(buf + off + 4) != ~n || n > MAX_ENTRY_BYTES) return SCAN_BAD_LENGTH;
  if ((uint64_t)(end - off) < 44 + (uint64_t)n) return SCAN_NEED_MORE;
  if (crc32c_update(0, buf + off, 40 + (size_t)n) != get_be32(buf + off + 40 + n)) return SCAN_BAD_CRC;
  *n_out = n;
  return FRAME_OK;
}

/*
 * scanFrames(buf: Uint8Array, start: number, end: number, chain: Uint8Array(32),
 *            frontier: Uint8Array(8 + 64·32), limit: number, out: Uint32Array(2)): number
 * The verifier's inner loop (src/verify/frame-scan.ts): walks the frames lying back to back in
 * buf[start, end) IN PLACE and, for each, does exactly what SegmentParser does (docs/format.md
 * "Frames"): len and ~len agree and len <= MAX_ENTRY_BYTES, CRC-32C of [frame start, entry end)
 * equals the stored one, leaf = SHA-256(0x00 ‖ entry), chain' = SHA-256(chain ‖ leaf) equals the
 * stored chain value; then appends the leaf to the Merkle frontier (RFC 9162 §2.1.1 node hash).
 * `chain` (the chain value before the next frame) and `frontier` (u64 BE size ‖ popcount(size)
 * subtree roots, largest first = merkle.ts Frontier.toBytes, in a buffer with room for 64) are
 * updated in place for every frame accepted.
 * Stops before the first frame that is not accepted and returns why: NEED_MORE (fewer bytes than
 * it needs), TRAILER (the trailer marker), BAD_LENGTH, BAD_CRC (checked before the chain, as the
 * parser does), BAD_CHAIN; or LIMIT after the frame that brought the tree size to `limit` (-1 = no
 * limit; the caller wants the root at that size). out[0] = offset of the first frame not accepted,
 * out[1] = frames accepted. One call per chunk: no per-frame JS, no copies. Where the next frame is
 * complete too, two frames are hashed at once (their leaves in two SHA-NI lanes, their chain checks
 * back to back); what is accepted and where it stops are the same as one frame at a time.
 */
static napi_value scan_frames(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 7) THROW(env, "scanFrames needs 7 arguments");
  uint8_t *buf, *chain, *fr;
  uint32_t *out;
  size_t buf_len, chain_len, fr_len, out_len;
  uint32_t start, end;
  double limit;
  if (!bytes_of(env, argv[0], 0, (void **)&buf, &buf_len)) THROW(env, "buf must be a Uint8Array");
  if (napi_get_value_uint32(env, argv[1], &start) != napi_ok || napi_get_value_uint32(env, argv[2], &end) != napi_ok) THROW(env, "start and end must be numbers");
  if (!bytes_of(env, argv[3], 0, (void **)&chain, &chain_len) || chain_len != 32) THROW(env, "chain must be a 32-byte Uint8Array");
  if (!bytes_of(env, argv[4], 0, (void **)&fr, &fr_len) || fr_len < 8 + 32 * FRONTIER_CAP) THROW(env, "frontier must be a Uint8Array of 8 + 64*32 bytes");
  if (napi_get_value_double(env, argv[5], &limit) != napi_ok) THROW(env, "limit must be a number");
  if (!bytes_of(env, argv[6], 1, (void **)&out, &out_len) || out_len < 2) THROW(env, "out must be a Uint32Array of 2");
  if (start > end || end > buf_len) THROW(env, "range outside buf");
  uint64_t size = 0;
  for (int i = 0; i < 8; i++) size = (size << 8) | fr[i];
  if (size > 9007199254740991ULL) THROW(env, "tree size beyond 2^53-1");
  int k = popcount64(size);
  uint8_t (*stack)[32] = (uint8_t (*)[32])(fr + 8);
  static const uint8_t one = 0x01;
  uint32_t off = start, frames = 0;
  int status = SCAN_NEED_MORE;
  uint8_t leaf[32], next[32], leaf_b[32], next_b[32];
/* Takes a frame whose chain value checked out: chain and frontier move on, off to its end. */
#define SCAN_ACCEPT(lf, nx, frame_end) do { \
    memcpy(chain, (nx), 32); \
    memcpy(stack[k++], (lf), 32); \
    for (uint64_t s = size; s & 1; s >>= 1) { \
      pair_hash(&one, stack[k - 2], stack[k - 1], stack[k - 2]); \
      k--; \
    } \
    size++; \
    off = (frame_end); \
    frames++; \
  } while (0)
  for (;;) {
    uint32_t n, n_b;
    status = frame_at(buf, off, end, &n);
    if (status != FRAME_OK) break;
    const uint8_t *frame = buf + off;
    uint32_t off_b = off + 44 + n;
    /* When the next frame is complete and its CRC right too, the two leaves are hashed together
     * (sha256_ni.h: two leaf hashes in one instruction stream). The second frame's chain value is
     * checked against the one stored in the first, which is the computed one once the first has
     * passed; whatever is wrong with the second is found again when it comes first. */
    if ((limit < 0 || (double)size + 2 <= limit) && frame_at(buf, off_b, end, &n_b) == FRAME_OK) {
      const uint8_t *frame_b = buf + off_b;
      leaf_hash_x2(frame + 40, n, leaf, frame_b + 40, n_b, leaf_b);
      pair_hash(NULL, chain, leaf, next);
      pair_hash(NULL, frame + 8, leaf_b, next_b);
      if (memcmp(next, frame + 8, 32) != 0) { status = SCAN_BAD_CHAIN; break; }
      SCAN_ACCEPT(leaf, next, off_b);
      if (memcmp(next_b, frame_b + 8, 32) != 0) { status = SCAN_BAD_CHAIN; break; }
      SCAN_ACCEPT(leaf_b, next_b, off_b + 44 + n_b);
    } else {
      leaf_hash(frame + 40, n, leaf);
      pair_hash(NULL, chain, leaf, next);
      if (memcmp(next, frame + 8, 32) != 0) { status = SCAN_BAD_CHAIN; break; }
      SCAN_ACCEPT(leaf, next, off_b);
    }
    if (limit >= 0 && (double)size == limit) { status = SCAN_LIMIT; break; }
  }
#undef SCAN_ACCEPT
  for (int i = 0; i < 8; i++) fr[i] = (uint8_t)(size >> (56 - 8 * i));
  out[0] = off;
  out[1] = frames;
  napi_value ret;
  if (napi_create_int32(env, status, &ret) != napi_ok) return NULL;
  return ret;
}

/* crc32c(data: Uint8Array, start: number, end: number, crc: number): number — continues crc over data[start, end). */
static napi_value crc32c_js(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) THROW(env, "crc32c needs 4 arguments");
  uint8_t *data;
  size_t len;
  uint32_t s, e, crc;
  if (!bytes_of(env, argv[0], 0, (void **)&data, &len)) THROW(env, "data must be a Uint8Array");
  if (napi_get_value_uint32(env, argv[1], &s) != napi_ok || napi_get_value_uint32(env, argv[2], &e) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &crc) != napi_ok) THROW(env, "start, end and crc must be numbers");
  if (s > e || e > len) THROW(env, "range outside data");
  napi_value out;
  if (napi_create_uint32(env, crc32c_update(crc, data + s, e - s), &out) != napi_ok) return NULL;
  return out;
}

#ifdef SEALTRAIL_MMAP
/*
 * mapRange(fd: number, offset: number, length: number): ArrayBuffer
 * The bytes [offset, offset+length) of an open file as an ArrayBuffer backed by a private mapping
 * (mmap MAP_PRIVATE, copy-on-write: a stray write changes only this process's copy). Why: reading
 * a segment with read(2) copies it from the page cache, measured ~0.45 s of system CPU per GiB here
 * against ~0.03 s for mapping it — a quarter of the verifier's CPU (docs/benchmarks.md "Verify").
 * `offset` must be a multiple of the page size and the range inside the file: a file that shrinks
 * while mapped raises SIGBUS, so the caller maps only sealed (immutable) segments.
 * The caller MUST release it with unmapRange: there is deliberately no finalizer, because Node runs
 * external-buffer finalizers late (in a worker thread, measured: not before the thread ended), and
 * mappings left to them would pile up (RSS, and vm.max_map_count on a large log).
 */
static napi_value map_range(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) THROW(env, "mapRange needs 3 arguments");
  int32_t fd;
  int64_t off, len;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &off) != napi_ok ||
      napi_get_value_int64(env, argv[2], &len) != napi_ok) THROW(env, "fd, offset and length must be numbers");
  long page = sysconf(_SC_PAGESIZE);
  if (fd < 0 || off < 0 || len < 1 || (page > 0 && off % page != 0)) THROW(env, "mapRange: bad fd, offset (page-aligned) or length");
  void *p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, (off_t)off);
  if (p == MAP_FAILED) {
    char msg[160];
    snprintf(msg, sizeof msg, "mapRange: mmap of %lld bytes at offset %lld failed: %s", (long long)len, (long long)off, strerror(errno));
    THROW(env, msg);
  }
  madvise(p, (size_t)len, MADV_SEQUENTIAL);
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, (size_t)len, NULL, NULL, &ab) != napi_ok) {
    munmap(p, (size_t)len);
    THROW(env, "mapRange: external ArrayBuffers are not available in this runtime");
  }
  return ab;
}

/*
 * unmapRange(buffer: ArrayBuffer): detaches a mapRange buffer (JS can no longer reach its bytes:
 * its length becomes 0) and unmaps it. Only for buffers from mapRange, once each.
 */
static napi_value unmap_range_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) THROW(env, "unmapRange needs 1 argument");
  void *p = NULL;
  size_t len = 0;
  if (napi_get_arraybuffer_info(env, argv[0], &p, &len) != napi_ok) THROW(env, "unmapRange: not an ArrayBuffer");
  if (p == NULL || len == 0) return NULL; /* already detached */
  if (napi_detach_arraybuffer(env, argv[0]) != napi_ok) THROW(env, "unmapRange: not a detachable ArrayBuffer");
  munmap(p, len);
  return NULL;
}
#endif


#ifdef SEALTRAIL_COMMIT
/*
 * writeDurable(fd: number, bufs: Uint8Array[], position: number, datasync: boolean): Promise<void>
 * A write made durable as ONE libuv thread-pool job (the ledger's seal trailer; group commits use the
 * commit writer below): pwritev of the buffers back to back from
 * `position` (looping over short writes and IOV_MAX), then fdatasync when `datasync`. Why: with
 * node:fs the write and the fdatasync are two jobs, and each completion waits for the main thread
 * to come round the event loop before the next step can start — under load one loop turn is
 * several milliseconds of request decoding (docs/benchmarks.md "Ledger"). Errors reject with an
 * Error shaped like node:fs's (code, errno, syscall). EINTR is retried; no other error is: after a
 * failed fdatasync the page cache may have dropped the dirty pages, so the ledger fails (G1).
 */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep; /* the bufs array: keeps the buffers (and their memory) alive until completion */
  int fd;
  int datasync;
  int64_t position;
  size_t n;
  struct iovec *iov;
  int err;             /* errno of the failed step, 0 on success */
  const char *syscall; /* which step failed */
  int64_t drop_to;     /* syncDrop: the end of the range to drop (from is `position`) */
  const char *name;    /* the JS function, for a job that never ran */
} commit_job;

/*
 * Writes the iovecs back to back from `pos`, continuing after short writes (in the middle of a
 * buffer too) and in steps of at most IOV_MAX; retries EINTR. Returns 0, or the errno of the failed
 * pwritev (EIO when it made no progress without an error). Advances the iovecs it was given.
 */
static int write_iov_all(int fd, struct iovec *iov, size_t n, off_t pos) {
  size_t i = 0;
  while (i < n && iov[i].iov_len == 0) i++;
  while (i < n) {
    int cnt = (n - i) > IOV_MAX ? IOV_MAX : (int)(n - i);
    ssize_t w = pwritev(fd, iov + i, cnt, pos);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO; /* no progress and no error: do not spin */
    pos += w;
    size_t left = (size_t)w;
    while (left > 0 && i < n) {
      if (left >= iov[i].iov_len) {
        left -= iov[i].iov_len;
        i++;
      } else {
        iov[i].iov_base = (uint8_t *)iov[i].iov_base + left;
        iov[i].iov_len -= left;
        left = 0;
      }
    }
    while (i < n && iov[i].iov_len == 0) i++;
  }
  return 0;
}

/*
 * The iovecs of a JS array of n Uint8Arrays (borrowed memory), as a calloc'd array; *bytes gets their
 * total length. Returns NULL when an element is not a Uint8Array (*oom 0) or memory ran out (*oom 1).
 */
static struct iovec *iov_of(napi_env env, napi_value arr, uint32_t n, size_t *bytes, int *oom) {
  *oom = 0;
  *bytes = 0;
  struct iovec *iov = calloc(n > 0 ? n : 1, sizeof *iov);
  if (iov == NULL) {
    *oom = 1;
    return NULL;
  }
  for (uint32_t k = 0; k < n; k++) {
    napi_value b;
    void *p;
    size_t len;
    if (napi_get_element(env, arr, k, &b) != napi_ok || !bytes_of(env, b, 0, &p, &len)) {
      free(iov);
      return NULL;
    }
    iov[k].iov_base = p;
    iov[k].iov_len = len;
    *bytes += len;
  }
  return iov;
}

/*
 * Asks the kernel to drop the page-cache pages that lie wholly in [from, to) of fd (posix_fadvise
 * DONTNEED: clean pages are freed at once). Only for bytes already made durable by an fdatasync; the
 * page `to` ends in is kept, since the next append goes into it (dropped, that append would first
 * read it back from the disk). Why: the agent reads what it appends only once more, to forward a
 * sealed segment, so keeping it cached costs the node memory (in a container, the pod's memory) for
 * little; and pages freed here are reused by the next writes while still mapped by the host, where
 * fresh pages cost far more on a VM whose free memory is handed back to the host (docs/benchmarks.md,
 * session 18). Advice only: its result cannot change what is durable, so it is not reported.
 */
static long page_size = 0; /* set once in init(), before any thread-pool job can run */

static void drop_durable_pages(int fd, int64_t from, int64_t to) {
  const long page = page_size;
  if (page <= 0 || from < 0) return;
  from = from / page * page; /* the bytes before `from` in its page are durable as well */
  to = to / page * page;
  if (to > from) (void)posix_fadvise(fd, (off_t)from, (off_t)(to - from), POSIX_FADV_DONTNEED);
}

static void commit_execute(napi_env env, void *data) {
  (void)env;
  commit_job *j = data;
  j->err = write_iov_all(j->fd, j->iov, j->n, (off_t)j->position);
  if (j->err != 0) {
    j->syscall = "pwritev";
    return;
  }
  if (j->datasync) {
    int r;
    do r = fdatasync(j->fd); while (r < 0 && errno == EINTR);
    if (r < 0) {
      j->err = errno;
      j->syscall = "fdatasync";
    }
  }
}

/*
 * Settles a job's promise: resolved when `e` is 0, else rejected with an Error shaped like node:fs's
 * ("CODE: description, syscall 'path' -> 'dest'", with code, errno, syscall, path and dest set).
 */
static void settle(napi_env env, napi_deferred deferred, int e, const char *sys, const char *path, const char *dest) {
  napi_value v;
  if (e == 0) {
    napi_get_undefined(env, &v);
    napi_resolve_deferred(env, deferred, v);
    return;
  }
  size_t cap = 256 + (path ? strlen(path) : 0) + (dest ? strlen(dest) : 0);
  char *msg = malloc(cap);
  if (msg != NULL) {
    int n = snprintf(msg, cap, "%s: %s, %s", uv_err_name(-e), uv_strerror(-e), sys);
    if (path && n > 0 && (size_t)n < cap) n += snprintf(msg + n, cap - (size_t)n, " '%s'", path);
    if (dest && n > 0 && (size_t)n < cap) snprintf(msg + n, cap - (size_t)n, " -> '%s'", dest);
  }
  napi_value code, message, err;
  napi_create_string_utf8(env, uv_err_name(-e), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg ? msg : "out of memory", NAPI_AUTO_LENGTH, &message);
  free(msg);
  napi_create_error(env, code, message, &err);
  napi_create_int32(env, -e, &v);
  napi_set_named_property(env, err, "errno", v);
  napi_create_string_utf8(env, sys, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "syscall", v);
  if (path) {
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, err, "path", v);
  }
  if (dest) {
    napi_create_string_utf8(env, dest, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, err, "dest", v);
  }
  napi_reject_deferred(env, deferred, err);
}

static void commit_complete(napi_env env, napi_status status, void *data) {
  commit_job *j = data;
  if (status == napi_ok) settle(env, j->deferred, j->err, j->syscall, NULL, NULL);
  else settle(env, j->deferred, ECANCELED, j->name, NULL, NULL);
  napi_delete_reference(env, j->keep);
  napi_delete_async_work(env, j->work);
  free(j->iov);
  free(j);
}

/*
 * Makes the promise a job settles, keeps `keep` (the JS array holding the job's buffers) alive, and
 * queues the job on the libuv thread pool. Returns the promise, or NULL when the runtime refused
 * (out of memory only; the caller frees the job and throws).
 */
static napi_value queue_job(napi_env env, napi_value keep, const char *name, napi_async_execute_callback execute,
                            napi_async_complete_callback complete, void *job, napi_deferred *deferred, napi_ref *ref,
                            napi_async_work *work) {
  napi_value promise, resource_name;
  if (napi_create_promise(env, deferred, &promise) != napi_ok || napi_create_reference(env, keep, 1, ref) != napi_ok ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_async_work(env, NULL, resource_name, execute, complete, job, work) != napi_ok ||
      napi_queue_async_work(env, *work) != napi_ok) {
    return NULL;
  }
  return promise;
}

static napi_value write_durable(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) THROW(env, "writeDurable needs 4 arguments");
  int32_t fd;
  int64_t position;
  bool datasync, is_array;
  uint32_t n;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) THROW(env, "writeDurable: fd must be a non-negative integer");
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[1], &n) != napi_ok) THROW(env, "writeDurable: bufs must be an array of Uint8Array");
  if (napi_get_value_int64(env, argv[2], &position) != napi_ok || position < 0) THROW(env, "writeDurable: position must be a non-negative integer");
  if (napi_get_value_bool(env, argv[3], &datasync) != napi_ok) THROW(env, "writeDurable: datasync must be a boolean");
  commit_job *j = calloc(1, sizeof *j);
  if (j == NULL) THROW(env, "writeDurable: out of memory");
  size_t total;
  int oom;
  j->iov = iov_of(env, argv[1], n, &total, &oom);
  if (j->iov == NULL) {
    free(j);
    THROW(env, oom ? "writeDurable: out of memory" : "writeDurable: bufs must be an array of Uint8Array");
  }
  j->fd = fd;
  j->n = n;
  j->position = position;
  j->datasync = datasync;
  j->name = "writeDurable";
  napi_value promise = queue_job(env, argv[1], "sealtrail.writeDurable", commit_execute, commit_complete, j, &j->deferred, &j->keep, &j->work);
  if (promise == NULL) {
    /* Only reachable when the runtime is out of memory; the deferred (if made) is left pending. */
    free(j->iov);
    free(j);
    THROW(env, "writeDurable: could not queue the job");
  }
  return promise;
}

/*
 * syncDrop(fd: number, from: number, to: number): Promise<void> — fdatasync(fd), then drops the whole
 * pages of [from, to) from the page cache (drop_durable_pages). For durability none's background
 * fdatasync, whose bytes are not needed in memory either once on disk. Rejects like writeDurable when
 * the fdatasync fails; nothing is dropped then.
 */
static void sync_drop_execute(napi_env env, void *data) {
  (void)env;
  commit_job *j = data;
  int r;
  do r = fdatasync(j->fd); while (r < 0 && errno == EINTR);
  if (r < 0) {
    j->err = errno;
    j->syscall = "fdatasync";
    return;
  }
  drop_durable_pages(j->fd, j->position, j->drop_to);
}

static napi_value sync_drop(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], keep;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) THROW(env, "syncDrop needs 3 arguments");
  int32_t fd;
  int64_t from, to;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) THROW(env, "syncDrop: fd must be a non-negative integer");
  if (napi_get_value_int64(env, argv[1], &from) != napi_ok || from < 0) THROW(env, "syncDrop: from must be a non-negative integer");
  if (napi_get_value_int64(env, argv[2], &to) != napi_ok || to < 0) THROW(env, "syncDrop: to must be a non-negative integer");
  if (napi_create_object(env, &keep) != napi_ok) THROW(env, "syncDrop: out of memory");
  commit_job *j = calloc(1, sizeof *j);
  if (j == NULL) THROW(env, "syncDrop: out of memory");
  j->fd = fd;
  j->position = from;
  j->drop_to = to;
  j->name = "syncDrop";
  napi_value promise = queue_job(env, keep, "sealtrail.syncDrop", sync_drop_execute, commit_complete, j, &j->deferred, &j->keep, &j->work);
  if (promise == NULL) {
    free(j);
    THROW(env, "syncDrop: could not queue the job");
  }
  return promise;
}

/*
 * fileOps(ops: [code, string, string | Uint8Array | undefined][]): Promise<void>
 * A short sequence of the ledger's file steps run in order as ONE thread-pool job, stopping at the
 * first error: 1 = rename(from, to); 2 = fsync of a directory (open O_RDONLY|O_DIRECTORY, fsync,
 * close); 3 = write a whole file (open O_WRONLY|O_CREAT|O_TRUNC 0644, write all, fsync, close).
 * Why: a seal publishes head.checkpoint, the checkpoint file, the sealed segment and the next one
 * with renames and directory fsyncs in an order recovery relies on; through node:fs each step (and
 * each open/fsync/close of a directory) waited for a turn of the busy event loop — 9-40 ms per seal
 * under load. The order is built in JS (src/ledger/file-ops.ts), which also runs the same list
 * through LedgerFs when a test injects one. Errors reject like node:fs's (code, errno, syscall,
 * path, dest) and name the step.
 */
enum { OP_RENAME = 1, OP_FSYNC_DIR = 2, OP_WRITE_FILE = 3 };

typedef struct {
  int code;
  char *a;
  char *b;
  const uint8_t *data;
  size_t len;
} file_op;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep; /* the ops array: keeps the data buffers alive until completion */
  size_t n;
  file_op *ops;
  int err;
  size_t failed; /* index of the failed op */
  const char *syscall;
} ops_job;

static void ops_free(ops_job *j) {
  for (size_t k = 0; k < j->n; k++) {
    free(j->ops[k].a);
    free(j->ops[k].b);
  }
  free(j->ops);
  free(j);
}

/* Closes fd; returns the first error: `err` when a step before failed, else close's own (no retry on EINTR: Linux frees the fd anyway). */
static int close_keep(int fd, int err) {
  int r = close(fd);
  return err != 0 ? err : (r < 0 ? errno : 0);
}

static void ops_execute(napi_env env, void *data) {
  (void)env;
  ops_job *j = data;
  for (size_t k = 0; k < j->n; k++) {
    file_op *o = &j->ops[k];
    int r, e = 0;
    const char *sys = NULL;
    if (o->code == OP_RENAME) {
      if (rename(o->a, o->b) < 0) { e = errno; sys = "rename"; }
    } else if (o->code == OP_FSYNC_DIR) {
      int fd;
      do fd = open(o->a, O_RDONLY | O_DIRECTORY | O_CLOEXEC); while (fd < 0 && errno == EINTR);
      if (fd < 0) { e = errno; sys = "open"; }
      else {
        do r = fsync(fd); while (r < 0 && errno == EINTR);
        if (r < 0) { e = errno; sys = "fsync"; }
        int ce = close_keep(fd, e);
        if (e == 0 && ce != 0) { e = ce; sys = "close"; }
      }
    } else { /* OP_WRITE_FILE */
      int fd;
      do fd = open(o->a, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644); while (fd < 0 && errno == EINTR);
      if (fd < 0) { e = errno; sys = "open"; }
      else {
        struct iovec v = { (void *)o->data, o->len };
        e = write_iov_all(fd, &v, 1, 0);
        if (e != 0) sys = "write";
        if (e == 0) {
          do r = fsync(fd); while (r < 0 && errno == EINTR);
          if (r < 0) { e = errno; sys = "fsync"; }
        }
        int ce = close_keep(fd, e);
        if (e == 0 && ce != 0) { e = ce; sys = "close"; }
      }
    }
    if (e != 0) {
      j->err = e;
      j->failed = k;
      j->syscall = sys;
      return;
    }
  }
}

static void ops_complete(napi_env env, napi_status status, void *data) {
  ops_job *j = data;
  if (status != napi_ok) {
    settle(env, j->deferred, ECANCELED, "fileOps", NULL, NULL);
  } else if (j->err != 0) {
    file_op *o = &j->ops[j->failed];
    settle(env, j->deferred, j->err, j->syscall, o->a, o->code == OP_RENAME ? o->b : NULL);
  } else {
    settle(env, j->deferred, 0, NULL, NULL, NULL);
  }
  napi_delete_reference(env, j->keep);
  napi_delete_async_work(env, j->work);
  ops_free(j);
}

/* A JS string as a malloc'd NUL-terminated UTF-8 copy (NULL if not a string or it holds a NUL). */
static char *string_of(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s == NULL) return NULL;
  if (napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok || strlen(s) != len) {
    free(s);
    return NULL;
  }
  return s;
}

static napi_value file_ops(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool is_array;
  uint32_t n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) THROW(env, "fileOps needs 1 argument");
  if (napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &n) != napi_ok) THROW(env, "fileOps: ops must be an array");
  ops_job *j = calloc(1, sizeof *j);
  if (j == NULL) THROW(env, "fileOps: out of memory");
  j->ops = calloc(n > 0 ? n : 1, sizeof *j->ops);
  if (j->ops == NULL) {
    free(j);
    THROW(env, "fileOps: out of memory");
  }
  j->n = n;
  for (uint32_t k = 0; k < n; k++) {
    napi_value op, v;
    int32_t code;
    bool ok = napi_get_element(env, argv[0], k, &op) == napi_ok && napi_is_array(env, op, &is_array) == napi_ok && is_array &&
              napi_get_element(env, op, 0, &v) == napi_ok && napi_get_value_int32(env, v, &code) == napi_ok &&
              code >= OP_RENAME && code <= OP_WRITE_FILE && napi_get_element(env, op, 1, &v) == napi_ok &&
              (j->ops[k].a = string_of(env, v)) != NULL;
    if (ok) {
      j->ops[k].code = code;
      if (code == OP_RENAME) {
        ok = napi_get_element(env, op, 2, &v) == napi_ok && (j->ops[k].b = string_of(env, v)) != NULL;
      } else if (code == OP_WRITE_FILE) {
        void *p;
        ok = napi_get_element(env, op, 2, &v) == napi_ok && bytes_of(env, v, 0, &p, &j->ops[k].len);
        if (ok) j->ops[k].data = p;
      }
    }
    if (!ok) {
      ops_free(j);
      THROW(env, "fileOps: each op must be [1, from, to], [2, dir] or [3, path, Uint8Array] with paths free of NUL");
    }
  }
  napi_value promise = queue_job(env, argv[0], "sealtrail.fileOps", ops_execute, ops_complete, j, &j->deferred, &j->keep, &j->work);
  if (promise == NULL) {
    ops_free(j);
    THROW(env, "fileOps: could not queue the job");
  }
  return promise;
}

/*
 * The group commit's writer (commitWriter / cwSubmit / cwClose): the ledger submits each encoded
 * batch as soon as it is encoded; one thread-pool job at a time takes every batch submitted so far,
 * writes them at their positions and makes them durable with ONE fdatasync, reports that commit to
 * JS, and at once takes what was submitted meanwhile — without waiting for the main thread. Why: with
 * one writeDurable job per commit the next commit could only start once the main thread had noticed
 * the previous one, ≈ 3.6 ms later at full load while it decoded requests, and the disk sat idle
 * (docs/benchmarks.md, session 10). A commit's writes are not overlapped with the previous commit's
 * fdatasync: done on a second thread that cost as much as it won on the agent's one CPU, done on the
 * main thread it stalled the event loop (page-cache writes waiting up to 12 ms on ext4's journal) and
 * slowed gRPC (docs/benchmarks.md, session 17).
 *
 * Reports go through a thread-safe function, in commit order: onDone(firstId, lastId, errno, syscall,
 * seconds) — the submissions firstId..lastId are durable (errno 0), or failed. After a failure nothing
 * more is written: the failed commit's batches and everything submitted later are reported failed with
 * the same error, so no later batch can reach the disk ahead of an earlier one that did not (G1).
 * Buffers are only borrowed: the caller keeps them alive until their submission is reported.
 */
typedef struct cw_job {
  struct cw_job *next;
  uint32_t id;
  int fd;
  int64_t position;
  size_t n;
  size_t bytes;
  struct iovec *iov;
  /* Set by cw_write on the first job of a run it wrote through the page cache: the run's end (its
   * pages to drop once durable, cw_drop_synced); 0 for the other jobs and for runs written directly. */
  int64_t cached_to;
  /* CW_MORE; CW_FULL: no commit to this file follows but its last batch (the segment is full), so
   * no zeros are written ahead after this one; CW_LAST: the last write to this file (a seal's
   * trailer), which ends where this batch ends (cw_end_file). */
  uint32_t end;
} cw_job;
#define CW_MORE 0u
#define CW_FULL 1u
#define CW_LAST 2u

typedef struct {
  uint32_t first, last;
  int err;
  const char *syscall;
  double seconds;
} cw_report;

typedef struct {
  uv_mutex_t mu;
  cw_job *head, *tail; /* submitted, not yet taken by the job */
  int running;         /* a thread-pool job is (or is about to be) taking batches */
  int failed;          /* errno of the first failure (0: none) */
  const char *fail_syscall;
  int datasync;
  int closed;
  /* Direct writes (cw_write_direct), owned by the running job (one at a time) and by cw_release once no
   * job can run: whether to try them (cleared for good when the file system refuses O_DIRECT) and the
   * staging buffer; direct_bytes (atomic: read by cwDirectBytes on the main thread) counts what went
   * to the disk that way. */
  int direct;
  uint8_t *stage;
  uint64_t direct_bytes;
  /* The O_DIRECT descriptor of the file last written directly (cw_direct_fd), kept from commit to
   * commit — opening one through /proc/self/fd for every commit cost ≈ 1.7 % of the agent's core at
   * half load, when nearly every request has a commit of its own — with the descriptor it was opened
   * for and that file's device and inode; dfd is -1 when none is held. Owned like `stage`. */
  int dfd, dfd_of;
  dev_t dfd_dev;
  ino_t dfd_ino;
  /* Under mu: cwDropDirect asked for the held descriptor to be closed while a job was running. */
  int drop_dfd;
  /* Zero-filled space ahead of the commits (cw_zero_ahead), in the file of dfd and reset with it:
   * zeros_to is where the zeros written ahead end (0: none), last_end where the last commit to the
   * file ended, ahead whether to write more (the last commit was small; cleared for this descriptor
   * when a zero write fails). tail_block / tail_at: the block a padded direct write ended in (its bytes
   * after the commit are zeros), so that the next commit, which starts in it, needs no pread (the
   * direct write left nothing of it in the page cache); tail_at is -1 when none is kept. */
  int64_t zeros_to, last_end, tail_at;
  int64_t zero_ahead; /* the most zeros past the last commit's end (commitWriter's zeroAhead; 0: none) */
  double commit_avg;  /* bytes per commit, moving average over about the last 8 commits */
  int ahead, ahead_failed;
  uint8_t *zeros;
  uint8_t tail_block[4096];
  /* Main thread only: the report channel and the External both hold the writer; freed when both are
   * finalized (cwSubmit / cwClose may still be called with the External after the channel is gone). */
  int refs;
  /* Each thread-pool job holds a count on it until the job completes, so its finalizer runs only once
   * no job can touch the writer any more. */
  napi_threadsafe_function tsfn;
} commit_writer;

/* One thread-pool job of a writer (a new one each time the writer was idle). */
typedef struct {
  commit_writer *w;
  napi_async_work work;
} cw_run;

static double mono_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void cw_free_jobs(cw_job *j) {
  while (j != NULL) {
    cw_job *n = j->next;
    free(j->iov);
    free(j);
    j = n;
  }
}

/* Posts a report to JS (main thread). The report is freed by cw_call_js (or here if it cannot be queued). */
static void cw_post(commit_writer *w, uint32_t first, uint32_t last, int err, const char *sys, double seconds) {
  cw_report *r = malloc(sizeof *r);
  if (r == NULL) abort(); /* a durability report must never be lost */
  r->first = first;
  r->last = last;
  r->err = err;
  r->syscall = sys;
  r->seconds = seconds;
  /* The running job holds a count on the channel (cw_submit), so it is open here; never blocks (no queue limit). */
  if (napi_call_threadsafe_function(w->tsfn, r, napi_tsfn_blocking) != napi_ok) free(r);
}

/* After a commit's fdatasync: drops the pages each run written through the page cache filled
 * completely (drop_durable_pages). A run written directly left nothing there to drop: the direct
 * write bypassed the cache (and evicted the block before the run), and the block it ends in stays. */
static void cw_drop_synced(const cw_job *list) {
  for (const cw_job *j = list; j != NULL; j = j->next) {
    if (j->cached_to > 0) drop_durable_pages(j->fd, j->position, j->cached_to);
  }
}

/*
 * Direct writes, for a writer that makes each commit durable (durability fsync): a run of batches is
 * written with O_DIRECT, whole 4 KiB blocks at a time from a staging buffer, straight to the device;
 * only the block the run ends in, which it fills partly, goes through the page cache (a direct write
 * of it would pad the file). The commit's fdatasync then makes both durable (the file system flushes
 * the device's write cache on every fdatasync; O_DIRECT by itself promises nothing about that cache).
 * Why: through the page cache every byte is copied into page-cache pages and written back by the
 * kernel on the agent's one core — 0.70 ms of CPU per MB with the pages dropped after each commit
 * (session 18) against 0.12 ms direct, and this VM's disk took direct writes from a staging buffer in
 * huge pages faster, too (docs/benchmarks.md, session 19).
 *
 * A direct write starts at the boundary of the block the run starts in, so the bytes before the run
 * in that block (the previous commit's last block, or the segment's header) are read back (pread:
 * normally from the page cache, where that block was written) and written again, unchanged, in front
 * of the run. Whatever cannot be done directly — a run inside one block, a file system that refuses
 * O_DIRECT, a short read or write — is written through the page cache as before, which rewrites any
 * bytes already written directly with the same bytes.
 */
#define DIRECT_ALIGN ((int64_t)4096)
#define STAGE_BYTES ((size_t)4 << 20)

/* The writer's staging buffer (STAGE_BYTES, aligned to 2 MiB and in huge pages where the kernel
 * gives them: a direct write from 4 KiB pages scattered in memory went to this VM's disk in more,
 * smaller requests, at 214–238 MB/s against 354–412 MB/s), allocated on first use; NULL when out of memory. */
static uint8_t *cw_stage(commit_writer *w) {
  if (w->stage == NULL) {
    void *p = NULL;
    if (posix_memalign(&p, (size_t)2 << 20, STAGE_BYTES) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, STAGE_BYTES, MADV_HUGEPAGE);
#endif
    w->stage = p;
  }
  return w->stage;
}

/* Closes the held O_DIRECT descriptor, if any (by its owner: the running job, or anyone once none can run). */
static void cw_close_dfd(commit_writer *w) {
  if (w->dfd >= 0) close(w->dfd);
  w->dfd = -1;
  w->zeros_to = w->last_end = 0;
  w->tail_at = -1;
  w->ahead = w->ahead_failed = 0;
}

/*
 * An O_DIRECT descriptor for fd's file, or -1 when there is none to use: fd is not a regular file
 * open for writing without O_APPEND (the descriptor would write where fd could not), or the open
 * failed. The writer keeps it for the next commits (w->dfd): it is reused while fd still names the
 * same file (descriptor number, device and inode all checked on every commit, so a number the ledger
 * closed and reused for another file gets a new descriptor); otherwise the old one is closed and a
 * new one opened through /proc/self/fd. The ledger drops it when it closes a segment (cwDropDirect),
 * so a sealed file is not held open while the writer is idle.
 */
static int cw_direct_fd(commit_writer *w, int fd) {
  struct stat st;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY || (fl & O_APPEND) != 0) return -1;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  if (w->dfd >= 0 && w->dfd_of == fd && w->dfd_dev == st.st_dev && w->dfd_ino == st.st_ino) return w->dfd;
  cw_close_dfd(w);
  char proc[48];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  int d;
  do d = open(proc, O_WRONLY | O_DIRECT | O_CLOEXEC); while (d < 0 && errno == EINTR);
  if (d < 0) {
    if (errno == EINVAL) w->direct = 0; /* the file system has no O_DIRECT: the page cache from now on */
    return -1;
  }
  struct stat dst;
  if (fstat(d, &dst) != 0 || dst.st_dev != st.st_dev || dst.st_ino != st.st_ino) {
    close(d);
    return -1;
  }
  w->dfd = d;
  w->dfd_of = fd;
  w->dfd_dev = st.st_dev;
  w->dfd_ino = st.st_ino;
  return d;
}

/* cw_write_direct's writes through dfd, once it has the staging buffer and the descriptor. */
static int cw_write_direct_with(commit_writer *w, int dfd, int fd, uint8_t *stage, struct iovec *iov, size_t n, int64_t pos, int64_t end, int64_t a,
                                int64_t b, const char **sys) {
  size_t fill = (size_t)(pos - a);
  const int kept = w->tail_at == a;
  w->tail_at = -1; /* valid again only once this run's writes have succeeded */
  if (fill > 0 && kept) {
    memcpy(stage, w->tail_block, fill);
  } else if (fill > 0) {
    ssize_t r;
    do r = pread(fd, stage, fill, (off_t)a); while (r < 0 && errno == EINTR);
    if (r != (ssize_t)fill) return -1;
  }
  size_t i = 0, k = 0; /* the next byte of the run to stage: iov[i].iov_base + k */
  for (int64_t off = a; off < b;) {
    const size_t len = (size_t)(b - off) < STAGE_BYTES ? (size_t)(b - off) : STAGE_BYTES;
    while (fill < len) {
      if (i == n) { /* past the run's end (b > end): the zeros already on disk there */
        memset(stage + fill, 0, len - fill);
        fill = len;
        break;
      }
      size_t take = iov[i].iov_len - k;
      if (take > len - fill) take = len - fill;
      memcpy(stage + fill, (const uint8_t *)iov[i].iov_base + k, take);
      fill += take;
      k += take;
      if (k == iov[i].iov_len) {
        i++;
        k = 0;
      }
    }
    ssize_t r;
    do r = pwrite(dfd, stage, len, (off_t)off); while (r < 0 && errno == EINTR);
    if (r < 0 && errno != EINVAL) {
      *sys = "pwrite";
      return errno;
    }
    if (r != (ssize_t)len) {
      if (r < 0) w->direct = 0; /* EINVAL: O_DIRECT refused for this alignment or file: the page cache from now on */
      return -1;
    }
    off += (int64_t)len;
    if (off == b && b > end) {
      memcpy(w->tail_block, stage + len - DIRECT_ALIGN, DIRECT_ALIGN);
      w->tail_at = b - DIRECT_ALIGN;
    }
    fill = 0;
  }
  if (b >= end) return 0;
  iov[i].iov_base = (uint8_t *)iov[i].iov_base + k;
  iov[i].iov_len -= k;
  int e = write_iov_all(fd, iov + i, n - i, (off_t)b);
  if (e != 0) *sys = "pwritev";
  return e;
}

/*
 * Writes [pos, pos + bytes) of fd from the n iovecs as described above — and, where the zeros written
 * ahead (cw_zero_ahead) reach past the block the run ends in, that block too, whole and padded with
 * the zeros already there, so that nothing of the run goes through the page cache and the file's size
 * does not change. Returns 0, an errno (the commit failed; *sys names the call), or -1 when the caller
 * must write the run through the page cache (the iovecs are then as given).
 */
static int cw_write_direct(commit_writer *w, int fd, struct iovec *iov, size_t n, int64_t pos, size_t bytes, const char **sys) {
  const int64_t end = pos + (int64_t)bytes;
  const int64_t a = pos & ~(DIRECT_ALIGN - 1);
  const int64_t up = (end + DIRECT_ALIGN - 1) & ~(DIRECT_ALIGN - 1);
  int64_t b = end & ~(DIRECT_ALIGN - 1);
  if (bytes == 0) return -1;
  uint8_t *stage = cw_stage(w);
  int dfd = stage != NULL ? cw_direct_fd(w, fd) : -1;
  if (dfd < 0) return -1;
  if (w->zeros_to >= up) b = up;
  if (b <= a) return -1;
  int e = cw_write_direct_with(w, dfd, fd, stage, iov, n, pos, end, a, b, sys);
  if (!w->direct) cw_close_dfd(w); /* O_DIRECT refused: the page cache from now on */
  if (e == 0) __atomic_fetch_add(&w->direct_bytes, (uint64_t)((b < end ? b : end) - pos), __ATOMIC_RELAXED);
  return e;
}

/*
 * A seal's trailer is the last write to its file (cwSubmit's `end` 2): zeros written ahead must not
 * stay after it — a sealed segment ends with its footer, and recovery reads bytes after an open
 * segment's footer as damage. So before the trailer is written the file is cut back to where it
 * ends, and that cut is made durable on its own: were it only made durable with the trailer, a crash
 * could leave the trailer on disk with the zeros still after it. Only when there are zeros to cut
 * (the file is longer than `end`); the zero-ahead state is dropped with it.
 */
static int cw_end_file(commit_writer *w, int fd, int64_t end, const char **sys) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    *sys = "fstat";
    return errno;
  }
  if (st.st_size > end) {
    int r;
    do r = ftruncate(fd, (off_t)end); while (r < 0 && errno == EINTR);
    if (r < 0) {
      *sys = "ftruncate";
      return errno;
    }
    do r = fdatasync(fd); while (r < 0 && errno == EINTR);
    if (r < 0) {
      *sys = "fdatasync";
      return errno;
    }
  }
  if (w->dfd >= 0 && w->dfd_of == fd) {
    w->zeros_to = 0;
    w->ahead = 0;
    w->tail_at = -1;
  }
  return 0;
}

/* Writes a taken list (in submission order, each at its position) and fdatasyncs once. Returns errno or 0. */
static int cw_write(commit_writer *w, cw_job *list, const char **sys) {
  for (cw_job *j = list; j != NULL;) {
    /* Batches that follow each other on disk (the usual case) go out in one pwritev sequence. */
    cw_job *end = j;
    size_t n = j->n, bytes = j->bytes;
    while (end->next != NULL && end->next->fd == j->fd && end->next->position == end->position + (int64_t)end->bytes) {
      end = end->next;
      n += end->n;
      bytes += end->bytes;
    }
    struct iovec *iov = j->iov;
    struct iovec *joined = NULL;
    if (end != j) {
      joined = malloc((n > 0 ? n : 1) * sizeof *joined);
      if (joined == NULL) {
        *sys = "commitWriter";
        return ENOMEM;
      }
      size_t k = 0;
      for (cw_job *x = j;; x = x->next) {
        memcpy(joined + k, x->iov, x->n * sizeof *joined);
        k += x->n;
        if (x == end) break;
      }
      iov = joined;
    }
    int e = 0;
    for (cw_job *x = j; e == 0; x = x->next) {
      if (x->end == CW_LAST) e = cw_end_file(w, x->fd, x->position, sys);
      if (x == end) break;
    }
    if (e != 0) {
      free(joined);
      return e;
    }
    e = w->direct ? cw_write_direct(w, j->fd, iov, n, j->position, bytes, sys) : -1;
    if (e < 0) {
      w->tail_at = -1; /* the block this run ends in is now the page cache's */
      e = write_iov_all(j->fd, iov, n, (off_t)j->position);
      if (e != 0) *sys = "pwritev";
      j->cached_to = j->position + (int64_t)bytes;
    }
    free(joined);
    if (e != 0) return e;
    j = end->next;
  }
  if (w->datasync) {
    /* One fd in practice (a seal waits until every submission is reported before it switches
     * segments); should batches of several files ever be taken together, each file is synced. */
    for (cw_job *j = list; j != NULL; j = j->next) {
      int seen = 0;
      for (cw_job *k = list; k != j; k = k->next) seen |= k->fd == j->fd;
      if (seen) continue;
      int r;
      do r = fdatasync(j->fd); while (r < 0 && errno == EINTR);
      if (r < 0) {
        *sys = "fdatasync";
        return errno;
      }
    }
  }
  return 0;
}

/*
 * Zero-filled space ahead (durability fsync, direct writes). A commit that makes its file longer
 * costs more than one that rewrites space the file already has: its fdatasync must also write the
 * inode (the new size) and the block the commit ends in, which went through the page cache — three
 * device round trips after the data instead of one flush, each a sleep and a wake-up of the writer on
 * the agent's one core. At moderate rates, where nearly every request gets a commit of its own, that
 * was most of what a commit cost (docs/benchmarks.md, sessions 22 and 23). So while commits are
 * small (under ZA_SMALL_COMMIT on average over about the last 8: at the maximum rate a few small ones
 * come between large ones, and zeros written then only delay the next commit — 47 zero writes in 5 s
 * and a few per cent of the maximum while the last commit alone decided), the writer uses the moments it has nothing else to do
 * to write zeros ahead of the last commit, ZA_CHUNK at a time up to `zeroAhead` past it, with O_DIRECT
 * and no fdatasync of their own (the next commit's fdatasync carries the new size). A commit inside
 * that space is then written whole, including its last block padded with the zeros that are already
 * there (cw_write_direct), and its fdatasync has nothing to write but the flush. At the maximum rate
 * commits are large and no zeros are written, so the disk does not get twice the bytes there.
 *
 * What this leaves on disk: an open segment may end in up to `zeroAhead` bytes of zeros after
 * its last frame. Recovery already cuts a zero-filled tail of an open segment (recovery.ts); readers
 * of a live open segment (verify, inspect) report it as zero-filled space (the `zero_fill` check);
 * a seal cuts it before its trailer (cw_end_file). The ledger keeps that much of max_disk_bytes free.
 * A failed zero write is no commit failure (nothing acknowledged depends on it): the writer stops
 * writing zeros to that file and commits as before.
 */
#define ZA_SMALL_COMMIT ((size_t)256 << 10)
#define ZA_CHUNK ((size_t)1 << 20)

/* Where the next zeros go: after those already written, or from the block after the last commit. */
static int64_t cw_zeros_from(const commit_writer *w) {
  const int64_t up = (w->last_end + DIRECT_ALIGN - 1) & ~(DIRECT_ALIGN - 1);
  return w->zeros_to > up ? w->zeros_to : up;
}

/* After a successful commit: where it ended in the file of dfd, and whether to write zeros ahead of it. */
static void cw_note_commit(commit_writer *w, const cw_job *list) {
  const cw_job *lj = list;
  size_t total = 0;
  for (const cw_job *j = list; j != NULL; j = j->next) {
    lj = j;
    total += j->bytes;
  }
  if (w->dfd < 0 || lj->fd != w->dfd_of || !w->datasync || !w->direct) {
    w->ahead = 0;
    return;
  }
  w->last_end = lj->position + (int64_t)lj->bytes;
  w->commit_avg += ((double)total - w->commit_avg) / 8;
  w->ahead = w->zero_ahead > 0 && lj->end == CW_MORE && !w->ahead_failed && w->commit_avg < (double)ZA_SMALL_COMMIT;
}

/* Whether the idle writer should write zeros ahead now (the running job's state; called under mu). */
static int cw_wants_zeros(const commit_writer *w) {
  return w->ahead && w->dfd >= 0 && cw_zeros_from(w) + (int64_t)ZA_CHUNK - w->last_end <= w->zero_ahead;
}

/* Writes ZA_CHUNK zeros ahead of the last commit (see above). */
static void cw_zero_ahead(commit_writer *w) {
  if (w->zeros == NULL) {
    void *p = NULL;
    if (posix_memalign(&p, (size_t)DIRECT_ALIGN, ZA_CHUNK) != 0) {
      w->ahead = 0;
      w->ahead_failed = 1;
      return;
    }
    memset(p, 0, ZA_CHUNK);
    w->zeros = p;
  }
  const int64_t from = cw_zeros_from(w);
  ssize_t r;
  do r = pwrite(w->dfd, w->zeros, ZA_CHUNK, (off_t)from); while (r < 0 && errno == EINTR);
  if (r == (ssize_t)ZA_CHUNK) {
    w->zeros_to = from + (int64_t)ZA_CHUNK;
  } else {
    /* Out of space, or O_DIRECT refused here: commits go on as before (the zeros known so far stay usable). */
    w->ahead = 0;
    w->ahead_failed = 1;
  }
}

static void cw_execute(napi_env env, void *data) {
  (void)env;
  commit_writer *w = ((cw_run *)data)->w;
  for (;;) {
    uv_mutex_lock(&w->mu);
    cw_job *list = w->head;
    w->head = w->tail = NULL;
    int failed = w->failed;
    const char *fsys = w->fail_syscall;
    int drop = w->drop_dfd;
    w->drop_dfd = 0;
    if (list == NULL && !drop && !failed && cw_wants_zeros(w)) {
      uv_mutex_unlock(&w->mu);
      cw_zero_ahead(w);
      continue; /* and look again for submissions */
    }
    if (list == NULL) {
      if (drop) cw_close_dfd(w);
      w->running = 0;
      uv_mutex_unlock(&w->mu);
      return;
    }
    uv_mutex_unlock(&w->mu);
    if (drop) cw_close_dfd(w);
    uint32_t first = list->id, last = list->id;
    for (cw_job *j = list; j != NULL; j = j->next) last = j->id;
    if (failed) {
      cw_post(w, first, last, failed, fsys, 0);
      cw_free_jobs(list);
      continue;
    }
    const char *sys = NULL;
    double t0 = mono_seconds();
    int e = cw_write(w, list, &sys);
    double secs = mono_seconds() - t0;
    if (e != 0) {
      uv_mutex_lock(&w->mu);
      w->failed = e;
      w->fail_syscall = sys;
      uv_mutex_unlock(&w->mu);
    }
    /* Before the report: once reported, a seal may close the segment's fd (and the number be reused). */
    if (e == 0 && w->datasync) cw_drop_synced(list);
    cw_post(w, first, last, e, sys, secs);
    if (e == 0) cw_note_commit(w, list);
    cw_free_jobs(list);
  }
}

static void cw_complete(napi_env env, napi_status status, void *data) {
  cw_run *run = data;
  commit_writer *w = run->w;
  napi_delete_async_work(env, run->work);
  free(run);
  if (status != napi_ok) {
    /* Never started (cancelled): report what was waiting as failed, so no promise waits forever. */
    uv_mutex_lock(&w->mu);
    cw_job *list = w->head;
    w->head = w->tail = NULL;
    w->running = 0;
    if (!w->failed) {
      w->failed = ECANCELED;
      w->fail_syscall = "commitWriter";
    }
    uv_mutex_unlock(&w->mu);
    if (list != NULL) {
      uint32_t last = list->id;
      for (cw_job *j = list; j != NULL; j = j->next) last = j->id;
      cw_post(w, list->id, last, ECANCELED, "commitWriter", 0);
      cw_free_jobs(list);
    }
  }
  napi_release_threadsafe_function(w->tsfn, napi_tsfn_release); /* the job's count (cw_submit); w may be freed after this */
}

static void cw_call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)context;
  cw_report *r = data;
  if (env != NULL && js_cb != NULL) {
    napi_value argv[5], undefined;
    napi_create_uint32(env, r->first, &argv[0]);
    napi_create_uint32(env, r->last, &argv[1]);
    napi_create_int32(env, r->err, &argv[2]);
    if (r->syscall) napi_create_string_utf8(env, r->syscall, NAPI_AUTO_LENGTH, &argv[3]);
    else napi_get_undefined(env, &argv[3]);
    napi_create_double(env, r->seconds, &argv[4]);
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, js_cb, 5, argv, NULL);
  }
  free(r);
}

static void cw_release(commit_writer *w) {
  if (--w->refs > 0) return;
  cw_close_dfd(w);
  free(w->zeros);
  free(w->stage);
  cw_free_jobs(w->head);
  uv_mutex_destroy(&w->mu);
  free(w);
}

/* The report channel is gone (after cwClose and the last job's completion). */
static void cw_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  cw_close_dfd(data); /* no job can run any more; the External may live on until it is collected */
  cw_release(data);
}

/* The External was collected: nothing can name the writer any more. */
static void cw_external_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  cw_release(data);
}

/*
 * commitWriter(onDone, datasync[, direct[, zeroAhead]]): an External for cwSubmit / cwClose. `direct`
 * (default true) lets a datasync writer write whole blocks with O_DIRECT (cw_write_direct); a writer
 * without datasync always writes through the page cache. `zeroAhead` (bytes, default 0: none) lets
 * such a direct writer write up to that many zeros past its last small commit (cw_zero_ahead).
 */
static napi_value commit_writer_new(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  bool datasync, direct = true;
  int64_t zero_ahead = 0;
  napi_valuetype t;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) THROW(env, "commitWriter needs 2 arguments");
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function) THROW(env, "commitWriter: onDone must be a function");
  if (napi_get_value_bool(env, argv[1], &datasync) != napi_ok) THROW(env, "commitWriter: datasync must be a boolean");
  if (argc >= 3 && (napi_typeof(env, argv[2], &t) != napi_ok || (t != napi_undefined && napi_get_value_bool(env, argv[2], &direct) != napi_ok))) {
    THROW(env, "commitWriter: direct must be a boolean");
  }
  if (argc >= 4 && (napi_typeof(env, argv[3], &t) != napi_ok || (t != napi_undefined && (napi_get_value_int64(env, argv[3], &zero_ahead) != napi_ok || zero_ahead < 0)))) {
    THROW(env, "commitWriter: zeroAhead must be a non-negative number of bytes");
  }
  commit_writer *w = calloc(1, sizeof *w);
  if (w == NULL) THROW(env, "commitWriter: out of memory");
  if (uv_mutex_init(&w->mu) != 0) {
    free(w);
    THROW(env, "commitWriter: could not create a mutex");
  }
  w->datasync = datasync;
  w->direct = datasync && direct;
  w->dfd = -1;
  w->tail_at = -1;
  w->zero_ahead = w->direct ? zero_ahead : 0;
  w->commit_avg = (double)ZA_SMALL_COMMIT; /* neutral: one small commit brings it under, one large one keeps it over */
  napi_value name, ext;
  napi_create_string_utf8(env, "sealtrail.commitWriter", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, w, cw_finalize, NULL, cw_call_js, &w->tsfn) != napi_ok) {
    uv_mutex_destroy(&w->mu);
    free(w);
    THROW(env, "commitWriter: could not create the report channel");
  }
  w->refs = 1; /* the report channel's; the External's below */
  /* Idle, the writer does not keep the process alive; a running job does (the thread-pool work). */
  napi_unref_threadsafe_function(env, w->tsfn);
  if (napi_create_external(env, w, cw_external_finalize, NULL, &ext) != napi_ok) THROW(env, "commitWriter: out of memory");
  w->refs++;
  return ext;
}

static commit_writer *cw_of(napi_env env, napi_value v) {
  void *p = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

/* The writer that `fn(writer)`, a function of one argument, was called with; NULL with a RangeError pending otherwise. */
static commit_writer *cw_only_arg(napi_env env, napi_callback_info info, const char *fn) {
  size_t argc = 1;
  napi_value argv[1];
  char msg[64];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    snprintf(msg, sizeof msg, "%s needs 1 argument", fn);
    THROW(env, msg);
  }
  commit_writer *w = cw_of(env, argv[0]);
  if (w == NULL) {
    snprintf(msg, sizeof msg, "%s: not a commit writer", fn);
    THROW(env, msg);
  }
  return w;
}

/*
 * cwSubmit(writer, id, fd, bufs, position[, end]): queues one batch; starts the thread-pool job when
 * none runs. `end`: 0 (default) more commits may follow; 1 the segment is full, only its last batch
 * follows (write no zeros ahead after this one); 2 the last batch (a seal's trailer): the file ends
 * with it (cw_end_file).
 */
static napi_value cw_submit(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  uint32_t end = CW_MORE;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5) THROW(env, "cwSubmit needs 5 arguments");
  commit_writer *w = cw_of(env, argv[0]);
  if (w == NULL) THROW(env, "cwSubmit: not a commit writer");
  if (w->closed) THROW(env, "cwSubmit: the commit writer is closed");
  uint32_t id, n;
  int32_t fd;
  int64_t position;
  bool is_array;
  if (napi_get_value_uint32(env, argv[1], &id) != napi_ok) THROW(env, "cwSubmit: id must be a uint32");
  if (napi_get_value_int32(env, argv[2], &fd) != napi_ok || fd < 0) THROW(env, "cwSubmit: fd must be a non-negative integer");
  if (napi_is_array(env, argv[3], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[3], &n) != napi_ok) THROW(env, "cwSubmit: bufs must be an array of Uint8Array");
  if (napi_get_value_int64(env, argv[4], &position) != napi_ok || position < 0) THROW(env, "cwSubmit: position must be a non-negative integer");
  if (argc >= 6) {
    napi_valuetype t;
    if (napi_typeof(env, argv[5], &t) != napi_ok || (t != napi_undefined && (napi_get_value_uint32(env, argv[5], &end) != napi_ok || end > CW_LAST))) {
      THROW(env, "cwSubmit: end must be 0 (more), 1 (full) or 2 (last)");
    }
  }
  cw_job *j = calloc(1, sizeof *j);
  if (j == NULL) THROW(env, "cwSubmit: out of memory");
  int oom;
  j->iov = iov_of(env, argv[3], n, &j->bytes, &oom);
  if (j->iov == NULL) {
    free(j);
    THROW(env, oom ? "cwSubmit: out of memory" : "cwSubmit: bufs must be an array of Uint8Array");
  }
  j->id = id;
  j->fd = fd;
  j->n = n;
  j->position = position;
  j->end = end;
  uv_mutex_lock(&w->mu);
  if (w->tail) w->tail->next = j;
  else w->head = j;
  w->tail = j;
  int start = !w->running;
  if (start) w->running = 1;
  uv_mutex_unlock(&w->mu);
  if (start) {
    napi_value name;
    napi_create_string_utf8(env, "sealtrail.commitWriter", NAPI_AUTO_LENGTH, &name);
    cw_run *run = malloc(sizeof *run);
    /* The job holds a count on the report channel until it completes, so cwClose cannot free the
     * channel while the job may still post to it. */
    int ok = run != NULL && napi_acquire_threadsafe_function(w->tsfn) == napi_ok;
    int acquired = ok;
    if (ok) {
      run->w = w;
      ok = napi_create_async_work(env, NULL, name, cw_execute, cw_complete, run, &run->work) == napi_ok;
      if (ok && napi_queue_async_work(env, run->work) != napi_ok) {
        napi_delete_async_work(env, run->work);
        ok = 0;
      }
    }
    if (!ok) {
      if (acquired) napi_release_threadsafe_function(w->tsfn, napi_tsfn_release);
      free(run);
      /* Only when the runtime is out of memory: take the batch back and refuse it. */
      uv_mutex_lock(&w->mu);
      w->running = 0;
      cw_job *list = w->head;
      w->head = w->tail = NULL;
      uv_mutex_unlock(&w->mu);
      cw_free_jobs(list);
      THROW(env, "cwSubmit: could not queue the write");
    }
  }
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

/* cwDirectBytes(writer): how many bytes of commits the writer has written with O_DIRECT (for tests and diagnostics). */
static napi_value cw_direct_bytes(napi_env env, napi_callback_info info) {
  napi_value v;
  commit_writer *w = cw_only_arg(env, info, "cwDirectBytes");
  if (w == NULL) return NULL;
  napi_create_double(env, (double)__atomic_load_n(&w->direct_bytes, __ATOMIC_RELAXED), &v);
  return v;
}

/*
 * cwDropDirect(writer): closes the O_DIRECT descriptor the writer holds for the file it last wrote
 * (cw_direct_fd) — the ledger calls it when it closes a segment. Now when no job runs; otherwise the
 * running job closes it before its next commit or when it goes idle. The next direct commit opens a
 * new one.
 */
static napi_value cw_drop_direct(napi_env env, napi_callback_info info) {
  commit_writer *w = cw_only_arg(env, info, "cwDropDirect");
  if (w == NULL) return NULL;
  uv_mutex_lock(&w->mu);
  if (w->running) w->drop_dfd = 1;
  else cw_close_dfd(w); /* no job: only cwSubmit (this thread) could start one */
  uv_mutex_unlock(&w->mu);
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

/* cwClose(writer): no more submissions; the report channel is released (call when nothing is pending). */
static napi_value cw_close(napi_env env, napi_callback_info info) {
  commit_writer *w = cw_only_arg(env, info, "cwClose");
  if (w == NULL) return NULL;
  if (!w->closed) {
    w->closed = 1;
    napi_release_threadsafe_function(w->tsfn, napi_tsfn_release);
  }
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

#endif

/* Protobuf base-128 varint of v at o[p..]; returns the position after it. */
static size_t put_varint(uint8_t *o, size_t p, uint64_t v) {
  while (v >= 0x80) {
    o[p++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  o[p++] = (uint8_t)v;
  return p;
}

static size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

/*
 * assembleEntries(out, src, ranges, k0, k1, resource, scope, slSchema, rlSchema, headRoom, tailRoom,
 * spans): number — src/otlp/wire.ts EntryAssembler.buildChunk for framed entries, in one call: for
 * each LogRecord src[ranges[k], ranges[k+1]) (k = k0, k0 + 2, … < k1) writes, after headRoom bytes
 * left free, the entry
 *   resource ‖ 0x12 ‖ len(SL) ‖ SL = (scope ‖ 0x12 ‖ len(rec) ‖ rec ‖ slSchema) ‖ rlSchema
 * (a ResourceLogs with one ScopeLogs with the one LogRecord; the four fields are already encoded
 * with key and length, or empty), then leaves tailRoom bytes free; spans[k - k0], spans[k - k0 + 1]
 * are the entry's start and end in out. Returns the bytes of out used. Every write is checked
 * against out's length first: a range outside src or an out too small throws and leaves spans
 * unfinished (the caller's sizes disagree: a bug, never bad input).
 */
static napi_value assemble_entries(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 12) THROW(env, "assembleEntries needs 12 arguments");
  uint8_t *out, *src, *res, *scope, *sl_schema, *rl_schema;
  uint32_t *ranges, *spans;
  size_t out_len, src_len, ranges_len, res_len, scope_len, sl_schema_len, rl_schema_len, spans_len;
  uint32_t k0, k1, head_room, tail_room;
  if (!bytes_of(env, argv[0], 0, (void **)&out, &out_len)) THROW(env, "assembleEntries: out must be a Uint8Array");
  if (!bytes_of(env, argv[1], 0, (void **)&src, &src_len)) THROW(env, "assembleEntries: src must be a Uint8Array");
  if (!bytes_of(env, argv[2], 1, (void **)&ranges, &ranges_len)) THROW(env, "assembleEntries: ranges must be a Uint32Array");
  if (napi_get_value_uint32(env, argv[3], &k0) != napi_ok || napi_get_value_uint32(env, argv[4], &k1) != napi_ok || k0 > k1 || k1 > ranges_len || ((k1 - k0) & 1))
    THROW(env, "assembleEntries: k0..k1 must be an even-length range of ranges");
  if (!bytes_of(env, argv[5], 0, (void **)&res, &res_len) || !bytes_of(env, argv[6], 0, (void **)&scope, &scope_len) ||
      !bytes_of(env, argv[7], 0, (void **)&sl_schema, &sl_schema_len) || !bytes_of(env, argv[8], 0, (void **)&rl_schema, &rl_schema_len))
    THROW(env, "assembleEntries: resource, scope and the schema fields must be Uint8Arrays");
  if (napi_get_value_uint32(env, argv[9], &head_room) != napi_ok || napi_get_value_uint32(env, argv[10], &tail_room) != napi_ok)
    THROW(env, "assembleEntries: headRoom and tailRoom must be numbers");
  if (!bytes_of(env, argv[11], 1, (void **)&spans, &spans_len) || spans_len < k1 - k0) THROW(env, "assembleEntries: spans must be a Uint32Array of k1 - k0 numbers");
  if (out_len > UINT32_MAX) THROW(env, "assembleEntries: out larger than 4 GiB");
  size_t p = 0;
  for (uint32_t k = k0; k < k1; k += 2) {
    uint32_t s = ranges[k], e = ranges[k + 1];
    if (s > e || e > src_len) THROW(env, "assembleEntries: record range outside src");
    size_t rec = e - s;
    size_t sl = scope_len + 1 + varint_size(rec) + rec + sl_schema_len;
    size_t need = (size_t)head_room + res_len + 1 + varint_size(sl) + sl + rl_schema_len + tail_room;
    if (need > out_len - p) THROW(env, "assembleEntries: out too small for the entries");
    p += head_room;
    size_t start = p;
    if (res_len > 0) memcpy(out + p, res, res_len);
    p += res_len;
    out[p++] = 0x12; /* ResourceLogs.scope_logs (2), length-delimited */
    p = put_varint(out, p, sl);
    if (scope_len > 0) memcpy(out + p, scope, scope_len);
    p += scope_len;
    out[p++] = 0x12; /* ScopeLogs.log_records (2), length-delimited */
    p = put_varint(out, p, rec);
    memcpy(out + p, src + s, rec);
    p += rec;
    if (sl_schema_len > 0) memcpy(out + p, sl_schema, sl_schema_len);
    p += sl_schema_len;
    if (rl_schema_len > 0) memcpy(out + p, rl_schema, rl_schema_len);
    p += rl_schema_len;
    spans[k - k0] = (uint32_t)start;
    spans[k - k0 + 1] = (uint32_t)p;
    p += tail_room;
  }
  napi_value r;
  if (napi_create_double(env, (double)p, &r) != napi_ok) return NULL;
  return r;
}

/*
 * checkLogRecords(body: Uint8Array, ranges: Uint32Array, n: number, maxDepth: number): number —
 * the OTLP LogRecords body[ranges[k], ranges[k+1]) (k = 0, 2, … < n) checked as the JS decoder
 * would (native/otlp_check.h): -1 when all are valid, else the k of the first invalid one.
 * maxDepth 0..OTLP_CHECK_MAX_DEPTH (the recursion's bound).
 */
static napi_value check_log_records(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) THROW(env, "checkLogRecords needs 4 arguments");
  uint8_t *body;
  uint32_t *ranges;
  size_t body_len, ranges_len;
  uint32_t n;
  int32_t depth;
  if (!bytes_of(env, argv[0], 0, (void **)&body, &body_len)) THROW(env, "body must be a Uint8Array");
  if (!bytes_of(env, argv[1], 1, (void **)&ranges, &ranges_len)) THROW(env, "ranges must be a Uint32Array");
  if (napi_get_value_uint32(env, argv[2], &n) != napi_ok || n > ranges_len) THROW(env, "n must be a number no larger than ranges.length");
  if (napi_get_value_int32(env, argv[3], &depth) != napi_ok || depth < 0 || depth > OTLP_CHECK_MAX_DEPTH) THROW(env, "maxDepth must be 0..256");
  for (uint32_t k = 0; k + 1 < n; k += 2) {
    if (ranges[k] > ranges[k + 1] || ranges[k + 1] > body_len) THROW(env, "record range outside the body");
  }
  long bad = otlp_check_records(body, ranges, n, depth);
  napi_value out;
  if (napi_create_double(env, (double)bad, &out) != napi_ok) return NULL;
  return out;
}

/* shaImpl(): "sha-ni" or "openssl" — which SHA-256 the batch functions use (for logs and tests). */
static napi_value sha_impl(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  const char *name = use_sha_ni ? "sha-ni" : "openssl";
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &out) != napi_ok) return NULL;
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
#ifdef SEALTRAIL_COMMIT
  page_size = sysconf(_SC_PAGESIZE);
#endif
#ifdef SEALTRAIL_SHA_NI
  use_sha_ni = sha256ni_available();
#endif
  crc32c_init(); /* here, before a worker thread can load the addon and compute CRCs (crc32c.h) */
  napi_property_descriptor props[] = {
    { "shaImpl", NULL, sha_impl, NULL, NULL, NULL, napi_enumerable, NULL },
    { "leafChainBatch", NULL, leaf_chain_batch, NULL, NULL, NULL, napi_enumerable, NULL },
    { "frontierAppend", NULL, frontier_append, NULL, NULL, NULL, napi_enumerable, NULL },
    { "frameBatch", NULL, frame_batch, NULL, NULL, NULL, napi_enumerable, NULL },
    { "crc32c", NULL, crc32c_js, NULL, NULL, NULL, napi_enumerable, NULL },
    { "scanFrames", NULL, scan_frames, NULL, NULL, NULL, napi_enumerable, NULL },
    { "checkLogRecords", NULL, check_log_records, NULL, NULL, NULL, napi_enumerable, NULL },
    { "assembleEntries", NULL, assemble_entries, NULL, NULL, NULL, napi_enumerable, NULL },
#ifdef SEALTRAIL_MMAP
    { "mapRange", NULL, map_range, NULL, NULL, NULL, napi_enumerable, NULL },
    { "unmapRange", NULL, unmap_range_js, NULL, NULL, NULL, napi_enumerable, NULL },
#endif
#ifdef SEALTRAIL_COMMIT
    { "writeDurable", NULL, write_durable, NULL, NULL, NULL, napi_enumerable, NULL },
    { "syncDrop", NULL, sync_drop, NULL, NULL, NULL, napi_enumerable, NULL },
    { "fileOps", NULL, file_ops, NULL, NULL, NULL, napi_enumerable, NULL },
    { "commitWriter", NULL, commit_writer_new, NULL, NULL, NULL, napi_enumerable, NULL },
    { "cwSubmit", NULL, cw_submit, NULL, NULL, NULL, napi_enumerable, NULL },
    { "cwClose", NULL, cw_close, NULL, NULL, NULL, napi_enumerable, NULL },
    { "cwDirectBytes", NULL, cw_direct_bytes, NULL, NULL, NULL, napi_enumerable, NULL },
    { "cwDropDirect", NULL, cw_drop_direct, NULL, NULL, NULL, napi_enumerable, NULL },
#endif
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
