import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // The pinned AWS SDK warns once per process that its 2027 releases need Node 22 (we pin it in
    // the lock file; the image runs Node 24). Silence it in test output only.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Several suites start agents and servers on loopback; run files in parallel
    // processes but keep the count at the machine's core count.
    pool: 'forks',
    maxWorkers: 2,
  },
});
