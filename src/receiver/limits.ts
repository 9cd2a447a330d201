/**
 * Admission control shared by both receivers (issue 8, G2): at most `limit` export requests are
 * handled at once, counted from the moment a request is admitted (after authentication, before
 * its body is read) until it is answered. Together with the body-size limits this bounds the
 * memory requests can pin: about `limit × max body size` plus the decoded entries of those bodies.
 * A request that finds the gate full is refused at once with a retryable status (429 /
 * RESOURCE_EXHAUSTED + RetryInfo) instead of queueing: a queue would only move the growth
 * elsewhere, and the OTLP clients retry with back-off ("OTLP/HTTP Throttling").
 */

/** Retry hint sent with a refusal because the gate is full: soon, the gate frees as requests finish. */
export const OVERLOAD_RETRY_AFTER_MS = 1_000;

/** A counting semaphore without a queue. */
export class ConcurrencyGate {
  readonly limit: number;
  #inUse = 0;

  /** @throws RangeError unless `limit` is a positive integer. */
  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`ConcurrencyGate limit must be a positive integer, got ${limit}`);
    this.limit = limit;
  }

  /** Requests admitted and not yet released. */
  get inUse(): number {
    return this.#inUse;
  }

  /**
   * Takes a slot if one is free. Returns its release function (calling it more than once releases
   * once), or undefined when the gate is full.
   */
  tryAcquire(): (() => void) | undefined {
    if (this.#inUse >= this.limit) return undefined;
    this.#inUse++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inUse--;
    };
  }
}
