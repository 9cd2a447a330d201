/**
 * The write-once canary (G6: "a destination that accepts a delete of a locked object is reported
 * as unsafe"). It writes a small object the way the forwarder writes log objects, then tries to
 * overwrite it and to delete it. A destination where either attack changes or removes the original
 * bytes is unsafe. Canary objects live under `.sealtrail-canary/`, which readers skip.
 *
 * S3: in a versioned lock bucket an overwrite adds a version and a plain delete adds a delete
 * marker; both leave the locked version intact, which is what matters (verify looks at all
 * versions). The attacks use the version id, as an attacker with the keys would.
 */
import { randomBytes } from 'node:crypto';
import { constants as C } from 'node:fs';
import { chmod, mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import type { Destination } from './destination.js';
import { FsDestination, fsyncDir } from './fs.js';
import { CANARY_FOLDER } from './keys.js';

export interface CanaryCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface CanaryResult {
  readonly destination: string;
  readonly type: 'fs' | 's3';
  /** true: both attacks failed; false: unsafe; undefined: could not run (see `error`). */
  readonly safe: boolean | undefined;
  readonly checks: readonly CanaryCheck[];
  /** The canary could not be written or checked at all (unreachable, no permission, …). */
  readonly error?: string;
}

export interface CanaryOptions {
  /** S3 retain-until distance; the lock must outlive the attack. Default one day. */
  readonly lockSeconds?: number;
  readonly now?: () => Date;
}

/** Runs the canary against one destination. Never throws for destination trouble. */
export async function runCanary(dest: Destination, opts: CanaryOptions = {}): Promise<CanaryResult> {
  if (dest instanceof FsDestination) return fsCanary(dest, opts);
  if (dest.type === 's3') {
    // Loaded on demand: the AWS SDK costs ~25 MB of RSS and start-up time when no S3 is configured.
    const { S3Destination } = await import('./s3.js');
    const { s3Canary } = await import('./s3-canary.js');
    if (dest instanceof S3Destination) return s3Canary(dest, opts);
  }
  return { destination: dest.name, type: dest.type, safe: undefined, checks: [], error: `no canary for destination type ${dest.type}` };
}

export function canaryName(now: Date): string {
  return `canary-${now.toISOString().replace(/[:.]/g, '')}-${randomBytes(4).toString('hex')}`;
}

async function fsCanary(dest: FsDestination, opts: CanaryOptions): Promise<CanaryResult> {
  const now = (opts.now ?? (() => new Date()))();
  const dir = join(dest.root, CANARY_FOLDER);
  const path = join(dir, canaryName(now));
  const body = Buffer.from(`sealtrail write-once canary ${now.toISOString()}\n`);
  const checks: CanaryCheck[] = [];
  const base = { destination: dest.name, type: 'fs' as const };
  try {
    await mkdir(dir, { recursive: true });
    const fh = await open(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o444);
    try {
      await fh.write(body);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsyncDir(dir);
  } catch (e) {
    return { ...base, safe: undefined, checks, error: `cannot write the canary file ${path}: ${errorMessage(e)}` };
  }

  // Attack 1: change the read-only file, first directly, then after chmod u+w (anyone with the
  // agent's uid can do that; a WORM volume refuses both).
  let overwritten = false;
  try {
    const fh = await open(path, C.O_WRONLY).catch(async () => {
      await chmod(path, 0o644);
      return open(path, C.O_WRONLY);
    });
    try {
      await fh.write(Buffer.from('X'), 0, 1, 0);
    } finally {
      await fh.close();
    }
    const after = await readFile(path);
    overwritten = !after.equals(body);
  } catch {
    overwritten = false;
  }
  checks.push({
    name: 'overwrite',
    ok: !overwritten,
    detail: overwritten
      ? `the read-only file ${path} could be modified${process.getuid?.() === 0 ? ' (the agent runs as root, which ignores file modes)' : ''}`
      : 'modifying the read-only canary file was refused',
  });

  // Attack 2: delete it.
  let deleted = false;
  try {
    await unlink(path);
    deleted = true;
  } catch {
    deleted = false;
  }
  checks.push({
    name: 'delete',
    ok: !deleted,
    detail: deleted
      ? `the read-only file ${path} could be deleted: the directory is writable (use a WORM volume, or an append-only directory)`
      : 'deleting the canary file was refused',
  });
  return { ...base, safe: !overwritten && !deleted, checks };
}
