/**
 * bench/report.ts: how closed-loop rounds become the reported figures — the median round per server,
 * ratios taken within a round (neighbours in time), and the targets judged on those (issue 7).
 */
import { describe, expect, it } from 'vitest';
import { type BenchReport, type Row, closedRow, diskRows, fRatio, lowerMedian, renderTable, roundRatios, soakRefusals, targetsOf } from '../../bench/report.js';

function row(server: Row['server'], recordsPerSec: number, round?: number, extra: Partial<Row> = {}): Row {
  return {
    server,
    transport: 'http-protobuf',
    records: 100,
    mode: 'closed',
    concurrency: 32,
    seconds: 4,
    requestsPerSec: recordsPerSec / 100,
    recordsPerSec,
    payloadMBps: 1,
    latencyMs: { p50: 1, p99: 2, max: 3 },
    cpuPct: 90,
    loadgenCpuPct: 20,
    peakRssMB: 100,
    statuses: { 'http 200': 1 },
    monoWindowUs: [0, 1],
    ...(round !== undefined ? { round } : {}),
    ...extra,
  };
}

function report(rows: Row[]): BenchReport {
  return {
    command: 'npm run bench',
    date: '2026-11-29T00:00:00.000Z',
    quick: false,
    machine: { nproc: 2, cpuModel: 'x', node: 'v20', kernel: 'k', memGiB: 1, loadAvgStart: [0, 0, 0], taskset: true, tmpDisk: 'd' },
    settings: { warmupMs: 1000, mainMs: 4000, rounds: 3, variantMs: 4000, openMs: 5000, concurrency: 32, agentCpu: 0, loadgenCpu: 1 },
    rows,
    forwarding: [],
  };
}

describe('bench report: rounds', () => {
  it('lowerMedian takes the middle value, the lower of the two middles for an even count', () => {
    expect(lowerMedian([3, 1, 2])).toBe(2);
    expect(lowerMedian([4, 1, 3, 2])).toBe(2);
    expect(lowerMedian([7])).toBe(7);
    expect(lowerMedian([])).toBeNaN();
  });

  it('the closed-loop figure of a server is its median round, a whole window', () => {
    const rows = [row('fsync', 150_000, 1, { peakRssMB: 91 }), row('fsync', 210_000, 2, { peakRssMB: 92 }), row('fsync', 190_000, 3, { peakRssMB: 93 })];
    const m = closedRow({ rows }, 'fsync', 'http-protobuf');
    expect(m?.recordsPerSec).toBe(190_000);
    expect(m?.peakRssMB).toBe(93);
    // soak and open-loop windows of the same server are not rounds
    const more = [...rows, row('fsync', 1_000, undefined, { soak: true }), row('fsync', 999_999, undefined, { mode: 'open' })];
    expect(closedRow({ rows: more }, 'fsync', 'http-protobuf')?.recordsPerSec).toBe(190_000);
  });

  it('ratios pair the windows of the same round and report their median', () => {
    // Round 1 the disk was slow: c/b 0.60; the other rounds 0.95 and 0.97. The ratio of the two
    // servers' median rounds would be 190/230 = 0.83; the within-round median is 0.95.
    const rows = [
      row('none', 250_000, 1),
      row('fsync', 150_000, 1),
      row('none', 200_000, 2),
      row('fsync', 190_000, 2),
      row('none', 230_000, 3),
      row('fsync', 223_100, 3),
    ];
    const q = roundRatios({ rows }, 'fsync', 'none', 'http-protobuf');
    expect(q?.each.map((x) => x.toFixed(2))).toEqual(['0.60', '0.95', '0.97']);
    expect(q?.median).toBeCloseTo(0.95, 10);
    const t = targetsOf(report(rows)).find((x) => x.what.startsWith('group commit: fsync ÷ none, OTLP/HTTP protobuf'));
    expect(t?.met).toBe(true);
    expect(t?.measured).toBe('0.95 (rounds 0.60, 0.95, 0.97)');
    const thr = targetsOf(report(rows)).find((x) => x.what.startsWith('OTLP/HTTP protobuf, 100-record'));
    expect(thr?.measured).toBe('190,000 records/s (median of 3 rounds: 150.0k, 190.0k, 223.1k)');
    expect(thr?.met).toBe(false);
  });

  it('a round measured for only one of the two servers is left out of the ratio', () => {
    const rows = [row('fsync', 100_000, 1), row('none', 200_000, 2), row('fsync', 150_000, 2), row('none', 400_000, 3), row('fsync', 360_000, 3)];
    expect(roundRatios({ rows }, 'fsync', 'none', 'http-protobuf')?.each).toEqual([0.75, 0.9]);
  });

  it('the table shows one row per server (its median round) with every round, and older one-window reports as before', () => {
    // windows listed fsync first: the table still shows (b) before (c)
    const rows = [row('fsync', 180_000, 1), row('none', 200_000, 1), row('fsync', 210_000, 2), row('none', 220_000, 2), row('fsync', 200_000, 3), row('none', 210_000, 3)];
    const r = report(rows);
    const text = renderTable(r);
    // rows in server order (a, b, c) whichever round was the median
    const servers = text.split('\n').filter((l) => /^\| OTLP\/HTTP protobuf \| \((a|b|c)\)/.test(l)).map((l) => l.split('|')[2]!.trim().slice(0, 3));
    expect(servers).toEqual(['(b)', '(c)']);
    const lines = text.split('\n').filter((l) => l.startsWith('| OTLP/HTTP protobuf | (c)'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('| 200,000 |');
    expect(lines[0]).toContain('| 180,000, 210,000, 200,000 |');
    expect(text).toContain('3 rounds of a, b, c in turn');
    expect(text).toContain('several rounds of a, b, c in turn;');
    const alt = renderTable({ ...r, settings: { ...r.settings, alternating: 1 } });
    expect(alt).toContain('3 rounds of a, b, c and a, c, b in turn');
    expect(alt).toContain('several rounds of a, b, c and a, c, b in turn;');
    const single = renderTable({ ...report([row('none', 200_000), row('fsync', 190_000)]), settings: { warmupMs: 1000, mainMs: 8000, variantMs: 4000, openMs: 5000, concurrency: 32, agentCpu: 0, loadgenCpu: 1 } });
    expect(single).not.toContain('in each round');
    expect(single).toContain('| OTLP/HTTP protobuf | 0.95 |');
  });

  it("the disk table pairs agent (c)'s median round with the disk probe of that same round", () => {
    // 4 s windows; round 2 is the median. 100 commits × 3,000 entries = 300,000 entries in 189 MB: 630 bytes each.
    const c = (rps: number, round: number, writtenMB: number): Row => row('fsync', rps, round, { groupCommits: 100, avgBatchEntries: 3000, writtenMB, commitSeconds: 3.6 });
    const rows = [c(150_000, 1, 100), c(190_000, 2, 189), c(230_000, 3, 250)];
    const probe = (round: number, MBps: number) => ({ transport: 'http-protobuf' as const, round, chunkBytes: 1_890_000, commits: 100, seconds: 1.5, MBps, p50Ms: 5, p99Ms: 9, maxMs: 12 });
    const r: BenchReport = { ...report(rows), disk: [probe(1, 100), probe(3, 300), probe(2, 252)], settings: { ...report(rows).settings, diskMs: 1500 } };
    const d = diskRows(r);
    expect(d).toHaveLength(1);
    expect(d[0]!.row.round).toBe(2);
    expect(d[0]!.bytesPerEntry).toBeCloseTo(630, 6);
    expect(d[0]!.probe?.MBps).toBe(252);
    const text = renderTable(r);
    const line = text.split('\n').find((l) => l.startsWith('| OTLP/HTTP protobuf | 190,000 |'));
    // written 189 MB in 4 s; 3.6 s of commits; the disk alone at 252 MB/s allows 252e6 / 630 = 400,000 records/s
    expect(line).toBe('| OTLP/HTTP protobuf | 190,000 | 630 | 47.3 | 90 % | 52.5 | 1.89 MB, 252.0, 5.00 / 9.00 | 400,000 | 252.0 (400,000 records/s) |');
    expect(text).toContain('for 1500 ms right after');
    expect(text).not.toContain('dropped from the page cache');
    expect(text).not.toContain('virtio balloon'); // reports without the field say nothing about it
    const vm = (fpr: boolean): string => renderTable({ ...r, machine: { ...r.machine, freePageReporting: fpr } });
    expect(vm(true)).toMatch(/^Machine: .*; virtio balloon with free page reporting \(freed memory goes back to the host/m);
    expect(vm(false)).toMatch(/^Machine: .*; virtio balloon without free page reporting/m);
    // since session 18 the probe drops its pages as agent (c) does, and the sentence says so
    const dropping = renderTable({ ...r, settings: { ...r.settings, diskDrop: 1 } });
    expect(dropping).toContain("fdatasync'd before the next and then dropped from the page cache, as agent (c) does since session 18 (`--drop`), for 1500 ms");
    // since session 19 it commits through agent (c)'s own commit writer, and the sentence says that instead
    const writing = renderTable({ ...r, settings: { ...r.settings, diskWriter: 1, diskDrop: 0 } });
    expect(writing).toContain("each committed by agent (c)'s own commit writer before the next — whole 4 KiB blocks written with O_DIRECT, the block a commit ends in through the page cache, then fdatasync, as agent (c) writes since session 19 (`--writer`), for 1500 ms");
    expect(writing).not.toContain('dropped from the page cache');
    // no probe for that round: the agent's figures still shown, the disk's as –
    const noProbe = diskRows({ rows, disk: [probe(1, 100)] });
    expect(noProbe[0]!.probe).toBeUndefined();
    // reports from before the disk figures have no disk table
    expect(renderTable(report([row('fsync', 190_000, 1)]))).not.toContain('#### Disk');
  });

  it("shows the steal on the servers' CPU next to the server's CPU where it was measured, and explains it once", () => {
    const text = renderTable(report([row('none', 200_000, 1, { stealPct: 11.4 }), row('fsync', 190_000, 1, { stealPct: 2.6 })]));
    const c = text.split('\n').find((l) => l.startsWith('| OTLP/HTTP protobuf | (c)'));
    expect(c).toContain('| 90 % / 20 % (steal 3 %) |');
    expect(text.split('\n').find((l) => l.startsWith('| OTLP/HTTP protobuf | (b)'))).toContain('(steal 11 %)');
    expect(text.match(/^Steal: /gm)).toHaveLength(1);
    const before = renderTable(report([row('none', 200_000, 1), row('fsync', 190_000, 1)]));
    expect(before).not.toMatch(/\(steal|^Steal: /m);
  });

  it('a p99 target taken in an overloaded open-loop window says so (refusals, or fewer acknowledged than scheduled)', () => {
    const open = (extra: Partial<Row>): Row =>
      row('fsync', 94_000, undefined, { mode: 'open', rate: 964, rateShare: 0.5, seconds: 5, requestsPerSec: 945, scheduled: 4820, latencyMs: { p50: 3, p99: 131.07, max: 176 }, ...extra });
    const target = (o: Row): string => targetsOf(report([row('fsync', 190_000, 1), o])).find((t) => t.what === 'p99 ack latency at 50 % of max rate, OTLP/HTTP protobuf')!.measured;
    expect(target(open({ statuses: { 'http 200': 4725, 'http 429': 106 } }))).toBe('131.07 ms (at 964 req/s; overloaded: 106 requests refused, 4,725 of 4,820 scheduled acknowledged)');
    // behind without refusals: acknowledged 4,725 of 4,820 (98 %)
    expect(target(open({ statuses: { 'http 200': 4725 } }))).toBe('131.07 ms (at 964 req/s; overloaded: 4,725 of 4,820 scheduled acknowledged)');
    // kept up: 4,800 of 4,820 (99.6 %), nothing refused
    expect(target(open({ statuses: { 'http 200': 4800 }, requestsPerSec: 960 }))).toBe('131.07 ms (at 964 req/s)');
  });

  it('a ratio just below 0.90 is not shown as 0.90', () => {
    expect(fRatio(0.8957)).toBe('0.896');
    expect(fRatio(0.8949)).toBe('0.89');
    expect(fRatio(0.9)).toBe('0.90');
    expect(fRatio(0.9049)).toBe('0.90');
    expect(fRatio(1.234)).toBe('1.23');
  });

  it('the header says whether the OTLP/protobuf record check and entry assembly ran natively', () => {
    const r = report([row('fsync', 180_000, 1)]);
    expect(renderTable(r)).not.toMatch(/OTLP\/protobuf decoding/); // reports from before session 11 lack it
    r.machine.nativeOtlp = { recordCheck: true, entryAssembly: false };
    expect(renderTable(r)).toMatch(/^OTLP\/protobuf decoding: LogRecords checked natively, entries assembled in JS {2}$/m);
  });

  it('the header says when agents (b) and (c) were started anew on empty ledgers between phases, how often, and how long a fresh process warms up', () => {
    const r = report([row('fsync', 180_000, 1)]);
    expect(renderTable(r)).not.toMatch(/started anew/); // one process each (older reports, or --cpu-prof)
    r.settings.agentLives = 4;
    expect(renderTable(r)).toMatch(/before each transport's 100-record rounds after the first/);
    r.settings.renewPerRound = 1;
    expect(renderTable(r)).toMatch(/before each 100-record round after the first and before each later phase: 4 processes each/);
    r.settings.coldWarmupMs = 5000;
    expect(renderTable(r)).toMatch(/^Windows: 1000 ms warm-up \(5000 ms before the first window of each server process\), then 4000 ms/m);
    expect(renderTable(r)).toMatch(/^Agents: .* Agents \(b\) and \(c\) started anew on empty ledgers .*: 4 processes each; \(c\)'s peak RSS is the highest of its processes\.$/m);
  });

  it("the sustained run's line shows refused requests, and says so when the harness's ledger budget was why", () => {
    const soak = { seconds: 300, recordsPerSec: 356_901, peakRssMB: 109.8, firstThirdMeanMB: 101.7, lastThirdMeanMB: 105.0, hwmMB: 110 };
    const budget = 64 * 2 ** 30;
    const line = (s: BenchReport['soak']): string => renderTable({ ...report([row('fsync', 180_000, 1)]), soak: s }).split('\n').find((l) => l.startsWith('| sustained load, 300 s'))!;
    // nothing refused (and reports from before session 19): the line as it was
    expect(line(soak)).toBe('| sustained load, 300 s OTLP/HTTP protobuf at maximum (c) | 356,901 records/s; RSS mean first third 101.7 MB, last third 105.0 MB, peak 109.8 MB |');
    expect(soakRefusals({ ...soak, refused: {}, writtenMB: 67_600, budgetBytes: budget })).toBe('');
    // refused once the ledger had written about its budget: says so (session 19's full runs)
    expect(line({ ...soak, refused: { 'http 503': 271_962 }, writtenMB: 67_600, budgetBytes: budget })).toContain(
      'peak 109.8 MB; 271,962 requests refused (http 503: 271,962) — the ledger had written 67.6 GB, the harness\'s budget (max_disk_bytes 64.0 GiB, nothing forwarded or released), after which the agent refuses appends as disk_full: the records/s is below what the agent sustained while it had room |',
    );
    // refused for another reason (far below the budget): the refusals only, no reason made up
    const other = soakRefusals({ ...soak, refused: { 'http 429': 12, 'http 503': 3 }, writtenMB: 20_000, budgetBytes: budget });
    expect(other).toBe('; 15 requests refused (http 429: 12, http 503: 3)');
  });

  it("forwarding rows show the forwarding agent's peak RSS and segment size where the run measured them", () => {
    const f = { destination: 'fs', segments: 16, bytes: 268.9e6, complete: true, secondsFromSpawn: 3.2, firstObjectAfterS: 1.3, MBps: 174.7 };
    const line = (x: BenchReport['forwarding'][number]): string =>
      renderTable({ ...report([row('fsync', 180_000, 1)]), forwarding: [x] }).split('\n').find((l) => l.startsWith('| forwarding a backlog of 16'))!;
    expect(line({ ...f, peakRssMB: 144.5, segmentBytes: 16 * 2 ** 20 })).toContain("174.7 MB/s between the first and the last confirmed object (268.9 MB); first object confirmed 1.3 s after the agent was spawned; the agent's peak RSS (VmHWM) 144.5 MB with 16.0 MiB segments |");
    // Reports from before session 20 have neither: the row reads as it did.
    expect(line(f)).toMatch(/after the agent was spawned \|$/);
  });

  it('the loaded phase: a memory target per destination (VmHWM of the forwarding agent) and a line with what it forwarded', () => {
    const l = {
      destination: 's3',
      seconds: 15,
      recordsPerSec: 196_633,
      refused: {},
      peakRssMB: 167.0,
      hwmMB: 169.5,
      forwardedMB: 1745.6,
      forwardedObjects: 27,
      sealedSegments: 64,
      lagSegmentsAtEnd: 38,
      segmentBytes: 64 * 2 ** 20,
    };
    const fs = { ...l, destination: 'fs', hwmMB: 110.8, recordsPerSec: 254_497, refused: { 'http 503': 4 } };
    const r = { ...report([row('fsync', 180_000, 1)]), loaded: [fs, l] };
    const t = targetsOf(r).filter((x) => x.what.startsWith('agent peak RSS at maximum load while forwarding'));
    expect(t.map((x) => [x.what, x.measured, x.met])).toEqual([
      ['agent peak RSS at maximum load while forwarding to fs (VmHWM over its life)', '110.8 MB (254,497 records/s; 4 requests refused (http 503: 4))', true],
      ['agent peak RSS at maximum load while forwarding to s3 (VmHWM over its life)', '169.5 MB (196,633 records/s)', false],
    ]);
    const line = renderTable(r).split('\n').find((x) => x.startsWith('| maximum load, 15 s OTLP/HTTP protobuf, on an agent (c) forwarding to s3'))!;
    expect(line).toContain('(64.0 MiB segments, quorum 1) | 196,633 records/s; peak RSS 167.0 MB in the window, VmHWM 169.5 MB; 64 segments sealed and 27 objects (1745.6 MB) forwarded since its start, 38 segments not yet forwarded at the end |');
    expect(renderTable(r)).toContain("The loaded phase's agents (fs, s3) each have one destination and forward what they seal.");
    // Reports from before session 21 have no loaded phase: no such targets.
    expect(targetsOf(report([row('fsync', 180_000, 1)])).some((x) => x.what.includes('while forwarding'))).toBe(false);
  });

  it('open-loop rows name the maxima their rate is a share of (median round, window right before)', () => {
    const open = (share: number, rate: number) =>
      row('fsync', rate * 100, undefined, { mode: 'open', rate, rateShare: share, rateOf: { medianRoundRps: 3140, rightBeforeRps: 2312 } });
    const text = renderTable(report([row('fsync', 314_000, 1), open(0.5, 1156), open(0.8, 1850)]));
    expect(text).toContain('lower of agent (c)’s median round and a closed-loop window measured right before');
    const lines = text.split('\n').filter((l) => l.startsWith('| OTLP/HTTP protobuf | 50 %') || l.startsWith('| OTLP/HTTP protobuf | 80 %'));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain('| 1,156 / 1,156 | 3,140 / 2,312 |');
    // older reports without the basis: no such column
    const old = renderTable(report([row('fsync', 314_000, 1), row('fsync', 115_600, undefined, { mode: 'open', rate: 1156, rateShare: 0.5 })]));
    expect(old).not.toContain('median round / right before');
  });

  it('open-loop rows are listed by transport, then by share, and the heading names the shares measured', () => {
    const open = (share: number, transport: Row['transport'] = 'http-protobuf') =>
      row('fsync', 250_000 * share, undefined, { mode: 'open', transport, rate: 5000 * share, rateShare: share });
    // measured as the harness does since session 22: 50 %, 80 %, then 40 %, transport by transport
    const text = renderTable(report([row('fsync', 500_000, 1), open(0.5), open(0.8), open(0.4), open(0.5, 'grpc'), open(0.8, 'grpc'), open(0.4, 'grpc')]));
    expect(text).toContain('latency at 40 %, 50 % and 80 % of the measured maximum');
    const order = text
      .split('\n')
      .filter((l) => /^\| (OTLP\/HTTP protobuf|OTLP\/gRPC) \| \d+ % \|/.test(l))
      .map((l) => l.split(' | ').slice(0, 2).join(' '));
    expect(order).toEqual(['| OTLP/HTTP protobuf 40 %', '| OTLP/HTTP protobuf 50 %', '| OTLP/HTTP protobuf 80 %', '| OTLP/gRPC 40 %', '| OTLP/gRPC 50 %', '| OTLP/gRPC 80 %']);
    // the p99 target is still taken at 50 %
    const t = targetsOf(report([row('fsync', 500_000, 1), open(0.4), open(0.5), open(0.8)])).find((x) => x.what.startsWith('p99 ack latency at 50 %'));
    expect(t?.measured).toContain('at 2,500 req/s');
    // reports from before session 22 (50 % and 80 % only) keep their heading
    expect(renderTable(report([row('fsync', 500_000, 1), open(0.5), open(0.8)]))).toContain('latency at 50 % and 80 % of the measured maximum');
  });

  it("open-loop rows give agent (c)'s CPU per record in the window and in its median closed round", () => {
    // 85 % of a core for 250,000 records/s is 3.40 µs per record; the median round 99 % for 550,000 is 1.80
    const rounds = [row('fsync', 500_000, 1, { cpuPct: 97 }), row('fsync', 550_000, 2, { cpuPct: 99 }), row('fsync', 600_000, 3, { cpuPct: 98 })];
    const text = renderTable(report([...rounds, row('fsync', 250_000, undefined, { mode: 'open', rate: 2500, rateShare: 0.5, cpuPct: 85 })]));
    expect(text).toContain('| agent CPU µs per record: here / median closed round |');
    const line = text.split('\n').find((l) => l.startsWith('| OTLP/HTTP protobuf | 50 %'));
    expect(line).toMatch(/\| 3\.40 \/ 1\.80 \|$/);
    // no closed round of that transport: a dash
    const alone = renderTable(report([row('fsync', 250_000, undefined, { mode: 'open', rate: 2500, rateShare: 0.5, cpuPct: 85 })]));
    expect(alone.split('\n').find((l) => l.startsWith('| OTLP/HTTP protobuf | 50 %'))).toMatch(/\| 3\.40 \/ – \|$/);
  });

  it('open-loop rows show how late the load generator sent (reports from before session 17 have no such column)', () => {
    const open = (late?: { p50: number; p99: number }) =>
      row('fsync', 115_600, undefined, { mode: 'open', rate: 1156, rateShare: 0.5, ...(late ? { sendLateMs: late } : {}) });
    const text = renderTable(report([row('fsync', 314_000, 1), open({ p50: 0.587, p99: 1.74 })]));
    expect(text).toContain('| sent late p50 / p99 (ms) |');
    expect(text).toContain('It includes how late the load generator sent each request');
    const line = text.split('\n').find((l) => l.startsWith('| OTLP/HTTP protobuf | 50 %'));
    expect(line).toContain('| 0.59 / 1.74 |');
    const old = renderTable(report([row('fsync', 314_000, 1), open()]));
    expect(old).not.toContain('sent late');
  });
});
