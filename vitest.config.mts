import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Stops the shared Temporal dev server (started on first use) when the run ends.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration suites start real servers on loopback; two cores do not like many at once.
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
