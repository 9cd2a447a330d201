/**
 * Argument handling shared by `verify`, `prove`, `verify-proof` and `export`: trusted keys,
 * origin, time bounds and source options. Every error is a SealtrailError('USAGE') naming the
 * argument and what to give instead (exit 2, never "tampered").
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseDurationMs } from '../config/duration.js';
import { SealtrailError, errorMessage } from '../errors.js';
import { type Verifier, parseVerifierKey } from '../keys/keys.js';
import type { SourceOptions } from './log-sources.js';

/** parseArgs option specs for the source-reaching flags. */
export const SOURCE_FLAGS = {
  endpoint: { type: 'string' },
  region: { type: 'string' },
  'force-path-style': { type: 'boolean' },
  config: { type: 'string' },
} as const;

/**
 * Loads one `--key` value: a path to a `.pub` file, or the verifier key text itself
 * (`name+hexid+base64`, the C2SP signed-note verifier key form).
 * @throws SealtrailError USAGE / KEY_INVALID naming the argument
 */
export function loadTrustedKey(arg: string, cwd: string): Verifier {
  const path = resolve(cwd, arg);
  let text: string | undefined;
  try {
    if (statSync(path).isFile()) text = readFileSync(path, 'utf8');
  } catch {
    text = undefined;
  }
  if (text === undefined) {
    if (!/^[^/\\]+\+[0-9a-f]{8}\+/.test(arg)) {
      throw new SealtrailError('USAGE', `--key ${arg}: no such file, and not a verifier key text (name+keyid+key); give the .pub file written by sealtrail keygen`);
    }
    text = arg;
  }
  try {
    return parseVerifierKey(text.trim());
  } catch (e) {
    throw new SealtrailError('KEY_INVALID', `--key ${arg}: ${errorMessage(e)}`, { cause: e });
  }
}

/** Loads every `--key`; at least one is required. @throws SealtrailError USAGE / KEY_INVALID */
export function loadTrustedKeys(args: readonly string[] | undefined, cwd: string): Verifier[] {
  if (!args || args.length === 0) {
    throw new SealtrailError('USAGE', 'give at least one trusted public key with --key FILE.pub (the verifier never takes keys from the data)');
  }
  return args.map((a) => loadTrustedKey(a, cwd));
}

/**
 * The expected origin: required, one printable line (C2SP tlog-checkpoint), never from the data.
 * @throws SealtrailError USAGE
 */
export function requireOrigin(origin: string | undefined): string {
  if (origin === undefined || origin === '') {
    throw new SealtrailError('USAGE', 'give the log\'s origin with --origin ORIGIN (as in ledger.origin of the agent config); it is never taken from the data');
  }
  if (!/^[\x21-\x7e][\x20-\x7e]*$/.test(origin) || origin.length > 255) {
    throw new SealtrailError('USAGE', `--origin ${JSON.stringify(origin)}: must be 1..255 printable ASCII characters without newlines`);
  }
  return origin;
}

/**
 * A point in time for --since/--until: an RFC 3339 timestamp (`2026-11-28T04:00:00Z`), milliseconds
 * since the epoch, or a duration meaning "that long ago" (`24h`, `7d`).
 * @throws SealtrailError USAGE
 */
export function parseTimeArg(flag: string, v: string | undefined, now: number): number | null {
  if (v === undefined) return null;
  if (/^\d{10,}$/.test(v)) return Number(v);
  const d = parseDurationMs(v);
  if (d !== undefined && /[a-z]$/.test(v)) return now - d;
  if (/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(v)) {
    const t = Date.parse(v);
    if (Number.isFinite(t)) return t;
  }
  throw new SealtrailError('USAGE', `${flag} ${v}: expected an RFC 3339 time (2026-11-28T04:00:00Z), epoch milliseconds, or a duration ago (24h, 7d)`);
}

/** A duration for --expect-fresh. @throws SealtrailError USAGE */
export function parseDurationArg(flag: string, v: string | undefined): number | null {
  if (v === undefined) return null;
  const d = parseDurationMs(v);
  if (d === undefined || d <= 0) throw new SealtrailError('USAGE', `${flag} ${v}: expected a duration such as 30s, 10m, 1h`);
  return d;
}

/** Source options from the parsed flags. */
export function sourceOptions(
  values: { endpoint?: string; region?: string; 'force-path-style'?: boolean; config?: string },
  origin: string,
  cwd: string,
): SourceOptions {
  return {
    origin,
    cwd,
    ...(values.endpoint !== undefined ? { endpoint: values.endpoint } : {}),
    ...(values.region !== undefined ? { region: values.region } : {}),
    ...(values['force-path-style'] !== undefined ? { forcePathStyle: values['force-path-style'] } : {}),
    ...(values.config !== undefined ? { configFile: values.config } : {}),
  };
}

/** Wraps node:util parseArgs errors as usage errors. */
export function usageError(cmd: string, e: unknown, usage: string): SealtrailError {
  return new SealtrailError('USAGE', `${errorMessage(e)}\nusage: sealtrail ${cmd} ${usage}`, { cause: e });
}
