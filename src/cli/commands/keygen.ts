/**
 * `sealtrail keygen --dir DIR [--name NAME] [--key-name KEYNAME]`: write DIR/NAME.key (0600) and
 * DIR/NAME.pub (0644) and print the verifier key. Never overwrites (exit 2 with the reason).
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { SealtrailError, errorMessage } from '../../errors.js';
import { writeKeyPair } from '../../keys/files.js';
import { type CliIO, EXIT } from '../io.js';

const USAGE = `Usage: sealtrail keygen --dir DIR [--name NAME] [--key-name KEYNAME]

Writes a new Ed25519 key pair:
  DIR/NAME.key   private key, mode 0600 (keep it secret; the agent refuses a key others can read)
  DIR/NAME.pub   verifier key, give it to whoever runs "sealtrail verify --key"
Options:
  --dir DIR          directory for the key files (created with mode 0700 if missing)
  --name NAME        file name without extension (default: signing)
  --key-name NAME    the key's name inside signatures (default: NAME); the C2SP convention is to
                     use the log's origin, e.g. sealtrail.example/node-a
Existing files are never overwritten.
`;

export async function run(argv: string[], io: CliIO): Promise<number> {
  let values: { dir?: string; name?: string; 'key-name'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        dir: { type: 'string' },
        name: { type: 'string' },
        'key-name': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    io.stderr.write(`sealtrail keygen: ${errorMessage(e)}\n\n${USAGE}`);
    return EXIT.ERROR;
  }
  if (values.help) {
    io.stdout.write(USAGE);
    return EXIT.OK;
  }
  if (values.dir === undefined || values.dir === '') {
    io.stderr.write(`sealtrail keygen: --dir is required\n\n${USAGE}`);
    return EXIT.ERROR;
  }
  const name = values.name ?? 'signing';
  const dir = path.resolve(io.cwd, values.dir);
  try {
    const r = await writeKeyPair(dir, name, values['key-name'] ?? name);
    io.stdout.write(
      [
        `private key: ${r.keyPath} (mode 0600, keep it secret)`,
        `public key:  ${r.pubPath}`,
        `verifier key: ${r.verifierKey}`,
        '',
      ].join('\n'),
    );
    return EXIT.OK;
  } catch (e) {
    const msg = e instanceof SealtrailError ? e.message : `internal error: ${errorMessage(e)}`;
    io.stderr.write(`sealtrail keygen: ${msg}\n`);
    return EXIT.ERROR;
  }
}
