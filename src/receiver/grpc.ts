/**
 * OTLP/gRPC receiver (opentelemetry-proto docs/specification.md, "OTLP/gRPC"): the unary
 * `opentelemetry.proto.collector.logs.v1.LogsService/Export`, served by a lean gRPC-over-HTTP/2
 * server on node:http2 (grpc/grpc doc/PROTOCOL-HTTP2.md). One unary method needs none of a general
 * gRPC runtime's machinery (interceptor chains, metadata objects, serializer indirection, a
 * message queue per call), and measuring showed that machinery costing about as much CPU per record
 * as the rest of the agent (docs/benchmarks.md, "Where the time goes"). The wire details live in
 * grpc-wire.ts; status codes come from status.ts like the HTTP receiver's.
 *
 * One call, in order (each refusal is answered "Trailers-Only" — one HEADERS frame with
 * END_STREAM carrying grpc-status, grpc-message and, for retryable refusals, a google.rpc.Status
 * with RetryInfo in grpc-status-details-bin — followed by RST_STREAM(NO_ERROR) when the client is
 * still sending, PROTOCOL-HTTP2.md "Early Server Closure"):
 *  1. headers: the bearer token (issue 8), POST, content-type application/grpc[+proto] (else HTTP
 *     415), a known path (else UNIMPLEMENTED), traces/metrics → UNIMPLEMENTED "logs only",
 *     stopping → UNAVAILABLE + RetryInfo, grpc-encoding identity/gzip/deflate (else UNIMPLEMENTED),
 *     grpc-timeout, then an admission slot (else RESOURCE_EXHAUSTED + RetryInfo). Nothing of a
 *     refused call's body is read, decompressed or decoded.
 *  2. the message: the length prefix is checked on its first 5 bytes (declared length above
 *     max_recv_msg_size_mib → RESOURCE_EXHAUSTED at once); it must arrive within read_timeout.
 *  3. decompression stopped at the same limit, one decode, one ledger append; the reply only after
 *     the ledger said durable (G1). grpc-timeout passing first → DEADLINE_EXCEEDED.
 */
import http2 from 'node:http2';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { GrpcReceiverConfig } from '../config/schema.js';
import { parseEndpoint } from '../config/schema.js';
import { SealtrailError, errorMessage } from '../errors.js';
import { EntryArena, decodeLogsProtobuf, exportLogsResponseProtobuf } from '../otlp/index.js';
import { BearerTokens, bearerFromAuthorization } from './auth.js';
import {
  GRPC_ACCEPT_ENCODING,
  type GrpcCoding,
  UnaryMessageReader,
  type WireError,
  checkGrpcContentType,
  decompressMessage,
  parseGrpcEncoding,
  parseGrpcTimeout,
  percentEncodeGrpcMessage,
} from './grpc-wire.js';
import { ConcurrencyGate, OVERLOAD_RETRY_AFTER_MS } from './limits.js';
import { noteBytesRead } from './read-gc.js';
import {
  GRPC_CODE_NAME,
  type ReceiveOutcome,
  grpcStatusDetailsWithRetryInfo,
  refusalLabel,
  refusalMessage,
  transportStatus,
} from './status.js';
import { TlsReloader, secureContextOptions, tlsServerOptions } from './tls.js';
import type { ReceiverTallies } from '../telemetry/metrics.js';
import {
  DEFAULT_MAX_CONCURRENT_REQUESTS,
  DEFAULT_MAX_RECORDS_PER_REQUEST,
  type ListenAddress,
  type ReceiverDeps,
  SHUTDOWN_RETRY_AFTER_MS,
} from './types.js';

const KEY = 'receivers.otlp.protocols.grpc';
/** Streams one client connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
export const GRPC_MAX_CONCURRENT_STREAMS = 100;
/** A connection without any call for this long is closed with GOAWAY (an idle or silent peer holds nothing forever). */
export const GRPC_MAX_CONNECTION_IDLE_MS = 5 * 60_000;
/**
 * Largest request header list (HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE: names + values + 32 per field,
 * RFC 9113 §6.5.2). PROTOCOL-HTTP2.md suggests 8 KiB for request headers; 16 KiB, as the HTTP
 * receiver's default max_request_header_size, leaves room for long bearer tokens. A larger header
 * block resets the stream (RST_STREAM ENHANCE_YOUR_CALM; clients report RESOURCE_EXHAUSTED).
 */
export const GRPC_MAX_HEADER_LIST_SIZE = 16 * 1024;
/**
 * Flow-control windows (RFC 9113 §6.9): each stream may have 1 MiB and each connection 8 MiB
 * unread in flight. Large enough that a 100-record request (≈ 36 KB) never waits for a
 * WINDOW_UPDATE; small enough to bound what a connection can push at us. Every admitted stream is
 * read at once and every refused one is reset, so the windows do not fill with unread data.
 */
export const GRPC_STREAM_WINDOW_BYTES = 1024 * 1024;
export const GRPC_CONNECTION_WINDOW_BYTES = 8 * 1024 * 1024;

/** Full method paths (package.Service/Method) from the OTLP collector service protos. */
export const OTLP_GRPC_PATHS = {
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
} as const;

const { NGHTTP2_NO_ERROR } = http2.constants;

/** Timing knobs with production defaults; tests shorten them. Not configuration keys. */
export interface GrpcTuning {
  /** Default GRPC_MAX_CONNECTION_IDLE_MS. */
  readonly maxConnectionIdleMs?: number;
}

/** The length-prefixed ExportLogsServiceResponse (empty: no partial_success) sent on success. */
const RESPONSE_FRAME = ((): Buffer => {
  const body = exportLogsResponseProtobuf();
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, 5);
  return frame;
})();

/**
 * Success response headers and trailers, shared by every call (Node copies headers before use).
 * No `date` header (`sendDate: false`): gRPC has no use for it, and it is one more field to encode
 * per call. `grpc-accept-encoding` is sent only where it matters, with an UNIMPLEMENTED encoding.
 */
const OK_HEADERS: http2.OutgoingHttpHeaders = Object.freeze({ ':status': 200, 'content-type': 'application/grpc+proto' });
const OK_TRAILERS: http2.OutgoingHttpHeaders = Object.freeze({ 'grpc-status': '0' });
const OK_RESPOND_OPTIONS: http2.ServerStreamResponseOptions = Object.freeze({ waitForTrailers: true, sendDate: false });
const REFUSAL_RESPOND_OPTIONS: http2.ServerStreamResponseOptions = Object.freeze({ endStream: true, sendDate: false });

/** 'wantTrailers' listener (called with the stream as `this`; one function for all calls). */
function sendOkTrailers(this: http2.ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

interface SessionState {
  /** Streams open on the connection now. */
  active: number;
  /** performance.now() when `active` last dropped to 0 (or the connection opened). */
  idleSince: number;
}

/** What a call needs from its receiver (kept narrow so the per-call object stays small). */
interface CallHost {
  readonly maxRecvBytes: number;
  /** The limit and its setting, for error messages. */
  readonly limitDescription: string;
  readonly readTimeoutMs: number;
  exportMessage(message: Buffer): Promise<ReceiveOutcome>;
  refuse(stream: http2.ServerHttp2Stream, outcome: ReceiveOutcome, label?: string): void;
  replyOk(stream: http2.ServerHttp2Stream): void;
  failed(e: unknown): ReceiveOutcome;
}

const LIMIT_NAME = `${KEY}.max_recv_msg_size_mib`;

/**
 * One admitted unary call: collects the message, then decompresses, decodes, appends and answers.
 * The admission slot is released exactly once, when the call can do no more work (answered,
 * refused, or abandoned by the client before its message was complete).
 */
class UnaryCall {
  readonly #host: CallHost;
  readonly #stream: http2.ServerHttp2Stream;
  readonly #coding: GrpcCoding;
  readonly #release: () => void;
  readonly #session: SessionState | undefined;
  readonly #reader: UnaryMessageReader;
  #readTimer: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  /** reading → processing (message complete; decode + append running) → done */
  #phase: 'reading' | 'processing' | 'done' = 'reading';
  /** A status was sent (or the call was given up); nothing more goes to the client. */
  #replied = false;

  constructor(
    host: CallHost,
    stream: http2.ServerHttp2Stream,
    coding: GrpcCoding,
    deadlineMs: number | undefined,
    release: () => void,
    session: SessionState | undefined,
  ) {
    this.#host = host;
    this.#stream = stream;
    this.#coding = coding;
    this.#release = release;
    this.#session = session;
    this.#reader = new UnaryMessageReader(host.maxRecvBytes, host.limitDescription);
    // Slow-client cut-off (issue 8): the message must arrive within read_timeout of the headers.
    this.#readTimer = setTimeout(() => this.#onReadTimeout(), host.readTimeoutMs);
    this.#readTimer.unref();
    if (deadlineMs !== undefined) {
      this.#deadlineTimer = setTimeout(() => this.#onDeadline(deadlineMs), deadlineMs);
      this.#deadlineTimer.unref();
    }
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('end', () => this.#onEnd());
    stream.on('close', () => this.#onClose());
  }

  #onData(chunk: Buffer): void {
    noteBytesRead(chunk.length);
    if (this.#phase !== 'reading') return;
    const err = this.#reader.push(chunk);
    if (err) this.#refuseWhileReading(err);
  }

  #onEnd(): void {
    if (this.#phase !== 'reading') return;
    clearTimeout(this.#readTimer);
    const m = this.#reader.end();
    if ('kind' in m) {
      this.#refuseWhileReading(m);
      return;
    }
    this.#phase = 'processing';
    // The message's memory is reused only once the request is answered (decoding reads it; the
    // entries are built in the request's arena).
    this.#process(m.compressed, m.data).then(
      (outcome) => {
        m.release();
        this.#answer(outcome);
      },
      (e: unknown) => {
        m.release();
        this.#answer(this.#host.failed(e));
      },
    );
  }

  async #process(compressed: boolean, data: Buffer): Promise<ReceiveOutcome> {
    let message = data;
    if (compressed) {
      if (this.#coding === 'identity') {
        // compression.md "Test cases", 6: Compressed-Flag set without a grpc-encoding → INTERNAL.
        return { kind: 'protocol_error', message: 'the message is marked compressed (Compressed-Flag 1) but the call has no grpc-encoding' };
      }
      const out = await decompressMessage(this.#coding, data, this.#host.maxRecvBytes, this.#host.limitDescription);
      if (!Buffer.isBuffer(out)) return out;
      message = out;
    }
    return this.#host.exportMessage(message);
  }

  #answer(outcome: ReceiveOutcome): void {
    this.#finish();
    if (this.#replied) return; // the deadline passed meanwhile and was answered
    this.#replied = true;
    if (outcome.kind === 'ok') this.#host.replyOk(this.#stream);
    else this.#host.refuse(this.#stream, outcome);
  }

  #refuseWhileReading(err: WireError): void {
    this.#finish();
    this.#replied = true;
    this.#host.refuse(this.#stream, err);
  }

  #onReadTimeout(): void {
    if (this.#phase !== 'reading') return;
    this.#finish();
    this.#replied = true;
    this.#host.refuse(
      this.#stream,
      { kind: 'deadline_exceeded', message: `the request message did not arrive within ${KEY}.read_timeout (${this.#host.readTimeoutMs} ms)` },
      'timeout',
    );
  }

  /**
   * grpc-timeout passed (PROTOCOL-HTTP2.md "Client Cancellation": the server cancels the call
   * locally). A running append cannot be taken back; its outcome is dropped, and the admission
   * slot stays taken until it settles, because the work is still going on.
   */
  #onDeadline(ms: number): void {
    if (this.#phase === 'done' || this.#replied) return;
    this.#replied = true;
    const message = `the call's deadline (grpc-timeout ${ms} ms) passed before it was answered`;
    if (this.#phase === 'reading') this.#finish();
    else this.#deadlineTimer = undefined;
    this.#host.refuse(this.#stream, { kind: 'deadline_exceeded', message });
  }

  /** The client reset the stream or the connection went away. */
  #onClose(): void {
    if (this.#session) {
      if (--this.#session.active === 0) this.#session.idleSince = performance.now();
    }
    // While reading, nothing else will happen for this call: free its slot. While processing,
    // #answer frees it when the append settles (its reply then goes nowhere).
    if (this.#phase === 'reading') this.#finish();
    else clearTimeout(this.#deadlineTimer); // nobody left to tell about a deadline
  }

  #finish(): void {
    if (this.#phase === 'done') return;
    this.#phase = 'done';
    clearTimeout(this.#readTimer);
    clearTimeout(this.#deadlineTimer);
    this.#release();
  }
}

/**
 * The OTLP/gRPC logs receiver. Lifecycle: `start` → (`stopAccepting`) → `shutdown`.
 */
export class GrpcReceiver {
  readonly #config: GrpcReceiverConfig;
  readonly #deps: ReceiverDeps;
  #server: http2.Http2Server | undefined;
  #tls: TlsReloader | undefined;
  #tokens: BearerTokens | undefined;
  readonly #gate: ConcurrencyGate;
  /** Per-request counts as plain numbers (metrics.ts Tally): no label hashing on the hot path. */
  readonly #tally: ReceiverTallies | undefined;
  readonly #sessions = new Map<http2.ServerHttp2Session, SessionState>();
  #idleSweep: NodeJS.Timeout | undefined;
  #stopping = false;
  #shutdown: Promise<void> | undefined;
  readonly #host: CallHost;
  readonly #maxIdleMs: number;

  constructor(config: GrpcReceiverConfig, deps: ReceiverDeps, tuning: GrpcTuning = {}) {
    this.#config = config;
    this.#deps = deps;
    this.#maxIdleMs = tuning.maxConnectionIdleMs ?? GRPC_MAX_CONNECTION_IDLE_MS;
    this.#gate = deps.gate ?? new ConcurrencyGate(DEFAULT_MAX_CONCURRENT_REQUESTS);
    this.#tally = deps.metrics?.receiverTallies('grpc');
    this.#host = {
      maxRecvBytes: this.maxRecvBytes,
      limitDescription: `${LIMIT_NAME} = ${this.maxRecvBytes} bytes`,
      readTimeoutMs: config.read_timeout,
      exportMessage: (m) => this.#export(m),
      refuse: (s, o, l) => this.#refuse(s, o, l),
      replyOk: (s) => this.#replyOk(s),
      failed: (e) => {
        // A sink that rejects breaks its contract; answer retryable so the client keeps its data (G2).
        this.#deps.logger.error({ err: e }, 'OTLP/gRPC export failed unexpectedly');
        return { kind: 'retryable', reason: 'ledger_failed', afterMs: 5_000, message: refusalMessage('ledger_failed', errorMessage(e)) };
      },
    };
  }

  /** TLS material in force (for tests and diagnostics); undefined without tls. */
  get tlsReloader(): TlsReloader | undefined {
    return this.#tls;
  }

  /** Bearer tokens in force; undefined without auth. */
  get bearerTokens(): BearerTokens | undefined {
    return this.#tokens;
  }

  /** Largest accepted message after decompression, in bytes (config `max_recv_msg_size_mib`). */
  get maxRecvBytes(): number {
    return Math.floor(this.#config.max_recv_msg_size_mib * 1024 * 1024);
  }

  /**
   * Binds `config.endpoint` (port 0 picks a free port) and serves until `shutdown`; TLS when `tls`
   * is configured (mTLS with `client_ca_file`), bearer tokens required when `auth` is.
   * @throws SealtrailError CONFIG_INVALID for unusable tls/auth files (never serves plaintext or
   *   unauthenticated instead), IO when the address cannot be bound, INTERNAL when called twice.
   */
  async start(): Promise<ListenAddress> {
    if (this.#server) throw new SealtrailError('INTERNAL', 'GrpcReceiver.start called twice');
    const cfg = this.#config;
    const ep = parseEndpoint(cfg.endpoint);
    if (!ep) throw new SealtrailError('CONFIG_INVALID', `${KEY}.endpoint: invalid "${cfg.endpoint}"`);
    const tlsReloader = cfg.tls ? await TlsReloader.load(cfg.tls, `${KEY}.tls`, this.#deps.logger) : undefined;
    try {
      this.#tokens = cfg.auth ? await BearerTokens.load(cfg.auth.bearer_token_file, cfg.auth.reload_interval, `${KEY}.auth`, this.#deps.logger) : undefined;
    } catch (e) {
      tlsReloader?.close();
      throw e;
    }
    this.#tls = tlsReloader;

    const options: http2.ServerOptions = {
      settings: {
        maxConcurrentStreams: GRPC_MAX_CONCURRENT_STREAMS,
        maxHeaderListSize: GRPC_MAX_HEADER_LIST_SIZE,
        initialWindowSize: GRPC_STREAM_WINDOW_BYTES,
      },
      // Node refuses new streams (ENHANCE_YOUR_CALM) once a session's nghttp2 buffers pass this
      // many MB; the windows above bound what a peer can make us buffer well below it.
      maxSessionMemory: 64,
    };
    let server: http2.Http2Server;
    if (cfg.tls && tlsReloader) {
      const tlsCfg = cfg.tls;
      const secure = http2.createSecureServer({
        ...options,
        ...tlsServerOptions(tlsCfg),
        ...secureContextOptions(tlsReloader.material, tlsCfg),
        // HTTP/2 over TLS is negotiated with ALPN "h2" (RFC 9113 §3.2); gRPC needs nothing else.
        allowHTTP1: false,
      });
      tlsReloader.watch((m) => secure.setSecureContext(secureContextOptions(m, tlsCfg)));
      // Failed handshakes (no/wrong/expired client certificate, plaintext on the TLS port, timeout).
      secure.on('tlsClientError', (e: Error) => {
        this.#deps.metrics?.receiverRefusedRequests.inc({ transport: 'grpc', reason: 'tls_handshake' });
        this.#deps.logger.debug({ err: e.message }, 'OTLP/gRPC TLS handshake failed');
      });
      server = secure as unknown as http2.Http2Server;
    } else {
      server = http2.createServer(options);
    }
    // Small response frames must not wait behind Nagle's algorithm for a delayed ACK (grpc-js and
    // node:http set TCP_NODELAY too).
    server.on('connection', (socket: net.Socket) => socket.setNoDelay(true));
    server.on('session', (session) => this.#onSession(session));
    server.on('stream', (stream, headers) => this.#onStream(stream, headers));

    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error): void => {
        this.#closeWatchers();
        reject(new SealtrailError('IO', `${KEY}.endpoint: cannot listen on ${cfg.endpoint}: ${e.message}`, { cause: e }));
      };
      server.once('error', onError);
      server.listen(ep.port, ep.host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (e) => this.#deps.logger.error({ err: e }, 'OTLP/gRPC server error'));
    this.#server = server;
    const sweepMs = Math.min(60_000, Math.max(10, Math.floor(this.#maxIdleMs / 4)));
    this.#idleSweep = setInterval(() => this.#closeIdleSessions(), sweepMs);
    this.#idleSweep.unref();
    const port = (server.address() as AddressInfo).port;
    this.#deps.logger.info(
      {
        endpoint: `${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${port}`,
        tls: cfg.tls ? (cfg.tls.client_ca_file ? 'mtls' : 'tls') : 'off',
        auth: this.#tokens ? 'bearer' : 'off',
      },
      'OTLP/gRPC receiver listening',
    );
    return { host: ep.host, port };
  }

  #closeWatchers(): void {
    this.#tls?.close();
    this.#tokens?.close();
  }

  #onSession(session: http2.ServerHttp2Session): void {
    const state: SessionState = { active: 0, idleSince: performance.now() };
    this.#sessions.set(session, state);
    session.on('close', () => this.#sessions.delete(session));
    // Protocol errors, resets and sockets torn down by the peer: nothing to answer, the session closes.
    session.on('error', (e: Error) => this.#deps.logger.debug({ err: e.message }, 'OTLP/gRPC connection error'));
    // Node answers PING frames itself (keepalive from clients costs us nothing to support); a local
    // window above the 64 KiB default lets several requests per connection stream in at once.
    session.setLocalWindowSize(GRPC_CONNECTION_WINDOW_BYTES);
    if (this.#shutdown) session.close();
  }

  /** Closes (GOAWAY, then close) connections without a call for GRPC_MAX_CONNECTION_IDLE_MS. */
  #closeIdleSessions(): void {
    const now = performance.now();
    for (const [session, st] of this.#sessions) {
      if (st.active === 0 && now - st.idleSince >= this.#maxIdleMs && !session.closed) session.close();
    }
  }

  #onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', (e: Error) => this.#deps.logger.debug({ err: e.message }, 'OTLP/gRPC stream error'));
    const session = stream.session ? this.#sessions.get(stream.session as http2.ServerHttp2Session) : undefined;
    const outcome = this.#checkHeaders(headers);
    if (outcome) {
      this.#refuse(stream, outcome);
      return;
    }
    const coding = parseGrpcEncoding(headers['grpc-encoding'] as string | undefined);
    if (typeof coding !== 'string') {
      this.#refuse(stream, coding);
      return;
    }
    const deadline = parseGrpcTimeout(headers['grpc-timeout'] as string | undefined);
    if (typeof deadline === 'object') {
      this.#refuse(stream, deadline);
      return;
    }
    const release = this.#gate.tryAcquire();
    if (!release) {
      this.#refuse(stream, {
        kind: 'retryable',
        reason: 'overloaded',
        afterMs: OVERLOAD_RETRY_AFTER_MS,
        message: `sealtrail is handling receivers.otlp.max_concurrent_requests (${this.#gate.limit}) requests already; retry after the indicated delay`,
      });
      return;
    }
    if (session) session.active++;
    new UnaryCall(this.#host, stream, coding, deadline, release, session);
  }

  /** Everything decided on the request headers alone; undefined when the call may proceed. */
  #checkHeaders(headers: http2.IncomingHttpHeaders): ReceiveOutcome | undefined {
    // The token first (issue 8, docs/security.md): an unauthenticated peer learns nothing else.
    if (this.#tokens) {
      const a = this.#tokens.check(bearerFromAuthorization(headers.authorization));
      if (!a.ok) return { kind: 'unauthenticated', message: a.message };
    }
    if (headers[':method'] !== 'POST') {
      return { kind: 'method_not_allowed', allow: 'POST', message: `method ${String(headers[':method'])} is not allowed: gRPC calls are POST requests` };
    }
    const ct = checkGrpcContentType(headers['content-type']);
    if (ct) return ct;
    const path = headers[':path'];
    const signal = path === OTLP_GRPC_PATHS.logs ? 'logs' : path === OTLP_GRPC_PATHS.traces ? 'traces' : path === OTLP_GRPC_PATHS.metrics ? 'metrics' : undefined;
    if (!signal) {
      return { kind: 'unknown_method', message: `unknown method ${String(path).slice(0, 200)}: this server has ${OTLP_GRPC_PATHS.logs}` };
    }
    if (signal !== 'logs') {
      return { kind: 'unimplemented_signal', message: `${signal}: this agent takes logs only (LogsService/Export); send ${signal} elsewhere` };
    }
    if (this.#stopping) {
      return { kind: 'retryable', reason: 'shutting_down', afterMs: SHUTDOWN_RETRY_AFTER_MS, message: refusalMessage('shutting_down') };
    }
    return undefined;
  }

  /** Success: response headers, the (empty) ExportLogsServiceResponse, then grpc-status 0 in the trailers. */
  #replyOk(stream: http2.ServerHttp2Stream): void {
    if (this.#tally) this.#tally.okRequests.n++;
    if (stream.headersSent || stream.destroyed || stream.closed) return;
    stream.respond(OK_HEADERS, OK_RESPOND_OPTIONS);
    stream.once('wantTrailers', sendOkTrailers);
    stream.end(RESPONSE_FRAME);
  }

  /**
   * A refusal as a Trailers-Only response, counted once. `label` overrides the metrics reason.
   * HTTP status 200 except where PROTOCOL-HTTP2.md wants the HTTP layer to speak (415 for a
   * non-gRPC content type) or the request was not a gRPC request at all (405).
   */
  #refuse(stream: http2.ServerHttp2Stream, outcome: ReceiveOutcome | (WireError & { readonly http415?: boolean }), label?: string): void {
    const st = transportStatus(outcome);
    this.#deps.metrics?.receiverRequests.inc({ transport: 'grpc', status: GRPC_CODE_NAME[st.grpc] ?? String(st.grpc) });
    this.#deps.metrics?.receiverRefusedRequests.inc({ transport: 'grpc', reason: label ?? refusalLabel(outcome) });
    this.#deps.logger.debug({ status: GRPC_CODE_NAME[st.grpc], message: st.message }, 'OTLP/gRPC request refused');
    if (stream.headersSent || stream.destroyed || stream.closed) return;
    const httpStatus = outcome.kind === 'method_not_allowed' ? 405 : 'http415' in outcome && outcome.http415 ? 415 : 200;
    const headers: http2.OutgoingHttpHeaders = {
      ':status': httpStatus,
      'content-type': 'application/grpc+proto',
      'grpc-status': String(st.grpc),
      'grpc-message': percentEncodeGrpcMessage(st.message),
    };
    if (outcome.kind === 'method_not_allowed') headers.allow = outcome.allow;
    if (outcome.kind === 'unsupported_encoding') headers['grpc-accept-encoding'] = GRPC_ACCEPT_ENCODING;
    if (st.retryAfterSeconds !== undefined) {
      // OTLP "OTLP/gRPC Throttling": RetryInfo in the status details tells the client when to retry,
      // and is what makes RESOURCE_EXHAUSTED retryable at all ("OTLP/gRPC Failures"). Binary
      // metadata is base64, emitted unpadded (PROTOCOL-HTTP2.md "Custom-Metadata").
      headers['grpc-status-details-bin'] = grpcStatusDetailsWithRetryInfo(st.grpc, st.message, st.retryAfterSeconds).toString('base64').replace(/=+$/, '');
    }
    stream.respond(headers, REFUSAL_RESPOND_OPTIONS);
    // "Early Server Closure": the client may still be sending; RST_STREAM(NO_ERROR) after the
    // trailers lets both sides drop the stream without reading the rest of the body.
    if (!stream.endAfterHeaders && !stream.readableEnded) stream.close(NGHTTP2_NO_ERROR);
  }

  /** From now on new calls are refused with UNAVAILABLE + RetryInfo (shutting_down); in-flight calls finish. */
  stopAccepting(): void {
    this.#stopping = true;
  }

  /**
   * Stops accepting, closes the listener, sends GOAWAY on every connection (no new calls; clients
   * retry elsewhere, PROTOCOL-HTTP2.md "GOAWAY Frame"), lets in-flight calls finish for at most
   * `graceMs`, then closes the remaining connections. Safe to call more than once; resolves the same way.
   */
  shutdown(graceMs = 10_000): Promise<void> {
    this.#shutdown ??= this.#doShutdown(graceMs);
    return this.#shutdown;
  }

  async #doShutdown(graceMs: number): Promise<void> {
    this.stopAccepting();
    this.#closeWatchers();
    clearInterval(this.#idleSweep);
    const server = this.#server;
    if (!server) return;
    let timer: NodeJS.Timeout | undefined;
    // Resolves when the listener is closed and every connection has ended.
    const graceful = new Promise<'done'>((resolve) => server.close(() => resolve('done')));
    for (const session of this.#sessions.keys()) if (!session.closed) session.close();
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
      timer.unref();
    });
    const r = await Promise.race([graceful, timedOut]);
    clearTimeout(timer);
    if (r === 'timeout') {
      this.#deps.logger.warn('OTLP/gRPC shutdown grace period over; closing connections with calls still running');
      for (const session of this.#sessions.keys()) session.destroy();
      await graceful;
    }
  }

  async #export(request: Buffer): Promise<ReceiveOutcome> {
    if (this.#tally) this.#tally.bytes.n += request.length;
    // The entries live in a pooled arena until the ledger has taken them (EntryArena's contract).
    const arena = new EntryArena();
    try {
      return await this.#store(request, arena);
    } finally {
      arena.release();
    }
  }

  /** Decodes one Export request into `arena` and appends its entries to the ledger. */
  async #store(request: Buffer, arena: EntryArena): Promise<ReceiveOutcome> {
    const decoded = decodeLogsProtobuf(request, this.#deps.limits, arena, true);
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
      return { kind: 'ok', records: entries.count };
    }
    this.#deps.metrics?.receiverRefused.inc({ transport: 'grpc', reason: appended.reason }, entries.count);
    return { kind: 'retryable', reason: appended.reason, afterMs: appended.afterMs, message: refusalMessage(appended.reason, appended.detail) };
  }
}
