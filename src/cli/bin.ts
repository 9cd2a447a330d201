#!/usr/bin/env node
/** `sealtrail` executable: runs the CLI and sets the exit code (0 ok, 1 findings, 2 error). */
import { errorMessage } from '../errors.js';
import { main } from './main.js';
import { type CliIO, EXIT } from './io.js';

const io: CliIO = { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
main(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`sealtrail: internal error: ${errorMessage(e)}\n`);
    process.exitCode = EXIT.ERROR;
  },
);
