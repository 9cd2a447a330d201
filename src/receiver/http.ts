/**
 * OTLP/HTTP receiver (opentelemetry-proto docs/specification.md, "OTLP/HTTP"): `POST /v1/logs` with
 * binary protobuf or JSON bodies, optionally gzip/deflate-compressed. Transport only: it reads and
 * bounds the body, hands it to the OTLP decoder once, appends the entries to the ledger and answers
 * only after the ledger said they are durable (G1). Every refusal leaves the sink untouched (G7).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import type { HttpReceiverConfig } from '../config/schema.js';
import { parseEndpoint } from '../config/schema.js';
import { SealtrailError, errorMessage } from '../errors.js';
import {
  decodeLogsJson,
  decodeLogsProtobuf,
  exportLogsResponseJson,
  exportLogsResponseProtobuf,
  rpcStatusJson,
  rpcStatusProtobuf,
} from '../otlp/index.js';
import { type ReceiveOutcome, refusalMessage, transportStatus } from './status.js';
import { type ListenAddress, type ReceiverDeps, SHUTDOWN_RETRY_AFTER_MS } from './types.js';

/** Request/connection timeouts. Slowloris hardening with finer limits is issue 8. */
export const HTTP_TIMEOUTS = {
  /** Whole header block must arrive within this (Node default 60 s is generous for an agent). */
  headersTimeoutMs: 10_000,
  /** Whole request, body included: 20 MiB at a modest 1 MiB/s still fits. */
  requestTimeoutMs: 60_000,
  /** Idle keep-alive; SDK exporters reuse connections between batches (spec: "SHOULD keep the connection alive"). */
  keepAliveTimeoutMs: 30_000,
} as const;

const LOGS_PATH = '/v1/logs';
const OTHER_SIGNAL_PATHS = new Set(['/v1/traces', '/v1/metrics', '/v1development/profiles']);

type BodyEncoding = 'protobuf' | 'json';
/** Encoding of error bodies: the request's OTLP encoding, or plain text when it had none. */
type ReplyEncoding = BodyEncoding | 'text';

const CONTENT_TYPE: Record<ReplyEncoding, string> = {
  protobuf: 'application/x-protobuf',
  json: 'application/json',
  text: 'text/plain; charset=utf-8',
};

/**
 * Parses Content-Type into an OTLP encoding. Media types are case-insensitive (RFC 9110 §8.3.1);
 * a charset parameter is tolerated when it is UTF-8 (the only encoding OTLP/JSON uses).
 */
export function parseOtlpContentType(header: string | undefined): BodyEncoding | { error: string } {
  if (header === undefined || header.trim() === '') {
    return { error: 'missing Content-Type: send application/x-protobuf or application/json' };
  }
  const [mediaRaw, ...params] = header.split(';');
  const media = mediaRaw!.trim().toLowerCase();
  let enc: BodyEncoding | undefined;
  if (media === 'application/x-protobuf' || media === 'application/protobuf') enc = 'protobuf';
  else if (media === 'application/json') enc = 'json';
  if (enc === undefined) {
    return { error: `unsupported Content-Type "${media}": send application/x-protobuf or application/json` };
  }
  for (const p of params) {
    const [k, v] = p.split('=').map((s) => s.trim().toLowerCase());
    if (k === 'charset' && v !== undefined && v.replace(/"/g, '') !== 'utf-8' && v.replace(/"/g, '') !== 'utf8') {
      return { error: `unsupported charset "${v}" in Content-Type: OTLP/JSON bodies are UTF-8` };
    }
  }
  return enc;
}

type Coding = 'identity' | 'gzip' | 'deflate';

/** Parses Content-Encoding (RFC 9110 §8.4): identity, gzip (x-gzip alias) or deflate; one coding at most. */
export function parseContentEncoding(header: string | undefined): Coding | { error: string } {
  if (header === undefined) return 'identity';
  const codings = header
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '' && s !== 'identity');
  if (codings.length === 0) return 'identity';
  if (codings.length > 1) {
    return { error: `unsupported Content-Encoding "${header}": send one of gzip, deflate or identity, not a chain` };
  }
  const c = codings[0]!;
  if (c === 'gzip' || c === 'x-gzip') return 'gzip';
  if (c === 'deflate') return 'deflate';
  return { error: `unsupported Content-Encoding "${c}": send gzip, deflate or identity` };
}

type BodyResult = { ok: true; body: Buffer } | { ok: false; outcome: ReceiveOutcome } | { ok: false; aborted: true };

/**
 * Reads the request body, decompressing as it arrives and counting decompressed bytes, and stops
 * the moment `limit` is passed (spec, "OTLP/HTTP Request": the limit applies after decompression).
 * The raw (compressed) body is capped at the same limit. Memory held is at most `limit` plus one
 * zlib output chunk, whatever the compression ratio of the input (no decompression bomb).
 */
function readBody(req: http.IncomingMessage, coding: Coding, limit: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    let settled = false;
    const chunks: Buffer[] = [];
    let outBytes = 0;
    let rawBytes = 0;
    let inflater: zlib.Gunzip | zlib.Inflate | zlib.InflateRaw | undefined;

    const finish = (r: BodyResult): void => {
      if (settled) return;
      settled = true;
      chunks.length = 0;
      req.off('data', onData);
      req.off('end', onEnd);
      if (inflater) {
        inflater.removeAllListeners('data');
        inflater.destroy();
      }
      resolve(r);
    };
    const tooLarge = (what: string): void =>
      finish({
        ok: false,
        outcome: {
          kind: 'too_large',
          message: `request body ${what} exceeds receivers.otlp.protocols.http.max_request_body_size (${limit} bytes); send smaller batches`,
        },
      });
    const collect = (chunk: Buffer): void => {
      outBytes += chunk.length;
      if (outBytes > limit) {
        tooLarge(coding === 'identity' ? 'size' : 'after decompression');
        return;
      }
      chunks.push(chunk);
    };
    const done = (): void => {
      if (settled) return;
      const body = Buffer.concat(chunks, outBytes);
      finish({ ok: true, body });
    };
    const makeInflater = (first: Buffer): zlib.Gunzip | zlib.Inflate | zlib.InflateRaw => {
      let z: zlib.Gunzip | zlib.Inflate | zlib.InflateRaw;
      if (coding === 'gzip') z = zlib.createGunzip();
      // HTTP "deflate" is the zlib format (RFC 9110 §8.4.1.2), but some clients send raw DEFLATE:
      // a zlib stream starts with CMF/FLG where CM = 8 and (CMF*256 + FLG) % 31 === 0 (RFC 1950 §2.2).
      else if (first.length >= 2 && (first[0]! & 0x0f) === 8 && ((first[0]! << 8) | first[1]!) % 31 === 0) z = zlib.createInflate();
      else z = zlib.createInflateRaw();
      z.on('data', collect);
      z.on('end', done);
      z.on('error', (e: Error) =>
        finish({
          ok: false,
          outcome: { kind: 'invalid', message: `request body is not valid ${coding} data (Content-Encoding: ${coding}): ${e.message}` },
        }),
      );
      return z;
    };

    const onData = (chunk: Buffer): void => {
      if (settled) return;
      rawBytes += chunk.length;
      if (rawBytes > limit) {
        tooLarge('size');
        return;
      }
      if (coding === 'identity') {
        collect(chunk);
        return;
      }
      inflater ??= makeInflater(chunk);
      inflater.write(chunk);
    };
    const onEnd = (): void => {
      if (settled) return;
      if (coding === 'identity') done();
      else if (inflater) inflater.end();
      else
        finish({
          ok: false,
          outcome: { kind: 'invalid', message: `empty request body with Content-Encoding: ${coding}; send a ${coding} stream or no Content-Encoding` },
        });
    };
    req.on('data', onData);
    req.on('end', onEnd);
    // The client went away (or the request timed out): nobody to answer, nothing stored.
    req.on('close', () => {
      if (!req.complete) finish({ ok: false, aborted: true });
    });
  });
}

/**
 * The OTLP/HTTP logs receiver. Lifecycle: `start` → (`stopAccepting`) → `shutdown`.
 */
export class HttpReceiver {
  readonly #config: HttpReceiverConfig;
  readonly #deps: ReceiverDeps;
  #server: http.Server | undefined;
  #stopping = false;
  #inFlight = 0;
  #idleWaiters: Array<() => void> = [];
  #shutdown: Promise<void> | undefined;

  constructor(config: HttpReceiverConfig, deps: ReceiverDeps) {
    this.#config = config;
    this.#deps = deps;
  }

  /**
   * Binds `config.endpoint` (port 0 picks a free port) and serves until `shutdown`.
   * @throws SealtrailError CONFIG_INVALID when `tls` or `auth` is configured (not implemented yet: we never serve plaintext instead),
   *   IO when the address cannot be bound.
   */
  async start(): Promise<ListenAddress> {
    if (this.#server) throw new SealtrailError('INTERNAL', 'HttpReceiver.start called twice');
    if (this.#config.tls || this.#config.auth) {
      const key = this.#config.tls ? 'tls' : 'auth';
      throw new SealtrailError(
        'CONFIG_INVALID',
        `receivers.otlp.protocols.http.${key}: TLS and bearer-token auth are not implemented in this version; ` +
          `remove the ${key} block (the agent refuses to serve plaintext when ${key} was asked for)`,
      );
    }
    const ep = parseEndpoint(this.#config.endpoint);
    if (!ep) throw new SealtrailError('CONFIG_INVALID', `receivers.otlp.protocols.http.endpoint: invalid "${this.#config.endpoint}"`);
    const server = http.createServer({
      headersTimeout: HTTP_TIMEOUTS.headersTimeoutMs,
      requestTimeout: HTTP_TIMEOUTS.requestTimeoutMs,
      keepAliveTimeout: HTTP_TIMEOUTS.keepAliveTimeoutMs,
    });
    server.on('request', (req, res) => this.#onRequest(req, res));
    // `Expect: 100-continue` (curl sends it for bodies over 1 KiB): decide on the headers first and
    // send 100 Continue only when the body is wanted (RFC 9110 §10.1.1), so a refused upload is never sent.
    server.on('checkContinue', (req, res) => this.#onRequest(req, res));
    // Malformed HTTP, oversized headers and timeouts: Node's default clientError handling answers
    // 400/431/408 and closes the socket, which is what we want.
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error): void => {
        reject(new SealtrailError('IO', `receivers.otlp.protocols.http.endpoint: cannot listen on ${this.#config.endpoint}: ${e.message}`, { cause: e }));
      };
      server.once('error', onError);
      server.listen(ep.port, ep.host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (e) => this.#deps.logger.error({ err: e }, 'OTLP/HTTP server error'));
    this.#server = server;
    const port = (server.address() as AddressInfo).port;
    this.#deps.logger.info({ endpoint: `${ep.host}:${port}` }, 'OTLP/HTTP receiver listening');
    return { host: ep.host, port };
  }

  /** From now on new requests are refused with 503 + Retry-After (shutting_down); in-flight requests finish. */
  stopAccepting(): void {
    this.#stopping = true;
  }

  /**
   * Stops accepting, closes the listener, waits for in-flight requests (at most `graceMs`, then
   * closes their connections) and resolves. Safe to call more than once; resolves the same way.
   */
  shutdown(graceMs = 10_000): Promise<void> {
    this.#shutdown ??= this.#doShutdown(graceMs);
    return this.#shutdown;
  }

  async #doShutdown(graceMs: number): Promise<void> {
    this.stopAccepting();
    const server = this.#server;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const drained = new Promise<void>((resolve) => {
      if (this.#inFlight === 0) resolve();
      else this.#idleWaiters.push(resolve);
    });
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
      timer.unref();
    });
    const r = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    if (r === 'timeout') this.#deps.logger.warn({ inFlight: this.#inFlight }, 'OTLP/HTTP shutdown grace period over; closing connections');
    server.closeAllConnections();
    await closed;
  }

  #onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.#inFlight++;
    res.once('close', () => {
      this.#inFlight--;
      if (this.#inFlight === 0) for (const w of this.#idleWaiters.splice(0)) w();
    });
    this.#handle(req, res).catch((e: unknown) => {
      // A sink that rejects breaks its contract; answer retryable so the client keeps its data (G2).
      this.#deps.logger.error({ err: e }, 'OTLP/HTTP request failed unexpectedly');
      if (!res.headersSent) {
        this.#reply(req, res, 'text', { kind: 'retryable', reason: 'ledger_failed', afterMs: 5_000, message: refusalMessage('ledger_failed', errorMessage(e)) });
      } else res.destroy();
    });
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const ct = parseOtlpContentType(req.headers['content-type']);
    // Error bodies in the request's encoding where it named one (spec: same Content-Type as the request).
    const replyEnc: ReplyEncoding = typeof ct === 'string' ? ct : 'text';

    if (path !== LOGS_PATH) {
      if (OTHER_SIGNAL_PATHS.has(path)) {
        return this.#reply(req, res, replyEnc, {
          kind: 'unimplemented_signal',
          message: `${path}: this agent takes logs only (POST /v1/logs); send traces and metrics elsewhere`,
        });
      }
      return this.#reply(req, res, replyEnc, { kind: 'not_found', message: `no such path ${JSON.stringify(path)}: OTLP logs go to POST /v1/logs` });
    }
    if (req.method !== 'POST') {
      return this.#reply(req, res, replyEnc, { kind: 'method_not_allowed', allow: 'POST', message: `method ${req.method} not allowed on /v1/logs: use POST` });
    }
    if (this.#stopping) return this.#reply(req, res, replyEnc, shuttingDown());
    if (typeof ct !== 'string') return this.#reply(req, res, 'text', { kind: 'unsupported_media_type', message: ct.error });
    const coding = parseContentEncoding(req.headers['content-encoding']);
    if (typeof coding !== 'string') return this.#reply(req, res, ct, { kind: 'invalid', message: coding.error });

    const limit = this.#config.max_request_body_size;
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit) {
      return this.#reply(req, res, ct, {
        kind: 'too_large',
        message: `request body of ${declared} bytes exceeds receivers.otlp.protocols.http.max_request_body_size (${limit} bytes); send smaller batches`,
      });
    }

    if (req.headers.expect?.toLowerCase() === '100-continue') res.writeContinue();
    const read = await readBody(req, coding, limit);
    if (!read.ok) {
      if ('aborted' in read) {
        this.#deps.metrics?.receiverRequests.inc({ transport: 'http', status: 'aborted' });
        return;
      }
      return this.#reply(req, res, ct, read.outcome);
    }
    this.#deps.metrics?.receiverBytes.inc({ transport: 'http' }, read.body.length);

    const decoded = ct === 'protobuf' ? decodeLogsProtobuf(read.body, this.#deps.limits) : decodeLogsJson(read.body, this.#deps.limits);
    if (!decoded.ok) return this.#reply(req, res, ct, { kind: 'invalid', message: decoded.message });
    const entries = decoded.entries;
    if (entries.length === 0) return this.#reply(req, res, ct, { kind: 'ok', records: 0 });

    const appended = await this.#deps.sink.append(entries);
    if (appended.kind === 'ok') {
      this.#deps.metrics?.receiverAccepted.inc({ transport: 'http' }, entries.length);
      return this.#reply(req, res, ct, { kind: 'ok', records: entries.length });
    }
    this.#deps.metrics?.receiverRefused.inc({ transport: 'http', reason: appended.reason }, entries.length);
    return this.#reply(req, res, ct, {
      kind: 'retryable',
      reason: appended.reason,
      afterMs: appended.afterMs,
      message: refusalMessage(appended.reason, appended.detail),
    });
  }

  #reply(req: http.IncomingMessage, res: http.ServerResponse, enc: ReplyEncoding, outcome: ReceiveOutcome): void {
    const st = transportStatus(outcome);
    let body: Uint8Array | string;
    if (outcome.kind === 'ok') {
      body = enc === 'json' ? exportLogsResponseJson() : exportLogsResponseProtobuf();
      if (enc === 'text') enc = 'protobuf';
    } else if (enc === 'protobuf') body = rpcStatusProtobuf(st.grpc, st.message);
    else if (enc === 'json') body = rpcStatusJson(st.grpc, st.message);
    else body = `${st.message}\n`;
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;

    const headers: http.OutgoingHttpHeaders = { 'Content-Type': CONTENT_TYPE[enc], 'Content-Length': bytes.length };
    if (st.retryAfterSeconds !== undefined) headers['Retry-After'] = String(st.retryAfterSeconds);
    if (outcome.kind === 'method_not_allowed') headers['Allow'] = outcome.allow;
    // A refused request whose body we did not (fully) read: close rather than drain an unbounded
    // body on a keep-alive connection. Also close while stopping, so clients reconnect elsewhere.
    if (!req.complete || this.#stopping) headers['Connection'] = 'close';
    res.writeHead(st.http, headers);
    res.end(bytes);
    this.#deps.metrics?.receiverRequests.inc({ transport: 'http', status: String(st.http) });
    if (outcome.kind !== 'ok') this.#deps.logger.debug({ status: st.http, message: st.message }, 'OTLP/HTTP request refused');
  }
}

function shuttingDown(): ReceiveOutcome {
  return { kind: 'retryable', reason: 'shutting_down', afterMs: SHUTDOWN_RETRY_AFTER_MS, message: refusalMessage('shutting_down') };
}
