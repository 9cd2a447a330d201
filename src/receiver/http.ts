/**
 * OTLP/HTTP receiver (opentelemetry-proto docs/specification.md, "OTLP/HTTP"): `POST /v1/logs` with
 * binary protobuf or JSON bodies, optionally gzip/deflate-compressed. Transport only: it reads and
 * bounds the body, hands it to the OTLP decoder once, appends the entries to the ledger and answers
 * only after the ledger said they are durable (G1). Every refusal leaves the sink untouched (G7).
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import zlib from 'node:zlib';
import type { HttpReceiverConfig } from '../config/schema.js';
import { parseEndpoint } from '../config/schema.js';
import { SealtrailError, errorMessage } from '../errors.js';
import {
  EntryArena,
  decodeLogsJson,
  decodeLogsProtobuf,
  exportLogsResponseJson,
  exportLogsResponseProtobuf,
  rpcStatusJson,
  rpcStatusProtobuf,
} from '../otlp/index.js';
import { giveBody, takeBody } from './body-pool.js';
import { FastPath } from './http-fast.js';
import { noteBytesRead } from './read-gc.js';
import { type AuthResult, BearerTokens, bearerFromAuthorization } from './auth.js';
import { ConcurrencyGate, OVERLOAD_RETRY_AFTER_MS } from './limits.js';
import { type ReceiveOutcome, refusalLabel, refusalMessage, transportStatus } from './status.js';
import { TlsReloader, secureContextOptions, tlsServerOptions } from './tls.js';
import type { ReceiverTallies } from '../telemetry/metrics.js';
import {
  DEFAULT_MAX_CONCURRENT_REQUESTS,
  DEFAULT_MAX_RECORDS_PER_REQUEST,
  type ListenAddress,
  type ReceiverDeps,
  SHUTDOWN_RETRY_AFTER_MS,
} from './types.js';

const KEY = 'receivers.otlp.protocols.http';

const LOGS_PATH = '/v1/logs';
const OTHER_SIGNAL_PATHS = new Set(['/v1/traces', '/v1/metrics', '/v1development/profiles']);
/**
 * Largest declared body that a request refused for overload (429) is read and discarded for, so
 * that its keep-alive connection survives (see #reply); bigger or chunked bodies close it. 1 MiB
 * reads in well under a millisecond here, less than accepting a new connection (let alone a TLS
 * handshake) costs.
 */
const DRAIN_LIMIT = 1024 * 1024;

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

/** `pooled`: the body is a body-pool buffer (joined from several reads) that the caller must give back. */
type BodyResult = { ok: true; body: Buffer; pooled: boolean } | { ok: false; outcome: ReceiveOutcome } | { ok: false; aborted: true };

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
      // A body that arrived in one chunk is used as it is (no copy; most bodies of a keep-alive
      // connection fit one socket read); several are joined in a reused buffer (body-pool.ts).
      if (chunks.length <= 1) {
        finish({ ok: true, body: chunks[0] ?? Buffer.alloc(0), pooled: false });
        return;
      }
      const body = takeBody(outBytes);
      let at = 0;
      for (const c of chunks) {
        body.set(c, at);
        at += c.length;
      }
      finish({ ok: true, body, pooled: true });
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
      noteBytesRead(chunk.length);
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
  #tls: TlsReloader | undefined;
  #tokens: BearerTokens | undefined;
  readonly #gate: ConcurrencyGate;
  /** Per-request counts as plain numbers (metrics.ts Tally): no label hashing on the hot path. */
  readonly #tally: ReceiverTallies | undefined;
  #stopping = false;
  #inFlight = 0;
  #idleWaiters: Array<() => void> = [];
  #shutdown: Promise<void> | undefined;
  /** Connections read without node:http (http-fast.ts); undefined with SEALTRAIL_HTTP_FAST=0. */
  #fast: FastPath | undefined;
  /** The success response of the current second (its Date header), reused. */
  #okResponse: { readonly date: string; readonly bytes: Uint8Array } | undefined;

  constructor(config: HttpReceiverConfig, deps: ReceiverDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#gate = deps.gate ?? new ConcurrencyGate(DEFAULT_MAX_CONCURRENT_REQUESTS);
    this.#tally = deps.metrics?.receiverTallies('http');
  }

  /**
   * Binds `config.endpoint` (port 0 picks a free port) and serves until `shutdown`; HTTPS when
   * `tls` is configured (mTLS with `client_ca_file`), bearer tokens required when `auth` is.
   * @throws SealtrailError CONFIG_INVALID for unusable tls/auth files or inconsistent timeouts
   *   (never serves plaintext or unauthenticated instead), IO when the address cannot be bound.
   */
  async start(): Promise<ListenAddress> {
    if (this.#server) throw new SealtrailError('INTERNAL', 'HttpReceiver.start called twice');
    const cfg = this.#config;
    const ep = parseEndpoint(cfg.endpoint);
    if (!ep) throw new SealtrailError('CONFIG_INVALID', `${KEY}.endpoint: invalid "${cfg.endpoint}"`);
    if (cfg.read_header_timeout > cfg.read_timeout) {
      throw new SealtrailError('CONFIG_INVALID', `${KEY}.read_header_timeout (${cfg.read_header_timeout} ms) must not exceed ${KEY}.read_timeout (${cfg.read_timeout} ms)`);
    }
    const tlsReloader = cfg.tls ? await TlsReloader.load(cfg.tls, `${KEY}.tls`, this.#deps.logger) : undefined;
    let tokens: BearerTokens | undefined;
    try {
      tokens = cfg.auth ? await BearerTokens.load(cfg.auth.bearer_token_file, cfg.auth.reload_interval, `${KEY}.auth`, this.#deps.logger) : undefined;
    } catch (e) {
      tlsReloader?.close();
      throw e;
    }
    // Slow-client limits (slowloris): Node checks headersTimeout/requestTimeout on a timer of
    // `connectionsCheckingInterval` (default 30 s, far coarser than our 10 s header limit), so
    // check often enough that a cut-off happens within about a quarter of the limit.
    const common: http.ServerOptions = {
      headersTimeout: cfg.read_header_timeout,
      requestTimeout: cfg.read_timeout,
      keepAliveTimeout: cfg.idle_timeout,
      maxHeaderSize: cfg.max_request_header_size,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(cfg.read_header_timeout / 4))),
    };
    // One code path for both: https.Server emits the same request events as http.Server.
    const server: http.Server =
      cfg.tls && tlsReloader
        ? (https.createServer({ ...common, ...tlsServerOptions(cfg.tls), ...secureContextOptions(tlsReloader.material, cfg.tls) }) as unknown as http.Server)
        : http.createServer(common);
    if (cfg.tls && tlsReloader) {
      const tlsCfg = cfg.tls;
      const secure = server as unknown as https.Server;
      tlsReloader.watch((m) => secure.setSecureContext(secureContextOptions(m, tlsCfg)));
      // Failed handshakes (no/wrong/expired client certificate, plaintext on the TLS port, timeout).
      secure.on('tlsClientError', (e: Error) => {
        this.#deps.metrics?.receiverRefusedRequests.inc({ transport: 'http', reason: 'tls_handshake' });
        this.#deps.logger.debug({ err: e.message }, 'OTLP/HTTP TLS handshake failed');
      });
    }
    this.#tls = tlsReloader;
    this.#tokens = tokens;
    server.on('request', (req, res) => this.#onRequest(req, res));
    // `Expect: 100-continue` (curl sends it for bodies over 1 KiB): decide on the headers first and
    // send 100 Continue only when the body is wanted (RFC 9110 §10.1.1), so a refused upload is never sent.
    server.on('checkContinue', (req, res) => this.#onRequest(req, res));
    // Malformed HTTP, oversized headers and timeouts: answered as Node does by default (400/431/408,
    // then the socket is closed), and counted.
    server.on('clientError', (e: NodeJS.ErrnoException, socket: Socket) => this.#onClientError(e, socket));
    if (process.env.SEALTRAIL_HTTP_FAST !== '0') {
      // Connections start on the fast path (http-fast.ts) — plain ones when they are accepted, TLS ones
      // once their handshake is done; node:http's own connection handler takes any connection the fast
      // path hands over, exactly as if it had been the first to see it.
      const event = cfg.tls ? 'secureConnection' : 'connection';
      const nodeConnection = server.listeners(event) as Array<(s: Socket) => void>;
      server.removeAllListeners(event);
      const fast = new FastPath({
        admit: () => this.#fastAdmit(),
        overloaded: () => this.#fastResponse(this.#overloaded()),
        drainLimit: Math.min(DRAIN_LIMIT, cfg.max_request_body_size),
        // A request the receiver does not accept goes to node:http, which answers 401 and counts it.
        authenticate: (authorization, socket) => {
          const who = this.#authenticate(authorization, socket);
          return who.ok ? { client: who.client } : false;
        },
        answer: (body, client) => this.#fastAnswer(body, client),
        handOver: (socket) => {
          for (const l of nodeConnection) l.call(server, socket);
        },
        accepting: () => !this.#stopping,
        headerTimeout: (socket) => this.#onClientError(Object.assign(new Error('request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), socket),
        maxHeadBytes: cfg.max_request_header_size,
        maxBody: cfg.max_request_body_size,
        readHeaderTimeoutMs: cfg.read_header_timeout,
        idleTimeoutMs: cfg.idle_timeout,
      });
      server.on(event, (socket: Socket) => fast.adopt(socket));
      this.#fast = fast;
    }
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error): void => {
        this.#closeWatchers();
        reject(new SealtrailError('IO', `${KEY}.endpoint: cannot listen on ${this.#config.endpoint}: ${e.message}`, { cause: e }));
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
    this.#deps.logger.info(
      { endpoint: `${ep.host}:${port}`, tls: cfg.tls ? (cfg.tls.client_ca_file ? 'mtls' : 'tls') : 'off', auth: tokens ? 'bearer' : 'off' },
      'OTLP/HTTP receiver listening',
    );
    return { host: ep.host, port };
  }

  /** TLS material in force (for tests and diagnostics); undefined without tls. */
  get tlsReloader(): TlsReloader | undefined {
    return this.#tls;
  }

  /** Bearer tokens in force; undefined without auth. */
  get bearerTokens(): BearerTokens | undefined {
    return this.#tokens;
  }

  #closeWatchers(): void {
    this.#tls?.close();
    this.#tokens?.close();
  }

  #onClientError(e: NodeJS.ErrnoException, socket: Socket): void {
    // Same answers as Node's default handler (lib/_http_server.js socketOnError), plus a metric.
    // The body is a one-line text message naming what was wrong (G7); the connection is closed.
    const code = e.code;
    let status = 400;
    let reason = 'malformed_http';
    let message = `malformed HTTP/1.1 request (${code ?? 'parse error'}); send a valid request`;
    if (code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      reason = 'header_too_large';
      message = `request header block larger than ${KEY}.max_request_header_size (${this.#config.max_request_header_size} bytes)`;
    } else if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      reason = 'timeout';
      message = `request not received in time (${KEY}.read_header_timeout ${this.#config.read_header_timeout} ms for the headers, read_timeout ${this.#config.read_timeout} ms for all of it)`;
    } else if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') {
      status = 413;
      reason = 'header_too_large';
      message = 'chunk extensions too large';
    } else if (code === 'ECONNRESET' || code === 'EPIPE') {
      reason = 'connection_reset';
    }
    if (reason !== 'connection_reset') this.#deps.metrics?.receiverRefusedRequests.inc({ transport: 'http', reason });
    if (reason !== 'connection_reset' && socket.writable && socket.bytesWritten === 0) {
      const body = `${message}\n`;
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
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
    this.#closeWatchers();
    const server = this.#server;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    this.#fast?.closeIdle();
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
    this.#fast?.closeAll();
    await closed;
  }

  #onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.#inFlight++;
    numberRequest(req);
    whenGone(req, res, () => this.#requestDone());
    this.#handle(req, res).catch((e: unknown) => {
      const outcome = this.#failedUnexpectedly(e);
      if (!res.headersSent) this.#reply(req, res, 'text', outcome);
      else res.destroy();
    });
  }

  /**
   * True (and counted as aborted) when `req` was pipelined behind a request answered with Connection:
   * close on its connection: node still hands it over, but its answer can never be sent.
   */
  #droppedAfterClose(req: http.IncomingMessage): boolean {
    if (!afterClose(req)) return false;
    this.#deps.metrics?.receiverRequests.inc({ transport: 'http', status: 'aborted' });
    return true;
  }

  /** A sink that rejects breaks its contract: logged, and answered retryable so the client keeps its data (G2). */
  #failedUnexpectedly(e: unknown): ReceiveOutcome {
    this.#deps.logger.error({ err: e }, 'OTLP/HTTP request failed unexpectedly');
    return { kind: 'retryable', reason: 'ledger_failed', afterMs: 5_000, message: refusalMessage('ledger_failed', errorMessage(e)) };
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // A request pipelined behind one answered with Connection: close: node still hands it over, but
    // its answer can never be sent (the connection closes after the one before). Storing it would make
    // the client's retry a duplicate; it is dropped unread, as the client will see the connection end.
    if (this.#droppedAfterClose(req)) return;
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const ct = parseOtlpContentType(req.headers['content-type']);
    // Error bodies in the request's encoding where it named one (spec: same Content-Type as the request).
    const replyEnc: ReplyEncoding = typeof ct === 'string' ? ct : 'text';

    // Authentication comes first, before the path is even looked at and long before the body is
    // read or decompressed: an unauthenticated client learns nothing and costs nothing.
    const who = this.#authenticate(req.headers.authorization, req.socket);
    if (!who.ok) {
      return this.#reply(req, res, replyEnc, { kind: 'unauthenticated', message: who.message, ...(who.error === 'invalid_token' ? { error: 'invalid_token' as const } : {}) });
    }
    const client = who.client;

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

    // Admission (G2): a bounded number of requests may hold a body in memory at once. The slot is
    // held until the response is finished (or the client went away).
    const release = this.#gate.tryAcquire();
    if (!release) return this.#reply(req, res, ct, this.#overloaded());
    whenGone(req, res, release);

    if (req.headers.expect?.toLowerCase() === '100-continue') res.writeContinue();
    const read = await readBody(req, coding, limit);
    if (!read.ok) {
      if ('aborted' in read) {
        this.#deps.metrics?.receiverRequests.inc({ transport: 'http', status: 'aborted' });
        return;
      }
      return this.#reply(req, res, ct, read.outcome);
    }
    if (this.#tally) this.#tally.bytes.n += read.body.length;

    // The entries live in a pooled arena until the ledger has taken them (EntryArena's contract):
    // released when this request is finished with them, whatever the outcome.
    const arena = new EntryArena();
    try {
      return await this.#store(req, res, ct, read.body, arena, client);
    } finally {
      arena.release();
      // The decoder copied what it needs into the arena; nothing reads the body any more.
      if (read.pooled) giveBody(read.body);
    }
  }

  /** Decodes a request's body into `arena`, appends the entries to the ledger and answers. */
  async #store(req: http.IncomingMessage, res: http.ServerResponse, ct: 'protobuf' | 'json', body: Buffer, arena: EntryArena, client: string | undefined): Promise<void> {
    // Checked again here: an answer before this one may have said Connection: close while this body was read.
    if (this.#droppedAfterClose(req)) return;
    this.#reply(req, res, ct, await this.#decodeAndAppend(ct, body, arena, client));
  }

  /** Decodes a body into `arena` and appends its entries to the ledger: the outcome to answer with. */
  async #decodeAndAppend(ct: 'protobuf' | 'json', body: Buffer, arena: EntryArena, client: string | undefined): Promise<ReceiveOutcome> {
    const decoded = ct === 'protobuf' ? decodeLogsProtobuf(body, this.#deps.limits, arena, true) : decodeLogsJson(body, this.#deps.limits, arena, true);
    if (!decoded.ok) return { kind: decoded.tooLarge ? 'too_large' : 'invalid', message: decoded.message };
    const entries = decoded.entries;
    if (entries.count === 0) return { kind: 'ok', records: 0 };
    const maxRecords = this.#deps.limits.maxRecordsPerRequest ?? DEFAULT_MAX_RECORDS_PER_REQUEST;
    if (entries.count > maxRecords) {
      return {
        kind: 'too_many_records',
        message: `request holds ${entries.count} log records, more than receivers.otlp.max_records_per_request (${maxRecords}); send smaller batches`,
      };
    }

    const appended = await this.#deps.sink.append(entries);
    if (appended.kind === 'ok') {
      if (this.#tally) this.#tally.accepted.n += entries.count;
      if (client !== undefined) this.#deps.logger.debug({ client, records: entries.count }, 'OTLP/HTTP records accepted');
      return { kind: 'ok', records: entries.count };
    }
    this.#deps.metrics?.receiverRefused.inc({ transport: 'http', reason: appended.reason }, entries.count);
    return { kind: 'retryable', reason: appended.reason, afterMs: appended.afterMs, message: refusalMessage(appended.reason, appended.detail) };
  }

  #overloaded(): ReceiveOutcome {
    return {
      kind: 'retryable',
      reason: 'overloaded',
      afterMs: OVERLOAD_RETRY_AFTER_MS,
      message: `sealtrail is handling receivers.otlp.max_concurrent_requests (${this.#gate.limit}) requests already; retry after the indicated delay`,
    };
  }

  /**
   * The fast path's admission for one request whose head it has read (http-fast.ts): a slot of the
   * same gate, counted in flight for shutdown like a request on node:http, until the release.
   */
  #fastAdmit(): (() => void) | undefined {
    const release = this.#gate.tryAcquire();
    if (!release) return undefined;
    this.#inFlight++;
    return () => {
      release();
      this.#requestDone();
    };
  }

  /** A request counted in flight is finished; shutdown's drain waits for the count to reach 0. */
  #requestDone(): void {
    this.#inFlight--;
    if (this.#inFlight === 0) for (const w of this.#idleWaiters.splice(0)) w();
  }

  /**
   * Both paths' authentication of one request (its Authorization value, undefined when none was sent):
   * the bearer token checked when `auth` is on (every stored token compared in constant time), and the
   * client's name for the logs — the token's name, and with mTLS the certificate's CN (the handshake
   * already verified the certificate).
   */
  #authenticate(authorization: string | undefined, socket: Socket): { readonly ok: true; readonly client: string | undefined } | Extract<AuthResult, { ok: false }> {
    let client: string | undefined;
    if (this.#tokens) {
      const a = this.#tokens.check(bearerFromAuthorization(authorization));
      if (!a.ok) return a;
      client = a.name;
    }
    if (this.#config.tls?.client_ca_file !== undefined) {
      const cn = (socket as TLSSocket).getPeerCertificate?.()?.subject?.CN;
      if (cn) client = client ? `${client} (cert CN=${cn})` : `cert CN=${cn}`;
    }
    return { ok: true, client };
  }

  /**
   * The fast path's answer to one complete plain request: decode, append, then the whole response —
   * the same outcomes, status codes, bodies and counts as #handle and #reply give it over node:http.
   */
  async #fastAnswer(body: Buffer, client: string | undefined): Promise<Uint8Array> {
    if (this.#tally) this.#tally.bytes.n += body.length;
    const arena = new EntryArena();
    let outcome: ReceiveOutcome;
    try {
      outcome = await this.#decodeAndAppend('protobuf', body, arena, client);
    } catch (e) {
      outcome = this.#failedUnexpectedly(e);
    } finally {
      arena.release();
    }
    return this.#fastResponse(outcome);
  }

  /** A complete protobuf-encoded response for `outcome`, counted as #reply counts it. */
  #fastResponse(outcome: ReceiveOutcome): Uint8Array {
    const st = transportStatus(outcome);
    this.#count(st, outcome);
    const date = httpDate();
    if (outcome.kind === 'ok' && this.#okResponse?.date === date) return this.#okResponse.bytes;
    const body = outcome.kind === 'ok' ? exportLogsResponseProtobuf() : rpcStatusProtobuf(st.grpc, st.message);
    let head = `HTTP/1.1 ${st.http} ${http.STATUS_CODES[st.http]}\r\nContent-Type: ${CONTENT_TYPE.protobuf}\r\nContent-Length: ${body.length}\r\n`;
    if (st.retryAfterSeconds !== undefined) head += `Retry-After: ${st.retryAfterSeconds}\r\n`;
    head += `Date: ${date}\r\n\r\n`;
    const bytes = Buffer.concat([Buffer.from(head, 'latin1'), body]);
    if (outcome.kind === 'ok') this.#okResponse = { date, bytes };
    return bytes;
  }

  /** Counts one answered request (both paths): requests by status, refusals by reason, a debug line for refusals. */
  #count(st: ReturnType<typeof transportStatus>, outcome: ReceiveOutcome): void {
    if (st.http === 200 && this.#tally) this.#tally.okRequests.n++;
    else this.#deps.metrics?.receiverRequests.inc({ transport: 'http', status: String(st.http) });
    if (outcome.kind !== 'ok') {
      this.#deps.metrics?.receiverRefusedRequests.inc({ transport: 'http', reason: refusalLabel(outcome) });
      this.#deps.logger.debug({ status: st.http, message: st.message }, 'OTLP/HTTP request refused');
    }
  }

  /** A body cheap enough to read and discard: a declared Content-Length of at most DRAIN_LIMIT bytes. */
  #drainable(req: http.IncomingMessage): boolean {
    if (req.headers['transfer-encoding'] !== undefined) return false;
    const declared = Number(req.headers['content-length'] ?? NaN);
    return Number.isSafeInteger(declared) && declared >= 0 && declared <= Math.min(DRAIN_LIMIT, this.#config.max_request_body_size);
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
    if (outcome.kind === 'unauthenticated') {
      // RFC 6750 §3: a challenge on every 401; no error code when no credentials were sent (§3.1).
      headers['WWW-Authenticate'] = outcome.error ? `Bearer realm="sealtrail", error="${outcome.error}"` : 'Bearer realm="sealtrail"';
    }
    // A refused request whose body we did not (fully) read: close rather than drain an unbounded
    // body on a keep-alive connection — except a 429 for a full admission gate when the body's
    // declared length is small: node then reads and discards it (its response-finished path dumps
    // an unread body) and the connection stays open. Exporters retry a 429 after Retry-After; a
    // reconnect (with TLS a full handshake) for every refusal would add work to an agent that is
    // already overloaded. Also close while stopping, so clients reconnect elsewhere.
    if (this.#stopping || (!req.complete && !(outcome.kind === 'retryable' && outcome.reason === 'overloaded' && this.#drainable(req)))) {
      headers['Connection'] = 'close';
      markClose(req);
    }
    res.writeHead(st.http, headers);
    res.end(bytes);
    this.#count(st, outcome);
  }
}

/**
 * Calls `fn` once, when `res` is finished or can never be: its 'close', or its connection's. Node
 * emits 'close' only on the response being written; a pipelined request's response still queued
 * behind it when the connection goes (a parse error later in the stream, the client closing) never
 * gets one — without the connection's 'close' its admission slot and in-flight count were never
 * given back, and enough such connections would have refused every request for good.
 */
function whenGone(req: http.IncomingMessage, res: http.ServerResponse, fn: () => void): void {
  // The request's socket: a queued response has none of its own until it is the one being written.
  const socket = req.socket;
  if (socket.destroyed) {
    fn();
    return;
  }
  const c = connectionOf(socket);
  // One 'close' listener per connection, however many requests are pipelined on it.
  if (c.waiting === undefined) {
    const set = new Set<() => void>();
    c.waiting = set;
    socket.once('close', () => {
      for (const f of set) f();
    });
  }
  const set = c.waiting;
  let called = false;
  const once = (): void => {
    if (called) return;
    called = true;
    set.delete(once);
    res.off('close', once);
    fn();
  };
  set.add(once);
  res.once('close', once);
}

/**
 * What node:http's path keeps per connection. Requests on one connection are answered in the order
 * they came; once the answer to request k says Connection: close, no answer after it is sent. So: the
 * next request's number, the lowest number answered with Connection: close, and the whenGone callbacks
 * still waiting for the connection's 'close'.
 */
interface ConnectionState {
  next: number;
  closeAt: number;
  waiting: Set<() => void> | undefined;
}
const connections = new WeakMap<Socket, ConnectionState>();
const requestNumber = new WeakMap<http.IncomingMessage, number>();

function connectionOf(socket: Socket): ConnectionState {
  let c = connections.get(socket);
  if (c === undefined) {
    c = { next: 0, closeAt: Infinity, waiting: undefined };
    connections.set(socket, c);
  }
  return c;
}

function numberRequest(req: http.IncomingMessage): void {
  requestNumber.set(req, connectionOf(req.socket).next++);
}

function markClose(req: http.IncomingMessage): void {
  const c = connectionOf(req.socket);
  const n = requestNumber.get(req);
  if (n !== undefined) c.closeAt = Math.min(c.closeAt, n);
}

/** The request comes after one answered with Connection: close on its connection: its answer would never be sent. */
function afterClose(req: http.IncomingMessage): boolean {
  const n = requestNumber.get(req);
  return n !== undefined && n > connectionOf(req.socket).closeAt;
}

function shuttingDown(): ReceiveOutcome {
  return { kind: 'retryable', reason: 'shutting_down', afterMs: SHUTDOWN_RETRY_AFTER_MS, message: refusalMessage('shutting_down') };
}

let dateCache = { second: -1, text: '' };

/** The Date header's value (RFC 9110 §5.6.7), computed once a second. */
function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateCache.second) dateCache = { second, text: new Date(second * 1000).toUTCString() };
  return dateCache.text;
}
