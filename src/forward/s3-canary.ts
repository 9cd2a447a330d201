/**
 * The write-once canary for S3 destinations (see canary.ts): kept apart so that the AWS SDK is
 * loaded only when an S3 destination exists.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { type CanaryCheck, type CanaryOptions, type CanaryResult, canaryName } from './canary.js';
import { CANARY_FOLDER } from './keys.js';
import { type S3Destination, s3ErrorInfo } from './s3.js';

export async function s3Canary(dest: S3Destination, opts: CanaryOptions): Promise<CanaryResult> {
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
