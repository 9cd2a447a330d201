/**
 * Key files: DIR/NAME.key (private key text, mode 0600, created exclusively, never overwritten)
 * and DIR/NAME.pub (verifier key text, mode 0644). The agent refuses a private key file that
 * group or others may read or write, or that another user owns (DESIGN.md "Keys"): the message
 * says how to fix it. No error message ever contains key material.
 */
import { constants as FS } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { SealtrailError, errorMessage } from '../errors.js';
import { type Signer, type Verifier, generateKeyPair, parsePrivateKey, parseVerifierKey, validateKeyName } from './keys.js';

/** Longest key file we read (a key line is ~100 bytes; this only bounds a wrong path). */
const MAX_KEY_FILE_BYTES = 16 * 1024;
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Why `name` cannot name key files (DIR/NAME.key), or null. */
export function keyFileNameProblem(name: string): string | null {
  if (!FILE_NAME.test(name)) {
    return 'name must be 1-128 characters of letters, digits, ".", "_" or "-", starting with a letter or digit';
  }
  return null;
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await fsp.open(dir, FS.O_RDONLY);
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

async function writeExclusive(file: string, text: string, mode: number): Promise<void> {
  // O_EXCL: fail rather than replace an existing file (a key must never be overwritten).
  const h = await fsp.open(file, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL | FS.O_NOFOLLOW, mode);
  try {
    await h.chmod(mode); // the umask may have cleared bits we want (0644 for the .pub file)
    await h.writeFile(text, 'utf8');
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * Generate a key pair and write DIR/NAME.key (0600) and DIR/NAME.pub (0644); DIR is created with
 * mode 0700 if missing. `keyName` is the signed-note key name (default NAME; C2SP recommends the
 * log's origin). Refuses to overwrite either file.
 * @throws SealtrailError USAGE for a bad name or an existing file, IO for other file-system errors
 */
export async function writeKeyPair(
  dir: string,
  name: string,
  keyName: string = name,
): Promise<{ keyPath: string; pubPath: string; verifierKey: string }> {
  const fileWhy = keyFileNameProblem(name);
  if (fileWhy !== null) throw new SealtrailError('USAGE', `invalid --name ${JSON.stringify(name)}: ${fileWhy}`);
  const keyWhy = validateKeyName(keyName);
  if (keyWhy !== null) throw new SealtrailError('USAGE', `invalid key name ${JSON.stringify(keyName)}: ${keyWhy}`);
  const keyPath = path.join(dir, `${name}.key`);
  const pubPath = path.join(dir, `${name}.pub`);
  try {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new SealtrailError('IO', `cannot create key directory ${dir}: ${errorMessage(e)}`, { cause: e });
  }
  for (const p of [keyPath, pubPath]) {
    const exists = await fsp.lstat(p).then(
      () => true,
      (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? false : Promise.reject(e)),
    );
    if (exists) {
      throw new SealtrailError('USAGE', `${p} already exists; refusing to overwrite a key (choose another --name or --dir, or remove it yourself)`);
    }
  }
  const { privateKey, verifierKey } = generateKeyPair(keyName);
  try {
    await writeExclusive(keyPath, privateKey + '\n', 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new SealtrailError('USAGE', `${keyPath} already exists; refusing to overwrite a key`);
    throw new SealtrailError('IO', `cannot write ${keyPath}: ${code ?? 'error'}`, { cause: e });
  }
  try {
    await writeExclusive(pubPath, verifierKey + '\n', 0o644);
  } catch (e) {
    // We created the .key file a moment ago: remove it so that no half pair is left behind.
    await fsp.unlink(keyPath).catch(() => undefined);
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new SealtrailError('USAGE', `${pubPath} already exists; refusing to overwrite a key`);
    throw new SealtrailError('IO', `cannot write ${pubPath}: ${code ?? 'error'}`, { cause: e });
  }
  await fsyncDir(dir).catch(() => undefined); // best effort: durability of the directory entry
  return { keyPath, pubPath, verifierKey };
}

function modeString(mode: number): string {
  return '0' + (mode & 0o777).toString(8).padStart(3, '0');
}

/**
 * Load a private key file for signing. Refuses (KEY_PERMISSIONS) a file whose mode grants any
 * access to group or others, or that is not owned by the current user; the message names the fix.
 * Symbolic links are followed (Kubernetes mounts Secrets that way); the checks apply to the target.
 * @throws SealtrailError KEY_MISSING, KEY_PERMISSIONS, KEY_INVALID or IO
 */
export async function loadSigner(file: string): Promise<Signer> {
  let h: fsp.FileHandle;
  try {
    h = await fsp.open(file, FS.O_RDONLY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new SealtrailError(
        'KEY_MISSING',
        `no signing key at ${file}; create one with: sealtrail keygen --dir ${path.dirname(file)} --name ${path.basename(file).replace(/\.key$/, '')}`,
      );
    }
    if (code === 'EACCES') throw new SealtrailError('KEY_PERMISSIONS', `cannot read the signing key ${file}: permission denied`);
    throw new SealtrailError('IO', `cannot open the signing key ${file}: ${code ?? 'error'}`, { cause: e });
  }
  try {
    // fstat the open descriptor: the file we check is the file we read.
    const st = await h.stat();
    if (!st.isFile()) throw new SealtrailError('KEY_INVALID', `${file} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      throw new SealtrailError(
        'KEY_PERMISSIONS',
        `the signing key ${file} has mode ${modeString(st.mode)}: group or others may access it; run: chmod 600 ${file}`,
      );
    }
    const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
    if (uid !== undefined && st.uid !== uid) {
      throw new SealtrailError(
        'KEY_PERMISSIONS',
        `the signing key ${file} is owned by uid ${st.uid}, but sealtrail runs as uid ${uid}; run: chown ${uid} ${file} (or run sealtrail as its owner)`,
      );
    }
    if (st.size > MAX_KEY_FILE_BYTES) throw new SealtrailError('KEY_INVALID', `${file} is too large to be a key file`);
    const buf = Buffer.alloc(MAX_KEY_FILE_BYTES + 1);
    const { bytesRead } = await h.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    buf.fill(0);
    try {
      return parsePrivateKey(text);
    } catch (e) {
      // parsePrivateKey's messages never contain key bytes; prefix the file for context.
      throw new SealtrailError('KEY_INVALID', `${file}: ${errorMessage(e)}`);
    }
  } finally {
    await h.close();
  }
}

/**
 * Load a verifier (public) key file: one verifier key line, as written to NAME.pub by keygen.
 * @throws SealtrailError KEY_MISSING, KEY_INVALID or IO
 */
export async function loadVerifier(file: string): Promise<Verifier> {
  let text: string;
  try {
    const st = await fsp.stat(file);
    if (!st.isFile()) throw new SealtrailError('KEY_INVALID', `${file} is not a regular file`);
    if (st.size > MAX_KEY_FILE_BYTES) throw new SealtrailError('KEY_INVALID', `${file} is too large to be a key file`);
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    if (e instanceof SealtrailError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SealtrailError('KEY_MISSING', `no public key file at ${file}`);
    throw new SealtrailError('IO', `cannot read the public key ${file}: ${code ?? 'error'}`, { cause: e });
  }
  try {
    return parseVerifierKey(text);
  } catch (e) {
    throw new SealtrailError('KEY_INVALID', `${file}: ${errorMessage(e)}`);
  }
}
