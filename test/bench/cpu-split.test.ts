/**
 * bench/cpu-split.ts: where a server's CPU goes, the whole process (kernel, addon, V8, JavaScript),
 * from `perf` samples of the servers' core (issue 7: "profile and write down where the time goes").
 * The parsing and the categories are checked on fixed report text; the tool itself is run as an
 * operator would where perf can sample CPU 0 (root or perf_event_paranoid ≤ 0, linux-perf installed).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type Category, type PerfRow, type WindowResult, categorise, parsePerfReport, renderSplit, splitRows } from '../../bench/cpu-split.js';

// `perf report --stdio --no-children -g none -n --sort pid,dso,sym -t '\t'`, trimmed.
const REPORT = [
  '# To display the perf.data header info, please use --header/--header-only options.',
  '#',
  "# Samples: 1K of event 'cpu-clock:ppp'",
  '# Overhead\tSamples\tPid:Command\tShared Object\tSymbol',
  ' 40.00%  \t 400        \t  100:node           \tsealtrail_hash.node\t[.] sha256ni_leaf_x2',
  ' 20.00%  \t 200        \t  100:node           \t[kernel.kallsyms]  \t[k] copy_folio_from_iter_atomic',
  ' 10.00%  \t 100        \t  104:node           \t[kernel.kallsyms]  \t[k] ext4_da_write_end',
  ' 10.00%  \t 100        \t  100:node           \t[JIT] tid 100      \t[.] JS:*#store file:///x/dist/src/receiver/http.js:480:17',
  '  5.00%  \t 50         \t    0:swapper        \t[kernel.kallsyms]  \t[k] pv_native_safe_halt',
  '  5.00%  \t 50         \t   77:kworker/0:1H-kb\t[kernel.kallsyms]  \t[k] blk_mq_complete_request',
  '  0.01%  \t 1          \t  100:node           \tnode               \t[.] v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot>',
  '  9.99%  \t 99         \t  105:node           \tnode               \t[.] v8::internal::MarkCompactCollector::ProcessMarkingWorklist',
  '',
].join('\n');

function row(dso: string, sym: string): PerfRow {
  return { samples: 1, tid: 1, comm: 'node', dso, sym };
}

describe('bench cpu-split: perf report parsing and categories', () => {
  it('reads sample counts, thread ids, objects and symbols; skips headers and blank lines', () => {
    const rows = parsePerfReport(REPORT);
    expect(rows).toHaveLength(8);
    expect(rows[0]).toEqual({ samples: 400, tid: 100, comm: 'node', dso: 'sealtrail_hash.node', sym: 'sha256ni_leaf_x2' });
    expect(rows[4]).toEqual({ samples: 50, tid: 0, comm: 'swapper', dso: '[kernel.kallsyms]', sym: 'pv_native_safe_halt' });
    expect(rows[5]!.comm).toBe('kworker/0:1H-kb');
    expect(rows[3]!.sym).toBe('JS:*#store file:///x/dist/src/receiver/http.js:480:17');
  });

  it.each<[string, string, Category]>([
    ['sealtrail_hash.node', 'sha256ni_leaf_x2', 'addon: SHA-256 (leaves, chain, Merkle nodes)'],
    ['sealtrail_hash.node', 'sha256ni_block1', 'addon: SHA-256 (leaves, chain, Merkle nodes)'],
    ['sealtrail_hash.node', 'leaf_msg_block', 'addon: SHA-256 (leaves, chain, Merkle nodes)'],
    ['sealtrail_hash.node', 'crc32c_hw', 'addon: CRC-32C'],
    ['sealtrail_hash.node', 'ot_string', 'addon: OTLP record check'],
    ['sealtrail_hash.node', 'check_log_records', 'addon: OTLP record check'],
    ['sealtrail_hash.node', 'assemble_entries', 'addon: entry assembly and other'],
    ['[JIT] tid 9', 'JS:*#store file:///w/dist/src/receiver/http.js:480:17', 'JavaScript: sealtrail (dist/src)'],
    ['[JIT] tid 9', 'JS:*parserOnIncoming node:_http_server:1026:26', "JavaScript: node's own (http, streams, events)"],
    ['[JIT] tid 9', 'JS:*observe file:///w/node_modules/prom-client/lib/histogram.js:1:1', 'JavaScript: dependencies and unnamed'],
    ['[unknown]', '0x00007f0012345678', 'JavaScript: dependencies and unnamed'],
    ['node', 'v8::internal::MarkCompactCollector::ProcessMarkingWorklist', 'V8 garbage collection'],
    ['node', 'v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot>', 'V8 garbage collection'],
    ['node', 'v8::internal::compiler::GraphReducer::ReduceTop', 'V8 compilers'],
    ['node', 'llhttp__internal_execute', 'node HTTP parsers (llhttp, nghttp2)'],
    ['node', 'nghttp2_session_mem_recv2', 'node HTTP parsers (llhttp, nghttp2)'],
    ['node', 'node::(anonymous namespace)::Parser::Execute', 'node HTTP parsers (llhttp, nghttp2)'],
    ['node', 'Builtins_LoadIC', 'V8 builtins and runtime, node C++, libuv'],
    ['node', 'uv__io_poll', 'V8 builtins and runtime, node C++, libuv'],
    ['libc.so.6', '__memmove_avx_unaligned_erms', 'libc: memcpy, memmove, memset'],
    ['libc.so.6', '_int_malloc', 'libc: malloc, free and other'],
    ['[kernel.kallsyms]', 'copy_folio_from_iter_atomic', 'kernel: files (page-cache writes, ext4, block I/O)'],
    ['[kernel.kallsyms]', 'ext4_da_get_block_prep', 'kernel: files (page-cache writes, ext4, block I/O)'],
    ['[kernel.kallsyms]', 'tcp_sendmsg_locked', 'kernel: network (loopback TCP)'],
    ['[kernel.kallsyms]', '_copy_to_iter', 'kernel: network (loopback TCP)'],
    ['[kernel.kallsyms]', 'do_syscall_64', 'kernel: syscalls, scheduling, epoll, other'],
    ['libstdc++.so.6.0.30', 'operator delete', 'other native code'],
  ])('%s %s → %s', (dso, sym, category) => {
    expect(categorise(row(dso, sym))).toBe(category);
  });

  it("splits CPU 0's samples into the server's categories (its threads only), its main thread, other tasks and idle", () => {
    const s = splitRows(parsePerfReport(REPORT), new Set([100, 104, 105]), 100);
    expect(s.shares.get('addon: SHA-256 (leaves, chain, Merkle nodes)')).toBeCloseTo(0.4, 10);
    expect(s.shares.get('kernel: files (page-cache writes, ext4, block I/O)')).toBeCloseTo(0.3, 10); // main thread and a pool thread
    expect(s.shares.get('V8 garbage collection')).toBeCloseTo(0.1, 10);
    expect(s.server).toBeCloseTo(0.9, 10);
    expect(s.mainThread).toBeCloseTo(0.701, 10);
    expect(s.idle).toBeCloseTo(0.05, 10);
    expect(s.others).toBeCloseTo(0.05, 10); // the kworker: not the server's
    expect(s.server + s.others + s.idle).toBeCloseTo(1, 10);
    // A thread that is not the server's is never booked to it.
    expect(splitRows(parsePerfReport(REPORT), new Set([100]), 100).others).toBeCloseTo(0.05 + 0.1 + 0.099, 10);
  });

  it('renders µs per record as share × 1e6 ÷ records/s, a column per server', () => {
    const split = splitRows(parsePerfReport(REPORT), new Set([100, 104, 105]), 100);
    const w: WindowResult = { server: 'fsync', pid: 4242, recordsPerSec: 200_000, seconds: 5, cpuPct: 95, errors: {}, split };
    const text = renderSplit([w], 'http-protobuf');
    expect(text).toContain('| http-protobuf, 100-record requests, closed loop | (c) agent, fsync |');
    expect(text).toContain('| records/s | 200,000 |');
    // 40 % of one core at 200,000 records/s = 2 µs per record
    expect(text).toContain('| addon: SHA-256 (leaves, chain, Merkle nodes) | 2.000 (40.0 %) |');
    expect(text).toContain("| **the server's process in all** | **4.500 (90.0 %)** |");
    expect(text).toContain('| idle | 5.0 % |');
    expect(text).not.toContain('addon: CRC-32C'); // categories nobody used are left out
  });

  it('names an open-loop window by its rate', () => {
    const split = splitRows(parsePerfReport(REPORT), new Set([100, 104, 105]), 100);
    const w: WindowResult = { server: 'fsync', pid: 4242, recordsPerSec: 130_000, seconds: 5, cpuPct: 55, errors: {}, split };
    const text = renderSplit([w], 'grpc', 1300);
    expect(text).toContain('| grpc, 100-record requests, open loop at 1,300 requests/s | (c) agent, fsync |');
    expect(text).not.toContain('closed loop');
  });
});

const TOOL = 'dist/bench/cpu-split.js';

function run(args: string[], timeout = 60_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [TOOL, ...args], { encoding: 'utf8', timeout });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function perfCanSampleCpu0(): boolean {
  const r = spawnSync('perf', ['record', '-q', '-e', 'cpu-clock', '-C', '0', '-o', '/dev/null', '--', 'true'], { encoding: 'utf8' });
  return !r.error && r.status === 0;
}

describe('bench cpu-split tool', () => {
  it.each([
    [['--servers', 'bare,x'], /--servers bare,x: each must be bare, none or fsync/],
    [['--transport', 'udp'], /--transport must be one of http-protobuf, http-json, grpc/],
    [['--seconds', '0'], /--seconds must be from 1 to 120/],
    [['--warmup', '200'], /--warmup must be from 0 to 120 seconds/],
    [['--concurrency', '1.5'], /--concurrency must be a whole number/],
    [['--rate', '0'], /--rate must be from 1 to 1000000 requests\/s/],
    [['--rate', 'fast'], /--rate must be from 1 to 1000000 requests\/s/],
    [['--segment-bytes', '100'], /--segment-bytes must be a whole number of bytes, at least 4096/],
    [['--transport', 'grpc', '--chunked'], /--chunked is for OTLP\/HTTP transports/],
    [['--transport', 'grpc', '--tls', '--servers', 'fsync'], /--tls is for OTLP\/HTTP transports/],
    [['--tls'], /--tls measures the agents only .*use --servers none,fsync/],
    [['--bogus'], /Unknown option '--bogus'/],
  ])('refuses %j with exit 2 and says why, before starting anything', (args, why) => {
    const r = run(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(why);
    expect(r.stderr).toContain('usage: node dist/bench/cpu-split.js');
    expect(r.stdout).toBe('');
  });

  // Written reason: needs Linux perf with the right to sample a CPU (.ci/run installs linux-perf; CI runs as root).
  it.skipIf(!perfCanSampleCpu0())('a 1-second window each for the bare receiver and the fsync agent: the table books SHA-256 to the agent only', () => {
    const v8Logs = (): string[] => readdirSync('.').filter((f) => /^isolate-.*-v8\.log$/.test(f));
    const logsBefore = v8Logs();
    const r = run(['--servers', 'bare,fsync', '--seconds', '1', '--warmup', '1', '--concurrency', '8'], 120_000);
    expect(r.status, r.stderr).toBe(0);
    // Nothing left behind: no V8 log in the working directory (nor in the output), no perf map of a server in /tmp.
    expect(v8Logs()).toEqual(logsBefore);
    expect(r.stdout).not.toMatch(/^(new|delete),(CodeRange|MemoryChunk)/m);
    const pids = [...r.stdout.matchAll(/\(pid (\d+)\)/g)].map((m) => m[1]);
    expect(pids).toHaveLength(2);
    for (const pid of pids) expect(existsSync(`/tmp/perf-${pid}.map`)).toBe(false);
    const line = (label: string): string[] => {
      const l = r.stdout.split('\n').find((x) => x.startsWith(`| ${label} |`));
      expect(l, r.stdout).toBeDefined();
      return l!.split('|').slice(2, -1).map((c) => c.trim());
    };
    const num = (cell: string): number => Number.parseFloat(cell.replace(/\*/g, ''));
    const [bareRate, agentRate] = line('records/s').map((c) => Number(c.replace(/,/g, '')));
    expect(bareRate).toBeGreaterThan(1000);
    expect(agentRate).toBeGreaterThan(1000);
    const sha = line('addon: SHA-256 (leaves, chain, Merkle nodes)').map(num);
    expect(sha[0]).toBe(0);
    expect(sha[1]).toBeGreaterThan(0);
    const all = line("**the server's process in all**").map(num);
    for (const us of all) expect(us).toBeGreaterThan(0);
    expect(r.stdout).toMatch(/\(c\) agent, fsync \(pid \d+\): [\d.]+ s, process CPU \d+ %/);
  });

  // Written reason: as above (perf must be able to sample CPU 0).
  it.skipIf(!perfCanSampleCpu0())('--rate drives the agent open loop at that rate: its records/s is the rate × 100 records', () => {
    const r = run(['--servers', 'fsync', '--seconds', '2', '--warmup', '1', '--rate', '200', '--transport', 'grpc'], 120_000);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('| grpc, 100-record requests, open loop at 200 requests/s | (c) agent, fsync |');
    const rate = Number(/\| records\/s \| ([\d,]+) \|/.exec(r.stdout)?.[1]?.replace(/,/g, ''));
    // 200 requests/s × 100 records: an open loop does not go faster when the agent could (a closed
    // loop of 64 takes well over 50,000 records/s here); the margins leave room for a busy CI machine.
    expect(rate).toBeGreaterThan(16_000);
    expect(rate).toBeLessThan(24_000);
    // (No assertion on CPU 0's idle share: under the parallel test run other work shares that core.)
    expect(r.stdout).toMatch(/\| idle \| [\d.]+ % \|/);
  });
});
