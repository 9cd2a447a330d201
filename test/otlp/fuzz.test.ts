/**
 * Robustness (G7): mutated and random inputs never make a decoder throw, every refusal carries a
 * message, and whatever the protobuf walker accepts, protobufjs reads too — with the same number of
 * records, each entry a ResourceLogs with one ScopeLogs and one LogRecord.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeLogsJson, decodeLogsProtobuf } from '../../src/otlp/index.js';
import { ExportLogsServiceRequest, LIMITS, ResourceLogs, encodeRequest } from './helpers.js';
import { applyEdits } from './wiregen.js';

const seedRequest = encodeRequest({
  resourceLogs: [
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }], droppedAttributesCount: 1 },
      scopeLogs: [
        {
          scope: { name: 'lib', version: '1.0' },
          logRecords: [
            {
              timeUnixNano: '1700000000000000000',
              severityNumber: 9,
              severityText: 'INFO',
              body: { kvlistValue: { values: [{ key: 'a', value: { arrayValue: { values: [{ intValue: '-3' }, { doubleValue: 2.5 }, { bytesValue: Buffer.from([1, 2]) }] } } }] } },
              attributes: [{ key: 'k', value: { boolValue: true } }],
              traceId: Buffer.alloc(16, 0xab),
              spanId: Buffer.alloc(8, 0xcd),
              flags: 1,
              eventName: 'e',
            },
            { body: { stringValue: 'second ✓' } },
          ],
          schemaUrl: 'https://example/s',
        },
      ],
      schemaUrl: 'https://example/r',
    },
  ],
});

/** Byte-level mutations of the seed: overwrite, insert, delete, truncate. */
const mutated = fc
  .array(
    fc.oneof(
      fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ op: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ op: fc.constant('delete' as const), at: fc.nat(), byte: fc.constant(0) }),
      fc.record({ op: fc.constant('truncate' as const), at: fc.nat(), byte: fc.constant(0) }),
    ),
    { minLength: 1, maxLength: 4 },
  )
  .map((ops) => applyEdits(seedRequest, ops.map(({ op, at, byte }) => [op, at, byte] as const)));

function recordCount(wire: Uint8Array): number {
  const req = ExportLogsServiceRequest.decode(wire) as unknown as { resourceLogs: { scopeLogs: { logRecords: unknown[] }[] }[] };
  return req.resourceLogs.reduce((n, rl) => n + rl.scopeLogs.reduce((m, sl) => m + sl.logRecords.length, 0), 0);
}

describe('fuzz', () => {
  it('mutated protobuf: never throws; accepted input is also readable by protobufjs, record for record', () => {
    let accepted = 0;
    fc.assert(
      fc.property(mutated, (wire) => {
        const r = decodeLogsProtobuf(wire, LIMITS);
        if (!r.ok) {
          expect(r.message.length).toBeGreaterThan(10);
          return;
        }
        accepted++;
        expect(r.entries.length).toBe(recordCount(wire));
        for (const e of r.entries) {
          const rl = ResourceLogs.decode(e) as unknown as { scopeLogs: { logRecords: unknown[] }[] };
          expect(rl.scopeLogs).toHaveLength(1);
          expect(rl.scopeLogs[0]!.logRecords).toHaveLength(1);
        }
      }),
      { numRuns: 2000 },
    );
    // Not vacuous: some mutations (e.g. inside a string's ASCII bytes) stay valid.
    expect(accepted).toBeGreaterThan(0);
  });

  it('random bytes: never throws', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const p = decodeLogsProtobuf(bytes, LIMITS);
        const j = decodeLogsJson(bytes, LIMITS);
        for (const r of [p, j]) if (!r.ok) expect(typeof r.message).toBe('string');
      }),
      { numRuns: 2000 },
    );
  });

  it('random JSON documents, also placed where OTLP objects belong: never throws', () => {
    const anyJson = fc.jsonValue({ maxDepth: 4 });
    const shaped = fc.oneof(
      anyJson,
      anyJson.map((v) => ({ resourceLogs: v })),
      anyJson.map((v) => ({ resourceLogs: [{ resource: v, scopeLogs: [{ scope: v, logRecords: [v] }] }] })),
      anyJson.map((v) => ({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: v, attributes: [{ key: 'k', value: v }], traceId: v, timeUnixNano: v }] }] }] })),
    );
    fc.assert(
      fc.property(shaped, (doc) => {
        const r = decodeLogsJson(new TextEncoder().encode(JSON.stringify(doc)), LIMITS);
        if (!r.ok) expect(r.message).toMatch(/^(request|resourceLogs)/);
      }),
      { numRuns: 2000 },
    );
  });
});
