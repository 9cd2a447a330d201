/** `sealtrail agent --config FILE`: run the agent until SIGTERM/SIGINT. */
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../../config/load.js';
import { SealtrailError, errorMessage } from '../../errors.js';
import { runAgent } from '../../main.js';
import { createLogger } from '../../telemetry/logger.js';
import { type CliIO, EXIT } from '../io.js';

const USAGE = 'usage: sealtrail agent --config FILE\n';

export async function run(argv: string[], io: CliIO): Promise<number> {
  let configPath: string | undefined;
  try {
    const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } }, strict: true });
    if (values.help) {
      io.stdout.write(USAGE);
      return EXIT.OK;
    }
    configPath = values.config;
  } catch (e) {
    io.stderr.write(`sealtrail agent: ${errorMessage(e)}\n${USAGE}`);
    return EXIT.ERROR;
  }
  if (!configPath) {
    io.stderr.write(`sealtrail agent: --config FILE is required (the embedded default is config/agent.yaml)\n${USAGE}`);
    return EXIT.ERROR;
  }
  const cfg = loadConfigFile(configPath);
  const log = createLogger(cfg.telemetry.logs.level);
  try {
    return await runAgent(cfg, log);
  } catch (e) {
    if (e instanceof SealtrailError) {
      io.stderr.write(`sealtrail agent: ${e.message}\n`);
      return EXIT.ERROR;
    }
    throw e;
  }
}
