/**
 * The receivers build each request's entries in a pooled EntryArena and release it only when the
 * ledger's append has settled (src/ledger/types.ts EntrySink: the sink reads the entries until then).
 * These tests hold appends open and decode other requests meanwhile: if an arena were released
 * early, the next request's entries would be built in the same memory (or, with the tests' poisoning,
 * overwritten at once) and the held entries would change under the ledger.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type AppendOutcome, type EntrySink, type Entries, entryList } from '../../src/ledger/types.js';
import { grpcCall, httpRequest, startGrpc, startHttp, taggedRequest } from './helpers.js';

const EXPORT = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';

interface Held {
  live: readonly Uint8Array[];
  copy: string[];
  settle: () => void;
}

/** Keeps every append open until settle(), remembering the entries as passed and a copy. */
class HoldingSink implements EntrySink {
  readonly held: Held[] = [];
  #waiters: Array<() => void> = [];
  append(given: Entries): Promise<AppendOutcome> {
    const entries = entryList(given); // views of the arena's memory, as the ledger reads it
    return new Promise((resolve) => {
      this.held.push({
        live: entries,
        copy: entries.map((e) => Buffer.from(e).toString('hex')),
        settle: () => resolve({ kind: 'ok', firstIndex: 0, count: entries.length }),
      });
      for (const w of this.#waiters.splice(0)) w();
    });
  }
  async until(n: number): Promise<void> {
    while (this.held.length < n) await new Promise<void>((r) => this.#waiters.push(r));
  }
}

const hex = (es: readonly Uint8Array[]): string[] => es.map((e) => Buffer.from(e).toString('hex'));

const request = (tag: string, n: number): Uint8Array => taggedRequest(tag, n);

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

describe.each(['http', 'grpc'] as const)('%s receiver: entry memory and the append lifetime', (transport) => {
  async function start(sink: EntrySink): Promise<(body: Uint8Array) => Promise<number>> {
    if (transport === 'http') {
      const { rx, url } = await startHttp(sink);
      stops.push(() => rx.shutdown());
      return async (body) => (await httpRequest(url, { body, headers: { 'content-type': 'application/x-protobuf' } })).status;
    }
    const { rx, address } = await startGrpc(sink);
    stops.push(() => rx.shutdown());
    return async (body) => (await grpcCall(address, EXPORT, body)).code;
  }

  it('entries stay intact while their append is open and other requests are decoded; the memory is reused after', async () => {
    const sink = new HoldingSink();
    const send = await start(sink);
    const ok = transport === 'http' ? 200 : 0;

    const a = send(request('a', 50));
    await sink.until(1);
    const b = send(request('b', 50));
    await sink.until(2);
    // B was decoded while A's append was open: A's entries, as the sink sees them, are unchanged.
    expect(hex(sink.held[0]!.live)).toEqual(sink.held[0]!.copy);
    expect(hex(sink.held[1]!.live)).toEqual(sink.held[1]!.copy);
    expect(new Set(sink.held[0]!.live.map((e) => e.buffer))).not.toContain(sink.held[1]!.live[0]!.buffer);

    sink.held[0]!.settle();
    expect(await a).toBe(ok);
    // A's arena is released now and its slab is the first one reused (the pool is LIFO) ...
    const c = send(request('c', 50));
    await sink.until(3);
    expect(sink.held[2]!.live[0]!.buffer).toBe(sink.held[0]!.live[0]!.buffer);
    // ... while B, still open, is untouched.
    expect(hex(sink.held[1]!.live)).toEqual(sink.held[1]!.copy);
    expect(hex(sink.held[2]!.live)).toEqual(sink.held[2]!.copy);

    sink.held[1]!.settle();
    sink.held[2]!.settle();
    expect([await b, await c]).toEqual([ok, ok]);
  });
});
