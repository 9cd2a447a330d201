/**
 * `sealtrail check-destinations` in-process: real config files, real directories and (when
 * available) the real S3 Object Lock server. Exit codes: 0 write-once, 1 unsafe, 2 error.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/commands/check-destinations.js';
import { createBucket, s3env, skipS3, testClient } from './s3-env.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sealtrail-check-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await run(args, { stdout, stderr, env: process.env, cwd: dir });
  return { code, out, err };
}

const HEAD = 'receivers:\n  otlp:\n    protocols:\n      http: { endpoint: 127.0.0.1:0 }\n';

describe('check-destinations', () => {
  it('reports a plain directory as unsafe (exit 1), naming the attack that worked', async () => {
    await writeFile(join(dir, 'c.yaml'), `${HEAD}destinations:\n  - { name: local-worm, type: fs, path: ./worm, accept_unsafe: true }\n`);
    const r = await cli(['--config', 'c.yaml']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^local-worm \(fs .*worm\): UNSAFE \(accepted in the config/m);
    expect(r.out).toMatch(/FAIL delete: the read-only file .* could be deleted/);
  });

  it('usage and config errors exit 2 with the reason', async () => {
    expect((await cli([])).code).toBe(2);
    const missing = await cli(['--config', 'nope.yaml']);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/cannot read config file/);
    await writeFile(join(dir, 'bad.yaml'), `${HEAD}destinations:\n  - { name: x, type: ftp }\n`);
    const bad = await cli(['--config', 'bad.yaml']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/destinations\[0\]/);
    expect((await cli(['--config', 'bad.yaml', '--lock', 'soon'])).code).toBe(2);
  });

  it('a destination that cannot be reached is an error (exit 2), not a verdict', async () => {
    await writeFile(join(dir, 'blocked'), 'x');
    await writeFile(join(dir, 'c.yaml'), `${HEAD}destinations:\n  - { name: w, type: fs, path: ./blocked/worm }\n`);
    const r = await cli(['--config', 'c.yaml', '--json']);
    expect(r.code).toBe(2);
    const j = JSON.parse(r.out) as { safe: boolean; destinations: { verdict: string; error: string }[] };
    expect(j.safe).toBe(false);
    expect(j.destinations[0]!.verdict).toBe('error');
  });
});

const skip = skipS3();
describe.skipIf(skip)('check-destinations against the real S3 Object Lock server', () => {
  let client: S3Client;
  let locked: string;
  let plain: string;
  beforeAll(async () => {
    client = testClient();
    locked = await createBucket(client, true);
    plain = await createBucket(client, false);
  });
  afterAll(() => client?.destroy());

  const s3 = (name: string, bucket: string, endpoint = s3env?.endpoint) =>
    `  - { name: ${name}, type: s3, bucket: ${bucket}, prefix: logs, endpoint: "${endpoint}", region: us-east-1, force_path_style: true,` +
    ` access_key_id: "\${env:SEALTRAIL_S3_ACCESS_KEY_ID}", secret_access_key: "\${env:SEALTRAIL_S3_SECRET_ACCESS_KEY}", retention: { days: 1 } }\n`;

  it('a bucket with Object Lock is safe (exit 0)', async () => {
    await writeFile(join(dir, 'c.yaml'), `${HEAD}destinations:\n${s3('s3-a', locked)}`);
    const r = await cli(['--config', 'c.yaml', '--lock', '1h']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^s3-a \(s3 s3:\/\/.*\/logs at http.*\): SAFE \(write-once\)/m);
    expect(r.out).toMatch(/ok {3}delete: delete of the locked version refused \(AccessDenied \(HTTP 403\)/);
  });

  it('a bucket without Object Lock is unsafe (exit 1); an unreachable endpoint is an error (exit 2)', async () => {
    await writeFile(join(dir, 'c.yaml'), `${HEAD}destinations:\n${s3('s3-a', locked)}${s3('s3-plain', plain)}`);
    const r = await cli(['--config', 'c.yaml', '--json']);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out) as { destinations: { name: string; verdict: string; checks: { ok: boolean; detail: string }[] }[] };
    expect(j.destinations.map((d) => [d.name, d.verdict])).toEqual([
      ['s3-a', 'safe'],
      ['s3-plain', 'unsafe'],
    ]);

    await writeFile(join(dir, 'd.yaml'), `${HEAD}destinations:\n${s3('s3-down', locked, 'http://127.0.0.1:9')}`);
    const down = await cli(['--config', 'd.yaml']);
    expect(down.code).toBe(2);
    expect(down.out).toMatch(/s3-down .*ERROR \(could not check\)/);
  });
});
