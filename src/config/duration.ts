/**
 * Durations such as `500ms`, `5s`, `10m`, `1h`, `7d` (the config's duration syntax, schema.ts).
 * A module of its own, without zod, so that commands that only parse a duration flag
 * (`sealtrail verify --expect-fresh`) do not load the config schema at start-up.
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `5s`-style durations; a bare number is seconds. Returns undefined when invalid. */
export function parseDurationMs(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v * 1000 : undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(v.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNIT_MS[m[2]!]!);
}
