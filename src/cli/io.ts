/** What a command needs from the process; injected so commands are testable in-process. */
export interface CliIO {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

/** Exit codes, part of the public contract (DESIGN.md). */
export const EXIT = {
  /** success; for verify: the log is intact */
  OK: 0,
  /** integrity findings (verify, verify-proof, export) */
  FINDINGS: 1,
  /** usage, configuration or I/O error: could not do the job (never means "tampered") */
  ERROR: 2,
} as const;

export type CommandModule = { run(argv: string[], io: CliIO): Promise<number> };
