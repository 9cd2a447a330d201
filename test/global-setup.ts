/**
 * Vitest global setup: tests that run the real CLI or agent as a child process (crash tests with
 * kill -9, signal tests, the image test) spawn the compiled `dist/`. Rebuild it once per test run
 * when any source is newer than the build, so those tests never run stale code.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

export default function setup(): void {
  // For in-process test files while someone else's half-edited sources do not compile (a shared
  // working tree); tests that spawn dist/ then run whatever was built last.
  if (process.env.SEALTRAIL_TEST_NO_BUILD === '1') return;
  let built = 0;
  try {
    built = statSync('dist/.build-stamp').mtimeMs;
  } catch {
    built = 0;
  }
  const sources = Math.max(newestMtime('src'), newestMtime('bench'), newestMtime('test/fixtures'), statSync('tsconfig.build.json').mtimeMs);
  if (sources <= built) return;
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  execFileSync(process.execPath, ['-e', "require('fs').writeFileSync('dist/.build-stamp', String(Date.now()))"]);
}
