/**
 * The addon's OTLP LogRecord check reads request bytes straight from the network
 * (native/otlp_check.h): test/native/otlp-fuzz.c runs it on mutated and random records under
 * AddressSanitizer and UBSan, each input in a heap block of exactly its size, and fails on any read
 * outside them or any undefined behaviour. (Checked: an over-read by one byte at the end of a
 * cut-off UTF-8 sequence and a length allowed one byte past its message are each reported.)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nativeCheckLogRecords } from '../../src/ledger/native-hash.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// Without the addon (no C compiler at install) the decoder runs the JS walker alone: nothing native to test.
describe.skipIf(nativeCheckLogRecords === undefined)('native OTLP code under AddressSanitizer and UBSan', () => {
  it('reads and writes only inside its inputs on 60,000 mutated and random records', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sealtrail-fuzz-'));
    try {
      const exe = path.join(dir, 'otlp-fuzz');
      execFileSync(process.env.CC ?? 'cc', [
        '-O1', '-g', '-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer',
        '-I', path.join(root, 'native'), path.join(root, 'test/native/otlp-fuzz.c'), '-o', exe,
      ], { stdio: 'pipe' });
      for (const seed of ['1', '2', '3']) {
        // A sanitizer report exits non-zero, which execFileSync throws with the report attached.
        const out = execFileSync(exe, ['20000', seed], { encoding: 'utf8', env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
        const m = /^ok (\d+) (\d+)$/.exec(out.trim());
        expect(m, out).not.toBeNull();
        // Both verdicts must be common, or the run would not have walked whole valid records.
        expect(Number(m![1])).toBeGreaterThan(2000);
        expect(Number(m![2])).toBeGreaterThan(2000);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
