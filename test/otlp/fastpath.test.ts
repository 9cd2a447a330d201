/**
 * The decoders' fast paths (key-byte dispatch, 8-byte ASCII scan, two-byte lengths, single-copy
 * entry assembly; see src/otlp/decode-protobuf.ts "Fast dispatch") must not change what a request
 * decodes to — not the entries (they are hashed into the log) and not the refusals. Reference: a
 * frozen copy of src/otlp as it was before the fast paths (test/otlp/reference/, src/otlp at commit
 * 444a2e6), run on the same inputs; results must be equal, messages included.
 *
 * Inputs: wire-level messages generated from the OTLP grammar with deliberate faults (wrong wire
 * types, non-minimal keys and lengths, unknown fields, invalid UTF-8, bad id lengths, fixed-width
 * values cut short, deep nesting), byte-level mutations of realistic requests, and small limits.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeLogsJson, decodeLogsProtobuf } from '../../src/otlp/index.js';
import { EntryArena } from '../../src/otlp/wire.js';
import type { DecodeLimits, DecodeResult } from '../../src/otlp/index.js';
import { decodeLogsJson as refJson } from './reference/decode-json.js';
import { decodeLogsProtobuf as refProtobuf } from './reference/decode-protobuf.js';
import { cat, ld, oneScope, varint } from './wirebuild.js';
import { applyEdits, byteEdits, limitsArb, maybeTruncated } from './wiregen.js';
import { encodeRequest as benchRequest } from '../../bench/payloads.js';

const RUNS = Number(process.env.FC_RUNS ?? 300);

function view(r: DecodeResult): unknown {
  return r.ok ? { ok: true, entries: r.entries.map((e) => Buffer.from(e.buffer, e.byteOffset, e.byteLength).toString('hex')) } : r;
}

function sameAsReference(body: Uint8Array, limits: DecodeLimits): DecodeResult {
  const ours = decodeLogsProtobuf(body, limits);
  expect(view(ours)).toEqual(view(refProtobuf(body, limits)));
  // The receivers' form — frame runs in an arena — must hold the same entries and give the same refusals.
  const arena = new EntryArena();
  const framed = decodeLogsProtobuf(body, limits, arena, true);
  expect(view(framed.ok ? { ok: true, entries: framed.entries.toArray() } : framed)).toEqual(view(ours));
  arena.release();
  return ours;
}

describe('decodeLogsProtobuf fast paths agree with the reference decoder', () => {
  it('on generated wire-level requests with faults, under varied limits (entries and messages)', () => {
    let accepted = 0;
    let refused = 0;
    let inRecords = 0;
    fc.assert(
      fc.property(maybeTruncated, limitsArb, (body, limits) => {
        const lim: DecodeLimits = limits.maxDecodedBytes === undefined ? { maxNestingDepth: limits.maxNestingDepth } : limits;
        const r = sameAsReference(body, lim);
        if (r.ok) accepted++;
        else if (r.message.includes('logRecords[')) inRecords++;
        else refused++;
      }),
      { numRuns: RUNS * 10 },
    );
    // Both outcomes must be exercised for the comparison to mean anything.
    expect(accepted).toBeGreaterThan(RUNS);
    expect(refused).toBeGreaterThan(RUNS / 2);
    expect(inRecords).toBeGreaterThan(RUNS / 2);
  });

  it('on ScopeLogs of many records of mixed sizes, with fields between them (entry assembly, head reuse)', () => {
    // Valid records of 0 to ~400 bytes (severity_text, body string, ids), so that requests get through.
    const rec = fc
      .tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 100 }), fc.boolean())
      .map(([n, m, ids]) =>
        cat(
          n > 0 ? cat([0x1a], varint(n), new Uint8Array(n).fill(0x41)) : [],
          m > 0 ? ld(5, cat([0x0a], varint(m), new Uint8Array(m).fill(0x62))) : [],
          ids ? cat(ld(9, new Uint8Array(16)), ld(10, new Uint8Array(8))) : [],
        ),
      );
    const between = fc.oneof(
      { weight: 4, arbitrary: fc.constant(new Uint8Array(0)) },
      fc.integer({ min: 0, max: 3000 }).map((n) => cat(varint((20 << 3) | 2), varint(n), new Uint8Array(n))),
      fc.constant(ld(1, ld(1, new TextEncoder().encode('lib')))), // a scope between records
    );
    const sl = fc
      .tuple(fc.array(fc.tuple(rec, between), { minLength: 8, maxLength: 60 }), fc.uint8Array({ maxLength: 400 }))
      .map(([items, res]) => {
        const sBody = cat(...items.flatMap(([r, x]) => [cat([0x12], varint(r.length), r), x]));
        // Resource{ dropped_attributes_count: 1, unknown field 20: `res` } makes entry heads of varied size.
        const resource = cat([0x10, 0x01], varint((20 << 3) | 2), varint(res.length), res);
        return ld(1, ld(1, resource), ld(2, sBody));
      });
    let accepted = 0;
    fc.assert(
      fc.property(sl, (body) => {
        if (sameAsReference(body, { maxNestingDepth: 32 }).ok) accepted++;
      }),
      { numRuns: RUNS },
    );
    expect(accepted).toBeGreaterThan(RUNS / 10);
  });

  it('on records larger than one 64 KiB allocation of entries, between small ones', () => {
    const big = (n: number) => cat([0x1a], varint(n), new Uint8Array(n).fill(0x41));
    const body = oneScope(big(10), big(70_000), big(10), big(10), big(65_530), big(200_000), big(0));
    const r = sameAsReference(body, { maxNestingDepth: 32 });
    expect(r.ok && r.entries.map((e) => e.length)).toEqual([16, 70_012, 16, 16, 65_542, 200_012, 6]);
  });

  it('on byte-level mutations of the benchmark request (bench/payloads.ts)', () => {
    const seed = benchRequest(3).protobuf;
    fc.assert(
      fc.property(byteEdits, (edits) => {
        sameAsReference(applyEdits(seed, edits), { maxNestingDepth: 32 });
      }),
      { numRuns: RUNS * 5 },
    );
  });

  it('on the benchmark requests themselves, from a Buffer and at an odd byte offset', () => {
    for (const n of [1, 100, 1000]) {
      const { protobuf } = benchRequest(n);
      const odd = new Uint8Array(protobuf.length + 3);
      odd.set(protobuf, 3);
      for (const body of [protobuf, Buffer.from(protobuf), odd.subarray(3)]) {
        const r = sameAsReference(body, { maxNestingDepth: 32 });
        expect(r.ok && r.entries.length).toBe(n);
      }
    }
  });
});

describe('decodeLogsJson agrees with the reference decoder', () => {
  it('on the benchmark requests', () => {
    for (const n of [1, 100]) {
      const { json } = benchRequest(n);
      expect(view(decodeLogsJson(json, { maxNestingDepth: 32 }))).toEqual(view(refJson(json, { maxNestingDepth: 32 })));
    }
  });

  it('on ids, 64-bit integers and AnyValue members of every spelling (valid or not)', () => {
    let accepted = 0;
    // Mostly valid values (so that whole requests get through and their entries are compared),
    // sometimes anything at all (so that the refusals are compared too).
    const hexDigits = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: n, maxLength: n });
    const hexId = (n: number) =>
      fc.oneof(
        { weight: 8, arbitrary: fc.oneof(hexDigits(n), fc.constant('')) },
        fc.integer({ min: 0, max: 40 }).chain(hexDigits),
        fc.constantFrom('zz', '0g'.repeat(8), 'F'.repeat(n)),
        fc.jsonValue({ maxDepth: 1 }),
      );
    const int64 = fc.oneof(
      { weight: 8, arbitrary: fc.oneof(fc.bigInt(0n, (1n << 64n) - 1n).map(String), fc.integer({ min: 0, max: 2 ** 40 }).map(String), fc.integer({ min: -5, max: 2 ** 31 })) },
      fc.bigInt(-(1n << 64n), 1n << 65n).map(String),
      fc.integer({ min: 0, max: 25 }).chain((n) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: n, maxLength: n })),
      fc.constantFrom('-0', '0', '000', '+1', ' 1', '1e3', '9007199254740993', '18446744073709551615', '18446744073709551616', '-9223372036854775808'),
      fc.oneof(fc.integer(), fc.double(), fc.constantFrom(-0, 2 ** 53, -(2 ** 53), 2 ** 64)),
      fc.jsonValue({ maxDepth: 1 }),
    );
    const signed = fc.oneof({ weight: 3, arbitrary: fc.bigInt(-(1n << 63n), (1n << 63n) - 1n).map(String) }, int64);
    const member = fc.oneof(
      { weight: 3, arbitrary: fc.record({ stringValue: fc.string() }) },
      // Around the writer's 1- and 2-byte length prefixes, ASCII or not.
      fc.record({ stringValue: fc.oneof(fc.string({ minLength: 120, maxLength: 300 }), fc.string({ unit: 'binary', minLength: 60, maxLength: 200 })) }),
      { weight: 3, arbitrary: fc.record({ intValue: signed }) },
      fc.record({ stringValue: fc.jsonValue({ maxDepth: 1 }) }),
      fc.record({ boolValue: fc.oneof(fc.boolean(), fc.jsonValue({ maxDepth: 1 })) }),
      fc.record({ doubleValue: fc.oneof(fc.double(), fc.constantFrom('NaN', 'Infinity', '-Infinity', '1.5', 'x')) }),
      fc.record({ stringValue: fc.string(), intValue: int64 }, { requiredKeys: [] }),
      fc.record({ bytesValue: fc.string(), kvlistValue: fc.constant({ values: [] }), arrayValue: fc.constant({}) }, { requiredKeys: [] }),
    );
    const record = fc.record(
      { traceId: hexId(32), spanId: hexId(16), timeUnixNano: int64, observedTimeUnixNano: int64, body: member, attributes: fc.array(fc.record({ key: fc.string(), value: member }), { maxLength: 3 }) },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.array(record, { maxLength: 3 }), (logRecords) => {
        const body = new TextEncoder().encode(JSON.stringify({ resourceLogs: [{ resource: {}, scopeLogs: [{ scope: { name: 's' }, logRecords }] }] }));
        const ours = decodeLogsJson(body, { maxNestingDepth: 32 });
        expect(view(ours)).toEqual(view(refJson(body, { maxNestingDepth: 32 })));
        if (ours.ok && ours.entries.length > 0) accepted++;
      }),
      { numRuns: RUNS * 5 },
    );
    expect(accepted).toBeGreaterThan(RUNS / 5);
  });

  it('on requests rendered from generated protobuf ones, and on random JSON in OTLP places', () => {
    const anyJson = fc.jsonValue({ maxDepth: 3 });
    const shaped = fc.oneof(
      anyJson.map((v) => ({ resourceLogs: [{ resource: v, scopeLogs: [{ scope: v, logRecords: [v] }] }] })),
      anyJson.map((v) => ({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: v, attributes: [{ key: 'k', value: v }], traceId: v, timeUnixNano: v }] }] }] })),
      anyJson.map((v) => ({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { kvlistValue: { values: [{ key: 'a', value: v }] } }, severityNumber: v, flags: v }] }] }] })),
    );
    fc.assert(
      fc.property(shaped, limitsArb, (doc, limits) => {
        const body = new TextEncoder().encode(JSON.stringify(doc));
        const lim: DecodeLimits = limits.maxDecodedBytes === undefined ? { maxNestingDepth: limits.maxNestingDepth } : limits;
        expect(view(decodeLogsJson(body, lim))).toEqual(view(refJson(body, lim)));
      }),
      { numRuns: RUNS * 3 },
    );
  });
});
