/**
 * The thin I/O layer under `verify`, `prove` and `export`: turns a SOURCE argument into a
 * {@link LogSource} (src/verify/source.ts) that lists objects and streams their bytes. Kept out of
 * src/verify so that the verifier itself has no filesystem or network code (STYLE.md).
 *
 * SOURCE forms (DESIGN.md "The public contract"):
 *   a ledger directory        DIR with segments/ (and checkpoints/, released) — ledger.ts layout
 *   a filesystem destination  DIR with <originPath(origin)>/segments/ — forward/keys.ts layout
 *   s3://bucket/prefix        with --endpoint/--region/--force-path-style or the AWS environment
 *   dest:NAME                 a destination from --config FILE
 */
import { createReadStream } from 'node:fs';
import { open, readFile, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SealtrailError, errorMessage } from '../errors.js';
import { CANARY_FOLDER, originPath } from '../forward/keys.js';
import { parseCheckpointBody, parseSignedNote } from '../ledger/checkpoint.js';
import { checkpointFileName } from '../ledger/ledger.js';
import { nativeFileMap } from '../ledger/native-hash.js';
import type { LogSource, ObjectReader, StoredItem } from '../verify/source.js';

const HEAD_FILE = 'head.checkpoint';

/** Options that shape how remote SOURCEs are reached. */
export interface SourceOptions {
  /** The expected origin; '' when not given (then only a ledger directory can be opened). */
  readonly origin: string;
  readonly cwd: string;
  readonly endpoint?: string;
  readonly region?: string;
  readonly forcePathStyle?: boolean;
  readonly configFile?: string;
}

const CHUNK = 1 << 20;

function classify(dir: 'segments' | 'checkpoints', name: string): StoredItem['kind'] | 'ignore' {
  if (name.endsWith('.tmp')) return 'ignore'; // an interrupted atomic write, or a next segment a crash left during a seal's publishing (the agent removes or adopts these on start; no checkpoint covers them)
  if (dir === 'segments') {
    if (/^\d{16}\.seg$/.test(name)) return 'segment';
    if (/^\d{16}\.seg\.open$/.test(name)) return 'open-segment';
    return 'unknown';
  }
  return name.endsWith('.cp') ? 'checkpoint' : 'unknown';
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** A log laid out as `<root>/segments` and `<root>/checkpoints` on a filesystem. */
class DirectorySource implements LogSource {
  readonly description: string;
  readonly kind: 'ledger' | 'destination';
  readonly #root: string;

  constructor(description: string, root: string, kind: 'ledger' | 'destination') {
    this.description = description;
    this.#root = root;
    this.kind = kind;
  }

  async list(): Promise<StoredItem[]> {
    const out: StoredItem[] = [];
    for (const dir of ['segments', 'checkpoints'] as const) {
      const path = join(this.#root, dir);
      let names: string[];
      try {
        names = await readdir(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw new SealtrailError('IO', `${this.description}: cannot list ${path}: ${errorMessage(e)}`, { cause: e });
      }
      for (const name of names) {
        if (name === CANARY_FOLDER) continue;
        const kind = classify(dir, name);
        if (kind === 'ignore') continue;
        if (kind === 'open-segment' && this.kind !== 'ledger') {
          out.push({ kind: 'unknown', name, key: `${dir}/${name}`, size: 0, versions: 1, versionIndex: 0, deleteMarker: false });
          continue;
        }
        let size = 0;
        try {
          size = (await stat(join(path, name))).size;
        } catch (e) {
          throw new SealtrailError('IO', `${this.description}: cannot stat ${join(path, name)}: ${errorMessage(e)}`, { cause: e });
        }
        out.push({ kind, name, key: `${dir}/${name}`, size, versions: 1, versionIndex: 0, deleteMarker: false });
      }
    }
    if (this.kind === 'ledger') {
      const head = await this.#headItem(out);
      if (head) out.push(head);
    }
    return out;
  }

  /**
   * A ledger keeps its newest checkpoint in head.checkpoint (written before the checkpoint file,
   * and kept after forwarding released the file). Listing it, under the file name its content
   * gives, lets a ledger whose history was forwarded and released still show how far it got, so
   * comparing it with destinations does not report it as truncated. Its signature is checked like
   * any other checkpoint's. A head that does not parse is listed as unknown (a finding).
   */
  async #headItem(listed: readonly StoredItem[]): Promise<StoredItem | undefined> {
    const path = join(this.#root, HEAD_FILE);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new SealtrailError('IO', `${this.description}: cannot read ${path}: ${errorMessage(e)}`, { cause: e });
    }
    const base = { key: HEAD_FILE, size: bytes.length, versions: 1, versionIndex: 0, deleteMarker: false } as const;
    const note = parseSignedNote(bytes);
    const cp = note.ok ? parseCheckpointBody(note.value.body) : undefined;
    if (!cp?.ok) return { ...base, kind: 'unknown', name: HEAD_FILE };
    const name = checkpointFileName(cp.value.seq, cp.value.size, cp.value.toMs, cp.value.kind);
    if (listed.some((i) => i.kind === 'checkpoint' && i.name === name)) return undefined;
    return { ...base, kind: 'checkpoint', name };
  }

  async *read(item: StoredItem): AsyncIterable<Uint8Array> {
    const path = join(this.#root, item.key);
    try {
      for await (const c of createReadStream(path, { highWaterMark: CHUNK })) yield c as Buffer;
    } catch (e) {
      throw new SealtrailError('IO', `${this.description}: cannot read ${path}: ${errorMessage(e)}`, { cause: e });
    }
  }

  /**
   * Reads straight into the verifier's reused buffers (no allocation per chunk). A sealed segment
   * can also be viewed through a memory mapping (native-hash.ts nativeFileMap: no copy out of the
   * page cache); never the open segment or a checkpoint, which the ledger may still rewrite or cut.
   */
  async openReader(item: StoredItem): Promise<ObjectReader> {
    const path = join(this.#root, item.key);
    const io = (e: unknown): SealtrailError => new SealtrailError('IO', `${this.description}: cannot read ${path}: ${errorMessage(e)}`, { cause: e });
    const fh = await open(path, 'r').catch((e: unknown) => {
      throw io(e);
    });
    let pos = 0;
    const reader: ObjectReader = {
      async read(buf: Uint8Array): Promise<number> {
        let n = 0;
        try {
          while (n < buf.length) {
            const { bytesRead } = await fh.read(buf, n, buf.length - n, pos);
            if (bytesRead === 0) break;
            n += bytesRead;
            pos += bytesRead;
          }
        } catch (e) {
          throw io(e);
        }
        return n;
      },
      close: async () => {
        release();
        await fh.close();
      },
    };
    let mapped: ArrayBuffer | undefined;
    const release = (): void => {
      if (mapped) nativeFileMap?.unmap(mapped);
      mapped = undefined;
    };
    const map = nativeFileMap;
    if (map && item.kind === 'segment') {
      // The size now, not the listed one: mapping past the end of the file would fault.
      const size = (await fh.stat().catch((e: unknown) => {
        throw io(e);
      })).size;
      Object.assign(reader, { mappable: { fd: fh.fd, size } });
      reader.view = async (max: number): Promise<Uint8Array | null> => {
        release();
        if (pos >= size) return null;
        // Windows start on multiples of `max` rounded to 64 KiB, so offsets stay page-aligned.
        const step = Math.max(65536, max - (max % 65536));
        const len = Math.min(step, size - pos);
        try {
          mapped = map.map(fh.fd, pos, len);
        } catch (e) {
          throw io(e);
        }
        pos += len;
        return new Uint8Array(mapped);
      };
    }
    return reader;
  }

  async released(): Promise<ReadonlySet<string>> {
    if (this.kind !== 'ledger') return new Set();
    try {
      const text = await readFile(join(this.#root, 'released'), 'utf8');
      return new Set(text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
      throw new SealtrailError('IO', `${this.description}: cannot read ${join(this.#root, 'released')}: ${errorMessage(e)}`, { cause: e });
    }
  }

  close(): void {}
}

/**
 * Opens one SOURCE argument.
 * @throws SealtrailError USAGE when the argument names nothing usable, IO when it cannot be read
 */
export async function openLogSource(arg: string, o: SourceOptions): Promise<LogSource> {
  const needOrigin = (): void => {
    if (o.origin === '') throw new SealtrailError('USAGE', `source ${arg} is not a ledger directory: give --origin ORIGIN to find the log in it`);
  };
  if (arg.startsWith('s3://') || arg.startsWith('dest:')) {
    needOrigin();
    const { openRemoteSource } = await import('./remote-source.js');
    return openRemoteSource(arg, o);
  }
  const dir = resolve(o.cwd, arg);
  let st;
  try {
    st = await stat(dir);
  } catch (e) {
    throw new SealtrailError('USAGE', `source ${arg}: ${errorMessage(e)}; give a ledger directory, a filesystem destination, s3://bucket/prefix or dest:NAME`);
  }
  if (!st.isDirectory()) {
    throw new SealtrailError('USAGE', `source ${arg} is not a directory; give a ledger directory, a filesystem destination, s3://bucket/prefix or dest:NAME`);
  }
  if (await exists(join(dir, 'segments'))) return new DirectorySource(arg, dir, 'ledger');
  needOrigin();
  const dest = join(dir, originPath(o.origin));
  if (await exists(dest)) return new DirectorySource(arg, dest, 'destination');
  // An empty destination (or one without this origin) is a finding (log.empty), not a usage error.
  return new DirectorySource(arg, dest, 'destination');
}
