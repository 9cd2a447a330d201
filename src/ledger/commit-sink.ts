/**
 * Where the ledger's encoded batches go to become durable: the group commit's writer.
 *
 * The ledger submits each batch as soon as it is encoded. While a commit (write + fdatasync) is in
 * flight, submitted batches wait; when it returns, everything that waits goes out as the next
 * commit — its writes in submission order, then ONE fdatasync — and each batch's promise settles
 * once its commit is durable (or failed). After a failed commit nothing more is written: its batches
 * and every later one are refused with the same error (G1: no later entry may reach the disk and be
 * acknowledged ahead of an earlier one that did not).
 *
 * Two implementations with that contract:
 * - NativeCommitSink (the addon's commitWriter, Linux): the next commit starts on the thread pool the
 *   moment the previous fdatasync returns. Why: started from the main thread, it waited until the
 *   event loop noticed the previous one — ≈ 3.6 ms at full load, with the disk idle meanwhile
 *   (docs/benchmarks.md, session 10). With datasync it writes a commit's whole 4 KiB blocks with
 *   O_DIRECT, past the page cache, and only the block it ends in through it (native/sealtrail_hash.c
 *   cw_write_direct; docs/benchmarks.md, session 19), through one O_DIRECT descriptor kept while it
 *   writes the same file (fileClosed lets it go); what it writes through the page cache it drops
 *   from it once durable (drop_durable_pages; session 18).
 * - JsCommitSink over LedgerFs (tests inject faults through it; also without the addon): the same
 *   order with writevAll + fdatasync from the main thread.
 */
import { getSystemErrorName } from 'node:util';
import type { LedgerFs } from './fs.js';
import { nativeCommitWriter } from './native-hash.js';

/**
 * Where a batch leaves its file: `more` commits may follow; `full` — the file takes no more commits,
 * only its last batch (the ledger's segment is full: no zeros are written ahead after it); `last` —
 * the file ends with this batch (a seal's trailer; zeros written ahead are cut first).
 */
export type FileEnd = 'more' | 'full' | 'last';
const FILE_END_CODE: Record<FileEnd, number> = { more: 0, full: 1, last: 2 };

export type CommitResult = { readonly ok: true; readonly secs: number } | { readonly ok: false; readonly error: unknown };

/** Called once per commit that succeeded: entries in it, seconds of its writes + fdatasync. */
export type OnCommit = (entries: number, secs: number) => void;

export interface CommitSink {
  /**
   * Queues one batch: `bufs` written back to back from `position` of `fd`. The caller keeps `bufs`
   * unchanged until the promise settles; it never rejects (failure is `{ ok: false }`).
   */
  submit(fd: number, bufs: readonly Uint8Array[], position: number, entries: number, end?: FileEnd): Promise<CommitResult>;
  /**
   * Whether a file's last batch (a seal's trailer) must go through this sink with end `last`: the
   * native writer with datasync and direct writes, which writes zeros ahead of small commits and so
   * may leave the file longer than its last commit until that batch cuts them (native/sealtrail_hash.c,
   * cw_zero_ahead, cw_end_file). Otherwise the file always ends where its last commit ended.
   */
  readonly endsFiles: boolean;
  /**
   * The caller closed a file it submitted batches for (every batch for it has settled): let go of
   * anything held for it — the native writer's O_DIRECT descriptor, which it otherwise keeps for the
   * next commit to the same file, so a sealed segment is not held open while the writer is idle.
   */
  fileClosed(): void;
  /** No more submissions. Call when every submitted batch has settled. */
  close(): void;
  /** Bytes of commits written with O_DIRECT so far (the native writer with datasync; otherwise 0). */
  directBytes(): number;
}

export interface CommitSinkOptions {
  /** The native writer with datasync may write whole blocks with O_DIRECT (default true; false for tests that compare). */
  readonly direct?: boolean;
  /**
   * Bytes of zeros the native writer with datasync and direct writes may write ahead of a small
   * commit while it has nothing else to do (default 0: none), so that the next commits rewrite space
   * the file has instead of growing it (native/sealtrail_hash.c, cw_zero_ahead). The file may then end
   * in up to that many zeros until its last batch (`submit(…, 'last')`) cuts them.
   */
  readonly zeroAhead?: number;
}

interface Waiting {
  readonly resolve: (r: CommitResult) => void;
  readonly entries: number;
  /** Held until the batch is reported: the native writer only borrows the buffers' memory. */
  readonly bufs: readonly Uint8Array[];
}

/** An Error shaped like node:fs's for errno `e` (positive) from `syscall`. */
function fsError(e: number, syscall: string): Error {
  let code = `E${e}`;
  try {
    code = getSystemErrorName(-e);
  } catch {
    // an errno node does not know: keep the number
  }
  return Object.assign(new Error(`${code}: ${syscall} failed (errno ${e})`), { code, errno: -e, syscall });
}

class NativeCommitSink implements CommitSink {
  readonly endsFiles: boolean;
  readonly #writer: unknown;
  readonly #waiting = new Map<number, Waiting>();
  readonly #onCommit: OnCommit;
  readonly #addon: NonNullable<typeof nativeCommitWriter>;
  #next = 0;

  constructor(addon: NonNullable<typeof nativeCommitWriter>, datasync: boolean, onCommit: OnCommit, direct: boolean, zeroAhead: number) {
    this.#addon = addon;
    this.#onCommit = onCommit;
    this.endsFiles = datasync && direct && zeroAhead > 0;
    this.#writer = addon.commitWriter((first, last, err, syscall, secs) => this.#report(first, last, err, syscall, secs), datasync, direct, zeroAhead);
  }

  submit(fd: number, bufs: readonly Uint8Array[], position: number, entries: number, end: FileEnd = 'more'): Promise<CommitResult> {
    const id = this.#next;
    this.#next = (this.#next + 1) >>> 0;
    return new Promise<CommitResult>((resolve) => {
      this.#waiting.set(id, { resolve, entries, bufs });
      try {
        this.#addon.cwSubmit(this.#writer, id, fd, bufs, position, FILE_END_CODE[end]);
      } catch (e) {
        this.#waiting.delete(id);
        resolve({ ok: false, error: e });
      }
    });
  }

  #report(first: number, last: number, err: number, syscall: string | undefined, secs: number): void {
    const result: CommitResult = err === 0 ? { ok: true, secs } : { ok: false, error: fsError(err, syscall ?? 'write') };
    let entries = 0;
    for (let id = first; ; id = (id + 1) >>> 0) {
      const w = this.#waiting.get(id);
      if (w) {
        this.#waiting.delete(id);
        entries += w.entries;
        w.resolve(result);
      }
      if (id === last) break;
    }
    if (err === 0 && entries > 0) this.#onCommit(entries, secs); // a seal's trailer is no group commit
  }

  fileClosed(): void {
    this.#addon.cwDropDirect?.(this.#writer);
  }

  close(): void {
    this.#addon.cwDropDirect?.(this.#writer);
    this.#addon.cwClose(this.#writer);
  }

  directBytes(): number {
    return this.#addon.cwDirectBytes?.(this.#writer) ?? 0;
  }
}

interface Batch extends Waiting {
  readonly fd: number;
  readonly position: number;
}

class JsCommitSink implements CommitSink {
  readonly endsFiles = false; // never writes past a commit's end
  readonly #fs: LedgerFs;
  readonly #datasync: boolean;
  readonly #onCommit: OnCommit;
  #queue: Batch[] = [];
  #busy = false;
  #failed: unknown;
  #closed = false;

  constructor(fs: LedgerFs, datasync: boolean, onCommit: OnCommit) {
    this.#fs = fs;
    this.#datasync = datasync;
    this.#onCommit = onCommit;
  }

  submit(fd: number, bufs: readonly Uint8Array[], position: number, entries: number): Promise<CommitResult> {
    if (this.#closed) return Promise.resolve({ ok: false, error: new Error('the commit writer is closed') });
    return new Promise<CommitResult>((resolve) => {
      this.#queue.push({ fd, bufs, position, entries, resolve });
      if (!this.#busy) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#busy = true;
    while (this.#queue.length > 0) {
      const taken = this.#queue;
      this.#queue = [];
      let result: CommitResult;
      if (this.#failed !== undefined) {
        result = { ok: false, error: this.#failed };
      } else {
        const t0 = process.hrtime.bigint();
        try {
          // Runs of batches that follow each other on disk (the usual case) go out as one writev.
          for (let i = 0; i < taken.length; ) {
            let j = i + 1;
            let end = taken[i]!.position + size(taken[i]!.bufs);
            while (j < taken.length && taken[j]!.fd === taken[i]!.fd && taken[j]!.position === end) end += size(taken[j++]!.bufs);
            await this.#fs.writevAll(taken[i]!.fd, j === i + 1 ? taken[i]!.bufs : taken.slice(i, j).flatMap((b) => b.bufs), taken[i]!.position);
            i = j;
          }
          // One fd in practice (a seal waits for every commit before it switches segments).
          if (this.#datasync) for (const fd of new Set(taken.map((b) => b.fd))) await this.#fs.fdatasync(fd);
          result = { ok: true, secs: Number(process.hrtime.bigint() - t0) / 1e9 };
        } catch (e) {
          this.#failed = e;
          result = { ok: false, error: e };
        }
      }
      let entries = 0;
      for (const b of taken) {
        entries += b.entries;
        b.resolve(result);
      }
      if (result.ok) this.#onCommit(entries, result.secs);
      // Loop on at once: the next commit starts before the resolved batches' requests are answered.
    }
    this.#busy = false;
  }

  fileClosed(): void {
    // nothing is held between commits
  }

  close(): void {
    this.#closed = true;
  }

  directBytes(): number {
    return 0;
  }
}

function size(bufs: readonly Uint8Array[]): number {
  let n = 0;
  for (const b of bufs) n += b.length;
  return n;
}

/** The native writer with the default fs when the addon has it, else writes through `fs`. */
export function commitSink(fs: LedgerFs | undefined, fallbackFs: LedgerFs, datasync: boolean, onCommit: OnCommit, options: CommitSinkOptions = {}): CommitSink {
  if (fs === undefined && nativeCommitWriter) return new NativeCommitSink(nativeCommitWriter, datasync, onCommit, options.direct ?? true, options.zeroAhead ?? 0);
  return new JsCommitSink(fs ?? fallbackFs, datasync, onCommit);
}
