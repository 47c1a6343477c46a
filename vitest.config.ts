import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs no server; `integration` (files named *.integration.test.ts) talks to a
// real Kafka broker and PostgreSQL, started by its global setup when KAFKA_BROKERS is not set.
export default defineConfig({
  test: {
    // vitest's default leaves a core free: one worker on a 2-core machine, where the unit tests
    // then took 219 s of CI's time instead of 152 s. Integration files run one at a time anyway.
    maxWorkers: 2,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['runner/test/**/*.test.ts'],
          exclude: ['runner/test/**/*.integration.test.ts', '**/node_modules/**'],
          // Two files at a time on 2 cores: CPU-bound tests (encoding, fuzzing) take seconds.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['runner/test/**/*.integration.test.ts'],
          globalSetup: ['runner/test/setup/integration.global.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // One broker and one database: files run one after another.
          fileParallelism: false,
        },
      },
    ],
  },
});
