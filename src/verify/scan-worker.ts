/**
 * Worker thread body for {@link ScanPool}: scans the segment bytes it is sent (scan.ts) and posts
 * the result back. No I/O: the bytes arrive in the message (transferred, not copied).
 */
import { parentPort } from 'node:worker_threads';
import { scanSegment, scanToWire } from './scan.js';

interface Job {
  readonly id: number;
  readonly bytes: Uint8Array;
  readonly probe: readonly number[];
  readonly digest: boolean;
}

const port = parentPort;
if (port) {
  port.on('message', (job: Job) => {
    scanSegment([job.bytes], { probeSizes: new Set(job.probe), digest: job.digest }).then(
      (scan) => port.postMessage({ id: job.id, scan: scanToWire(scan) }),
      (e: unknown) => port.postMessage({ id: job.id, error: e instanceof Error ? e.message : String(e) }),
    );
  });
}
