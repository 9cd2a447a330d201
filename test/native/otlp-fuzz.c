/*
 * Memory-safety run of the addon's OTLP LogRecord check on untrusted bytes (native/otlp_check.h),
 * built with AddressSanitizer and UBSan by test/otlp/native-fuzz.test.ts.
 * Whether the check's verdicts are right is tested against the JS walker elsewhere
 * (test/otlp/native-check.test.ts); this run looks only for reads or writes outside the inputs and
 * for undefined behaviour, on inputs the JS tests cannot reach cheaply: millions of mutated
 * records, each in a heap block of exactly its size (so a one-byte over-read is reported), random
 * ranges and nesting limits, and AnyValue nesting down to OTLP_CHECK_MAX_DEPTH.
 *
 *   gcc -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -I native test/native/otlp-fuzz.c -o /tmp/otlp-fuzz
 *   /tmp/otlp-fuzz ITERATIONS SEED     (prints "ok <whole records valid> <invalid>" and exits 0)
 */
#include <stdio.h>
#include <stdlib.h>
#include "otlp_check.h"

static uint64_t rng_state;
static uint32_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 11);
}

typedef struct {
  uint8_t *p;
  size_t n, cap;
} buf;

static void put(buf *b, const void *src, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
    if (!b->p) abort();
  }
  memcpy(b->p + b->n, src, n);
  b->n += n;
}
static void put_byte(buf *b, uint8_t c) { put(b, &c, 1); }
static void put_varint(buf *b, uint64_t v) {
  while (v >= 0x80) {
    put_byte(b, (uint8_t)(v | 0x80));
    v >>= 7;
  }
  put_byte(b, (uint8_t)v);
}
static void put_ld(buf *b, uint32_t field, const buf *payload) {
  put_varint(b, (uint64_t)field << 3 | 2);
  put_varint(b, payload->n);
  put(b, payload->p, payload->n);
}
static void put_text(buf *b) {
  static const char *texts[] = { "INFO", "h\xc3\xa9llo", "\xe2\x9c\x93 ok", "\xf0\x9d\x84\x9e", "\xc0\x80", "\xed\xa0\x80", "abc\xe2\x82" };
  const char *t = texts[rnd() % 40 == 0 ? 4 + rnd() % 3 : rnd() % 4]; /* invalid UTF-8 now and then */
  size_t pad = rnd() % 3 == 0 ? rnd() % 300 : 0;
  for (size_t i = 0; i < pad; i++) put_byte(b, 'a');
  put(b, t, strlen(t));
}

/* An AnyValue `levels` deep (arrays and kvlists), with scalars of every kind at the bottom. */
static void any_value(buf *out, int levels) {
  buf v = { 0 };
  if (levels <= 0) {
    switch (rnd() % 5) {
      case 0: { buf s = { 0 }; put_text(&s); put_ld(&v, 1, &s); free(s.p); break; }
      case 1: put_byte(&v, 0x18); put_varint(&v, ((uint64_t)rnd() << 32) | rnd()); break;
      case 2: put_byte(&v, 0x21); for (int i = 0; i < 8; i++) put_byte(&v, (uint8_t)rnd()); break;
      case 3: put_byte(&v, 0x10); put_byte(&v, 1); break;
      default: { buf s = { 0 }; put_byte(&s, 0xff); put_ld(&v, 7, &s); free(s.p); }
    }
  } else if (rnd() % 2) {
    buf arr = { 0 }, inner = { 0 };
    any_value(&inner, levels - 1);
    put_ld(&arr, 1, &inner);
    put_ld(&v, 5, &arr);
    free(arr.p);
    free(inner.p);
  } else {
    buf list = { 0 }, kv = { 0 }, key = { 0 }, inner = { 0 };
    put_text(&key);
    put_ld(&kv, 1, &key);
    any_value(&inner, levels - 1);
    put_ld(&kv, 2, &inner);
    put_ld(&list, 1, &kv);
    put_ld(&v, 6, &list);
    free(list.p);
    free(kv.p);
    free(key.p);
    free(inner.p);
  }
  put(out, v.p, v.n);
  free(v.p);
}

/* A LogRecord with every field kind, nested values up to `depth` levels. */
static void log_record(buf *r, int depth) {
  buf f = { 0 };
  put_byte(r, 0x09);
  for (int i = 0; i < 8; i++) put_byte(r, (uint8_t)rnd());
  put_byte(r, 0x10);
  put_varint(r, rnd() % 25);
  f.n = 0; put_text(&f); put_ld(r, 3, &f);
  f.n = 0; any_value(&f, depth); put_ld(r, 5, &f);
  for (int a = 0; a < 3; a++) {
    buf kv = { 0 }, key = { 0 }, val = { 0 };
    put_text(&key);
    put_ld(&kv, 1, &key);
    any_value(&val, (int)(rnd() % 3));
    put_ld(&kv, 2, &val);
    put_ld(r, 6, &kv);
    free(kv.p); free(key.p); free(val.p);
  }
  f.n = 0; for (int i = 0; i < 16; i++) put_byte(&f, (uint8_t)rnd()); put_ld(r, 9, &f);
  f.n = 0; for (int i = 0; i < 8; i++) put_byte(&f, (uint8_t)rnd()); put_ld(r, 10, &f);
  put_byte(r, 0x45);
  for (int i = 0; i < 4; i++) put_byte(r, (uint8_t)rnd());
  f.n = 0; put_text(&f); put_ld(r, 12, &f); /* event_name last: a string that ends the buffer */
  free(f.p);
}

static void mutate(buf *r) {
  int ops = 1 + (int)(rnd() % 4);
  for (int k = 0; k < ops && r->n > 0; k++) {
    size_t at = rnd() % r->n;
    switch (rnd() % 5) {
      case 0: r->p[at] = (uint8_t)rnd(); break;
      case 1: r->p[at] ^= (uint8_t)(1u << (rnd() % 8)); break;
      case 2: r->n = at; break; /* truncate */
      case 3: memmove(r->p + at, r->p + at + 1, r->n - at - 1); r->n--; break;
      default: r->p[at] = (uint8_t)(0x80 | rnd()); /* a continuation bit where there was none */
    }
  }
}

int main(int argc, char **argv) {
  long iterations = argc > 1 ? atol(argv[1]) : 100000;
  rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) * 2654435761ULL + 1 : 88172645463325252ULL;
  long valid = 0, invalid = 0;
  for (long it = 0; it < iterations; it++) {
    buf r = { 0 };
    int deep = rnd() % 512 == 0;
    log_record(&r, deep ? (int)(rnd() % (OTLP_CHECK_MAX_DEPTH + 2)) : (int)(rnd() % 4));
    if (rnd() % 4 != 0) mutate(&r);
    if (rnd() % 50 == 0) for (size_t i = 0; i < r.n; i++) r.p[i] = (uint8_t)rnd(); /* pure noise */
    /* Exactly-sized heap copy: any read past the end is reported. */
    uint8_t *body = malloc(r.n ? r.n : 1);
    if (!body) abort();
    memcpy(body, r.p, r.n);
    uint32_t ranges[4] = { 0, (uint32_t)r.n, 0, 0 };
    if (r.n > 0) {
      ranges[2] = rnd() % (uint32_t)r.n;
      ranges[3] = ranges[2] + rnd() % ((uint32_t)r.n - ranges[2] + 1);
    }
    int depth = (int)(rnd() % (OTLP_CHECK_MAX_DEPTH + 1));
    if (otlp_check_records(body, ranges, 2, depth) < 0) valid++; /* the whole record */
    else invalid++;
    /* A random part of it, in a block of its own (a read past the part's end is reported too). */
    size_t part_n = ranges[3] - ranges[2];
    uint8_t *part = malloc(part_n ? part_n : 1);
    if (!part) abort();
    memcpy(part, body + ranges[2], part_n);
    uint32_t part_range[2] = { 0, (uint32_t)part_n };
    (void)otlp_check_records(part, part_range, 2, depth);
    free(part);
    free(body);
    free(r.p);
  }
  printf("ok %ld %ld\n", valid, invalid);
  return 0;
}
