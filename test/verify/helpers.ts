/**
 * Test harness for the verifier: real logs written by the real Ledger (src/ledger/ledger.ts) into
 * temp directories, real OTLP entries (decoded by src/otlp), then byte-level tampering on disk.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import type { LedgerConfig } from '../../src/config/schema.js';
import { type Signer, signerFromSeed } from '../../src/keys/keys.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { decodeLogsJson } from '../../src/otlp/index.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import type { CliIO } from '../../src/cli/io.js';

export const ORIGIN = 'sealtrail.test/verify';
/** Epoch ms the test clock starts at (2026-11-28T00:00:00Z). */
export const T0 = Date.UTC(2026, 10, 28, 0, 0, 0);

export function signer(n: number, name = ORIGIN): Signer {
  return signerFromSeed(name, Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + n * 31 + 1) & 0xff));
}

export async function tempDir(prefix = 'sealtrail-verify-'): Promise<string> {
  return fs.promises.mkdtemp(path.join(os.tmpdir(), prefix));
}

export function ledgerConfig(dir: string, origin = ORIGIN): LedgerConfig {
  return {
    dir,
    origin,
    durability: 'none',
    max_segment_bytes: 64 * 1024 * 1024,
    max_segment_age: 3_600_000,
    seal_interval: 3_600_000,
    max_disk_bytes: 4 * 1024 * 1024 * 1024,
  };
}

/** `n` real OTLP entries (one LogRecord each), tagged so they are all distinct. */
export function entries(tag: string, n: number, bodySize = 40): Uint8Array[] {
  const req = {
    resourceLogs: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'verify-test' } }] },
        scopeLogs: [
          {
            scope: { name: 'test' },
            logRecords: Array.from({ length: n }, (_, i) => ({
              timeUnixNano: String(BigInt(T0) * 1_000_000n + BigInt(i)),
              severityText: 'INFO',
              body: { stringValue: `${tag}#${i} `.padEnd(bodySize, 'x') },
            })),
          },
        ],
      },
    ],
  };
  const r = decodeLogsJson(new TextEncoder().encode(JSON.stringify(req)), { maxNestingDepth: 32 });
  if (!r.ok) throw new Error(`test entries do not decode: ${r.message}`);
  return r.entries;
}

/** A deterministic clock: every call advances one second from `start`. */
export function stepClock(start = T0): { now: () => number; peek: () => number } {
  let t = start;
  return { now: () => (t += 1000), peek: () => t };
}

export interface BuiltLog {
  readonly dir: string;
  readonly origin: string;
  readonly treeSize: number;
  readonly segments: number;
  /** Time of the last checkpoint the clock produced. */
  readonly lastMs: number;
}

/**
 * Writes a log with the real Ledger: `segments` sealed segments of `perSegment` entries, a
 * heartbeat inside every segment (after half its entries), and the final heartbeat of close().
 * `rotateAfter`: after that many segments, rotate to `rotateTo` (the ledger announces the new key
 * in a heartbeat signed by the old one, api-crypto.md).
 */
export async function buildLog(o: {
  dir: string;
  signer: Signer;
  segments: number;
  perSegment: number;
  origin?: string;
  clock?: { now: () => number; peek: () => number };
  rotateAfter?: number;
  rotateTo?: Signer;
  tag?: string;
}): Promise<BuiltLog> {
  const origin = o.origin ?? ORIGIN;
  const clock = o.clock ?? stepClock();
  let current = o.signer;
  let ledger = await Ledger.open({ config: ledgerConfig(o.dir, origin), signer: current, logger: silentLogger(), clock: clock.now });
  for (let s = 0; s < o.segments; s++) {
    if (o.rotateAfter !== undefined && o.rotateTo && s === o.rotateAfter) {
      // The ledger's own rotation: reopened with the new key and the old one as previous key, it
      // signs a heartbeat with the old key that announces the new one (signing.previous_key_file).
      await ledger.close();
      ledger = await Ledger.open({ config: ledgerConfig(o.dir, origin), signer: o.rotateTo, previousSigner: current, logger: silentLogger(), clock: clock.now });
      current = o.rotateTo;
    }
    const es = entries(`${o.tag ?? 'e'}${s}`, o.perSegment);
    const half = Math.floor(es.length / 2);
    const r1 = await ledger.append(es.slice(0, half));
    if (r1.kind !== 'ok') throw new Error(`append refused: ${r1.reason}`);
    await ledger.heartbeat();
    const r2 = await ledger.append(es.slice(half));
    if (r2.kind !== 'ok') throw new Error(`append refused: ${r2.reason}`);
    await ledger.seal();
  }
  const treeSize = ledger.treeSize;
  await ledger.close();
  return { dir: o.dir, origin, treeSize, segments: o.segments, lastMs: clock.peek() };
}

/** Writes `<dir>/<name>.pub` and returns its path. */
export function writePub(dir: string, s: Signer, name = 'signing'): string {
  const p = path.join(dir, `${name}.pub`);
  fs.writeFileSync(p, `${s.verifierKey}\n`);
  return p;
}

/** Copies a ledger directory's sealed segments and checkpoints into an fs destination layout. */
export function copyToDestination(ledgerDir: string, destRoot: string, originPathStr: string): void {
  for (const sub of ['segments', 'checkpoints']) {
    const to = path.join(destRoot, originPathStr, sub);
    fs.mkdirSync(to, { recursive: true });
    for (const n of fs.readdirSync(path.join(ledgerDir, sub))) {
      if (n.endsWith('.open') || n.endsWith('.tmp')) continue;
      fs.copyFileSync(path.join(ledgerDir, sub, n), path.join(to, n));
    }
  }
}

export function segPath(dir: string, seq: number): string {
  return path.join(dir, 'segments', `${String(seq).padStart(16, '0')}.seg`);
}

export function cpFiles(dir: string, filter: (name: string) => boolean = () => true): string[] {
  return fs
    .readdirSync(path.join(dir, 'checkpoints'))
    .filter(filter)
    .sort()
    .map((n) => path.join(dir, 'checkpoints', n));
}

/** Flips bit `bit` of byte `offset` in a file (the file is made writable first). */
export function flipBit(file: string, offset: number, bit = 0): void {
  fs.chmodSync(file, 0o644);
  const b = fs.readFileSync(file);
  if (offset < 0) offset = b.length + offset;
  b[offset]! ^= 1 << bit;
  fs.writeFileSync(file, b);
}

/** Captures a command's stdout/stderr for in-process CLI tests. */
export function captureIO(cwd: string): { io: CliIO; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const mk = (f: (s: string) => void) =>
    new Writable({
      write(chunk, _enc, cb) {
        f(String(chunk));
        cb();
      },
    });
  return {
    io: { stdout: mk((s) => (out += s)), stderr: mk((s) => (err += s)), env: {}, cwd },
    out: () => out,
    err: () => err,
  };
}

const COMMANDS: Record<string, () => Promise<{ run(argv: string[], io: CliIO): Promise<number> }>> = {
  verify: () => import('../../src/cli/commands/verify.js'),
  prove: () => import('../../src/cli/commands/prove.js'),
  'verify-proof': () => import('../../src/cli/commands/verify-proof.js'),
  export: () => import('../../src/cli/commands/export.js'),
};

/**
 * Runs `sealtrail CMD ARGS` in-process through the command module (src/cli/bin.ts starts main()
 * when imported, so tests call the modules it dispatches to), mapping a thrown SealtrailError to
 * exit 2 the way bin.ts does. Returns exit code and output.
 */
export async function cli(args: string[], cwd = process.cwd()): Promise<{ code: number; out: string; err: string }> {
  const c = captureIO(cwd);
  const [cmd, ...rest] = args;
  let code: number;
  try {
    code = await (await COMMANDS[cmd!]!()).run(rest, c.io);
  } catch (e) {
    c.io.stderr.write(`sealtrail ${cmd}: ${(e as Error).message}\n`);
    code = 2;
  }
  return { code, out: c.out(), err: c.err() };
}

// ---------------------------------------------------------------------------------------------
// Byte-level tampering helpers (what an attacker with write access to the files can do)

import { crc32c } from '../../src/ledger/crc32c.js';
import { Frontier } from '../../src/ledger/merkle.js';
import { leafHash } from '../../src/ledger/hash.js';
import { FRAME_OVERHEAD, decodeHeader, encodeHeader, encodeTrailer, parseSegment, writeFrame, type SegmentHeader } from '../../src/ledger/segment-format.js';
import { openLogSource } from '../../src/cli/log-sources.js';
import { verifyLog, type VerifyOptions } from '../../src/verify/verifier.js';
import type { Finding, VerifyReport } from '../../src/verify/findings.js';

export interface ParsedSegment {
  header: SegmentHeader;
  headerBytes: Uint8Array;
  entries: Uint8Array[];
  frames: { offset: number; length: number; index: number }[];
  checkpoint: Uint8Array;
  trailerOffset: number;
}

export function readSegment(file: string): ParsedSegment {
  const bytes = new Uint8Array(fs.readFileSync(file));
  const items = parseSegment(bytes);
  const out: ParsedSegment = { header: undefined!, headerBytes: undefined!, entries: [], frames: [], checkpoint: undefined!, trailerOffset: 0 };
  for (const it of items) {
    if (it.kind === 'header') {
      out.header = it.header;
      out.headerBytes = bytes.slice(0, it.length);
    } else if (it.kind === 'frame') {
      out.entries.push(it.entry.slice());
      out.frames.push({ offset: it.offset, length: it.length, index: it.index });
    } else {
      out.checkpoint = it.trailer.checkpoint.slice();
      out.trailerOffset = it.offset;
    }
  }
  return out;
}

/**
 * Re-encodes a segment as an attacker without the key can: new entries with CRCs, chain values,
 * trailer (count, chain_last, end frontier) and footer all recomputed; the signed checkpoint is
 * kept (it cannot be re-signed). `header` may replace header bytes (e.g. a changed field).
 */
export function rewriteSegment(file: string, newEntries: Uint8Array[], o: { header?: Uint8Array; checkpoint?: Uint8Array } = {}): void {
  const seg = readSegment(file);
  const header = o.header ?? seg.headerBytes;
  const h = decodeHeaderLoose(header) ?? seg.header;
  const size = newEntries.reduce((a, e) => a + FRAME_OVERHEAD + e.length, 0);
  const body = new Uint8Array(size);
  let off = 0;
  let chain = h.chainPrev;
  const fr = h.frontier.clone();
  for (const e of newEntries) {
    const w = writeFrame(body, off, e, chain);
    chain = w.chain;
    fr.append(w.leaf);
    off += w.length;
  }
  const trailer = encodeTrailer({ count: newEntries.length, chainLast: chain, endFrontier: fr, checkpoint: o.checkpoint ?? seg.checkpoint }, header.length + size);
  fs.chmodSync(file, 0o644);
  fs.writeFileSync(file, Buffer.concat([header, body, trailer]));
}

function decodeHeaderLoose(b: Uint8Array): SegmentHeader | undefined {
  try {
    return decodeHeader(b).header;
  } catch {
    return undefined;
  }
}

/** A header with some fields changed and a valid CRC. */
export function editHeader(file: string, change: Partial<Omit<SegmentHeader, 'version'>>): Uint8Array {
  const seg = readSegment(file);
  return encodeHeader({ ...seg.header, ...change });
}

/** Sets the header's version field and fixes the header CRC (an attacker can compute CRCs). */
export function setHeaderVersion(file: string, version: number): void {
  fs.chmodSync(file, 0o644);
  const b = new Uint8Array(fs.readFileSync(file));
  const len = (b[10]! << 8) | b[11]!;
  b[8] = version >> 8;
  b[9] = version & 0xff;
  new DataView(b.buffer).setUint32(len - 4, crc32c(b, 0, len - 4), false);
  fs.writeFileSync(file, b);
}

/** Replaces the trailer's checkpoint note bytes, recomputing trailer CRC and footer. */
export function replaceTrailerCheckpoint(file: string, note: Uint8Array): void {
  const seg = readSegment(file);
  rewriteSegment(file, seg.entries, { checkpoint: note });
}

export { leafHash, Frontier };

/** Opens SOURCE dirs the CLI's way and verifies them. */
export async function verifyDirs(dirs: string[], key: Signer | Signer[], opts: Partial<VerifyOptions> = {}): Promise<VerifyReport> {
  const keys = (Array.isArray(key) ? key : [key]).map((k) => parseVerifierKeyText(k.verifierKey));
  const origin = opts.origin ?? ORIGIN;
  const sources = await Promise.all(dirs.map((d) => openLogSource(d, { origin, cwd: process.cwd() })));
  try {
    return await verifyLog(sources, { origin, trusted: keys, ...opts });
  } finally {
    for (const s of sources) s.close();
  }
}

import { parseVerifierKey as parseVerifierKeyText } from '../../src/keys/keys.js';

/** Compact view of findings for assertions and failure messages. */
export function brief(r: VerifyReport): { check: string; segment: number | null; index?: number }[] {
  return r.findings.map((f: Finding) => ({ check: f.check, segment: f.segment, ...(f.index !== undefined ? { index: f.index } : {}) }));
}

/** Copies a whole directory tree (tests tamper with a fresh copy of one built log). */
export function copyDir(from: string, to: string): void {
  fs.cpSync(from, to, { recursive: true });
}

export { crc32c };

/** Re-encodes the frames of an open (unsealed) segment after `change`, with CRCs and chain recomputed. */
export function rewriteOpenSegment(file: string, change: (entries: Uint8Array[]) => Uint8Array[]): void {
  const bytes = new Uint8Array(fs.readFileSync(file));
  const { header, length } = decodeHeader(bytes);
  const es: Uint8Array[] = [];
  let off = length;
  while (off + 8 <= bytes.length) {
    const n = ((bytes[off]! << 24) | (bytes[off + 1]! << 16) | (bytes[off + 2]! << 8) | bytes[off + 3]!) >>> 0;
    const c = ((bytes[off + 4]! << 24) | (bytes[off + 5]! << 16) | (bytes[off + 6]! << 8) | bytes[off + 7]!) >>> 0;
    if (c !== ~n >>> 0) break; // the zeros written ahead of the commits (or a trailer): the frames end here
    if (off + FRAME_OVERHEAD + n > bytes.length) break;
    es.push(bytes.slice(off + 40, off + 40 + n));
    off += FRAME_OVERHEAD + n;
  }
  const next = change(es);
  const body = new Uint8Array(next.reduce((a, e) => a + FRAME_OVERHEAD + e.length, 0));
  let o = 0;
  let chain = header.chainPrev;
  for (const e of next) {
    const w = writeFrame(body, o, e, chain);
    chain = w.chain;
    o += w.length;
  }
  fs.writeFileSync(file, Buffer.concat([bytes.subarray(0, length), body]));
}
