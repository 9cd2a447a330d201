/**
 * The native commit writer's way back to the page cache (durability fsync), run for real: this
 * machine's file systems all take O_DIRECT, so a small LD_PRELOAD shim (test/fixtures/no-odirect-shim.c)
 * makes open(O_DIRECT) or the direct pwrite fail with EINVAL, or cut the first direct write short,
 * in a child process that commits through the addon. Whatever fails, every byte must land where it
 * belongs and each commit must still succeed (G1): EINVAL switches direct writes off for good, a
 * short write sends that one run through the page cache again.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeCommitWriter } from '../../src/ledger/native-hash.js';
import { directIoIn, removeDir, tempDir } from './helpers.js';

const ADDON = fileURLToPath(new URL('../../build/Release/sealtrail_hash.node', import.meta.url));
const SHIM_SRC = fileURLToPath(new URL('../fixtures/no-odirect-shim.c', import.meta.url));
const haveCc = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;

/** Commits of these sizes one at a time after a 37-byte header, then reports what it wrote. */
const CHILD = `
const a = require(process.env.ADDON);
const fs = require('node:fs');
const file = process.env.FILE;
const header = Buffer.from('segment header: 37 bytes, not aligned');
const sizes = [100, 5000, 3055, 4096, 100000, 1, 20000, 9 * 1024 * 1024 + 123, 70000];
const payload = (i, n) => Buffer.from(Array.from({ length: n }, (_, k) => (k * 7 + i * 13 + (k >> 12)) & 0xff));
fs.writeFileSync(file, header);
const fd = fs.openSync(file, 'r+');
const waiting = new Map();
let next = 0;
const w = a.commitWriter((first, last, err, sys) => {
  for (let id = first; ; id++) {
    const done = waiting.get(id);
    if (done) { waiting.delete(id); done(err === 0 ? undefined : sys + ' errno ' + err); }
    if (id === last) break;
  }
}, true, true);
const submit = (bufs, pos) => new Promise((resolve) => { const id = next++; waiting.set(id, resolve); a.cwSubmit(w, id, fd, bufs, pos); });
(async () => {
  const parts = [header];
  let pos = header.length;
  const failures = [];
  for (const [i, n] of sizes.entries()) {
    const p = payload(i, n);
    const failed = await submit([p.subarray(0, n >> 1), p.subarray(n >> 1)], pos);
    if (failed) failures.push(failed);
    parts.push(p);
    pos += n;
  }
  const direct = a.cwDirectBytes(w);
  a.cwClose(w);
  fs.closeSync(fd);
  console.log(JSON.stringify({ same: fs.readFileSync(file).equals(Buffer.concat(parts)), direct, failures }));
})();
`;

let work = '';
let shim = '';

beforeAll(async () => {
  work = await tempDir('sealtrail-direct-');
  if (!haveCc) return;
  shim = path.join(work, 'no-odirect-shim.so');
  const cc = spawnSync('cc', ['-shared', '-fPIC', '-O1', '-o', shim, SHIM_SRC, '-ldl'], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`compiling the shim failed: ${cc.stderr}`);
});

afterAll(async () => {
  await removeDir(work);
});

function commitInChild(mode: string | undefined): { same: boolean; direct: number; failures: string[] } {
  const file = path.join(work, `${mode ?? 'plain'}.seg`);
  const env: NodeJS.ProcessEnv = { ...process.env, ADDON, FILE: file };
  if (mode !== undefined) Object.assign(env, { LD_PRELOAD: shim, SHIM_DIRECT: mode });
  const r = spawnSync(process.execPath, ['-e', CHILD], { env, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`child (${mode}) exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim()) as { same: boolean; direct: number; failures: string[] };
}

// Skipped where it cannot run: without the addon's commit writer (no compiler at install: the JS
// writer has no direct writes), without a C compiler for the shim, or where the file system here
// already refuses O_DIRECT (then the plain run below shows it and the shim adds nothing).
const canRun = nativeCommitWriter !== undefined && haveCc && process.platform === 'linux';

describe.runIf(canRun)('direct writes that fail fall back to the page cache with the same bytes', () => {
  let plain: { same: boolean; direct: number; failures: string[] };
  beforeAll(() => {
    plain = commitInChild(undefined);
  });

  it('without the shim the commits go directly (the baseline the others are measured against)', () => {
    expect(plain.failures).toEqual([]);
    expect(plain.same).toBe(true);
    if (directIoIn(work)) expect(plain.direct).toBeGreaterThan(9 * 1024 * 1024);
  });

  it('a file system without O_DIRECT (open fails with EINVAL): every commit through the page cache', () => {
    const r = commitInChild('open');
    expect(r.failures).toEqual([]);
    expect(r.same).toBe(true);
    expect(r.direct).toBe(0);
  });

  it('direct writes refused (pwrite fails with EINVAL): that run and all later ones through the page cache', () => {
    const r = commitInChild('write');
    expect(r.failures).toEqual([]);
    expect(r.same).toBe(true);
    expect(r.direct).toBe(0);
  });

  it('a short direct write: that run again through the page cache, later ones directly', () => {
    const r = commitInChild('short');
    expect(r.failures).toEqual([]);
    expect(r.same).toBe(true);
    if (!directIoIn(work)) return;
    expect(r.direct).toBeGreaterThan(0);
    expect(r.direct).toBeLessThan(plain.direct);
  });
});
