#!/usr/bin/env node
// npm "install" step: builds the optional native hashing addon (native/sealtrail_hash.c ->
// build/Release/sealtrail_hash.node) with the node-gyp that ships inside npm. The addon only makes
// the ledger faster — batch hashing (src/ledger/native-hash.ts falls back to node:crypto with
// identical results) and, on Linux, its commit and publishing I/O as single thread-pool jobs (the
// fallback is the same steps through node:fs) — so this script never fails an install: any problem
// prints one notice line and exits 0.
// SEALTRAIL_SKIP_NATIVE=1 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const notice = (why) => console.log(`sealtrail: native hashing addon not built (${why}); using the node:crypto fallback`);

/** node-gyp's CLI: npm's bundled copy first (npm_execpath = .../npm/bin/npm-cli.js), then next to node. */
function findNodeGyp() {
  const require = createRequire(import.meta.url);
  const npmDirs = [];
  if (process.env.npm_execpath) npmDirs.push(join(dirname(process.env.npm_execpath), '..'));
  npmDirs.push(join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm'));
  npmDirs.push(join(dirname(process.execPath), 'node_modules', 'npm')); // Windows layout
  for (const dir of npmDirs) {
    try {
      return require.resolve('node-gyp/bin/node-gyp.js', { paths: [dir] });
    } catch {
      // try the next place
    }
  }
  return undefined;
}

try {
  if (process.env.SEALTRAIL_SKIP_NATIVE === '1') {
    notice('SEALTRAIL_SKIP_NATIVE=1');
  } else if (!existsSync(join(root, 'binding.gyp'))) {
    notice('binding.gyp missing');
  } else {
    const gyp = findNodeGyp();
    if (gyp === undefined) {
      notice('node-gyp not found next to npm');
    } else {
      // npm passes its nodedir setting as npm_config_nodedir, which node-gyp reads; the timeout
      // bounds a header download on a machine without network.
      const r = spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: root, encoding: 'utf8', timeout: 180_000, maxBuffer: 16 * 1024 * 1024 });
      if (r.status === 0) {
        console.log('sealtrail: native hashing addon built (build/Release/sealtrail_hash.node)');
      } else {
        const lines = `${r.stderr ?? ''}\n${r.error ? r.error.message : ''}`.split('\n').filter((l) => /\S/.test(l) && !l.startsWith('gyp info'));
        notice(`node-gyp ${r.error ? 'failed to run' : `exited with ${r.status ?? r.signal}`}: ${(lines.find((l) => /ERR!.*(error|Error)|error:/.test(l)) ?? lines[0] ?? 'no output').trim()}`);
      }
    }
  }
} catch (e) {
  notice(e instanceof Error ? e.message : String(e));
}
process.exit(0);
