/*
 * Entry assembly for the OTLP/protobuf decoder (src/otlp/wire.ts EntryAssembler.buildChunk, framed
 * case): the same bytes as the JS loop, written with memcpy and without a view per record.
 *
 * Each record b[ranges[k], ranges[k+1]) becomes, after `head_room` bytes left for the ledger's
 * frame head and followed by `tail_room` bytes for its CRC:
 *
 *   resource ‖ 0x12 ‖ varint(sl_len) ‖ scope ‖ 0x12 ‖ varint(rec_len) ‖ record ‖ sl_schema ‖ rl_schema
 *
 * with sl_len = |scope| + 1 + |varint(rec_len)| + rec_len + |sl_schema| — one ResourceLogs holding one
 * ScopeLogs holding the one LogRecord (DESIGN.md, "Entry"). spans[k - k0] and spans[k - k0 + 1] get
 * the entry's start and end in `out`.
 */
#ifndef SEALTRAIL_OTLP_ENTRIES_H
#define SEALTRAIL_OTLP_ENTRIES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
  const uint8_t *p;
  size_t n;
} oe_bytes;

static size_t oe_varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static size_t oe_put_varint(uint8_t *out, size_t pos, uint64_t v) {
  while (v >= 0x80) {
    out[pos++] = (uint8_t)((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out[pos++] = (uint8_t)v;
  return pos;
}

/* Bytes the records k0, k0 + 2, … < k1 take in `out`, frame room included (k1 - k0 even, ranges checked). */
static uint64_t oe_size(const uint32_t *ranges, size_t k0, size_t k1, oe_bytes res, oe_bytes scope, oe_bytes sl_schema,
                        oe_bytes rl_schema, size_t room) {
  uint64_t total = 0;
  for (size_t k = k0; k < k1; k += 2) {
    uint64_t rec = ranges[k + 1] - ranges[k];
    uint64_t sl = scope.n + 1 + oe_varint_size(rec) + rec + sl_schema.n;
    total += room + res.n + 1 + oe_varint_size(sl) + sl + rl_schema.n;
  }
  return total;
}

/*
 * Writes the entries; returns the bytes written. The caller has checked that the ranges lie in
 * `src`, that k1 - k0 fits `spans`, and that oe_size(...) ≤ the room in `out`.
 */
static size_t oe_build(uint8_t *out, const uint8_t *src, const uint32_t *ranges, size_t k0, size_t k1, oe_bytes res,
                       oe_bytes scope, oe_bytes sl_schema, oe_bytes rl_schema, size_t head_room, size_t tail_room,
                       uint32_t *spans) {
  size_t p = 0;
  for (size_t k = k0; k < k1; k += 2) {
    size_t s = ranges[k], rec = ranges[k + 1] - s;
    size_t sl = scope.n + 1 + oe_varint_size(rec) + rec + sl_schema.n;
    p += head_room;
    size_t start = p;
    if (res.n) memcpy(out + p, res.p, res.n);
    p += res.n;
    out[p++] = 0x12; /* ResourceLogs.scope_logs (2), length-delimited */
    p = oe_put_varint(out, p, sl);
    if (scope.n) memcpy(out + p, scope.p, scope.n);
    p += scope.n;
    out[p++] = 0x12; /* ScopeLogs.log_records (2), length-delimited */
    p = oe_put_varint(out, p, rec);
    if (rec) memcpy(out + p, src + s, rec);
    p += rec;
    if (sl_schema.n) memcpy(out + p, sl_schema.p, sl_schema.n);
    p += sl_schema.n;
    if (rl_schema.n) memcpy(out + p, rl_schema.p, rl_schema.n);
    p += rl_schema.n;
    spans[k - k0] = (uint32_t)start;
    spans[k - k0 + 1] = (uint32_t)p;
    p += tail_room;
  }
  return p;
}

#endif
