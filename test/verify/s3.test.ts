/**
 * `sealtrail verify` reading S3 directly, against the real Object Lock server (scripts/s3-server.sh):
 * a log forwarded with the real S3 destination verifies as `s3://bucket/prefix` and as `dest:NAME`;
 * an overwrite (a second version of a write-once key, which a versioned bucket accepts) is a finding.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectKey } from '../../src/forward/keys.js';
import { S3Destination } from '../../src/forward/s3.js';
import { sha256 } from '../../src/ledger/hash.js';
import { createBucket, destOptions, s3env, skipS3, testClient } from '../forward/s3-env.js';
import { ORIGIN, buildLog, cli, signer, tempDir, writePub } from './helpers.js';

const skip = skipS3();
const A = signer(21);

describe.skipIf(skip)('verify an S3 destination', () => {
  let root: string;
  let bucket: string;
  let pub: string;
  let cfg: string;
  const env = { ...process.env };

  beforeAll(async () => {
    root = await tempDir();
    const ledger = path.join(root, 'ledger');
    fs.mkdirSync(ledger);
    await buildLog({ dir: ledger, signer: A, segments: 3, perSegment: 8 });
    pub = writePub(root, A);
    const client = testClient();
    bucket = await createBucket(client, true);
    const dest = new S3Destination(destOptions('s3-a', bucket, 'logs'));
    for (const [kind, sub] of [['segment', 'segments'], ['checkpoint', 'checkpoints']] as const) {
      for (const name of fs.readdirSync(path.join(ledger, sub)).sort()) {
        if (name.endsWith('.open')) continue;
        const body = new Uint8Array(fs.readFileSync(path.join(ledger, sub, name)));
        const r = await dest.put({ key: objectKey(ORIGIN, kind, name), body, sha256: sha256(body) });
        expect(r.kind).toBe('confirmed');
      }
    }
    dest.close();
    cfg = path.join(root, 'agent.yaml');
    const e = s3env!;
    fs.writeFileSync(
      cfg,
      [
        'receivers: { otlp: { protocols: { http: {} } } }',
        `ledger: { origin: ${ORIGIN} }`,
        'destinations:',
        `  - { name: s3-a, type: s3, bucket: ${bucket}, prefix: logs, endpoint: "${e.endpoint}", region: ${e.region}, force_path_style: true, access_key_id: ${e.accessKeyId}, secret_access_key: ${e.secretAccessKey}, retention: { days: 1 } }`,
        '',
      ].join('\n'),
    );
    // s3:// sources use the standard AWS credential chain (here: the environment).
    process.env.AWS_ACCESS_KEY_ID = e.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = e.secretAccessKey;
  });

  afterAll(async () => {
    process.env.AWS_ACCESS_KEY_ID = env.AWS_ACCESS_KEY_ID;
    process.env.AWS_SECRET_ACCESS_KEY = env.AWS_SECRET_ACCESS_KEY;
    if (env.AWS_ACCESS_KEY_ID === undefined) delete process.env.AWS_ACCESS_KEY_ID;
    if (env.AWS_SECRET_ACCESS_KEY === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
    if (root) await fs.promises.rm(root, { recursive: true, force: true });
  });

  it('s3://bucket/prefix and dest:NAME verify intact (exit 0), and agree with each other', async () => {
    const e = s3env!;
    const r = await cli(['verify', `s3://${bucket}/logs`, 'dest:s3-a', '--config', cfg, '--endpoint', e.endpoint, '--region', e.region, '--force-path-style', '--key', pub, '--origin', ORIGIN, '--json']);
    expect(r.err).not.toMatch(/error/i);
    const doc = JSON.parse(r.out);
    expect(doc.findings).toEqual([]);
    expect(r.code).toBe(0);
    expect(doc.sources[0]).toMatchObject({ segments: 3, entries: 24, treeSize: 24 });
  });

  it('an overwrite (second version of a segment key) → segment.versions; the original version is what gets verified', async () => {
    const e = s3env!;
    const key = `logs/${objectKey(ORIGIN, 'segment', '0000000000000001.seg')}`;
    await testClient().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: new TextEncoder().encode('not a segment') }));
    const r = await cli(['verify', `s3://${bucket}/logs`, '--endpoint', e.endpoint, '--region', e.region, '--force-path-style', '--key', pub, '--origin', ORIGIN, '--json']);
    expect(r.code).toBe(1);
    const found = JSON.parse(r.out).findings.map((f: { check: string; segment: number }) => [f.check, f.segment]);
    expect(found).toEqual([['segment.versions', 1]]);
  });
});
