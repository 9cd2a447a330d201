/**
 * Bearer-token authentication for both receivers (issue 8): OTLP/HTTP `Authorization: Bearer
 * <token>` (RFC 6750 §2.1) and the OTLP/gRPC `authorization` metadata entry carrying the same text.
 *
 * Token file (`auth.bearer_token_file`), one entry per line:
 *   TOKEN            a token; its name in logs is `line-N`
 *   NAME:TOKEN       a named token (NAME: 1–64 of A-Z a-z 0-9 . _ -), so operators can tell clients apart
 *   # comment        ignored, as are blank lines and surrounding white space
 * A token must use the RFC 6750 §2.1 `b64token` alphabet (letters, digits, - . _ ~ + /, then `=`
 * padding) — which never contains ':' — so `NAME:TOKEN` is unambiguous. Tokens shorter than 16
 * characters are refused: a bearer token is a password that cannot be rate-limited by us alone.
 *
 * Only SHA-256 digests of the tokens are kept. A presented token is hashed and compared with every
 * stored digest with `crypto.timingSafeEqual` (equal 32-byte inputs, so neither the length nor the
 * content of a token leaks through timing), without stopping at the first match.
 * The file is re-read every `reload_interval`; a file that became unreadable, empty or invalid is
 * reported and the previous tokens stay in force (a half-written file must not lock everybody out
 * or let everybody in). Tokens never appear in logs or error messages; only names and line numbers do.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { SealtrailError, errorMessage } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';

/** Longest token file read (bounds a wrong path, e.g. a log file). */
const MAX_TOKEN_FILE_BYTES = 1024 * 1024;
const MIN_TOKEN_LENGTH = 16;
/** RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const NAME = /^[A-Za-z0-9._-]{1,64}$/;

interface StoredToken {
  readonly name: string;
  readonly digest: Buffer;
}

export type TokenFileParse = { ok: true; tokens: StoredToken[] } | { ok: false; problems: string[] };

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Parses token-file text (format above). Problems name line numbers, never token text. */
export function parseTokenFile(text: string): TokenFileParse {
  const tokens: StoredToken[] = [];
  const problems: string[] = [];
  const names = new Set<string>();
  const digests = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    const n = i + 1;
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const name = colon >= 0 ? line.slice(0, colon).trim() : `line-${n}`;
    const token = colon >= 0 ? line.slice(colon + 1).trim() : line;
    if (colon >= 0 && !NAME.test(name)) {
      problems.push(`line ${n}: token name must be 1-64 characters of letters, digits, ".", "_" or "-" (format NAME:TOKEN)`);
      return;
    }
    if (!B64TOKEN.test(token)) {
      problems.push(`line ${n}: token must use only letters, digits and - . _ ~ + / (then = padding), as RFC 6750 §2.1 requires`);
      return;
    }
    if (token.length < MIN_TOKEN_LENGTH) {
      problems.push(`line ${n}: token is shorter than ${MIN_TOKEN_LENGTH} characters; generate one with: openssl rand -hex 32`);
      return;
    }
    if (names.has(name)) {
      problems.push(`line ${n}: duplicate token name "${name}"`);
      return;
    }
    const d = digest(token);
    const key = d.toString('hex');
    if (digests.has(key)) {
      problems.push(`line ${n}: the same token appears twice`);
      return;
    }
    names.add(name);
    digests.add(key);
    tokens.push({ name, digest: d });
  });
  if (problems.length === 0 && tokens.length === 0) problems.push('no tokens: add one token (or NAME:TOKEN) per line');
  return problems.length ? { ok: false, problems } : { ok: true, tokens };
}

/** Result of checking presented credentials. `missing` = no bearer credentials at all (RFC 6750 §3.1: no error code). */
export type AuthResult = { ok: true; name: string } | { ok: false; error: 'missing' | 'invalid_token'; message: string };

/**
 * Extracts the token from an `Authorization` value: `Bearer <token>`, scheme case-insensitive
 * (RFC 9110 §11.1), one or more spaces. Returns undefined when the value is absent or uses
 * another scheme (RFC 6750 §3.1 treats that as "no authentication information").
 */
export function bearerFromAuthorization(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*bearer +(\S+)\s*$/i.exec(value);
  return m ? m[1] : undefined;
}

/** The bearer tokens of one protocol, reloaded from their file. */
export class BearerTokens {
  readonly #file: string;
  readonly #keyPath: string;
  readonly #logger: Logger;
  #tokens: readonly StoredToken[];
  #fileDigest: Buffer;
  #timer: NodeJS.Timeout | undefined;
  #reloading = false;

  private constructor(file: string, keyPath: string, logger: Logger, tokens: StoredToken[], fileDigest: Buffer) {
    this.#file = file;
    this.#keyPath = keyPath;
    this.#logger = logger;
    this.#tokens = tokens;
    this.#fileDigest = fileDigest;
  }

  /**
   * Reads and parses the token file and starts re-reading it every `reloadMs` (0 = never).
   * `keyPath` (e.g. `receivers.otlp.protocols.http.auth`) prefixes every error.
   * @throws SealtrailError CONFIG_INVALID when the file cannot be read or holds no valid tokens.
   */
  static async load(file: string, reloadMs: number, keyPath: string, logger: Logger): Promise<BearerTokens> {
    const read = await readTokenFile(file);
    if (!read.ok) throw new SealtrailError('CONFIG_INVALID', `${keyPath}.bearer_token_file: ${read.message}`);
    const parsed = parseTokenFile(read.text);
    if (!parsed.ok) {
      throw new SealtrailError('CONFIG_INVALID', `${keyPath}.bearer_token_file: ${file}: ${parsed.problems.join('; ')}`);
    }
    if ((read.mode & 0o007) !== 0) {
      logger.warn({ file, mode: (read.mode & 0o777).toString(8) }, `${keyPath}.bearer_token_file can be read by any user on the host; chmod 600 (or 640 with a dedicated group)`);
    }
    const t = new BearerTokens(file, keyPath, logger, parsed.tokens, digest(read.text));
    if (reloadMs > 0) {
      t.#timer = setInterval(() => void t.reload(), reloadMs);
      t.#timer.unref();
    }
    return t;
  }

  /** Names of the tokens in force (never the tokens). */
  get names(): string[] {
    return this.#tokens.map((t) => t.name);
  }

  /**
   * Re-reads the file now; applies it when it changed and is valid, otherwise keeps the tokens in
   * force and logs why. Resolves true when new tokens were applied. Never rejects.
   */
  async reload(): Promise<boolean> {
    if (this.#reloading) return false;
    this.#reloading = true;
    try {
      const read = await readTokenFile(this.#file);
      if (!read.ok) {
        this.#logger.error({ file: this.#file }, `${this.#keyPath}.bearer_token_file: ${read.message}; keeping the previous tokens`);
        return false;
      }
      const d = digest(read.text);
      if (d.equals(this.#fileDigest)) return false;
      const parsed = parseTokenFile(read.text);
      if (!parsed.ok) {
        this.#logger.error({ file: this.#file, problems: parsed.problems }, `${this.#keyPath}.bearer_token_file is invalid; keeping the previous tokens`);
        return false;
      }
      this.#tokens = parsed.tokens;
      this.#fileDigest = d;
      this.#logger.info({ file: this.#file, tokens: parsed.tokens.map((t) => t.name) }, `${this.#keyPath}: bearer tokens reloaded`);
      return true;
    } finally {
      this.#reloading = false;
    }
  }

  /** Checks a presented token (undefined = none presented) in constant time over all stored tokens. */
  check(token: string | undefined): AuthResult {
    if (token === undefined) {
      return { ok: false, error: 'missing', message: 'missing bearer token: send the header "Authorization: Bearer <token>" (gRPC: metadata authorization)' };
    }
    const presented = digest(token);
    let match: StoredToken | undefined;
    for (const t of this.#tokens) {
      // No early exit: every stored digest is compared, matching or not.
      if (timingSafeEqual(presented, t.digest) && match === undefined) match = t;
    }
    if (match) return { ok: true, name: match.name };
    return { ok: false, error: 'invalid_token', message: 'invalid bearer token: the token is not in the receiver\'s token file' };
  }

  /** Stops re-reading the file. Idempotent. */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

async function readTokenFile(file: string): Promise<{ ok: true; text: string; mode: number } | { ok: false; message: string }> {
  let h: fsp.FileHandle;
  try {
    h = await fsp.open(file, 'r');
  } catch (e) {
    return { ok: false, message: `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}` };
  }
  try {
    const st = await h.stat();
    if (!st.isFile()) return { ok: false, message: `${file} is not a regular file` };
    if (st.size > MAX_TOKEN_FILE_BYTES) return { ok: false, message: `${file} is larger than ${MAX_TOKEN_FILE_BYTES} bytes; is it the right file?` };
    const text = await h.readFile('utf8');
    return { ok: true, text, mode: st.mode };
  } catch (e) {
    return { ok: false, message: `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}` };
  } finally {
    await h.close();
  }
}
