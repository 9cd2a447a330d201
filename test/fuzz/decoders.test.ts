/**
 * Issue 8 / G7 — fuzzing both OTLP decoders with fast-check: random bytes, random JSON, and
 * mutations of valid requests (bit flips, truncation, insertion, duplication, splicing; in JSON,
 * values replaced by arbitrary JSON). Property: the decoder never throws, and either refuses with a
 * non-empty message or returns entries that protobufjs (an independent implementation) decodes as
 * ResourceLogs holding exactly one ScopeLogs with exactly one LogRecord.
 *
 * Runs: FUZZ_RUNS (default 200 per property; `npm run fuzz` raises it). A failure prints the seed
 * and the shrunk counterexample; replay with FUZZ_SEED=<seed>.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeLogsJson, decodeLogsProtobuf } from '../../src/otlp/index.js';
import { otlpRoot, sampleRequest, sampleRequestJson } from '../receiver/helpers.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
const SEED = process.env.FUZZ_SEED !== undefined ? { seed: Number(process.env.FUZZ_SEED) } : {};
const LIMITS = { maxNestingDepth: 32 };
const params = { numRuns: RUNS, ...SEED };
/** Per-test time budget: the JSON property is the slowest at about 7 ms a run. */
const BUDGET_MS = Math.max(30_000, RUNS * 10);

type Decoded = ReturnType<typeof decodeLogsProtobuf>;

/** The property every decode result must have. Throws (fails the run) otherwise. */
function checkResult(r: Decoded): void {
  if (!r.ok) {
    expect(typeof r.message).toBe('string');
    expect(r.message.length).toBeGreaterThan(0);
    return;
  }
  const RL = otlpRoot().lookupType('opentelemetry.proto.logs.v1.ResourceLogs');
  for (const e of r.entries) {
    expect(e).toBeInstanceOf(Uint8Array);
    const m = RL.toObject(RL.decode(e), { arrays: true }) as { scopeLogs: Array<{ logRecords: unknown[] }> };
    expect(m.scopeLogs).toHaveLength(1);
    expect(m.scopeLogs[0]!.logRecords).toHaveLength(1);
  }
}

function decodeBoth(bytes: Uint8Array): void {
  let pb: Decoded | undefined;
  let js: Decoded | undefined;
  expect(() => (pb = decodeLogsProtobuf(bytes, LIMITS))).not.toThrow();
  expect(() => (js = decodeLogsJson(bytes, LIMITS))).not.toThrow();
  checkResult(pb!);
  checkResult(js!);
}

/** A richer valid protobuf request, to give mutations more structure to break. */
function richRequest(): Uint8Array {
  return sampleRequest(3);
}

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'duplicate'; at: number; len: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }),
);

function mutate(base: Uint8Array, ms: readonly Mutation[]): Uint8Array {
  let b = Uint8Array.from(base);
  for (const m of ms) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    switch (m.kind) {
      case 'flip':
        b[at] = b[at]! ^ (1 << m.bit);
        break;
      case 'set':
        b[at] = m.value;
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'insert':
        b = Uint8Array.from([...b.subarray(0, at), ...m.bytes, ...b.subarray(at)]);
        break;
      case 'delete':
        b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + m.len)]);
        break;
      case 'duplicate':
        b = Uint8Array.from([...b.subarray(0, at + m.len), ...b.subarray(at, at + m.len), ...b.subarray(at + m.len)]);
        break;
    }
  }
  return b;
}

describe('fuzz: OTLP decoders never throw and answer well-formed results', () => {
  it('random bytes (both decoders)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => decodeBoth(bytes)), params);
  }, BUDGET_MS);

  it('mutated valid protobuf requests', () => {
    const base = richRequest();
    let accepted = 0;
    fc.assert(
      fc.property(fc.array(mutationArb, { minLength: 1, maxLength: 6 }), (ms) => {
        const bytes = mutate(base, ms);
        const r = decodeLogsProtobuf(bytes, LIMITS);
        checkResult(r);
        if (r.ok) accepted++;
      }),
      params,
    );
    // Both outcomes occur: the mutations are neither all fatal nor all harmless.
    console.log(`mutated protobuf: ${accepted}/${RUNS} still valid`);
  }, BUDGET_MS);

  it('random protobuf-shaped messages: nested length-delimited fields with random tags', () => {
    // Build wire-format-valid but semantically random messages: tag, then a payload of the wire type.
    const field: fc.Memo<Uint8Array> = fc.memo((depth) =>
      fc
        .tuple(
          fc.integer({ min: 1, max: 20 }),
          depth <= 1
            ? fc.oneof(fc.uint8Array({ maxLength: 12 }).map((p) => ({ wt: 2, p })), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((v) => ({ wt: 0, p: varint(v) })))
            : fc.oneof(
                fc.array(field(depth - 1), { maxLength: 4 }).map((fs) => ({ wt: 2, p: concat(fs) })),
                fc.uint8Array({ maxLength: 12 }).map((p) => ({ wt: 2, p })),
                fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((v) => ({ wt: 0, p: varint(v) })),
                fc.uint8Array({ minLength: 8, maxLength: 8 }).map((p) => ({ wt: 1, p })),
                fc.uint8Array({ minLength: 4, maxLength: 4 }).map((p) => ({ wt: 5, p })),
              ),
        )
        .map(([no, { wt, p }]) => concat([varint(BigInt((no << 3) | wt)), wt === 2 ? varint(BigInt(p.length)) : new Uint8Array(0), p])),
    );
    fc.assert(
      fc.property(fc.array(field(5), { maxLength: 4 }), (fs) => {
        const bytes = concat(fs);
        const r = decodeLogsProtobuf(bytes, LIMITS);
        checkResult(r);
      }),
      params,
    );
  }, BUDGET_MS);

  it('random JSON values and mutated valid JSON requests', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => decodeBoth(new TextEncoder().encode(JSON.stringify(v)))), params);
    const valid = JSON.parse(sampleRequestJson(3)) as unknown;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.jsonValue({ maxDepth: 3 })), { minLength: 1, maxLength: 4 }), (edits) => {
        const doc = structuredClone(valid);
        for (const [pick, value] of edits) replaceSomewhere(doc, pick, value);
        const r = decodeLogsJson(new TextEncoder().encode(JSON.stringify(doc)), LIMITS);
        checkResult(r);
      }),
      params,
    );
    const text = new TextEncoder().encode(sampleRequestJson(2));
    fc.assert(fc.property(fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (ms) => checkResult(decodeLogsJson(mutate(text, ms), LIMITS))), params);
  }, BUDGET_MS);

  it('deep JSON nesting (up to 30000 levels) never overflows the stack; beyond max_nesting_depth it is refused', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30_000 }), (depth) => {
        // Built as text: JSON.stringify itself would overflow on such depths.
        const body = '{"arrayValue":{"values":['.repeat(depth) + '{"stringValue":"x"}' + ']}}'.repeat(depth);
        const doc = `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":${body}}]}]}]}`;
        const r = decodeLogsJson(new TextEncoder().encode(doc), LIMITS);
        checkResult(r);
        if (depth > 40) expect(r.ok).toBe(false);
        if (depth <= 20) expect(r.ok).toBe(true);
      }),
      { ...params, numRuns: Math.min(RUNS, 30) },
    );
  }, BUDGET_MS);

  it('deep protobuf nesting (up to 3000 levels) never overflows the stack; beyond max_nesting_depth it is refused', () => {
    const ld = (field: number, payload: Uint8Array): Uint8Array => concat([varint(BigInt((field << 3) | 2)), varint(BigInt(payload.length)), payload]);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3000 }), (depth) => {
        // AnyValue{string_value(1)} wrapped depth times in AnyValue{array_value(5): ArrayValue{values(1)}}.
        let v = ld(1, new TextEncoder().encode('x'));
        for (let i = 0; i < depth; i++) v = ld(5, ld(1, v));
        const req = ld(1, ld(2, ld(2, ld(5, v)))); // request.resource_logs → scope_logs → log_records → body
        const r = decodeLogsProtobuf(req, LIMITS);
        checkResult(r);
        if (depth > 40) expect(r.ok).toBe(false);
        if (depth <= 20) expect(r.ok).toBe(true);
      }),
      { ...params, numRuns: Math.min(RUNS, 30) },
    );
  }, BUDGET_MS);
});

function varint(v: bigint): Uint8Array {
  const out: number[] = [];
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Replaces the `pick`-th (mod count) value reachable in `doc` (depth-first) by `value`. */
function replaceSomewhere(doc: unknown, pick: number, value: unknown): void {
  const slots: Array<{ parent: Record<string, unknown> | unknown[]; key: string | number }> = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach((c, i) => (slots.push({ parent: node, key: i }), walk(c)));
    else if (node !== null && typeof node === 'object') {
      for (const [k, c] of Object.entries(node as Record<string, unknown>)) {
        slots.push({ parent: node as Record<string, unknown>, key: k });
        walk(c);
      }
    }
  };
  walk(doc);
  if (slots.length === 0) return;
  const s = slots[pick % slots.length]!;
  (s.parent as Record<string | number, unknown>)[s.key] = value;
}
