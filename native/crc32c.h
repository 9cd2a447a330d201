/*
 * CRC-32C (Castagnoli; RFC 3720 §12.1 / Appendix B.4): reflected polynomial 0x82F63B78, initial
 * value and final XOR 0xFFFFFFFF — the same function as src/ledger/crc32c.ts, which the tests
 * compare against. On x86-64 with SSE4.2 the CRC32 instruction does 8 bytes per step (chosen at
 * run time with __builtin_cpu_supports); elsewhere a slicing-by-8 table loop.
 */
#ifndef SEALTRAIL_CRC32C_H
#define SEALTRAIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static uint32_t crc32c_table[8][256];
static int crc32c_ready = 0; /* 1 = tables built, 2 = tables built and SSE4.2 available */

/* Builds the tables once. The addon calls it when it loads, before a worker thread can compute a
 * CRC; a thread that finds the flag set (read with acquire, published with release) sees the tables. */
static void crc32c_init(void) {
#if defined(__GNUC__) || defined(__clang__)
  if (__atomic_load_n(&crc32c_ready, __ATOMIC_ACQUIRE)) return;
#else
  if (crc32c_ready) return;
#endif
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t c = b;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    crc32c_table[0][b] = c;
  }
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t c = crc32c_table[0][b];
    for (int k = 1; k < 8; k++) {
      c = crc32c_table[0][c & 0xff] ^ (c >> 8);
      crc32c_table[k][b] = c;
    }
  }
  int ready = 1;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2")) ready = 2;
#endif
#if defined(__GNUC__) || defined(__clang__)
  __atomic_store_n(&crc32c_ready, ready, __ATOMIC_RELEASE);
#else
  crc32c_ready = ready;
#endif
}

/* Table loop on the raw (pre-inverted) register value. */
static uint32_t crc32c_sw(uint32_t c, const uint8_t *p, size_t n) {
  while (n >= 8) {
    uint32_t lo, hi;
    memcpy(&lo, p, 4);
    memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    lo = __builtin_bswap32(lo);
    hi = __builtin_bswap32(hi);
#endif
    lo ^= c;
    c = crc32c_table[7][lo & 0xff] ^ crc32c_table[6][(lo >> 8) & 0xff] ^ crc32c_table[5][(lo >> 16) & 0xff] ^
        crc32c_table[4][lo >> 24] ^ crc32c_table[3][hi & 0xff] ^ crc32c_table[2][(hi >> 8) & 0xff] ^
        crc32c_table[1][(hi >> 16) & 0xff] ^ crc32c_table[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) c = crc32c_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t c, const uint8_t *p, size_t n) {
  uint64_t c64 = c;
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c64 = __builtin_ia32_crc32di(c64, v);
    p += 8;
    n -= 8;
  }
  c = (uint32_t)c64;
  while (n--) c = __builtin_ia32_crc32qi(c, *p++);
  return c;
}
#endif

/* Continues a CRC-32C: pass 0 to start, the previous result to continue. */
static uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t n) {
  crc32c_init();
  uint32_t c = ~crc;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (crc32c_ready == 2) return ~crc32c_hw(c, p, n);
#endif
  return ~crc32c_sw(c, p, n);
}

#endif
