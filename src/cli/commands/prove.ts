// Placeholder so the CLI compiles while this command is being built; replaced by its implementation.
import { type CliIO, EXIT } from '../io.js';

export async function run(_argv: string[], io: CliIO): Promise<number> {
  io.stderr.write('sealtrail prove: not available in this build yet\n');
  return EXIT.ERROR;
}
