/** Shared helpers for the ledger tests: real directories under os.tmpdir(), a fixed test key. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { LedgerConfig } from '../../src/config/schema.js';
import { type Signer, signerFromSeed } from '../../src/keys/keys.js';
import { SegmentFormatError, SegmentParser, parseSegment, parseSegmentFileName } from '../../src/ledger/segment-format.js';
import { scanSegment } from '../../src/ledger/recovery.js';
import { FRAME_HEAD_ROOM, FRAME_TAIL_ROOM } from '../../src/ledger/types.js';

export const ORIGIN = 'sealtrail.test/ledger';
/** Fixed seed 0x01..0x20 (test only). */
export const SEED = Uint8Array.from({ length: 32 }, (_, i) => i + 1);

export function testSigner(name = ORIGIN): Signer {
  return signerFromSeed(name, SEED);
}

export async function tempDir(prefix = 'sealtrail-ledger-'): Promise<string> {
  return fs.promises.mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await fs.promises.rm(dir, { recursive: true, force: true });
}

export function ledgerConfig(dir: string, over: Partial<LedgerConfig> = {}): LedgerConfig {
  return {
    dir,
    origin: ORIGIN,
    durability: 'fsync',
    max_segment_bytes: 64 * 1024 * 1024,
    max_segment_age: 3_600_000,
    seal_interval: 3_600_000,
    max_disk_bytes: 1024 * 1024 * 1024,
    ...over,
  };
}

/** A deterministic entry of about `size` bytes. */
export function entry(tag: string, size = 100): Uint8Array {
  const s = (tag + ':').padEnd(size, '.');
  return new TextEncoder().encode(s);
}

export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** All entries of the log in `dir` (sealed segments, then the open one or a next one under its temporary name), in index order, with chain checks. */
export function readLog(dir: string): { entries: Uint8Array[]; firstIndex: number; sealed: number } {
  const segDir = path.join(dir, 'segments');
  const names = fs.readdirSync(segDir).sort();
  const entries: Uint8Array[] = [];
  let firstIndex = -1;
  let sealed = 0;
  for (const n of names) {
    const bytes = new Uint8Array(fs.readFileSync(path.join(segDir, n)));
    if (parseSegmentFileName(n) !== undefined) {
      sealed++;
      for (const it of parseSegment(bytes)) {
        if (it.kind === 'header' && firstIndex < 0) firstIndex = it.header.firstIndex;
        if (it.kind === 'frame') {
          if (it.index !== firstIndex + entries.length) throw new Error(`gap before index ${it.index}`);
          entries.push(it.entry.slice());
        }
      }
    } else if (n.endsWith('.seg.open') || n.endsWith('.seg.open.tmp')) {
      // `.seg.open.tmp`: the next segment a crash left while a seal was being published; it holds
      // acknowledged entries unless its header was never completed (docs/format.md "Ledger directory").
      let scan: ReturnType<typeof scanSegment>;
      try {
        scan = scanSegment(bytes, { sealed: false });
      } catch (e) {
        if (n.endsWith('.tmp') && e instanceof SegmentFormatError && e.check === 'truncated' && e.offset === bytes.length) continue;
        throw e;
      }
      if (firstIndex < 0) firstIndex = scan.header.firstIndex;
      if (scan.header.firstIndex !== firstIndex + entries.length) throw new Error('open segment does not follow');
      // re-walk the frames with the parser (without end(): the open segment has no trailer)
      const items = parseSegmentPrefix(bytes.subarray(0, scan.goodEnd));
      for (const e of items) entries.push(e);
    }
  }
  return { entries, firstIndex: Math.max(0, firstIndex), sealed };
}

/** parseSegment demands a trailer; an open segment's frames come from a parser without end(). */
function parseSegmentPrefix(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const p = new SegmentParser();
  for (const it of p.push(bytes)) if (it.kind === 'frame') out.push(it.entry.slice());
  return out;
}

/**
 * `entries` laid out as one run of whole frames, the way the receivers' decoders build FramedEntries:
 * each entry with FRAME_HEAD_ROOM bytes before it and FRAME_TAIL_ROOM after it, the room filled with
 * `junk` (the ledger must overwrite all of it). Returns the run and its spans.
 */
export function frameRun(entries: readonly Uint8Array[], junk = 0xee): { run: Uint8Array; spans: Uint32Array } {
  const run = new Uint8Array(entries.reduce((a, e) => a + FRAME_HEAD_ROOM + e.length + FRAME_TAIL_ROOM, 0)).fill(junk);
  const spans = new Uint32Array(2 * entries.length);
  let at = 0;
  entries.forEach((e, k) => {
    run.set(e, at + FRAME_HEAD_ROOM);
    spans[2 * k] = at + FRAME_HEAD_ROOM;
    spans[2 * k + 1] = at + FRAME_HEAD_ROOM + e.length;
    at += FRAME_HEAD_ROOM + e.length + FRAME_TAIL_ROOM;
  });
  return { run, spans };
}

/** Bytes of `file` in the page cache (util-linux's fincore), or undefined without the tool. */
export function cachedBytes(file: string): number | undefined {
  const r = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  return Number(r.stdout.trim());
}
/** fincore is there (Debian: util-linux-extra; .ci/run installs it). */
export const haveFincore = cachedBytes(process.execPath) !== undefined;
export const PAGE = Number(spawnSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).stdout.trim()) || 4096;

/**
 * This process's open descriptors on `file` (by /proc/self/fd, which names a renamed file by its new
 * name), each with whether it was opened with O_DIRECT (the `flags` of /proc/self/fdinfo, octal).
 */
export function descriptorsOn(file: string): { fd: number; direct: boolean }[] {
  const out: { fd: number; direct: boolean }[] = [];
  for (const name of fs.readdirSync('/proc/self/fd')) {
    let target: string;
    let info: string;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${name}`);
      info = fs.readFileSync(`/proc/self/fdinfo/${name}`, 'utf8');
    } catch {
      continue; // closed meanwhile (the readdir's own descriptor, another thread's)
    }
    if (target !== file) continue;
    const flags = Number.parseInt(/^flags:\s*([0-7]+)/m.exec(info)?.[1] ?? '0', 8);
    out.push({ fd: Number(name), direct: (flags & fs.constants.O_DIRECT) !== 0 });
  }
  return out;
}

/** Whether files in `dir` can be opened with O_DIRECT (not every file system has it; the commit writer then uses the page cache). */
export function directIoIn(dir: string): boolean {
  const probe = path.join(dir, 'o-direct-probe');
  try {
    fs.closeSync(fs.openSync(probe, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_DIRECT));
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(probe, { force: true });
  }
}
