/**
 * Issue 4's attack list: each test tampers with a real log written by the real Ledger and asserts
 * the exact finding (check name, segment, entry index). G3: every kind of modification, deletion,
 * insertion, reordering, truncation, replay, relocation or re-signing is found and named.
 *
 * The template log: 4 sealed segments of 10 entries (seals at tree sizes 10, 20, 30, 40), a
 * heartbeat in the middle of each (sizes 5, 15, 25, 35), the genesis heartbeat (size 0), and the
 * empty open segment 4; all signed by key A.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointFileName } from '../../src/ledger/ledger.js';
import { scanSegment } from '../../src/ledger/recovery.js';
import { directIoIn } from '../ledger/helpers.js';
import { waitUntil } from '../security/helpers.js';
import { parseSignedNote, signCheckpoint, formatCheckpoint, parseCheckpointBody } from '../../src/ledger/checkpoint.js';
import { originPath } from '../../src/forward/keys.js';
import {
  ORIGIN,
  brief,
  buildLog,
  copyDir,
  copyToDestination,
  cpFiles,
  editHeader,
  flipBit,
  leafHash,
  readSegment,
  replaceTrailerCheckpoint,
  rewriteSegment,
  segPath,
  setHeaderVersion,
  signer,
  stepClock,
  tempDir,
  verifyDirs,
} from './helpers.js';

const A = signer(1);
const B = signer(2);
let root: string;
let template: string;
let lastMs: number;
let n = 0;

beforeAll(async () => {
  root = await tempDir();
  template = path.join(root, 'template');
  fs.mkdirSync(template);
  const built = await buildLog({ dir: template, signer: A, segments: 4, perSegment: 10 });
  lastMs = built.lastMs;
});

afterAll(async () => {
  await fs.promises.rm(root, { recursive: true, force: true });
});

/** A fresh copy of the template log to tamper with. */
function fresh(): string {
  const d = path.join(root, `t${n++}`);
  copyDir(template, d);
  return d;
}

function cpOf(dir: string, seq: number, kind: 'seal' | 'heartbeat'): string {
  const f = cpFiles(dir, (x) => x.startsWith(String(seq).padStart(16, '0')) && x.endsWith(`-${kind}.cp`));
  const last = f[f.length - 1];
  if (!last) throw new Error(`no ${kind} checkpoint for segment ${seq}`);
  return last;
}

/** Signs a modified copy of a checkpoint body with `key` (what only a key holder can do). */
function resign(note: string, key = A, change: (body: string) => string = (b) => b): string {
  const p = parseSignedNote(note);
  if (!p.ok) throw new Error('note does not parse');
  return signCheckpoint(change(p.value.body), [key]);
}

describe('the clean template', () => {
  it('verifies intact (exit-0 case of the suite baseline)', async () => {
    const r = await verifyDirs([template], A);
    expect(brief(r)).toEqual([]);
    expect(r.sources[0]!.entries).toBe(40);
    expect(r.sources[0]!.treeSize).toBe(40);
  });
});

describe('1. bit flips', () => {
  it('in an entry body → frame.crc at that entry', async () => {
    const d = fresh();
    const seg = readSegment(segPath(d, 1));
    const f = seg.frames[3]!; // global index 13
    flipBit(segPath(d, 1), f.offset + 40 + 5, 2);
    const r = await verifyDirs([d], A);
    expect(brief(r)[0]).toEqual({ check: 'frame.crc', segment: 1, index: 13 });
  });

  it('in a frame length → frame.length at that entry', async () => {
    const d = fresh();
    const f = readSegment(segPath(d, 2)).frames[4]!; // index 24
    flipBit(segPath(d, 2), f.offset + 3, 0);
    const r = await verifyDirs([d], A);
    expect(brief(r)[0]).toEqual({ check: 'frame.length', segment: 2, index: 24 });
  });

  it('in a checkpoint file → checkpoint.signature for that checkpoint', async () => {
    const d = fresh();
    const file = cpOf(d, 1, 'heartbeat');
    const text = fs.readFileSync(file, 'utf8');
    // last digit of from_ms in "sealtrail-time <from> <to>": still well-formed, no longer what was signed
    const at = text.indexOf('sealtrail-time ') + 'sealtrail-time '.length + 12;
    flipBit(file, at, 0);
    const r = await verifyDirs([d], A);
    const f = r.findings.find((x) => x.check === 'checkpoint.signature');
    expect(f).toMatchObject({ check: 'checkpoint.signature', segment: 1, file: path.basename(file) });
  });

  it('in the checkpoint inside a segment trailer → segment.trailer (CRC); with the CRC fixed → checkpoint.signature', async () => {
    const d = fresh();
    const seg = readSegment(segPath(d, 2));
    flipBit(segPath(d, 2), seg.trailerOffset + 120, 1);
    let r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'segment.trailer', segment: 2, index: 30 });

    const d2 = fresh();
    const note = readSegment(segPath(d2, 2)).checkpoint;
    const bad = note.slice();
    bad[bad.indexOf(0x0a) + 1]! ^= 0x01; // tree size's first digit
    replaceTrailerCheckpoint(segPath(d2, 2), bad);
    r = await verifyDirs([d2], A);
    expect(brief(r)).toContainEqual({ check: 'checkpoint.signature', segment: 2 });
    expect(brief(r)).toContainEqual({ check: 'checkpoint.copy', segment: 2 });
  });

  it('in a signature → checkpoint.signature', async () => {
    const d = fresh();
    const file = cpOf(d, 2, 'seal');
    const text = fs.readFileSync(file, 'utf8');
    const sigLine = text.slice(text.lastIndexOf('\u2014 '));
    const [, name, b64] = /^\u2014 (\S+) (\S+)\n$/.exec(sigLine)!;
    const raw = Buffer.from(b64!, 'base64');
    raw[20]! ^= 0x10; // inside the Ed25519 signature (after the 4-byte key ID)
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, text.slice(0, text.lastIndexOf('\u2014 ')) + `\u2014 ${name} ${raw.toString('base64')}\n`);
    const r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'checkpoint.signature', segment: 2 });
    expect(r.findings.find((f) => f.check === 'checkpoint.signature')!.file).toBe(path.basename(file));
  });
});

describe('2. entries deleted, forged, swapped; segments swapped', () => {
  it('delete an entry → chain.hash at the entry that follows it', async () => {
    const d = fresh();
    const file = segPath(d, 1);
    const seg = readSegment(file);
    const f = seg.frames[4]!; // delete index 14
    const b = fs.readFileSync(file);
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, Buffer.concat([b.subarray(0, f.offset), b.subarray(f.offset + f.length)]));
    const r = await verifyDirs([d], A);
    expect(brief(r)[0]).toEqual({ check: 'chain.hash', segment: 1, index: 14 });
  });

  it('insert a forged entry with correct CRC and recomputed chain → merkle.root and checkpoint.size', async () => {
    const d = fresh();
    const file = segPath(d, 1);
    const seg = readSegment(file);
    const forged = new TextEncoder().encode('forged entry');
    rewriteSegment(file, [...seg.entries.slice(0, 5), forged, ...seg.entries.slice(5)]);
    const r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'checkpoint.size', segment: 1 });
    expect(brief(r)).toContainEqual({ check: 'merkle.root', segment: 1 });
    // the chain is consistent inside the segment (the attacker recomputed it) but not across
    expect(brief(r)).toContainEqual({ check: 'chain.link', segment: 2, index: 20 });
  });

  it('replace an entry, recomputing CRC and chain → merkle.root', async () => {
    const d = fresh();
    const file = segPath(d, 3);
    const seg = readSegment(file);
    const es = seg.entries.slice();
    es[9] = new TextEncoder().encode('rewritten');
    rewriteSegment(file, es);
    const r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'merkle.root', segment: 3 });
    expect(r.findings.filter((f) => f.check === 'checkpoint.heartbeat')).toEqual([]);
  });

  it('swap two entries → chain.hash at the first swapped position', async () => {
    const d = fresh();
    const file = segPath(d, 1);
    const seg = readSegment(file);
    const [f2, f3] = [seg.frames[2]!, seg.frames[3]!];
    const b = fs.readFileSync(file);
    const swapped = Buffer.concat([b.subarray(0, f2.offset), b.subarray(f3.offset, f3.offset + f3.length), b.subarray(f2.offset, f2.offset + f2.length), b.subarray(f3.offset + f3.length)]);
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, swapped);
    const r = await verifyDirs([d], A);
    expect(brief(r)[0]).toEqual({ check: 'chain.hash', segment: 1, index: 12 });
  });

  it('swap two entries and recompute the chain → merkle.root, and the mid-segment heartbeat disagrees', async () => {
    const d = fresh();
    const file = segPath(d, 1);
    const es = readSegment(file).entries.slice();
    [es[2], es[3]] = [es[3]!, es[2]!];
    rewriteSegment(file, es);
    const r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'merkle.root', segment: 1 });
    expect(brief(r)).toContainEqual({ check: 'checkpoint.heartbeat', segment: 1 });
  });

  it('swap two segments → segment.name for both', async () => {
    const d = fresh();
    fs.renameSync(segPath(d, 1), path.join(d, 'tmp'));
    fs.renameSync(segPath(d, 2), segPath(d, 1));
    fs.renameSync(path.join(d, 'tmp'), segPath(d, 2));
    const r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'segment.name', segment: 1 });
    expect(brief(r)).toContainEqual({ check: 'segment.name', segment: 2 });
  });
});

describe('3. deleted segments and tail truncation', () => {
  it('delete a middle segment → segment.sequence naming it', async () => {
    const d = fresh();
    fs.rmSync(segPath(d, 2));
    const r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'segment.sequence', segment: 2 });
  });

  it('delete a middle segment and its seal, keeping its heartbeat → segment.sequence', async () => {
    const d = fresh();
    fs.rmSync(segPath(d, 2));
    fs.rmSync(cpOf(d, 2, 'seal'));
    const r = await verifyDirs([d], A);
    expect(brief(r)[0]).toEqual({ check: 'segment.sequence', segment: 2 });
    expect(brief(r)).toContainEqual({ check: 'checkpoint.link', segment: 3 });
  });

  it('delete a middle segment and its checkpoints → segment.sequence and checkpoint.link', async () => {
    const d = fresh();
    fs.rmSync(segPath(d, 2));
    for (const f of cpFiles(d, (x) => x.startsWith('0000000000000002-'))) fs.rmSync(f);
    const r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'segment.sequence', segment: 2 });
    expect(brief(r)).toContainEqual({ check: 'checkpoint.link', segment: 3 });
  });

  it('delete the tail: only --expect-fresh shows it in one source; comparing sources names the short one', async () => {
    const intact = fresh();
    const d = fresh();
    fs.rmSync(segPath(d, 3));
    fs.rmSync(path.join(d, 'segments', '0000000000000004.seg.open'));
    for (const f of cpFiles(d, (x) => x.startsWith('0000000000000003-') || x.startsWith('0000000000000004-'))) fs.rmSync(f);
    // A ledger dir's head.checkpoint still names the newest tree: left in place, it gives the cut away.
    expect(brief(await verifyDirs([d], A))).toEqual([
      { check: 'checkpoint.link', segment: 3 },
      { check: 'segment.sequence', segment: 3 },
    ]);
    fs.rmSync(path.join(d, 'head.checkpoint'));
    // Alone, a cleanly cut tail (head included) looks like an older log: that is why heartbeats and --expect-fresh exist.
    expect(brief(await verifyDirs([d], A))).toEqual([]);
    const now = () => lastMs + 2_000;
    expect(brief(await verifyDirs([intact], A, { expectFreshMs: 5_000, now }))).toEqual([]);
    const r = await verifyDirs([d], A, { expectFreshMs: 5_000, now });
    expect(brief(r)).toEqual([{ check: 'log.fresh', segment: 2 }]);
    // Two destinations: the truncated one is behind the other.
    const destA = path.join(root, `destA${n}`);
    const destB = path.join(root, `destB${n}`);
    copyToDestination(intact, destA, originPath(ORIGIN));
    copyToDestination(d, destB, originPath(ORIGIN));
    const r2 = await verifyDirs([destA, destB], A);
    expect(r2.findings.map((f) => [f.check, f.source])).toEqual([['source.truncated', destB]]);
  });

  it('delete everything but one segment → segment.start', async () => {
    const d = fresh();
    for (const s of [0, 1, 3]) fs.rmSync(segPath(d, s));
    fs.rmSync(path.join(d, 'segments', '0000000000000004.seg.open'));
    for (const f of cpFiles(d)) fs.rmSync(f);
    const r = await verifyDirs([d], A);
    expect(brief(r)[0]).toEqual({ check: 'segment.start', segment: 2 });
  });

  it('a ledger dir whose head the forwarder released verifies; the same gap not named in `released` is segment.start', async () => {
    const d = fresh();
    const gone = [path.basename(segPath(d, 0)), path.basename(segPath(d, 1)), ...cpFiles(d, (x) => /^000000000000000[01]-/.test(x)).map((f) => path.basename(f))];
    for (const s of [0, 1]) fs.rmSync(segPath(d, s));
    for (const f of cpFiles(d, (x) => /^000000000000000[01]-/.test(x))) fs.rmSync(f);
    const r = await verifyDirs([d], A);
    expect(brief(r)).toEqual([
      { check: 'segment.start', segment: 2 },
      { check: 'checkpoint.link', segment: 2 },
    ]);
    fs.writeFileSync(path.join(d, 'released'), `${gone.join('\n')}\n`);
    const ok = await verifyDirs([d], A);
    expect(brief(ok)).toEqual([]);
    expect(ok.sources[0]!.firstSegment).toBe(2);
  });

  it("delete the log's first checkpoint (the genesis heartbeat) → checkpoint.link", async () => {
    const d = fresh();
    const genesis = cpFiles(d)[0]!;
    expect(fs.readFileSync(genesis, 'utf8')).toMatch(/\nsealtrail-prev genesis\n/);
    fs.rmSync(genesis);
    const r = await verifyDirs([d], A);
    expect(brief(r)).toEqual([{ check: 'checkpoint.link', segment: 0 }]);
  });

  it('delete everything → log.empty', async () => {
    const d = fresh();
    fs.rmSync(path.join(d, 'segments'), { recursive: true });
    fs.rmSync(path.join(d, 'checkpoints'), { recursive: true });
    fs.rmSync(path.join(d, 'head.checkpoint'));
    fs.mkdirSync(path.join(d, 'segments'));
    const r = await verifyDirs([d], A);
    expect(brief(r)).toEqual([{ check: 'log.empty', segment: null }]);
  });
});

describe('4. keys and versions', () => {
  it('history re-signed with a different key → checkpoint.signature from the first checkpoint on', async () => {
    const d = path.join(root, `resigned${n++}`);
    fs.mkdirSync(d);
    await buildLog({ dir: d, signer: B, segments: 2, perSegment: 10 });
    const r = await verifyDirs([d], A);
    expect(brief(r)[0]).toEqual({ check: 'checkpoint.signature', segment: 0 });
    expect(r.findings.every((f) => f.check === 'checkpoint.signature')).toBe(true);
  });

  it('a key planted in the data (announced by an untrusted signer, or a .pub file) is never trusted', async () => {
    const d = fresh();
    fs.writeFileSync(path.join(d, 'signing.pub'), `${B.verifierKey}\n`);
    const sealNote = fs.readFileSync(cpOf(d, 3, 'seal'), 'utf8');
    const p = parseCheckpointBody(parseSignedNote(sealNote).ok ? (parseSignedNote(sealNote) as { value: { body: string } }).value.body : '');
    if (!p.ok) throw new Error('seal does not parse');
    const body = formatCheckpoint({ ...p.value, kind: 'heartbeat', seq: 4, prev: p.value.bodyHash, fromMs: p.value.toMs, toMs: p.value.toMs + 500, keys: [B.verifierKey] });
    const forged = signCheckpoint(body, [B]);
    fs.writeFileSync(path.join(d, 'checkpoints', checkpointFileName(4, 40, p.value.toMs + 500, 'heartbeat')), forged);
    const r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'checkpoint.signature', segment: 4 });
    expect(brief(r)).toContainEqual({ check: 'key.rotation', segment: 4 });
    expect(r.rotatedKeys).toEqual([]);
  });

  it('strip the signature line → checkpoint.signature (and the trailer copy keeps the chain going)', async () => {
    const d = fresh();
    const file = cpOf(d, 1, 'seal');
    const text = fs.readFileSync(file, 'utf8');
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, text.slice(0, text.lastIndexOf('\n\n') + 1));
    const r = await verifyDirs([d], A);
    expect(brief(r)).toEqual([
      { check: 'checkpoint.signature', segment: 1 },
      { check: 'checkpoint.copy', segment: 1 },
    ]);
    expect(r.findings[0]!.message).toMatch(/no signature line/);
  });

  it('downgrade the segment format version → segment.header (never-issued version 0)', async () => {
    const d = fresh();
    setHeaderVersion(segPath(d, 1), 0);
    const r = await verifyDirs([d], A);
    expect(brief(r)[0]).toEqual({ check: 'segment.header', segment: 1 });
    expect(r.findings[0]!.message).toMatch(/downgrade/);
  });

  it('downgrade the checkpoint format version → checkpoint.parse', async () => {
    const d = fresh();
    const file = cpOf(d, 1, 'heartbeat');
    const text = fs.readFileSync(file, 'utf8');
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, text.replace('\nsealtrail-format 1\n', '\nsealtrail-format 0\n'));
    const r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'checkpoint.parse', segment: 1 });
  });

  it('a newer, unknown segment version is "cannot verify" (exit 2 path), not tampering', async () => {
    const d = fresh();
    setHeaderVersion(segPath(d, 1), 2);
    await expect(verifyDirs([d], A)).rejects.toMatchObject({ code: 'FORMAT_UNSUPPORTED' });
  });
});

describe('5. replay, relocation, another origin', () => {
  it('an older segment replayed under a newer name → segment.name', async () => {
    const d = fresh();
    fs.chmodSync(segPath(d, 3), 0o644);
    fs.copyFileSync(segPath(d, 1), segPath(d, 3));
    const r = await verifyDirs([d], A);
    expect(brief(r)[0]).toEqual({ check: 'segment.name', segment: 3 });
  });

  it('an older checkpoint replayed under a newer name → checkpoint.name', async () => {
    const d = fresh();
    const old = cpOf(d, 1, 'heartbeat');
    const target = path.join(d, 'checkpoints', checkpointFileName(3, 35, lastMs + 100, 'heartbeat'));
    fs.copyFileSync(old, target);
    const r = await verifyDirs([d], A);
    expect(r.findings.find((f) => f.check === 'checkpoint.name')).toMatchObject({ segment: 3, file: path.basename(target) });
  });

  it('a segment relocated (renamed to a later sequence) → segment.sequence and segment.name', async () => {
    const d = fresh();
    fs.renameSync(segPath(d, 3), segPath(d, 6));
    const r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'segment.name', segment: 6 });
    expect(brief(r)).toContainEqual({ check: 'segment.sequence', segment: 3 });
  });

  it("another origin's segment (same key) → segment.origin and checkpoint.origin", async () => {
    const other = path.join(root, `other${n++}`);
    fs.mkdirSync(other);
    await buildLog({ dir: other, signer: A, segments: 2, perSegment: 10, origin: 'sealtrail.test/other' });
    const d = fresh();
    fs.chmodSync(segPath(d, 1), 0o644);
    fs.copyFileSync(segPath(other, 1), segPath(d, 1));
    const r = await verifyDirs([d], A);
    expect(brief(r)[0]).toEqual({ check: 'segment.origin', segment: 1 });
    expect(brief(r)).toContainEqual({ check: 'checkpoint.origin', segment: 1 });
  });
});

describe('6. equivocation', () => {
  it('two validly signed checkpoints for one size with different roots → checkpoint.equivocation', async () => {
    // A fork: the same key signs a different history from segment 1 on.
    const fork = path.join(root, `fork${n++}`);
    fs.mkdirSync(fork);
    await buildLog({ dir: fork, signer: A, segments: 3, perSegment: 10, tag: 'e', clock: stepClock() });
    const d = path.join(fork, '..', `forkb${n++}`);
    fs.mkdirSync(d);
    // same first segment entries (tag e0), different second (tag f1): diverges at index 10
    await buildForked(d);
    const r = await verifyDirs([template, d], A);
    const eq = r.findings.filter((f) => f.check === 'checkpoint.equivocation');
    expect(eq.length).toBeGreaterThan(0);
    expect(eq[0]).toMatchObject({ source: d, segment: 1 });
    expect(brief(r)).toContainEqual({ check: 'source.mismatch', segment: 1 });
  });

  it('within one source: a second, validly signed checkpoint for an existing size → checkpoint.equivocation', async () => {
    const d = fresh();
    const hb = fs.readFileSync(cpOf(d, 2, 'heartbeat'), 'utf8'); // size 25
    let toMs = 0;
    const other = resign(hb, A, (body) => {
      const lines = body.split('\n');
      lines[2] = Buffer.alloc(32, 7).toString('base64'); // another root for size 25
      const t = lines.findIndex((l) => l.startsWith('sealtrail-time '));
      const [, from, to] = lines[t]!.split(' ');
      toMs = Number(to) + 1;
      lines[t] = `sealtrail-time ${from} ${toMs}`;
      return lines.join('\n');
    });
    fs.writeFileSync(path.join(d, 'checkpoints', checkpointFileName(2, 25, toMs, 'heartbeat')), other);
    const r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'checkpoint.equivocation', segment: 2 });
  });
});

/** A log with the template's first segment and different entries after it (same key, origin, clock). */
async function buildForked(dir: string): Promise<void> {
  const { Ledger } = await import('../../src/ledger/ledger.js');
  const { ledgerConfig, entries } = await import('./helpers.js');
  const { silentLogger } = await import('../../src/telemetry/logger.js');
  const clock = stepClock();
  const l = await Ledger.open({ config: ledgerConfig(dir), signer: A, logger: silentLogger(), clock: clock.now });
  for (let s = 0; s < 3; s++) {
    const es = entries(s === 0 ? 'e0' : `f${s}`, 10);
    await l.append(es.slice(0, 5));
    await l.heartbeat();
    await l.append(es.slice(5));
    await l.seal();
  }
  await l.close();
}

describe('7. Merkle malleability', () => {
  it('duplicate the last leaf (CVE-2012-2459 style) with everything recomputed → checkpoint.size and merkle.root', async () => {
    const d = fresh();
    const file = segPath(d, 1);
    const es = readSegment(file).entries;
    rewriteSegment(file, [...es, es[es.length - 1]!]);
    const r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'checkpoint.size', segment: 1 });
    expect(brief(r)).toContainEqual({ check: 'merkle.root', segment: 1 });
  });

  it('leaf/node prefix confusion: two leaves replaced by one entry holding their hashes → merkle.root', async () => {
    const d = fresh();
    const file = segPath(d, 0);
    const es = readSegment(file).entries;
    const node = Buffer.concat([leafHash(es[0]!), leafHash(es[1]!)]);
    rewriteSegment(file, [new Uint8Array(node), ...es.slice(2)]);
    const r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'merkle.root', segment: 0 });
  });
});

describe('8. checkpoint text', () => {
  it('a newline injected into the origin → checkpoint.parse (and --origin with a newline is refused)', async () => {
    const d = fresh();
    const file = cpOf(d, 1, 'heartbeat');
    const text = fs.readFileSync(file, 'utf8');
    const body = text.slice(0, text.lastIndexOf('\n\n') + 1);
    const injected = signCheckpointRaw(`${ORIGIN}\n${body}`);
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, injected);
    const r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'checkpoint.parse', segment: 1 });
  });

  it('a checkpoint that parses differently than it was signed (extra unsigned line, CRLF) → checkpoint.parse', async () => {
    const d = fresh();
    const file = cpOf(d, 2, 'seal');
    const text = fs.readFileSync(file, 'utf8');
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, `${text}sealtrail-key ${B.verifierKey}\n`);
    let r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'checkpoint.parse', segment: 2 });
    expect(r.rotatedKeys).toEqual([]);
    fs.writeFileSync(file, text.replace(/\n/g, '\r\n'));
    r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'checkpoint.parse', segment: 2 });
  });
});

/** Signs arbitrary note text with key A via the generic signed-note signer (no checkpoint checks). */
function signCheckpointRaw(body: string): string {
  const sig = A.sign(new TextEncoder().encode(body));
  const raw = Buffer.concat([Buffer.from(A.keyId), Buffer.from(sig)]);
  return `${body}\n\u2014 ${A.name} ${raw.toString('base64')}\n`;
}

describe('9. chain restart', () => {
  it('a new log under the same origin and key, numbered to continue the old one → segment.index and checkpoint.link', async () => {
    const restart = path.join(root, `restart${n++}`);
    fs.mkdirSync(restart);
    await buildLog({ dir: restart, signer: A, segments: 2, perSegment: 10, tag: 'r', clock: stepClock(lastMs + 10_000) });
    const d = fresh();
    fs.rmSync(path.join(d, 'segments', '0000000000000004.seg.open'));
    // Rename the new log's segments to 4, 5 and rewrite their headers to match (CRC fixed).
    for (const s of [0, 1]) {
      const to = segPath(d, s + 4);
      fs.copyFileSync(segPath(restart, s), to);
      const seg = readSegment(to);
      rewriteSegment(to, seg.entries, { header: editHeader(to, { seq: s + 4 }) });
    }
    for (const f of cpFiles(restart)) {
      const name = path.basename(f);
      const seq = Number(name.slice(0, 16)) + 4;
      fs.copyFileSync(f, path.join(d, 'checkpoints', `${String(seq).padStart(16, '0')}${name.slice(16)}`));
    }
    const r = await verifyDirs([d], A);
    expect(brief(r)).toContainEqual({ check: 'segment.index', segment: 4, index: 0 });
    const link = r.findings.find((f) => f.check === 'checkpoint.link' && /genesis/.test(f.message));
    expect(link).toBeDefined();
  });
});

describe('--since / --until', () => {
  it('segments entirely before --since are not hashed, their checkpoints still are; the window is checked in full', async () => {
    const d = fresh();
    const seal1 = Number(path.basename(cpOf(d, 1, 'seal')).split('-')[2]);
    flipBit(segPath(d, 0), readSegment(segPath(d, 0)).frames[1]!.offset + 50); // outside the window
    const r = await verifyDirs([d], A, { since: seal1 + 1 });
    expect(brief(r)).toEqual([]);
    expect(r.sources[0]!.skippedSegments).toBe(2);
    expect(r.sources[0]!.entries).toBe(20);
    flipBit(segPath(d, 2), readSegment(segPath(d, 2)).frames[1]!.offset + 50); // inside
    expect(brief(await verifyDirs([d], A, { since: seal1 + 1 }))).toEqual([{ check: 'frame.crc', segment: 2, index: 21 }]);
    // --until before segment 3 started: segment 3 (and the open one) not hashed
    const seal2 = Number(path.basename(cpOf(d, 2, 'seal')).split('-')[2]);
    const u = await verifyDirs([template], A, { until: seal2 - 1 });
    expect(brief(u)).toEqual([]);
    expect(u.sources[0]!.skippedSegments).toBe(1);
  });
});

describe('the open segment of a running agent', () => {
  it('its entries are checked against the heartbeats that cover them', async () => {
    const { Ledger } = await import('../../src/ledger/ledger.js');
    const { ledgerConfig, entries } = await import('./helpers.js');
    const { silentLogger } = await import('../../src/telemetry/logger.js');
    const live = path.join(root, `live${n++}`);
    copyDir(template, live);
    const clock = stepClock(lastMs + 1000);
    // As agents run by default: durability fsync (its commit writer writes zeros ahead).
    const l = await Ledger.open({ config: { ...ledgerConfig(live), durability: 'fsync' }, signer: A, logger: silentLogger(), clock: clock.now });
    try {
      expect((await l.append(entries('live', 6))).kind).toBe('ok');
      await l.heartbeat(); // signs tree size 46, inside the open segment 4
      expect((await l.append(entries('unsealed', 2))).kind).toBe('ok'); // not covered by any checkpoint yet
      // Where the commit writer writes zeros ahead of its commits, wait for them: the open segment
      // of a running agent ends in them, and they are no finding.
      const liveOpen = path.join(live, 'segments', '0000000000000004.seg.open');
      const logicalEnd = scanSegment(new Uint8Array(fs.readFileSync(liveOpen)), { sealed: false }).goodEnd;
      if (directIoIn(live)) expect(await waitUntil(() => fs.statSync(liveOpen).size > logicalEnd, 2000)).toBe(true);
      const snap = path.join(root, `snap${n++}`);
      copyDir(live, snap);
      const ok = await verifyDirs([snap], A);
      expect(brief(ok)).toEqual([]);
      expect(ok.sources[0]!.entries).toBe(48);
      expect(ok.sources[0]!.treeSize).toBe(46);
      expect(ok.sources[0]!.unsignedEntries).toBe(2);
      // Rewrite entry 42 in the open segment with CRC and chain recomputed: the heartbeat disagrees.
      const open = path.join(snap, 'segments', '0000000000000004.seg.open');
      const { rewriteOpenSegment } = await import('./helpers.js');
      rewriteOpenSegment(open, (es) => {
        es[2] = new TextEncoder().encode('changed after the heartbeat');
        return es;
      });
      const r = await verifyDirs([snap], A);
      expect(brief(r)).toEqual([{ check: 'checkpoint.heartbeat', segment: 4 }]);
    } finally {
      await l.close();
    }
  });
});

