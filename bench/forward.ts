/**
 * Forwarding throughput to the local S3 Object Lock server (docs/benchmarks.md "Forwarding").
 *
 *   eval "$(scripts/s3-server.sh start)"; npm run build
 *   node dist/bench/forward.js [--segments 24] [--mib 8] [--dests 3] [--quorum 2] [--concurrency 2]
 *
 * Writes N random segments (plus a small checkpoint each) into a ledger-shaped temp directory and
 * times the replicator until every object is confirmed (PUT + read-back GET + version checks) by
 * every destination and released locally. Each destination is its own Object Lock bucket.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Replicator } from '../src/forward/replicator.js';
import { S3Destination, makeS3Client } from '../src/forward/s3.js';
import { DirectorySource } from '../src/forward/sources.js';

const { values } = parseArgs({
  options: {
    segments: { type: 'string', default: '24' },
    mib: { type: 'string', default: '8' },
    dests: { type: 'string', default: '3' },
    quorum: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '2' },
  },
});
const N = Number(values.segments);
const MIB = Number(values.mib);
const D = Number(values.dests);
const W = Number(values.quorum);
const K = Number(values.concurrency);
const endpoint = process.env.SEALTRAIL_S3_ENDPOINT;
if (!endpoint) {
  process.stderr.write('SEALTRAIL_S3_ENDPOINT is unset: run eval "$(scripts/s3-server.sh start)" first\n');
  process.exit(2);
}
const conn = {
  endpoint,
  region: process.env.SEALTRAIL_S3_REGION ?? 'us-east-1',
  forcePathStyle: true,
  accessKeyId: process.env.SEALTRAIL_S3_ACCESS_KEY_ID ?? '',
  secretAccessKey: process.env.SEALTRAIL_S3_SECRET_ACCESS_KEY ?? '',
};

const dir = await mkdtemp(join(tmpdir(), 'sealtrail-bench-fwd-'));
try {
  const ledger = join(dir, 'ledger');
  await mkdir(join(ledger, 'segments'), { recursive: true });
  await mkdir(join(ledger, 'checkpoints'), { recursive: true });
  for (let i = 0; i < N; i++) {
    await writeFile(join(ledger, 'segments', `${String(i).padStart(16, '0')}.seg`), randomBytes(MIB * 1024 * 1024));
    await writeFile(join(ledger, 'checkpoints', `${String(i).padStart(16, '0')}-seal.cp`), randomBytes(300));
  }
  const admin = makeS3Client({ bucket: 'x', ...conn });
  const dests: S3Destination[] = [];
  for (let i = 0; i < D; i++) {
    const bucket = `bench-${randomBytes(4).toString('hex')}-${i}`;
    await admin.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
    dests.push(new S3Destination({ name: `s3-${i}`, bucket, prefix: 'logs', retentionDays: 1, ...conn }));
  }
  admin.destroy();
  const src = new DirectorySource(ledger);
  const r = new Replicator({
    source: src,
    destinations: dests,
    forwarding: { quorum: W, delete_after: 'all', min_local_age: 0, retry_initial: 50, retry_max: 1000 },
    origin: 'sealtrail.bench/node-a',
    stateDir: join(ledger, 'forward'),
    canary: false,
    concurrency: K,
  });
  const t0 = performance.now();
  let tQuorum = 0;
  await r.start(); // lists the items before the workers begin, so pendingQuorum starts at 2N
  const poll = setInterval(() => {
    if (!tQuorum && r.status().pendingQuorum === 0) tQuorum = performance.now();
  }, 5);
  const ok = await r.drained(600_000);
  const t1 = performance.now();
  clearInterval(poll);
  await r.stop();
  for (const d of dests) d.close();
  const mb = (N * MIB * 1024 * 1024) / 1e6;
  const secs = (t1 - t0) / 1000;
  const s = r.status();
  const result = {
    ok,
    segments: N,
    segment_mib: MIB,
    destinations: D,
    quorum: W,
    concurrency: K,
    seconds_all_confirmed: Number(secs.toFixed(2)),
    log_mb_per_s: Number((mb / secs).toFixed(1)),
    to_gateway_mb_per_s: Number(((mb * D) / secs).toFixed(1)),
    seconds_to_quorum: tQuorum ? Number(((tQuorum - t0) / 1000).toFixed(2)) : null,
    failures: s.destinations.map((d) => d.consecutiveFailures),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
