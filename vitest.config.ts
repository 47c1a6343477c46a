import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs no server; `integration` (files named *.integration.test.ts) talks to a
// real Kafka broker and PostgreSQL, started by its global setup when KAFKA_BROKERS is not set.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['runner/test/**/*.test.ts'],
          exclude: ['runner/test/**/*.integration.test.ts', '**/node_modules/**'],
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
