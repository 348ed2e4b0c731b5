import os from 'node:os';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { EnqueueOptions, JobHandler, JobHandlers, JobName, JobPayloads, JobQueue } from './job-queue.js';

/** One BullMQ queue per concern, so a long index never waits behind thousands of ingest batches. */
export type QueueName = 'ingest' | 'index' | 'export';

/** Which queue each job goes to. A `Record` over `JobName`: a new job without a queue is a compile error. */
export const JOB_QUEUES: Readonly<Record<JobName, QueueName>> = {
  'dataset.ingest': 'ingest',
  'media.ingest': 'ingest',
  'dataset.index': 'index',
  'dataset.partial-index': 'index',
  // A shard's k-NN search is multi-threaded itself: one at a time per worker, spread over workers.
  'dataset.knn-shard': 'index',
  'dataset.knn-merge': 'index',
  'dataset.export': 'export',
};

const QUEUE_NAMES: readonly QueueName[] = [...new Set(Object.values(JOB_QUEUES))];

/** Everything still to be done; completed jobs are removed and failed ones are done. */
const PENDING_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

const FAILED_JOB_TTL_S = 7 * 24 * 3600;

export interface BullmqJobQueueOptions {
  redisUrl: string;
  /** Key prefix in Redis (default 'vizdex'); processes sharing a prefix share the queues. */
  prefix?: string;
  /** Jobs run at once per queue by this process, e.g. `{ default: 1, ingest: os.availableParallelism() }`. */
  concurrency: Partial<Record<QueueName, number>> & { default: number };
  /** Attempts per job unless enqueue says otherwise; the last failure calls the handler's onFailed. */
  maxAttempts: number;
  /** BullMQ lockDuration: a killed worker's job is taken over after this, plus up to two stalledIntervalMs. */
  lockMs: number;
  /** How often workers look for jobs whose lock lapsed (default lockMs / 2, at least 500 ms). */
  stalledIntervalMs?: number;
  /** A job whose worker died this many times already is failed (and reported) the next time (default 2). */
  maxStalledCount?: number;
  /** First retry delay; doubles with each attempt (default 1000 ms). */
  backoffMs?: number;
  /** stop() waits this long for running jobs, then leaves them to another worker (default 10 s). */
  stopTimeoutMs?: number;
  log?: (message: string, error?: unknown) => void;
}

/**
 * The scale-out job queue: BullMQ on Redis, any number of processes enqueueing and working.
 *
 * Same contract as SqlJobQueue: a job id already waiting, running or delayed is not added again;
 * failures are retried with exponential back-off; `onFailed` is called once, after the last attempt;
 * a job whose worker dies is taken over by another worker once its lock (`lockMs`) lapses.
 *
 * Ids: BullMQ rejects custom ids containing ':' (unless there are exactly two, a legacy exception)
 * and ids that read as integers, so ids are stored escaped (see `toBullmqJobId`).
 * Completed jobs are removed at once, so their id may be enqueued again; failed jobs are kept
 * seven days for inspection, and for that long their id stays taken: an enqueue of it does nothing.
 * Our ids embed the task id, so a new task (e.g. a new reindex) always gets new ids.
 */
export class BullmqJobQueue implements JobQueue {
  private readonly prefix: string;
  private readonly queues: ReadonlyMap<QueueName, Queue>;
  /** Every Redis connection this instance opened, BullMQ's duplicates included: all are cut on an overdue stop. */
  private readonly connections: Redis[] = [];
  private workers: Worker[] = [];
  private handlers: JobHandlers | null = null;
  /** Errors thrown by our handlers; any other final failure (a job whose worker kept dying) is reported from the 'failed' event. */
  private readonly handlerErrors = new WeakSet<Error>();
  private readonly reports = new Set<Promise<void>>();
  private stopping: Promise<void> | null = null;

  constructor(private readonly options: BullmqJobQueueOptions) {
    this.prefix = options.prefix ?? 'vizdex';
    // An enqueue while Redis is away waits through ~5 reconnect tries (about 6 s), then fails (a 5xx, or a
    // retry of the job that enqueued it) rather than hanging a request. Before the first connect it waits.
    const producer = this.connect('producer', { maxRetriesPerRequest: 5 });
    const queues = new Map<QueueName, Queue>();
    for (const name of QUEUE_NAMES) {
      const queue = new Queue(name, { connection: producer, prefix: this.prefix });
      queue.on('error', (error) => {
        if (producer.status === 'ready') this.log(`job queue ${name}: error`, error);
      });
      queues.set(name, queue);
    }
    this.queues = queues;
  }

  async enqueue<N extends JobName>(name: N, payload: JobPayloads[N], options: EnqueueOptions): Promise<void> {
    await this.queue(JOB_QUEUES[name]).add(name, payload, {
      jobId: toBullmqJobId(options.jobId),
      attempts: options.maxAttempts ?? this.options.maxAttempts,
      backoff: { type: 'exponential', delay: this.options.backoffMs ?? 1000 },
      removeOnComplete: true,
      removeOnFail: { age: FAILED_JOB_TTL_S },
    });
  }

  start(handlers: JobHandlers): void {
    if (this.workers.length > 0 || this.stopping) throw new Error('BullmqJobQueue: start() may be called once');
    this.handlers = handlers;
    // Workers' commands wait for a reconnect rather than fail (BullMQ requires it of blocking connections).
    const consumer = this.connect('consumer', { maxRetriesPerRequest: null });
    const { concurrency, lockMs } = this.options;
    for (const name of QUEUE_NAMES) {
      const worker = new Worker(name, (job: Job) => this.process(job), {
        connection: consumer,
        prefix: this.prefix,
        name: `${os.hostname()}:${process.pid}`,
        concurrency: concurrency[name] ?? concurrency.default,
        lockDuration: lockMs,
        stalledInterval: this.options.stalledIntervalMs ?? Math.max(500, Math.floor(lockMs / 2)),
        maxStalledCount: this.options.maxStalledCount ?? 2,
      });
      worker.on('error', (error) => {
        // While Redis is away every retry fails; the connection's own log says so once.
        if (consumer.status === 'ready') this.log(`job queue ${name}: worker error`, error);
      });
      worker.on('failed', (job, error) => {
        if (job && !this.handlerErrors.has(error)) this.track(this.reportFailure(job, error));
      });
      this.workers.push(worker);
    }
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  async drained(pollMs = 100): Promise<void> {
    for (;;) {
      let pending = 0;
      for (const queue of this.queues.values()) {
        const counts = await queue.getJobCounts(...PENDING_STATES);
        pending += Object.values(counts).reduce((sum, n) => sum + n, 0);
      }
      if (pending === 0) return;
      await sleep(pollMs);
    }
  }

  private queue(name: QueueName): Queue {
    const queue = this.queues.get(name);
    if (!queue) throw new Error(`No queue ${name}`);
    return queue;
  }

  private async process(job: Job): Promise<void> {
    const handler = this.handlerFor(job.name);
    // Not retried: no attempt can succeed. Reported through the 'failed' event (there is no handler to tell).
    if (!handler) throw new UnrecoverableError(`No handler for job ${job.name}`);
    try {
      await handler.run(job.data as JobPayloads[JobName]);
    } catch (caught) {
      const error = caught instanceof Error ? caught : new Error(String(caught));
      this.handlerErrors.add(error);
      const attempt = job.attemptsMade + 1;
      const attempts = job.opts.attempts ?? 1;
      this.log(`job ${job.name} ${fromBullmqJobId(job.id ?? '')} failed (attempt ${attempt}/${attempts})`, error);
      // Reported before BullMQ records the failure: a crash in between retries the job, it is never lost.
      if (attempt >= attempts || error.name === 'UnrecoverableError') await this.reportFailure(job, error);
      throw error;
    }
  }

  private async reportFailure(job: Job, error: Error): Promise<void> {
    const handler = this.handlerFor(job.name);
    if (!handler) return;
    await handler
      .onFailed(job.data as JobPayloads[JobName], error)
      .catch((e: unknown) => this.log(`job ${fromBullmqJobId(job.id ?? '')}: recording failure failed`, e));
  }

  private handlerFor(name: string): JobHandler<JobName> | undefined {
    if (!this.handlers || !Object.hasOwn(JOB_QUEUES, name)) return undefined;
    return this.handlers[name as JobName] as JobHandler<JobName>;
  }

  private track(report: Promise<void>): void {
    this.reports.add(report);
    void report.finally(() => this.reports.delete(report));
  }

  private async shutdown(): Promise<void> {
    const workers = this.workers;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.options.stopTimeoutMs ?? 10_000);
    });
    // close() stops fetching and waits for the running jobs.
    const closed = Promise.allSettled(workers.map((worker) => worker.close())).then(() => 'closed' as const);
    const outcome = await Promise.race([closed, timeout]);
    clearTimeout(timer);
    await Promise.allSettled([...this.reports]);
    if (outcome === 'timeout') {
      // Jobs still running (or Redis away): cut every connection, so their locks lapse and another
      // worker takes them over after lockMs. (BullMQ's own disconnect waits for a first connect.)
      this.log('job queue: workers not closed in time (jobs still running, or Redis away); leaving their jobs to another worker');
      for (const connection of this.connections) connection.disconnect();
      return;
    }
    await Promise.allSettled([...this.queues.values()].map((queue) => queue.close()));
    for (const connection of this.connections) {
      if (connection.status === 'ready') await connection.quit().catch(() => connection.disconnect());
      else connection.disconnect();
    }
  }

  private connect(role: string, options: RedisOptions): Redis {
    const redis = new Redis(this.options.redisUrl, {
      connectionName: `${this.prefix}:${role}`,
      // Reconnect for ever, backing off to one try every 5 s: a Redis restart is survived.
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5_000),
      ...options,
    });
    this.watch(redis, role);
    // A Worker copies its connection for its blocking fetch (same options); keep those in hand too.
    const duplicate = redis.duplicate.bind(redis);
    redis.duplicate = (override) => {
      const copy = duplicate(override);
      this.watch(copy, `${role} (blocking)`);
      return copy;
    };
    return redis;
  }

  private watch(redis: Redis, role: string): void {
    this.connections.push(redis);
    let up = true;
    const lost = (error?: unknown) => {
      if (!up || this.stopping) return;
      up = false;
      this.log(`job queue: redis ${role} connection lost; reconnecting`, error);
    };
    // A dropped socket only says 'reconnecting'; a failed connect says 'error' (every try: logged once).
    redis.on('error', lost);
    redis.on('reconnecting', () => lost());
    redis.on('ready', () => {
      if (!up) this.log(`job queue: redis ${role} connection back`);
      up = true;
    });
  }

  private log(message: string, error?: unknown): void {
    this.options.log?.(message, error);
  }
}

/**
 * BullMQ rejects custom job ids that contain ':' or read as an integer. Escapes '%' and ':' (and the
 * first character of an integer-looking id) as %XX, so the mapping is reversible and ids stay readable:
 * `t1:media.ingest:m1` → `t1%3Amedia.ingest%3Am1`.
 */
export function toBullmqJobId(id: string): string {
  const escaped = id.replaceAll('%', '%25').replaceAll(':', '%3A');
  if (`${Number.parseInt(escaped, 10)}` !== escaped) return escaped;
  return `%${escaped.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}${escaped.slice(1)}`;
}

export function fromBullmqJobId(id: string): string {
  return id.replace(/%([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** Whether Redis answers at `url` within `timeoutMs`: for a clear error at start-up rather than endless reconnects. */
export async function redisReachable(url: string, timeoutMs = 2_000): Promise<boolean> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
