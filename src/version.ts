/** The package version, read from the nearest package.json named "sealtrail" (works from src/ and dist/src/). */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

export function packageVersion(): string {
  if (cached) return cached;
  let url = new URL('./', import.meta.url);
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'sealtrail' && pkg.version) return (cached = pkg.version);
    } catch {
      // not here; look one level up
    }
    url = new URL('../', url);
  }
  return (cached = 'unknown');
}
