/**
 * bench/procs.ts: the per-CPU counters the harness reads from /proc/stat to report steal — the time
 * the hypervisor took from the servers' virtual CPU while it had work (issue 7's figures per run).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cpuTicks, freePageReporting, memory, memoryFromStatus, stealPct } from '../../bench/procs.js';

// Two readings in /proc/stat's format: user nice system idle iowait irq softirq steal guest guest_nice.
const A = 'cpu  300 0 100 900 50 0 10 40 0 0\ncpu0 200 0 60 400 30 0 5 30 0 0\ncpu1 100 0 40 500 20 0 5 10 0 0\nintr 1 2 3\n';
const B = 'cpu  500 0 150 1000 60 0 12 70 0 0\ncpu0 350 0 90 430 35 0 6 59 7 0\ncpu1 150 0 60 570 25 0 6 11 0 0\nintr 1 2 3\n';

describe('bench procs: CPU steal from /proc/stat', () => {
  it('reads one CPU line: steal and the total of its eight states (guest time is already in user)', () => {
    expect(cpuTicks(0, A)).toEqual({ steal: 30, total: 200 + 60 + 400 + 30 + 5 + 30 });
    expect(cpuTicks(1, A)).toEqual({ steal: 10, total: 100 + 40 + 500 + 20 + 5 + 10 });
    // cpu1 must not be read from the cpu1x line of a larger machine, nor cpu from the sum line
    expect(cpuTicks(1, 'cpu10 1 1 1 1 1 1 1 9 0 0\n')).toBeUndefined();
    expect(cpuTicks(3, A)).toBeUndefined();
    expect(cpuTicks(0, 'cpu0 1 2 3\n')).toBeUndefined();
  });

  it('steal between two readings is its share of the time that passed', () => {
    // cpu0: steal 30 → 59 (29 ticks) of a total 725 → 970 (245 ticks; guest 7 is not added)
    expect(stealPct(cpuTicks(0, A), cpuTicks(0, B))).toBeCloseTo((29 / 245) * 100, 10);
    expect(stealPct(cpuTicks(1, A), cpuTicks(1, B))).toBeCloseTo((1 / 147) * 100, 10);
    expect(stealPct(undefined, cpuTicks(0, B))).toBeUndefined();
    expect(stealPct(cpuTicks(0, A), cpuTicks(0, A))).toBeUndefined(); // no time passed
  });

  it.runIf(existsSync('/proc/stat'))("reads this machine's CPU 0", () => {
    const t = cpuTicks(0);
    expect(t).toBeDefined();
    expect(t!.total).toBeGreaterThan(0);
    expect(t!.steal).toBeGreaterThanOrEqual(0);
    expect(t!.steal).toBeLessThanOrEqual(t!.total);
  });
});

describe('bench procs: does the virtio balloon hand freed memory back to the host', () => {
  /** A fake /sys/bus/virtio/devices with the given devices: [device id, feature bits]. */
  function sys(devices: [string, string][]): string {
    const d = mkdtempSync(path.join(os.tmpdir(), 'sealtrail-virtio-'));
    devices.forEach(([id, features], i) => {
      mkdirSync(path.join(d, `virtio${i}`));
      writeFileSync(path.join(d, `virtio${i}`, 'device'), `${id}\n`);
      writeFileSync(path.join(d, `virtio${i}`, 'features'), `${features}\n`);
    });
    return d;
  }
  it('reads feature bit 5 (free page reporting) of the balloon (device 5), not of other devices', () => {
    const dirs = [
      sys([['0x0002', '0000011111'], ['0x0005', '0110010100']]), // the benchmark VM's balloon: bits 1, 2, 5, 7
      sys([['0x0005', '0110000100']]), // a balloon without it
      sys([['0x0002', '1111111111']]), // no balloon
    ];
    try {
      expect(freePageReporting(dirs[0])).toBe(true);
      expect(freePageReporting(dirs[1])).toBe(false);
      expect(freePageReporting(dirs[2])).toBeUndefined();
      expect(freePageReporting(path.join(dirs[2]!, 'missing'))).toBeUndefined();
    } finally {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('bench procs: memory from /proc/PID/status', () => {
  it('reads VmRSS and VmHWM in bytes', () => {
    const status = 'Name:\tnode\nState:\tS (sleeping)\nVmHWM:\t  131072 kB\nVmRSS:\t   98304 kB\nThreads:\t11\n';
    expect(memoryFromStatus(status, 42)).toEqual({ rss: 98304 * 1024, hwm: 131072 * 1024 });
    const own = memory(process.pid);
    expect(own.rss).toBeGreaterThan(0);
    expect(own.hwm).toBeGreaterThanOrEqual(own.rss);
  });

  it('an exited process not yet reaped (a zombie: no memory lines) throws instead of giving NaN', () => {
    const zombie = 'Name:\tnode\nState:\tZ (zombie)\nTgid:\t4242\nThreads:\t1\n';
    expect(() => memoryFromStatus(zombie, 4242)).toThrow(/4242.*has exited/);
  });
});
