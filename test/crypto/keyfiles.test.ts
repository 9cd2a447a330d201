import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run as keygen } from '../../src/cli/commands/keygen.js';
import type { CliIO } from '../../src/cli/io.js';
import { SealtrailError } from '../../src/errors.js';
import { loadSigner, loadVerifier, writeKeyPair } from '../../src/keys/files.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealtrail-keys-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const mode = async (p: string) => (await fs.stat(p)).mode & 0o777;

async function caught(p: Promise<unknown>): Promise<SealtrailError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SealtrailError) return e;
    throw e;
  }
  throw new Error('expected a SealtrailError');
}

describe('writeKeyPair', () => {
  it('creates DIR (0700), NAME.key (0600) and NAME.pub (0644) that load and match', async () => {
    const kdir = path.join(dir, 'keys', 'nested');
    const r = await writeKeyPair(kdir, 'signing', 'sealtrail.example/node-a');
    expect(r.keyPath).toBe(path.join(kdir, 'signing.key'));
    expect(await mode(kdir)).toBe(0o700);
    expect(await mode(r.keyPath)).toBe(0o600);
    expect(await mode(r.pubPath)).toBe(0o644);
    const signer = await loadSigner(r.keyPath);
    const verifier = await loadVerifier(r.pubPath);
    expect(signer.verifierKey).toBe(r.verifierKey);
    expect(verifier.text).toBe(r.verifierKey);
    expect(verifier.name).toBe('sealtrail.example/node-a');
    const msg = new TextEncoder().encode('x\n');
    expect(verifier.verify(msg, signer.sign(msg))).toBe(true);
    expect(await fs.readFile(r.pubPath, 'utf8')).toBe(r.verifierKey + '\n');
    expect((await fs.readFile(r.keyPath, 'utf8')).startsWith('PRIVATE+KEY+sealtrail.example/node-a+')).toBe(true);
  });

  it('never overwrites: an existing .key or .pub refuses and leaves both files byte-identical', async () => {
    const r = await writeKeyPair(dir, 'a');
    const before = [await fs.readFile(r.keyPath), await fs.readFile(r.pubPath)];
    const e = await caught(writeKeyPair(dir, 'a'));
    expect(e.code).toBe('USAGE');
    expect(e.message).toMatch(/already exists; refusing to overwrite/);
    expect(await fs.readFile(r.keyPath)).toEqual(before[0]);
    expect(await fs.readFile(r.pubPath)).toEqual(before[1]);
    // Only the .pub exists: still refused, and no .key appears.
    await fs.writeFile(path.join(dir, 'b.pub'), 'x\n');
    expect((await caught(writeKeyPair(dir, 'b'))).message).toMatch(/b\.pub already exists/);
    await expect(fs.stat(path.join(dir, 'b.key'))).rejects.toThrow(/ENOENT/);
  });

  it('refuses file names that could escape DIR and key names the note format forbids', async () => {
    for (const n of ['../x', 'a/b', '.hidden', '', 'a b']) {
      expect((await caught(writeKeyPair(dir, n))).code, n).toBe('USAGE');
    }
    expect((await caught(writeKeyPair(dir, 'ok', 'bad+name'))).message).toMatch(/\+/);
    expect(await fs.readdir(dir)).toEqual([]);
  });
});

describe('loadSigner permission checks', () => {
  it('accepts 0600 and 0400', async () => {
    const r = await writeKeyPair(dir, 'k');
    await expect(loadSigner(r.keyPath)).resolves.toBeDefined();
    await fs.chmod(r.keyPath, 0o400);
    await expect(loadSigner(r.keyPath)).resolves.toBeDefined();
  });

  // Every group/other bit counts, execute included (security review, issue 8: 0610, 0601, 0777 added).
  for (const m of [0o640, 0o604, 0o660, 0o644, 0o602, 0o620, 0o610, 0o601, 0o777]) {
    it(`refuses mode 0${m.toString(8)} and says how to fix it, without key material`, async () => {
      const r = await writeKeyPair(dir, 'k');
      const keyText = (await fs.readFile(r.keyPath, 'utf8')).trim();
      await fs.chmod(r.keyPath, m);
      const e = await caught(loadSigner(r.keyPath));
      expect(e.code).toBe('KEY_PERMISSIONS');
      expect(e.message).toContain(`mode 0${m.toString(8)}`);
      expect(e.message).toContain(`chmod 600 ${r.keyPath}`);
      // The seed's base64 is everything after PRIVATE+KEY+name+keyid (base64 itself may contain '+').
      expect(e.message).not.toContain(keyText.split('+').slice(4).join('+'));
    });
  }

  it('refuses a key owned by another user with the chown fix (needs root to create such a file)', async (ctx) => {
    if (process.getuid?.() !== 0) {
      ctx.skip(); // written reason: only root can chown a file to another uid to set up this case
      return;
    }
    const r = await writeKeyPair(dir, 'k');
    await fs.chown(r.keyPath, 4242, 4242);
    const e = await caught(loadSigner(r.keyPath));
    expect(e.code).toBe('KEY_PERMISSIONS');
    expect(e.message).toMatch(/owned by uid 4242/);
    expect(e.message).toContain(`chown 0 ${r.keyPath}`);
  });

  it('follows a symlink (Kubernetes Secret mounts) and checks the target', async () => {
    const r = await writeKeyPair(dir, 'k');
    const link = path.join(dir, 'link.key');
    await fs.symlink(r.keyPath, link);
    await expect(loadSigner(link)).resolves.toBeDefined();
    await fs.chmod(r.keyPath, 0o644);
    expect((await caught(loadSigner(link))).code).toBe('KEY_PERMISSIONS');
  });

  it('missing file → KEY_MISSING with the keygen command; garbage → KEY_INVALID without echoing it', async () => {
    const missing = await caught(loadSigner(path.join(dir, 'nope.key')));
    expect(missing.code).toBe('KEY_MISSING');
    expect(missing.message).toContain(`sealtrail keygen --dir ${dir} --name nope`);
    const junk = path.join(dir, 'junk.key');
    await fs.writeFile(junk, 'PRIVATE+KEY+x+00000000+SECRETSECRETSECRET\n', { mode: 0o600 });
    const bad = await caught(loadSigner(junk));
    expect(bad.code).toBe('KEY_INVALID');
    expect(bad.message).not.toContain('SECRETSECRET');
    // A public key given where the private key is expected.
    const r = await writeKeyPair(dir, 'p');
    await fs.chmod(r.pubPath, 0o600);
    expect((await caught(loadSigner(r.pubPath))).message).toMatch(/must start with 'PRIVATE\+KEY\+'/);
  });
});

describe('sealtrail keygen', () => {
  function io(): CliIO & { out: () => string; err: () => string } {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let o = '';
    let e = '';
    stdout.on('data', (d: Buffer) => (o += d.toString()));
    stderr.on('data', (d: Buffer) => (e += d.toString()));
    return { stdout, stderr, env: {}, cwd: dir, out: () => o, err: () => e };
  }

  it('writes the pair, prints paths and the verifier key; a second run refuses with exit 2', async () => {
    const a = io();
    expect(await keygen(['--dir', 'k'], a)).toBe(0);
    const pub = (await fs.readFile(path.join(dir, 'k', 'signing.pub'), 'utf8')).trim();
    expect(a.out()).toContain(path.join(dir, 'k', 'signing.key'));
    expect(a.out()).toContain(`verifier key: ${pub}`);
    expect(a.out()).not.toContain('PRIVATE+KEY');
    const b = io();
    expect(await keygen(['--dir', 'k'], b)).toBe(2);
    expect(b.err()).toMatch(/signing\.key already exists; refusing to overwrite/);
    expect((await fs.readFile(path.join(dir, 'k', 'signing.pub'), 'utf8')).trim()).toBe(pub);
  });

  it('--name and --key-name; usage errors exit 2', async () => {
    const a = io();
    expect(await keygen(['--dir', dir, '--name', 'node-a', '--key-name', 'sealtrail.example/node-a'], a)).toBe(0);
    expect((await loadVerifier(path.join(dir, 'node-a.pub'))).name).toBe('sealtrail.example/node-a');
    const b = io();
    expect(await keygen([], b)).toBe(2);
    expect(b.err()).toMatch(/--dir is required/);
    const c = io();
    expect(await keygen(['--dir', dir, '--bogus'], c)).toBe(2);
    const d = io();
    expect(await keygen(['--dir', dir, '--name', '../evil'], d)).toBe(2);
    expect(d.err()).toMatch(/invalid --name/);
  });
});
