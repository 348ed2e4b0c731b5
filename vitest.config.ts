import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each file gets its own temp data dir; two at a time suits a 2-core machine.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: { name: 'embedded', include: ['src/**/*.test.ts', 'test/**/*.test.ts'] },
      },
      {
        // The whole HTTP suite again on the scale-out engines: PostgreSQL, BullMQ on Redis, S3 (s3rver).
        extends: true,
        test: { name: 'scale-out', include: ['test/http/**/*.test.ts'], env: { VIZDEX_TEST_MODE: 'scaleout' } },
      },
    ],
  },
});
