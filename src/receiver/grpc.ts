/**
 * OTLP/gRPC receiver (opentelemetry-proto docs/specification.md, "OTLP/gRPC"): the unary
 * `opentelemetry.proto.collector.logs.v1.LogsService/Export`. The service is defined here by hand
 * with identity (Buffer) serialisers, so the request bytes are parsed exactly once, by the OTLP
 * decoder (STYLE.md habit 2) — no proto-loader, no second protobuf runtime.
 *
 * grpc-js does the transport work we rely on: `grpc-encoding: gzip|deflate` request decompression,
 * and `grpc.max_receive_message_length`, which it checks on the compressed frame and again while
 * inflating (it stops the inflater as soon as the output passes the limit), answering
 * RESOURCE_EXHAUSTED without our handler being called.
 *
 * Issue 8: a server interceptor runs when a call's headers (metadata) arrive, before grpc-js has
 * been asked to read the message: it checks the bearer token (`authorization` metadata), takes an
 * admission slot and arms the read timeout. A refused call is answered there, so its message is
 * never read, decompressed or decoded (the HTTP/2 stream stays paused; flow control bounds what
 * the peer can push meanwhile to one stream window).
 */
import grpc from '@grpc/grpc-js';
import type { GrpcReceiverConfig } from '../config/schema.js';
import { parseEndpoint } from '../config/schema.js';
import { SealtrailError, errorMessage } from '../errors.js';
import { decodeLogsProtobuf, exportLogsResponseProtobuf } from '../otlp/index.js';
import { BearerTokens, bearerFromAuthorization } from './auth.js';
import { ConcurrencyGate, OVERLOAD_RETRY_AFTER_MS } from './limits.js';
import {
  GRPC_CODE_NAME,
  GrpcCode,
  type ReceiveOutcome,
  grpcStatusDetailsWithRetryInfo,
  refusalLabel,
  refusalMessage,
  transportStatus,
} from './status.js';
import { ReloadableServerCredentials, TlsReloader } from './tls.js';
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
/** A connection without any call for this long is closed (an idle or silent peer holds nothing forever). */
export const GRPC_MAX_CONNECTION_IDLE_MS = 5 * 60_000;

/** Full method paths (package.Service/Method) from the OTLP collector service protos. */
export const OTLP_GRPC_PATHS = {
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
} as const;

const identity = (b: Buffer): Buffer => b;

function unaryBytesMethod(path: string): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

/** The three OTLP services, each with its one unary `Export` method carrying raw bytes. */
export const OTLP_GRPC_SERVICES = {
  logs: { Export: unaryBytesMethod(OTLP_GRPC_PATHS.logs) },
  traces: { Export: unaryBytesMethod(OTLP_GRPC_PATHS.traces) },
  metrics: { Export: unaryBytesMethod(OTLP_GRPC_PATHS.metrics) },
} satisfies Record<string, grpc.ServiceDefinition>;

/**
 * The OTLP/gRPC logs receiver. Lifecycle: `start` → (`stopAccepting`) → `shutdown`.
 */
export class GrpcReceiver {
  readonly #config: GrpcReceiverConfig;
  readonly #deps: ReceiverDeps;
  #server: grpc.Server | undefined;
  #tls: TlsReloader | undefined;
  #tokens: BearerTokens | undefined;
  readonly #gate: ConcurrencyGate;
  #stopping = false;
  #shutdown: Promise<void> | undefined;

  constructor(config: GrpcReceiverConfig, deps: ReceiverDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#gate = deps.gate ?? new ConcurrencyGate(DEFAULT_MAX_CONCURRENT_REQUESTS);
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
   *   unauthenticated instead), IO when the address cannot be bound.
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
    let credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure();
    if (cfg.tls && tlsReloader) {
      const creds = new ReloadableServerCredentials(cfg.tls, tlsReloader.material);
      tlsReloader.watch((m) => creds.update(m));
      credentials = creds;
    }

    const server = new grpc.Server({
      'grpc.max_receive_message_length': this.maxRecvBytes,
      // Responses are a few bytes; the default 4 MiB send limit is irrelevant but explicit.
      'grpc.max_send_message_length': 4 * 1024 * 1024,
      'grpc.max_concurrent_streams': GRPC_MAX_CONCURRENT_STREAMS,
      'grpc.max_connection_idle_ms': GRPC_MAX_CONNECTION_IDLE_MS,
      interceptors: [(_method, call) => this.#intercept(call)],
    });
    server.addService(OTLP_GRPC_SERVICES.logs, {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        this.#export(call.request)
          .catch((e: unknown): ReceiveOutcome => {
            // A sink that rejects breaks its contract; answer retryable so the client keeps its data (G2).
            this.#deps.logger.error({ err: e }, 'OTLP/gRPC export failed unexpectedly');
            return { kind: 'retryable', reason: 'ledger_failed', afterMs: 5_000, message: refusalMessage('ledger_failed', errorMessage(e)) };
          })
          .then((outcome) => this.#reply(outcome, callback), (e: unknown) => this.#deps.logger.error({ err: e }, 'OTLP/gRPC reply failed'));
      },
    });
    for (const signal of ['traces', 'metrics'] as const) {
      server.addService(OTLP_GRPC_SERVICES[signal], {
        Export: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          this.#reply(
            { kind: 'unimplemented_signal', message: `${signal}: this agent takes logs only (LogsService/Export); send ${signal} elsewhere` },
            callback,
          );
        },
      });
    }

    const bindAddr = ep.host.includes(':') ? `[${ep.host}]:${ep.port}` : `${ep.host}:${ep.port}`;
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(bindAddr, credentials, (err, p) => {
        if (err) {
          this.#closeWatchers();
          reject(new SealtrailError('IO', `${KEY}.endpoint: cannot listen on ${cfg.endpoint}: ${err.message}`, { cause: err }));
        } else resolve(p);
      });
    });
    this.#server = server;
    this.#deps.logger.info(
      {
        endpoint: `${bindAddr.replace(/:\d+$/, '')}:${port}`,
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

  /**
   * Runs for every call when its metadata arrives, before the message is read: authentication,
   * admission and the read timeout. Refusals answer the call directly; the handler never runs.
   */
  #intercept(call: grpc.ServerInterceptingCallInterface): grpc.ServerInterceptingCall {
    let release: (() => void) | undefined;
    let readTimer: NodeJS.Timeout | undefined;
    const done = (): void => {
      clearTimeout(readTimer);
      release?.();
    };
    const refuse = (outcome: ReceiveOutcome): void => {
      done();
      const st = transportStatus(outcome);
      this.#countRefusal(outcome, st.grpc);
      call.sendStatus(this.#status(outcome));
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, nextMd) => {
            if (this.#tokens) {
              const value = metadata.get('authorization')[0];
              const a = this.#tokens.check(bearerFromAuthorization(typeof value === 'string' ? value : value?.toString('latin1')));
              if (!a.ok) return refuse({ kind: 'unauthenticated', message: a.message });
            }
            release = this.#gate.tryAcquire();
            if (!release) {
              return refuse({
                kind: 'retryable',
                reason: 'overloaded',
                afterMs: OVERLOAD_RETRY_AFTER_MS,
                message: `sealtrail is handling receivers.otlp.max_concurrent_requests (${this.#gate.limit}) requests already; retry after the indicated delay`,
              });
            }
            // Slow-client cut-off: the message must arrive within read_timeout of the headers.
            readTimer = setTimeout(() => {
              this.#deps.metrics?.receiverRequests.inc({ transport: 'grpc', status: 'DEADLINE_EXCEEDED' });
              this.#deps.metrics?.receiverRefusedRequests.inc({ transport: 'grpc', reason: 'timeout' });
              done();
              call.sendStatus({
                code: GrpcCode.DEADLINE_EXCEEDED,
                details: `the request message did not arrive within ${KEY}.read_timeout (${this.#config.read_timeout} ms)`,
              });
            }, this.#config.read_timeout);
            readTimer.unref();
            nextMd(metadata);
          },
          onReceiveMessage: (message, nextMsg) => {
            clearTimeout(readTimer);
            nextMsg(message);
          },
          onCancel: done,
        });
      },
      sendStatus: (status, nextStatus) => {
        done();
        nextStatus(status);
      },
    });
  }

  #countRefusal(outcome: ReceiveOutcome, code: number): void {
    this.#deps.metrics?.receiverRequests.inc({ transport: 'grpc', status: GRPC_CODE_NAME[code] ?? String(code) });
    this.#deps.metrics?.receiverRefusedRequests.inc({ transport: 'grpc', reason: refusalLabel(outcome) });
  }

  /** The gRPC status for a refusal, with RetryInfo in the details when the client should retry. */
  #status(outcome: ReceiveOutcome): grpc.StatusObject {
    const st = transportStatus(outcome);
    const metadata = new grpc.Metadata();
    if (st.retryAfterSeconds !== undefined) {
      // OTLP "OTLP/gRPC Throttling": RetryInfo in the status details tells the client when to retry,
      // and is what makes RESOURCE_EXHAUSTED retryable at all ("OTLP/gRPC Failures").
      metadata.set('grpc-status-details-bin', grpcStatusDetailsWithRetryInfo(st.grpc, st.message, st.retryAfterSeconds));
    }
    return { code: st.grpc, details: st.message, metadata };
  }

  /** From now on new calls are refused with UNAVAILABLE + RetryInfo (shutting_down); in-flight calls finish. */
  stopAccepting(): void {
    this.#stopping = true;
  }

  /**
   * Stops accepting, lets in-flight calls finish (at most `graceMs`, then cancels them) and closes
   * the listener. Safe to call more than once; resolves the same way.
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
    let timer: NodeJS.Timeout | undefined;
    const graceful = new Promise<'done'>((resolve) => server.tryShutdown(() => resolve('done')));
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
      timer.unref();
    });
    const r = await Promise.race([graceful, timedOut]);
    clearTimeout(timer);
    if (r === 'timeout') {
      this.#deps.logger.warn('OTLP/gRPC shutdown grace period over; cancelling calls');
      server.forceShutdown();
    }
  }

  async #export(request: Buffer): Promise<ReceiveOutcome> {
    if (this.#stopping) {
      return { kind: 'retryable', reason: 'shutting_down', afterMs: SHUTDOWN_RETRY_AFTER_MS, message: refusalMessage('shutting_down') };
    }
    this.#deps.metrics?.receiverBytes.inc({ transport: 'grpc' }, request.length);
    const decoded = decodeLogsProtobuf(request, this.#deps.limits);
    if (!decoded.ok) return { kind: decoded.tooLarge ? 'too_large' : 'invalid', message: decoded.message };
    const entries = decoded.entries;
    if (entries.length === 0) return { kind: 'ok', records: 0 };
    const maxRecords = this.#deps.limits.maxRecordsPerRequest ?? DEFAULT_MAX_RECORDS_PER_REQUEST;
    if (entries.length > maxRecords) {
      return {
        kind: 'too_many_records',
        message: `request holds ${entries.length} log records, more than receivers.otlp.max_records_per_request (${maxRecords}); send smaller batches`,
      };
    }
    const appended = await this.#deps.sink.append(entries);
    if (appended.kind === 'ok') {
      this.#deps.metrics?.receiverAccepted.inc({ transport: 'grpc' }, entries.length);
      return { kind: 'ok', records: entries.length };
    }
    this.#deps.metrics?.receiverRefused.inc({ transport: 'grpc', reason: appended.reason }, entries.length);
    return { kind: 'retryable', reason: appended.reason, afterMs: appended.afterMs, message: refusalMessage(appended.reason, appended.detail) };
  }

  #reply(outcome: ReceiveOutcome, callback: grpc.sendUnaryData<Buffer>): void {
    const st = transportStatus(outcome);
    if (outcome.kind === 'ok') {
      this.#deps.metrics?.receiverRequests.inc({ transport: 'grpc', status: 'OK' });
      callback(null, Buffer.from(exportLogsResponseProtobuf()));
      return;
    }
    this.#countRefusal(outcome, st.grpc);
    this.#deps.logger.debug({ status: GRPC_CODE_NAME[st.grpc], message: st.message }, 'OTLP/gRPC request refused');
    callback(this.#status(outcome));
  }
}
