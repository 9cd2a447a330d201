/**
 * The forwarder (G5): W-of-N quorum, retries, durable progress, local release rules. Uses real
 * files, real fsync'd state files, real fs destinations, and for the outage tests the real S3
 * Object Lock server behind a TCP proxy that the test takes down and brings back.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { type AddressInfo, type Server, type Socket, createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Destination, PutObject, PutResult } from '../../src/forward/destination.js';
import { FsDestination } from '../../src/forward/fs.js';
import { objectKey } from '../../src/forward/keys.js';
import { Replicator, type ForwardingConfig } from '../../src/forward/replicator.js';
import { S3Destination } from '../../src/forward/s3.js';
import { DirectorySource } from '../../src/forward/sources.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { createBucket, destOptions, s3env, skipS3, testClient } from './s3-env.js';

const ORIGIN = 'sealtrail.test/node-a';
const fast: ForwardingConfig = { quorum: 1, delete_after: 'all', min_local_age: 0, retry_initial: 20, retry_max: 200 };

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sealtrail-repl-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A ledger-shaped directory with `n` sealed segments and one checkpoint per segment. */
async function makeLedger(n: number, size = 1000): Promise<{ src: DirectorySource; files: Map<string, Buffer> }> {
  const ledger = join(dir, 'ledger');
  await mkdir(join(ledger, 'segments'), { recursive: true });
  await mkdir(join(ledger, 'checkpoints'), { recursive: true });
  const files = new Map<string, Buffer>();
  for (let i = 0; i < n; i++) await addSegment(ledger, files, i, size);
  return { src: new DirectorySource(ledger), files };
}

async function addSegment(ledger: string, files: Map<string, Buffer>, i: number, size = 1000): Promise<void> {
  const seg = `${String(i).padStart(16, '0')}.seg`;
  const cp = `${String(i).padStart(16, '0')}-seal.cp`;
  const a = randomBytes(size);
  const b = Buffer.from(`checkpoint ${i}\n`);
  await writeFile(join(ledger, 'segments', seg), a);
  await writeFile(join(ledger, 'checkpoints', cp), b);
  files.set(`segments/${seg}`, a);
  files.set(`checkpoints/${cp}`, b);
}

/** Counts put calls on a real destination (a decorator, not a mock). */
class Counting implements Destination {
  puts = 0;
  constructor(readonly inner: Destination) {}
  get name() {
    return this.inner.name;
  }
  get type() {
    return this.inner.type;
  }
  put(o: PutObject): Promise<PutResult> {
    this.puts++;
    return this.inner.put(o);
  }
  list(p: string) {
    return this.inner.list(p);
  }
  listVersions(p: string) {
    return this.inner.listVersions(p);
  }
  get(k: string, v?: string) {
    return this.inner.get(k, v);
  }
  head(k: string, v?: string) {
    return this.inner.head(k, v);
  }
  close() {
    this.inner.close();
  }
}

async function until(cond: () => boolean | Promise<boolean>, ms = 40_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting for condition');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('Replicator with filesystem destinations', { timeout: 60_000 }, () => {
  it('copies every segment and checkpoint to all destinations, byte for byte, then releases the local copies', async () => {
    const { src, files } = await makeLedger(5);
    const dests = ['a', 'b', 'c'].map((n) => new FsDestination({ name: `fs-${n}`, path: join(dir, n) }));
    const metrics = new Metrics({ defaultMetrics: false });
    const r = new Replicator({ source: src, destinations: dests, forwarding: { ...fast, quorum: 2 }, origin: ORIGIN, stateDir: join(dir, 'ledger/forward'), metrics, canary: false });
    await r.start();
    expect(await r.drained(40_000)).toBe(true);
    await r.stop();
    for (const d of dests) {
      for (const [rel, bytes] of files) {
        const kind = rel.startsWith('segments/') ? 'segment' : 'checkpoint';
        const got = await d.get(objectKey(ORIGIN, kind, rel.split('/')[1]!));
        expect(Buffer.from(got).equals(bytes)).toBe(true);
      }
    }
    expect(await readdir(join(dir, 'ledger/segments'))).toEqual([]);
    expect(src.released).toHaveLength(10);
    const sent = await metrics.registry.getSingleMetricAsString('sealtrail_exporter_sent_objects_total');
    expect(sent).toContain('sealtrail_exporter_sent_objects_total{destination="fs-a"} 10');
    expect(r.status()).toMatchObject({ ready: true, quorumReachable: true, pendingQuorum: 0 });
  });

  it('all destinations down: nothing is released, readiness says quorum unreachable; recovery when they return', async () => {
    const { src } = await makeLedger(3);
    // A regular file where the destination folder should be: every write fails (ENOTDIR).
    await writeFile(join(dir, 'blocked-a'), 'x');
    await writeFile(join(dir, 'blocked-b'), 'x');
    const dests = ['a', 'b'].map((n) => new FsDestination({ name: `fs-${n}`, path: join(dir, `blocked-${n}`, 'worm') }));
    const metrics = new Metrics({ defaultMetrics: false });
    const r = new Replicator({ source: src, destinations: dests, forwarding: { ...fast, quorum: 1 }, origin: ORIGIN, stateDir: join(dir, 'ledger/forward'), metrics, canary: false });
    await r.start();
    await until(() => r.status().destinations.every((d) => d.consecutiveFailures >= 3));
    const s = r.status();
    expect(s.ready).toBe(false);
    expect(s.quorumReachable).toBe(false);
    expect(s.pendingQuorum).toBe(6);
    expect(r.readinessChecks().quorumReachable().ok).toBe(false);
    expect(await readdir(join(dir, 'ledger/segments'))).toHaveLength(3);
    expect(src.released).toEqual([]);
    expect(await metrics.registry.getSingleMetricAsString('sealtrail_exporter_lag_segments')).toContain('{destination="fs-a"} 3');

    // They come back: everything is forwarded and released.
    await rm(join(dir, 'blocked-a'));
    await rm(join(dir, 'blocked-b'));
    expect(await r.drained(40_000)).toBe(true);
    await r.stop();
    expect(r.status().ready).toBe(true);
  });

  it('restart resumes from the durable progress: nothing uploaded twice, nothing skipped', async () => {
    const { src, files } = await makeLedger(4);
    const ledger = join(dir, 'ledger');
    // Destination b is blocked, so nothing is released (delete_after: all) while a progresses.
    await writeFile(join(dir, 'b'), 'x');
    const a1 = new Counting(new FsDestination({ name: 'fs-a', path: join(dir, 'a') }));
    const b1 = new Counting(new FsDestination({ name: 'fs-b', path: join(dir, 'b', 'worm') }));
    const r1 = new Replicator({ source: src, destinations: [a1, b1], forwarding: fast, origin: ORIGIN, stateDir: join(ledger, 'forward'), canary: false });
    await r1.start();
    await until(() => r1.status().destinations[0]!.lagItems === 0);
    await r1.stop();
    expect(a1.puts).toBe(8);
    const state = JSON.parse(await readFile(join(ledger, 'forward/fs-a.json'), 'utf8')) as { confirmed: Record<string, { sha256: string }> };
    expect(Object.keys(state.confirmed)).toHaveLength(8);
    const k0 = objectKey(ORIGIN, 'segment', '0000000000000000.seg');
    expect(state.confirmed[k0]!.sha256).toBe(createHash('sha256').update(files.get('segments/0000000000000000.seg')!).digest('hex'));

    // "Crash" after an upload whose confirmation was never recorded: a new segment is already at
    // fs-a but not in fs-a.json.
    await addSegment(ledger, files, 4);
    const seg4 = files.get('segments/0000000000000004.seg')!;
    const direct = await new FsDestination({ name: 'fs-a', path: join(dir, 'a') }).put({
      key: objectKey(ORIGIN, 'segment', '0000000000000004.seg'),
      body: seg4,
      sha256: createHash('sha256').update(seg4).digest(),
    });
    expect(direct.kind).toBe('confirmed');

    await rm(join(dir, 'b'));
    const a2 = new Counting(new FsDestination({ name: 'fs-a', path: join(dir, 'a') }));
    const b2 = new Counting(new FsDestination({ name: 'fs-b', path: join(dir, 'b', 'worm') }));
    const r2 = new Replicator({ source: src, destinations: [a2, b2], forwarding: fast, origin: ORIGIN, stateDir: join(ledger, 'forward'), canary: false });
    await r2.start();
    expect(await r2.drained(40_000)).toBe(true);
    await r2.stop();
    // fs-a: only the two new objects were attempted (the segment found already present + its checkpoint).
    expect(a2.puts).toBe(2);
    expect(b2.puts).toBe(10);
    expect((await a2.list('')).length).toBe(10);
    expect(src.released.sort()).toEqual([...files.keys()].map((k) => k.split('/')[1]!).sort());
  });

  it('delete_after: quorum keeps the local copy until min_local_age has passed', async () => {
    const { src } = await makeLedger(1);
    const sealedAt = (await stat(join(dir, 'ledger/segments/0000000000000000.seg'))).mtimeMs;
    await writeFile(join(dir, 'b'), 'x'); // b stays down
    const dests = [new FsDestination({ name: 'fs-a', path: join(dir, 'a') }), new FsDestination({ name: 'fs-b', path: join(dir, 'b', 'w') })];
    const minAge = 1500;
    const r = new Replicator({
      source: src,
      destinations: dests,
      forwarding: { ...fast, quorum: 1, delete_after: 'quorum', min_local_age: minAge },
      origin: ORIGIN,
      stateDir: join(dir, 'ledger/forward'),
      canary: false,
    });
    await r.start();
    await until(() => r.status().pendingQuorum === 0);
    // Quorum is met (b is still down); the copy stays while younger than min_local_age.
    if (Date.now() - sealedAt < minAge - 100) expect(src.released).toEqual([]);
    await until(() => src.released.length === 2);
    expect(Date.now() - sealedAt).toBeGreaterThanOrEqual(minAge - 20);
    await r.stop();
  });

  it('delete_after: quorum — a slower destination whose item was released meanwhile moves on without a failure', async () => {
    const { src } = await makeLedger(1);
    // fs-b starts each upload only once the item is gone locally: the file it would stream is released.
    const inner = new FsDestination({ name: 'fs-b', path: join(dir, 'b') });
    let gotPut = 0;
    const late: Destination = Object.assign(new Counting(inner), {
      async put(o: PutObject): Promise<PutResult> {
        gotPut++;
        await until(() => src.released.some((n) => o.key.endsWith(n)));
        return inner.put(o);
      },
    });
    const metrics = new Metrics({ defaultMetrics: false });
    const r = new Replicator({
      source: src,
      destinations: [new FsDestination({ name: 'fs-a', path: join(dir, 'a') }), late],
      forwarding: { ...fast, quorum: 1, delete_after: 'quorum', min_local_age: 0 },
      origin: ORIGIN,
      stateDir: join(dir, 'ledger/forward'),
      metrics,
      canary: false,
    });
    await r.start();
    await until(() => src.released.length === 2 && gotPut >= 1);
    await new Promise((res) => setTimeout(res, 300)); // fs-b's attempt(s) finish against the released file
    const b = r.status().destinations.find((d) => d.name === 'fs-b')!;
    expect(b.consecutiveFailures).toBe(0);
    expect(b.lastError).toBeUndefined();
    expect(await metrics.registry.getSingleMetricAsString('sealtrail_exporter_send_failed_objects_total')).not.toContain('fs-b');
    await r.stop();
  });

  it('with delete_after: all, W confirmations are safe but the local copy stays until every destination has it', async () => {
    const { src } = await makeLedger(2);
    await writeFile(join(dir, 'c'), 'x');
    const dests = [
      new FsDestination({ name: 'fs-a', path: join(dir, 'a') }),
      new FsDestination({ name: 'fs-b', path: join(dir, 'b') }),
      new FsDestination({ name: 'fs-c', path: join(dir, 'c', 'w') }),
    ];
    const r = new Replicator({ source: src, destinations: dests, forwarding: { ...fast, quorum: 2 }, origin: ORIGIN, stateDir: join(dir, 'ledger/forward'), canary: false });
    await r.start();
    await until(() => r.status().pendingQuorum === 0 && r.status().destinations[2]!.consecutiveFailures > 0);
    expect(r.status()).toMatchObject({ ready: true, quorumReachable: true });
    expect(src.released).toEqual([]);
    await rm(join(dir, 'c'));
    r.wake();
    expect(await r.drained(40_000)).toBe(true);
    await r.stop();
  });

  it('a destination the canary finds unsafe does not count toward quorum unless accepted', async () => {
    const { src } = await makeLedger(1);
    // Plain directories accept deletes: the canary marks both unsafe; only fs-b is accepted.
    const dests = [new FsDestination({ name: 'fs-a', path: join(dir, 'a') }), new FsDestination({ name: 'fs-b', path: join(dir, 'b') })];
    const metrics = new Metrics({ defaultMetrics: false });
    const r = new Replicator({
      source: src,
      destinations: dests,
      forwarding: { ...fast, quorum: 2, delete_after: 'quorum' },
      origin: ORIGIN,
      stateDir: join(dir, 'ledger/forward'),
      metrics,
      acceptUnsafe: new Set(['fs-b']),
    });
    await r.start();
    await until(() => r.status().destinations.every((d) => d.lagItems === 0));
    const s = r.status();
    expect(s.unsafe).toEqual(['fs-a']);
    expect(s.ready).toBe(false);
    expect(s.pendingQuorum).toBe(2); // both copies exist, but only one counts
    expect(src.released).toEqual([]);
    expect(r.readinessChecks().noUnsafeDestination()).toMatchObject({ ok: false });
    expect(await metrics.registry.getSingleMetricAsString('sealtrail_destination_unsafe')).toContain('{destination="fs-a"} 1');
    await r.stop();
  });
});

/** A TCP proxy in front of the S3 server that the test can take down and bring back on the same port. */
class Proxy {
  server: Server | undefined;
  port = 0;
  readonly sockets = new Set<Socket>();
  constructor(readonly target: { host: string; port: number }) {}
  async up(): Promise<void> {
    const server = createServer((c) => {
      const u = createConnection(this.target);
      this.sockets.add(c).add(u);
      c.pipe(u).pipe(c);
      const drop = () => {
        c.destroy();
        u.destroy();
        this.sockets.delete(c);
        this.sockets.delete(u);
      };
      c.on('error', drop).on('close', drop);
      u.on('error', drop).on('close', drop);
    });
    await new Promise<void>((res) => server.listen(this.port, '127.0.0.1', res));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }
  async down(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
    this.server = undefined;
  }
}

const skip = skipS3();
// Generous timeout: these run against a shared gateway on a busy 2-core machine.
describe.skipIf(skip)('Replicator with the real S3 Object Lock server', { timeout: 90_000 }, () => {
  let client: S3Client;
  let buckets: string[];
  let proxy: Proxy;
  beforeAll(async () => {
    client = testClient();
    buckets = [await createBucket(client, true), await createBucket(client, true), await createBucket(client, true)];
    const u = new URL(s3env!.endpoint);
    proxy = new Proxy({ host: u.hostname, port: Number(u.port) });
    await proxy.up();
  });
  afterAll(async () => {
    await proxy?.down();
    client?.destroy();
  });

  it('W=2 of 3 with one destination down: segments are safe, nothing released; it catches up when it returns, without extra versions', async () => {
    const { src } = await makeLedger(4, 64 * 1024);
    await proxy.down();
    const dests = [
      new S3Destination(destOptions('s3-a', buckets[0]!)),
      new S3Destination(destOptions('s3-b', buckets[1]!)),
      new S3Destination({ ...destOptions('s3-c', buckets[2]!), endpoint: `http://127.0.0.1:${proxy.port}` }),
    ];
    const metrics = new Metrics({ defaultMetrics: false });
    const r = new Replicator({ source: src, destinations: dests, forwarding: { ...fast, quorum: 2 }, origin: ORIGIN, stateDir: join(dir, 'ledger/forward'), metrics });
    try {
      await r.start();
      await until(() => r.status().pendingQuorum === 0 && r.status().destinations[2]!.consecutiveFailures >= 2);
      const s = r.status();
      expect(s.ready).toBe(true); // 2 of 3 reachable, all safe
      expect(s.destinations.map((d) => d.unsafe)).toEqual([false, false, undefined]); // c's canary could not run yet
      expect(s.destinations[2]!.lagItems).toBe(8);
      expect(src.released).toEqual([]);
      expect(await metrics.registry.getSingleMetricAsString('sealtrail_exporter_send_failed_objects_total')).not.toContain('s3-a');

      await proxy.up(); // same port: the destination returns
      expect(await r.drained(40_000)).toBe(true);
      expect(src.released).toHaveLength(8);
      for (const d of dests) {
        const v = await d.listVersions('');
        const logObjects = v.filter((x) => !x.key.startsWith('.sealtrail-canary/'));
        expect(logObjects).toHaveLength(8); // one version per key: no duplicates
        expect(new Set(logObjects.map((x) => x.key)).size).toBe(8);
      }
    } finally {
      await r.stop();
      for (const d of dests) d.close();
    }
  });

  it('a crash between PUT and the progress record does not create a second version', async () => {
    const { src, files } = await makeLedger(1, 4096);
    const bucket = await createBucket(client, true);
    const d1 = new S3Destination(destOptions('s3-x', bucket));
    const seg = files.get('segments/0000000000000000.seg')!;
    const key = objectKey(ORIGIN, 'segment', '0000000000000000.seg');
    // The upload happened, then the agent died before writing <ledger.dir>/forward/s3-x.json.
    expect((await d1.put({ key, body: seg, sha256: createHash('sha256').update(seg).digest() })).kind).toBe('confirmed');
    d1.close();
    const d2 = new S3Destination(destOptions('s3-x', bucket));
    const r = new Replicator({ source: src, destinations: [d2], forwarding: fast, origin: ORIGIN, stateDir: join(dir, 'ledger/forward'), canary: false });
    try {
      await r.start();
      expect(await r.drained(40_000)).toBe(true);
      expect((await d2.listVersions(key)).filter((v) => v.key === key)).toHaveLength(1);
    } finally {
      await r.stop();
      d2.close();
    }
  });
});
