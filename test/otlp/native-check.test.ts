/**
 * The native LogRecord check (native/otlp_check.h, used by src/otlp/decode-protobuf.ts) must accept
 * exactly the records the JS walker accepts: a record it accepts is not walked in JS at all, so a
 * native check more lenient than the walker would let invalid records into the log. Compared here
 * record by record on generated LogRecords with faults (test/otlp/wiregen.ts), byte-level
 * mutations of the benchmark's records, and every nesting limit around the generated depths; and
 * through the whole decoder, where a refusal must still carry the walker's field path and message.
 * (test/otlp/fastpath.test.ts also runs with the check on: the decoder against the frozen reference.)
 */
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NATIVE_CHECK_MAX_DEPTH, nativeCheckLogRecords } from '../../src/ledger/native-hash.js';
import { logRecordRefusal, nativeRecordCheck, selfCheckRecords } from '../../src/otlp/decode-protobuf.js';
import { decodeLogsProtobuf } from '../../src/otlp/index.js';
import { encodeRequest as benchRequest } from '../../bench/payloads.js';
import { cat, ld, oneScope, str, varint } from './wirebuild.js';
import { applyEdits, byteEdits, logRecord } from './wiregen.js';

const RUNS = Number(process.env.FC_RUNS ?? 300);
const check = nativeCheckLogRecords;

/** The record ranges of a request built by oneScope() / bench/payloads.ts: ResourceLogs → ScopeLogs → LogRecords. */
function recordRanges(body: Uint8Array): number[] {
  const out: number[] = [];
  const walk = (s: number, e: number, level: number): void => {
    let p = s;
    while (p < e) {
      const k = body[p++]!;
      let len = 0;
      let mul = 1;
      for (;;) {
        const c = body[p++]!;
        len += (c & 0x7f) * mul;
        if (c < 0x80) break;
        mul *= 128;
      }
      if ((k & 7) === 2 && k >> 3 === (level === 0 ? 1 : 2)) {
        if (level === 2) out.push(p, p + len);
        else walk(p, p + len, level + 1);
      }
      p += len;
    }
  };
  walk(0, body.length, 0);
  return out;
}

function nativeValid(rec: Uint8Array, depth: number): boolean {
  return check!(rec, Uint32Array.of(0, rec.length), 2, depth) < 0;
}

// The addon is built by `npm ci` (scripts/build-native.mjs); without it the decoder uses the JS walker alone.
describe.skipIf(check === undefined)('native LogRecord check', () => {
  it('is in use: the addon has it and it agreed with the walker at load', () => {
    expect(nativeRecordCheck).toBe(true);
  });

  it('its load-time agreement records hold both verdicts (else the agreement would prove little)', () => {
    const verdicts = selfCheckRecords().map(([r, d]) => logRecordRefusal(r, 0, r.length, d) === undefined);
    expect(verdicts.filter((v) => v).length).toBe(3); // the full record, the empty one, the nesting within its limit
    expect(verdicts.filter((v) => !v).length).toBeGreaterThanOrEqual(15);
    for (const [r, d] of selfCheckRecords()) expect(nativeValid(r, d)).toBe(logRecordRefusal(r, 0, r.length, d) === undefined);
  });

  it('agrees with the walker on generated LogRecords with faults, under varied nesting limits', () => {
    let valid = 0;
    let invalid = 0;
    fc.assert(
      fc.property(logRecord, fc.oneof(fc.constant(32), fc.integer({ min: 0, max: 5 })), (rec, depth) => {
        const js = logRecordRefusal(rec, 0, rec.length, depth) === undefined;
        expect(nativeValid(rec, depth)).toBe(js);
        if (js) valid++;
        else invalid++;
      }),
      { numRuns: RUNS * 20 },
    );
    expect(valid).toBeGreaterThan(RUNS);
    expect(invalid).toBeGreaterThan(RUNS);
  });

  it('agrees with the walker on byte-level mutations of the benchmark records', () => {
    const body = benchRequest(1).protobuf;
    const [s, e] = recordRanges(body);
    const seed = body.subarray(s, e);
    let invalid = 0;
    fc.assert(
      fc.property(byteEdits, (edits) => {
        const rec = applyEdits(seed, edits);
        const js = logRecordRefusal(rec, 0, rec.length, 32) === undefined;
        expect(nativeValid(rec, 32)).toBe(js);
        if (!js) invalid++;
      }),
      { numRuns: RUNS * 10 },
    );
    expect(invalid).toBeGreaterThan(RUNS);
  });

  it('agrees on every UTF-8 lead byte, continuation pair and cut-off point inside a long ASCII string', () => {
    const ascii = new Uint8Array(70).fill(0x61);
    for (let lead = 0x80; lead <= 0xff; lead++) {
      for (const c1 of [0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0]) {
        for (const at of [0, 7, 8, 31, 32, 33, 66, 67, 68, 69]) {
          const s = ascii.slice();
          s[at] = lead;
          if (at + 1 < s.length) s[at + 1] = c1;
          if (at + 2 < s.length) s[at + 2] = 0x80 | (at & 0x3f);
          const rec = ld(12, s); // event_name
          expect(nativeValid(rec, 32)).toBe(logRecordRefusal(rec, 0, rec.length, 32) === undefined);
        }
      }
    }
  });

  it('refuses ranges outside the body and depth limits it cannot honour, instead of reading past them', () => {
    const rec = str(3, 'INFO');
    expect(() => check!(rec, Uint32Array.of(0, rec.length + 1), 2, 32)).toThrow(/outside the body/);
    expect(() => check!(rec, Uint32Array.of(3, 2), 2, 32)).toThrow(/outside the body/);
    expect(() => check!(rec, Uint32Array.of(0, rec.length), 3, 32)).toThrow(/ranges.length/);
    expect(() => check!(rec, Uint32Array.of(0, rec.length), 2, NATIVE_CHECK_MAX_DEPTH + 1)).toThrow(/maxDepth/);
    expect(check!(rec, Uint32Array.of(0, rec.length, 0, rec.length), 4, 0)).toBe(-1);
  });

  it('names the first invalid record of a ScopeLogs, past the scratch array’s first size', () => {
    const good = cat(str(3, 'INFO'), ld(5, str(1, 'hello')));
    const bad = cat(str(3, 'INFO'), ld(9, [1, 2, 3]));
    const records = Array.from({ length: 1200 }, (_, i) => (i === 700 || i === 1100 ? bad : good));
    const r = decodeLogsProtobuf(oneScope(...records), { maxNestingDepth: 32 });
    expect(r).toEqual({ ok: false, message: 'resourceLogs[0].scopeLogs[0].logRecords[700].traceId: must be 16 bytes (or empty), got 3' });
    const ok = decodeLogsProtobuf(oneScope(...records.map(() => good)), { maxNestingDepth: 32 });
    expect(ok.ok && ok.entries.length).toBe(1200);
    // Deeper limits than the native check takes fall back to the walker alone, with the same answers.
    const deep = decodeLogsProtobuf(oneScope(...records), { maxNestingDepth: NATIVE_CHECK_MAX_DEPTH + 1 });
    expect(deep).toEqual({ ok: false, message: 'resourceLogs[0].scopeLogs[0].logRecords[700].traceId: must be 16 bytes (or empty), got 3' });
    expect(varint(300)).toEqual([0xac, 0x02]); // (the helper the ranges rely on)
  });

  it('SEALTRAIL_NATIVE_OTLP=0 turns it off', () => {
    // The built module (the test setup builds dist/), in a process of its own: the switch is read at load.
    const mod = JSON.stringify(new URL('../../dist/src/otlp/decode-protobuf.js', import.meta.url).href);
    const script = `const d = await import(${mod}); console.log(d.nativeRecordCheck);`;
    const run = (env: string): string =>
      execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, SEALTRAIL_NATIVE_OTLP: env },
        encoding: 'utf8',
      }).trim();
    expect(run('0')).toBe('false');
    expect(run('1')).toBe('true');
  });
});

