/**
 * Verification throughput (issue 4, docs/benchmarks.md "Verify"): runs the real verifier
 * (src/verify/verifier.ts) over a ledger directory, as `sealtrail verify` does, and prints one JSON
 * line: entries, bytes, seconds, entries/s, MB/s, findings. Build a log first with
 * dist/bench/fill-ledger.js.
 *
 *   node dist/bench/verify.js --dir DIR --key PUBFILE --origin ORIGIN [--workers N]   (default 0: main thread only)
 *   node dist/bench/verify.js --dir DIR --key PUBFILE --origin ORIGIN --fill BYTES --signing-key KEYFILE
 *
 * --fill first writes a log of about BYTES with the real Ledger (durability none, 64 MiB segments,
 * 1,000-entry batches of OTLP entries of about 250 bytes each: resource and scope attributes, a
 * body, trace context — what src/otlp stores for a typical SDK record).
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { openLogSource } from '../src/cli/log-sources.js';
import { loadTrustedKey } from '../src/cli/verify-common.js';
import { verifyLog } from '../src/verify/verifier.js';
import { loadSigner } from '../src/keys/files.js';
import { Ledger } from '../src/ledger/ledger.js';
import { decodeLogsJson } from '../src/otlp/index.js';
import { silentLogger } from '../src/telemetry/logger.js';

const { values } = parseArgs({
  options: { dir: { type: 'string' }, key: { type: 'string' }, origin: { type: 'string' }, fill: { type: 'string' }, 'signing-key': { type: 'string' }, workers: { type: 'string' } },
});
if (!values.dir || !values.key || !values.origin) {
  process.stderr.write('usage: verify --dir DIR --key PUBFILE --origin ORIGIN [--fill BYTES --signing-key KEYFILE]\n');
  process.exit(2);
}

if (values.fill) {
  const target = Number(values.fill);
  const batch = (n: number): Uint8Array[] => {
    const req = {
      resourceLogs: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'checkout' } }, { key: 'host.name', value: { stringValue: 'node-a-7f9c' } }] },
          scopeLogs: [
            {
              scope: { name: 'audit', version: '1.4.2' },
              logRecords: Array.from({ length: 1000 }, (_, i) => ({
                timeUnixNano: String(1_795_000_000_000_000_000n + BigInt(n * 1000 + i)),
                severityNumber: 9,
                severityText: 'INFO',
                body: { stringValue: `user ${n * 1000 + i} updated record ${(i * 7919) % 100000} in table payments` },
                attributes: [{ key: 'user.id', value: { intValue: String(i) } }, { key: 'action', value: { stringValue: 'update' } }],
                traceId: '5b8efff798038103d269b633813fc60c',
                spanId: 'eee19b7ec3c1b174',
              })),
            },
          ],
        },
      ],
    };
    const d = decodeLogsJson(new TextEncoder().encode(JSON.stringify(req)), { maxNestingDepth: 32 });
    if (!d.ok) throw new Error(d.message);
    return d.entries;
  };
  const batches = Array.from({ length: 8 }, (_, i) => batch(i));
  const ledger = await Ledger.open({
    config: { dir: values.dir, origin: values.origin, durability: 'none', max_segment_bytes: 64 * 1024 * 1024, max_segment_age: 3_600_000, seal_interval: 600_000, max_disk_bytes: target * 2 + (1 << 30) },
    signer: await loadSigner(values['signing-key']!),
    logger: silentLogger(),
  });
  let bytes = 0;
  const t1 = performance.now();
  for (let i = 0; bytes < target; i++) {
    const b = batches[i % batches.length]!;
    const r = await ledger.append(b);
    if (r.kind !== 'ok') throw new Error(`refused: ${r.reason}`);
    bytes += b.reduce((a, e) => a + e.length + 44, 0);
  }
  await ledger.close();
  process.stderr.write(`filled ${bytes} bytes, ${ledger.treeSize} entries in ${((performance.now() - t1) / 1000).toFixed(1)} s\n`);
}
const src = await openLogSource(values.dir, { origin: values.origin, cwd: process.cwd() });
const c0 = process.cpuUsage();
const t0 = performance.now();
const workers = values.workers === undefined ? 0 : Number(values.workers);
const report = await verifyLog([src], { origin: values.origin, trusted: [loadTrustedKey(values.key, process.cwd())], workers });
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(c0);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
const s = report.sources[0]!;
process.stdout.write(
  `${JSON.stringify({
    workers,
    entries: s.entries,
    bytes: s.bytes,
    segments: s.segments,
    seconds: Number(seconds.toFixed(2)),
    entriesPerSec: Math.round(s.entries / seconds),
    mbPerSec: Number((s.bytes / 1e6 / seconds).toFixed(1)),
    cpuSeconds: Number(cpuSeconds.toFixed(2)),
    entriesPerCpuSec: Math.round(s.entries / cpuSeconds),
    findings: report.findings.length,
    rssMiB: Math.round(process.memoryUsage().rss / 1048576),
    // Peak over the whole process (main thread + workers), KiB on Linux.
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    loadavg: loadavg().map((x) => Number(x.toFixed(2))),
  })}\n`,
);
src.close();
