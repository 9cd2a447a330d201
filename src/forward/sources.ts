/**
 * A SealedSource over a plain directory with the ledger's layout (tests, tools). The adapter over
 * the running ledger is in ledger-source.ts.
 */
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir } from './fs.js';
import type { SealedItem, SealedSource } from './replicator.js';

/**
 * A directory with the ledger's layout: `segments/*.seg` and `checkpoints/*.cp`. `release` deletes
 * the file and fsyncs the folder. `notify()` stands in for the ledger's events.
 */
export class DirectorySource implements SealedSource {
  readonly #subs = new Set<() => void>();
  readonly released: string[] = [];

  constructor(readonly dir: string) {}

  async list(): Promise<SealedItem[]> {
    const out: SealedItem[] = [];
    for (const [kind, sub, ext] of [['segment', 'segments', '.seg'], ['checkpoint', 'checkpoints', '.cp']] as const) {
      let names: string[];
      try {
        names = await readdir(join(this.dir, sub));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      for (const name of names.filter((n) => n.endsWith(ext)).sort()) {
        const path = join(this.dir, sub, name);
        const st = await stat(path).catch(() => undefined);
        if (st) out.push({ kind, name, path, sealedAt: st.mtimeMs });
      }
    }
    return out;
  }

  onNew(cb: () => void): () => void {
    this.#subs.add(cb);
    return () => this.#subs.delete(cb);
  }

  notify(): void {
    for (const cb of this.#subs) cb();
  }

  async release(item: SealedItem): Promise<void> {
    await unlink(item.path);
    await fsyncDir(join(item.path, '..'));
    this.released.push(item.name);
  }
}
