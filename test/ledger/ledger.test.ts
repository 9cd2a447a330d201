/**
 * The ledger with real files and real fsync (G1, G2): group commit, sealing, heartbeats, disk
 * budget, failure on an fsync error, restarts continuing the same log.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { signerFromSeed, verifierFor } from '../../src/keys/keys.js';
import { parseCheckpointBody, parseSignedNote, verifyCheckpoint } from '../../src/ledger/checkpoint.js';
import { type LedgerFs, nodeLedgerFs } from '../../src/ledger/fs.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { merkleRoot } from '../../src/ledger/merkle.js';
import { leafHash } from '../../src/ledger/hash.js';
import { FRAME_OVERHEAD, parseSegment } from '../../src/ledger/segment-format.js';
import { type AppendOutcome, FramedEntries } from '../../src/ledger/types.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { ORIGIN, descriptorsOn, entry, frameRun, ledgerConfig, readLog, removeDir, tempDir, testSigner, text } from './helpers.js';
import { waitUntil } from '../security/helpers.js';

const dirs: string[] = [];
const open: Ledger[] = [];
afterEach(async () => {
  for (const l of open.splice(0)) await l.close().catch(() => undefined);
  for (const d of dirs.splice(0)) await removeDir(d);
});

async function newDir(): Promise<string> {
  const d = await tempDir();
  dirs.push(d);
  return d;
}

async function openLedger(dir: string, over: Parameters<typeof ledgerConfig>[1] = {}, extra: Partial<Parameters<typeof Ledger.open>[0]> = {}) {
  const l = await Ledger.open({ config: ledgerConfig(dir, over), signer: testSigner(), logger: silentLogger(), ...extra });
  open.push(l);
  return l;
}

const verifier = () => verifierFor(testSigner());

const hex = (b: Uint8Array | null): string => (b ? Buffer.from(b).toString('hex') : 'genesis');

/** The bodies of the checkpoint files in `dir`/checkpoints, in file-name order. @throws Error naming a file that does not parse */
function checkpointBodies(dir: string) {
  const cpDir = path.join(dir, 'checkpoints');
  return fs
    .readdirSync(cpDir)
    .filter((n) => n.endsWith('.cp'))
    .sort()
    .map((n) => {
      const note = parseSignedNote(fs.readFileSync(path.join(cpDir, n)));
      if (!note.ok) throw new Error(`${n}: ${note.detail}`);
      const cp = parseCheckpointBody(note.value.body);
      if (!cp.ok) throw new Error(`${n}: ${cp.detail}`);
      return cp.value;
    });
}

/** Every checkpoint links to the one before it (one chain, no fork). */
function expectOneChain(bodies: ReturnType<typeof checkpointBodies>, label: string): void {
  for (let i = 1; i < bodies.length; i++) expect(hex(bodies[i]!.prev), `${label}checkpoint ${i} links to ${i - 1}`).toBe(hex(bodies[i - 1]!.bodyHash));
}

describe('Ledger', () => {
  it('holds no descriptor of a sealed segment: the commit writer lets go of its O_DIRECT one at the seal', async () => {
    const dir = await newDir();
    const l = await openLedger(dir);
    // Entries of a few KiB, so that the commits write whole blocks directly where the file system allows it.
    for (let b = 0; b < 3; b++) expect((await l.append([0, 1, 2].map((j) => entry(`b${b}-e${j}`, 5000)))).kind).toBe('ok');
    await l.seal();
    const [seg] = l.sealedSegments();
    expect(seg).toBeDefined();
    // Sealed files are opened for reading by whoever forwards or verifies them, never kept open by the ledger.
    expect(await waitUntil(() => descriptorsOn(seg!.path).length === 0, 2000)).toBe(true);
    // The next segment's commits go through a new descriptor, and close lets that one go, too.
    expect((await l.append([entry('after the seal', 9000)])).kind).toBe('ok');
    await l.close();
    const [, next] = l.sealedSegments();
    expect(next).toBeDefined();
    expect(await waitUntil(() => descriptorsOn(next!.path).length === 0, 2000)).toBe(true);
  });

  it('appends, seals on close and continues indices, chain and tree across restarts', async () => {
    const dir = await newDir();
    const all: string[] = [];
    for (let run = 0; run < 3; run++) {
      const l = await openLedger(dir);
      expect(l.treeSize).toBe(all.length);
      for (let b = 0; b < 4; b++) {
        const batch = [0, 1, 2].map((j) => `run${run}-b${b}-e${j}`);
        const out = await l.append(batch.map((t) => entry(t)));
        expect(out).toEqual({ kind: 'ok', firstIndex: all.length, count: 3 });
        all.push(...batch);
      }
      await l.close();
      await l.close(); // safe twice
    }
    const log = readLog(dir);
    expect(log.sealed).toBe(3);
    expect(log.entries.map((e) => text(e).split(':')[0])).toEqual(all);
    // The last seal's checkpoint is signed by our key, for our origin, over the whole tree.
    const segs = fs.readdirSync(path.join(dir, 'segments')).filter((n) => n.endsWith('.seg')).sort();
    const items = parseSegment(new Uint8Array(fs.readFileSync(path.join(dir, 'segments', segs.at(-1)!))));
    const tr = items.find((i) => i.kind === 'trailer');
    expect(tr?.kind).toBe('trailer');
    if (tr?.kind !== 'trailer') return;
    const v = verifyCheckpoint(tr.trailer.checkpoint, [verifier()], ORIGIN);
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.checkpoint.size).toBe(all.length);
    expect(v.checkpoint.kind).toBe('seal');
    expect(Buffer.from(v.checkpoint.root)).toEqual(Buffer.from(merkleRoot(log.entries.map(leafHash))));
  });

  it('entries that are views into shared buffers (as the OTLP decoders build them) are stored byte for byte', async () => {
    const dir = await newDir();
    const l = await openLedger(dir);
    const want: string[] = [];
    const requests: Uint8Array[][] = [];
    for (let r = 0; r < 12; r++) {
      // One shared buffer per request, entries back to back or with a separator between them, an
      // empty entry now and then, and a stray entry with a buffer of its own.
      const parts = Array.from({ length: 3 + (r % 7) }, (_, i) => (i === 2 && r % 3 === 0 ? '' : `r${r}e${i}:`.padEnd(20 + ((r * 7 + i * 13) % 90), '#')));
      const sep = r % 2 === 0 ? '' : '|';
      const shared = new TextEncoder().encode(parts.join(sep));
      let at = 0;
      requests.push(
        parts.map((t, i) => {
          const v = i === 1 && r % 4 === 1 ? new TextEncoder().encode(t) : shared.subarray(at, at + t.length);
          at += t.length + sep.length;
          return v;
        }),
      );
      want.push(...parts);
    }
    const outs = await Promise.all(requests.map((r) => l.append(r)));
    expect(outs.every((o) => o.kind === 'ok')).toBe(true);
    // Changing the callers' buffers afterwards changes nothing stored (the ledger copied them).
    for (const r of requests) for (const v of r) v.fill(0x21);
    await l.close();
    expect(readLog(dir).entries.map((e) => text(e))).toEqual(want);
  });

  it('FramedEntries (entries built where their frames go) are stored byte for byte, mixed in order with array appends in one commit', async () => {
    const dir = await newDir();
    let writes = 0;
    const counting: LedgerFs = {
      ...nodeLedgerFs,
      writevAll: async (fd, b, pos) => {
        writes++;
        await nodeLedgerFs.writevAll(fd, b, pos);
      },
    };
    const l = await openLedger(dir, {}, { fs: counting });
    await l.heartbeat(); // settle the start-up heartbeat before counting
    writes = 0;
    const want: string[] = [];
    const appends: Array<Promise<AppendOutcome>> = [];
    const framedRuns: Uint8Array[] = [];
    for (let r = 0; r < 9; r++) {
      const parts = Array.from({ length: 1 + (r % 4) }, (_, i) => (i === 1 && r % 3 === 0 ? '' : `r${r}e${i}:`.padEnd(10 + ((r * 11 + i * 7) % 70), '*')));
      want.push(...parts);
      if (r % 3 === 2 || r === 3) {
        // Array appends, two of them next to each other (r = 2, 3): copied as one stretch.
        appends.push(l.append(parts.map((t) => new TextEncoder().encode(t))));
        continue;
      }
      // One or two runs of frames; the room around each entry holds junk the ledger must overwrite.
      const f = new FramedEntries();
      const cut = r % 2 === 0 ? parts.length : 1;
      for (const chunk of [parts.slice(0, cut), parts.slice(cut)]) {
        if (chunk.length === 0) continue;
        const { run, spans } = frameRun(chunk.map((t) => new TextEncoder().encode(t)));
        f.add(run, spans);
        framedRuns.push(run);
      }
      appends.push(l.append(f));
    }
    const outs = await Promise.all(appends);
    expect(outs.map((o) => o.kind)).toEqual(outs.map(() => 'ok'));
    // Indices follow the order of the appends, whatever their form.
    let next = 0;
    for (const o of outs) {
      if (o.kind !== 'ok') continue;
      expect(o.firstIndex).toBe(next);
      next += o.count;
    }
    expect(next).toBe(want.length);
    expect(writes).toBe(1); // all nine in one commit: the runs and the copied entries back to back
    // The runs now hold exactly the frames the segment holds (the ledger wrote them as they are).
    const seg = fs.readFileSync(path.join(dir, 'segments', fs.readdirSync(path.join(dir, 'segments')).find((n) => n.endsWith('.open'))!));
    for (const run of framedRuns) expect(seg.includes(Buffer.from(run)), 'a run is in the segment as it is').toBe(true);
    await l.close();
    expect(readLog(dir).entries.map((e) => text(e))).toEqual(want);
    // A restart re-verifies every frame, chain value and the tree against the signed checkpoints.
    const again = await openLedger(dir);
    expect((await again.append([entry('after')])).kind).toBe('ok');
  });

  it('refuses FramedEntries whose runs are not whole frames back to back, storing nothing', async () => {
    const dir = await newDir();
    const l = await openLedger(dir);
    /** One run of `runLen` bytes holding one entry at [start, end). */
    const frame = (start: number, end: number, runLen: number): FramedEntries => {
      const f = new FramedEntries();
      f.add(new Uint8Array(runLen), Uint32Array.of(start, end));
      return f;
    };
    const cases: Array<[string, FramedEntries, RegExp]> = [
      ['room before the entry too small', frame(39, 49, 53), /40 bytes of room before each entry/],
      ['room before the entry too large', frame(41, 51, 55), /40 bytes of room before each entry/],
      ['run longer than its frames', frame(40, 50, 60), /frames take 54 bytes but the run has 60/],
      ['run shorter than its frames', frame(40, 50, 50), /frames take 54 bytes but the run has 50/],
      ['end before start', frame(40, 30, 34), /40 bytes of room/],
    ];
    const gap = new FramedEntries();
    gap.add(new Uint8Array(2 * 54 + 1), Uint32Array.of(40, 50, 95, 105)); // one stray byte between the frames
    cases.push(['a gap between two frames', gap, /run 0, entry 1: frames must follow each other/]);
    const odd = new FramedEntries();
    odd.runs.push(new Uint8Array(54));
    odd.spans.push(Uint32Array.of(40));
    odd.count = 1;
    cases.push(['spans not in pairs', odd, /pairs/]);
    for (const [label, f, msg] of cases) await expect(l.append(f), label).rejects.toThrow(msg);
    expect(l.treeSize).toBe(0);
    await l.close();
    expect(readLog(dir).entries).toEqual([]);
  });

  it('batches concurrent appends: one write and one fdatasync per group commit, fewer fsyncs than appends', async () => {
    const dir = await newDir();
    let syncs = 0;
    let writes = 0;
    const counting: LedgerFs = {
      ...nodeLedgerFs,
      fdatasync: async (fd) => {
        syncs++;
        await nodeLedgerFs.fdatasync(fd);
      },
      writevAll: async (fd, b, pos) => {
        writes++;
        await nodeLedgerFs.writevAll(fd, b, pos);
      },
    };
    const metrics = new Metrics({ defaultMetrics: false });
    const l = await openLedger(dir, {}, { fs: counting, metrics });
    await l.heartbeat(); // settle the start-up heartbeat before counting
    syncs = 0;
    writes = 0;
    const outs = await Promise.all(Array.from({ length: 500 }, (_, i) => l.append([entry(`c${i}`)])));
    expect(outs.every((o) => o.kind === 'ok')).toBe(true);
    // Every index exactly once.
    const idx = outs.map((o) => (o.kind === 'ok' ? o.firstIndex : -1)).sort((a, b) => a - b);
    expect(idx).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(syncs).toBeGreaterThan(0);
    expect(syncs).toBeLessThan(50);
    expect(writes).toBe(syncs); // one (positional) writev per group commit, one fdatasync per group commit
    const batches = (await metrics.registry.getSingleMetric('sealtrail_ledger_group_commit_entries')!.get()).values.find((v) => (v as { metricName?: string }).metricName?.endsWith('_count'));
    expect(batches?.value).toBe(syncs);
    const entries = (await metrics.registry.getSingleMetric('sealtrail_ledger_entries_total')!.get()).values[0]?.value;
    expect(entries).toBe(500);
  });

  it('durability none: one write per batch and no fdatasync until a checkpoint', async () => {
    const dir = await newDir();
    let syncs = 0;
    const events: string[] = [];
    const counting: LedgerFs = {
      ...nodeLedgerFs,
      fdatasync: async (fd) => {
        syncs++;
        await nodeLedgerFs.fdatasync(fd);
        events.push('fdatasync');
      },
      rename: async (a, b) => {
        if (path.basename(b) === 'head.checkpoint') events.push('head');
        await nodeLedgerFs.rename(a, b);
      },
    };
    const l = await openLedger(dir, { durability: 'none' }, { fs: counting });
    await l.heartbeat();
    syncs = 0;
    events.length = 0;
    await Promise.all(Array.from({ length: 50 }, (_, i) => l.append([entry(`n${i}`)])));
    expect(syncs).toBe(0);
    await l.heartbeat(); // a checkpoint never claims more than the disk holds
    expect(syncs).toBe(1);
    expect(events).toEqual(['fdatasync', 'head']); // the entries are durable before the checkpoint appears
  });

  it('seals on max_segment_bytes, and every sealed segment is announced with its checkpoint', async () => {
    const dir = await newDir();
    const l = await openLedger(dir, { max_segment_bytes: 4096 });
    const sealed: string[] = [];
    const cps: string[] = [];
    l.onSegmentSealed((s) => sealed.push(s.name));
    l.onCheckpoint((c) => cps.push(c.name));
    for (let i = 0; i < 40; i++) await l.append([entry(`s${i}`, 300)]);
    expect(sealed.length).toBeGreaterThanOrEqual(2);
    expect(l.sealedSegments().map((s) => s.name)).toEqual(sealed);
    for (const s of l.sealedSegments()) {
      expect(fs.existsSync(s.path)).toBe(true);
      expect(fs.statSync(s.path).size).toBe(s.bytes);
      expect(cps).toContain(s.checkpointName);
      // a segment is sealed after the append that reaches the limit: at most one append over
      expect(s.bytes).toBeLessThan(4096 + 2 * 400);
    }
    expect(sealed).toEqual([...sealed].sort());
  });

  it('seals on max_segment_age', async () => {
    const dir = await newDir();
    const l = await openLedger(dir, { max_segment_age: 150 });
    const sealed = new Promise<string>((resolve) => l.onSegmentSealed((s) => resolve(s.name)));
    await l.append([entry('aged')]);
    const t0 = Date.now();
    expect(await sealed).toBe('0000000000000000.seg');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('writes signed heartbeat checkpoints with no traffic, each chained to the previous one', async () => {
    const dir = await newDir();
    const l = await openLedger(dir, { seal_interval: 60 });
    await l.append([entry('one')]);
    await new Promise((r) => setTimeout(r, 400));
    const cps = l.checkpoints().filter((c) => c.kind === 'heartbeat');
    expect(cps.length).toBeGreaterThanOrEqual(3);
    let prevHash: Uint8Array | null = null;
    for (const c of l.checkpoints()) {
      const v = verifyCheckpoint(fs.readFileSync(c.path), [verifier()], ORIGIN);
      expect(v.ok).toBe(true);
      if (!v.ok) return;
      if (prevHash) expect(Buffer.from(v.checkpoint.prev!)).toEqual(Buffer.from(prevHash));
      prevHash = v.checkpoint.bodyHash;
    }
    expect(cps.at(-1)!.size).toBe(1);
    // names sort in creation order
    const names = l.checkpoints().map((c) => c.name);
    expect(names).toEqual([...names].sort());
  });

  it('released lists every released segment but only the first released checkpoint file, across restarts', async () => {
    const dir = await newDir();
    let l = await openLedger(dir, { max_segment_bytes: 4096 });
    for (let i = 0; i < 30; i++) await l.append([entry(`r${i}`, 300)]);
    for (let i = 0; i < 3; i++) await l.heartbeat();
    const segs = l.sealedSegments().slice(0, 2).map((s) => s.name);
    const cps = l.checkpoints().slice(0, 4).map((c) => c.name);
    expect(cps.length).toBe(4);
    for (const n of [...segs, ...cps.slice(0, 2)]) await l.release(n);
    await l.close();
    l = await openLedger(dir, { max_segment_bytes: 4096 });
    for (const n of cps.slice(2)) await l.release(n);
    const lines = fs.readFileSync(path.join(dir, 'released'), 'utf8').split('\n').filter(Boolean);
    expect(lines.filter((n) => n.endsWith('.seg'))).toEqual(segs);
    expect(lines.filter((n) => n.endsWith('.cp'))).toEqual([cps[0]]);
    for (const n of cps) expect(fs.existsSync(path.join(dir, 'checkpoints', n))).toBe(false);
    expect(l.checkpoints().map((c) => c.name)).not.toContain(cps[3]);
    await l.close();
    expect((await openLedger(dir)).treeSize).toBe(30); // still starts: released segments are accounted for
  });

  it('refuses with retryable disk_full at max_disk_bytes, and release() frees space', async () => {
    const dir = await newDir();
    const budget = 200 * 1024;
    const l = await openLedger(dir, { max_disk_bytes: budget, max_segment_bytes: 32 * 1024 });
    let refused: Awaited<ReturnType<Ledger['append']>> | undefined;
    let n = 0;
    for (; n < 2000; n++) {
      const o = await l.append([entry(`d${n}`, 1000)]);
      if (o.kind !== 'ok') {
        refused = o;
        break;
      }
    }
    expect(refused).toMatchObject({ kind: 'retryable', reason: 'disk_full' });
    expect(l.diskBytes).toBeLessThanOrEqual(budget);
    // The last seal may still be publishing (renaming its temporary files) while the directory is
    // listed: a file renamed between readdir and stat is a changed listing — measure again.
    const diskUsage = async (): Promise<number> => {
      for (let attempt = 0; ; attempt++) {
        try {
          return [...fs.readdirSync(path.join(dir, 'segments')).map((f) => path.join(dir, 'segments', f)),
            ...fs.readdirSync(path.join(dir, 'checkpoints')).map((f) => path.join(dir, 'checkpoints', f))]
            .reduce((a, f) => a + fs.statSync(f).size, 0);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 50) throw e;
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    };
    const du = await diskUsage();
    expect(du).toBeLessThanOrEqual(budget);
    // Forwarding releases the oldest sealed segments: appends are accepted again.
    for (const s of l.sealedSegments().slice(0, 2)) await l.release(s.name);
    expect((await l.append([entry('after-release', 1000)])).kind).toBe('ok');
    await l.release('0000000000000000.seg'); // idempotent
    await expect(l.release('../../etc/passwd')).rejects.toThrow(RangeError);
    await l.close();
    // A released segment is not "missing" on the next start.
    const again = await openLedger(dir, { max_disk_bytes: budget, max_segment_bytes: 32 * 1024 });
    expect(again.treeSize).toBe(n + 1);
  });

  it('refuses with retryable overloaded when pending bytes exceed the bound', async () => {
    const dir = await newDir();
    const l = await openLedger(dir, {}, { maxPendingBytes: 10 * 1024 });
    const outs = await Promise.all(Array.from({ length: 200 }, (_, i) => l.append([entry(`o${i}`, 500)])));
    const reasons = new Set(outs.map((o) => (o.kind === 'ok' ? 'ok' : o.reason)));
    expect(reasons).toEqual(new Set(['ok', 'overloaded']));
  });

  // G1/G3: a crash between writing head.checkpoint and the checkpoint file must not fork the
  // checkpoints' prev-chain (found by test/e2e/crash.test.ts). Fail either rename once, restart,
  // and check that every checkpoint file links to the one before it and head is the newest.
  for (const target of ['head.checkpoint', 'checkpoints/'] as const) {
    it(`a failed rename of ${target} during a heartbeat leaves one unbroken checkpoint chain after restart`, async () => {
      const dir = await newDir();
      let fail = false;
      const faulty: LedgerFs = {
        ...nodeLedgerFs,
        rename: async (from, to) => {
          if (fail && to.includes(target)) {
            fail = false;
            throw Object.assign(new Error('EIO: simulated crash'), { code: 'EIO' });
          }
          await nodeLedgerFs.rename(from, to);
        },
      };
      const l = await openLedger(dir, {}, { fs: faulty });
      expect((await l.append([entry('a')])).kind).toBe('ok');
      await l.heartbeat();
      fail = true;
      await expect(l.heartbeat()).rejects.toThrow(/heartbeat/);
      await l.close().catch(() => undefined);
      const again = await openLedger(dir);
      expect((await again.append([entry('b')])).kind).toBe('ok');
      await again.heartbeat();
      await again.close();

      const bodies = checkpointBodies(dir);
      expect(bodies.length).toBeGreaterThanOrEqual(3);
      expectOneChain(bodies, '');
      const head = parseSignedNote(fs.readFileSync(path.join(dir, 'head.checkpoint')));
      const headCp = head.ok ? parseCheckpointBody(head.value.body) : undefined;
      expect(headCp?.ok && hex(headCp.value.bodyHash)).toBe(hex(bodies.at(-1)!.bodyHash));
    });
  }

  it('a seal whose publishing fails closes every file it opened (the next segment, opened early, included)', async () => {
    const dir = await newDir();
    const open = new Map<number, string>();
    let failRename = false;
    const tracking: LedgerFs = {
      ...nodeLedgerFs,
      open: async (p, flags, mode) => {
        const fd = await nodeLedgerFs.open(p, flags, mode);
        open.set(fd, p);
        return fd;
      },
      close: async (fd) => {
        open.delete(fd);
        await nodeLedgerFs.close(fd);
      },
      rename: async (from, to) => {
        if (failRename && from.endsWith('.seg.open')) throw Object.assign(new Error('EIO: simulated rename failure'), { code: 'EIO' });
        await nodeLedgerFs.rename(from, to);
      },
    };
    const l = await openLedger(dir, {}, { fs: tracking, logger: silentLogger() });
    expect((await l.append([entry('one')])).kind).toBe('ok');
    await l.heartbeat();
    failRename = true;
    await expect(l.seal()).rejects.toThrow(/simulated rename failure/);
    await l.close().catch(() => undefined);
    // The next segment's temporary file was opened before publishing; the failure must close it too.
    expect([...open.values()]).toEqual([]);
  });

  // A seal writes three files in parallel and publishes them in a fixed order (#finishSeal). Kill it
  // at every one of its file operations — from that call on every operation fails, as if the process
  // had died there — and restart: the log opens, keeps every acknowledged entry, continues, and its
  // checkpoints still form one chain.
  it('a seal interrupted at any of its file operations restarts with every acknowledged entry and one checkpoint chain', async () => {
    const ops = ['open', 'writeAll', 'writevAll', 'fsync', 'fdatasync', 'close', 'rename', 'fsyncDir'] as const;
    const dying = (state: { armed: boolean; left: number; calls: number }): LedgerFs => {
      const fsx: LedgerFs = { ...nodeLedgerFs };
      for (const op of ops) {
        const real = nodeLedgerFs[op] as (...a: unknown[]) => Promise<unknown>;
        (fsx as unknown as Record<string, unknown>)[op] = async (...a: unknown[]) => {
          if (state.armed) {
            state.calls++;
            if (state.left-- <= 0) throw Object.assign(new Error(`EIO: simulated crash at ${op}`), { code: 'EIO' });
          }
          return real(...a);
        };
      }
      return fsx;
    };
    // How many file operations a seal makes (heartbeats are far apart: seal_interval 1 h).
    const probe = { armed: false, left: Infinity, calls: 0 };
    const d0 = await newDir();
    const l0 = await openLedger(d0, {}, { fs: dying(probe) });
    await l0.append([entry('x')]);
    await l0.heartbeat(); // the start-up heartbeat (made durable in the background) is done
    probe.armed = true;
    const probeSeal = l0.seal();
    await l0.append([entry('y')]); // acknowledged in the next segment while the seal is published
    await probeSeal;
    probe.armed = false;
    const total = probe.calls;
    expect(total).toBeGreaterThan(10);
    await l0.close();
    let adoptedAcks = 0;

    for (let k = 0; k < total; k++) {
      const dir = await newDir();
      const st = { armed: false, left: k, calls: 0 };
      const l = await openLedger(dir, {}, { fs: dying(st), logger: silentLogger() });
      const acked: string[] = [];
      for (let i = 0; i < 3; i++) if ((await l.append([entry(`k${k}-${i}`)])).kind === 'ok') acked.push(`k${k}-${i}`);
      await l.heartbeat();
      st.armed = true;
      const sealing = l.seal();
      const during = l.append([entry(`k${k}-during`)]);
      await expect(sealing).rejects.toThrow();
      if ((await during).kind === 'ok') {
        acked.push(`k${k}-during`);
        adoptedAcks++; // acknowledged in the next segment, then the seal's publishing died
      }
      await l.close().catch(() => undefined);
      const again = await openLedger(dir);
      expect((await again.append([entry('after')])).kind, `crash at operation ${k}`).toBe('ok');
      await again.close();
      const got = readLog(dir).entries.map((e) => text(e).split(':')[0]);
      // An entry written but not acknowledged (the crash hit its fdatasync) may survive; an acknowledged one must.
      const expected = got.includes(`k${k}-during`) && !acked.includes(`k${k}-during`) ? [...acked, `k${k}-during`, 'after'] : [...acked, 'after'];
      expect(got, `crash at operation ${k}`).toEqual(expected);
      expectOneChain(checkpointBodies(dir), `crash at operation ${k}: `);
    }
    // The crashes during publishing left acknowledged entries in the next segment's temporary file.
    expect(adoptedAcks).toBeGreaterThanOrEqual(3);
  }, 120_000);

  describe('a next segment left under its temporary name by a crash during publishing', () => {
    /** A ledger dir whose last seal died at the rename of the next segment: 0.seg sealed, 1.seg.open.tmp holding 'b' (acknowledged). */
    async function leftBehind(): Promise<string> {
      const dir = await newDir();
      let die = false;
      const fsx: LedgerFs = {
        ...nodeLedgerFs,
        rename: async (from, to) => {
          if (die && to.endsWith('.seg.open')) throw Object.assign(new Error('EIO: simulated crash at rename'), { code: 'EIO' });
          await nodeLedgerFs.rename(from, to);
        },
      };
      const l = await openLedger(dir, {}, { fs: fsx, logger: silentLogger() });
      expect((await l.append([entry('a')])).kind).toBe('ok');
      die = true;
      const sealing = l.seal();
      expect((await l.append([entry('b')])).kind).toBe('ok');
      await expect(sealing).rejects.toThrow(/simulated crash/);
      await l.close().catch(() => undefined);
      expect(fs.readdirSync(path.join(dir, 'segments')).sort()).toEqual(['0000000000000000.seg', '0000000000000001.seg.open.tmp']);
      return dir;
    }
    const tmpFile = (dir: string) => path.join(dir, 'segments', '0000000000000001.seg.open.tmp');

    it('is adopted: its acknowledged entries stay in the log, which continues', async () => {
      const dir = await leftBehind();
      const l = await openLedger(dir);
      expect((await l.append([entry('c')])).kind).toBe('ok');
      await l.close();
      expect(readLog(dir).entries.map((e) => text(e).split(':')[0])).toEqual(['a', 'b', 'c']);
      expectOneChain(checkpointBodies(dir), 'adopted: ');
    });

    it('with its header cut short (its creation was interrupted, nothing acknowledged in it) is removed', async () => {
      const dir = await leftBehind();
      fs.truncateSync(tmpFile(dir), 20);
      const l = await openLedger(dir);
      expect(l.treeSize).toBe(1);
      await l.close();
      expect(fs.existsSync(tmpFile(dir))).toBe(false);
      expect(readLog(dir).entries.map((e) => text(e).split(':')[0])).toEqual(['a']);
    });

    it('with a damaged header is refused as corruption, naming the file, and left in place', async () => {
      const dir = await leftBehind();
      const bytes = fs.readFileSync(tmpFile(dir));
      bytes[40]! ^= 0x01; // inside the previous checkpoint hash: the header CRC no longer matches
      fs.writeFileSync(tmpFile(dir), bytes);
      await expect(openLedger(dir)).rejects.toThrow(/ledger corrupt: .*0000000000000001\.seg\.open\.tmp.*header CRC/);
      expect(fs.readFileSync(tmpFile(dir))).toEqual(bytes);
    });
  });

  it('acknowledges appends in the next segment while the seal is still being published; announces the seal once published', async () => {
    const dir = await newDir();
    let hold: (() => void) | undefined;
    let held: Promise<void> | undefined;
    let holding = false;
    const fsx: LedgerFs = {
      ...nodeLedgerFs,
      rename: async (from, to) => {
        if (holding && path.basename(to) === 'head.checkpoint') {
          holding = false;
          held = new Promise<void>((r) => (hold = r));
          await held;
        }
        await nodeLedgerFs.rename(from, to);
      },
    };
    const l = await openLedger(dir, {}, { fs: fsx });
    await l.heartbeat();
    const sealed: string[] = [];
    l.onSegmentSealed((x) => sealed.push(x.name));
    expect((await l.append([entry('a', 100_000)])).kind).toBe('ok');
    holding = true;
    const sealing = l.seal();
    for (let i = 0; i < 500 && !hold; i++) await new Promise((r) => setTimeout(r, 2));
    expect(hold).toBeDefined(); // publishing has begun and waits at its first rename
    const b = await Promise.race([l.append([entry('b')]), new Promise((r) => setTimeout(() => r('still waiting'), 3000))]);
    expect(b).toEqual({ kind: 'ok', firstIndex: 1, count: 1 });
    expect(fs.readdirSync(path.join(dir, 'segments')).sort()).toEqual(['0000000000000000.seg.open', '0000000000000001.seg.open.tmp']);
    expect(sealed).toEqual([]); // not announced (nor listed) before it is published
    expect(l.sealedSegments()).toEqual([]);
    // G2: meanwhile its bytes (100 kB of entry 'a') still count against max_disk_bytes, with the next segment's.
    const onDisk = ['0000000000000000.seg.open', '0000000000000001.seg.open.tmp'].reduce((n, f) => n + fs.statSync(path.join(dir, 'segments', f)).size, 0);
    expect(l.diskBytes).toBeGreaterThanOrEqual(onDisk);
    hold!();
    await sealing;
    expect(sealed).toEqual(['0000000000000000.seg']);
    expect(fs.readdirSync(path.join(dir, 'segments')).sort()).toEqual(['0000000000000000.seg', '0000000000000001.seg.open']);
    await l.close();
    expect(readLog(dir).entries.map((e) => text(e).split(':')[0])).toEqual(['a', 'b']);
  });

  // The seal writes its trailer in parallel with the three temporary files (#finishSeal); nothing may
  // be published before the trailer is durable. A slow trailer fdatasync must hold every rename.
  it('a seal publishes nothing before the trailer is durable, even when its fdatasync is the slowest step', async () => {
    const events: string[] = [];
    let slow = false;
    const fsx: LedgerFs = {
      ...nodeLedgerFs,
      fdatasync: async (fd) => {
        const delayed = slow;
        if (delayed) await new Promise((r) => setTimeout(r, 150));
        await nodeLedgerFs.fdatasync(fd);
        if (delayed) events.push('trailer fdatasync done');
      },
      rename: async (from, to) => {
        events.push(`rename ${path.basename(to)}`);
        await nodeLedgerFs.rename(from, to);
      },
      fsync: async (fd) => {
        await nodeLedgerFs.fsync(fd);
        events.push('fsync');
      },
    };
    const dir = await newDir();
    const l = await openLedger(dir, {}, { fs: fsx });
    await l.append([entry('a')]);
    await l.heartbeat();
    events.length = 0;
    slow = true; // from here the only fdatasync is the seal's trailer (no appends in flight)
    await l.seal();
    slow = false;
    await l.close();
    const done = events.indexOf('trailer fdatasync done');
    expect(done).toBeGreaterThanOrEqual(0);
    // The temporary files were fsync'd while the trailer waited (in parallel) ...
    expect(events.slice(0, done).filter((e) => e === 'fsync').length).toBe(3);
    // ... but every rename (head.checkpoint, the checkpoint, .seg, the next .open) came after it.
    const renames = events.map((e, i) => [e, i] as const).filter(([e]) => e.startsWith('rename'));
    expect(renames.length).toBe(4);
    for (const [e, i] of renames) expect(i, e).toBeGreaterThan(done);
  });

  // durability none: the open segment is fdatasync'd in the background every 8 MiB written, so a
  // seal has little left to flush; acknowledgements never wait for it, and its errors fail the ledger.
  describe('durability none: background fdatasync', () => {
    const big = (tag: string, i: number): Uint8Array => {
      const e = new Uint8Array(64 * 1024).fill(0x61);
      e.set(new TextEncoder().encode(`${tag}:${i}:`));
      return e;
    };
    const slowFs = (state: { calls: number; delayMs: number; fail: boolean }): LedgerFs => ({
      ...nodeLedgerFs,
      fdatasync: async (fd) => {
        state.calls++;
        await new Promise((r) => setTimeout(r, state.delayMs));
        if (state.fail) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
        await nodeLedgerFs.fdatasync(fd);
      },
    });

    it('starts after 8 MiB, does not hold acknowledgements, and a seal waits for it before closing the file', async () => {
      const st = { calls: 0, delayMs: 1_000, fail: false };
      const dir = await newDir();
      const l = await openLedger(dir, { durability: 'none', max_segment_bytes: 1 << 30 }, { fs: slowFs(st) });
      await l.heartbeat();
      st.calls = 0;
      // 9 MiB in 64 KiB entries: the commit that passes 8 MiB starts one background fdatasync.
      for (let i = 0; i < 144; i++) expect((await l.append([big('a', i)])).kind).toBe('ok');
      expect(st.calls).toBe(1);
      // While it runs (1 s), appends are acknowledged at once.
      const t0 = performance.now();
      expect((await l.append([big('b', 0)])).kind).toBe('ok');
      expect(performance.now() - t0).toBeLessThan(500);
      // The seal waits for it (no EBADF from closing the fd underneath), then flushes the rest itself.
      await l.seal();
      await l.close();
      const got = readLog(dir).entries.map((e) => text(e.subarray(0, 8)).split(':').slice(0, 2).join(':'));
      expect(got).toHaveLength(145);
      expect(got.at(-1)).toBe('b:0');
    });

    it('an error of the background fdatasync fails the ledger: later appends get ledger_failed', async () => {
      const st = { calls: 0, delayMs: 0, fail: false };
      const dir = await newDir();
      const l = await openLedger(dir, { durability: 'none', max_segment_bytes: 1 << 30 }, { fs: slowFs(st), logger: silentLogger() });
      await l.heartbeat();
      st.fail = true;
      for (let i = 0; i < 128; i++) expect((await l.append([big('a', i)])).kind).toBe('ok');
      await new Promise((r) => setTimeout(r, 50));
      const after = await l.append([big('c', 0)]);
      expect(after.kind === 'retryable' && after.reason).toBe('ledger_failed');
      expect(l.failure).toBeDefined();
      await l.close().catch(() => undefined);
    });
  });

  it('an fdatasync error switches the ledger to failed: pending and later appends get retryable ledger_failed, once logged and counted', async () => {
    const dir = await newDir();
    let fail = false;
    const faulty: LedgerFs = {
      ...nodeLedgerFs,
      fdatasync: async (fd) => {
        if (fail) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
        await nodeLedgerFs.fdatasync(fd);
      },
    };
    const metrics = new Metrics({ defaultMetrics: false });
    const logged: string[] = [];
    const logger = silentLogger();
    logger.error = ((...args: unknown[]) => {
      logged.push(String(args.at(-1)));
    }) as typeof logger.error;
    const l = await openLedger(dir, {}, { fs: faulty, metrics, logger });
    expect((await l.append([entry('before')])).kind).toBe('ok');
    fail = true;
    const outs = await Promise.all(Array.from({ length: 20 }, (_, i) => l.append([entry(`x${i}`)])));
    for (const o of outs) expect(o).toMatchObject({ kind: 'retryable', reason: 'ledger_failed' });
    fail = false; // even when the disk "recovers", the ledger does not acknowledge again
    expect(await l.append([entry('later')])).toMatchObject({ kind: 'retryable', reason: 'ledger_failed' });
    const failures = (await metrics.registry.getSingleMetric('sealtrail_ledger_write_failures_total')!.get()).values[0]?.value;
    expect(failures).toBe(1);
    expect(logged.filter((m) => m.includes('LEDGER FAILED'))).toHaveLength(1);
    await l.close();
    // Restart: the acknowledged entry is there, the failed batch may or may not be (never acknowledged).
    const again = await openLedger(dir);
    expect(again.treeSize).toBeGreaterThanOrEqual(1);
  });

  describe('pipelined group commit', () => {
    /** An fs whose segment fdatasync waits for `release()`; counts commits and records the order of events. */
    function gatedFs() {
      let gate: (() => void) | undefined;
      let failNext = false;
      const events: string[] = [];
      const state = { syncing: 0, syncs: 0, writes: 0 };
      const fsx: LedgerFs = {
        ...nodeLedgerFs,
        writevAll: async (fd, b, pos) => {
          state.writes++;
          events.push(`write ${b.length}`);
          await nodeLedgerFs.writevAll(fd, b, pos);
        },
        fdatasync: async (fd) => {
          state.syncing++;
          await new Promise<void>((r) => (gate = r));
          gate = undefined;
          state.syncing--;
          state.syncs++;
          if (failNext) {
            failNext = false;
            events.push('fdatasync EIO');
            throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
          }
          await nodeLedgerFs.fdatasync(fd);
          events.push('fdatasync');
        },
        rename: async (from, to) => {
          if (path.basename(to) === 'head.checkpoint') events.push('head');
          await nodeLedgerFs.rename(from, to);
        },
      };
      const waitSyncing = async () => {
        for (let i = 0; i < 500 && state.syncing === 0; i++) await new Promise((r) => setTimeout(r, 2));
        expect(state.syncing).toBe(1);
      };
      const release = async () => {
        await waitSyncing();
        gate!();
      };
      return { fsx, state, events, release, waitSyncing, failNextSync: () => (failNext = true) };
    }
    const tick = () => new Promise((r) => setImmediate(r));
    /** Opens the ledger in `dir` on `fsx` (default: the gated fs) after settling its start-up heartbeat, which would take the gate first. */
    async function openGated(dir: string, g: ReturnType<typeof gatedFs>, fsx: LedgerFs = g.fsx): Promise<Ledger> {
      const l = await openLedger(dir, {}, { fs: { ...g.fsx, fdatasync: nodeLedgerFs.fdatasync } });
      await l.heartbeat();
      await l.close();
      return openLedger(dir, {}, { fs: fsx });
    }

    it('encodes requests that arrive during a commit while its fdatasync runs, writes them with ONE writev + fdatasync, acknowledges in order', async () => {
      const dir = await newDir();
      const g = gatedFs();
      const l2 = await openGated(dir, g);
      const base = l2.treeSize;
      const order: string[] = [];
      const a = l2.append([entry('a0'), entry('a1')]).then((o) => (order.push('a'), o));
      await g.waitSyncing(); // commit 1 (a) is waiting for its fdatasync
      const b = l2.append([entry('b0')]).then((o) => (order.push('b'), o));
      await tick();
      await tick();
      const c = l2.append([entry('c0'), entry('c1'), entry('c2')]).then((o) => (order.push('c'), o));
      await tick();
      await tick();
      // b and c are hashed into the tree already, while a's fdatasync has not returned — and not acknowledged.
      expect(l2.treeSize).toBe(base + 6);
      expect(order).toEqual([]);
      await g.release(); // a durable -> acknowledged; b and c go out together
      expect(await a).toEqual({ kind: 'ok', firstIndex: base, count: 2 });
      expect(order).toEqual(['a']);
      await g.release();
      expect(await b).toEqual({ kind: 'ok', firstIndex: base + 2, count: 1 });
      expect(await c).toEqual({ kind: 'ok', firstIndex: base + 3, count: 3 });
      expect(order).toEqual(['a', 'b', 'c']);
      expect(g.state.writes).toBe(2); // a, then b + c in one writev
      expect(g.events.filter((e) => e.startsWith('write'))).toEqual(['write 1', 'write 2']);
      const closing = l2.close();
      await g.release(); // the seal's fdatasync
      await closing;
      expect(readLog(dir).entries.map((e) => text(e).split(':')[0])).toEqual(['a0', 'a1', 'b0', 'c0', 'c1', 'c2']);
    });

    it('the next commit is written as soon as the one before is durable, before that one\'s requests are answered', async () => {
      const dir = await newDir();
      const g = gatedFs();
      const l2 = await openGated(dir, g);
      const a = l2.append([entry('a')]).then((o) => (g.events.push('answer a'), o));
      await g.waitSyncing();
      const b = l2.append([entry('b0'), entry('b1')]).then((o) => (g.events.push('answer b'), o));
      await tick();
      await tick();
      await g.release(); // a durable
      await a;
      // b's write began before a was answered (the disk does not wait for the replies), and b is not
      // answered before its own fdatasync
      const steps = () => g.events.filter((e) => e !== 'head'); // leave out the start-up heartbeat's checkpoint
      expect(steps()).toEqual(['write 1', 'fdatasync', 'write 1', 'answer a']);
      await g.waitSyncing();
      await g.release();
      expect(await b).toMatchObject({ kind: 'ok', count: 2 });
      expect(steps().slice(4)).toEqual(['fdatasync', 'answer b']);
      const closing = l2.close();
      await g.release(); // the seal's fdatasync
      await closing;
      expect(readLog(dir).entries.map((e) => text(e).split(':')[0])).toEqual(['a', 'b0', 'b1']);
    });

    it('a backlog of 512 KiB or more with the disk idle goes out in two commits: the second half is encoded while the first is written', async () => {
      const dir = await newDir();
      const g = gatedFs();
      const written: number[] = [];
      const l2 = await openGated(dir, g, {
        ...g.fsx,
        writevAll: async (fd, b, pos) => (written.push(b.reduce((n, x) => n + x.length, 0)), g.fsx.writevAll(fd, b, pos)),
      });
      const base = l2.treeSize;
      // 8 requests of 16 entries of 5 KiB (≈ 82 KiB each, ≈ 660 KiB in all), queued in one turn.
      const request = (r: number) => Array.from({ length: 16 }, (_, i) => Buffer.concat([Buffer.from(`r${r}e${i}:`), Buffer.alloc(5120, 0x2e)]));
      const frameBytes = (r: number) => request(r).reduce((n, e) => n + e.length + FRAME_OVERHEAD, 0);
      const order: number[] = [];
      const outs = Array.from({ length: 8 }, (_, r) => l2.append(request(r)).then((o) => (order.push(r), o)));
      await g.waitSyncing(); // the first commit waits for its fdatasync...
      await tick();
      const half = (rs: number[]) => rs.reduce((n, r) => n + frameBytes(r), 0);
      expect(written).toEqual([half([0, 1, 2, 3])]);
      // ...and the second half is already hashed into the tree, not acknowledged.
      expect(l2.treeSize).toBe(base + 8 * 16);
      expect(order).toEqual([]);
      await g.release();
      await outs[3];
      expect(order).toEqual([0, 1, 2, 3]);
      await g.release();
      const done = await Promise.all(outs);
      expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(done.map((o) => (o.kind === 'ok' ? o.firstIndex : -1))).toEqual(Array.from({ length: 8 }, (_, r) => base + 16 * r));
      expect(written).toEqual([half([0, 1, 2, 3]), half([4, 5, 6, 7])]);
      // Below 512 KiB the backlog stays one commit: 8 requests of 16 × 1 KiB.
      written.length = 0;
      const small = Array.from({ length: 8 }, (_, r) => l2.append(request(r).map((e) => e.subarray(0, 1024))));
      await g.release();
      expect((await Promise.all(small)).every((o) => o.kind === 'ok')).toBe(true);
      expect(written.length).toBe(1);
      const closing = l2.close();
      await g.release(); // the seal's fdatasync
      await closing;
      expect(readLog(dir).entries.length).toBe(base + 16 * 16);
    });

    it('a heartbeat requested during a commit waits until everything encoded is durable: a checkpoint never covers an unwritten entry', async () => {
      const dir = await newDir();
      const g = gatedFs();
      const l = await openLedger(dir, { durability: 'fsync' }, { fs: { ...g.fsx, fdatasync: nodeLedgerFs.fdatasync } });
      await l.heartbeat();
      await l.close();
      const l2 = await openLedger(dir, {}, { fs: g.fsx });
      const a = l2.append([entry('a')]);
      await g.waitSyncing();
      const b = l2.append([entry('b')]);
      await tick();
      await tick();
      const hb = l2.heartbeat();
      await g.release(); // a
      await g.release(); // b (the heartbeat must not have been signed before this)
      await Promise.all([a, b, hb]);
      const head = parseSignedNote(fs.readFileSync(path.join(dir, 'head.checkpoint'), 'utf8'));
      expect(head.ok).toBe(true);
      const cp = head.ok ? parseCheckpointBody(head.value.body) : undefined;
      expect(cp?.ok && cp.value.size).toBe(l2.treeSize);
      // Order on disk: both commits' fdatasyncs completed before head.checkpoint was replaced.
      const lastHead = g.events.lastIndexOf('head');
      expect(lastHead).toBeGreaterThan(g.events.lastIndexOf('fdatasync'));
      expect(g.events.filter((e) => e === 'fdatasync').length).toBeGreaterThanOrEqual(2);
      const closing = l2.close();
      await g.release();
      await closing;
    });

    it('a heartbeat is made durable in the background: appends are acknowledged while its files are still being fsync\'d', async () => {
      const dir = await newDir();
      let gate: (() => void) | undefined;
      let blocked = 0;
      const slowCheckpointFiles: LedgerFs = {
        ...nodeLedgerFs,
        // fsync (not fdatasync) is what checkpoint and head files get; hold the heartbeat's first one.
        fsync: async (fd) => {
          if (blocked === 0 && gate === undefined) {
            blocked++;
            await new Promise<void>((r) => (gate = r));
          }
          await nodeLedgerFs.fsync(fd);
        },
      };
      const l = await openLedger(dir, {}, { fs: { ...nodeLedgerFs } });
      await l.heartbeat();
      await l.close();
      const l2 = await openLedger(dir, {}, { fs: slowCheckpointFiles });
      await l2.append([entry('before')]);
      let hbDone = false;
      const hb = l2.heartbeat().then(() => (hbDone = true));
      for (let i = 0; i < 500 && gate === undefined; i++) await new Promise((r) => setTimeout(r, 2));
      expect(gate).toBeDefined(); // the heartbeat's head.checkpoint fsync is held
      const out = await l2.append([entry('during')]);
      expect(out).toMatchObject({ kind: 'ok' }); // acknowledged although the heartbeat is not durable yet
      expect(hbDone).toBe(false);
      gate!();
      await hb;
      // The heartbeat covers what was durable when it was signed, not the later entry; the next seal covers all.
      const head = parseSignedNote(fs.readFileSync(path.join(dir, 'head.checkpoint'), 'utf8'));
      const cp = head.ok ? parseCheckpointBody(head.value.body) : undefined;
      expect(cp?.ok && cp.value.size).toBe(l2.treeSize - 1);
      await l2.close();
      const log = readLog(dir);
      expect(log.entries.map((e) => text(e).split(':')[0])).toEqual(['before', 'during']);
      // checkpoints chain: every checkpoint file links to its predecessor (no fork from the background write)
      const again = await openLedger(dir);
      expect(again.treeSize).toBe(2);
    });

    it('an fdatasync error with a later batch already encoded refuses both (ledger_failed) and acknowledges nothing after', async () => {
      const dir = await newDir();
      const g = gatedFs();
      const l = await openLedger(dir, {}, { fs: { ...g.fsx, fdatasync: nodeLedgerFs.fdatasync } });
      expect((await l.append([entry('durable')])).kind).toBe('ok');
      await l.heartbeat();
      await l.close();
      const l2 = await openLedger(dir, {}, { fs: g.fsx, logger: silentLogger() });
      g.events.length = 0; // from here: l2's appends only
      const a = l2.append([entry('a')]);
      await g.waitSyncing();
      const b = l2.append([entry('b')]);
      await tick();
      await tick();
      g.failNextSync();
      await g.release();
      expect(await a).toMatchObject({ kind: 'retryable', reason: 'ledger_failed' });
      expect(await b).toMatchObject({ kind: 'retryable', reason: 'ledger_failed' });
      // b was encoded while a's fdatasync ran, but is never written after a's failed
      expect(g.events.filter((e) => e.startsWith('write'))).toEqual(['write 1']);
      expect(await l2.append([entry('later')])).toMatchObject({ kind: 'retryable', reason: 'ledger_failed' });
      await expect(l2.heartbeat()).rejects.toThrow(/failed/);
      expect(l2.failure).toMatch(/EIO/);
      await l2.close().catch(() => undefined);
      // What was acknowledged survives; the refused entries may or may not be on disk, never acknowledged.
      const again = await openLedger(dir);
      expect(again.treeSize).toBeGreaterThanOrEqual(1);
      expect(readLog(dir).entries.map((e) => text(e).split(':')[0])[0]).toBe('durable');
    });
  });

  it('stopAccepting refuses with shutting_down; close writes what was accepted', async () => {
    const dir = await newDir();
    const l = await openLedger(dir);
    const p = l.append([entry('accepted')]);
    l.stopAccepting();
    expect(await l.append([entry('late')])).toMatchObject({ kind: 'retryable', reason: 'shutting_down' });
    await l.close();
    expect(await p).toMatchObject({ kind: 'ok', firstIndex: 0 });
    expect(readLog(dir).entries.map((e) => text(e).split(':')[0])).toEqual(['accepted']);
  });

  it('refuses to open another origin\'s ledger with a clear message', async () => {
    const dir = await newDir();
    const l = await openLedger(dir);
    await l.append([entry('x')]);
    await l.close();
    await expect(Ledger.open({ config: ledgerConfig(dir, { origin: 'other.example/log' }), signer: testSigner(), logger: silentLogger() }))
      .rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('sealtrail.test/ledger') });
  });

  it('refuses to start when a sealed segment is missing (not released)', async () => {
    const dir = await newDir();
    const l = await openLedger(dir, { max_segment_bytes: 4096 });
    for (let i = 0; i < 40; i++) await l.append([entry(`m${i}`, 300)]);
    await l.close();
    fs.unlinkSync(path.join(dir, 'segments', '0000000000000001.seg'));
    await expect(Ledger.open({ config: ledgerConfig(dir, { max_segment_bytes: 4096 }), signer: testSigner(), logger: silentLogger() }))
      .rejects.toMatchObject({ code: 'LEDGER_CORRUPT', message: expect.stringContaining('0000000000000001.seg is missing') });
  });
  it('key rotation: the old key announces the new one in a heartbeat, later checkpoints use the new key only', async () => {
    const dir = await newDir();
    const oldKey = testSigner();
    const newKey = signerFromSeed(ORIGIN, new Uint8Array(32).fill(7));
    const l1 = await openLedger(dir);
    await l1.append([entry('before-rotation')]);
    await l1.close();
    const l2 = await openLedger(dir, {}, { signer: newKey, previousSigner: oldKey });
    const cps = l2.checkpoints();
    const announce = cps.at(-1)!;
    expect(announce.kind).toBe('heartbeat');
    const byOld = verifyCheckpoint(fs.readFileSync(announce.path), [verifierFor(oldKey)], ORIGIN);
    expect(byOld.ok).toBe(true);
    if (!byOld.ok) return;
    expect(byOld.checkpoint.keys).toEqual([newKey.verifierKey]);
    await l2.append([entry('after-rotation')]);
    await l2.close();
    const seal = l2.checkpoints().at(-1)!;
    expect(seal.kind).toBe('seal');
    expect(verifyCheckpoint(fs.readFileSync(seal.path), [verifierFor(newKey)], ORIGIN).ok).toBe(true);
    expect(verifyCheckpoint(fs.readFileSync(seal.path), [verifierFor(oldKey)], ORIGIN).ok).toBe(false);
    // Restart after the rotation: the previous key is no longer needed.
    const l3 = await openLedger(dir, {}, { signer: newKey });
    expect(l3.treeSize).toBe(2);
    await l3.close();
    // A key the ledger never saw is refused with a clear message.
    const stranger = signerFromSeed(ORIGIN, new Uint8Array(32).fill(9));
    await expect(Ledger.open({ config: ledgerConfig(dir), signer: stranger, logger: silentLogger() }))
      .rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('signing.key_file or signing.previous_key_file') });
  });

  it('exposes failure, diskFull and maxDiskBytes for readiness', async () => {
    const dir = await newDir();
    const l = await openLedger(dir, { max_disk_bytes: 100 * 1024 });
    expect(l.failure).toBeUndefined();
    expect(l.diskFull).toBe(false);
    expect(l.maxDiskBytes).toBe(100 * 1024);
    while ((await l.append([entry('fill', 2000)])).kind === 'ok');
    expect(l.diskFull).toBe(true);
  });
});
