/**
 * EntryArena (src/otlp/wire.ts): the pooled memory the decoders build entries in. What matters is
 * that entries built in an arena are the same bytes as without one, that memory is reused only
 * after release(), and that a use after release is caught (take throws, tests poison the memory).
 */
import { describe, expect, it } from 'vitest';
import { EntryArena, decodeLogsJson, decodeLogsProtobuf } from '../../src/otlp/index.js';
import { FRAME_HEAD_ROOM, FRAME_TAIL_ROOM, FramedEntries } from '../../src/ledger/types.js';
import { encodeRequest, sampleRequest, sampleRequestJson } from '../receiver/helpers.js';

const LIMITS = { maxNestingDepth: 32 };

describe('EntryArena', () => {
  it('hands out room in one slab until it is full, then a new slab', () => {
    const a = new EntryArena();
    const [s1, o1] = a.take(40_000)!;
    const [s2, o2] = a.take(20_000)!;
    const [s3, o3] = a.take(10_000)!; // 70,000 > 64 KiB: next slab
    expect(s1.byteLength).toBe(64 * 1024);
    expect([o1, o2, o3]).toEqual([0, 40_000, 0]);
    expect(s2).toBe(s1);
    expect(s3).not.toBe(s1);
    a.release();
  });

  it('leaves sizes over one slab to the caller', () => {
    const a = new EntryArena();
    expect(a.take(64 * 1024 + 1)).toBeUndefined();
    a.release();
  });

  it('reuses a slab only after release, and release twice gives it back once', () => {
    const a = new EntryArena();
    const [slab] = a.take(100)!;
    const b = new EntryArena();
    expect(b.take(100)![0]).not.toBe(slab); // a still holds it
    a.release();
    a.release();
    const c = new EntryArena();
    const d = new EntryArena();
    const got = [c.take(100)![0], d.take(100)![0]];
    // Released once, so at most one of the next two arenas may get it (twice would share memory).
    expect(got.filter((s) => s === slab)).toHaveLength(1);
    for (const x of [b, c, d]) x.release();
  });

  it('refuses take() after release()', () => {
    const a = new EntryArena();
    a.release();
    expect(() => a.take(10)).toThrow(/after release/);
  });
});

describe('decoding into an arena', () => {
  for (const [name, decode, body] of [
    ['protobuf', decodeLogsProtobuf, sampleRequest(1500)],
    ['JSON', decodeLogsJson, new TextEncoder().encode(sampleRequestJson(1500))],
  ] as const) {
    it(`${name}: the same entries as without an arena, in the arena's memory, poisoned once released`, () => {
      const plain = decode(body, LIMITS);
      const arena = new EntryArena();
      const pooled = decode(body, LIMITS, arena);
      expect(plain.ok && pooled.ok).toBe(true);
      if (!plain.ok || !pooled.ok) return;
      expect(pooled.entries.map((e) => Buffer.from(e).toString('hex'))).toEqual(plain.entries.map((e) => Buffer.from(e).toString('hex')));
      // 1,500 records of ~100 bytes need more than one 64 KiB slab: the entries span several.
      const slabs = new Set(pooled.entries.map((e) => e.buffer));
      expect(slabs.size).toBeGreaterThan(1);
      for (const s of slabs) expect(s.byteLength).toBe(64 * 1024);
      // vitest.config.ts turns poisoning on: what a use after release would read.
      expect(process.env.SEALTRAIL_ARENA_POISON).toBe('1');
      arena.release();
      expect(pooled.entries[0]!.every((x) => x === 0xdb)).toBe(true);
      expect(plain.entries[0]!.some((x) => x !== 0xdb)).toBe(true);
    });
  }

  /** Every run is whole frames back to back: FRAME_HEAD_ROOM before each entry, FRAME_TAIL_ROOM after it. */
  function expectFrameLayout(f: FramedEntries): void {
    expect(f.runs).toHaveLength(f.spans.length);
    let count = 0;
    f.runs.forEach((run, r) => {
      const sp = f.spans[r]!;
      let at = 0;
      for (let k = 0; k < sp.length; k += 2) {
        expect(sp[k], `run ${r} entry ${k / 2} start`).toBe(at + FRAME_HEAD_ROOM);
        at = sp[k + 1]! + FRAME_TAIL_ROOM;
        count++;
      }
      expect(at, `run ${r} length`).toBe(run.length);
    });
    expect(f.count).toBe(count);
  }

  const multiScope = encodeRequest({
    resourceLogs: [0, 1].map((r) => ({
      resource: { attributes: [{ key: 'service.name', value: { stringValue: `svc-${r}`.padEnd(30 * r + 8, '-') } }] },
      scopeLogs: [0, 1, 2].map((sc) => ({
        scope: { name: `scope-${r}-${sc}` },
        logRecords: Array.from({ length: 40 * sc + 1 }, (_, i) => ({ body: { stringValue: `r${r} s${sc} #${i} `.repeat(1 + (i % 40)) } })),
      })),
    })),
  });
  for (const [name, decode, body] of [
    ['protobuf', decodeLogsProtobuf, sampleRequest(1500)],
    ['protobuf, several resources and scopes', decodeLogsProtobuf, multiScope],
    ['JSON', decodeLogsJson, new TextEncoder().encode(sampleRequestJson(1500))],
  ] as const) {
    it(`${name}: framed, the same entries as plain ones, laid out as whole frames in the arena's slabs`, () => {
      const plain = decode(body, LIMITS);
      expect(plain.ok).toBe(true);
      if (!plain.ok) return;
      const hex = (es: readonly Uint8Array[]) => es.map((e) => Buffer.from(e).toString('hex'));
      for (const arena of [new EntryArena(), undefined]) {
        const framed = decode(body, LIMITS, arena, true);
        expect(framed.ok).toBe(true);
        if (!framed.ok) return;
        expect(framed.entries).toBeInstanceOf(FramedEntries);
        expect(hex(framed.entries.toArray())).toEqual(hex(plain.entries));
        expect(framed.entries.entryBytes).toBe(plain.entries.reduce((a, e) => a + e.length, 0));
        expectFrameLayout(framed.entries);
        if (arena) {
          for (const run of framed.entries.runs) expect(run.buffer.byteLength).toBe(64 * 1024);
          arena.release();
          expect(framed.entries.runs[0]!.every((x) => x === 0xdb)).toBe(true); // poisoned: the arena's memory
        }
      }
    });
  }

  it('a failed decode leaves nothing behind that the next request could see', () => {
    const arena = new EntryArena();
    const bad = decodeLogsProtobuf(new Uint8Array([0x0a, 0x05, 0x01]), LIMITS, arena);
    expect(bad.ok).toBe(false);
    arena.release();
    const next = new EntryArena();
    const ok = decodeLogsProtobuf(sampleRequest(2), LIMITS, next);
    expect(ok.ok && ok.entries.length).toBe(2);
    next.release();
  });
});
