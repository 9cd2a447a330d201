/**
 * A small HDR-style latency histogram (log-linear buckets), written here instead of pulling in a
 * dependency: values are microseconds; each power-of-two range is split into 64 linear sub-buckets,
 * so a recorded value is off by at most 1/64 (< 1.6 %) of itself, from 1 µs up to about 1 hour.
 * Recording is O(1) and allocation-free, which matters because the load generator records one value
 * per acknowledged request on the same core that sends the load.
 */

const SUB_BITS = 6; // 64 sub-buckets per power of two
const SUB = 1 << SUB_BITS;
const MAX_EXP = 32; // values up to 2^(32+6) µs: far beyond any run

export interface HistogramSummary {
  readonly count: number;
  readonly minUs: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly p999Us: number;
  readonly maxUs: number;
  readonly meanUs: number;
}

export class Histogram {
  readonly #counts = new Float64Array((MAX_EXP + 1) * SUB);
  #count = 0;
  #sum = 0;
  #min = Number.POSITIVE_INFINITY;
  #max = 0;

  /** Bucket index of a value (µs): below 64 one bucket per µs, above that 64 per power of two. */
  static #index(us: number): number {
    const v = Math.max(0, Math.floor(us));
    if (v < SUB) return v;
    const exp = 31 - Math.clz32(v) - SUB_BITS + 1; // ≥ 1
    const e = Math.min(exp, MAX_EXP);
    const sub = Math.min(SUB - 1, (v >>> (e - 1)) - SUB);
    return e * SUB + sub;
  }

  /** Upper edge (µs) of a bucket: what a percentile falling into it reports (conservative). */
  static #upper(i: number): number {
    const e = Math.floor(i / SUB);
    const sub = i % SUB;
    if (e === 0) return sub;
    return (SUB + sub + 1) * 2 ** (e - 1) - 1;
  }

  /** Record one value in microseconds. Values beyond 2^31 µs are clamped into the top bucket. */
  record(us: number): void {
    const v = Math.min(us, 2 ** 31 - 1);
    this.#counts[Histogram.#index(v)]! += 1;
    this.#count += 1;
    this.#sum += us;
    if (us < this.#min) this.#min = us;
    if (us > this.#max) this.#max = us;
  }

  get count(): number {
    return this.#count;
  }

  /** The value at quantile q (0..1): the upper edge of the bucket that holds it, capped at max. */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(Histogram.#upper(i), this.#max);
    }
    return this.#max;
  }

  summary(): HistogramSummary {
    const c = this.#count;
    return {
      count: c,
      minUs: c ? this.#min : 0,
      p50Us: this.quantile(0.5),
      p90Us: this.quantile(0.9),
      p99Us: this.quantile(0.99),
      p999Us: this.quantile(0.999),
      maxUs: this.#max,
      meanUs: c ? this.#sum / c : 0,
    };
  }
}
