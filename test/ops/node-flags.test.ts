/**
 * The agent's node flags (src/cli/node-flags.ts) must be the same wherever the agent is started:
 * `npm start`, the container image's ENTRYPOINT, and the benchmark (which measures what ships).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AGENT_NODE_FLAGS } from '../../src/cli/node-flags.js';

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
    expect(start).toBe(`node ${AGENT_NODE_FLAGS.join(' ')} dist/src/cli/bin.js agent --config config/agent.yaml`);
  });

  it('the Dockerfile ENTRYPOINT passes exactly these flags to node before the script', () => {
    const line = read('Dockerfile').split('\n').find((l) => l.startsWith('ENTRYPOINT'));
    expect(line).toBeDefined();
    const argv = JSON.parse(line!.slice('ENTRYPOINT'.length).trim()) as string[];
    expect(argv).toEqual(['node', ...AGENT_NODE_FLAGS, '/app/dist/src/cli/bin.js']);
  });

  it('the benchmark harness starts agents with them unless an experiment overrides them', () => {
    expect(read('bench/procs.ts')).toMatch(/o\.nodeFlags \?\? AGENT_NODE_FLAGS/);
  });
});
