/**
 * The ledger's publishing steps — whole-file writes, renames, directory fsyncs — as a list that is
 * built once, in the order recovery relies on, and run by one of two executors:
 * - natively (native/sealtrail_hash.c fileOps, Linux, ledger with its default file system): the
 *   whole list is ONE thread-pool job. Through node:fs every step, and the open/fsync/close of each
 *   directory, waited for a turn of the event loop, which under load is milliseconds of request
 *   decoding; a seal took 9–40 ms that way (docs/benchmarks.md "Ledger");
 * - step by step through a LedgerFs (a test's injected one, or node:fs without the addon), so that
 *   fault injection sees and can fail every single operation.
 * Both stop at the first error and reject with it (node:fs-shaped: code, syscall, path).
 */
import { type LedgerFs, nodeLedgerFs } from './fs.js';
import { nativeFileOps } from './native-hash.js';

export type FileOp =
  /** rename(2) */
  | { readonly kind: 'rename'; readonly from: string; readonly to: string }
  /** fsync of a directory, so that a create/rename in it is durable */
  | { readonly kind: 'fsyncDir'; readonly dir: string }
  /** create or truncate (mode 0644), write all of `data`, fsync, close */
  | { readonly kind: 'writeFile'; readonly path: string; readonly data: Uint8Array };

export type FileOpsRunner = (ops: readonly FileOp[]) => Promise<void>;

/** Runs `ops` in order through `fs`, one awaited call per operation. */
export async function runFileOpsWith(fs: LedgerFs, ops: readonly FileOp[]): Promise<void> {
  for (const o of ops) {
    switch (o.kind) {
      case 'rename':
        await fs.rename(o.from, o.to);
        break;
      case 'fsyncDir':
        await fs.fsyncDir(o.dir);
        break;
      case 'writeFile': {
        const fd = await fs.open(o.path, 'w', 0o644);
        try {
          await fs.writeAll(fd, o.data, 0);
          await fs.fsync(fd);
        } finally {
          await fs.close(fd);
        }
        break;
      }
    }
  }
}

const CODE = { rename: 1, fsyncDir: 2, writeFile: 3 } as const;

/** The native job's argument: [code, path, dest | data] per op. */
function encodeForNative(ops: readonly FileOp[]): [number, string, string | Uint8Array | undefined][] {
  return ops.map((o) => {
    if (o.kind === 'rename') return [CODE.rename, o.from, o.to];
    if (o.kind === 'fsyncDir') return [CODE.fsyncDir, o.dir, undefined];
    return [CODE.writeFile, o.path, o.data];
  });
}

/**
 * The executor for a ledger: the native job when the ledger uses its default file system
 * (`injected` undefined) and the addon has it, else step by step through `injected ?? node:fs`.
 */
export function fileOpsRunner(injected: LedgerFs | undefined): FileOpsRunner {
  const native = injected === undefined ? nativeFileOps : undefined;
  if (native) return (ops) => native(encodeForNative(ops));
  const fs = injected ?? nodeLedgerFs;
  return (ops) => runFileOpsWith(fs, ops);
}
