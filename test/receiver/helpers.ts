/**
 * Shared test helpers for the receivers: in-memory sinks (one that records, one that refuses),
 * receivers started on 127.0.0.1:0, a raw HTTP client and a lean HTTP/2 gRPC client that gives full
 * control over framing and compression (so tests can send bytes no well-behaved client would).
 */
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { type AppendOutcome, type EntrySink, type Entries, type RefusalReason, entryList } from '../../src/ledger/types.js';
import type { GrpcReceiverConfig, HttpReceiverConfig } from '../../src/config/schema.js';
import { HttpReceiver } from '../../src/receiver/http.js';
import { GrpcReceiver } from '../../src/receiver/grpc.js';
import type { ReceiverDeps } from '../../src/receiver/types.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { silentLogger } from '../../src/telemetry/logger.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Records every append; resolves `ok` like a ledger whose fsync succeeded. */
export class MemorySink implements EntrySink {
  readonly batches: Uint8Array[][] = [];
  #next = 0;
  async append(given: Entries): Promise<AppendOutcome> {
    // Copy: the sink must own what it stores (a real ledger writes the bytes out).
    const entries = entryList(given);
    this.batches.push(entries.map((e) => Uint8Array.from(e)));
    const firstIndex = this.#next;
    this.#next += entries.length;
    return { kind: 'ok', firstIndex, count: entries.length };
  }
  get entries(): Uint8Array[] {
    return this.batches.flat();
  }
}

/** Refuses every append with a retryable reason, storing nothing; counts the calls. */
export class RefusingSink implements EntrySink {
  calls = 0;
  constructor(
    readonly reason: RefusalReason,
    readonly afterMs: number,
    readonly detail?: string,
  ) {}
  async append(_entries: Entries): Promise<AppendOutcome> {
    this.calls++;
    return { kind: 'retryable', reason: this.reason, afterMs: this.afterMs, ...(this.detail ? { detail: this.detail } : {}) };
  }
}

/** Refuses the first `refusals` appends (retryable), then stores like MemorySink. */
export class FlakySink extends MemorySink {
  refused = 0;
  constructor(
    readonly refusals: number,
    readonly reason: RefusalReason,
    readonly afterMs: number,
  ) {
    super();
  }
  override async append(entries: Entries): Promise<AppendOutcome> {
    if (this.refused < this.refusals) {
      this.refused++;
      return { kind: 'retryable', reason: this.reason, afterMs: this.afterMs };
    }
    return super.append(entries);
  }
}

/** A sink whose appends wait until `release()` — to hold a request in flight. */
export class GatedSink extends MemorySink {
  #gate: Promise<void>;
  #open!: () => void;
  pending = 0;
  constructor() {
    super();
    this.#gate = new Promise((r) => (this.#open = r));
  }
  release(): void {
    this.#open();
  }
  override async append(entries: Entries): Promise<AppendOutcome> {
    this.pending++;
    await this.#gate;
    this.pending--;
    return super.append(entries);
  }
}

export function deps(sink: EntrySink, metrics?: Metrics): ReceiverDeps {
  return { sink, limits: { maxNestingDepth: 32 }, logger: silentLogger(), ...(metrics ? { metrics } : {}) };
}

export function newMetrics(): Metrics {
  return new Metrics({ defaultMetrics: false });
}

/** The schema defaults of the per-protocol keys added in issue 8 (config/schema.ts), for configs built in tests. */
export const HTTP_DEFAULTS = { read_header_timeout: 10_000, read_timeout: 60_000, idle_timeout: 30_000, max_request_header_size: 16 * 1024 } as const;
export const GRPC_DEFAULTS = { read_timeout: 60_000 } as const;

export async function startHttp(
  sink: EntrySink,
  over: Partial<HttpReceiverConfig> = {},
  metrics?: Metrics,
): Promise<{ rx: HttpReceiver; url: string; port: number }> {
  const rx = new HttpReceiver({ endpoint: '127.0.0.1:0', max_request_body_size: 20 * 1024 * 1024, ...HTTP_DEFAULTS, ...over }, deps(sink, metrics));
  const { host, port } = await rx.start();
  return { rx, url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`, port };
}

export async function startGrpc(
  sink: EntrySink,
  over: Partial<GrpcReceiverConfig> = {},
  metrics?: Metrics,
): Promise<{ rx: GrpcReceiver; address: string; port: number }> {
  const rx = new GrpcReceiver({ endpoint: '127.0.0.1:0', max_recv_msg_size_mib: 4, ...GRPC_DEFAULTS, ...over }, deps(sink, metrics));
  const { host, port } = await rx.start();
  return { rx, address: `${host.includes(":") ? `[${host}]` : host}:${port}`, port };
}

export interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP/1.1 request with exactly these headers and body (no automatic compression or types). */
export function httpRequest(
  url: string,
  opts: { method?: string; path?: string; headers?: Record<string, string | number>; body?: Uint8Array | string; chunked?: boolean },
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const u = new URL(opts.path ?? '/v1/logs', url);
    const headers: Record<string, string | number> = { ...(opts.headers ?? {}) };
    const body = opts.body === undefined ? undefined : typeof opts.body === 'string' ? Buffer.from(opts.body) : Buffer.from(opts.body);
    if (body && !opts.chunked && headers['content-length'] === undefined) headers['content-length'] = body.length;
    // Node would add Content-Length itself for a single end(body); force chunked framing when asked.
    if (opts.chunked) headers['transfer-encoding'] = 'chunked';
    const req = http.request(u, { method: opts.method ?? 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body && opts.chunked) {
      // several chunks, so the server sees a body of unknown length arrive piece by piece
      for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.subarray(i, i + 64 * 1024));
      req.end();
    } else if (body) req.end(body);
    else req.end();
  });
}

export interface GrpcReply {
  /** gRPC status from the trailers (or from trailers-only headers). */
  code: number;
  message: string;
  details?: Buffer;
  /** Response message bytes (without the 5-byte frame header), when one was sent. */
  response?: Buffer;
  httpStatus: number;
}

/** Frames one gRPC message (length-prefixed message, gRPC over HTTP/2 "Length-Prefixed-Message"). */
export function grpcFrame(payload: Uint8Array, compressed: boolean): Buffer {
  const h = Buffer.alloc(5);
  h.writeUInt8(compressed ? 1 : 0, 0);
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

/**
 * A unary gRPC call over plain node:http2, with the payload sent as given: `encoding` sets
 * `grpc-encoding` and marks the frame compressed (the caller compresses).
 */
export function grpcCall(address: string, methodPath: string, payload: Uint8Array, encoding?: 'gzip' | 'deflate'): Promise<GrpcReply> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`);
    session.on('error', reject);
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': methodPath,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...(encoding ? { 'grpc-encoding': encoding } : {}),
    };
    const stream = session.request(headers);
    let httpStatus = 0;
    let headerStatus: { code?: number; message?: string; details?: Buffer } = {};
    const chunks: Buffer[] = [];
    const fromHeaders = (h: http2.IncomingHttpHeaders): { code?: number; message?: string; details?: Buffer } => {
      const out: { code?: number; message?: string; details?: Buffer } = {};
      if (h['grpc-status'] !== undefined) out.code = Number(h['grpc-status']);
      if (h['grpc-message'] !== undefined) out.message = decodeURIComponent(String(h['grpc-message']));
      const d = h['grpc-status-details-bin'];
      if (d !== undefined) out.details = Buffer.from(String(d), 'base64');
      return out;
    };
    stream.on('response', (h) => {
      httpStatus = Number(h[':status']);
      headerStatus = fromHeaders(h);
    });
    let trailerStatus: { code?: number; message?: string; details?: Buffer } = {};
    stream.on('trailers', (t) => {
      trailerStatus = fromHeaders(t);
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const st = trailerStatus.code !== undefined ? trailerStatus : headerStatus;
      const data = Buffer.concat(chunks);
      session.close();
      resolve({
        code: st.code ?? -1,
        message: st.message ?? '',
        ...(st.details ? { details: st.details } : {}),
        ...(data.length >= 5 ? { response: data.subarray(5) } : {}),
        httpStatus,
      });
    });
    stream.on('error', (e) => {
      session.close();
      reject(e);
    });
    stream.end(grpcFrame(payload, encoding !== undefined));
  });
}

let protoRoot: protobuf.Root | undefined;
/** The OTLP logs protos from proto/ (written by the otlp engineer), loaded with protobufjs. */
export function otlpRoot(): protobuf.Root {
  if (protoRoot) return protoRoot;
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(REPO, 'proto', target);
  root.loadSync(['opentelemetry/proto/collector/logs/v1/logs_service.proto', 'google/rpc/status.proto'], { keepCase: false });
  // google.rpc.RetryInfo and google.protobuf.Duration (googleapis error_details.proto, duration.proto),
  // defined here because the receiver, not the otlp area, uses them.
  root.add(
    new protobuf.Type('Duration').add(new protobuf.Field('seconds', 1, 'int64')).add(new protobuf.Field('nanos', 2, 'int32')),
  );
  root.add(new protobuf.Type('RetryInfo').add(new protobuf.Field('retryDelay', 1, 'Duration')));
  root.resolveAll();
  protoRoot = root;
  return root;
}

export function exportRequestType(): protobuf.Type {
  return otlpRoot().lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
}

/** Encodes an ExportLogsServiceRequest from a plain object with protobufjs (independent of our code). */
export function encodeRequest(obj: Record<string, unknown>): Uint8Array {
  const T = exportRequestType();
  const msg = T.fromObject(obj); // accepts 64-bit integers as decimal strings (util.Long)
  const err = T.verify(msg);
  if (err) throw new Error(`test request invalid: ${err}`);
  return T.encode(msg).finish();
}

/**
 * A request of `n` records whose resource, scope and bodies carry `tag` (each body `repeat` copies
 * of "<tag> record <i> "), so that requests built from different tags tell their entries apart.
 */
export function taggedRequest(tag: string, n: number, repeat = 8): Uint8Array {
  return encodeRequest({
    resourceLogs: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: `svc-${tag}` } }] },
        scopeLogs: [{ scope: { name: tag }, logRecords: Array.from({ length: n }, (_, i) => ({ body: { stringValue: `${tag} record ${i} `.repeat(repeat) } })) }],
      },
    ],
  });
}

/** Decodes a google.rpc.Status (HTTP error body or grpc-status-details-bin). */
export function decodeStatus(bytes: Uint8Array): { code: number; message: string; details: Array<{ typeUrl: string; value: Uint8Array }> } {
  const T = otlpRoot().lookupType('google.rpc.Status');
  const o = T.toObject(T.decode(bytes), { defaults: true, longs: Number }) as {
    code: number;
    message: string;
    details: Array<{ typeUrl?: string; type_url?: string; value: Uint8Array }>;
  };
  return { code: o.code, message: o.message, details: o.details.map((d) => ({ typeUrl: d.typeUrl ?? d.type_url ?? '', value: d.value })) };
}

/** Retry delay in seconds from a google.rpc.Status carrying a RetryInfo detail; undefined when absent. */
export function retryDelayFromStatus(bytes: Uint8Array): number | undefined {
  const st = decodeStatus(bytes);
  const d = st.details.find((x) => x.typeUrl === 'type.googleapis.com/google.rpc.RetryInfo');
  if (!d) return undefined;
  const T = otlpRoot().lookupType('RetryInfo');
  const o = T.toObject(T.decode(d.value), { longs: Number, defaults: true }) as { retryDelay?: { seconds: number } };
  return o.retryDelay?.seconds ?? 0;
}

/** A small valid request with `n` log records, encoded with protobufjs. */
export function sampleRequest(n = 2): Uint8Array {
  return encodeRequest({
    resourceLogs: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'test' } }] },
        scopeLogs: [
          {
            scope: { name: 'sample', version: '1' },
            logRecords: Array.from({ length: n }, (_, i) => ({
              timeUnixNano: String(1_700_000_000_000_000_000n + BigInt(i)),
              severityNumber: 9,
              severityText: 'INFO',
              body: { stringValue: `record ${i}` },
            })),
          },
        ],
      },
    ],
  });
}

/** The same as `sampleRequest` in OTLP/JSON. */
export function sampleRequestJson(n = 2): string {
  return JSON.stringify({
    resourceLogs: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'test' } }] },
        scopeLogs: [
          {
            scope: { name: 'sample', version: '1' },
            logRecords: Array.from({ length: n }, (_, i) => ({
              timeUnixNano: String(1_700_000_000_000_000_000n + BigInt(i)),
              severityNumber: 9,
              severityText: 'INFO',
              body: { stringValue: `record ${i}` },
            })),
          },
        ],
      },
    ],
  });
}

/** One HTTP/1.1 response read off a raw connection (Content-Length bodies only). */
export interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Opens a connection with `connect` (plain or TLS; it calls `ready` once data may be written), writes
 * `parts` (a pause between each) and reads `n` responses in order; resolves early with what came if the
 * server closes the connection.
 */
export function rawExchange(connect: (ready: () => void) => net.Socket, parts: Array<Buffer | string>, n: number, pauseMs = 0): Promise<RawReply[]> {
  return new Promise((resolve, reject) => {
    const replies: RawReply[] = [];
    let buf = Buffer.alloc(0);
    const s = connect(async () => {
      for (const [i, p] of parts.entries()) {
        if (i > 0 && pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
        s.write(p);
      }
    });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buf.toString('latin1', 0, end).split('\r\n');
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
        const len = Number(headers['content-length'] ?? 0);
        if (buf.length < end + 4 + len) return;
        replies.push({ status: Number(lines[0]!.split(' ')[1]), headers, body: buf.subarray(end + 4, end + 4 + len) });
        buf = buf.subarray(end + 4 + len);
        if (replies.length === n) {
          s.destroy();
          resolve(replies);
          return;
        }
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(replies));
    setTimeout(() => reject(new Error(`timed out with ${replies.length} of ${n} replies`)), 10_000).unref();
  });
}
