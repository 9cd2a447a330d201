/**
 * The one place where the outcome of an export request becomes a transport status (STYLE.md
 * habit 4: retry status is data). Both receivers call `transportStatus` and nothing else decides
 * codes, so HTTP and gRPC cannot drift apart.
 *
 * Choices, from the OTLP specification (opentelemetry-proto docs/specification.md):
 * - "OTLP/HTTP Retryable Response Codes": only 429, 502, 503 and 504 are retried by clients; every
 *   other 4xx/5xx is final. So every refusal the ledger calls retryable must be 429 or 503.
 * - "OTLP/HTTP Throttling": 429 or 503, with Retry-After in seconds. We send 429 when the agent is
 *   momentarily overloaded (too many pending appends: back off and come again soon) and 503 when
 *   the agent itself cannot take data (disk budget full, shutting down, ledger stopped). Both carry
 *   Retry-After, always at least 1 s: the JS exporter reads "0" as "no hint".
 * - "OTLP/gRPC Failures": RESOURCE_EXHAUSTED is retried "only if the server signals that recovery
 *   is possible" by a RetryInfo detail. So disk_full/overloaded answer RESOURCE_EXHAUSTED *with*
 *   RetryInfo, a body that is too large answers RESOURCE_EXHAUSTED *without* it (never retried),
 *   and shutting_down/ledger_failed answer UNAVAILABLE (always retryable) with RetryInfo.
 * - "Bad Data": 400 / INVALID_ARGUMENT; the client drops the data and must not retry.
 */
import type { RefusalReason } from '../ledger/types.js';

/** gRPC status codes (grpc/doc/statuscodes.md); google.rpc.Status.code uses the same numbers. */
export const GrpcCode = {
  OK: 0,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcCodeValue = (typeof GrpcCode)[keyof typeof GrpcCode];

/** Names for metrics labels and messages, indexed by code. */
export const GRPC_CODE_NAME: Readonly<Record<number, string>> = {
  0: 'OK',
  3: 'INVALID_ARGUMENT',
  4: 'DEADLINE_EXCEEDED',
  5: 'NOT_FOUND',
  8: 'RESOURCE_EXHAUSTED',
  12: 'UNIMPLEMENTED',
  13: 'INTERNAL',
  14: 'UNAVAILABLE',
  16: 'UNAUTHENTICATED',
};

/** What happened to one export request, independent of the transport. */
export type ReceiveOutcome =
  | { readonly kind: 'ok'; readonly records: number }
  /** Undecodable or invalid content, or an unusable request (bad Content-Encoding). Final. */
  | { readonly kind: 'invalid'; readonly message: string }
  /** Body (raw or decompressed) larger than the configured limit. Final (the spec forbids retrying 413). */
  | { readonly kind: 'too_large'; readonly message: string }
  /** More log records than receivers.otlp.max_records_per_request. Final, like too_large. */
  | { readonly kind: 'too_many_records'; readonly message: string }
  /**
   * Missing or wrong bearer token (issue 8). `error` is the RFC 6750 §3.1 error code for the
   * WWW-Authenticate challenge; absent when the request carried no bearer credentials at all.
   */
  | { readonly kind: 'unauthenticated'; readonly message: string; readonly error?: 'invalid_token' }
  /** HTTP only: a Content-Type other than OTLP protobuf or JSON. */
  | { readonly kind: 'unsupported_media_type'; readonly message: string }
  /** HTTP only: a method other than POST on an OTLP path. */
  | { readonly kind: 'method_not_allowed'; readonly message: string; readonly allow: string }
  /** HTTP only: a path that is not an OTLP path. */
  | { readonly kind: 'not_found'; readonly message: string }
  /** Traces or metrics: this agent takes logs only. */
  | { readonly kind: 'unimplemented_signal'; readonly message: string }
  /** gRPC only: a path naming no method we serve (gRPC over HTTP/2: UNIMPLEMENTED). */
  | { readonly kind: 'unknown_method'; readonly message: string }
  /**
   * gRPC only: a `grpc-encoding` we cannot decompress. gRPC compression.md ("Test cases", 4):
   * UNIMPLEMENTED, naming the supported encodings (also sent in `grpc-accept-encoding`). Final.
   */
  | { readonly kind: 'unsupported_encoding'; readonly message: string }
  /**
   * gRPC only: the call broke the gRPC wire protocol — corrupt length-prefixed framing, a
   * Compressed-Flag other than 0/1 or set without a `grpc-encoding`, a message that does not
   * decompress, an invalid `grpc-timeout` (PROTOCOL-HTTP2.md; compression.md case 6): INTERNAL. Final.
   */
  | { readonly kind: 'protocol_error'; readonly message: string }
  /** gRPC only: the call's `grpc-timeout` passed before it was answered (DEADLINE_EXCEEDED). */
  | { readonly kind: 'deadline_exceeded'; readonly message: string }
  /** The ledger (or the receiver while stopping) cannot take data now; nothing was stored. */
  | { readonly kind: 'retryable'; readonly reason: RefusalReason; readonly afterMs: number; readonly message: string };

export interface TransportStatus {
  readonly http: number;
  readonly grpc: GrpcCodeValue;
  /** Developer-facing message for google.rpc.Status.message / grpc-message. Empty on success. */
  readonly message: string;
  /** Seconds for Retry-After (HTTP) and RetryInfo.retry_delay (gRPC); set only on retryable refusals. */
  readonly retryAfterSeconds?: number;
  /** True when the client is expected to retry the same request. */
  readonly retryable: boolean;
}

/** Retry-After is whole seconds (RFC 9110 §10.2.3); round up and never send 0. */
export function retryAfterSeconds(afterMs: number): number {
  if (!Number.isFinite(afterMs) || afterMs <= 1000) return 1;
  return Math.min(Math.ceil(afterMs / 1000), 3600);
}

/** Maps a request outcome to its HTTP and gRPC status. Total over `ReceiveOutcome`; never throws. */
export function transportStatus(o: ReceiveOutcome): TransportStatus {
  switch (o.kind) {
    case 'ok':
      return { http: 200, grpc: GrpcCode.OK, message: '', retryable: false };
    case 'invalid':
      return { http: 400, grpc: GrpcCode.INVALID_ARGUMENT, message: o.message, retryable: false };
    case 'too_large':
      // No RetryInfo: RESOURCE_EXHAUSTED without it is final for OTLP clients, as 413 is.
      return { http: 413, grpc: GrpcCode.RESOURCE_EXHAUSTED, message: o.message, retryable: false };
    case 'too_many_records':
      // RFC 9110 §15.5.14: 413 is "content larger than the server is willing to process" — a count
      // of records is such a size. Final for OTLP clients (not in the retryable list), as it must be:
      // the same batch would be refused again.
      return { http: 413, grpc: GrpcCode.RESOURCE_EXHAUSTED, message: o.message, retryable: false };
    case 'unauthenticated':
      // RFC 6750 §3.1 / RFC 9110 §15.5.2: 401 with a WWW-Authenticate challenge; gRPC UNAUTHENTICATED.
      return { http: 401, grpc: GrpcCode.UNAUTHENTICATED, message: o.message, retryable: false };
    case 'unsupported_media_type':
      return { http: 415, grpc: GrpcCode.INVALID_ARGUMENT, message: o.message, retryable: false };
    case 'method_not_allowed':
      return { http: 405, grpc: GrpcCode.UNIMPLEMENTED, message: o.message, retryable: false };
    case 'not_found':
      return { http: 404, grpc: GrpcCode.NOT_FOUND, message: o.message, retryable: false };
    case 'unimplemented_signal':
      return { http: 404, grpc: GrpcCode.UNIMPLEMENTED, message: o.message, retryable: false };
    case 'unknown_method':
      return { http: 404, grpc: GrpcCode.UNIMPLEMENTED, message: o.message, retryable: false };
    case 'unsupported_encoding':
      // HTTP keeps issue 2's 400 for an unknown Content-Encoding (http.ts answers it as `invalid`).
      return { http: 400, grpc: GrpcCode.UNIMPLEMENTED, message: o.message, retryable: false };
    case 'protocol_error':
      return { http: 400, grpc: GrpcCode.INTERNAL, message: o.message, retryable: false };
    case 'deadline_exceeded':
      // The client gave up already; it decides itself whether to send the data again.
      return { http: 408, grpc: GrpcCode.DEADLINE_EXCEEDED, message: o.message, retryable: false };
    case 'retryable': {
      const after = retryAfterSeconds(o.afterMs);
      switch (o.reason) {
        case 'overloaded':
          return { http: 429, grpc: GrpcCode.RESOURCE_EXHAUSTED, message: o.message, retryAfterSeconds: after, retryable: true };
        case 'disk_full':
          return { http: 503, grpc: GrpcCode.RESOURCE_EXHAUSTED, message: o.message, retryAfterSeconds: after, retryable: true };
        case 'shutting_down':
        case 'ledger_failed':
          return { http: 503, grpc: GrpcCode.UNAVAILABLE, message: o.message, retryAfterSeconds: after, retryable: true };
      }
    }
  }
}

/** Default message for a retryable refusal, naming the reason and what the client should do. */
export function refusalMessage(reason: RefusalReason, detail?: string): string {
  const base: Record<RefusalReason, string> = {
    disk_full: 'sealtrail cannot store more logs now: the ledger disk budget (ledger.max_disk_bytes) is full; retry later',
    overloaded: 'sealtrail is overloaded (too many pending writes); retry after the indicated delay',
    shutting_down: 'sealtrail is shutting down and takes no new requests; retry (another instance or after restart)',
    ledger_failed: 'sealtrail stopped acknowledging because a ledger write or fsync failed; retry later',
  };
  return detail ? `${base[reason]} (${detail})` : base[reason];
}

// ---------------------------------------------------------------------------------------------
// google.rpc.Status with a google.rpc.RetryInfo detail, for the gRPC `grpc-status-details-bin`
// trailer (gRPC "Richer error model"). Hand-encoded: four tiny messages, and the receiver must not
// depend on a protobuf runtime. Field numbers from googleapis google/rpc/status.proto,
// google/rpc/error_details.proto, google/protobuf/any.proto and duration.proto.
// ---------------------------------------------------------------------------------------------

const RETRY_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.RetryInfo';

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function lengthDelimited(field: number, payload: Uint8Array): number[] {
  return [...varint((field << 3) | 2), ...varint(payload.length), ...payload];
}

/**
 * Encodes google.rpc.Status{code, message, details:[Any(RetryInfo{retry_delay})]} — the
 * `grpc-status-details-bin` trailer value that tells OTLP clients when to retry.
 * @throws RangeError if `code` is not a non-negative integer or `retryDelaySeconds` is negative.
 */
export function grpcStatusDetailsWithRetryInfo(code: number, message: string, retryDelaySeconds: number): Buffer {
  if (!Number.isInteger(code) || code < 0) throw new RangeError(`invalid gRPC code ${code}`);
  if (!Number.isInteger(retryDelaySeconds) || retryDelaySeconds < 0) throw new RangeError(`invalid retry delay ${retryDelaySeconds}`);
  // Duration { int64 seconds = 1; } (nanos = 0 omitted, proto3 default)
  const duration = retryDelaySeconds > 0 ? Uint8Array.from([0x08, ...varint(retryDelaySeconds)]) : new Uint8Array(0);
  // RetryInfo { Duration retry_delay = 1; }
  const retryInfo = Uint8Array.from(lengthDelimited(1, duration));
  // Any { string type_url = 1; bytes value = 2; }
  const any = Uint8Array.from([...lengthDelimited(1, new TextEncoder().encode(RETRY_INFO_TYPE_URL)), ...lengthDelimited(2, retryInfo)]);
  // Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  const status = [
    ...(code !== 0 ? [0x08, ...varint(code)] : []),
    ...(message ? lengthDelimited(2, new TextEncoder().encode(message)) : []),
    ...lengthDelimited(3, any),
  ];
  return Buffer.from(status);
}

/** Metrics label for a refused request: the refusal reason, or the outcome kind for final refusals. */
export function refusalLabel(o: ReceiveOutcome): string {
  return o.kind === 'retryable' ? o.reason : o.kind;
}
