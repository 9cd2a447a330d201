/**
 * Streaming scans (src/verify/pool.ts, frame-scan.ts): a pool of workers fed through a few reused,
 * transferred buffers must give exactly the report of the main-thread scan — findings, summaries and
 * the reuse of byte-identical copies across sources — and a source that only offers `read` chunks
 * (S3) must give the same report as one read into the verifier's buffers (a directory).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseVerifierKey } from '../../src/keys/keys.js';
import { nativeFileMap } from '../../src/ledger/native-hash.js';
import type { LogSource } from '../../src/verify/source.js';
import type { VerifyReport } from '../../src/verify/findings.js';
import { ORIGIN, buildLog, copyDir, flipBit, readSegment, segPath, signer, tempDir } from './helpers.js';

const A = signer(1);
let root: string;
let log: string;

beforeAll(async () => {
  root = await tempDir('sealtrail-pool-');
  log = path.join(root, 'log');
  await buildLog({ dir: log, signer: A, segments: 4, perSegment: 30 });
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Everything in a report except timings. */
function view(r: VerifyReport): unknown {
  return { findings: r.findings, sources: r.sources, rotatedKeys: r.rotatedKeys };
}

/** The same source with only `read`, in 1,000-byte chunks (as a remote source would stream). */
function chunksOnly(src: LogSource): LogSource {
  return {
    description: src.description,
    kind: src.kind,
    list: () => src.list(),
    released: () => src.released(),
    close: () => src.close(),
    async *read(item) {
      for await (const c of src.read(item)) for (let o = 0; o < c.length; o += 1000) yield c.subarray(o, o + 1000);
    },
  };
}

describe('streamed scans', () => {
  // The pool runs the compiled scan-worker.js; test/global-setup.ts builds dist/ before the suite.
  const built = fs.existsSync(path.join(process.cwd(), 'dist/src/verify/scan-worker.js'));

  it.skipIf(!built)('a pool of 2 workers = the main thread, with several sources, identical copies and damage', async () => {
    const copy = path.join(root, 'copy');
    const bad = path.join(root, 'bad');
    copyDir(log, copy);
    copyDir(log, bad);
    flipBit(segPath(bad, 2), readSegment(segPath(bad, 2)).frames[11]!.offset + 47);
    const dist = (p: string): string => pathToFileURL(path.join(process.cwd(), 'dist', p)).href;
    const { verifyLog } = (await import(dist('src/verify/verifier.js'))) as typeof import('../../src/verify/verifier.js');
    const { openLogSource } = (await import(dist('src/cli/log-sources.js'))) as typeof import('../../src/cli/log-sources.js');
    const run = async (workers: number): Promise<VerifyReport> => {
      const srcs = await Promise.all([log, copy, bad].map((d) => openLogSource(d, { origin: ORIGIN, cwd: root })));
      try {
        return await verifyLog(srcs, { origin: ORIGIN, trusted: [parseVerifierKey(A.verifierKey)], workers });
      } finally {
        for (const s of srcs) s.close();
      }
    };
    const pooled = await run(2);
    const single = await run(0);
    expect(view(pooled)).toEqual(view(single));
    expect(pooled.findings.map((f) => [f.check, f.source, f.segment])).toEqual(
      expect.arrayContaining([['frame.crc', bad, 2], ['source.mismatch', bad, 2]]),
    );
    // The copy's 5 segments (4 sealed + the open one) are byte-identical to the first source's:
    // hashed, not rescanned; in the damaged copy all but segment 2.
    expect(pooled.sources.map((s) => s.identicalToVerified)).toEqual([0, 5, 4]);
  });

  it('a source offering only read() chunks gives the same report as one read into reused buffers', async () => {
    const { verifyLog } = await import('../../src/verify/verifier.js');
    const { openLogSource } = await import('../../src/cli/log-sources.js');
    const d = path.join(root, 'chunks');
    copyDir(log, d);
    flipBit(segPath(d, 1), readSegment(segPath(d, 1)).frames[3]!.offset + 60);
    const src = await openLogSource(d, { origin: ORIGIN, cwd: root });
    expect(typeof src.openReader).toBe('function');
    const opts = { origin: ORIGIN, trusted: [parseVerifierKey(A.verifierKey)], workers: 0 };
    const direct = await verifyLog([src], opts);
    const streamed = await verifyLog([chunksOnly(src)], opts);
    src.close();
    expect(view(streamed)).toEqual(view(direct));
    expect(direct.findings.map((f) => f.check)).toContain('frame.crc');
  });

  it.skipIf(!nativeFileMap)('a sealed segment read through its memory mapping gives exactly its bytes, in windows of any size', async () => {
    const { openLogSource } = await import('../../src/cli/log-sources.js');
    const src = await openLogSource(log, { origin: ORIGIN, cwd: root });
    const items = await src.list();
    const sealed = items.find((i) => i.kind === 'segment')!;
    const want = fs.readFileSync(path.join(log, sealed.key));
    for (const max of [1, 4096, 65536, 100_000, 1 << 22]) {
      const r = await src.openReader!(sealed);
      expect(r.view, 'a sealed segment is mapped').toBeDefined();
      const parts: Buffer[] = [];
      for (let v = await r.view!(max); v; v = await r.view!(max)) parts.push(Buffer.from(v)); // copy: a view dies with the next call
      await r.close();
      expect(Buffer.concat(parts).equals(want), `windows of ${max}`).toBe(true);
    }
    // The open segment and checkpoints may still change: never mapped.
    for (const it of items.filter((i) => i.kind !== 'segment')) {
      const r = await src.openReader!(it);
      expect(r.view, it.name).toBeUndefined();
      await r.close();
    }
    src.close();
  });
});
