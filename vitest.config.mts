import { defineConfig } from 'vitest/config';

// Files that load the whole machine on purpose (a server at 3× its capacity) run alone, after the
// rest: next to them, other files' promotions starve and their statistical checks go inconclusive.
const EXCLUSIVE = ['test/integration/fault-overload.test.ts'];

export default defineConfig({
  test: {
    // Stops the shared Temporal dev server (started on first use) when the run ends.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['test/**/*.test.ts'],
          exclude: EXCLUSIVE,
          // Integration suites start real servers on loopback; two cores do not like many at once.
          fileParallelism: true,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'alone',
          include: EXCLUSIVE,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
