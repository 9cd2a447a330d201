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
import {
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { errorMessage } from '../errors.js';
import type { Destination } from './destination.js';
import { FsDestination, fsyncDir } from './fs.js';
import { CANARY_FOLDER } from './keys.js';
import { S3Destination, s3ErrorInfo } from './s3.js';

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
  if (dest instanceof S3Destination) return s3Canary(dest, opts);
  return { destination: dest.name, type: dest.type, safe: undefined, checks: [], error: `no canary for destination type ${dest.type}` };
}

function canaryName(now: Date): string {
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

async function s3Canary(dest: S3Destination, opts: CanaryOptions): Promise<CanaryResult> {
  const clock = opts.now ?? (() => new Date());
  const now = clock();
  const Bucket = dest.bucket;
  const Key = `${dest.prefix ? `${dest.prefix}/` : ''}${CANARY_FOLDER}/${canaryName(now)}`;
  const where = `s3://${Bucket}/${Key}`;
  const body = Buffer.from(`sealtrail write-once canary ${now.toISOString()}\n`);
  const sha = createHash('sha256').update(body).digest();
  const checks: CanaryCheck[] = [];
  const base = { destination: dest.name, type: 's3' as const };
  const c = dest.client;
  const describe = (e: unknown): string => {
    const i = s3ErrorInfo(e);
    return `${i.name}${i.status ? ` (HTTP ${i.status})` : ''}: ${i.message}`;
  };

  // These say nothing about write-once-ness: the check itself could not run.
  const cannotCheck = (e: unknown): boolean => {
    const i = s3ErrorInfo(e);
    return i.status === undefined || i.status >= 500 || i.status === 403 || ['NoSuchBucket', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AuthorizationHeaderMalformed', 'PermanentRedirect', 'AccessDenied'].includes(i.name);
  };

  try {
    const lc = await c.send(new GetObjectLockConfigurationCommand({ Bucket }));
    const enabled = lc.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
    checks.push({ name: 'bucket-lock', ok: enabled, detail: enabled ? 'Object Lock is enabled on the bucket' : `bucket ${Bucket} has Object Lock configuration but it is not enabled` });
  } catch (e) {
    if (cannotCheck(e)) return { ...base, safe: undefined, checks, error: `cannot check bucket ${Bucket}: ${describe(e)}` };
    checks.push({ name: 'bucket-lock', ok: false, detail: `bucket ${Bucket} has no Object Lock (${describe(e)}); create it with Object Lock enabled` });
  }

  const retainUntil = new Date(now.getTime() + (opts.lockSeconds ?? 86_400) * 1000);
  let versionId: string | undefined;
  try {
    const r = await c.send(
      new PutObjectCommand({
        Bucket,
        Key,
        Body: body,
        ContentLength: body.length,
        ContentMD5: createHash('md5').update(body).digest('base64'),
        ChecksumSHA256: sha.toString('base64'),
        ObjectLockMode: 'COMPLIANCE',
        ObjectLockRetainUntilDate: retainUntil,
        IfNoneMatch: '*',
      }),
    );
    versionId = r.VersionId;
  } catch (e) {
    if (cannotCheck(e)) return { ...base, safe: undefined, checks, error: `cannot write the canary ${where}: ${describe(e)}` };
    checks.push({ name: 'locked-put', ok: false, detail: `a COMPLIANCE-locked PUT was refused (${describe(e)}): the bucket cannot hold locked objects` });
    return { ...base, safe: false, checks };
  }
  if (versionId === undefined || versionId === 'null') {
    checks.push({ name: 'locked-put', ok: false, detail: 'the PUT returned no version id: the bucket is not versioned, so nothing is locked' });
  }
  try {
    const h = await c.send(new HeadObjectCommand({ Bucket, Key, VersionId: versionId }));
    const locked = h.ObjectLockMode === 'COMPLIANCE' && h.ObjectLockRetainUntilDate !== undefined;
    checks.push({
      name: 'lock-applied',
      ok: locked,
      detail: locked
        ? `the canary is locked in COMPLIANCE mode until ${h.ObjectLockRetainUntilDate!.toISOString()}`
        : `the server ignored the lock headers (mode ${h.ObjectLockMode ?? 'none'})`,
    });
  } catch (e) {
    return { ...base, safe: undefined, checks, error: `cannot read back the canary ${where}: ${describe(e)}` };
  }

  const originalIntact = async (): Promise<boolean> => {
    try {
      const g = await c.send(new GetObjectCommand({ Bucket, Key, VersionId: versionId }));
      const b = await g.Body?.transformToByteArray();
      return b !== undefined && Buffer.from(b).equals(body);
    } catch {
      return false;
    }
  };

  // Attack 1: overwrite the key without any precondition.
  let overwriteNote: string;
  try {
    const r = await c.send(new PutObjectCommand({ Bucket, Key, Body: Buffer.from('overwritten by the canary\n') }));
    overwriteNote = r.VersionId && r.VersionId !== versionId ? `accepted as a new version ${r.VersionId}` : 'accepted';
  } catch (e) {
    overwriteNote = `refused (${describe(e)})`;
  }
  const intactAfterOverwrite = await originalIntact();
  checks.push({
    name: 'overwrite',
    ok: intactAfterOverwrite,
    detail: intactAfterOverwrite
      ? `overwrite ${overwriteNote}; the locked version is intact`
      : `overwrite ${overwriteNote} and the locked version is gone or changed`,
  });

  // Attack 2: delete the locked version itself, asking to bypass governance retention too.
  let deleteNote: string;
  try {
    await c.send(new DeleteObjectCommand({ Bucket, Key, VersionId: versionId, BypassGovernanceRetention: true }));
    deleteNote = 'accepted';
  } catch (e) {
    deleteNote = `refused (${describe(e)})`;
  }
  const intactAfterDelete = await originalIntact();
  checks.push({
    name: 'delete',
    ok: intactAfterDelete,
    detail: intactAfterDelete ? `delete of the locked version ${deleteNote}; it is intact` : `delete of the locked version ${deleteNote}: the object is gone`,
  });
  return { ...base, safe: checks.every((x) => x.ok), checks };
}
