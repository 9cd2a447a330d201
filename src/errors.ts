/**
 * Typed errors with a closed `code` (STYLE.md habit 1). Grouped as validation (bad input or
 * config), verification (integrity findings are data, not exceptions, but a verifier that cannot
 * proceed throws one of these), policy, and internal. `cause` keeps the underlying error.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_IO'
  | 'KEY_INVALID'
  | 'KEY_PERMISSIONS'
  | 'KEY_MISSING'
  | 'LEDGER_CORRUPT'
  | 'LEDGER_IO'
  | 'LEDGER_CLOSED'
  | 'FORMAT_UNSUPPORTED'
  | 'USAGE'
  | 'IO'
  | 'INTERNAL';

export class SealtrailError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SealtrailError';
    this.code = code;
  }
}

/** Narrow an unknown thrown value to a message without leaking stack traces to users. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
