/** The one outcome → transport mapping (src/receiver/status.ts), checked against the OTLP spec's tables. */
import { describe, expect, it } from 'vitest';
import { GrpcCode, grpcStatusDetailsWithRetryInfo, retryAfterSeconds, transportStatus } from '../../src/receiver/status.js';
import { decodeStatus, retryDelayFromStatus } from './helpers.js';

// OTLP "Retryable Response Codes": only these HTTP codes are retried by clients.
const HTTP_RETRYABLE = new Set([429, 502, 503, 504]);

describe('transportStatus', () => {
  it('maps each outcome kind to the HTTP and gRPC codes the OTLP spec prescribes', () => {
    expect(transportStatus({ kind: 'ok', records: 3 })).toMatchObject({ http: 200, grpc: GrpcCode.OK, retryable: false });
    expect(transportStatus({ kind: 'invalid', message: 'm' })).toMatchObject({ http: 400, grpc: GrpcCode.INVALID_ARGUMENT, message: 'm' });
    expect(transportStatus({ kind: 'too_large', message: 'm' })).toMatchObject({ http: 413, grpc: GrpcCode.RESOURCE_EXHAUSTED, retryable: false });
    expect(transportStatus({ kind: 'too_large', message: 'm' }).retryAfterSeconds).toBeUndefined();
    expect(transportStatus({ kind: 'unsupported_media_type', message: 'm' }).http).toBe(415);
    expect(transportStatus({ kind: 'method_not_allowed', message: 'm', allow: 'POST' }).http).toBe(405);
    expect(transportStatus({ kind: 'not_found', message: 'm' }).http).toBe(404);
    expect(transportStatus({ kind: 'unimplemented_signal', message: 'm' })).toMatchObject({ http: 404, grpc: GrpcCode.UNIMPLEMENTED });
  });

  it('every ledger refusal is retryable on both transports, with a retry hint', () => {
    for (const reason of ['disk_full', 'overloaded', 'shutting_down', 'ledger_failed'] as const) {
      const st = transportStatus({ kind: 'retryable', reason, afterMs: 2_000, message: 'm' });
      expect(HTTP_RETRYABLE.has(st.http), reason).toBe(true);
      expect([GrpcCode.UNAVAILABLE, GrpcCode.RESOURCE_EXHAUSTED]).toContain(st.grpc);
      expect(st.retryAfterSeconds).toBe(2);
      expect(st.retryable).toBe(true);
    }
    expect(transportStatus({ kind: 'retryable', reason: 'overloaded', afterMs: 1, message: '' }).http).toBe(429);
    expect(transportStatus({ kind: 'retryable', reason: 'disk_full', afterMs: 1, message: '' }).http).toBe(503);
  });

  it('no non-retryable outcome uses a code clients retry', () => {
    for (const o of [
      { kind: 'invalid', message: '' },
      { kind: 'too_large', message: '' },
      { kind: 'unsupported_media_type', message: '' },
      { kind: 'not_found', message: '' },
      { kind: 'unimplemented_signal', message: '' },
    ] as const) {
      const st = transportStatus(o);
      expect(HTTP_RETRYABLE.has(st.http)).toBe(false);
      expect(st.grpc).not.toBe(GrpcCode.UNAVAILABLE);
    }
  });

  it('Retry-After is whole seconds, at least 1, rounded up, capped at an hour', () => {
    expect(retryAfterSeconds(0)).toBe(1);
    expect(retryAfterSeconds(999)).toBe(1);
    expect(retryAfterSeconds(1001)).toBe(2);
    expect(retryAfterSeconds(30_000)).toBe(30);
    expect(retryAfterSeconds(NaN)).toBe(1);
    expect(retryAfterSeconds(1e12)).toBe(3600);
  });
});

describe('grpcStatusDetailsWithRetryInfo', () => {
  it('encodes google.rpc.Status with a RetryInfo detail that protobufjs decodes', () => {
    const bytes = grpcStatusDetailsWithRetryInfo(8, 'disk full ✓', 300);
    const st = decodeStatus(bytes);
    expect(st.code).toBe(8);
    expect(st.message).toBe('disk full ✓');
    expect(st.details).toHaveLength(1);
    expect(st.details[0]!.typeUrl).toBe('type.googleapis.com/google.rpc.RetryInfo');
    expect(retryDelayFromStatus(bytes)).toBe(300);
    // multi-byte varints (seconds ≥ 128, long messages)
    expect(retryDelayFromStatus(grpcStatusDetailsWithRetryInfo(14, 'x'.repeat(300), 100_000))).toBe(100_000);
  });
  it('refuses nonsense', () => {
    expect(() => grpcStatusDetailsWithRetryInfo(-1, '', 1)).toThrow(RangeError);
    expect(() => grpcStatusDetailsWithRetryInfo(8, '', 1.5)).toThrow(RangeError);
  });
});
