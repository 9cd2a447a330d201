import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cli } from '../e2e/helpers.js';

describe('sealtrail CLI entry', () => {
  it('--help lists every command of the public contract and the exit codes', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    for (const cmd of ['agent --config', 'keygen --dir', 'inspect FILE', 'verify SOURCE', 'prove SOURCE', 'verify-proof FILE', 'export SOURCE', 'check-destinations --config']) {
      expect(r.stdout).toContain(cmd);
    }
    expect(r.stdout).toMatch(/0 success.*1 integrity findings.*2 usage/s);
  });

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    const r = await cli('--version');
    expect(r).toMatchObject({ code: 0, stdout: `sealtrail ${pkg.version}\n` });
  });

  it('no command and unknown commands are usage errors (exit 2) with a hint', async () => {
    expect((await cli()).code).toBe(2);
    const r = await cli('verfy');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "verfy"');
    expect(r.stderr).toContain('sealtrail --help');
  });

  it('agent without --config, or with an invalid config, exits 2 naming the problem', async () => {
    const none = await cli('agent');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--config FILE is required');
    const missing = await cli('agent', '--config', '/nonexistent/agent.yaml');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read config file /nonexistent/agent.yaml');
    const bad = await cli('agent', '--bogus');
    expect(bad.code).toBe(2);
  });
});
