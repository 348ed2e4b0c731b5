import crypto from 'node:crypto';
import { Redis } from 'ioredis';
import { freshTestDatabaseUrl } from './database.js';
import { startTestS3 } from './s3.js';

/** The Redis the scale-out tests use (BullMQ queues under a prefix of their own). */
export function testRedisUrl(): string {
  return process.env.VIZDEX_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
}

export interface ScaleOutEngines {
  /** What a vizdex process needs to run on these engines (add it to its environment). */
  env: Record<string, string>;
  /** Drops the database, stops the S3 server, removes the queues' keys from Redis. */
  close(): Promise<void>;
}

/**
 * Fresh scale-out engines for one test: a PostgreSQL database of its own, BullMQ queues under a
 * prefix of their own on the test Redis, media in a bucket of an in-process S3 server, and the server
 * key every process of one deployment must share.
 */
export async function provisionScaleOut(): Promise<ScaleOutEngines> {
  const database = await freshTestDatabaseUrl();
  const s3 = await startTestS3().catch(async (error: unknown) => {
    await database.drop();
    throw error;
  });
  const bucket = `vizdex-${crypto.randomBytes(4).toString('hex')}`;
  const redisPrefix = `vizdex-test-${crypto.randomBytes(6).toString('hex')}`;
  await s3.createBucket(bucket);
  return {
    env: {
      VIZDEX_DATABASE_URL: database.url,
      VIZDEX_REDIS_URL: testRedisUrl(),
      VIZDEX_REDIS_PREFIX: redisPrefix,
      VIZDEX_STORAGE: `s3://${bucket}/media`,
      VIZDEX_STORAGE_S3_ENDPOINT: s3.endpoint,
      VIZDEX_STORAGE_S3_ACCESS_KEY_ID: s3.env.AWS_ACCESS_KEY_ID!,
      VIZDEX_STORAGE_S3_SECRET_ACCESS_KEY: s3.env.AWS_SECRET_ACCESS_KEY!,
      VIZDEX_SECRET_KEY: crypto.randomBytes(32).toString('base64url'),
      AWS_ACCESS_KEY_ID: s3.env.AWS_ACCESS_KEY_ID!,
      AWS_SECRET_ACCESS_KEY: s3.env.AWS_SECRET_ACCESS_KEY!,
      AWS_REGION: 'us-east-1',
      VIZDEX_S3_FORCE_PATH_STYLE: 'true',
    },
    async close() {
      await s3.close();
      await database.drop();
      await deleteRedisKeys(`${redisPrefix}:*`);
    },
  };
}

async function deleteRedisKeys(pattern: string): Promise<void> {
  const redis = new Redis(testRedisUrl(), { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
