/**
 * Per-request counters kept as plain numbers (src/telemetry/metrics.ts `Tally`): the receivers add
 * to them on every request, and a scrape must show exactly the totals prom-client's own inc() would
 * have given — every increment once, never twice, whatever the number of scrapes in between.
 */
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/telemetry/metrics.js';

/** The value of one sample line of the exposition text, or undefined when absent. */
function sample(text: string, line: string): number | undefined {
  const m = text.split('\n').find((l) => l.startsWith(`${line} `));
  return m === undefined ? undefined : Number(m.slice(line.length + 1));
}

describe('metrics tallies', () => {
  it('add to their counters on every scrape exactly once, beside direct inc()', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const http = m.receiverTallies('http');
    const grpc = m.receiverTallies('grpc');
    http.accepted.n += 5;
    http.bytes.n += 1000;
    http.okRequests.n += 2;
    grpc.accepted.n += 3;
    grpc.okRequests.n++;
    m.receiverAccepted.inc({ transport: 'http' }, 2);
    m.receiverRequests.inc({ transport: 'http', status: '429' });

    const first = await m.registry.metrics();
    expect(sample(first, 'sealtrail_receiver_accepted_log_records_total{transport="http"}')).toBe(7);
    expect(sample(first, 'sealtrail_receiver_accepted_log_records_total{transport="grpc"}')).toBe(3);
    expect(sample(first, 'sealtrail_receiver_request_bytes_total{transport="http"}')).toBe(1000);
    expect(sample(first, 'sealtrail_receiver_requests_total{transport="http",status="200"}')).toBe(2);
    expect(sample(first, 'sealtrail_receiver_requests_total{transport="http",status="429"}')).toBe(1);
    expect(sample(first, 'sealtrail_receiver_requests_total{transport="grpc",status="OK"}')).toBe(1);

    // A second scrape with nothing new shows the same totals; new counts add once.
    expect(await m.registry.metrics()).toBe(first);
    http.accepted.n += 1;
    m.receiverTallies('http').accepted.n += 1; // the same series, the same tally
    expect(m.receiverTallies('http').accepted).toBe(http.accepted);
    const third = await m.registry.metrics();
    expect(sample(third, 'sealtrail_receiver_accepted_log_records_total{transport="http"}')).toBe(9);
    expect((await m.receiverAccepted.get()).values.find((v) => v.labels.transport === 'http')?.value).toBe(9);
  });

  it('show nothing for a transport that never counted', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.receiverTallies('grpc');
    const text = await m.registry.metrics();
    expect(text).not.toMatch(/transport="grpc"/);
  });
});
