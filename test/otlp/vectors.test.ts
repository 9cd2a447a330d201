/**
 * test/vectors/otlp-entries.json: request → entries, for independent implementations of the entry
 * format. Our decoders must reproduce every vector exactly, and protobufjs must read every entry as
 * a ResourceLogs with one ScopeLogs and one LogRecord.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeLogsJson, decodeLogsProtobuf } from '../../src/otlp/index.js';
import { ResourceLogs } from './helpers.js';

interface Vector {
  name: string;
  encoding: 'json' | 'protobuf';
  request: string;
  entries: string[];
}
const file = JSON.parse(readFileSync(new URL('../vectors/otlp-entries.json', import.meta.url), 'utf8')) as {
  limits: { max_nesting_depth: number };
  vectors: Vector[];
};

describe('test/vectors/otlp-entries.json', () => {
  it('has vectors', () => expect(file.vectors.length).toBeGreaterThanOrEqual(5));

  it.each(file.vectors.map((v) => [v.name, v] as const))('%s', (_name, v) => {
    const limits = { maxNestingDepth: file.limits.max_nesting_depth };
    const r = v.encoding === 'json' ? decodeLogsJson(new TextEncoder().encode(v.request), limits) : decodeLogsProtobuf(Buffer.from(v.request, 'hex'), limits);
    if (!r.ok) throw new Error(r.message);
    expect(r.entries.map((e) => Buffer.from(e).toString('hex'))).toEqual(v.entries);
    for (const hex of v.entries) {
      const rl = ResourceLogs.decode(Buffer.from(hex, 'hex')) as unknown as { scopeLogs: { logRecords: unknown[] }[] };
      expect(rl.scopeLogs).toHaveLength(1);
      expect(rl.scopeLogs[0]!.logRecords).toHaveLength(1);
    }
  });
});
