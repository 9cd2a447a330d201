/*
 * Validity check of OTLP LogRecord messages, for the receivers' hot path (src/otlp/decode-protobuf.ts
 * "Native record check"). It answers one question per record — would the JS walker
 * (walkLogRecord and the walkers under it) accept these bytes? — and nothing else: no error
 * messages, no output. The JS walker stays the reference. A record this code refuses is walked
 * again in JS, which produces the refusal and its message (or, were this code ever stricter than
 * the JS, accepts it); a record this code accepts is not walked in JS, so it must accept exactly
 * what the JS accepts. test/otlp/native-check.test.ts compares the two on generated records.
 *
 * The rules are those of the JS walker (protobuf encoding guide; the .proto files under proto/opentelemetry):
 * - keys: varints of at most 5 bytes, value < 2^32, field number ≠ 0, wire types 0, 1, 2 and 5
 *   only (groups and 6/7 refused);
 * - varints at most 10 bytes, the 10th holding only bit 63; lengths at most 5 bytes and inside the
 *   enclosing message; fixed64/fixed32 values complete;
 * - known fields must arrive with their declared wire type; unknown fields are skipped;
 * - string fields (LogRecord severity_text, event_name; KeyValue key; AnyValue string_value) must be
 *   well-formed UTF-8 (Unicode table 3-7: no overlongs, no surrogates, nothing above U+10FFFF);
 * - trace_id 0 or 16 bytes, span_id 0 or 8 bytes;
 * - AnyValue nesting: the body or an attribute value is depth 1, each array or kvlist level adds
 *   one; an AnyValue deeper than max_depth is refused (even when empty).
 * Recursion is one C frame per nesting level; callers keep max_depth ≤ OTLP_CHECK_MAX_DEPTH.
 */
#ifndef SEALTRAIL_OTLP_CHECK_H
#define SEALTRAIL_OTLP_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define OTLP_CHECK_MAX_DEPTH 256

enum { OT_VARINT = 0, OT_I64 = 1, OT_LEN = 2, OT_I32 = 5 };

/* A cursor over one message: [p, end) of the request body. Every function returns 1 (ok) or 0. */
typedef struct {
  const uint8_t *b;
  int max_depth;
} otlp_ctx;

static int ot_key(const uint8_t *b, size_t *pos, size_t end, uint32_t *field, int *wire) {
  size_t i = *pos; /* < end: every caller loops while pos < end */
  uint8_t c = b[i++];
  uint64_t v = c & 0x7f;
  if (c >= 0x80) {
    int shift = 7;
    for (;;) {
      if (i >= end) return 0;
      c = b[i++];
      v += (uint64_t)(c & 0x7f) << shift;
      if (c < 0x80) break;
      shift += 7;
      if (shift > 28) return 0; /* longer than 5 bytes */
    }
    if (v > 0xffffffffULL) return 0;
  }
  *field = (uint32_t)(v >> 3);
  *wire = (int)(v & 7);
  if (*field == 0) return 0;
  if (*wire > 5 || *wire == 3 || *wire == 4) return 0;
  *pos = i;
  return 1;
}

static int ot_skip_varint(const uint8_t *b, size_t *pos, size_t end) {
  size_t i = *pos;
  for (int n = 0; n < 10; n++) {
    if (i >= end) return 0;
    uint8_t c = b[i++];
    if (c < 0x80) {
      if (n == 9 && c > 1) return 0;
      *pos = i;
      return 1;
    }
  }
  return 0;
}

/* A length prefix; on success *pos is the payload's start and *len fits before `end`. */
static int ot_len(const uint8_t *b, size_t *pos, size_t end, size_t *len) {
  size_t i = *pos;
  uint64_t v = 0;
  for (int n = 0;; n++) {
    if (i >= end || n == 5) return 0;
    uint8_t c = b[i++];
    v += (uint64_t)(c & 0x7f) << (7 * n);
    if (c < 0x80) break;
  }
  if (v > end - i) return 0;
  *pos = i;
  *len = (size_t)v;
  return 1;
}

static int ot_skip(int wire, const uint8_t *b, size_t *pos, size_t end) {
  size_t len;
  switch (wire) {
    case OT_VARINT:
      return ot_skip_varint(b, pos, end);
    case OT_I64:
      if (end - *pos < 8) return 0;
      *pos += 8;
      return 1;
    case OT_I32:
      if (end - *pos < 4) return 0;
      *pos += 4;
      return 1;
    default: /* OT_LEN: ot_key refused every other wire type */
      if (!ot_len(b, pos, end, &len)) return 0;
      *pos += len;
      return 1;
  }
}

/* Well-formed UTF-8 (Unicode 15 table 3-7); ASCII 32, then 8 bytes at a time. */
static int ot_utf8(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    while (i + 32 <= n) {
      uint64_t w[4];
      memcpy(w, p + i, 32);
      if ((w[0] | w[1] | w[2] | w[3]) & 0x8080808080808080ULL) break;
      i += 32;
    }
    while (i + 8 <= n) {
      uint64_t w;
      memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ULL) break;
      i += 8;
    }
    while (i < n && p[i] < 0x80) i++;
    if (i >= n) return 1;
    uint8_t c = p[i];
    size_t need;
    uint8_t lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c == 0xe0) { need = 2; lo = 0xa0; }
    else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) need = 2;
    else if (c == 0xed) { need = 2; hi = 0x9f; }
    else if (c == 0xf0) { need = 3; lo = 0x90; }
    else if (c >= 0xf1 && c <= 0xf3) need = 3;
    else if (c == 0xf4) { need = 3; hi = 0x8f; }
    else return 0;
    if (i + need >= n) return 0; /* cut off by the end of the string */
    if (p[i + 1] < lo || p[i + 1] > hi) return 0;
    for (size_t k = 2; k <= need; k++) {
      if (p[i + k] < 0x80 || p[i + k] > 0xbf) return 0;
    }
    i += need + 1;
  }
  return 1;
}

/* A length-delimited field that must be a UTF-8 string; *pos is after its key. */
static int ot_string(const otlp_ctx *x, int wire, size_t *pos, size_t end) {
  size_t len;
  if (wire != OT_LEN || !ot_len(x->b, pos, end, &len)) return 0;
  if (!ot_utf8(x->b + *pos, len)) return 0;
  *pos += len;
  return 1;
}

static int ot_any_value(const otlp_ctx *x, size_t pos, size_t end, int depth);

/* KeyValue{ key(1) string, value(2) AnyValue } whose value has nesting depth `depth`. */
static int ot_key_value(const otlp_ctx *x, size_t pos, size_t end, int depth) {
  const uint8_t *b = x->b;
  while (pos < end) {
    uint32_t f;
    int w;
    size_t len;
    if (!ot_key(b, &pos, end, &f, &w)) return 0;
    if (f == 1) {
      if (!ot_string(x, w, &pos, end)) return 0;
    } else if (f == 2) {
      if (w != OT_LEN || !ot_len(b, &pos, end, &len)) return 0;
      if (!ot_any_value(x, pos, pos + len, depth)) return 0;
      pos += len;
    } else if (!ot_skip(w, b, &pos, end)) {
      return 0;
    }
  }
  return 1;
}

/* ArrayValue{ values(1) AnyValue } or KeyValueList{ values(1) KeyValue }, members at `depth`. */
static int ot_list(const otlp_ctx *x, size_t pos, size_t end, int depth, int of_key_values) {
  const uint8_t *b = x->b;
  while (pos < end) {
    uint32_t f;
    int w;
    size_t len;
    if (!ot_key(b, &pos, end, &f, &w)) return 0;
    if (f == 1) {
      if (w != OT_LEN || !ot_len(b, &pos, end, &len)) return 0;
      if (!(of_key_values ? ot_key_value(x, pos, pos + len, depth) : ot_any_value(x, pos, pos + len, depth))) return 0;
      pos += len;
    } else if (!ot_skip(w, b, &pos, end)) {
      return 0;
    }
  }
  return 1;
}

static int ot_any_value(const otlp_ctx *x, size_t pos, size_t end, int depth) {
  const uint8_t *b = x->b;
  if (depth > x->max_depth) return 0;
  while (pos < end) {
    uint32_t f;
    int w;
    size_t len;
    if (!ot_key(b, &pos, end, &f, &w)) return 0;
    switch (f) {
      case 1: /* string_value */
        if (!ot_string(x, w, &pos, end)) return 0;
        break;
      case 2: /* bool_value */
      case 3: /* int_value */
        if (w != OT_VARINT || !ot_skip_varint(b, &pos, end)) return 0;
        break;
      case 4: /* double_value */
        if (w != OT_I64 || !ot_skip(w, b, &pos, end)) return 0;
        break;
      case 5: /* array_value */
      case 6: /* kvlist_value */
        if (w != OT_LEN || !ot_len(b, &pos, end, &len)) return 0;
        if (!ot_list(x, pos, pos + len, depth + 1, f == 6)) return 0;
        pos += len;
        break;
      case 7: /* bytes_value */
        if (w != OT_LEN || !ot_skip(w, b, &pos, end)) return 0;
        break;
      default:
        if (!ot_skip(w, b, &pos, end)) return 0;
    }
  }
  return 1;
}

/* One LogRecord message, b[pos, end). */
static int ot_log_record(const otlp_ctx *x, size_t pos, size_t end) {
  const uint8_t *b = x->b;
  while (pos < end) {
    uint32_t f;
    int w;
    size_t len;
    if (!ot_key(b, &pos, end, &f, &w)) return 0;
    switch (f) {
      case 1: /* time_unix_nano */
      case 11: /* observed_time_unix_nano */
        if (w != OT_I64 || !ot_skip(w, b, &pos, end)) return 0;
        break;
      case 2: /* severity_number */
      case 7: /* dropped_attributes_count */
        if (w != OT_VARINT || !ot_skip_varint(b, &pos, end)) return 0;
        break;
      case 3: /* severity_text */
      case 12: /* event_name */
        if (!ot_string(x, w, &pos, end)) return 0;
        break;
      case 5: /* body */
        if (w != OT_LEN || !ot_len(b, &pos, end, &len)) return 0;
        if (!ot_any_value(x, pos, pos + len, 1)) return 0;
        pos += len;
        break;
      case 6: /* attributes */
        if (w != OT_LEN || !ot_len(b, &pos, end, &len)) return 0;
        if (!ot_key_value(x, pos, pos + len, 1)) return 0;
        pos += len;
        break;
      case 8: /* flags */
        if (w != OT_I32 || !ot_skip(w, b, &pos, end)) return 0;
        break;
      case 9: /* trace_id */
      case 10: /* span_id */
        if (w != OT_LEN || !ot_len(b, &pos, end, &len)) return 0;
        if (len != 0 && len != (f == 9 ? 16u : 8u)) return 0;
        pos += len;
        break;
      default:
        if (!ot_skip(w, b, &pos, end)) return 0;
    }
  }
  return 1;
}

/*
 * The records b[ranges[k], ranges[k+1]) for k = 0, 2, … < n: -1 when every one is valid, else
 * the k of the first that is not. The caller has checked the ranges against the body and
 * max_depth against OTLP_CHECK_MAX_DEPTH.
 */
static long otlp_check_records(const uint8_t *b, const uint32_t *ranges, size_t n, int max_depth) {
  otlp_ctx x = { b, max_depth };
  for (size_t k = 0; k + 1 < n; k += 2) {
    if (!ot_log_record(&x, ranges[k], ranges[k + 1])) return (long)k;
  }
  return -1;
}

#endif
