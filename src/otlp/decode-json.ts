import type { DecodeLimits, DecodeResult } from './types.js';

/** Placeholder while the JSON decoder is written. */
export function decodeLogsJson(_body: Uint8Array, _limits: DecodeLimits): DecodeResult {
  return { ok: false, message: 'request: OTLP/JSON decoding is not implemented yet' };
}
