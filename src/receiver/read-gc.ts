/**
 * Young-generation garbage collections paced by the bytes the receivers read from clients.
 *
 * Why: every socket read hands the receivers a fresh Buffer (node allocates each read's memory
 * outside the V8 heap), which is garbage as soon as its bytes are copied into a pooled body or
 * message. V8 frees such buffers only when a collection of the young generation finds them dead,
 * and it starts one only when the young generation's *own* space is full — it does not count the
 * buffers' memory. Once the entries were assembled natively (src/otlp/wire.ts) the agent allocated
 * 40 % less on the V8 heap, collected a third as often, and the dead read buffers piled up between
 * collections: peak RSS under 1,000-record OTLP/HTTP requests went from 101–110 MB to 132–145 MB
 * (session 11, docs/benchmarks.md "Where the time goes"). A young collection every
 * {@link READ_GC_BYTES} read bounds them to about that much, whatever the allocation rate; it costs
 * well under a millisecond (a scavenge of a mostly dead young generation) per 8 MiB received.
 * Measured with the agent pinned as in the benchmark (/tmp driver, 6 s windows of 100- and
 * 1,000-record OTLP/HTTP and gRPC requests in turn): peak RSS 134–143 MB without, 119–132 MB with
 * 16 MiB, 106–116 MB with 8 MiB, records/s within the runs' spread.
 *
 * The collection is V8's own `gc({ type: 'minor' })`, taken once from a fresh context with the
 * `--expose-gc` flag turned on for that moment only, so no global `gc` appears in the agent.
 * SEALTRAIL_READ_GC=0 turns the pacing off (for measurements).
 *
 * Plain connections on the OTLP/HTTP fast path read into a buffer of their own (own-read.ts) and
 * allocate nothing per read, so their bytes are not counted here; TLS connections, gRPC, node:http's
 * path and connections beyond the fast path's bound still are. So are the S3 destination's uploads
 * and read-backs (src/forward/s3.ts), whose file and socket reads are fresh buffers too: an agent at
 * maximum load forwarding to S3 peaked at 166–175 MB without that, 133–134 MB with it (session 21).
 */
import v8 from 'node:v8';
import vm from 'node:vm';

/** Bytes read from clients between two paced young-generation collections. */
export const READ_GC_BYTES = 8 * 1024 * 1024;

type GcFunction = (options: { type: 'minor' | 'major' }) => void;

let gc: GcFunction | undefined | null = null; // null: not looked up yet
let sinceLast = 0;
let runs = 0;

function loadGc(): GcFunction | undefined {
  if (process.env.SEALTRAIL_READ_GC === '0') return undefined;
  try {
    v8.setFlagsFromString('--expose-gc');
    const fn: unknown = vm.runInNewContext('gc');
    return typeof fn === 'function' ? (fn as GcFunction) : undefined;
  } catch {
    return undefined;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}

/** Counts `n` bytes read from a client; every READ_GC_BYTES, collects the young generation. */
export function noteBytesRead(n: number): void {
  sinceLast += n;
  if (sinceLast < READ_GC_BYTES) return;
  sinceLast = 0;
  if (gc === null) gc = loadGc();
  if (gc === undefined) return;
  runs++;
  gc({ type: 'minor' });
}

/** Paced collections so far (tests, diagnostics). */
export function readGcRuns(): number {
  return runs;
}
