/**
 * bench/disk.ts: the disk-alone probe of `npm run bench` (issue 7) — appends and fdatasyncs real
 * chunks in a temporary directory, reports what it made durable, leaves nothing behind, and refuses
 * sizes it was not made for.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_CHUNK, MIN_CHUNK, probeDisk } from '../../bench/disk.js';
import { nativeCommitWriter, nativeSyncDrop } from '../../src/ledger/native-hash.js';
import { directIoIn } from '../ledger/helpers.js';

describe('bench disk probe', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tmp = (): string => {
    const d = mkdtempSync(path.join(os.tmpdir(), 'sealtrail-disk-probe-'));
    dirs.push(d);
    return d;
  };

  it('writes and fdatasyncs chunks for the given time and reports consistent figures', async () => {
    const dir = tmp();
    const p = await probeDisk(dir, 64 * 1024, 150);
    expect(p.chunkBytes).toBe(64 * 1024);
    expect(p.commits).toBeGreaterThanOrEqual(1);
    expect(p.seconds).toBeGreaterThanOrEqual(0.15);
    expect(p.MBps).toBeCloseTo((p.chunkBytes * p.commits) / p.seconds / 1e6, 6);
    expect(p.p50Ms).toBeGreaterThan(0);
    expect(p.p50Ms).toBeLessThanOrEqual(p.p99Ms);
    expect(p.p99Ms).toBeLessThanOrEqual(p.maxMs);
    expect(p.maxMs).toBeLessThanOrEqual(p.seconds * 1000);
    expect(readdirSync(dir)).toEqual([]); // its file is removed
  });

  it('--prezeroed: zero-fills the file first, then overwrites it from the start, wrapping around', async () => {
    const dir = tmp();
    // 48 KiB of zeros and 16 KiB chunks: three chunks fit, so a 150 ms run wraps many times
    const p = await probeDisk(dir, 16 * 1024, 150, { prezeroedBytes: 48 * 1024 + 100 });
    expect(p.prezeroedBytes).toBe(48 * 1024 + 100);
    expect(p.commits).toBeGreaterThan(3);
    expect(p.MBps).toBeCloseTo((p.chunkBytes * p.commits) / p.seconds / 1e6, 6);
    expect(readdirSync(dir)).toEqual([]);
    expect((await probeDisk(dir, 65_536, 50)).prezeroedBytes).toBeUndefined();
  });

  it('--prezeroed: the file never grows past the zero-filled size; appending grows it by every commit', async () => {
    const dir = tmp();
    const size = 5 * 4096;
    const p = await probeDisk(dir, 4096, 100, { prezeroedBytes: size });
    expect(p.commits).toBeGreaterThan(5);
    expect(p.fileBytes).toBe(size);
    const a = await probeDisk(dir, 4096, 50);
    expect(a.fileBytes).toBe(a.commits * 4096);
  });

  it('refuses chunk sizes and durations it was not made for, before creating anything', async () => {
    const dir = tmp();
    await expect(probeDisk(dir, MIN_CHUNK - 1, 100)).rejects.toThrow(/chunk size must be a whole number of bytes from 4096/);
    await expect(probeDisk(dir, MAX_CHUNK + 1, 100)).rejects.toThrow(RangeError);
    await expect(probeDisk(dir, 10_000.5, 100)).rejects.toThrow(RangeError);
    await expect(probeDisk(dir, 65_536, 0)).rejects.toThrow(/duration must be more than 0 ms/);
    await expect(probeDisk(dir, 65_536, 100, { prezeroedBytes: 4096 })).rejects.toThrow(/zero-filled size must be a whole number of bytes from the chunk size/);
    expect(readdirSync(dir)).toEqual([]);
  });

  // Written reason: --drop needs the addon's syncDrop (Linux); without it the probe refuses (checked below).
  it.skipIf(nativeSyncDrop === undefined)('--drop: makes each chunk durable with syncDrop (fdatasync, then its pages dropped) and says so', async () => {
    const dir = tmp();
    const p = await probeDisk(dir, 64 * 1024, 100, { drop: true });
    expect(p.dropped).toBe(true);
    expect(p.commits).toBeGreaterThanOrEqual(1);
    expect(p.fileBytes).toBe(p.commits * 64 * 1024);
    expect(readdirSync(dir)).toEqual([]);
    expect((await probeDisk(dir, 65_536, 50)).dropped).toBeUndefined();
  });

  // Written reason: --writer needs the addon's commit writer (Linux); without it the probe refuses (checked below).
  it.skipIf(nativeCommitWriter === undefined)("--writer: commits each chunk through the agent's commit writer (O_DIRECT where it can) and says how much went directly", async () => {
    const dir = tmp();
    // 10,000-byte chunks: most start and end inside a block, so each commit has a head read back and a tail through the page cache
    const p = await probeDisk(dir, 10_000, 150, { writer: true });
    expect(p.commits).toBeGreaterThanOrEqual(2);
    expect(p.fileBytes).toBe(p.commits * 10_000);
    // Where the file system has no O_DIRECT the writer uses the page cache, and the probe says so (0).
    if (directIoIn(dir)) expect(p.directBytes).toBeGreaterThan(0);
    else expect(p.directBytes).toBe(0);
    expect(p.directBytes).toBeLessThanOrEqual(p.fileBytes!);
    expect(p.dropped).toBeUndefined();
    expect(readdirSync(dir)).toEqual([]);
    expect((await probeDisk(dir, 65_536, 50)).directBytes).toBeUndefined();
    await expect(probeDisk(dir, 65_536, 50, { writer: true, drop: true })).rejects.toThrow(/--writer and --drop exclude each other/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('--drop and --writer without the addon: refused, nothing created', async () => {
    vi.resetModules();
    vi.doMock('../../src/ledger/native-hash.js', async (orig) => ({ ...(await orig<object>()), nativeSyncDrop: undefined, nativeCommitWriter: undefined }));
    try {
      const { probeDisk: withoutAddon } = await import('../../bench/disk.js');
      const dir = tmp();
      await expect(withoutAddon(dir, 65_536, 50, { drop: true })).rejects.toThrow(/--drop needs the native addon/);
      await expect(withoutAddon(dir, 65_536, 50, { writer: true })).rejects.toThrow(/--writer needs the native addon/);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      vi.doUnmock('../../src/ledger/native-hash.js');
      vi.resetModules();
    }
  });

  it('reports a directory it cannot write to as an error', async () => {
    await expect(probeDisk(path.join(tmp(), 'missing'), 65_536, 50)).rejects.toThrow(/ENOENT/);
  });
});
