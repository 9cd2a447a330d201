/**
 * Issue 8 — transport security with real TLS on loopback: certificates made by openssl in the test
 * (helpers.ts). Both receivers: TLS, minimum version, mTLS with a good, a wrong-CA, an expired and
 * no client certificate, certificate reload without restart (new connections see the new
 * certificate; a broken replacement keeps the old one), and unusable files stopping start-up.
 * Nothing is stored for a refused connection.
 */
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SealtrailError } from '../../src/errors.js';
import { GrpcReceiver, OTLP_GRPC_PATHS } from '../../src/receiver/grpc.js';
import { HttpReceiver } from '../../src/receiver/http.js';
import { createLogger } from '../../src/telemetry/logger.js';
import type { Metrics } from '../../src/telemetry/metrics.js';
import { GRPC_DEFAULTS, HTTP_DEFAULTS, MemorySink, deps, newMetrics, rawExchange, sampleRequest, startGrpc, startHttp } from '../receiver/helpers.js';
import { type TestPki, fingerprint, httpRequestPlain, httpsRequest, makePki, peerFingerprint, replaceFile, waitUntil } from './helpers.js';

const PB = { 'content-type': 'application/x-protobuf' };
let pki: TestPki;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(() => {
  pki = makePki();
}, 30_000);
afterAll(() => pki.remove());
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tlsBlock(over: { client_ca_file?: string; min_version?: '1.2' | '1.3'; cert_file?: string; key_file?: string; reload_interval?: number } = {}) {
  return {
    cert_file: over.cert_file ?? pki.server.cert,
    key_file: over.key_file ?? pki.server.key,
    min_version: over.min_version ?? ('1.2' as const),
    reload_interval: over.reload_interval ?? 0,
    ...(over.client_ca_file ? { client_ca_file: over.client_ca_file } : {}),
  };
}

function clientTls(c?: { cert: string; key: string }): tls.ConnectionOptions {
  return { ca: pki.read(pki.ca.cert), servername: 'localhost', ...(c ? { cert: pki.read(c.cert), key: pki.read(c.key) } : {}) };
}

async function tlsHttp(sink: MemorySink, t: ReturnType<typeof tlsBlock>, metrics?: Metrics) {
  const h = await startHttp(sink, { tls: t }, metrics);
  cleanups.push(() => h.rx.shutdown());
  return h;
}

/** One unary Export call with grpc-js over TLS; resolves the status code (0 = OK). */
function grpcCall(port: number, creds: grpc.ChannelCredentials, payload: Uint8Array, metadata = new grpc.Metadata()): Promise<{ code: number; details: string }> {
  return new Promise((resolve) => {
    const client = new grpc.Client(`127.0.0.1:${port}`, creds);
    const id = (b: Buffer): Buffer => b;
    client.makeUnaryRequest(OTLP_GRPC_PATHS.logs, id, id, Buffer.from(payload), metadata, { deadline: Date.now() + 5_000 }, (err) => {
      client.close();
      resolve(err ? { code: err.code ?? -1, details: err.details ?? '' } : { code: 0, details: '' });
    });
  });
}

function grpcCreds(c?: { cert: string; key: string }, ca = pki.ca.cert): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(pki.read(ca), c ? pki.read(c.key) : null, c ? pki.read(c.cert) : null);
}

describe('OTLP/HTTP over TLS', () => {
  it('serves a client that trusts the CA; refuses plaintext on the TLS port; stores only the TLS request', async () => {
    const sink = new MemorySink();
    const { port } = await tlsHttp(sink, tlsBlock());
    const ok = await httpsRequest(port, clientTls(), { headers: PB, body: sampleRequest(2) });
    expect(ok.status).toBe(200);
    expect(sink.entries).toHaveLength(2);
    // Plaintext HTTP to the TLS port: the server cannot parse a ClientHello out of it; no HTTP answer, nothing stored.
    await expect(httpRequestPlain(port, sampleRequest(1))).rejects.toThrow();
    // A client that does not trust our CA refuses the server (the certificate is really checked).
    await expect(httpsRequest(port, { ca: pki.read(pki.otherCa.cert), servername: 'localhost' }, { headers: PB, body: sampleRequest(1) })).rejects.toThrow(
      /self.signed|unable to verify|certificate/i,
    );
    expect(sink.entries).toHaveLength(2);
  });

  it('min_version 1.3 refuses a TLS 1.2-only client; the default (1.2) accepts it', async () => {
    const sink = new MemorySink();
    const v13 = await tlsHttp(sink, tlsBlock({ min_version: '1.3' }));
    await expect(httpsRequest(v13.port, { ...clientTls(), maxVersion: 'TLSv1.2' }, { headers: PB, body: sampleRequest(1) })).rejects.toThrow(
      /protocol version|alert|ECONNRESET|wrong version/i,
    );
    expect((await httpsRequest(v13.port, clientTls(), { headers: PB, body: sampleRequest(1) })).status).toBe(200);
    const v12 = await tlsHttp(sink, tlsBlock());
    const r = await httpsRequest(v12.port, { ...clientTls(), maxVersion: 'TLSv1.2' }, { headers: PB, body: sampleRequest(1) });
    expect(r.status).toBe(200);
    // And nothing older than 1.2 is ever negotiated, whatever the client asks for.
    await expect(httpsRequest(v12.port, { ...clientTls(), minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }, { headers: PB, body: sampleRequest(1) })).rejects.toThrow();
    expect(sink.entries).toHaveLength(2);
  });

  it('mTLS: a good client certificate is served; wrong CA, expired and missing certificates fail the handshake; nothing stored for them', async () => {
    const sink = new MemorySink();
    const metrics = newMetrics();
    // The expired certificate is otherwise fine: issued by the trusted CA, only its validity is over.
    const expired = new X509Certificate(pki.read(pki.clientExpired.cert));
    expect(expired.checkIssued(new X509Certificate(pki.read(pki.ca.cert)))).toBe(true);
    expect(Date.parse(expired.validTo)).toBeLessThan(Date.now());
    const { port } = await tlsHttp(sink, tlsBlock({ client_ca_file: pki.ca.cert }), metrics);
    expect((await httpsRequest(port, clientTls(pki.client), { headers: PB, body: sampleRequest(3) })).status).toBe(200);
    expect(sink.entries).toHaveLength(3);
    for (const bad of [pki.clientOtherCa, pki.clientExpired, undefined]) {
      await expect(httpsRequest(port, clientTls(bad), { headers: PB, body: sampleRequest(1) }), `client ${bad?.cert ?? 'without certificate'}`).rejects.toThrow();
    }
    expect(sink.entries).toHaveLength(3);
    const refused = await metrics.receiverRefusedRequests.get();
    const handshakes = refused.values.find((v) => v.labels.reason === 'tls_handshake')?.value ?? 0;
    expect(handshakes).toBeGreaterThanOrEqual(3);
  });

  it('certificate reload: replacing the files switches new connections to the new certificate; a broken replacement keeps it', async () => {
    const live = fs.mkdtempSync(path.join(pki.dir, 'live-'));
    const cert = path.join(live, 'tls.crt');
    const key = path.join(live, 'tls.key');
    fs.copyFileSync(pki.server.cert, cert);
    fs.copyFileSync(pki.server.key, key);
    const sink = new MemorySink();
    const { port } = await tlsHttp(sink, tlsBlock({ cert_file: cert, key_file: key, reload_interval: 200 }));
    const ca = pki.read(pki.ca.cert);
    expect(await peerFingerprint(port, ca)).toBe(fingerprint(pki.server.cert));

    // The new key first, then the certificate: in between, the pair mismatches and must not be installed.
    replaceFile(pki.server2.key, key);
    await new Promise((r) => setTimeout(r, 500));
    expect(await peerFingerprint(port, ca)).toBe(fingerprint(pki.server.cert));
    const t0 = Date.now();
    replaceFile(pki.server2.cert, cert);
    expect(await waitUntil(async () => (await peerFingerprint(port, ca)) === fingerprint(pki.server2.cert), 5_000)).toBe(true);
    const switchMs = Date.now() - t0;
    console.log(`HTTP certificate reload seen by a new connection after ${switchMs} ms (reload_interval 200 ms)`);
    expect((await httpsRequest(port, clientTls(), { headers: PB, body: sampleRequest(1) })).status).toBe(200);

    fs.writeFileSync(cert, 'not a certificate\n');
    await new Promise((r) => setTimeout(r, 600));
    expect(await peerFingerprint(port, ca)).toBe(fingerprint(pki.server2.cert));
    expect(sink.entries).toHaveLength(1);
  });

  it('unusable TLS files stop start-up with the key path and the reason', async () => {
    const mismatched = new HttpReceiver(
      { endpoint: '127.0.0.1:0', max_request_body_size: 1024, ...HTTP_DEFAULTS, tls: tlsBlock({ key_file: pki.client.key }) },
      deps(new MemorySink()),
    );
    const e = await mismatched.start().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SealtrailError);
    expect((e as SealtrailError).code).toBe('CONFIG_INVALID');
    expect((e as Error).message).toMatch(/receivers\.otlp\.protocols\.http\.tls.*key values mismatch/);
    const noCa = new GrpcReceiver(
      { endpoint: '127.0.0.1:0', max_recv_msg_size_mib: 1, ...GRPC_DEFAULTS, tls: tlsBlock({ client_ca_file: path.join(pki.dir, 'absent.pem') }) },
      deps(new MemorySink()),
    );
    await expect(noCa.start()).rejects.toThrow(/receivers\.otlp\.protocols\.grpc\.tls\.client_ca_file: cannot read .*absent\.pem: ENOENT/);
  });
});

/** A logger at `level` whose lines are collected (pino writes asynchronously: wait a little before reading). */
function capturedLogger(level: string): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { lines, logger: createLogger(level, stream) };
}

describe('the OTLP/HTTP fast path over TLS', () => {
  it('answers exporter-shaped requests (declared and chunked) itself, hands the connection to node:http at another shape, names the mTLS client', async () => {
    const sink = new MemorySink();
    const { lines, logger } = capturedLogger('debug');
    const rx = new HttpReceiver(
      { endpoint: '127.0.0.1:0', max_request_body_size: 1 << 20, ...HTTP_DEFAULTS, tls: tlsBlock({ client_ca_file: pki.ca.cert }) },
      { ...deps(sink), logger },
    );
    const { port } = await rx.start();
    cleanups.push(() => rx.shutdown());
    const head = (framing: string): string => `POST /v1/logs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-protobuf\r\n${framing}\r\n`;
    const declared = (b: Uint8Array): Buffer => Buffer.concat([Buffer.from(head(`Content-Length: ${b.length}\r\n`)), b]);
    const chunked = (b: Uint8Array): Buffer =>
      Buffer.concat([Buffer.from(`${head('Transfer-Encoding: chunked\r\n')}${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n0\r\n\r\n')]);
    const json = Buffer.from(`POST /v1/logs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`);
    // A body larger than one TLS record (16 KiB) arrives in several reads.
    const big = sampleRequest(1500);
    expect(big.length).toBeGreaterThan(40_000);
    const bytes = Buffer.concat([declared(sampleRequest(1)), chunked(big), declared(big), json, declared(sampleRequest(2))]);
    const replies = await rawExchange((ready) => tls.connect({ host: '127.0.0.1', port, ...clientTls(pki.client) }, ready), [bytes], 5);
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    // node:http always sends a Connection header on HTTP/1.1; the fast path never does.
    expect(replies.map((r) => r.headers['connection'] === undefined)).toEqual([true, true, true, false, false]);
    expect(sink.batches.map((b) => b.length)).toEqual([1, 1500, 1500, 2]);
    await new Promise((r) => setTimeout(r, 50)); // pino writes asynchronously
    const accepted = lines.filter((l) => l.includes('OTLP/HTTP records accepted'));
    expect(accepted).toHaveLength(4);
    for (const l of accepted) expect(JSON.parse(l).client).toBe('cert CN=good-client');
  });
});

describe('secret files readable by others', () => {
  it('a world-readable TLS key or token file is served but warned about, naming the file and the fix; no secret in the log', async () => {
    const live = fs.mkdtempSync(path.join(pki.dir, 'perm-'));
    const key = path.join(live, 'tls.key');
    const tokens = path.join(live, 'tokens');
    const token = 'world-readable-token-0123456789';
    fs.copyFileSync(pki.server.key, key);
    fs.chmodSync(key, 0o644);
    fs.writeFileSync(tokens, `${token}\n`, { mode: 0o644 });
    fs.chmodSync(tokens, 0o644);
    const { lines, logger } = capturedLogger('warn');
    const rx = new HttpReceiver(
      { endpoint: '127.0.0.1:0', max_request_body_size: 1024, ...HTTP_DEFAULTS, tls: tlsBlock({ key_file: key }), auth: { bearer_token_file: tokens, reload_interval: 0 } },
      { ...deps(new MemorySink()), logger },
    );
    await rx.start();
    cleanups.push(() => rx.shutdown());
    await new Promise((r) => setTimeout(r, 50)); // pino writes asynchronously
    const log = lines.join('');
    expect(log).toContain('receivers.otlp.protocols.http.tls.key_file can be read by any user on the host; chmod 600');
    expect(log).toContain('receivers.otlp.protocols.http.auth.bearer_token_file can be read by any user on the host; chmod 600');
    expect(log).not.toContain(token);
    expect(log).not.toContain('PRIVATE KEY');
  });
});

describe('OTLP/gRPC over TLS', () => {
  async function tlsGrpc(sink: MemorySink, t: ReturnType<typeof tlsBlock>) {
    const g = await startGrpc(sink, { tls: t });
    cleanups.push(() => g.rx.shutdown());
    return g;
  }

  it('mTLS: good client served; wrong CA, expired and no certificate refused (UNAVAILABLE at the client); nothing stored for them', async () => {
    const sink = new MemorySink();
    const { port } = await tlsGrpc(sink, tlsBlock({ client_ca_file: pki.ca.cert }));
    expect((await grpcCall(port, grpcCreds(pki.client), sampleRequest(2))).code).toBe(0);
    expect(sink.entries).toHaveLength(2);
    for (const bad of [pki.clientOtherCa, pki.clientExpired, undefined]) {
      const r = await grpcCall(port, grpcCreds(bad), sampleRequest(1));
      expect(r.code, `client ${bad?.cert ?? 'without certificate'}: ${r.details}`).toBe(grpc.status.UNAVAILABLE);
    }
    // Plaintext gRPC to the TLS port fails too.
    expect((await grpcCall(port, grpc.credentials.createInsecure(), sampleRequest(1))).code).toBe(grpc.status.UNAVAILABLE);
    expect(sink.entries).toHaveLength(2);
  });

  it('TLS without client CA serves any client that trusts the server; min_version 1.3 refuses TLS 1.2', async () => {
    const sink = new MemorySink();
    const { port } = await tlsGrpc(sink, tlsBlock({ min_version: '1.3' }));
    expect((await grpcCall(port, grpcCreds(), sampleRequest(1))).code).toBe(0);
    const ca = pki.read(pki.ca.cert);
    await expect(
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: ['h2'], maxVersion: 'TLSv1.2' }, () => {
          s.destroy();
          resolve('connected');
        });
        s.on('error', reject);
      }),
    ).rejects.toThrow();
    expect(sink.entries).toHaveLength(1);
  });

  it('certificate reload without restart: new connections get the new certificate and calls keep working', async () => {
    const live = fs.mkdtempSync(path.join(pki.dir, 'glive-'));
    const cert = path.join(live, 'tls.crt');
    const key = path.join(live, 'tls.key');
    fs.copyFileSync(pki.server.cert, cert);
    fs.copyFileSync(pki.server.key, key);
    const sink = new MemorySink();
    const { port } = await tlsGrpc(sink, tlsBlock({ cert_file: cert, key_file: key, reload_interval: 200, client_ca_file: pki.ca.cert }));
    const ca = pki.read(pki.ca.cert);
    const probe = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const s = tls.connect(
          { host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: ['h2'], cert: pki.read(pki.client.cert), key: pki.read(pki.client.key) },
          () => {
            const fp = s.getPeerCertificate().fingerprint256;
            s.destroy();
            resolve(fp);
          },
        );
        s.on('error', reject);
      });
    expect(await probe()).toBe(fingerprint(pki.server.cert));
    replaceFile(pki.server2.key, key);
    replaceFile(pki.server2.cert, cert);
    expect(await waitUntil(async () => (await probe()) === fingerprint(pki.server2.cert), 5_000)).toBe(true);
    // mTLS settings survive the reload (the client CA is part of every new context).
    expect((await grpcCall(port, grpcCreds(pki.client), sampleRequest(1))).code).toBe(0);
    expect((await grpcCall(port, grpcCreds(pki.clientOtherCa), sampleRequest(1))).code).toBe(grpc.status.UNAVAILABLE);
    expect(sink.entries).toHaveLength(1);
  });
});

describe('plaintext receivers are unchanged', () => {
  it('no tls block → plaintext, as before', async () => {
    const sink = new MemorySink();
    const h = await startHttp(sink);
    cleanups.push(() => h.rx.shutdown());
    expect(h.rx.tlsReloader).toBeUndefined();
    expect(await httpRequestPlain(h.port, sampleRequest(1))).toBe(200);
    expect(sink.entries).toHaveLength(1);
    const g = new GrpcReceiver({ endpoint: '127.0.0.1:0', max_recv_msg_size_mib: 1, ...GRPC_DEFAULTS }, deps(sink));
    cleanups.push(() => g.shutdown());
    expect(g.tlsReloader).toBeUndefined();
  });
});
