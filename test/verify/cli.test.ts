/**
 * The verify / prove / verify-proof / export commands in-process: exit codes (0 intact, 1
 * findings, 2 could not verify), the --json schema, key rotation, several sources, proofs that
 * verify offline and proofs that must not.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { originPath } from '../../src/forward/keys.js';
import { CHECKS, REPORT_SCHEMA } from '../../src/verify/findings.js';
import { INCLUSION_HEADER } from '../../src/verify/proof.js';
import { ORIGIN, buildLog, cli, copyDir, copyToDestination, flipBit, leafHash, readSegment, segPath, signer, stepClock, tempDir, writePub } from './helpers.js';

const A = signer(11);
const B = signer(12);
let root: string;
let log: string; // 4 segments × 10 entries, rotation A → B announced after segment 1
let pubA: string;
let pubB: string;

beforeAll(async () => {
  root = await tempDir();
  log = path.join(root, 'ledger');
  fs.mkdirSync(log);
  // The clock runs up to about now, so that --expect-fresh can be exercised through the CLI.
  await buildLog({ dir: log, signer: A, segments: 4, perSegment: 10, rotateAfter: 2, rotateTo: B, clock: stepClock(Date.now() - 60_000) });
  pubA = writePub(root, A, 'a');
  pubB = writePub(root, B, 'b');
});

afterAll(async () => {
  await fs.promises.rm(root, { recursive: true, force: true });
});

describe('sealtrail verify', () => {
  it('an intact multi-segment log with key rotation → exit 0, the announced key is trusted', async () => {
    const r = await cli(['verify', log, '--key', pubA, '--origin', ORIGIN, '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(doc.schema).toBe(REPORT_SCHEMA);
    expect(doc.result).toBe('intact');
    expect(doc.findings).toEqual([]);
    expect(doc.rotatedKeys).toEqual([B.verifierKey]);
    expect(doc.checks).toEqual([...CHECKS]);
    expect(doc.sources[0]).toMatchObject({ source: log, segments: 5, entries: 40, treeSize: 40, firstSegment: 0, lastSegment: 4 });
    expect(typeof doc.sources[0].timeFrom).toBe('string');
  });

  it('the human summary names what was checked and the counts', async () => {
    const r = await cli(['verify', log, '--key', pubA, '--origin', ORIGIN]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/40 entries/);
    expect(r.out).toMatch(/INTACT/);
    expect(r.out).toMatch(/rotation/);
  });

  it('the new key alone cannot vouch for the history before it → exit 1', async () => {
    const r = await cli(['verify', log, '--key', pubB, '--origin', ORIGIN, '--json']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.out);
    expect(doc.result).toBe('findings');
    expect(doc.findings[0]).toMatchObject({ check: 'checkpoint.signature', segment: 0 });
  });

  it('a key used without an announcement is not trusted → checkpoint.signature after the switch', async () => {
    // The rotated log with its announcing heartbeat removed: B's checkpoints have no voucher.
    const d = path.join(root, 'unannounced');
    copyDir(log, d);
    const announcing = fs
      .readdirSync(path.join(d, 'checkpoints'))
      .filter((n) => fs.readFileSync(path.join(d, 'checkpoints', n), 'utf8').includes('\nsealtrail-key '));
    expect(announcing).toHaveLength(1);
    fs.rmSync(path.join(d, 'checkpoints', announcing[0]!));
    const r = await cli(['verify', d, '--key', pubA, '--origin', ORIGIN, '--json']);
    expect(r.code).toBe(1);
    const found = JSON.parse(r.out).findings.map((f: { check: string; segment: number }) => [f.check, f.segment]);
    expect(found).toContainEqual(['checkpoint.signature', 2]);
    expect(found).toContainEqual(['checkpoint.link', 2]);
    // Both keys given by the operator: only the missing checkpoint remains.
    const both = await cli(['verify', d, '--key', pubA, '--key', pubB, '--origin', ORIGIN, '--json']);
    expect(JSON.parse(both.out).findings.map((f: { check: string }) => f.check)).toEqual(['checkpoint.link']);
  });

  it('ledger dir + fs destination + dest:NAME from a config → exit 0; a differing copy → source.mismatch', async () => {
    const dest = path.join(root, 'worm');
    copyToDestination(log, dest, originPath(ORIGIN));
    const cfg = path.join(root, 'agent.yaml');
    fs.writeFileSync(
      cfg,
      `receivers: { otlp: { protocols: { http: {} } } }\nledger: { origin: ${ORIGIN} }\ndestinations:\n  - { name: local-worm, type: fs, path: ${dest} }\n`,
    );
    const ok = await cli(['verify', log, dest, 'dest:local-worm', '--config', cfg, '--key', pubA, '--origin', ORIGIN, '--json']);
    const okDoc = JSON.parse(ok.out);
    expect(okDoc.findings).toEqual([]);
    expect(ok.code).toBe(0);
    // byte-identical segments of the 2nd and 3rd source reuse the first source's scan (4 sealed segments)
    expect(okDoc.sources.map((x: { identicalToVerified: number; entries: number }) => [x.identicalToVerified, x.entries])).toEqual([
      [0, 40],
      [4, 40],
      [4, 40],
    ]);
    const bad = path.join(root, 'worm-bad');
    copyDir(dest, bad);
    const f = path.join(bad, originPath(ORIGIN), 'segments', '0000000000000001.seg');
    flipBit(f, readSegment(f).frames[2]!.offset + 45);
    const r = await cli(['verify', dest, bad, '--key', pubA, '--origin', ORIGIN, '--json']);
    expect(r.code).toBe(1);
    const found = JSON.parse(r.out).findings.map((x: { check: string; source: string; segment: number }) => [x.check, x.source, x.segment]);
    expect(found).toContainEqual(['frame.crc', bad, 1]);
    expect(found).toContainEqual(['source.mismatch', bad, 1]);
  });

  it('--expect-fresh: a fresh log passes, a too-old latest checkpoint is log.fresh', async () => {
    expect((await cli(['verify', log, '--key', pubA, '--origin', ORIGIN, '--expect-fresh', '1h'])).code).toBe(0);
    const r = await cli(['verify', log, '--key', pubA, '--origin', ORIGIN, '--expect-fresh', '1s', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out).findings.map((f: { check: string }) => f.check)).toEqual(['log.fresh']);
  });

  it('usage and I/O problems → exit 2, never reported as tampering', async () => {
    const cases: string[][] = [
      ['verify', log, '--origin', ORIGIN], // no key
      ['verify', log, '--key', pubA], // no origin
      ['verify', '--key', pubA, '--origin', ORIGIN], // no source
      ['verify', path.join(root, 'nope'), '--key', pubA, '--origin', ORIGIN],
      ['verify', log, '--key', path.join(root, 'missing.pub'), '--origin', ORIGIN],
      ['verify', log, '--key', pubA, '--origin', 'a\nb'], // newline in origin
      ['verify', log, '--key', pubA, '--origin', ORIGIN, '--expect-fresh', 'soon'],
      ['verify', log, '--key', pubA, '--origin', ORIGIN, '--bogus'],
      ['verify', 'dest:x', '--key', pubA, '--origin', ORIGIN], // dest: without --config
    ];
    for (const c of cases) {
      const r = await cli(c);
      expect(r.code, c.join(' ')).toBe(2);
      expect(r.err.length, c.join(' ')).toBeGreaterThan(0);
    }
    const r = await cli(['verify', log, '--key', path.join(root, 'missing.pub'), '--origin', ORIGIN, '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out)).toMatchObject({ schema: REPORT_SCHEMA, result: 'error', error: { code: 'USAGE' } });
    // a private key given as --key is refused with a clear message
    const priv = path.join(root, 'x.key');
    fs.writeFileSync(priv, 'PRIVATE+KEY+x+00000000+AAAA\n');
    const p = await cli(['verify', log, '--key', priv, '--origin', ORIGIN]);
    expect(p.code).toBe(2);
    expect(p.err).toMatch(/PRIVATE/);
  });

  it('an unknown (newer) format version → exit 2 with the reason', async () => {
    const d = path.join(root, 'newer');
    copyDir(log, d);
    const f = segPath(d, 1);
    const { setHeaderVersion } = await import('./helpers.js');
    setHeaderVersion(f, 7);
    const r = await cli(['verify', d, '--key', pubA, '--origin', ORIGIN, '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out).error.code).toBe('FORMAT_UNSUPPORTED');
    expect(r.err).toMatch(/version 7/);
  });
});

describe('sealtrail prove / verify-proof', () => {
  it('an inclusion proof verifies offline with only the file and the key; any change breaks it', async () => {
    const out = path.join(root, 'p13.tlog-proof');
    const p = await cli(['prove', log, '--index', '13', '--out', out]);
    expect(p.code).toBe(0);
    const text = fs.readFileSync(out, 'utf8');
    expect(text.startsWith(`${INCLUSION_HEADER}\nextra `)).toBe(true);
    expect(text).toMatch(/\nindex 13\n/);
    const ok = await cli(['verify-proof', out, '--key', pubA, '--json']);
    expect(ok.code).toBe(0);
    const doc = JSON.parse(ok.out);
    expect(doc).toMatchObject({ result: 'valid', kind: 'inclusion', index: 13, treeSize: 20, origin: ORIGIN, segment: 1 });
    expect(doc.otlp.scopeLogs[0].logRecords[0].body.stringValue).toMatch(/^e1#3 /);
    // with the origin enforced
    expect((await cli(['verify-proof', out, '--key', pubA, '--origin', ORIGIN])).code).toBe(0);
    expect((await cli(['verify-proof', out, '--key', pubA, '--origin', 'other/log'])).code).toBe(1);
    // wrong key
    expect((await cli(['verify-proof', out, '--key', pubB])).code).toBe(1);
    // another entry's bytes, the same path
    const lines = text.split('\n');
    const other = readSegment(segPath(log, 1)).entries[4]!;
    lines[1] = `extra ${Buffer.from(other).toString('base64')}`;
    fs.writeFileSync(path.join(root, 'forged1'), lines.join('\n'));
    const f1 = await cli(['verify-proof', path.join(root, 'forged1'), '--key', pubA]);
    expect(f1.code).toBe(1);
    expect(f1.err).toMatch(/audit path/);
    // another index
    fs.writeFileSync(path.join(root, 'forged2'), text.replace('\nindex 13\n', '\nindex 12\n'));
    expect((await cli(['verify-proof', path.join(root, 'forged2'), '--key', pubA])).code).toBe(1);
    // unreadable file / no key
    expect((await cli(['verify-proof', path.join(root, 'none'), '--key', pubA])).code).toBe(2);
    expect((await cli(['verify-proof', out])).code).toBe(2);
    // never overwrites
    expect((await cli(['prove', log, '--index', '13', '--out', out])).code).toBe(2);
  });

  it('every entry of the log has a valid proof (segments before and after the key rotation)', async () => {
    for (const i of [0, 1, 9, 10, 19, 20, 25, 39]) {
      const p = await cli(['prove', log, '--index', String(i)]);
      expect(p.code, `prove ${i}`).toBe(0);
      const f = path.join(root, `all-${i}`);
      fs.writeFileSync(f, p.out);
      expect((await cli(['verify-proof', f, '--key', pubA, '--key', pubB])).code, `verify ${i}`).toBe(0);
    }
    expect((await cli(['prove', log, '--index', '40'])).code).toBe(2);
    expect((await cli(['prove', log, '--index', '-1'])).code).toBe(2);
  });

  it('an interior node passed off as an entry (leaf/node prefix confusion) does not verify', async () => {
    const p = await cli(['prove', log, '--index', '0']);
    const lines = p.out.split('\n');
    const es = readSegment(segPath(log, 0)).entries;
    // the node over entries 0 and 1 is SHA-256(0x01 ‖ l0 ‖ l1); claim its children's concatenation as an entry
    lines[1] = `extra ${Buffer.concat([leafHash(es[0]!), leafHash(es[1]!)]).toString('base64')}`;
    lines.splice(3, 1); // drop the first sibling: the "entry" claims to be one level up
    const f = path.join(root, 'node-as-leaf');
    fs.writeFileSync(f, lines.join('\n'));
    expect((await cli(['verify-proof', f, '--key', pubA])).code).toBe(1);
  });

  it('consistency proofs between checkpoints, across the key rotation; a rewritten history fails', async () => {
    for (const [m, n] of [
      [10, 30],
      [5, 40],
      [0, 20],
      [20, 20],
      [15, 35],
    ] as const) {
      const p = await cli(['prove', log, '--consistency', String(m), String(n)]);
      expect(p.code, `${m}->${n}`).toBe(0);
      const f = path.join(root, `c-${m}-${n}`);
      fs.writeFileSync(f, p.out);
      // A proof across the rotation needs both keys from the operator (the file holds only the two
      // checkpoints, not the announcement between them).
      const v = await cli(['verify-proof', f, '--key', pubA, '--key', pubB, '--json']);
      expect(v.code, `${m}->${n}: ${v.err}`).toBe(0);
      expect(JSON.parse(v.out)).toMatchObject({ kind: 'consistency', oldSize: m, newSize: n });
    }
    const p = await cli(['prove', log, '--consistency', '10', '30']);
    const lines = p.out.split('\n');
    lines[3] = Buffer.alloc(32, 1).toString('base64');
    const f = path.join(root, 'c-bad');
    fs.writeFileSync(f, lines.join('\n'));
    const v = await cli(['verify-proof', f, '--key', pubA, '--key', pubB]);
    expect(v.code).toBe(1);
    expect((await cli(['prove', log, '--consistency', '11', '30'])).code).toBe(2); // no checkpoint of size 11
  });
});

describe('sealtrail export', () => {
  it('writes every verified entry as one OTLP/JSON request per line', async () => {
    const r = await cli(['export', log, '--key', pubA, '--origin', ORIGIN]);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines).toHaveLength(40);
    const first = JSON.parse(lines[0]!);
    expect(first.resourceLogs[0].scopeLogs[0].logRecords[0].body.stringValue).toMatch(/^e0#0 /);
    expect(JSON.parse(lines[39]!).resourceLogs[0].scopeLogs[0].logRecords[0].body.stringValue).toMatch(/^e3#9 /);
  });

  it('refuses a log that fails verification, unless --unverified', async () => {
    const d = path.join(root, 'export-bad');
    copyDir(log, d);
    flipBit(segPath(d, 2), readSegment(segPath(d, 2)).frames[0]!.offset + 50);
    const r = await cli(['export', d, '--key', pubA, '--origin', ORIGIN]);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/refusing/);
    const u = await cli(['export', d, '--key', pubA, '--origin', ORIGIN, '--unverified']);
    expect(u.code).toBe(1);
    expect(u.out.trim().split('\n')).toHaveLength(30); // segments 0, 1 and 3: segment 2 stops at its bad frame
    expect((await cli(['export', d, '--origin', ORIGIN])).code).toBe(2);
  });
});

describe('worker threads (compiled build)', () => {
  // The pool runs the compiled scan-worker.js; test/global-setup.ts builds dist/ before the suite.
  // Without a build (running this file alone from sources) there is nothing to run the workers on.
  const built = fs.existsSync(path.join(process.cwd(), 'dist/src/verify/scan-worker.js'));
  it.skipIf(!built)('findings with a pool of 2 workers equal the single-thread findings', async () => {
    const d = path.join(root, 'pooled');
    copyDir(log, d);
    flipBit(segPath(d, 1), readSegment(segPath(d, 1)).frames[6]!.offset + 50);
    const es = readSegment(segPath(d, 3)).entries.slice();
    [es[1], es[2]] = [es[2]!, es[1]!];
    const { rewriteSegment, verifyDirs } = await import('./helpers.js');
    rewriteSegment(segPath(d, 3), es);
    const { pathToFileURL } = await import('node:url');
    const dist = (p: string) => pathToFileURL(path.join(process.cwd(), 'dist', p)).href;
    const { verifyLog } = (await import(dist('src/verify/verifier.js'))) as typeof import('../../src/verify/verifier.js');
    const { openLogSource } = (await import(dist('src/cli/log-sources.js'))) as typeof import('../../src/cli/log-sources.js');
    const { parseVerifierKey } = await import('../../src/keys/keys.js');
    const src = await openLogSource(d, { origin: ORIGIN, cwd: root });
    const pooled = await verifyLog([src], { origin: ORIGIN, trusted: [parseVerifierKey(A.verifierKey)], workers: 2 });
    const single = await verifyDirs([d], A, { workers: 0 });
    const view = (r: { findings: { check: string; segment: number | null; index?: number; message: string }[] }) => r.findings.map((f) => [f.check, f.segment, f.index, f.message]);
    expect(view(pooled)).toEqual(view(single));
    expect(view(single).map((f) => f[0])).toEqual(expect.arrayContaining(['frame.crc', 'merkle.root', 'checkpoint.heartbeat']));
  });
});
