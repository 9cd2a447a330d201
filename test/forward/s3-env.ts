/**
 * The real S3 Object Lock server for tests (Ceph RGW started by scripts/s3-server.sh).
 *
 * Tests that need it read SEALTRAIL_S3_ENDPOINT, SEALTRAIL_S3_REGION, SEALTRAIL_S3_ACCESS_KEY_ID and
 * SEALTRAIL_S3_SECRET_ACCESS_KEY (printed by `scripts/s3-server.sh start`). When the endpoint is
 * unset they are skipped, with the reason printed — unless SEALTRAIL_REQUIRE_S3=1 (CI), where one
 * test fails with instructions instead, so CI can never pass without having run them.
 */
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { it } from 'vitest';
import { makeS3Client } from '../../src/forward/s3.js';

export interface S3Env {
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

function readEnv(): S3Env | undefined {
  const endpoint = process.env.SEALTRAIL_S3_ENDPOINT;
  if (!endpoint) return undefined;
  return {
    endpoint,
    region: process.env.SEALTRAIL_S3_REGION ?? 'us-east-1',
    accessKeyId: process.env.SEALTRAIL_S3_ACCESS_KEY_ID ?? 'SEALTRAILTESTACCESS0',
    secretAccessKey: process.env.SEALTRAIL_S3_SECRET_ACCESS_KEY ?? 'sealtrail-test-secret-key-not-for-production-0',
  };
}

export const s3env = readEnv();
export const S3_REQUIRED = process.env.SEALTRAIL_REQUIRE_S3 === '1';
export const S3_SKIP_REASON =
  'needs the real S3 Object Lock server: run `eval "$(scripts/s3-server.sh start)"` first (SEALTRAIL_S3_ENDPOINT is unset)';

/** True when S3 tests must be skipped; registers the failing test when S3 is required but missing. */
export function skipS3(): boolean {
  if (s3env) return false;
  if (S3_REQUIRED) {
    it('S3 server is available (SEALTRAIL_REQUIRE_S3=1)', () => {
      throw new Error(`SEALTRAIL_REQUIRE_S3=1 but SEALTRAIL_S3_ENDPOINT is unset: ${S3_SKIP_REASON}`);
    });
    return true;
  }
  console.warn(`[skipped] S3 tests: ${S3_SKIP_REASON}`);
  return true;
}

export function testClient(): S3Client {
  const e = s3env!;
  return makeS3Client({ bucket: 'any', endpoint: e.endpoint, region: e.region, forcePathStyle: true, accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey });
}

/** Creates a uniquely named bucket; `lock` enables Object Lock (which implies versioning). */
export async function createBucket(client: S3Client, lock: boolean): Promise<string> {
  const Bucket = `st-${lock ? 'lock' : 'plain'}-${randomBytes(5).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket, ...(lock ? { ObjectLockEnabledForBucket: true } : {}) }));
  return Bucket;
}

/** Options for an S3Destination on the test server. */
export function destOptions(name: string, bucket: string, prefix = 'logs') {
  const e = s3env!;
  return {
    name,
    bucket,
    prefix,
    endpoint: e.endpoint,
    region: e.region,
    forcePathStyle: true,
    accessKeyId: e.accessKeyId,
    secretAccessKey: e.secretAccessKey,
    retentionDays: 1,
  };
}
