/**
 * The ledger alone (issue 3): entries/s through `Ledger.append` with group commit and real
 * fdatasync, and append-to-durable latency (p50/p99 of the time from the `append` call to its
 * resolution). Closed loop: C concurrent appenders, each appending requests of B entries of S
 * bytes and awaiting each before the next. Segments seal on size as in production (64 MiB).
 * Also splits the per-entry CPU cost (leaf hash, chain hash, frontier, CRC-32C) so the figure
 * can be explained.
 *
 * Run: npm run build && node dist/bench/ledger.js [--entries N] [--size S] [--batch B]
 *        [--concurrency C] [--durability fsync|none] [--dir DIR]      (docs/benchmarks.md "Ledger")
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as nodeCrypto from 'node:crypto';
import { parseArgs } from 'node:util';
import { signerFromSeed } from '../src/keys/keys.js';
import { crc32c } from '../src/ledger/crc32c.js';
import { chainHash, leafHash } from '../src/ledger/hash.js';
import { Ledger } from '../src/ledger/ledger.js';
import { Frontier } from '../src/ledger/merkle.js';
import { FRAME_OVERHEAD, writeFrame } from '../src/ledger/segment-format.js';
import { silentLogger } from '../src/telemetry/logger.js';
import { Metrics } from '../src/telemetry/metrics.js';

const { values: a } = parseArgs({
  options: {
    entries: { type: 'string', default: '1000000' },
    size: { type: 'string', default: '300' },
    batch: { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '64' },
    durability: { type: 'string', default: 'fsync' },
    dir: { type: 'string' },
    'no-micro': { type: 'boolean', default: false },
    'max-batch-bytes': { type: 'string' },
  },
});
const N = Number(a.entries);
const S = Number(a.size);
const B = Number(a.batch);
const C = Number(a.concurrency);
const durability = a.durability === 'none' ? 'none' : 'fsync';

function pct(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function micro(): void {
  const entry = nodeCrypto.randomBytes(S);
  const frame = new Uint8Array(FRAME_OVERHEAD + S);
  const chain = new Uint8Array(32);
  const n = 200_000;
  const time = (label: string, f: () => unknown) => {
    for (let i = 0; i < 20_000; i++) f();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) f();
    const ns = Number(process.hrtime.bigint() - t0) / n;
    console.log(`  ${label.padEnd(52)} ${ns.toFixed(0).padStart(6)} ns`);
  };
  console.log(`per-entry CPU cost, ${S}-byte entry (median of one run; shared machine):`);
  time('leafHash (copy + crypto.hash)', () => leafHash(entry));
  time('crypto.hash sha256 in place (what writeFrame does)', () => nodeCrypto.hash('sha256', entry, 'buffer'));
  time('createHash().update(0x00).update(entry).digest()', () => nodeCrypto.createHash('sha256').update(Buffer.of(0)).update(entry).digest());
  time('chainHash (64-byte input)', () => chainHash(chain, chain));
  const f = Frontier.empty();
  time('Frontier.append (amortised ~1 node hash)', () => f.append(chain));
  time(`crc32c over ${S + 40} bytes`, () => crc32c(frame, 0, S + 40));
  time('writeFrame (all of the above but the frontier)', () => writeFrame(frame, 0, entry, chain));
}

async function main(): Promise<void> {
  if (!a['no-micro']) micro();
  const dir = a.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sealtrail-bench-ledger-'));
  const metrics = new Metrics({ defaultMetrics: false });
  const ledger = await Ledger.open({
    config: {
      dir,
      origin: 'sealtrail.bench/ledger',
      durability,
      max_segment_bytes: 64 * 1024 * 1024,
      max_segment_age: 3_600_000,
      seal_interval: 5_000,
      max_disk_bytes: 64 * 1024 * 1024 * 1024,
    },
    signer: signerFromSeed('sealtrail.bench/ledger', new Uint8Array(32).fill(1)),
    logger: silentLogger(),
    metrics,
    ...(a['max-batch-bytes'] ? { maxBatchBytes: Number(a['max-batch-bytes']) } : {}),
  });
  const pool: Uint8Array[] = Array.from({ length: 4096 }, () => new Uint8Array(nodeCrypto.randomBytes(S)));
  const requests = Math.ceil(N / B);
  const lat = new Float64Array(requests);
  let next = 0;
  let done = 0;
  const t0 = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    for (;;) {
      const r = next++;
      if (r >= requests) return;
      const entries: Uint8Array[] = [];
      for (let j = 0; j < B; j++) entries.push(pool[(r * B + j) & 4095]!);
      const s = process.hrtime.bigint();
      const out = await ledger.append(entries);
      lat[r] = Number(process.hrtime.bigint() - s) / 1e6;
      if (out.kind !== 'ok') throw new Error(`append refused: ${out.reason}`);
      done += out.count;
    }
  };
  await Promise.all(Array.from({ length: C }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const fsyncs = (await metrics.registry.getSingleMetric('sealtrail_ledger_group_commit_entries')!.get()).values.find((v) =>
    String((v as { metricName?: string }).metricName).endsWith('_count'),
  )?.value ?? 0;
  const segments = ledger.sealedSegments().length;
  await ledger.close();
  lat.sort();
  const mb = (done * (S + FRAME_OVERHEAD)) / secs / 1e6;
  console.log(
    `\nledger alone: ${done.toLocaleString('en-US')} entries of ${S} B, requests of ${B}, ${C} concurrent, durability ${durability}\n` +
      `  ${Math.round(done / secs).toLocaleString('en-US')} entries/s, ${mb.toFixed(1)} MB/s written (frames), ${secs.toFixed(2)} s\n` +
      `  group commits (write + ${durability === 'fsync' ? 'fdatasync' : 'no sync'}): ${fsyncs}, ${(done / Math.max(1, fsyncs)).toFixed(0)} entries each on average; ${segments} segments sealed\n` +
      `  append-to-durable latency per request: p50 ${pct(lat, 50).toFixed(2)} ms, p99 ${pct(lat, 99).toFixed(2)} ms, max ${lat[lat.length - 1]!.toFixed(2)} ms`,
  );
  // The disk's own ceiling for the same pattern: back-to-back writes of one average commit's bytes,
  // each followed by fdatasync, in the same directory (no hashing, no ledger).
  if (durability === 'fsync') {
    const chunk = Buffer.alloc(Math.max(4096, Math.round((done / Math.max(1, fsyncs)) * (S + FRAME_OVERHEAD))), 0x5a);
    const raw = path.join(dir, 'raw-disk-probe');
    const fd = fs.openSync(raw, 'w');
    const rounds = Math.max(20, Math.min(200, Math.floor((256 * 2 ** 20) / chunk.length)));
    const r0 = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) {
      fs.writeSync(fd, chunk, 0, chunk.length, i * chunk.length);
      fs.fdatasyncSync(fd);
    }
    const rs = Number(process.hrtime.bigint() - r0) / 1e9;
    fs.closeSync(fd);
    fs.rmSync(raw);
    const rawBps = (rounds * chunk.length) / rs;
    console.log(
      `  disk ceiling: write ${(chunk.length / 2 ** 20).toFixed(2)} MiB + fdatasync, ${rounds} times: ${((rs / rounds) * 1000).toFixed(2)} ms each, ` +
        `${(rawBps / 1e6).toFixed(1)} MB/s = at most ${Math.round(rawBps / (S + FRAME_OVERHEAD)).toLocaleString('en-US')} entries/s of ${S} B with no CPU work at all`,
    );
  }
  if (!a.dir) fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
