/**
 * Worker thread body for {@link ScanPool} (pool.ts): scans the chunks of one object at a time as
 * they arrive (frame-scan.ts, in place) and transfers each chunk's buffer straight back for the next
 * read; at the end posts the scan. No file is opened here: the bytes arrive in the messages, or, for
 * a sealed segment of a directory source, as windows of a descriptor the source layer opened
 * (mapped here, read in place, unmapped).
 */
import { parentPort } from 'node:worker_threads';
import { nativeFileMap } from '../ledger/native-hash.js';
import { DigestOnlyScan, SegmentScanner } from './frame-scan.js';
import type { FromWorker, ToWorker } from './pool.js';
import { scanToWire } from './scan.js';

const port = parentPort;
if (port) {
  const jobs = new Map<number, SegmentScanner | DigestOnlyScan>();
  const fail = (id: number, e: unknown): void => {
    jobs.delete(id);
    port.postMessage({ t: 'error', id, error: e instanceof Error ? e.message : String(e) } satisfies FromWorker);
  };
  port.on('message', (m: ToWorker) => {
    switch (m.t) {
      case 'start':
        jobs.set(m.id, m.parse ? new SegmentScanner({ probeSizes: m.probe, digest: m.digest }) : new DigestOnlyScan());
        return;
      case 'chunk': {
        const job = jobs.get(m.id);
        try {
          job?.push(new Uint8Array(m.buf, 0, m.len));
        } catch (e) {
          fail(m.id, e); // not a format failure (those are data): a bug or an internal error
        }
        port.postMessage({ t: 'buf', buf: m.buf } satisfies FromWorker, [m.buf]);
        return;
      }
      case 'map': {
        const job = jobs.get(m.id);
        if (!job) return;
        try {
          if (!nativeFileMap) throw new Error('file mapping is not available in this worker');
          const ab = nativeFileMap.map(m.fd, m.offset, m.length);
          try {
            job.push(new Uint8Array(ab));
          } finally {
            nativeFileMap.unmap(ab); // released by its finalizer on this thread's next turn
          }
        } catch (e) {
          fail(m.id, e);
        }
        return;
      }
      case 'end': {
        const job = jobs.get(m.id);
        if (!job) return; // already failed and answered
        jobs.delete(m.id);
        try {
          port.postMessage({ t: 'done', id: m.id, scan: scanToWire(job.end()) } satisfies FromWorker);
        } catch (e) {
          fail(m.id, e);
        }
        return;
      }
    }
  });
}
