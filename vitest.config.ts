import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds dist/ once, for the tests that run the real `ipckit` binary.
    globalSetup: ['test/setup/build.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: run files two at a time so multi-process tests keep their watchdogs honest.
    maxWorkers: 2,
    pool: 'forks',
  },
});
