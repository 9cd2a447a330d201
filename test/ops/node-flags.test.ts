/**
 * The agent's node flags and environment (src/cli/node-flags.ts) must be the same wherever the agent
 * is started: `npm start`, the container image, and the benchmark (which measures what ships).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AGENT_ENV, AGENT_NODE_FLAGS } from '../../src/cli/node-flags.js';

const read = (p: string): string => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

describe('agent node flags', () => {
  it('are flags of the form --name or --name=number that this node accepts', () => {
    expect(AGENT_NODE_FLAGS.length).toBeGreaterThan(0);
    for (const f of AGENT_NODE_FLAGS) expect(f).toMatch(/^--[a-z-]+(=\d+)?$/);
    // node refuses an unknown flag ("bad option", exit 9): a misspelt flag would stop the agent.
    const r = spawnSync(process.execPath, [...AGENT_NODE_FLAGS, '-e', 'process.exit(0)'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('npm start passes exactly these flags to node before the script', () => {
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start!;
    const env = Object.entries(AGENT_ENV).map(([k, v]) => `${k}=${v} `).join('');
    expect(start).toBe(`${env}node ${AGENT_NODE_FLAGS.join(' ')} dist/src/cli/bin.js agent --config config/agent.yaml`);
  });

  it('the Dockerfile ENTRYPOINT passes exactly these flags to node before the script', () => {
    const line = read('Dockerfile').split('\n').find((l) => l.startsWith('ENTRYPOINT'));
    expect(line).toBeDefined();
    const argv = JSON.parse(line!.slice('ENTRYPOINT'.length).trim()) as string[];
    expect(argv).toEqual(['node', ...AGENT_NODE_FLAGS, '/app/dist/src/cli/bin.js']);
  });

  it('the benchmark harness starts agents with them unless an experiment overrides them', () => {
    expect(read('bench/procs.ts')).toMatch(/o\.nodeFlags \?\? AGENT_NODE_FLAGS/);
    expect(read('bench/procs.ts')).toMatch(/\{ \.\.\.AGENT_ENV, \.\.\.process\.env \}/);
  });

  it('the environment: names and values a shell and the Dockerfile take as they are, set by ENV in the image', () => {
    expect(Object.keys(AGENT_ENV).length).toBeGreaterThan(0);
    const envLines = read('Dockerfile').split('\n').filter((l) => l.startsWith('ENV '));
    for (const [k, v] of Object.entries(AGENT_ENV)) {
      expect(k).toMatch(/^[A-Z_][A-Z0-9_]*$/);
      expect(v).toMatch(/^[A-Za-z0-9._-]+$/); // no quoting needed in package.json's shell line or the Dockerfile
      expect(envLines).toContain(`ENV ${k}=${v}`);
    }
  });
});
