/**
 * G7: a small request whose entries would decode to far more memory than it carries (every entry
 * repeats its resource) is refused as too large — HTTP 413 / gRPC RESOURCE_EXHAUSTED without a
 * retry hint — before the entries are built, and nothing reaches the ledger.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemorySink, encodeRequest, grpcCall, httpRequest, startGrpc, startHttp } from './helpers.js';
import { OTLP_GRPC_PATHS } from '../../src/receiver/grpc.js';

/** ~110 KB: a 100 KB resource attribute shared by 5,000 empty records → ≈ 500 MB of entries. */
function amplifyingRequest(): Uint8Array {
  return encodeRequest({
    resourceLogs: [
      {
        resource: { attributes: [{ key: 'big', value: { stringValue: 'x'.repeat(100_000) } }] },
        scopeLogs: [{ logRecords: Array.from({ length: 5_000 }, () => ({})) }],
      },
    ],
  });
}

describe('decoded-size limit (amplification)', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  it('HTTP answers 413 and stores nothing', async () => {
    const sink = new MemorySink();
    const { rx, url } = await startHttp(sink);
    cleanups.push(() => rx.shutdown());
    const body = amplifyingRequest();
    expect(body.length).toBeLessThan(200_000);
    const res = await httpRequest(url, { headers: { 'content-type': 'application/x-protobuf' }, body });
    expect(res.status).toBe(413);
    expect(res.headers['retry-after']).toBeUndefined();
    expect(sink.entries).toHaveLength(0);
  });

  it('gRPC answers RESOURCE_EXHAUSTED (8) without RetryInfo and stores nothing', async () => {
    const sink = new MemorySink();
    const { rx, address } = await startGrpc(sink);
    cleanups.push(() => rx.shutdown());
    const res = await grpcCall(address, OTLP_GRPC_PATHS.logs, amplifyingRequest());
    expect(res.code).toBe(8);
    expect(res.message).toMatch(/decod|large|bytes/i);
    expect(sink.entries).toHaveLength(0);
  });
});
