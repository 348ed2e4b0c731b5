import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrateToLatest, openSqlite } from '../db/connect.js';
import type { Database } from '../db/schema.js';
import type { JobHandlers, JobPayloads } from './job-queue.js';
import { SqlJobQueue } from './sql-job-queue.js';

type Calls = { name: keyof JobPayloads; payload: unknown }[];

function recordingHandlers(calls: Calls, behaviour: { failIngest?: boolean; block?: Promise<void> } = {}) {
  const failures: Error[] = [];
  const handlers: JobHandlers = {
    'dataset.ingest': {
      run: async (payload) => {
        calls.push({ name: 'dataset.ingest', payload });
        await behaviour.block;
        if (behaviour.failIngest) throw new Error('boom');
      },
      onFailed: async (_payload, error) => void failures.push(error),
    },
    'media.ingest': { run: async (payload) => void calls.push({ name: 'media.ingest', payload }), onFailed: async () => undefined },
    'dataset.index': { run: async (payload) => void calls.push({ name: 'dataset.index', payload }), onFailed: async () => undefined },
    'dataset.partial-index': { run: async (payload) => void calls.push({ name: 'dataset.partial-index', payload }), onFailed: async () => undefined },
    'dataset.knn-shard': { run: async (payload) => void calls.push({ name: 'dataset.knn-shard', payload }), onFailed: async () => undefined },
    'dataset.knn-merge': { run: async (payload) => void calls.push({ name: 'dataset.knn-merge', payload }), onFailed: async () => undefined },
    'dataset.export': { run: async (payload) => void calls.push({ name: 'dataset.export', payload }), onFailed: async () => undefined },
  };
  return { handlers, failures };
}

describe('SqlJobQueue', () => {
  let dir: string;
  let db: Kysely<Database>;
  const queues: SqlJobQueue[] = [];
  const makeQueue = (leaseMs = 60_000) => {
    const queue = new SqlJobQueue(db, { concurrency: 2, leaseMs, pollMs: 20, stopTimeoutMs: 200 });
    queues.push(queue);
    return queue;
  };

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vizdex-queue-'));
    db = openSqlite(dir);
    await migrateToLatest(db);
  });
  afterEach(async () => {
    await Promise.all(queues.splice(0).map((q) => q.stop()));
    await db.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs each job once, even when enqueued twice under the same id', async () => {
    const queue = makeQueue();
    const calls: Calls = [];
    await queue.enqueue('dataset.index', { datasetId: 'd', taskId: 't' }, { jobId: 'same' });
    await queue.enqueue('dataset.index', { datasetId: 'd', taskId: 't' }, { jobId: 'same' });
    queue.start(recordingHandlers(calls).handlers);
    await queue.drained(10);
    expect(calls).toEqual([{ name: 'dataset.index', payload: { datasetId: 'd', taskId: 't' } }]);
  });

  it('persists jobs: a queue started later on the same database runs what was enqueued before', async () => {
    await makeQueue().enqueue('media.ingest', { datasetId: 'd', taskId: 't', mediaIds: ['a', 'b'] }, { jobId: 'j1' });
    const calls: Calls = [];
    const runner = makeQueue();
    runner.start(recordingHandlers(calls).handlers);
    await runner.drained(10);
    expect(calls).toEqual([{ name: 'media.ingest', payload: { datasetId: 'd', taskId: 't', mediaIds: ['a', 'b'] } }]);
  });

  it('retries a failing job and reports it once after the last attempt', async () => {
    const queue = makeQueue();
    const calls: Calls = [];
    const { handlers, failures } = recordingHandlers(calls, { failIngest: true });
    await queue.enqueue('dataset.ingest', { datasetId: 'd', taskId: 't' }, { jobId: 'j', maxAttempts: 2 });
    queue.start(handlers);
    await queue.drained(10);
    expect(calls).toHaveLength(2);
    expect(failures.map((e) => e.message)).toEqual(['boom']);
    const row = await db.selectFrom('jobs').selectAll().where('id', '=', 'j').executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'failed', attempts: 2, last_error: 'boom' });
  });

  it('lets another runner take over a job whose lease lapsed', async () => {
    const stuck = makeQueue(300);
    let release!: () => void;
    const block = new Promise<void>((resolve) => (release = resolve));
    const firstCalls: Calls = [];
    await stuck.enqueue('dataset.ingest', { datasetId: 'd', taskId: 't' }, { jobId: 'j' });
    stuck.start(recordingHandlers(firstCalls, { block }).handlers);
    await expect.poll(() => firstCalls.length).toBe(1);
    // The first runner stops heartbeating (as a frozen or dead process would).
    await stuck.stop();

    const calls: Calls = [];
    const rescuer = makeQueue(300);
    rescuer.start(recordingHandlers(calls).handlers);
    await rescuer.drained(10);
    expect(calls).toHaveLength(1);
    release();
  });
});

describe('SqlJobQueue start-up reclaim', () => {
  let dir: string;
  let db: Kysely<Database>;
  let queue: SqlJobQueue | undefined;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vizdex-queue-'));
    db = openSqlite(dir);
    await migrateToLatest(db);
  });
  afterEach(async () => {
    await queue?.stop();
    await db.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A job claimed by `lockedBy` whose lease still has an hour to run. */
  async function insertClaimedJob(id: string, lockedBy: string): Promise<void> {
    const now = new Date();
    await db
      .insertInto('jobs')
      .values({
        id,
        name: 'dataset.index',
        payload: JSON.stringify({ datasetId: 'd', taskId: id }),
        status: 'running',
        attempts: 1,
        max_attempts: 5,
        run_after: now.toISOString(),
        locked_by: lockedBy,
        locked_until: new Date(now.getTime() + 3_600_000).toISOString(),
        last_error: null,
        created_at: now.toISOString(),
        updated_at: now.toISOString(),
      })
      .execute();
  }

  it('resumes at once the jobs of an earlier process that had the same pid (a container restarted as pid 1)', async () => {
    await insertClaimedJob('earlier', `${os.hostname()}:${process.pid}:earlier1:abcdef`);
    const calls: Calls = [];
    queue = new SqlJobQueue(db, { concurrency: 1, leaseMs: 3_600_000, pollMs: 20, stopTimeoutMs: 200 });
    queue.start(recordingHandlers(calls).handlers);
    // Not after the hour-long lease: right away.
    await expect.poll(() => calls, { timeout: 5_000 }).toEqual([{ name: 'dataset.index', payload: { datasetId: 'd', taskId: 'earlier' } }]);
    await queue.drained(10);
  });

  it('leaves alone the jobs of a live process on this host until their lease lapses', async () => {
    await insertClaimedJob('held', `${os.hostname()}:${process.ppid}:other123:abcdef`);
    const calls: Calls = [];
    queue = new SqlJobQueue(db, { concurrency: 1, leaseMs: 3_600_000, pollMs: 20, stopTimeoutMs: 200 });
    queue.start(recordingHandlers(calls).handlers);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(calls).toEqual([]);
    const row = await db.selectFrom('jobs').selectAll().where('id', '=', 'held').executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'running', locked_by: `${os.hostname()}:${process.ppid}:other123:abcdef` });
  });
});
