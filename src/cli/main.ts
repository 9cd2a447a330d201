/**
 * The `sealtrail` command line: dispatches to one module per command (src/cli/commands/*.ts).
 * Each command returns its exit code; bin.ts turns it into the process exit code.
 */
import { SealtrailError, errorMessage } from '../errors.js';
import { packageVersion as version } from '../version.js';
import { type CliIO, type CommandModule, EXIT } from './io.js';

const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  agent: { summary: 'agent --config FILE                 run the agent', load: () => import('./commands/agent.js') },
  keygen: { summary: 'keygen --dir DIR [--name NAME]      write DIR/NAME.key (0600) and DIR/NAME.pub', load: () => import('./commands/keygen.js') },
  inspect: { summary: 'inspect FILE [--json]               show one segment: header, checkpoint, entries', load: () => import('./commands/inspect.js') },
  verify: { summary: 'verify SOURCE... --key PUB --origin ORIGIN [--json] [--expect-fresh DUR]', load: () => import('./commands/verify.js') },
  prove: { summary: 'prove SOURCE --index N [--out FILE]  inclusion proof of one entry', load: () => import('./commands/prove.js') },
  'verify-proof': { summary: 'verify-proof FILE --key PUB         check a proof offline', load: () => import('./commands/verify-proof.js') },
  export: { summary: 'export SOURCE --key PUB --origin ORIGIN  verified entries as OTLP JSON lines', load: () => import('./commands/export.js') },
  'check-destinations': { summary: 'check-destinations --config FILE    the write-once canary', load: () => import('./commands/check-destinations.js') },
};


function usage(): string {
  return [
    'sealtrail — tamper-evident OpenTelemetry log agent',
    '',
    'Usage: sealtrail COMMAND [options]',
    '',
    'Commands:',
    ...Object.values(COMMANDS).map((c) => `  sealtrail ${c.summary}`),
    '',
    'Options: --help, --version',
    '',
    'Exit codes: 0 success / intact, 1 integrity findings, 2 usage, configuration or I/O error.',
    'Documentation: README.md and docs/ in the package.',
    '',
  ].join('\n');
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    (cmd === undefined ? io.stderr : io.stdout).write(usage());
    return cmd === undefined ? EXIT.ERROR : EXIT.OK;
  }
  if (cmd === '--version' || cmd === '-v') {
    io.stdout.write(`sealtrail ${version()}\n`);
    return EXIT.OK;
  }
  const entry = COMMANDS[cmd];
  if (!entry) {
    io.stderr.write(`sealtrail: unknown command "${cmd}"; run "sealtrail --help" for the list\n`);
    return EXIT.ERROR;
  }
  try {
    const mod = await entry.load();
    return await mod.run(rest, io);
  } catch (e) {
    const prefix = e instanceof SealtrailError ? `sealtrail ${cmd}: ` : `sealtrail ${cmd}: internal error: `;
    io.stderr.write(`${prefix}${errorMessage(e)}\n`);
    return EXIT.ERROR;
  }
}
