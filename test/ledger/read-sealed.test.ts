/**
 * Sealed segments at start-up are mapped, not read (LedgerFs.readSealed): the bytes are the file's,
 * a mapping is given back once the segment is checked — none stays after Ledger.open — and damage
 * in a mapped segment is still found.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeLedgerFs } from '../../src/ledger/fs.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { nativeFileMap } from '../../src/ledger/native-hash.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { entry, ledgerConfig, removeDir, tempDir, testSigner } from './helpers.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await removeDir(d);
});

async function newDir(): Promise<string> {
  const d = await tempDir();
  dirs.push(d);
  return d;
}

/** Lines of /proc/self/maps that map a file under `dir` (Linux). */
function mappingsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes(dir));
}

const linux = process.platform === 'linux';

describe('nodeLedgerFs.readSealed', () => {
  it('gives the whole file, and after release nothing of a mapping is readable', async () => {
    const dir = await newDir();
    const file = path.join(dir, 'a.seg');
    const want = Uint8Array.from({ length: 3 * 4096 + 17 }, (_, i) => (i * 7 + 3) & 0xff);
    fs.writeFileSync(file, want);
    const s = await nodeLedgerFs.readSealed(file);
    expect(Buffer.from(s.bytes).equals(Buffer.from(want))).toBe(true);
    if (linux && nativeFileMap) expect(mappingsUnder(dir).length).toBeGreaterThan(0);
    s.release();
    s.release(); // a second release does nothing
    if (nativeFileMap) expect(s.bytes.length).toBe(0); // the mapping is detached, not left readable
    if (linux) expect(mappingsUnder(dir)).toEqual([]);
  });

  it.runIf(linux && nativeFileMap !== undefined)('a file that cannot be mapped fails with the system\'s reason', async () => {
    // A directory opens for reading and has a size, but mmap refuses it (ENODEV).
    const dir = await newDir();
    await expect(nodeLedgerFs.readSealed(dir)).rejects.toThrow(/mapRange: mmap of \d+ bytes at offset 0 failed: No such device/);
    expect(mappingsUnder(dir)).toEqual([]);
  });

  it('an empty file gives no bytes; a missing one fails with ENOENT', async () => {
    const dir = await newDir();
    fs.writeFileSync(path.join(dir, 'empty.seg'), new Uint8Array(0));
    const s = await nodeLedgerFs.readSealed(path.join(dir, 'empty.seg'));
    expect(s.bytes.length).toBe(0);
    s.release();
    await expect(nodeLedgerFs.readSealed(path.join(dir, 'missing.seg'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('Ledger.open over sealed segments', () => {
  async function sealedLedger(): Promise<{ dir: string; segs: string[] }> {
    const dir = await newDir();
    const l = await Ledger.open({ config: ledgerConfig(dir, { max_segment_bytes: 4096 }), signer: testSigner(), logger: silentLogger() });
    for (let i = 0; i < 40; i++) await l.append([entry(`m${i}`, 300)]);
    // After close: seals are published in the background, and close waits for them.
    await l.close();
    const segDir = path.join(dir, 'segments');
    const segs = fs
      .readdirSync(segDir)
      .filter((n) => n.endsWith('.seg'))
      .sort()
      .map((n) => path.join(segDir, n));
    expect(segs.length).toBeGreaterThanOrEqual(3);
    return { dir, segs };
  }

  it.runIf(linux)('checks every sealed segment and keeps none of them mapped', async () => {
    const { dir } = await sealedLedger();
    const l = await Ledger.open({ config: ledgerConfig(dir, { max_segment_bytes: 4096 }), signer: testSigner(), logger: silentLogger() });
    try {
      expect(l.treeSize).toBe(40);
      expect(mappingsUnder(path.join(dir, 'segments'))).toEqual([]);
    } finally {
      await l.close();
    }
  });

  it('a changed byte in a sealed segment still refuses the start (LEDGER_CORRUPT), and gives its mapping back', async () => {
    const { dir, segs } = await sealedLedger();
    const victim = segs[1]!;
    const b = fs.readFileSync(victim);
    b[b.length >> 1]! ^= 0x04;
    fs.writeFileSync(victim, b);
    await expect(Ledger.open({ config: ledgerConfig(dir, { max_segment_bytes: 4096 }), signer: testSigner(), logger: silentLogger() })).rejects.toMatchObject({
      code: 'LEDGER_CORRUPT',
    });
    if (linux) expect(mappingsUnder(path.join(dir, 'segments'))).toEqual([]);
  });
});
