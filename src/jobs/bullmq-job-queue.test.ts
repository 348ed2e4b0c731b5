import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BullmqJobQueue, fromBullmqJobId, JOB_QUEUES, redisReachable, toBullmqJobId, type BullmqJobQueueOptions } from './bullmq-job-queue.js';
import type { JobHandlers, JobName, JobPayloads } from './job-queue.js';
import { jobIds } from './pipeline.js';

// Real Redis (CI runs one, as does a dev machine for the scale-out mode); each test has its own key prefix.
const REDIS_URL = process.env.VIZDEX_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const FIXTURE_WORKER = fileURLToPath(new URL('../../test/fixtures/bullmq-worker.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

type Calls = { name: JobName; payload: unknown; by?: string }[];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function recordingHandlers(calls: Calls, behaviour: { by?: string; failIngest?: boolean; block?: Promise<void>; runMs?: number } = {}) {
  const failures: Error[] = [];
  const record = async (name: JobName, payload: unknown) => {
    calls.push({ name, payload, ...(behaviour.by ? { by: behaviour.by } : {}) });
    if (behaviour.runMs) await sleep(behaviour.runMs);
  };
  const handlers: JobHandlers = {
    'dataset.ingest': {
      run: async (payload) => {
        await record('dataset.ingest', payload);
        await behaviour.block;
        if (behaviour.failIngest) throw new Error('boom');
      },
      onFailed: async (_payload, error) => void failures.push(error),
    },
    'media.ingest': { run: (payload) => record('media.ingest', payload), onFailed: async () => undefined },
    'dataset.index': { run: (payload) => record('dataset.index', payload), onFailed: async () => undefined },
    'dataset.partial-index': { run: (payload) => record('dataset.partial-index', payload), onFailed: async () => undefined },
    'dataset.knn-shard': { run: (payload) => record('dataset.knn-shard', payload), onFailed: async () => undefined },
    'dataset.knn-merge': { run: (payload) => record('dataset.knn-merge', payload), onFailed: async () => undefined },
    'dataset.export': { run: (payload) => record('dataset.export', payload), onFailed: async () => undefined },
  };
  return { handlers, failures };
}

describe('BullmqJobQueue', () => {
  let admin: Redis;
  let prefix = '';
  let testNumber = 0;
  const queues: BullmqJobQueue[] = [];
  const makeQueue = (options: Partial<BullmqJobQueueOptions> = {}) => {
    const queue = new BullmqJobQueue({
      redisUrl: REDIS_URL,
      prefix,
      concurrency: { default: 2 },
      maxAttempts: 3,
      lockMs: 30_000,
      backoffMs: 20,
      stopTimeoutMs: 2_000,
      ...options,
    });
    queues.push(queue);
    return queue;
  };
  const ingest = (taskId: string): JobPayloads['dataset.ingest'] => ({ datasetId: 'd', taskId });

  beforeAll(async () => {
    admin = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    await admin.ping();
  });
  afterAll(async () => {
    await admin.quit();
  });
  // A fresh prefix per test (unique per process and run), so tests and parallel runs never share keys.
  afterEach(async () => {
    await Promise.all(queues.splice(0).map((q) => q.stop()));
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) await admin.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  });
  /** This test's Redis connections, by id: each worker's blocking one is named `<prefix>:<queue>:w:<name>`. */
  const ourClients = async () =>
    ((await admin.client('LIST')) as string)
      .split('\n')
      .filter((line) => line.includes(` name=${prefix}:`))
      .map((line) => ({ id: /(?:^|\s)id=(\d+)/.exec(line)?.[1] ?? '', worker: line.includes(':w:') }));
  const waitForWorkers = (instances: number) =>
    expect
      .poll(async () => (await ourClients()).filter((c) => c.worker).length)
      .toBeGreaterThanOrEqual(instances * new Set(Object.values(JOB_QUEUES)).size);
  const nextPrefix = () => (prefix = `vizdex-test-${process.pid}-${Date.now().toString(36)}-${++testNumber}`);

  it('runs each job once, even when enqueued twice under the same id; a finished id may be enqueued again', async () => {
    nextPrefix();
    const queue = makeQueue();
    const calls: Calls = [];
    await queue.enqueue('dataset.index', { datasetId: 'd', taskId: 't' }, { jobId: jobIds.datasetIndex('t') });
    await queue.enqueue('dataset.index', { datasetId: 'd', taskId: 'other' }, { jobId: jobIds.datasetIndex('t') });
    queue.start(recordingHandlers(calls).handlers);
    await queue.drained(10);
    expect(calls).toEqual([{ name: 'dataset.index', payload: { datasetId: 'd', taskId: 't' } }]);

    // Completed jobs are removed, as the SQL queue deletes them: the same id runs again.
    await queue.enqueue('dataset.index', { datasetId: 'd', taskId: 't' }, { jobId: jobIds.datasetIndex('t') });
    await queue.drained(10);
    expect(calls).toHaveLength(2);
  });

  it('keeps jobs in Redis: an enqueue-only instance closes cleanly, and a worker started later runs its jobs', async () => {
    nextPrefix();
    const api = makeQueue();
    await api.enqueue('media.ingest', { datasetId: 'd', taskId: 't', mediaIds: ['a', 'b'] }, { jobId: jobIds.mediaIngest('t', 'a') });
    await api.enqueue('dataset.export', { datasetId: 'd', exportId: 'e' }, { jobId: 'e:dataset.export' });
    await api.stop();

    const calls: Calls = [];
    const worker = makeQueue();
    worker.start(recordingHandlers(calls).handlers);
    await worker.drained(10);
    expect(calls).toEqual(
      expect.arrayContaining([
        { name: 'media.ingest', payload: { datasetId: 'd', taskId: 't', mediaIds: ['a', 'b'] } },
        { name: 'dataset.export', payload: { datasetId: 'd', exportId: 'e' } },
      ]),
    );
    expect(calls).toHaveLength(2);
  });

  it('retries a failing job and reports it exactly once, with its error, after the last attempt', async () => {
    nextPrefix();
    const queue = makeQueue();
    const calls: Calls = [];
    const { handlers, failures } = recordingHandlers(calls, { failIngest: true });
    await queue.enqueue('dataset.ingest', ingest('t'), { jobId: jobIds.datasetIngest('t'), maxAttempts: 3 });
    queue.start(handlers);
    await queue.drained(10);
    await sleep(100);
    expect(calls).toHaveLength(3);
    expect(failures.map((e) => e.message)).toEqual(['boom']);
    const failed = await admin.zrange(`${prefix}:ingest:failed`, 0, -1);
    expect(failed.map(fromBullmqJobId)).toEqual(['t:dataset.ingest']);
    expect(await admin.hget(`${prefix}:ingest:${failed[0]}`, 'atm')).toBe('3');

    // The failed job is kept (7 days) and holds its id: enqueueing that id again does nothing.
    await queue.enqueue('dataset.ingest', ingest('t'), { jobId: jobIds.datasetIngest('t') });
    await queue.drained(10);
    expect(calls).toHaveLength(3);
    expect(failures).toHaveLength(1);
  });

  it('stop waits for the running job to finish', async () => {
    nextPrefix();
    const queue = makeQueue();
    const calls: Calls = [];
    let finished = false;
    const { handlers } = recordingHandlers(calls);
    handlers['dataset.index'].run = async (payload) => {
      calls.push({ name: 'dataset.index', payload });
      await sleep(300);
      finished = true;
    };
    await queue.enqueue('dataset.index', { datasetId: 'd', taskId: 't' }, { jobId: jobIds.datasetIndex('t') });
    queue.start(handlers);
    await expect.poll(() => calls.length).toBe(1);
    await queue.stop();
    expect(finished).toBe(true);
    expect(await admin.llen(`${prefix}:index:active`)).toBe(0);
    expect(await admin.exists(`${prefix}:index:${toBullmqJobId(jobIds.datasetIndex('t'))}`)).toBe(0);
  });

  it('stop is bounded; another worker takes over the job once its lock lapses, and runs it once', async () => {
    nextPrefix();
    const stuck = makeQueue({ lockMs: 1_000, stopTimeoutMs: 100 });
    const firstCalls: Calls = [];
    await stuck.enqueue('dataset.ingest', ingest('t'), { jobId: jobIds.datasetIngest('t') });
    stuck.start(recordingHandlers(firstCalls, { block: new Promise<void>(() => undefined) }).handlers);
    await expect.poll(() => firstCalls.length).toBe(1);
    const stopping = Date.now();
    await stuck.stop();
    expect(Date.now() - stopping).toBeLessThan(1_000);

    const calls: Calls = [];
    const rescuer = makeQueue({ lockMs: 1_000, stalledIntervalMs: 250 });
    rescuer.start(recordingHandlers(calls).handlers);
    await rescuer.drained(20);
    expect(calls).toEqual([{ name: 'dataset.ingest', payload: ingest('t') }]);
    expect(await admin.zcard(`${prefix}:ingest:failed`)).toBe(0);
  });

  it('fails a job whose worker died more often than maxStalledCount, and reports it once', async () => {
    nextPrefix();
    const stuck = makeQueue({ lockMs: 1_000, stopTimeoutMs: 50 });
    const firstCalls: Calls = [];
    await stuck.enqueue('dataset.ingest', ingest('t'), { jobId: jobIds.datasetIngest('t') });
    stuck.start(recordingHandlers(firstCalls, { block: new Promise<void>(() => undefined) }).handlers);
    await expect.poll(() => firstCalls.length).toBe(1);
    await stuck.stop();

    const calls: Calls = [];
    const rescuer = makeQueue({ lockMs: 1_000, stalledIntervalMs: 250, maxStalledCount: 0 });
    const { handlers, failures } = recordingHandlers(calls);
    rescuer.start(handlers);
    await rescuer.drained(20);
    await expect.poll(() => failures.map((e) => e.message)).toEqual(['job stalled more than allowable limit']);
    await sleep(100);
    expect(failures).toHaveLength(1);
    expect(calls).toEqual([]);
  });

  it('two instances share the work: 40 jobs, each run exactly once', async () => {
    nextPrefix();
    const calls: Calls = [];
    const a = makeQueue();
    const b = makeQueue();
    a.start(recordingHandlers(calls, { by: 'a', runMs: 15 }).handlers);
    b.start(recordingHandlers(calls, { by: 'b', runMs: 15 }).handlers);
    await waitForWorkers(2);
    const ids = Array.from({ length: 40 }, (_, i) => `m${i}`);
    for (const id of ids) {
      await (id.endsWith('1') ? b : a).enqueue('media.ingest', { datasetId: 'd', taskId: 't', mediaIds: [id] }, { jobId: jobIds.mediaIngest('t', id) });
    }
    await a.drained(10);
    const ran = calls.map((c) => (c.payload as JobPayloads['media.ingest']).mediaIds[0]);
    expect(ran.sort()).toEqual([...ids].sort());
    expect(calls.filter((c) => c.by === 'a').length).toBeGreaterThan(0);
    expect(calls.filter((c) => c.by === 'b').length).toBeGreaterThan(0);
  });

  it('a worker process killed with SIGKILL mid-job: another worker runs the job to completion, once', async () => {
    nextPrefix();
    const rescuer = makeQueue({ lockMs: 2_000, stalledIntervalMs: 300 });
    await rescuer.enqueue('dataset.ingest', ingest('t-kill'), { jobId: jobIds.datasetIngest('t-kill') });

    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE_WORKER, REDIS_URL, prefix, '2000'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    try {
      await expect.poll(() => output, { timeout: 15_000, interval: 50 }).toContain('started t-kill');
      expect(await admin.llen(`${prefix}:ingest:active`)).toBe(1);
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
    } finally {
      child.kill('SIGKILL');
    }

    const calls: Calls = [];
    rescuer.start(recordingHandlers(calls).handlers);
    await expect.poll(() => calls.length, { timeout: 10_000 }).toBe(1);
    await rescuer.drained(20);
    expect(calls).toEqual([{ name: 'dataset.ingest', payload: ingest('t-kill') }]);
    expect(output.match(/started t-kill/g)).toHaveLength(1);
    expect(await admin.zcard(`${prefix}:ingest:failed`)).toBe(0);
  });

  it('survives losing its Redis connections: workers reconnect and finish the queued jobs, enqueue works again', async () => {
    nextPrefix();
    const logs: string[] = [];
    const queue = makeQueue({ concurrency: { default: 1 }, log: (message) => logs.push(message) });
    const calls: Calls = [];
    queue.start(recordingHandlers(calls, { runMs: 10 }).handlers);
    const ids = Array.from({ length: 30 }, (_, i) => `m${i}`);
    for (const id of ids) {
      await queue.enqueue('media.ingest', { datasetId: 'd', taskId: 't', mediaIds: [id] }, { jobId: jobIds.mediaIngest('t', id) });
    }
    await expect.poll(() => calls.length).toBeGreaterThanOrEqual(3);

    // Kill this queue's connections only (producer, consumer, the workers' blocking ones): other tests share the server.
    await waitForWorkers(1);
    const ours = await ourClients();
    expect(ours.length).toBeGreaterThanOrEqual(2 + new Set(Object.values(JOB_QUEUES)).size);
    for (const { id } of ours) await admin.client('KILL', 'ID', id);
    expect(calls.length).toBeLessThan(ids.length);

    await queue.drained(20);
    const ran = calls.map((c) => (c.payload as JobPayloads['media.ingest']).mediaIds[0]);
    expect(ran.sort()).toEqual([...ids].sort());

    await queue.enqueue('dataset.export', { datasetId: 'd', exportId: 'after' }, { jobId: 'after:dataset.export' });
    await expect.poll(() => calls.some((c) => c.name === 'dataset.export')).toBe(true);
    expect(logs.some((m) => m.includes('connection lost'))).toBe(true);
  });
});

describe('BullmqJobQueue job ids', () => {
  it('maps our ids to ids BullMQ accepts, reversibly', () => {
    const ids = ['t1:dataset.ingest', 't1:media.ingest:m1', 'a:b:c:d', '42', '-7', '100%:x', 'plain', '%3A'];
    for (const id of ids) {
      const mapped = toBullmqJobId(id);
      expect(mapped).not.toContain(':');
      expect(`${Number.parseInt(mapped, 10)}`).not.toBe(mapped);
      expect(fromBullmqJobId(mapped)).toBe(id);
    }
    expect(toBullmqJobId('t1:media.ingest:m1')).toBe('t1%3Amedia.ingest%3Am1');
    expect(new Set(ids.map(toBullmqJobId)).size).toBe(ids.length);
  });
});

describe('redisReachable', () => {
  it('says whether Redis answers', async () => {
    expect(await redisReachable(REDIS_URL)).toBe(true);
    expect(await redisReachable('redis://127.0.0.1:1', 500)).toBe(false);
  });
});
