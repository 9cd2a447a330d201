/**
 * Test PKI and clients for the security tests. Certificates are made with the system's `openssl`
 * (EC P-256, fast), in a fresh temporary directory:
 *   ca            trusted CA (signs the server certificates and the good/expired client certificates)
 *   otherCa       an unrelated CA (its client certificate must be refused)
 *   server        server certificate for 127.0.0.1 / localhost (serverAuth), signed by ca
 *   server2       a second server certificate (for the reload test), signed by ca
 *   client        good client certificate (clientAuth), signed by ca
 *   clientOtherCa client certificate signed by otherCa
 *   clientExpired client certificate signed by ca whose validity ended a day before it began
 *                 (OpenSSL 3.0 `x509 -days -1`: notAfter = now − 1 day)
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export interface TestPki {
  readonly dir: string;
  readonly ca: CertFiles;
  readonly otherCa: CertFiles;
  readonly server: CertFiles;
  readonly server2: CertFiles;
  readonly client: CertFiles;
  readonly clientOtherCa: CertFiles;
  readonly clientExpired: CertFiles;
  read(file: string): Buffer;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function key(dir: string, name: string): string {
  const file = path.join(dir, `${name}.key`);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file], dir);
  return file;
}

function makeCa(dir: string, name: string): CertFiles {
  const k = key(dir, name);
  const cert = path.join(dir, `${name}.pem`);
  openssl(
    ['req', '-x509', '-new', '-key', k, '-subj', `/CN=${name}`, '-days', '2', '-out', cert,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  return { cert, key: k };
}

function makeLeaf(dir: string, name: string, ca: CertFiles, usage: 'serverAuth' | 'clientAuth', days: number): CertFiles {
  const k = key(dir, name);
  const csr = path.join(dir, `${name}.csr`);
  const cert = path.join(dir, `${name}.pem`);
  const ext = path.join(dir, `${name}.ext`);
  const san = usage === 'serverAuth' ? 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n' : '';
  fs.writeFileSync(ext, `${san}extendedKeyUsage=${usage}\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n`);
  openssl(['req', '-new', '-key', k, '-subj', `/CN=${name}`, '-out', csr], dir);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', String(days), '-extfile', ext, '-out', cert], dir);
  return { cert, key: k };
}

/** Creates the whole PKI (about ten openssl runs). */
export function makePki(): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealtrail-pki-'));
  const ca = makeCa(dir, 'test-ca');
  const otherCa = makeCa(dir, 'other-ca');
  return {
    dir,
    ca,
    otherCa,
    server: makeLeaf(dir, 'server', ca, 'serverAuth', 2),
    server2: makeLeaf(dir, 'server2', ca, 'serverAuth', 2),
    client: makeLeaf(dir, 'good-client', ca, 'clientAuth', 2),
    clientOtherCa: makeLeaf(dir, 'rogue-client', otherCa, 'clientAuth', 2),
    clientExpired: makeLeaf(dir, 'expired-client', ca, 'clientAuth', -1),
    read: (file: string) => fs.readFileSync(file),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** SHA-256 fingerprint of a PEM certificate file, in Node's `fingerprint256` notation. */
export function fingerprint(certFile: string): string {
  return new X509Certificate(fs.readFileSync(certFile)).fingerprint256;
}

/** Copies `from` over `to` atomically (write a temp file, rename), as a Secret update would. */
export function replaceFile(from: string, to: string): void {
  const tmp = `${to}.tmp-${process.pid}`;
  fs.copyFileSync(from, tmp);
  fs.renameSync(tmp, to);
}

/** Opens a TLS connection and returns the server certificate's fingerprint (or the handshake error). */
export function peerFingerprint(port: number, ca: Buffer, alpn?: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...(alpn ? { ALPNProtocols: alpn } : {}) }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.destroy();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

export interface HttpsReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One HTTPS request with the given TLS client options; rejects on a handshake failure. */
export function httpsRequest(
  port: number,
  tlsOpts: https.RequestOptions,
  opts: { path?: string; method?: string; headers?: Record<string, string | number>; body?: Uint8Array } = {},
): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const body = opts.body ? Buffer.from(opts.body) : undefined;
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: opts.path ?? '/v1/logs',
        method: opts.method ?? 'POST',
        headers: { ...(opts.headers ?? {}), ...(body ? { 'content-length': body.length } : {}) },
        agent: false,
        ...tlsOpts,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Polls `cond` every 50 ms until it holds or `ms` passed. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A plaintext HTTP POST of an OTLP protobuf body to 127.0.0.1:port; resolves the status. */
export function httpRequestPlain(port: number, body: Uint8Array, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/v1/logs', method: 'POST', agent: false, headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length, ...headers } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
    req.end(Buffer.from(body));
  });
}
