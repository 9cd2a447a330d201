import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Several suites start agents and servers on loopback; run files in parallel
    // processes but keep the count at the machine's core count.
    pool: 'forks',
    maxWorkers: 2,
  },
});
