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
 */
import grpc from '@grpc/grpc-js';
import type { GrpcReceiverConfig } from '../config/schema.js';
import { parseEndpoint } from '../config/schema.js';
import { SealtrailError, errorMessage } from '../errors.js';
import { decodeLogsProtobuf, exportLogsResponseProtobuf } from '../otlp/index.js';
import { GRPC_CODE_NAME, type ReceiveOutcome, grpcStatusDetailsWithRetryInfo, refusalMessage, transportStatus } from './status.js';
import { type ListenAddress, type ReceiverDeps, SHUTDOWN_RETRY_AFTER_MS } from './types.js';

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
  #stopping = false;
  #shutdown: Promise<void> | undefined;

  constructor(config: GrpcReceiverConfig, deps: ReceiverDeps) {
    this.#config = config;
    this.#deps = deps;
  }

  /** Largest accepted message after decompression, in bytes (config `max_recv_msg_size_mib`). */
  get maxRecvBytes(): number {
    return Math.floor(this.#config.max_recv_msg_size_mib * 1024 * 1024);
  }

  /**
   * Binds `config.endpoint` (port 0 picks a free port) and serves until `shutdown`.
   * @throws SealtrailError CONFIG_INVALID when `tls` or `auth` is configured (not implemented yet: we never serve plaintext instead),
   *   IO when the address cannot be bound.
   */
  async start(): Promise<ListenAddress> {
    if (this.#server) throw new SealtrailError('INTERNAL', 'GrpcReceiver.start called twice');
    if (this.#config.tls || this.#config.auth) {
      const key = this.#config.tls ? 'tls' : 'auth';
      throw new SealtrailError(
        'CONFIG_INVALID',
        `receivers.otlp.protocols.grpc.${key}: TLS and bearer-token auth are not implemented in this version; ` +
          `remove the ${key} block (the agent refuses to serve plaintext when ${key} was asked for)`,
      );
    }
    const ep = parseEndpoint(this.#config.endpoint);
    if (!ep) throw new SealtrailError('CONFIG_INVALID', `receivers.otlp.protocols.grpc.endpoint: invalid "${this.#config.endpoint}"`);

    const server = new grpc.Server({
      'grpc.max_receive_message_length': this.maxRecvBytes,
      // Responses are a few bytes; the default 4 MiB send limit is irrelevant but explicit.
      'grpc.max_send_message_length': 4 * 1024 * 1024,
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
      server.bindAsync(bindAddr, grpc.ServerCredentials.createInsecure(), (err, p) => {
        if (err) reject(new SealtrailError('IO', `receivers.otlp.protocols.grpc.endpoint: cannot listen on ${this.#config.endpoint}: ${err.message}`, { cause: err }));
        else resolve(p);
      });
    });
    this.#server = server;
    this.#deps.logger.info({ endpoint: `${bindAddr.replace(/:\d+$/, '')}:${port}` }, 'OTLP/gRPC receiver listening');
    return { host: ep.host, port };
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
    if (!decoded.ok) return { kind: 'invalid', message: decoded.message };
    const entries = decoded.entries;
    if (entries.length === 0) return { kind: 'ok', records: 0 };
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
    this.#deps.metrics?.receiverRequests.inc({ transport: 'grpc', status: GRPC_CODE_NAME[st.grpc] ?? String(st.grpc) });
    if (outcome.kind === 'ok') {
      callback(null, Buffer.from(exportLogsResponseProtobuf()));
      return;
    }
    const metadata = new grpc.Metadata();
    if (st.retryAfterSeconds !== undefined) {
      // OTLP "OTLP/gRPC Throttling": RetryInfo in the status details tells the client when to retry,
      // and is what makes RESOURCE_EXHAUSTED retryable at all ("OTLP/gRPC Failures").
      metadata.set('grpc-status-details-bin', grpcStatusDetailsWithRetryInfo(st.grpc, st.message, st.retryAfterSeconds));
    }
    this.#deps.logger.debug({ status: GRPC_CODE_NAME[st.grpc], message: st.message }, 'OTLP/gRPC request refused');
    callback({ code: st.grpc, details: st.message, metadata });
  }
}
