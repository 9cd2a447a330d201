/**
 * The ledger: the one writer of the log (DESIGN.md "The log and its formats", G1, G2, G3).
 *
 * - Group commit (G1): appends are encoded as they arrive (frames with CRC and chain, leaves into the
 *   Merkle frontier: every hash once per entry) and handed to the commit writer (commit-sink.ts),
 *   which writes everything handed over during a commit as the next one with one fdatasync; only
 *   then are those appends resolved. A write or fsync error is never ignored: the ledger switches to
 *   `failed` and refuses every pending and later append with the retryable `ledger_failed`, and the
 *   writer writes nothing more.
 * - Sealing on max_segment_bytes, max_segment_age and close: trailer with a signed checkpoint,
 *   fsync, rename `.seg.open` → `.seg`, next open segment, fsync of the directories; appends go on
 *   into the next segment while the seal is published (#finishSeal).
 * - Recovery adopts a next segment that a crash during publishing left under its temporary name.
 * - Heartbeat checkpoints at least every seal_interval, even with no traffic.
 * - Recovery in `open`: torn tail cut (recovery.ts), last checkpoint re-verified against the
 *   recomputed tree, an unsealed segment sealed, corruption before the tail refused.
 * - Disk budget (G2): open + unreleased sealed segments + checkpoint files; at the limit, appends
 *   are refused with the retryable `disk_full`.
 *
 * Directory layout and every byte: docs/format.md "Ledger directory" and "Segments".
 */
import * as path from 'node:path';
import type { LedgerConfig } from '../config/schema.js';
import { SealtrailError, errorMessage } from '../errors.js';
import type { Signer } from '../keys/keys.js';
import { verifierFor } from '../keys/keys.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import {
  type Checkpoint,
  type CheckpointKind,
  formatCheckpoint,
  parseCheckpointBody,
  parseSignedNote,
  signCheckpoint,
} from './checkpoint.js';
import { type CommitResult, type CommitSink, commitSink } from './commit-sink.js';
import { type FileOp, type FileOpsRunner, fileOpsRunner } from './file-ops.js';
import { type LedgerFs, type SealedBytes, nodeLedgerFs } from './fs.js';
import { HASH_SIZE, chainSeed, hashEqual } from './hash.js';
import { Frontier } from './merkle.js';
import { frontierAppend, nativeHashStatus, nativeSyncDrop, nativeWriteDurable } from './native-hash.js';
import { type SegmentScan, ZERO_TAIL, scanSegment } from './recovery.js';
import {
  FRAME_OVERHEAD,
  MAX_ENTRY_BYTES,
  OPEN_SEGMENT_SUFFIX,
  type SegmentHeader,
  SegmentFormatError,
  decodeHeader,
  encodeHeader,
  encodeTrailer,
  finishFrames,
  parseSegmentFileName,
  segmentFileName,
} from './segment-format.js';
import { type AppendOutcome, type EntrySink, type Entries, FRAME_HEAD_ROOM, FRAME_TAIL_ROOM, FramedEntries, type RefusalReason, entryCount } from './types.js';

/** A sealed segment still held locally (not yet released by forwarding). */
export interface SealedSegmentInfo {
  /** File name, e.g. "0000000000000007.seg" (also the name at every destination). */
  readonly name: string;
  readonly path: string;
  readonly seq: number;
  readonly firstIndex: number;
  readonly count: number;
  readonly bytes: number;
  /** Name of the seal checkpoint's file in checkpoints/. */
  readonly checkpointName: string;
}

/** A checkpoint file in checkpoints/ (one signed note). */
export interface CheckpointInfo {
  /** File name: `<seq16>-<size16>-<toMs15>-<kind>.cp`; names sort in creation order. */
  readonly name: string;
  readonly path: string;
  readonly kind: CheckpointKind;
  readonly seq: number;
  readonly size: number;
  readonly toMs: number;
  readonly bytes: number;
}

export interface LedgerOptions {
  readonly config: LedgerConfig;
  readonly signer: Signer;
  /**
   * The key used before `signer` (signing.previous_key_file). When the ledger's newest checkpoint
   * was signed by it, the first checkpoint after start is a heartbeat signed by this old key that
   * announces `signer` (`sealtrail-key` line); later checkpoints are signed by `signer` only.
   */
  readonly previousSigner?: Signer;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** Wall clock in ms (tests inject one); default Date.now. */
  readonly clock?: () => number;
  /**
   * File-system seam for fault injection in tests; default node:fs. With the default, a group
   * commit's write and fdatasync run as one native thread-pool job where the addon has it
   * (native-hash.ts nativeWriteDurable); with an injected fs every step goes through it, so that a
   * test sees (and can fail) each write and fdatasync.
   */
  readonly fs?: LedgerFs;
  /** Bytes of accepted-but-not-yet-written frames above which appends are refused as `overloaded` (default 64 MiB). */
  readonly maxPendingBytes?: number;
  /** Most bytes encoded into one group-commit buffer (default 4 MiB): bounds event-loop pauses. */
  readonly maxBatchBytes?: number;
}

/** Retry-After hints (ms) per refusal. */
const RETRY_MS: Record<RefusalReason, number> = { disk_full: 5_000, overloaded: 200, shutting_down: 1_000, ledger_failed: 10_000 };
/** Kept free under max_disk_bytes for the trailer, the next header and checkpoint files of a seal. */
const SEAL_RESERVE = 64 * 1024;
/**
 * Zeros the commit writer may write ahead of the open segment's last commit (durability fsync with
 * the native writer; native/sealtrail_hash.c, cw_zero_ahead), kept free under max_disk_bytes too (the
 * segment's size here does not count them). Only where the budget is at least ZERO_AHEAD_MIN_DISK, so
 * that a small budget is not eaten by them.
 */
const ZERO_AHEAD_BYTES = 3 * 1024 * 1024;
const ZERO_AHEAD_MIN_DISK = 256 * 1024 * 1024;
const HEAD_FILE = 'head.checkpoint';
/** Encode buffers kept for reuse (each at most max batch bytes, 4 MiB by default). */
const POOL_BLOCKS = 2;
/** durability none: written bytes after which the open segment is fdatasync'd in the background. */
const BACKGROUND_SYNC_BYTES = 8 * 1024 * 1024;
const RELEASED_FILE = 'released';
const CP_NAME = /^(\d{16})-(\d{16})-(\d{15})-(seal|heartbeat)\.cp$/;
const OPEN_NAME = /^(\d{16})\.seg\.open$/;
/** A next segment that a seal's publishing left under its temporary name (#finishSeal, #adoptNext). */
const NEXT_TMP_NAME = /^\d{16}\.seg\.open\.tmp$/;
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/** `<seq16>-<size16>-<toMs15>-<kind>.cp` */
export function checkpointFileName(seq: number, size: number, toMs: number, kind: CheckpointKind): string {
  return `${String(seq).padStart(16, '0')}-${String(size).padStart(16, '0')}-${String(toMs).padStart(15, '0')}-${kind}.cp`;
}

interface Pending {
  readonly entries: Entries;
  readonly bytes: number;
  readonly resolve: (o: AppendOutcome) => void;
}

interface OpenSegment {
  readonly seq: number;
  readonly firstIndex: number;
  /** `<seq>.seg.open`, or its temporary name while the previous seal is being published (#finishSeal). */
  path: string;
  fd: number;
  size: number;
  count: number;
  /** Wall-clock ms of the first entry (for max_segment_age), undefined while empty. */
  firstEntryMs: number | undefined;
  /** Bytes written but not fdatasync'd (durability none). */
  dirty: boolean;
  /** durability none: the background fdatasyncs have dropped the cached pages before this offset. */
  droppedTo?: number;
}

interface LastCheckpoint {
  readonly note: string;
  readonly cp: Checkpoint;
  /** Which configured key's signature verified: the current one, the previous one, or neither. */
  readonly signedBy?: 'current' | 'previous' | 'unknown';
}

/**
 * With the disk idle and at least this many bytes of requests queued, #run encodes and starts
 * writing the first half before encoding the second half (#idleSlice). Smaller backlogs stay one
 * commit: below ≈ 512 KiB the second fdatasync's fixed cost ate the gain (256 KiB: 64 closed-loop
 * appenders of 50 entries gained as much, 16 lost ≈ 5–10 %; docs/benchmarks.md "Ledger").
 */
const IDLE_SPLIT_BYTES = 512 * 1024;
/**
 * Why `f` cannot be written as it is, or undefined: every run must be whole frames back to back
 * (FramedEntries), so that the run's bytes are exactly what goes into the segment once the ledger
 * has filled the frame room. Checked before anything is queued (a caller bug, never client input).
 */
function framedLayoutError(f: FramedEntries): string | undefined {
  if (f.runs.length !== f.spans.length) return `${f.runs.length} runs but ${f.spans.length} span lists`;
  for (let r = 0; r < f.runs.length; r++) {
    const run = f.runs[r]!;
    const sp = f.spans[r]!;
    if (sp.length === 0 || sp.length % 2 !== 0) return `run ${r}: spans must be (start, end) pairs, at least one`;
    let at = 0; // where the next frame starts
    for (let k = 0; k < sp.length; k += 2) {
      const start = sp[k]!;
      const end = sp[k + 1]!;
      if (start !== at + FRAME_HEAD_ROOM || end < start) return `run ${r}, entry ${k / 2}: frames must follow each other with ${FRAME_HEAD_ROOM} bytes of room before each entry and ${FRAME_TAIL_ROOM} after it`;
      if (end - start > MAX_ENTRY_BYTES) return `run ${r}, entry ${k / 2}: ${end - start} bytes exceeds MAX_ENTRY_BYTES (${MAX_ENTRY_BYTES})`;
      at = end + FRAME_TAIL_ROOM;
    }
    if (at !== run.length) return `run ${r}: its frames take ${at} bytes but the run has ${run.length}`;
  }
  return undefined;
}

/** Spans, leaf and chain arrays for #encode, grown as needed and reused: fewer ArrayBuffers per commit. */
class EncodeScratch {
  #spans = new Uint32Array(0);
  #leaves = new Uint8Array(0);
  #chains = new Uint8Array(0);

  spans(count: number): Uint32Array {
    if (this.#spans.length < 2 * count) this.#spans = new Uint32Array(2 * count + 1024);
    return this.#spans.subarray(0, 2 * count);
  }

  hashes(count: number): { leaves: Uint8Array; chains: Uint8Array } {
    if (this.#leaves.length < HASH_SIZE * count) {
      this.#leaves = new Uint8Array(HASH_SIZE * (count + 512));
      this.#chains = new Uint8Array(HASH_SIZE * (count + 512));
    }
    return { leaves: this.#leaves.subarray(0, HASH_SIZE * count), chains: this.#chains.subarray(0, HASH_SIZE * count) };
  }
}

/** Requests encoded into frames (chain and frontier advanced), waiting for the disk. */
interface Encoded {
  readonly batch: Pending[];
  /** Global index of each request's first entry. */
  readonly firsts: number[];
  /** The frames, back to back: a pooled buffer's copies and FramedEntries' runs, in order. */
  readonly bufs: Uint8Array[];
  /** The pooled buffer the copied entries were placed in (given back after the commit). */
  readonly pooled: Buffer | undefined;
  /** Where bufs go in the open segment, and how many bytes they are. */
  readonly offset: number;
  readonly bytes: number;
  readonly count: number;
}

/** An encoded group handed to the commit sink, until its commit is durable (or failed). */
interface Commit {
  readonly group: Encoded;
  readonly seg: OpenSegment;
  readonly done: Promise<CommitResult>;
}

interface Task {
  readonly kind: 'seal' | 'heartbeat';
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

function corrupt(file: string, e: unknown): SealtrailError {
  if (e instanceof SegmentFormatError) {
    return new SealtrailError(
      'LEDGER_CORRUPT',
      `ledger corrupt: ${file}: ${e.message}. sealtrail does not repair this: keep the directory for investigation (sealtrail verify / inspect) and start on a fresh ledger.dir`,
      { cause: e },
    );
  }
  return new SealtrailError('LEDGER_CORRUPT', `ledger corrupt: ${file}: ${errorMessage(e)}`, { cause: e });
}

function ioError(what: string, e: unknown): SealtrailError {
  return new SealtrailError('LEDGER_IO', `${what}: ${errorMessage(e)}`, { cause: e });
}

export class Ledger implements EntrySink {
  readonly #cfg: LedgerConfig;
  readonly #signer: Signer;
  readonly #previous: Signer | undefined;
  readonly #log: Logger;
  readonly #metrics: Metrics | undefined;
  readonly #clock: () => number;
  readonly #fs: LedgerFs;
  /** A seal's trailer write + fdatasync as one native job (only with the default fs), else undefined. */
  readonly #writeDurable: typeof nativeWriteDurable;
  /** durability none's background fdatasync + page drop as one native job (only with the default fs), else undefined. */
  readonly #syncDrop: typeof nativeSyncDrop;
  /** Where encoded groups become durable (commit-sink.ts): the native writer with the default fs. */
  readonly #sink: CommitSink;
  /** Kept free under max_disk_bytes: SEAL_RESERVE, plus ZERO_AHEAD_BYTES where the commit writer writes zeros ahead. */
  readonly #diskReserve: number;
  /** Runs publishing steps (file-ops.ts): one native job with the default fs, else through #fs. */
  readonly #ops: FileOpsRunner;
  readonly #maxPending: number;
  readonly #maxBatch: number;
  readonly #dir: string;
  readonly #segDir: string;
  readonly #cpDir: string;

  #state: 'open' | 'stopping' | 'closed' | 'failed' = 'open';
  #failure: unknown;
  #seg!: OpenSegment;
  #frontier!: Frontier;
  #chain!: Uint8Array;
  #last: LastCheckpoint | undefined;
  #lastCpMs = 0; // clock() when the newest checkpoint was made (heartbeat deadline)

  #queue: Pending[] = [];
  /** Bytes accepted and not yet written: queued, or encoded and waiting for / in a commit. */
  #queueBytes = 0;
  /** Bytes encoded into the open segment but not yet written (the next frame goes at seg.size + this). */
  #unwritten = 0;
  /** durability none: bytes written since the last background fdatasync started (#startBackgroundSync). */
  #unsyncedBytes = 0;
  #bgSyncBusy = false;
  #bgSync: Promise<void> = Promise.resolve();
  /** `released` already names a checkpoint file (one is enough: see release()). */
  #cpReleaseRecorded = false;
  /** Per-batch arrays of #encode, reused (only used inside one synchronous #encode). */
  readonly #scratch = new EncodeScratch();
  /** Heartbeat checkpoints being made durable in the background, in signing order (#beginHeartbeat). */
  #cpChain: Promise<void> = Promise.resolve();
  /** Encode buffers whose commit is done, for reuse (#takeBuffer). */
  readonly #pool: Buffer[] = [];
  /** Wakes the group-commit loop while it waits for a commit (set only then). */
  #arrival: (() => void) | undefined;
  #tasks: Task[] = [];
  #loop: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #tickMs = 0;
  #closing: Promise<void> | undefined;
  #releaseChain: Promise<void> = Promise.resolve();

  readonly #sealed = new Map<string, SealedSegmentInfo>();
  readonly #cps = new Map<string, CheckpointInfo>();
  #fixedBytes = 0; // head file and similar small files
  /** A sealed segment whose seal is still being published (#finishSeal): on disk, not yet in #sealed. */
  #publishingBytes = 0;
  #sealedBytes = 0; // running sums, so the budget check per append is O(1)
  #cpBytes = 0;
  /** The last budget check refused (cleared by an accepted append or a release). */
  #refusingDiskFull = false;
  readonly #segListeners = new Set<(s: SealedSegmentInfo) => void>();
  readonly #cpListeners = new Set<(c: CheckpointInfo) => void>();

  private constructor(o: LedgerOptions) {
    this.#cfg = o.config;
    this.#signer = o.signer;
    this.#previous = o.previousSigner;
    this.#log = o.logger;
    this.#metrics = o.metrics;
    this.#clock = o.clock ?? Date.now;
    this.#fs = o.fs ?? nodeLedgerFs;
    this.#writeDurable = o.fs ? undefined : nativeWriteDurable;
    this.#syncDrop = o.fs ? undefined : nativeSyncDrop;
    const zeroAhead = o.config.max_disk_bytes >= ZERO_AHEAD_MIN_DISK ? ZERO_AHEAD_BYTES : 0;
    this.#sink = commitSink(
      o.fs,
      this.#fs,
      o.config.durability === 'fsync',
      (entries, secs) => {
        this.#metrics?.ledgerFsyncSeconds.observe(secs);
        this.#metrics?.ledgerBatchEntries.observe(entries);
      },
      { zeroAhead },
    );
    this.#diskReserve = SEAL_RESERVE + (this.#sink.endsFiles ? zeroAhead : 0);
    this.#ops = fileOpsRunner(o.fs);
    this.#maxPending = o.maxPendingBytes ?? 64 * 1024 * 1024;
    this.#maxBatch = o.maxBatchBytes ?? 4 * 1024 * 1024;
    this.#dir = path.resolve(o.config.dir);
    this.#segDir = path.join(this.#dir, 'segments');
    this.#cpDir = path.join(this.#dir, 'checkpoints');
  }

  /**
   * Opens (or creates) the ledger in `config.dir`, recovering from a crash: cuts a torn tail,
   * re-verifies the newest checkpoint against the recomputed tree, seals a segment a crash left
   * unsealed, and continues the same log. Starts the heartbeat/age timer.
   * @throws SealtrailError LEDGER_CORRUPT (names file, offset, index and check; nothing is repaired),
   *   CONFIG_INVALID (the directory holds another origin's log), LEDGER_IO (the disk failed)
   */
  static async open(o: LedgerOptions): Promise<Ledger> {
    let l = new Ledger(o);
    // A crash while a seal was being published can leave the next segment under its temporary
    // name with acknowledged entries: the first pass finishes publishing and adopts it, then the
    // log is recovered again from the files as they now are (#adoptNext).
    if ((await l.#recover()) === 'adopted') {
      l = new Ledger(o);
      if ((await l.#recover()) === 'adopted') throw new SealtrailError('INTERNAL', `ledger ${l.#dir}: a next segment was adopted twice in one start`);
    }
    l.#metrics?.ledgerDiskBudgetBytes.set(l.#cfg.max_disk_bytes);
    l.#updateGauges();
    const period = Math.max(10, Math.min(1000, Math.floor(Math.min(l.#cfg.seal_interval, l.#cfg.max_segment_age) / 4)));
    l.#tickMs = period;
    l.#timer = setInterval(() => l.#tick(), period);
    l.#timer.unref();
    l.#tick();
    return l;
  }

  /** Entries in the log: the next global index. */
  get treeSize(): number {
    return this.#frontier.size;
  }

  /** Bytes the ledger holds on disk (open + unreleased sealed segments, checkpoint files, state). */
  get diskBytes(): number {
    return this.#seg.size + this.#fixedBytes + this.#sealedBytes + this.#publishingBytes + this.#cpBytes;
  }

  /** Why the ledger stopped acknowledging (after a write or fsync error); undefined while healthy. */
  get failure(): string | undefined {
    return this.#state === 'failed' ? errorMessage(this.#failure) : undefined;
  }

  /** True while appends would be refused as disk_full (less than a small reserve left of max_disk_bytes). */
  get diskFull(): boolean {
    return this.#refusingDiskFull || this.diskBytes + this.#queueBytes + this.#diskReserve >= this.#cfg.max_disk_bytes;
  }

  /** The configured ledger.max_disk_bytes. */
  get maxDiskBytes(): number {
    return this.#cfg.max_disk_bytes;
  }

  /** The newest signed checkpoint note (seal or heartbeat), if any. */
  get lastCheckpoint(): string | undefined {
    return this.#last?.note;
  }

  /**
   * Appends entries; resolves after they are written and fdatasync'd (durability fsync) with their
   * global indices, or with a retryable refusal (nothing stored). Never rejects for a refusal.
   * @throws RangeError (as a rejection) if an entry exceeds MAX_ENTRY_BYTES: a caller bug, receivers bound bodies
   */
  append(entries: Entries): Promise<AppendOutcome> {
    if (this.#state === 'failed') return Promise.resolve(this.#refuse('ledger_failed', `ledger stopped after a write failure: ${errorMessage(this.#failure)}`));
    if (this.#state !== 'open') return Promise.resolve(this.#refuse('shutting_down'));
    if (entryCount(entries) === 0) return Promise.resolve({ kind: 'ok', firstIndex: this.#frontier.size, count: 0 });
    let bytes = 0;
    if (entries instanceof FramedEntries) {
      const bad = framedLayoutError(entries);
      if (bad !== undefined) return Promise.reject(new RangeError(`FramedEntries: ${bad}`));
      for (const run of entries.runs) bytes += run.length;
    } else {
      for (const e of entries) {
        if (e.length > MAX_ENTRY_BYTES) return Promise.reject(new RangeError(`entry of ${e.length} bytes exceeds MAX_ENTRY_BYTES (${MAX_ENTRY_BYTES})`));
        bytes += FRAME_OVERHEAD + e.length;
      }
    }
    if (this.#queueBytes > 0 && this.#queueBytes + bytes > this.#maxPending) {
      return Promise.resolve(this.#refuse('overloaded', `${this.#queueBytes} bytes already waiting for the disk`));
    }
    if (this.diskBytes + this.#queueBytes + bytes + this.#diskReserve > this.#cfg.max_disk_bytes) {
      this.#refusingDiskFull = true;
      return Promise.resolve(this.#refuse('disk_full', `ledger holds ${this.diskBytes} of max_disk_bytes ${this.#cfg.max_disk_bytes}`));
    }
    this.#refusingDiskFull = false;
    return new Promise((resolve) => {
      this.#queue.push({ entries, bytes, resolve });
      this.#queueBytes += bytes;
      this.#kick();
    });
  }

  /**
   * Seals the open segment now (if it holds entries): trailer with a signed checkpoint, rename.
   * @throws SealtrailError LEDGER_IO / LEDGER_CLOSED
   */
  seal(): Promise<void> {
    return this.#enqueueTask('seal');
  }

  /**
   * Signs a heartbeat checkpoint for the entries durable so far (the timer does this every seal_interval).
   * @throws SealtrailError LEDGER_IO / LEDGER_CLOSED
   */
  heartbeat(): Promise<void> {
    return this.#enqueueTask('heartbeat');
  }

  /** Later appends are refused with the retryable `shutting_down`; queued ones are still written. */
  stopAccepting(): void {
    if (this.#state === 'open') this.#state = 'stopping';
  }

  /**
   * Stops accepting, writes what was accepted, seals the open segment (or signs a final heartbeat
   * when nothing new needs a seal), stops the timers and closes files. Safe to call twice.
   * @throws SealtrailError LEDGER_IO when the final seal fails (the ledger is then failed and closed)
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Sealed segments held locally and not released, in sequence order. */
  sealedSegments(): SealedSegmentInfo[] {
    return [...this.#sealed.values()].sort((a, b) => a.seq - b.seq);
  }

  /** Checkpoint files held locally and not released, in creation order. */
  checkpoints(): CheckpointInfo[] {
    return [...this.#cps.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Called after each seal, once the sealed file is durable under its final name. Returns an unsubscribe function. */
  onSegmentSealed(cb: (s: SealedSegmentInfo) => void): () => void {
    this.#segListeners.add(cb);
    return () => this.#segListeners.delete(cb);
  }

  /** Called after each checkpoint file is durable (a seal's checkpoint after its segment's event). */
  onCheckpoint(cb: (c: CheckpointInfo) => void): () => void {
    this.#cpListeners.add(cb);
    return () => this.#cpListeners.delete(cb);
  }

  /**
   * Deletes a forwarded sealed segment ("….seg") or checkpoint file ("….cp") from the local disk
   * and frees its bytes in the disk budget. A released segment is recorded durably first, so that
   * its absence is not reported as a missing segment on the next start. Unknown names are a no-op
   * (release is idempotent).
   * @throws RangeError for the open segment or a name that is neither; SealtrailError LEDGER_IO
   */
  release(name: string): Promise<void> {
    const run = async (): Promise<void> => {
      if (name.endsWith(OPEN_SEGMENT_SUFFIX) || name === path.basename(this.#seg.path)) {
        throw new RangeError(`${name} is the open segment; only sealed segments can be released`);
      }
      const seg = this.#sealed.get(name);
      if (seg) {
        try {
          await this.#appendReleased(name);
          await this.#fs.unlink(seg.path);
          await this.#fs.fsyncDir(this.#segDir);
        } catch (e) {
          throw ioError(`releasing ${seg.path}`, e);
        }
        this.#sealed.delete(name);
        this.#sealedBytes -= seg.bytes;
        this.#refusingDiskFull = false;
        this.#updateGauges();
        return;
      }
      const cp = this.#cps.get(name);
      if (cp) {
        try {
          // Recorded once, so a verifier of this directory knows checkpoint files may be missing
          // because they were released. Not every name: heartbeats alone would add ~17,000 lines a
          // day to a file that every start and every verify reads whole.
          if (!this.#cpReleaseRecorded) await this.#appendReleased(name);
          this.#cpReleaseRecorded = true;
          await this.#fs.unlink(cp.path);
          await this.#fs.fsyncDir(this.#cpDir);
        } catch (e) {
          throw ioError(`releasing ${cp.path}`, e);
        }
        this.#cps.delete(name);
        this.#cpBytes -= cp.bytes;
        this.#refusingDiskFull = false;
        this.#updateGauges();
        return;
      }
      if (parseSegmentFileName(name) === undefined && !CP_NAME.test(name)) {
        throw new RangeError(`${JSON.stringify(name)} is not a segment or checkpoint file name`);
      }
    };
    const p = this.#releaseChain.then(run);
    this.#releaseChain = p.catch(() => undefined);
    return p;
  }

  // ---------------------------------------------------------------- group commit

  #refuse(reason: RefusalReason, detail?: string): AppendOutcome {
    return detail === undefined
      ? { kind: 'retryable', reason, afterMs: RETRY_MS[reason] }
      : { kind: 'retryable', reason, afterMs: RETRY_MS[reason], detail };
  }

  #kick(): void {
    if (this.#loop) {
      this.#arrival?.();
      return;
    }
    // setImmediate, not a microtask: lets the I/O callbacks of other requests that are already
    // due run first, so their appends join this batch.
    this.#loop = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#run());
  }

  /**
   * Resolves when the next append or task arrives — one setImmediate later, so that requests whose
   * I/O callbacks are due in the same event-loop turn join one batch.
   */
  #nextArrival(): Promise<'arrived'> {
    return new Promise((resolve) => {
      this.#arrival = () => {
        this.#arrival = undefined;
        setImmediate(() => resolve('arrived'));
      };
    });
  }

  /**
   * The group-commit loop, pipelined: requests are encoded — hashed, chained, framed — as they arrive
   * and handed to the commit sink at once (#startCommit). The sink writes what it was given while no
   * commit is in flight at once, and everything handed to it during a commit as the next commit with
   * ONE fdatasync the moment that commit is durable (commit-sink.ts), so the CPU work of batch N+1
   * overlaps the disk wait of batch N and the disk does not wait for the main thread. Requests are
   * acknowledged in order, only when their commit is durable (#complete, oldest first). Seals and
   * heartbeats sign the tree, so they run only with nothing in flight: a checkpoint never covers an
   * entry that is not durable.
   */
  async #run(): Promise<void> {
    const ios: Commit[] = []; // handed to the sink, oldest first, not yet completed
    try {
      for (;;) {
        if (this.#state === 'failed') {
          // The sink refuses (without writing) everything after a failed commit; answer them in order.
          while (ios.length > 0) await this.#complete(ios.shift()!);
          this.#drainFailed();
          break;
        }
        const full = this.#seg.count > 0 && this.#seg.size + this.#unwritten >= this.#cfg.max_segment_bytes;
        if (this.#tasks.length > 0 || full) {
          // Everything encoded must be durable first (see above), then seal or run the task.
          if (ios.length > 0) {
            await this.#complete(ios.shift()!);
            continue;
          }
          if (full) {
            try {
              await this.#sealNow();
            } catch {
              // #sealNow failed the ledger and logged it; the next turn refuses what waits.
            }
            continue;
          }
          const task = this.#tasks.shift()!;
          if (task.kind === 'heartbeat') {
            this.#beginHeartbeat(task);
            continue;
          }
          try {
            const { published } = await this.#sealNow();
            published.then(task.resolve, task.reject);
          } catch (e) {
            task.reject(e);
          }
          continue;
        }
        if (this.#queue.length > 0) {
          ios.push(this.#startCommit(this.#encode(ios.length > 0 ? Infinity : this.#idleSlice())));
          continue;
        }
        if (ios.length > 0) {
          // Wait for the oldest commit; whatever arrives meanwhile is encoded and handed on at once.
          const r = await Promise.race([ios[0]!.done, this.#nextArrival()]);
          if (r !== 'arrived') {
            this.#arrival = undefined;
            await this.#complete(ios.shift()!);
          }
          continue;
        }
        break;
      }
    } finally {
      this.#loop = undefined;
      this.#arrival = undefined;
    }
    if (this.#queue.length > 0 || this.#tasks.length > 0) this.#kick();
  }

  /**
   * How many bytes of queued requests to encode while no commit is in flight. A large backlog with
   * an idle disk (every appender waited for the last commit, or a seal, or a stall) is split in
   * two: the first half is encoded and its write + fdatasync started at once, and the second half
   * is encoded while that runs, instead of the disk waiting for all of the encoding and the CPU
   * then waiting for all of the disk. The two halves then stay out of step, so later commits
   * overlap as well. Always at least one request (#encode).
   */
  #idleSlice(): number {
    const backlog = this.#queueBytes - this.#unwritten; // queued, not yet encoded
    return backlog >= IDLE_SPLIT_BYTES ? backlog / 2 : Infinity;
  }

  /**
   * Takes queued requests (up to max batch bytes, the open segment's room and `slice`, at least one) and
   * encodes their frames: every hash exactly once per entry. The chain and frontier advance here;
   * the bytes reach the disk in #startCommit.
   */
  #encode(slice: number): Encoded {
    const seg = this.#seg;
    const offset = seg.size + this.#unwritten;
    const room = Math.max(0, this.#cfg.max_segment_bytes - offset);
    const limit = Math.min(this.#maxBatch, room, slice);
    const batch: Pending[] = [];
    let bytes = 0;
    let count = 0;
    let copied = 0; // bytes of entries given as arrays, copied into a pooled buffer
    while (this.#queue.length > 0) {
      const next = this.#queue[0]!;
      if (batch.length > 0 && bytes + next.bytes > limit) break;
      batch.push(this.#queue.shift()!);
      bytes += next.bytes;
      count += entryCount(next.entries);
      if (!(next.entries instanceof FramedEntries)) copied += next.bytes;
    }

    // Entries given as arrays are placed in their frames in a pooled buffer; FramedEntries are
    // already laid out as frames (the receivers build them so) and stay where they are. Then each
    // request's (or run's) leaves and chains are hashed and its frames finished (len, ~len, chain,
    // CRC-32C) in one call — native when the addon is loaded: per-call overhead of crypto.hash (~2.2–2.8 µs,
    // ~3 calls per entry) and a JS CRC loop (~0.5 µs per frame) dominated the ledger otherwise —
    // and the frontier in another.
    const pooled = copied > 0 ? this.#takeBuffer(copied) : undefined;
    const bufs: Uint8Array[] = [];
    const firsts: number[] = [];
    const { leaves, chains } = this.#scratch.hashes(count);
    let n = 0;
    const finish = (buf: Uint8Array, spans: Uint32Array): void => {
      const k = spans.length >>> 1;
      const prev = n === 0 ? this.#chain : chains.subarray(HASH_SIZE * (n - 1), HASH_SIZE * n);
      finishFrames(buf, spans, prev, leaves.subarray(HASH_SIZE * n, HASH_SIZE * (n + k)), chains.subarray(HASH_SIZE * n, HASH_SIZE * (n + k)));
      bufs.push(buf);
      n += k;
    };
    let off = 0;
    for (const p of batch) {
      firsts.push(this.#frontier.size + n);
      if (p.entries instanceof FramedEntries) {
        const f = p.entries;
        for (let r = 0; r < f.runs.length; r++) finish(f.runs[r]!, f.spans[r]!);
        continue;
      }
      // Copied into the pooled buffer, each entry after its frame's room (len, ~len and chain).
      const spans = this.#scratch.spans(p.entries.length);
      const start = off;
      let e = 0;
      for (const entry of p.entries) {
        pooled!.set(entry, off + FRAME_HEAD_ROOM);
        spans[2 * e] = off - start + FRAME_HEAD_ROOM;
        spans[2 * e + 1] = off - start + FRAME_HEAD_ROOM + entry.length;
        off += FRAME_OVERHEAD + entry.length;
        e++;
      }
      finish(pooled!.subarray(start, off), spans);
    }
    if (count > 0) this.#chain = chains.slice(HASH_SIZE * (count - 1));
    this.#frontier = Frontier.fromBytes(frontierAppend(this.#frontier.toBytes(), leaves));
    seg.count += count;
    seg.firstEntryMs ??= this.#clock();
    this.#unwritten += bytes;
    return { batch, firsts, bufs, pooled, offset, bytes, count };
  }

  /** Hands one encoded group to the commit sink: written at its offset, durable with the next fdatasync. */
  #startCommit(group: Encoded): Commit {
    const seg = this.#seg;
    // A group that fills the segment is its last commit: the seal follows, so no zeros after it.
    const end = seg.size + this.#unwritten >= this.#cfg.max_segment_bytes ? 'full' : 'more';
    return { group, seg, done: this.#sink.submit(seg.fd, group.bufs, group.offset, group.count, end) };
  }

  /**
   * durability none: the open segment's written bytes are fdatasync'd in the background after every
   * BACKGROUND_SYNC_BYTES (acknowledgements do not wait for it). Without it a seal's trailer
   * fdatasync had a whole segment of unsynced writes to flush — 170–185 ms for 64 MiB here, during
   * which every request waited (measured 09:55 UTC) — and a crash lost up to a segment. An error
   * fails the ledger like any fsync error (G1).
   */
  #startBackgroundSync(seg: OpenSegment): void {
    this.#unsyncedBytes = 0;
    this.#bgSyncBusy = true;
    // Every byte up to seg.size is in the page cache now (written by completed commits), so the
    // fdatasync makes it durable; with the addon the job then drops those pages (native-hash.ts).
    const from = seg.droppedTo ?? 0;
    const to = seg.size;
    const sync = this.#syncDrop ? this.#syncDrop(seg.fd, from, to) : this.#fs.fdatasync(seg.fd);
    this.#bgSync = sync.then(
      () => {
        this.#bgSyncBusy = false;
        seg.droppedTo = to;
      },
      (e: unknown) => {
        this.#bgSyncBusy = false;
        this.#fail(e, `background fdatasync of ${seg.path}`);
      },
    );
  }

  /** Waits for a commit and answers its requests: ok with their indices, or ledger_failed. */
  async #complete(c: Commit): Promise<void> {
    const r = await c.done;
    const g = c.group;
    this.#giveBack(g); // written (or failed): the kernel holds its own copy
    const { bytes, count: n } = g;
    this.#unwritten -= bytes;
    this.#queueBytes -= bytes;
    if (!r.ok) {
      this.#fail(r.error, `group commit of ${n} entries to ${c.seg.path}`);
      this.#refuseEncoded(g);
      return;
    }
    c.seg.size += bytes;
    if (this.#cfg.durability !== 'fsync') {
      c.seg.dirty = true;
      this.#unsyncedBytes += bytes;
      if (this.#unsyncedBytes >= BACKGROUND_SYNC_BYTES && !this.#bgSyncBusy) this.#startBackgroundSync(c.seg);
    }
    g.batch.forEach((p, i) => p.resolve({ kind: 'ok', firstIndex: g.firsts[i]!, count: entryCount(p.entries) }));
    this.#metrics?.ledgerEntries.inc(n);
    this.#updateGauges();
  }

  /**
   * A buffer of exactly `bytes` for one encoded batch, cut from a pooled block when one is big
   * enough. Why: a fresh ~1 MB Buffer per group commit is ~100 MB/s of ArrayBuffer churn under
   * load, which V8 counts as external memory and answers with extra garbage collections. Blocks
   * return to the pool once their commit's write has completed (#giveBack).
   */
  #takeBuffer(bytes: number): Buffer {
    const i = this.#pool.findIndex((b) => b.length >= bytes);
    if (i >= 0) return this.#pool.splice(i, 1)[0]!.subarray(0, bytes);
    // allocUnsafeSlow: never a slice of node's shared small-buffer pool, so a block can be reused safely.
    if (bytes > this.#maxBatch) return Buffer.allocUnsafeSlow(bytes); // one oversized request: not pooled
    // Round up to 256 KiB so that blocks fit the next batches too.
    return Buffer.allocUnsafeSlow(Math.max(bytes, Math.min(this.#maxBatch, Math.ceil(bytes / 262144) * 262144))).subarray(0, bytes);
  }

  #giveBack(g: Encoded): void {
    const b = g.pooled;
    if (!b) return;
    const block = Buffer.from(b.buffer, b.byteOffset, b.buffer.byteLength - b.byteOffset);
    if (b.byteOffset !== 0 || block.length > this.#maxBatch || this.#pool.length >= POOL_BLOCKS) return;
    this.#pool.push(block);
  }

  /** Refuses encoded requests that will never be durable (the ledger failed). */
  #refuseEncoded(g: Encoded): void {
    for (const p of g.batch) p.resolve(this.#refuse('ledger_failed', errorMessage(this.#failure)));
  }

  #fail(e: unknown, what: string): void {
    if (this.#state === 'failed') return;
    this.#state = 'failed';
    this.#failure = e;
    this.#metrics?.ledgerWriteFailures.inc();
    // Loud and once: from now on every append is refused (retryable), nothing is acknowledged.
    this.#log.error(
      { err: e, dir: this.#dir },
      `LEDGER FAILED during ${what}: ${errorMessage(e)}. No further entries are acknowledged; clients get a retryable error. Fix the disk and restart the agent (recovery cuts whatever was not durable).`,
    );
  }

  #drainFailed(): void {
    const q = this.#queue;
    this.#queue = [];
    this.#queueBytes = 0;
    for (const p of q) p.resolve(this.#refuse('ledger_failed', errorMessage(this.#failure)));
    const t = this.#tasks;
    this.#tasks = [];
    for (const task of t) task.reject(ioError('ledger failed earlier', this.#failure));
  }

  #enqueueTask(kind: 'seal' | 'heartbeat'): Promise<void> {
    if (this.#state === 'failed') return Promise.reject(ioError('ledger failed earlier', this.#failure));
    if (this.#state === 'closed') return Promise.reject(new SealtrailError('LEDGER_CLOSED', 'ledger is closed'));
    return new Promise<void>((resolve, reject) => {
      this.#tasks.push({ kind, resolve, reject });
      this.#kick();
    });
  }

  #tick(): void {
    if (this.#state !== 'open' && this.#state !== 'stopping') return;
    const now = this.#clock();
    const seg = this.#seg;
    if (seg.count > 0 && seg.firstEntryMs !== undefined && now - seg.firstEntryMs >= this.#cfg.max_segment_age) {
      if (!this.#tasks.some((t) => t.kind === 'seal')) this.seal().catch((e) => this.#log.warn({ err: e }, 'age seal failed'));
    } else if (this.#last === undefined || now - this.#lastCpMs >= this.#cfg.seal_interval - this.#tickMs) {
      // One tick early, so that the gap between checkpoints never exceeds seal_interval.
      if (this.#tasks.length === 0) this.heartbeat().catch((e) => this.#log.warn({ err: e }, 'heartbeat failed'));
    }
  }

  // ---------------------------------------------------------------- checkpoints and seals

  /** Signs a checkpoint over the current (durable) tree. */
  #sign(kind: CheckpointKind, rotate?: { oldSigner: Signer; announce: string }): LastCheckpoint {
    const now = this.#clock();
    const prev = this.#last?.cp;
    // to_ms strictly increases so that checkpoint file names are unique and sort in creation order.
    const toMs = prev ? Math.max(now, prev.toMs + 1) : now;
    const body = formatCheckpoint({
      origin: this.#cfg.origin,
      size: this.#frontier.size,
      root: this.#frontier.root(),
      seq: this.#seg.seq,
      kind,
      prev: prev ? prev.bodyHash : null,
      fromMs: prev ? prev.toMs : toMs,
      toMs,
      ...(rotate ? { keys: [rotate.announce] } : {}),
    });
    const note = signCheckpoint(body, [rotate ? rotate.oldSigner : this.#signer]);
    const parsed = parseCheckpointBody(body);
    if (!parsed.ok) throw new SealtrailError('INTERNAL', `checkpoint we formatted does not parse: ${parsed.detail}`);
    this.#metrics?.ledgerCheckpointsSigned.inc();
    this.#lastCpMs = now;
    return { note, cp: parsed.value };
  }

  /**
   * Steps that write `data` to `<dir>/<name>.tmp` and fsync it. A temporary file is invisible to
   * recovery (which deletes leftovers), so several can be prepared in parallel; the renames that
   * publish them keep their order.
   */
  #prepare(dir: string, name: string, data: Uint8Array): { tmp: string; op: FileOp } {
    const tmp = path.join(dir, `${name}.tmp`);
    return { tmp, op: { kind: 'writeFile', path: tmp, data } };
  }

  /** Steps that replace `<dir>/<name>` atomically: a fsync'd temporary file, renamed (the caller fsyncs dir). */
  #atomic(dir: string, name: string, data: Uint8Array): FileOp[] {
    const { tmp, op } = this.#prepare(dir, name, data);
    return [op, { kind: 'rename', from: tmp, to: path.join(dir, name) }];
  }

  /**
   * Writes head.checkpoint, then checkpoints/<name> (both fsync'd, then the checkpoints directory),
   * as one list of steps (file-ops.ts). Order matters: head.checkpoint is made durable FIRST, so it is never
   * older than a checkpoint file that forwarding could have shipped. Otherwise a crash between
   * the two would let recovery link the next checkpoint to an older head, forking the prev-chain
   * (found by test/e2e/crash.test.ts). A crash after the head but before the file is repaired by
   * recovery, which recreates the missing file from head.checkpoint (#ensureCheckpointFile).
   */
  async #persistCheckpoint(c: LastCheckpoint): Promise<CheckpointInfo> {
    const bytes = enc.encode(c.note);
    const name = checkpointFileName(c.cp.seq, c.cp.size, c.cp.toMs, c.cp.kind);
    // Checkpoint files are write-once: never replace one (forwarding may have shipped it).
    if (this.#cps.has(name)) throw new SealtrailError('INTERNAL', `checkpoint file ${name} exists already`);
    await this.#ops([
      ...this.#atomic(this.#dir, HEAD_FILE, bytes),
      { kind: 'fsyncDir', dir: this.#dir },
      ...this.#atomic(this.#cpDir, name, bytes),
      { kind: 'fsyncDir', dir: this.#cpDir },
    ]);
    this.#fixedBytes = bytes.length;
    const info: CheckpointInfo = { name, path: path.join(this.#cpDir, name), kind: c.cp.kind, seq: c.cp.seq, size: c.cp.size, toMs: c.cp.toMs, bytes: bytes.length };
    this.#cps.set(name, info);
    this.#cpBytes += info.bytes;
    this.#setLast(c);
    return info;
  }

  /** #last only moves forward (a background heartbeat may finish after a newer checkpoint was signed). */
  #setLast(c: LastCheckpoint): void {
    if (this.#last === undefined || c.cp.toMs >= this.#last.cp.toMs) this.#last = c;
  }

  /**
   * A heartbeat from the group-commit loop: signed now over the durable tree (the loop runs tasks
   * with nothing encoded ahead of the disk), then made durable in the background, in signing order,
   * while commits go on — a heartbeat's four fsyncs no longer stall acknowledgements. The task
   * resolves once its files are durable.
   */
  #beginHeartbeat(task: Task): void {
    this.#heartbeat().then(task.resolve, task.reject);
  }

  /**
   * Signs a heartbeat now (over the durable tree: the loop, and recovery, call this with nothing
   * encoded ahead of the disk) and makes it durable in the background, after any earlier one. The
   * promise settles once its files are durable. `rotate`: signed by the old key, announcing the new.
   */
  #heartbeat(rotate?: { oldSigner: Signer; announce: string }): Promise<void> {
    if (this.#state === 'failed') return Promise.reject(ioError('ledger failed earlier', this.#failure));
    // durability none: a checkpoint never claims more than the disk holds, so the entries it covers
    // are fdatasync'd before it is written — in the background too (with seconds of unsynced writes
    // that fdatasync is long). A seal waits for this chain before it closes the segment.
    const seg = this.#seg;
    const sync = seg.dirty;
    seg.dirty = false;
    const c = this.#sign('heartbeat', rotate);
    this.#setLast(c); // the next checkpoint links to this one
    const persisted = this.#cpChain.then(async () => {
      if (this.#state === 'failed') throw ioError('ledger failed earlier', this.#failure);
      let info: CheckpointInfo;
      try {
        if (sync) await this.#fs.fdatasync(seg.fd);
        info = await this.#persistCheckpoint(c);
      } catch (e) {
        this.#fail(e, 'heartbeat checkpoint');
        throw ioError('heartbeat checkpoint', e);
      }
      this.#updateGauges();
      this.#emitCheckpoint(info);
    });
    this.#cpChain = persisted.catch(() => undefined);
    return persisted;
  }

  /**
   * Seals the open segment (if it holds entries) and switches to the next one. Resolves once appends
   * can go to the next segment — the trailer and the next segment's file are durable — with
   * `published`, which settles when the seal is published under its final names (#finishSeal) and
   * announced to onSegmentSealed listeners. A publishing error fails the ledger and rejects
   * `published`; a later seal, heartbeat or close waits for it (#cpChain).
   */
  async #sealNow(): Promise<{ published: Promise<void> }> {
    await this.#cpChain; // background heartbeats and the last seal's publishing first: head.checkpoint is replaced in signing order
    await this.#bgSync; // durability none: never close the segment's fd under a running fdatasync
    this.#unsyncedBytes = 0; // the trailer's fdatasync flushes the rest
    if (this.#state === 'failed') throw ioError('ledger failed earlier', this.#failure);
    const seg = this.#seg;
    if (seg.count === 0) return { published: Promise.resolve() };
    let segInfo: SealedSegmentInfo;
    let cpInfo: CheckpointInfo;
    let publishing: Promise<void>;
    try {
      const c = this.#sign('seal');
      const trailer = encodeTrailer(
        { count: seg.count, chainLast: this.#chain, endFrontier: this.#frontier, checkpoint: enc.encode(c.note) },
        seg.size,
      );
      const writeTrailer = async (): Promise<void> => {
        if (this.#sink.endsFiles) {
          // Through the commit writer, which cuts the zeros it wrote ahead before the trailer.
          const r = await this.#sink.submit(seg.fd, [trailer], seg.size, 0, 'last');
          if (!r.ok) throw r.error;
        } else if (this.#writeDurable) {
          await this.#writeDurable(seg.fd, [trailer], seg.size, true);
        } else {
          await this.#fs.writeAll(seg.fd, trailer, seg.size);
          await this.#fs.fdatasync(seg.fd);
        }
        seg.size += trailer.length;
        this.#sink.fileClosed();
        await this.#fs.close(seg.fd);
        seg.fd = -1;
      };
      ({ segInfo, cpInfo, publishing } = await this.#finishSeal(seg, c, writeTrailer()));
    } catch (e) {
      this.#fail(e, `sealing ${seg.path}`);
      throw ioError(`sealing ${seg.path}`, e);
    }
    const treeSize = segInfo.firstIndex + segInfo.count;
    const published = publishing.then(
      () => {
        this.#metrics?.ledgerSegmentsSealed.inc();
        this.#log.info({ segment: segInfo.name, entries: segInfo.count, bytes: segInfo.bytes, treeSize }, 'segment sealed');
        this.#updateGauges();
        for (const cb of this.#segListeners) {
          try {
            cb(segInfo);
          } catch (e) {
            this.#log.error({ err: e }, 'onSegmentSealed listener threw');
          }
        }
        this.#emitCheckpoint(cpInfo);
      },
      (e: unknown) => {
        this.#fail(e, `publishing the seal of ${segInfo.name}`);
        throw ioError(`publishing the seal of ${segInfo.name}`, e);
      },
    );
    // Heartbeats, the next seal and close wait for the publishing (allSettled also marks `published` handled).
    this.#cpChain = Promise.allSettled([this.#cpChain, published]).then(() => undefined);
    return { published };
  }

  /**
   * Once `trailerDurable` resolved (the trailer written and fdatasync'd; recovery passes an already
   * durable one): head.checkpoint, the checkpoint file, the rename to `.seg` and the next open
   * segment, with the directory fsyncs that make each step durable.
   *
   * Two phases. First, in parallel with each other and with the trailer, the three new files are
   * written and fsync'd under temporary names (invisible to readers; recovery deletes leftovers),
   * and the next segment's temporary file `<seq>.seg.open.tmp` also gets its directory fsync'd and
   * is opened. When all of that is durable, the next segment becomes the open segment at once:
   * appends go on into it while the second phase publishes the seal in the order recovery relies
   * on — head.checkpoint durable before the checkpoint file appears (#persistCheckpoint says why),
   * the sealed rename durable before the next segment gets its `.seg.open` name (so a crash never
   * leaves two open segments). A crash during the second phase leaves entries acknowledged in
   * `<seq>.seg.open.tmp`, which recovery adopts (#adoptNext): it exists durably, its header links
   * to the durable trailer's checkpoint, and its frames are checked like any open segment's. So a
   * seal holds acknowledgements for about two fsync latencies instead of six. Each phase's steps are
   * one list (one native thread-pool job with the default fs, file-ops.ts).
   *
   * Returns when appends may go to the next segment; `publishing` settles when the second phase
   * is done. With `adopt` (recovery, #adoptNext) the next segment is the existing temporary file of
   * that path: it is renamed in the second phase but neither written nor opened, and the caller
   * recovers it afterwards.
   */
  async #finishSeal(
    seg: OpenSegment,
    c: LastCheckpoint,
    trailerDurable: Promise<void>,
    adopt?: string,
  ): Promise<{ segInfo: SealedSegmentInfo; cpInfo: CheckpointInfo; publishing: Promise<void> }> {
    const cpName = checkpointFileName(c.cp.seq, c.cp.size, c.cp.toMs, c.cp.kind);
    const bytes = enc.encode(c.note);
    const existing = this.#cps.get(cpName); // recovery finishing an interrupted seal may find it
    const nextSeq = seg.seq + 1;
    const nextName = segmentFileName(nextSeq) + '.open';
    const nextPath = path.join(this.#segDir, nextName);
    const nextHeader = this.#segmentHeader(nextSeq, c.cp.bodyHash);
    const head = this.#prepare(this.#dir, HEAD_FILE, bytes);
    const cp = this.#prepare(this.#cpDir, cpName, bytes);
    const next = adopt === undefined ? this.#prepare(this.#segDir, nextName, nextHeader) : undefined;
    const nextTmp = adopt ?? next!.tmp;
    // allSettled, not all: when one step fails, the others must be finished before the caller fails
    // the ledger and closes its files (a trailer write still running would close a reused fd).
    // The next segment is opened through its temporary name (the fd follows the renames).
    const nextFd = next ? this.#ops([next.op, { kind: 'fsyncDir', dir: this.#segDir }]).then(() => this.#fs.open(next.tmp, 'r+')) : Promise.resolve(-1);
    const steps = await Promise.allSettled([trailerDurable, this.#ops([head.op]), existing ? Promise.resolve() : this.#ops([cp.op]), nextFd]);
    const opened = steps[3].status === 'fulfilled' ? steps[3].value : -1;
    const failed = steps.find((r) => r.status === 'rejected');
    if (failed) {
      if (opened >= 0) await this.#fs.close(opened).catch(() => undefined);
      throw failed.reason;
    }
    const name = segmentFileName(seg.seq);
    const sealedPath = path.join(this.#segDir, name);
    this.#fixedBytes = bytes.length;
    let cpInfo = existing;
    if (!cpInfo) {
      cpInfo = { name: cpName, path: path.join(this.#cpDir, cpName), kind: c.cp.kind, seq: c.cp.seq, size: c.cp.size, toMs: c.cp.toMs, bytes: bytes.length };
      this.#cps.set(cpName, cpInfo);
      this.#cpBytes += cpInfo.bytes;
    }
    this.#setLast(c);
    const segInfo: SealedSegmentInfo = {
      name,
      path: sealedPath,
      seq: seg.seq,
      firstIndex: seg.firstIndex,
      count: seg.count,
      bytes: seg.size,
      checkpointName: cpName,
    };
    // Listed and counted as sealed once published; until then its bytes still count against max_disk_bytes.
    this.#publishingBytes += segInfo.bytes;
    if (!adopt) this.#setOpenSegment(nextSeq, nextTmp, opened, nextHeader.length);
    const publishing = this.#ops([
      { kind: 'rename', from: head.tmp, to: path.join(this.#dir, HEAD_FILE) },
      { kind: 'fsyncDir', dir: this.#dir },
      ...(existing ? [] : [{ kind: 'rename', from: cp.tmp, to: path.join(this.#cpDir, cpName) } as const]),
      { kind: 'rename', from: seg.path, to: sealedPath },
      { kind: 'fsyncDir', dir: this.#segDir },
      { kind: 'fsyncDir', dir: this.#cpDir },
      { kind: 'rename', from: nextTmp, to: nextPath },
      { kind: 'fsyncDir', dir: this.#segDir },
    ]).then(() => {
      if (this.#seg.seq === nextSeq) this.#seg.path = nextPath;
      this.#publishingBytes -= segInfo.bytes;
      this.#sealed.set(name, segInfo);
      this.#sealedBytes += segInfo.bytes;
    });
    return { segInfo, cpInfo, publishing };
  }

  /** The header of a new segment starting at the current tree. */
  #segmentHeader(seq: number, prevCheckpointHash: Uint8Array): Uint8Array {
    return encodeHeader({
      seq,
      firstIndex: this.#frontier.size,
      createdMs: this.#clock(),
      origin: this.#cfg.origin,
      prevCheckpointHash,
      chainPrev: this.#chain,
      frontier: this.#frontier,
    });
  }

  #setOpenSegment(seq: number, p: string, fd: number, headerLength: number): void {
    this.#seg = { seq, firstIndex: this.#frontier.size, path: p, fd, size: headerLength, count: 0, firstEntryMs: undefined, dirty: false };
  }

  /** Creates `<seq>.seg.open` with its header (tmp + fsync + rename) and makes it the open segment. */
  async #createOpenSegment(seq: number, prevCheckpointHash: Uint8Array): Promise<void> {
    const header = this.#segmentHeader(seq, prevCheckpointHash);
    const name = segmentFileName(seq) + '.open';
    await this.#ops(this.#atomic(this.#segDir, name, header));
    const p = path.join(this.#segDir, name);
    this.#setOpenSegment(seq, p, await this.#fs.open(p, 'r+'), header.length);
  }

  #emitCheckpoint(info: CheckpointInfo): void {
    for (const cb of this.#cpListeners) {
      try {
        cb(info);
      } catch (e) {
        this.#log.error({ err: e }, 'onCheckpoint listener threw');
      }
    }
  }

  #updateGauges(): void {
    const m = this.#metrics;
    if (!m) return;
    m.ledgerDiskBytes.set(this.diskBytes);
    m.ledgerTreeSize.set(this.#frontier.size);
  }

  async #appendReleased(name: string): Promise<void> {
    const p = path.join(this.#dir, RELEASED_FILE);
    const fd = await this.#fs.open(p, 'a', 0o644);
    try {
      const size = await this.#fs.size(p);
      await this.#fs.writeAll(fd, enc.encode(name + '\n'), size);
      await this.#fs.fdatasync(fd);
    } finally {
      await this.#fs.close(fd);
    }
  }

  async #close(): Promise<void> {
    this.stopAccepting();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    while (this.#loop) await this.#loop;
    let err: unknown;
    if (this.#state !== 'failed') {
      try {
        if (this.#seg.count > 0) await this.seal();
        else if (this.#last === undefined || this.#last.cp.size !== this.#frontier.size) await this.heartbeat();
      } catch (e) {
        err = e;
      }
      while (this.#loop) await this.#loop;
    }
    await this.#cpChain; // a heartbeat still being made durable
    await this.#bgSync;
    if (this.#seg.fd >= 0) {
      try {
        await this.#fs.close(this.#seg.fd);
      } catch {
        // closing after a failure: nothing more to lose
      }
      this.#seg.fd = -1;
    }
    this.#sink.close(); // the loop has ended: nothing is in flight
    if (this.#state !== 'failed') this.#state = 'closed';
    if (err) throw err;
  }

  // ---------------------------------------------------------------- recovery

  async #recover(): Promise<'recovered' | 'adopted'> {
    const fs = this.#fs;
    const origin = this.#cfg.origin;
    try {
      await fs.mkdirp(this.#segDir);
      await fs.mkdirp(this.#cpDir);
      await fs.fsyncDir(path.dirname(this.#dir));
      await fs.fsyncDir(this.#dir);
    } catch (e) {
      throw ioError(`creating ledger directory ${this.#dir}`, e);
    }
    const read = async (p: string): Promise<Uint8Array> => {
      try {
        return await fs.readFile(p);
      } catch (e) {
        throw ioError(`reading ${p}`, e);
      }
    };
    /** The names in `d` other than `.tmp` files, sorted, and the `.tmp` names matching `keep` (`kept`). */
    const list = async (d: string, keep?: RegExp): Promise<{ names: string[]; kept: string[] }> => {
      const all = await fs.readdir(d);
      // Leftovers of an interrupted atomic write never became visible: remove them. Except a next
      // segment that a seal's publishing left under its temporary name (#adoptNext decides).
      const tmps = all.filter((x) => x.endsWith('.tmp'));
      const kept = tmps.filter((x) => keep?.test(x) === true);
      for (const n of tmps) if (!kept.includes(n)) await fs.unlink(path.join(d, n));
      return { names: all.filter((x) => !x.endsWith('.tmp')).sort(), kept };
    };
    const rootNames = (await list(this.#dir)).names;
    const { names: segNames, kept: pendingNext } = await list(this.#segDir, NEXT_TMP_NAME);
    const cpNames = (await list(this.#cpDir)).names;
    if (pendingNext.length > 1) {
      throw new SealtrailError('LEDGER_CORRUPT', `ledger corrupt: ${this.#segDir} holds ${pendingNext.length} next segments under temporary names (${pendingNext.join(', ')}); a seal leaves at most one`);
    }
    /** The next segment a seal's publishing left behind, if it follows segment `seq`; else it is removed (below). */
    const pending = (seq: number): string | undefined =>
      pendingNext[0] === segmentFileName(seq + 1) + '.open.tmp' ? path.join(this.#segDir, pendingNext[0]) : undefined;
    const dropPending = async (): Promise<void> => {
      for (const n of pendingNext) await fs.unlink(path.join(this.#segDir, n));
    };

    // Released segments (forwarded and deleted): their absence is expected.
    const released = new Set<string>();
    if (rootNames.includes(RELEASED_FILE)) {
      for (const line of dec.decode(await read(path.join(this.#dir, RELEASED_FILE))).split('\n')) if (line) released.add(line);
      this.#cpReleaseRecorded = [...released].some((n) => n.endsWith('.cp'));
    }

    // The newest checkpoint (head). Its signature is checked when it was made with our key.
    let head: LastCheckpoint | undefined;
    if (rootNames.includes(HEAD_FILE)) {
      const note = dec.decode(await read(path.join(this.#dir, HEAD_FILE)));
      head = this.#parseNote(note, HEAD_FILE);
      this.#fixedBytes = enc.encode(note).length;
    }

    const sealedSeqs: number[] = [];
    const opens: number[] = [];
    for (const n of segNames) {
      const s = parseSegmentFileName(n);
      if (s !== undefined) {
        if (released.has(n)) {
          await fs.unlink(path.join(this.#segDir, n)); // a release interrupted before its unlink
          continue;
        }
        sealedSeqs.push(s);
        continue;
      }
      const m = OPEN_NAME.exec(n);
      if (m) opens.push(Number(m[1]));
      else this.#log.warn({ file: path.join(this.#segDir, n) }, 'unknown file in the ledger segments directory (ignored)');
    }
    sealedSeqs.sort((a, b) => a - b);
    if (opens.length > 1) {
      throw new SealtrailError('LEDGER_CORRUPT', `ledger corrupt: ${this.#segDir} holds ${opens.length} open segments (${opens.join(', ')}); only one can be open`);
    }
    const openSeq = opens[0];
    const lastSealed = sealedSeqs.at(-1);
    const nextSeq = openSeq ?? (lastSealed === undefined ? 0 : lastSealed + 1);
    if (openSeq !== undefined && lastSealed !== undefined && openSeq <= lastSealed) {
      throw new SealtrailError('LEDGER_CORRUPT', `ledger corrupt: open segment ${openSeq} is not after the last sealed segment ${lastSealed}`);
    }
    for (let s = 0; s < nextSeq; s++) {
      const n = segmentFileName(s);
      if (!sealedSeqs.includes(s) && !released.has(n)) {
        throw new SealtrailError('LEDGER_CORRUPT', `ledger corrupt: segment ${path.join(this.#segDir, n)} is missing (not released by forwarding); segments must be contiguous`);
      }
    }

    // Every local sealed segment is checked in full: CRC, chain, root against its seal, links.
    // Its bytes are mapped, not read (LedgerFs.readSealed) and given back once it is checked: the
    // scan keeps copies of what it returns, never views of them.
    let prevEnd: { scan: SegmentScan; cp: LastCheckpoint; name: string } | undefined;
    for (const s of sealedSeqs) {
      const name = segmentFileName(s);
      const file = path.join(this.#segDir, name);
      let sealed: SealedBytes;
      try {
        sealed = await fs.readSealed(file);
      } catch (e) {
        throw ioError(`reading ${file}`, e);
      }
      const size = sealed.bytes.length;
      let scan: SegmentScan;
      let cp: LastCheckpoint;
      try {
        try {
          scan = scanSegment(sealed.bytes, { sealed: true });
        } catch (e) {
          throw corrupt(file, e);
        }
        this.#checkHeader(scan.header, file, s, prevEnd);
        cp = this.#checkSeal(scan, file);
      } finally {
        sealed.release();
      }
      this.#sealedBytes += size;
      this.#sealed.set(name, {
        name,
        path: file,
        seq: s,
        firstIndex: scan.header.firstIndex,
        count: scan.count,
        bytes: size,
        checkpointName: checkpointFileName(cp.cp.seq, cp.cp.size, cp.cp.toMs, 'seal'),
      });
      prevEnd = { scan, cp, name };
    }

    for (const n of cpNames) {
      const m = CP_NAME.exec(n);
      if (!m) {
        this.#log.warn({ file: path.join(this.#cpDir, n) }, 'unknown file in the ledger checkpoints directory (ignored)');
        continue;
      }
      const p = path.join(this.#cpDir, n);
      const size = await fs.size(p);
      this.#cpBytes += size;
      this.#cps.set(n, { name: n, path: p, kind: m[4] as CheckpointKind, seq: Number(m[1]), size: Number(m[2]), toMs: Number(m[3]), bytes: size });
    }

    if (openSeq === undefined) {
      if (prevEnd === undefined) {
        await dropPending();
        if (head !== undefined || released.size > 0) {
          throw new SealtrailError('LEDGER_CORRUPT', `ledger corrupt: ${this.#dir} has a checkpoint or released segments but no segment files; refusing to start a new log under the same origin`);
        }
        // A fresh ledger: segment 0, chain seeded with the origin (hash.ts chainSeed).
        this.#frontier = Frontier.empty();
        this.#chain = chainSeed(origin);
        this.#last = undefined;
        await this.#createOpenSegment(0, new Uint8Array(HASH_SIZE));
        await fs.fsyncDir(this.#segDir);
        this.#log.info({ dir: this.#dir, origin }, 'new ledger created');
        return 'recovered';
      }
      // A crash between renaming the sealed segment and publishing the next one under its name.
      const adopt = pending(prevEnd.scan.header.seq);
      if (adopt && (await this.#adoptNext(adopt, prevEnd))) {
        await fs.rename(adopt, path.join(this.#segDir, segmentFileName(prevEnd.scan.header.seq + 1) + '.open'));
        await fs.fsyncDir(this.#segDir);
        this.#log.warn({ segment: prevEnd.scan.header.seq + 1 }, 'adopted the next segment a crash left under its temporary name');
        return 'adopted';
      }
      await dropPending();
      // A crash between renaming the sealed segment and creating the next one.
      this.#frontier = prevEnd.scan.frontier.clone();
      this.#chain = prevEnd.scan.chain;
      this.#last = this.#newest(head, prevEnd.cp);
      this.#checkHeadAgainst(head, this.#frontier.size, new Map([[this.#frontier.size, this.#frontier.root()]]), HEAD_FILE);
      await this.#ensureCheckpointFile(prevEnd.cp);
      await this.#createOpenSegment(nextSeq, prevEnd.cp.cp.bodyHash);
      await fs.fsyncDir(this.#segDir);
      await this.#rotateIfNeeded();
      this.#log.info({ treeSize: this.#frontier.size, segment: nextSeq }, 'ledger recovered (next segment created)');
      return 'recovered';
    }

    // The open segment.
    const openName = segmentFileName(openSeq) + '.open';
    const openPath = path.join(this.#segDir, openName);
    const bytes = await read(openPath);
    let scan: SegmentScan;
    try {
      scan = scanSegment(bytes, { sealed: false, rootsAt: head ? [head.cp.size] : [] });
    } catch (e) {
      throw corrupt(openPath, e);
    }
    this.#checkHeader(scan.header, openPath, openSeq, prevEnd);
    if (prevEnd === undefined && openSeq > 0 && head === undefined) {
      throw new SealtrailError('LEDGER_CORRUPT', `ledger corrupt: ${HEAD_FILE} is missing, cannot link segment ${openSeq} to its predecessors`);
    }
    if (scan.torn) {
      const fields = { file: openPath, offset: scan.torn.offset, bytes: scan.torn.bytes, reason: scan.torn.reason, keptEntries: scan.count };
      // Zeros alone are normal after a crash: the commit writer writes them ahead of its commits.
      if (scan.torn.reason === ZERO_TAIL) this.#log.info(fields, 'cutting off the zeros written ahead of the last commit (nothing acknowledged is in them)');
      else this.#log.warn(fields, 'cutting off a torn tail left by a crash (these bytes were never acknowledged)');
      const fd = await fs.open(openPath, 'r+');
      try {
        await fs.ftruncate(fd, scan.torn.offset);
        await fs.fdatasync(fd);
      } finally {
        await fs.close(fd);
      }
    }
    this.#frontier = scan.frontier.clone();
    this.#chain = scan.chain;
    const fd = await fs.open(openPath, 'r+');
    this.#seg = {
      seq: openSeq,
      firstIndex: scan.header.firstIndex,
      path: openPath,
      fd,
      size: scan.goodEnd,
      count: scan.count,
      firstEntryMs: scan.count > 0 ? this.#clock() : undefined,
      dirty: false,
    };

    if (scan.trailer) {
      // Sealed but not renamed: the trailer's checkpoint is the newest one.
      const cp = this.#checkSeal(scan, openPath);
      this.#checkHeadAgainst(head, this.#frontier.size, new Map([...scan.roots, [this.#frontier.size, this.#frontier.root()]]), HEAD_FILE);
      this.#last = this.#newest(head, cp);
      this.#seg.size = bytes.length;
      await fs.close(fd);
      this.#seg.fd = -1;
      const adopt = pending(openSeq);
      if (adopt && (await this.#adoptNext(adopt, { scan, cp, name: openName }))) {
        const { segInfo, publishing } = await this.#finishSeal(this.#seg, cp, Promise.resolve(), adopt);
        await publishing;
        this.#log.warn({ segment: segInfo.name, next: openSeq + 1 }, 'finished a seal interrupted by a crash and adopted the next segment left under its temporary name');
        return 'adopted';
      }
      await dropPending();
      const { segInfo, publishing } = await this.#finishSeal(this.#seg, cp, Promise.resolve());
      await publishing;
      this.#log.info({ segment: segInfo.name }, 'finished a seal interrupted by a crash');
      await this.#rotateIfNeeded();
    } else {
      this.#checkHeadAgainst(head, this.#frontier.size, scan.roots, HEAD_FILE);
      if (head && head.cp.size < scan.header.firstIndex) {
        throw new SealtrailError('LEDGER_CORRUPT', `ledger corrupt: ${HEAD_FILE} covers ${head.cp.size} entries, older than the open segment's start ${scan.header.firstIndex}`);
      }
      // Without head.checkpoint (deleted?), the last local seal still links the chain: never a second genesis.
      this.#last = head ?? prevEnd?.cp;
      // A crash between writing head.checkpoint and its checkpoints/ file leaves the file missing.
      if (head) await this.#ensureCheckpointFile(head);
      await this.#rotateIfNeeded();
      // Without a trailer nothing was acknowledged in a next segment (a seal switches to it only once
      // the trailer is durable): a leftover is an interrupted creation.
      await dropPending();
      if (scan.count > 0) {
        // Entries a crash left in an unsealed segment get their seal now.
        await (await this.#sealNow()).published;
      }
    }
    this.#log.info({ dir: this.#dir, origin, treeSize: this.#frontier.size, segment: this.#seg.seq }, 'ledger opened');
    this.#log.debug({ hashing: nativeHashStatus }, 'ledger hashing implementation');
    return 'recovered';
  }

  /**
   * Whether `tmp` (`<seq>.seg.open.tmp`) is the next segment of the seal of `prev`, to be adopted.
   * A seal creates that file (header only) and fsyncs it and its directory before it acknowledges
   * anything in it (#finishSeal), so: a header cut short is an interrupted creation that holds no
   * acknowledged entry (false: the caller removes it); a complete header must link to `prev`'s
   * seal (true), and anything else is corruption — refused, never removed. The frames after the
   * header are checked by the next recovery pass like any open segment's.
   * @throws SealtrailError LEDGER_CORRUPT
   */
  async #adoptNext(tmp: string, prev: { scan: SegmentScan; cp: LastCheckpoint; name: string }): Promise<boolean> {
    let bytes: Uint8Array;
    try {
      bytes = await this.#fs.readFile(tmp);
    } catch (e) {
      throw ioError(`reading ${tmp}`, e);
    }
    let header: SegmentHeader;
    try {
      header = decodeHeader(bytes).header;
    } catch (e) {
      if (e instanceof SegmentFormatError && e.check === 'truncated') {
        this.#log.warn({ file: tmp, bytes: bytes.length }, 'removing a next segment whose creation a crash interrupted (it holds no acknowledged entry)');
        return false;
      }
      throw corrupt(tmp, e);
    }
    this.#checkHeader(header, tmp, prev.scan.header.seq + 1, prev);
    return true;
  }

  /**
   * Key rotation (DESIGN.md "Keys"): when the newest checkpoint was signed by the previous key, the
   * first checkpoint now is a heartbeat signed by that old key announcing the new one; from the
   * next checkpoint on, only the new key signs. A newest checkpoint signed by neither key refuses the start.
   * @throws SealtrailError CONFIG_INVALID
   */
  async #rotateIfNeeded(): Promise<void> {
    const last = this.#last;
    if (!last || last.signedBy === 'current') return;
    if (last.signedBy === 'previous' && this.#previous) {
      await this.#heartbeat({ oldSigner: this.#previous, announce: this.#signer.verifierKey });
      this.#log.warn({ newKey: this.#signer.verifierKey, oldKey: this.#previous.verifierKey }, 'signing key rotated: the old key announced the new one in a heartbeat checkpoint');
      return;
    }
    const sig = parseSignedNote(last.note);
    const names = sig.ok ? sig.value.signatures.map((x) => `${x.name} (key ID ${Buffer.from(x.keyId).toString('hex')})`).join(', ') : '?';
    throw new SealtrailError(
      'CONFIG_INVALID',
      `the ledger's last checkpoint was signed by key ${names}, which is neither signing.key_file (${this.#signer.name}, key ID ${Buffer.from(this.#signer.keyId).toString('hex')})${this.#previous ? ' nor signing.previous_key_file' : ''}: configure signing.key_file or signing.previous_key_file with it`,
    );
  }

  #parseNote(note: string, file: string): LastCheckpoint {
    const n = parseSignedNote(note);
    if (!n.ok) throw new SealtrailError('LEDGER_CORRUPT', `ledger corrupt: ${file}: checkpoint note does not parse (${n.detail})`);
    const b = parseCheckpointBody(n.value.body);
    if (!b.ok) throw new SealtrailError('LEDGER_CORRUPT', `ledger corrupt: ${file}: checkpoint body does not parse (${b.detail})`);
    if (b.value.origin !== this.#cfg.origin) {
      throw new SealtrailError(
        'CONFIG_INVALID',
        `ledger.dir ${this.#dir} holds the log of origin "${b.value.origin}" but ledger.origin is "${this.#cfg.origin}": a log keeps its origin for life. Set ledger.origin back, or point ledger.dir at a new directory for a new log`,
      );
    }
    // A signature line carrying a configured key's name and ID must verify (a rotated-out key's
    // lines are simply not ours to check).
    const body = enc.encode(n.value.body);
    const check = (signer: Signer | undefined): boolean => {
      if (!signer) return false;
      const lines = n.value.signatures.filter((s) => hashEqual(s.keyId, signer.keyId) && s.name === signer.name);
      if (lines.length === 0) return false;
      const v = verifierFor(signer);
      if (!lines.some((s) => v.verify(body, s.signature))) {
        throw new SealtrailError('LEDGER_CORRUPT', `ledger corrupt: ${file}: checkpoint signature of key ${signer.name} does not verify`);
      }
      return true;
    };
    const signedBy = check(this.#signer) ? 'current' : check(this.#previous) ? 'previous' : 'unknown';
    return { note, cp: b.value, signedBy };
  }

  #checkHeader(h: SegmentHeader, file: string, seq: number, prev: { scan: SegmentScan; cp: LastCheckpoint; name: string } | undefined): void {
    if (h.origin !== this.#cfg.origin) {
      throw new SealtrailError(
        'CONFIG_INVALID',
        `ledger.dir ${this.#dir} holds the log of origin "${h.origin}" (${file}) but ledger.origin is "${this.#cfg.origin}": a log keeps its origin for life. Set ledger.origin back, or point ledger.dir at a new directory for a new log`,
      );
    }
    const bad = (what: string) => new SealtrailError('LEDGER_CORRUPT', `ledger corrupt: ${file}: ${what}`);
    if (h.seq !== seq) throw bad(`header says segment ${h.seq} but the file name says ${seq}`);
    if (seq === 0) {
      if (h.firstIndex !== 0 || !hashEqual(h.chainPrev, chainSeed(this.#cfg.origin))) throw bad('segment 0 does not start the log (index 0, chain seed of the origin)');
    }
    if (prev && prev.scan.header.seq === seq - 1) {
      if (h.firstIndex !== prev.scan.header.firstIndex + prev.scan.count) throw bad(`first index ${h.firstIndex} does not follow ${prev.name} (ends at ${prev.scan.header.firstIndex + prev.scan.count})`);
      if (!hashEqual(h.chainPrev, prev.scan.chain)) throw bad(`chain does not continue from ${prev.name}`);
      if (!h.frontier.equals(prev.scan.frontier)) throw bad(`start frontier differs from the end of ${prev.name}`);
      if (!hashEqual(h.prevCheckpointHash, prev.cp.cp.bodyHash)) throw bad(`previous checkpoint hash is not the seal of ${prev.name}`);
    }
  }

  /** The trailer's checkpoint must be a seal of this segment whose size and root match the recomputed tree. */
  #checkSeal(scan: SegmentScan, file: string): LastCheckpoint {
    const t = scan.trailer!;
    const c = this.#parseNote(dec.decode(t.trailer.checkpoint), `${file} (trailer checkpoint)`);
    const bad = (what: string) => new SealtrailError('LEDGER_CORRUPT', `ledger corrupt: ${file}: trailer checkpoint at offset ${t.offset}: ${what}`);
    if (c.cp.kind !== 'seal') throw bad(`kind is ${c.cp.kind}, expected seal`);
    if (c.cp.seq !== scan.header.seq) throw bad(`names segment ${c.cp.seq}`);
    if (c.cp.size !== scan.frontier.size) throw bad(`tree size ${c.cp.size} but the segment ends at ${scan.frontier.size}`);
    if (!hashEqual(c.cp.root, scan.frontier.root())) throw bad('root hash differs from the recomputed Merkle root');
    return c;
  }

  #checkHeadAgainst(head: LastCheckpoint | undefined, size: number, roots: ReadonlyMap<number, Uint8Array>, file: string): void {
    if (!head) return;
    if (head.cp.size > size) {
      throw new SealtrailError(
        'LEDGER_CORRUPT',
        `ledger corrupt: ${file} (a signed checkpoint) covers ${head.cp.size} entries but only ${size} are on disk: durable, acknowledged entries are missing`,
      );
    }
    const r = roots.get(head.cp.size);
    if (r && !hashEqual(r, head.cp.root)) {
      throw new SealtrailError('LEDGER_CORRUPT', `ledger corrupt: ${file}: root at tree size ${head.cp.size} differs from the recomputed Merkle root`);
    }
  }

  #newest(a: LastCheckpoint | undefined, b: LastCheckpoint): LastCheckpoint {
    if (!a) return b;
    return a.cp.toMs > b.cp.toMs ? a : b;
  }

  async #ensureCheckpointFile(c: LastCheckpoint): Promise<void> {
    const name = checkpointFileName(c.cp.seq, c.cp.size, c.cp.toMs, c.cp.kind);
    if (!this.#cps.has(name)) await this.#persistCheckpoint(c);
    await this.#ops([
      { kind: 'fsyncDir', dir: this.#cpDir },
      { kind: 'fsyncDir', dir: this.#dir },
    ]);
  }
}
