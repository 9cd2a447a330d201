/*
 * SHA-256 (FIPS 180-4) with the x86 SHA extensions, for the two hashes the ledger computes per entry:
 * the RFC 9162 leaf hash SHA-256(0x00 ‖ entry) and the chain hash SHA-256(chain ‖ leaf).
 *
 * Why not OpenSSL's SHA256 here: one SHA-NI block takes ~48 ns on this machine (openssl speed:
 * 1.33 GB/s), and it is latency-bound — each sha256rnds2 waits for the previous one. Leaf hashes
 * of different entries do not depend on each other, so `sha256ni_leaf_x2` runs two of them in the
 * same instruction stream, letting the core overlap the two dependency chains. The chain hash is a
 * 64-byte message whose second block is constant padding; `sha256ni_pair` hashes it (and
 * `sha256ni_node` the 65-byte Merkle node hash) without OpenSSL's per-call context handling. docs/benchmarks.md "Two leaf hashes at once" has numbers.
 *
 * Used only when the CPU has the SHA extensions and SSE4.1 (checked at run time, see
 * sha256ni_available) and SEALTRAIL_SHA_NI is not "0"; the addon's self-check compares its output
 * with node:crypto before the ledger trusts it (src/ledger/native-hash.ts). Elsewhere the addon
 * uses OpenSSL's SHA-256 as before.
 *
 * The instruction sequence follows the structure Intel documents for these instructions (state kept
 * as ABEF / CDGH, four rounds per step, message schedule with sha256msg1/sha256msg2).
 */
#ifndef SEALTRAIL_SHA256_NI_H
#define SEALTRAIL_SHA256_NI_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SEALTRAIL_SHA_NI 1
#include <cpuid.h>
#include <immintrin.h>

/* 1 when the CPU has SHA (CPUID.7.0:EBX bit 29), SSE4.1 and SSSE3 and SEALTRAIL_SHA_NI is not "0". */
static int sha256ni_available(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  if (!(c & (1u << 19)) || !(c & (1u << 9))) return 0; /* SSE4.1, SSSE3 */
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  if (!(b & (1u << 29))) return 0;
  const char *env = getenv("SEALTRAIL_SHA_NI");
  return !(env && strcmp(env, "0") == 0);
}

/* Every function below may use the SHA and SSE4.1 instructions (a function attribute, which GCC and
 * clang both take; they run only after sha256ni_available() said yes). */
#define SHA_NI_FN __attribute__((target("sha,sse4.1,ssse3")))

/* FIPS 180-4 §4.2.2 round constants. */
static const uint32_t SHA256_K[64] __attribute__((aligned(16))) = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};
/* FIPS 180-4 §5.3.3 initial hash value H(0). */
static const uint32_t SHA256_IV[8] = {
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

/* One hash in flight: the state as ABEF / CDGH, the four message-schedule registers, and the
 * state at the start of the current block (added back at its end). */
typedef struct {
  __m128i abef, cdgh, m[4], abef0, cdgh0;
} sha_lane;

static inline __attribute__((always_inline)) SHA_NI_FN void lane_init(sha_lane *l) {
  __m128i dcba = _mm_loadu_si128((const __m128i *)&SHA256_IV[0]);
  __m128i hgfe = _mm_loadu_si128((const __m128i *)&SHA256_IV[4]);
  __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
  __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
  l->abef = _mm_alignr_epi8(cdab, efgh, 8);
  l->cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
}

/* The digest, big-endian words H0..H7 (FIPS 180-4 §6.2.2 step 4 output). */
static inline __attribute__((always_inline)) SHA_NI_FN void lane_out(const sha_lane *l, uint8_t out[32]) {
  __m128i feba = _mm_shuffle_epi32(l->abef, 0x1B);
  __m128i dchg = _mm_shuffle_epi32(l->cdgh, 0xB1);
  __m128i dcba = _mm_blend_epi16(feba, dchg, 0xF0);
  __m128i hgfe = _mm_alignr_epi8(dchg, feba, 8);
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(dcba, bswap));
  _mm_storeu_si128((__m128i *)(out + 16), _mm_shuffle_epi8(hgfe, bswap));
}

static inline __attribute__((always_inline)) SHA_NI_FN void lane_begin(sha_lane *l) {
  l->abef0 = l->abef;
  l->cdgh0 = l->cdgh;
}

static inline __attribute__((always_inline)) SHA_NI_FN void lane_end(sha_lane *l) {
  l->abef = _mm_add_epi32(l->abef, l->abef0);
  l->cdgh = _mm_add_epi32(l->cdgh, l->cdgh0);
}

/* Message words 4k..4k+3 of the block at p, as big-endian 32-bit words. */
static inline __attribute__((always_inline)) SHA_NI_FN void lane_load(sha_lane *l, const uint8_t *p, int k) {
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  l->m[k] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * k)), bswap);
}

/*
 * Rounds 4k..4k+3 with W[4k..4k+3] = m[k & 3], then the schedule: m[(k+1) & 3] becomes
 * W[4k+4..4k+7] (sha256msg2, for k = 3..14) and m[(k-1) & 3] starts W[4k+12..4k+15] (sha256msg1,
 * for k = 1..12). `k` is a constant after unrolling, so the branches disappear.
 */
static inline __attribute__((always_inline)) SHA_NI_FN void lane_step(sha_lane *l, int k) {
  __m128i *m = l->m;
  __m128i wk = _mm_add_epi32(m[k & 3], _mm_load_si128((const __m128i *)&SHA256_K[4 * k]));
  l->cdgh = _mm_sha256rnds2_epu32(l->cdgh, l->abef, wk);
  if (k >= 3 && k <= 14) {
    __m128i w7 = _mm_alignr_epi8(m[k & 3], m[(k - 1) & 3], 4);
    m[(k + 1) & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(m[(k + 1) & 3], w7), m[k & 3]);
  }
  l->abef = _mm_sha256rnds2_epu32(l->abef, l->cdgh, _mm_shuffle_epi32(wk, 0x0E));
  if (k >= 1 && k <= 12) m[(k - 1) & 3] = _mm_sha256msg1_epu32(m[(k - 1) & 3], m[k & 3]);
}

/* One 64-byte block into one lane. */
static SHA_NI_FN void sha256ni_block1(sha_lane *a, const uint8_t *pa) {
  lane_begin(a);
#pragma GCC unroll 16
  for (int k = 0; k < 16; k++) {
    if (k < 4) lane_load(a, pa, k);
    lane_step(a, k);
  }
  lane_end(a);
}

/* One block into each of two independent lanes, interleaved step by step. */
static SHA_NI_FN void sha256ni_block2(sha_lane *a, const uint8_t *pa, sha_lane *b, const uint8_t *pb) {
  lane_begin(a);
  lane_begin(b);
#pragma GCC unroll 16
  for (int k = 0; k < 16; k++) {
    if (k < 4) {
      lane_load(a, pa, k);
      lane_load(b, pb, k);
    }
    lane_step(a, k);
    lane_step(b, k);
  }
  lane_end(a);
  lane_end(b);
}

/*
 * The padded RFC 9162 leaf-hash message 0x00 ‖ entry, block by block, without copying the entry:
 * blocks that lie wholly inside the entry are read in place; the first block (which starts with
 * the 0x00 prefix) and the one or two blocks holding the end, the 0x80 byte and the bit length
 * (FIPS 180-4 §5.1.1) are assembled in `stage`.
 */
typedef struct {
  const uint8_t *e;
  size_t len;    /* message length: entry length + 1 */
  size_t blocks; /* padded length / 64 */
  uint8_t stage[64];
} leaf_msg;

static SHA_NI_FN void leaf_msg_init(leaf_msg *m, const uint8_t *entry, size_t n) {
  m->e = entry;
  m->len = n + 1;
  m->blocks = (m->len + 72) / 64; /* ceil((len + 1 + 8) / 64) */
}

static SHA_NI_FN const uint8_t *leaf_msg_block(leaf_msg *m, size_t k) {
  size_t off = 64 * k; /* offset of block k in the message; message byte j (j >= 1) is e[j - 1] */
  if (k > 0 && off + 64 <= m->len) return m->e + off - 1;
  uint8_t *st = m->stage;
  size_t i = 0;
  if (off == 0) st[i++] = 0x00;
  size_t end = m->len < off + 64 ? m->len : off + 64;
  if (end > off + i) {
    memcpy(st + i, m->e + off + i - 1, end - off - i);
    i = end - off;
  }
  if (i < 64) {
    if (off + i == m->len) st[i++] = 0x80;
    memset(st + i, 0, 64 - i);
  }
  if (k == m->blocks - 1) {
    uint64_t bits = (uint64_t)m->len * 8;
    for (int j = 0; j < 8; j++) st[56 + j] = (uint8_t)(bits >> (56 - 8 * j));
  }
  return st;
}

/* Leaf hashes of two entries at once (their lengths may differ: the longer one finishes alone). */
static SHA_NI_FN void sha256ni_leaf_x2(const uint8_t *e0, size_t n0, uint8_t out0[32], const uint8_t *e1, size_t n1, uint8_t out1[32]) {
  leaf_msg m0, m1;
  sha_lane l0, l1;
  leaf_msg_init(&m0, e0, n0);
  leaf_msg_init(&m1, e1, n1);
  lane_init(&l0);
  lane_init(&l1);
  size_t both = m0.blocks < m1.blocks ? m0.blocks : m1.blocks;
  size_t k = 0;
  for (; k < both; k++) sha256ni_block2(&l0, leaf_msg_block(&m0, k), &l1, leaf_msg_block(&m1, k));
  for (size_t j = k; j < m0.blocks; j++) sha256ni_block1(&l0, leaf_msg_block(&m0, j));
  for (size_t j = k; j < m1.blocks; j++) sha256ni_block1(&l1, leaf_msg_block(&m1, j));
  lane_out(&l0, out0);
  lane_out(&l1, out1);
}

/* Leaf hash of one entry. */
static SHA_NI_FN void sha256ni_leaf(const uint8_t *e, size_t n, uint8_t out[32]) {
  leaf_msg m;
  sha_lane l;
  leaf_msg_init(&m, e, n);
  lane_init(&l);
  for (size_t k = 0; k < m.blocks; k++) sha256ni_block1(&l, leaf_msg_block(&m, k));
  lane_out(&l, out);
}

/* SHA-256(a ‖ b) of two 32-byte values (the chain hash): one data block, one padding block. */
static SHA_NI_FN void sha256ni_pair(const uint8_t a[32], const uint8_t b[32], uint8_t out[32]) {
  /* FIPS 180-4 §5.1.1 padding of a 512-bit message: 0x80, zeros, length 512 big-endian. */
  static const uint8_t pad[64] = { 0x80, [62] = 0x02, [63] = 0x00 };
  uint8_t block[64];
  memcpy(block, a, 32);
  memcpy(block + 32, b, 32);
  sha_lane l;
  lane_init(&l);
  sha256ni_block1(&l, block);
  sha256ni_block1(&l, pad);
  lane_out(&l, out);
}

/* SHA-256(0x01 ‖ a ‖ b), the RFC 9162 §2.1.1 node hash: a 65-byte message in two blocks. */
static SHA_NI_FN void sha256ni_node(const uint8_t a[32], const uint8_t b[32], uint8_t out[32]) {
  uint8_t block[128];
  block[0] = 0x01;
  memcpy(block + 1, a, 32);
  memcpy(block + 33, b, 32);
  block[65] = 0x80;
  memset(block + 66, 0, 62);
  block[126] = 0x02; /* 520 bits, big-endian, in the last 8 bytes */
  block[127] = 0x08;
  sha_lane l;
  lane_init(&l);
  sha256ni_block1(&l, block);
  sha256ni_block1(&l, block + 64);
  lane_out(&l, out);
}

#undef SHA_NI_FN
#endif /* x86-64 */

#endif
