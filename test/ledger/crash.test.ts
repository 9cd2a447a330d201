/**
 * G1 with a real kill -9: a child process appends through the Ledger from 8 concurrent writers and
 * prints each acknowledged append; the parent kills it with SIGKILL at a random moment, 24 times
 * on the same directory. After every kill, every acknowledged entry must be in the log exactly
 * once, at the index it was acknowledged with, and the chain and segment links must hold; every
 * few rounds the parent itself runs recovery (Ledger.open) and seals, the other rounds the next
 * child does.
 *
 * No tsx here: the child (test/fixtures/ledger-crash-child.ts) is compiled once with tsc into
 * .tmp/ (inside the repo so that node_modules resolve) and run with plain node.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ledger } from '../../src/ledger/ledger.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { ORIGIN, ledgerConfig, readLog, removeDir, tempDir, testSigner, text } from './helpers.js';

const repo = path.resolve(import.meta.dirname, '../..');
const build = path.join(repo, '.tmp', `crash-child-${process.pid}`);
const child = path.join(build, 'test', 'fixtures', 'ledger-crash-child.js');
let dir: string;

beforeAll(async () => {
  fs.mkdirSync(build, { recursive: true });
  const tsconfig = path.join(build, 'tsconfig.json');
  fs.writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: path.join(repo, 'tsconfig.json'),
      compilerOptions: { outDir: build, rootDir: repo, noEmit: false, declaration: false, sourceMap: false, incremental: false },
      files: [path.join(repo, 'test', 'fixtures', 'ledger-crash-child.ts')],
      include: [],
    }),
  );
  try {
    execFileSync(process.execPath, [path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsconfig], { cwd: repo, stdio: 'pipe' });
  } catch (e) {
    // Type errors elsewhere in the tree still emit JavaScript; only a missing output is fatal.
    if (!fs.existsSync(child)) throw e;
  }
  fs.writeFileSync(path.join(build, 'package.json'), '{"type":"module"}');
  dir = await tempDir('sealtrail-crash-');
}, 240_000);

afterAll(async () => {
  await removeDir(dir);
  fs.rmSync(build, { recursive: true, force: true });
});

interface Ack {
  firstIndex: number;
  count: number;
  tag: string;
}

function runChild(run: number, killAfterMs: number): Promise<{ acks: Ack[]; readyAt: number }> {
  return new Promise((resolve, reject) => {
    const p: ChildProcess = spawn(process.execPath, [child, dir, ORIGIN, String(run)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acks: Ack[] = [];
    let buf = '';
    let err = '';
    let readyAt = -1;
    p.stdout!.setEncoding('utf8');
    p.stdout!.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const [kind, a, b, c] = line.split(' ');
        if (kind === 'ready') {
          readyAt = Number(a);
          setTimeout(() => p.kill('SIGKILL'), killAfterMs);
        } else if (kind === 'ack') acks.push({ firstIndex: Number(a), count: Number(b), tag: c! });
      }
    });
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const guard = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (signal !== 'SIGKILL') reject(new Error(`child exited with ${code ?? signal} before the kill: ${err}`));
      else resolve({ acks, readyAt });
    });
  });
}

function checkLog(all: Ack[]): number {
  const log = readLog(dir); // pure read: CRCs, chains, torn tail ignored, nothing repaired
  const tags = log.entries.map((e) => text(e).replace(/\.+$/, ''));
  expect(new Set(tags).size, 'every entry exactly once').toBe(tags.length);
  for (const a of all) {
    for (let j = 0; j < a.count; j++) {
      expect(tags[a.firstIndex + j], `acknowledged ${a.tag} entry ${j} at index ${a.firstIndex + j}`).toBe(`${a.tag}-j${j}`);
    }
  }
  return tags.length;
}

describe('crash safety with kill -9', () => {
  it('every acknowledged entry survives 24 SIGKILLs, exactly once and in order', async () => {
    const all: Ack[] = [];
    let size = 0;
    for (let run = 0; run < 24; run++) {
      const { acks, readyAt } = await runChild(run, 100 + Math.floor(Math.random() * 400));
      expect(readyAt, `run ${run}: the child recovered the whole log`).toBeGreaterThanOrEqual(size);
      all.push(...acks);
      size = checkLog(all);
      const acked = all.reduce((m, a) => Math.max(m, a.firstIndex + a.count), 0);
      expect(size).toBeGreaterThanOrEqual(acked);
      if (run % 4 === 3) {
        // The parent runs recovery itself this time (seals what the crash left open).
        const l = await Ledger.open({ config: ledgerConfig(dir, { max_segment_bytes: 64 * 1024 }), signer: testSigner(), logger: silentLogger() });
        expect(l.treeSize).toBe(size);
        await l.close();
        expect(checkLog(all)).toBe(size);
      }
    }
    expect(all.length).toBeGreaterThan(100); // the kills happened under load, not before any append
    const acked = all.reduce((n, a) => n + a.count, 0);
    console.log(`crash test: 24 kills, ${all.length} acknowledged appends (${acked} entries), log size ${size}, ${readLog(dir).sealed} sealed segments`);
  }, 300_000);
});
