/**
 * Writes a log for the `sealtrail verify` and forwarding measurements (issue 7) by driving the Ledger
 * directly, not over HTTP: the entries are what the receiver would store for the harness's 1,000-record
 * requests (decoded by src/otlp's decodeLogsProtobuf), appended in 1,000-entry batches with
 * `durability: none`, sealed into segments of `--segment-bytes`, closed (the last segment sealed).
 *
 *   node dist/bench/fill-ledger.js --dir DIR --key KEYFILE --origin ORIGIN --bytes N [--segment-bytes N]
 *
 * Prints one JSON line: { entries, bytes (segment files), segments, seconds }.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { loadSigner } from '../src/keys/files.js';
import { Ledger } from '../src/ledger/ledger.js';
import { decodeLogsProtobuf } from '../src/otlp/index.js';
import { silentLogger } from '../src/telemetry/logger.js';
import { encodeVariant } from './payloads.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    key: { type: 'string' },
    origin: { type: 'string' },
    bytes: { type: 'string' },
    'segment-bytes': { type: 'string', default: String(64 * 1024 * 1024) },
  },
});
if (!values.dir || !values.key || !values.origin || !values.bytes) {
  process.stderr.write('usage: fill-ledger --dir DIR --key KEYFILE --origin ORIGIN --bytes N [--segment-bytes N]\n');
  process.exit(2);
}
const target = Number(values.bytes);

const batches = encodeVariant(1000).map((r) => {
  const d = decodeLogsProtobuf(r.protobuf, { maxNestingDepth: 32 });
  if (!d.ok) throw new Error(`fill-ledger: the bench request does not decode: ${d.message}`);
  return d.entries;
});
const perBatch = batches.reduce((s, b) => s + b.reduce((t, e) => t + e.length + 44, 0), 0) / batches.length;

const ledger = await Ledger.open({
  config: {
    dir: values.dir,
    origin: values.origin,
    durability: 'none',
    max_segment_bytes: Number(values['segment-bytes']),
    max_segment_age: 3_600_000,
    seal_interval: 600_000,
    max_disk_bytes: Math.max(target * 2, 1 << 30),
  },
  signer: await loadSigner(values.key),
  logger: silentLogger(),
});
const t0 = performance.now();
let entries = 0;
let written = 0;
let i = 0;
// A few appends in flight so the group commit always has the next batch ready.
const inFlight = new Set<Promise<void>>();
while (written < target) {
  const b = batches[i++ % batches.length]!;
  const p = ledger.append(b).then((o) => {
    if (o.kind !== 'ok') throw new Error(`fill-ledger: append refused: ${o.reason}`);
    inFlight.delete(p);
  });
  inFlight.add(p);
  entries += b.length;
  written += perBatch;
  if (inFlight.size >= 4) await Promise.race(inFlight);
}
await Promise.all(inFlight);
await ledger.close();
const seconds = (performance.now() - t0) / 1000;
const segDir = path.join(values.dir, 'segments');
let bytes = 0;
let segments = 0;
for (const n of await readdir(segDir)) {
  if (!n.endsWith('.seg')) continue;
  segments++;
  bytes += (await stat(path.join(segDir, n))).size;
}
process.stdout.write(`${JSON.stringify({ entries, bytes, segments, seconds })}\n`);
