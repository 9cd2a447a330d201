/**
 * TLS for both receivers (issue 8), configured like the Collector's `tls:` block: `cert_file`,
 * `key_file`, optional `client_ca_file` (mTLS: a client certificate is then required and must chain
 * to that CA and be within its validity period, or the handshake fails), `min_version` (1.2 by
 * default, 1.3 selectable; RFC 8996 retired 1.0 and 1.1) and `reload_interval`.
 *
 * Cipher suites are Node's defaults (OpenSSL's, restricted by Node to forward-secret AEAD suites
 * for TLS 1.2 plus the TLS 1.3 suites); we do not offer a knob that could only make them weaker.
 *
 * Reload: the three files are re-read every `reload_interval` and compared by content; when they
 * changed and form a usable pair (the key matches the certificate, the CA parses), the new secure
 * context is handed to the server and applies to new connections. A broken or half-written
 * update is reported and the previous context stays in force.
 */
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import tls from 'node:tls';
import { SealtrailError, errorMessage } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';

/** The `tls` block of one protocol (config/schema.ts). */
export interface TlsConfig {
  readonly cert_file: string;
  readonly key_file: string;
  readonly client_ca_file?: string | undefined;
  readonly min_version: '1.2' | '1.3';
  readonly reload_interval: number;
}

/** Certificate chain, private key and optional client CA, as PEM bytes. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca?: Buffer;
}

/** A TLS handshake must finish within this; a client that connects and stays silent is dropped. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

const MAX_PEM_BYTES = 1024 * 1024;

async function readPem(file: string, what: string): Promise<Buffer> {
  let h: fsp.FileHandle;
  try {
    h = await fsp.open(file, 'r');
  } catch (e) {
    throw new Error(`${what}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`);
  }
  try {
    const st = await h.stat();
    if (!st.isFile()) throw new Error(`${what}: ${file} is not a regular file`);
    if (st.size > MAX_PEM_BYTES) throw new Error(`${what}: ${file} is larger than ${MAX_PEM_BYTES} bytes; is it the right file?`);
    return await h.readFile();
  } finally {
    await h.close();
  }
}

/** `min_version` as Node's protocol name. */
export function minVersionName(v: '1.2' | '1.3'): tls.SecureVersion {
  return v === '1.3' ? 'TLSv1.3' : 'TLSv1.2';
}

/**
 * The secure-context part of the server options: certificate, key, client CA and minimum version.
 * Node's `setSecureContext` forgets `minVersion` unless it is passed again, so it is part of every
 * context, not only of the server constructor.
 */
export function secureContextOptions(m: TlsMaterial, cfg: TlsConfig): tls.SecureContextOptions {
  return { cert: m.cert, key: m.key, ...(m.ca ? { ca: m.ca } : {}), minVersion: minVersionName(cfg.min_version) };
}

/** Server-level options: with a client CA, a client certificate is required and verified (mTLS). */
export function tlsServerOptions(cfg: TlsConfig): tls.TlsOptions {
  const mtls = cfg.client_ca_file !== undefined;
  return { requestCert: mtls, rejectUnauthorized: mtls, handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS, minVersion: minVersionName(cfg.min_version) };
}

/**
 * Reads the files and checks they make a usable context (PEM parses, key matches certificate).
 * @throws Error naming the file and the problem (callers prefix the config key path).
 */
export async function readTlsMaterial(cfg: TlsConfig): Promise<TlsMaterial> {
  const cert = await readPem(cfg.cert_file, 'cert_file');
  const key = await readPem(cfg.key_file, 'key_file');
  const ca = cfg.client_ca_file !== undefined ? await readPem(cfg.client_ca_file, 'client_ca_file') : undefined;
  const m: TlsMaterial = { cert, key, ...(ca ? { ca } : {}) };
  try {
    tls.createSecureContext(secureContextOptions(m, cfg));
  } catch (e) {
    // OpenSSL's reason ("key values mismatch", "no start line", …) with the files it concerns.
    throw new Error(`cert_file ${cfg.cert_file} / key_file ${cfg.key_file}${ca ? ` / client_ca_file ${cfg.client_ca_file}` : ''}: ${errorMessage(e)}`);
  }
  if (ca && !/-----BEGIN CERTIFICATE-----/.test(ca.toString('latin1'))) {
    throw new Error(`client_ca_file ${cfg.client_ca_file}: no PEM certificate found`);
  }
  return m;
}

function materialDigest(m: TlsMaterial): string {
  const h = createHash('sha256');
  for (const b of [m.cert, m.key, m.ca ?? Buffer.alloc(0)]) h.update(createHash('sha256').update(b).digest());
  return h.digest('hex');
}

/**
 * Loads TLS material at start and polls the files for changes.
 * `apply` receives every new, valid material; it must install it for new connections.
 */
export class TlsReloader {
  readonly #cfg: TlsConfig;
  readonly #keyPath: string;
  readonly #logger: Logger;
  #material: TlsMaterial;
  #digest: string;
  #apply: ((m: TlsMaterial) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reloading = false;

  private constructor(cfg: TlsConfig, keyPath: string, logger: Logger, m: TlsMaterial) {
    this.#cfg = cfg;
    this.#keyPath = keyPath;
    this.#logger = logger;
    this.#material = m;
    this.#digest = materialDigest(m);
  }

  /**
   * Reads the files once. `keyPath` (e.g. `receivers.otlp.protocols.http.tls`) prefixes errors.
   * @throws SealtrailError CONFIG_INVALID when a file is unreadable or the material unusable.
   */
  static async load(cfg: TlsConfig, keyPath: string, logger: Logger): Promise<TlsReloader> {
    let r: TlsReloader;
    try {
      r = new TlsReloader(cfg, keyPath, logger, await readTlsMaterial(cfg));
    } catch (e) {
      throw new SealtrailError('CONFIG_INVALID', `${keyPath}.${errorMessage(e)}`, { cause: e });
    }
    // Not a refusal (Secret mounts and cert-manager set their own modes), but say it loudly.
    const st = await fsp.stat(cfg.key_file).catch(() => undefined);
    if (st && (st.mode & 0o007) !== 0) {
      logger.warn({ file: cfg.key_file, mode: (st.mode & 0o777).toString(8) }, `${keyPath}.key_file can be read by any user on the host; chmod 600 (or 640 with a dedicated group)`);
    }
    return r;
  }

  get material(): TlsMaterial {
    return this.#material;
  }

  /** Starts polling (every `reload_interval`; 0 = never); `apply` installs new material. */
  watch(apply: (m: TlsMaterial) => void): void {
    this.#apply = apply;
    if (this.#cfg.reload_interval > 0 && !this.#timer) {
      this.#timer = setInterval(() => void this.reload(), this.#cfg.reload_interval);
      this.#timer.unref();
    }
  }

  /** Re-reads the files now; applies valid changed material. Resolves true when applied. Never rejects. */
  async reload(): Promise<boolean> {
    if (this.#reloading) return false;
    this.#reloading = true;
    try {
      let m: TlsMaterial;
      try {
        m = await readTlsMaterial(this.#cfg);
      } catch (e) {
        this.#logger.error(`${this.#keyPath}: ${errorMessage(e)}; keeping the previous certificate`);
        return false;
      }
      const d = materialDigest(m);
      if (d === this.#digest) return false;
      try {
        this.#apply?.(m);
      } catch (e) {
        this.#logger.error(`${this.#keyPath}: cannot install the new certificate: ${errorMessage(e)}; keeping the previous one`);
        return false;
      }
      this.#material = m;
      this.#digest = d;
      this.#logger.info({ cert_file: this.#cfg.cert_file }, `${this.#keyPath}: certificate reloaded; new connections use it`);
      return true;
    } finally {
      this.#reloading = false;
    }
  }

  /** Stops polling. Idempotent. */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
