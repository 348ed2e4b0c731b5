import os from 'node:os';
import { sql, type Kysely } from 'kysely';
import { lockForClaim } from '../db/dialect.js';
import type { Database } from '../db/schema.js';
import type { EnqueueOptions, JobHandler, JobHandlers, JobName, JobPayloads, JobQueue } from './job-queue.js';

export interface SqlJobQueueOptions {
  /** Attempts per job unless enqueue says otherwise (default 5); the last failure ends the task FAILED. */
  maxAttempts?: number;
  concurrency: number;
  leaseMs: number;
  pollMs?: number;
  /** Waits this long for running jobs on stop before leaving them to be resumed. */
  stopTimeoutMs?: number;
  log?: (message: string, error?: unknown) => void;
}

type ClaimedJob = { id: string; name: string; payload: string; attempts: number; max_attempts: number };

/**
 * Tells this process apart from an earlier one that had the same pid: a container restarted after a
 * crash runs the server as pid 1 again, on the same hostname, and its old claims must still count as dead.
 */
const PROCESS_INCARNATION = Math.random().toString(36).slice(2, 10);

/**
 * The embedded job queue: jobs persist in the metadata database, so a restart resumes them.
 * A claim is a lease renewed by heartbeat; a job whose lease lapses (or whose runner on this host
 * is gone) is claimed again, and handlers are idempotent, so nothing is lost or done twice.
 */
export class SqlJobQueue implements JobQueue {
  private readonly workerId = `${os.hostname()}:${process.pid}:${PROCESS_INCARNATION}:${Math.random().toString(36).slice(2, 8)}`;
  private readonly running = new Map<string, Promise<void>>();
  private handlers: JobHandlers | null = null;
  private stopped = true;
  private wakeTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private pumping = false;
  /** A wake-up that arrived while pumping: pump once more, or work enqueued meanwhile waits for the poll. */
  private wokenWhilePumping = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly options: SqlJobQueueOptions,
  ) {}

  async enqueue<N extends JobName>(name: N, payload: JobPayloads[N], options: EnqueueOptions): Promise<void> {
    const now = new Date().toISOString();
    await this.db
      .insertInto('jobs')
      .values({
        id: options.jobId,
        name,
        payload: JSON.stringify(payload),
        status: 'queued',
        attempts: 0,
        max_attempts: options.maxAttempts ?? this.options.maxAttempts ?? 5,
        run_after: now,
        locked_by: null,
        locked_until: null,
        last_error: null,
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    this.wake();
  }

  start(handlers: JobHandlers): void {
    this.handlers = handlers;
    this.stopped = false;
    void this.reclaimFromDeadLocalRunners().finally(() => this.wake());
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), Math.max(250, Math.floor(this.options.leaseMs / 3)));
    this.heartbeatTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, this.options.stopTimeoutMs ?? 10_000).unref());
    await Promise.race([Promise.allSettled([...this.running.values()]), timeout]);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
  }

  async drained(pollMs = 100): Promise<void> {
    for (;;) {
      const row = await this.db
        .selectFrom('jobs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('status', 'in', ['queued', 'running'])
        .executeTakeFirstOrThrow();
      if (Number(row.n) === 0) return;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  private wake(): void {
    if (this.stopped) return;
    void this.pump();
  }

  private scheduleWake(): void {
    if (this.stopped) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => this.wake(), this.options.pollMs ?? 500);
    this.wakeTimer.unref();
  }

  /** Claims jobs until every slot is busy or nothing is ready; then polls for work from other processes. */
  private async pump(): Promise<void> {
    if (this.pumping) {
      this.wokenWhilePumping = true;
      return;
    }
    this.pumping = true;
    try {
      while (!this.stopped && this.running.size < this.options.concurrency) {
        this.wokenWhilePumping = false;
        const job = await this.claim();
        if (!job) {
          if (this.wokenWhilePumping) continue;
          break;
        }
        const execution = this.execute(job).finally(() => {
          this.running.delete(job.id);
          this.wake();
        });
        this.running.set(job.id, execution);
      }
    } catch (error) {
      this.options.log?.('job queue: claiming failed', error);
    } finally {
      this.pumping = false;
      this.scheduleWake();
    }
  }

  private async claim(): Promise<ClaimedJob | undefined> {
    const now = new Date();
    const nowIso = now.toISOString();
    const leaseUntil = new Date(now.getTime() + this.options.leaseMs).toISOString();
    // One statement, so two processes on the same database can never claim the same job (on
    // PostgreSQL the picked row is also locked, and rows other claimers hold are skipped).
    return this.db
      .updateTable('jobs')
      .set({
        status: 'running',
        locked_by: this.workerId,
        locked_until: leaseUntil,
        attempts: sql`attempts + 1`,
        updated_at: nowIso,
      })
      .where('id', '=', (eb) => {
        let next = eb
          .selectFrom('jobs')
          .select('id')
          .where((w) =>
            w.or([
              w.and([w('status', '=', 'queued'), w('run_after', '<=', nowIso)]),
              w.and([w('status', '=', 'running'), w('locked_until', '<', nowIso)]),
            ]),
          );
        if (this.running.size > 0) next = next.where('id', 'not in', [...this.running.keys()]);
        return lockForClaim(this.db, next.orderBy('created_at').orderBy('id').limit(1));
      })
      .returning(['id', 'name', 'payload', 'attempts', 'max_attempts'])
      .executeTakeFirst();
  }

  private async execute(job: ClaimedJob): Promise<void> {
    const handler = this.handlers?.[job.name as JobName] as JobHandler<JobName> | undefined;
    const payload = JSON.parse(job.payload) as JobPayloads[JobName];
    try {
      if (!handler) throw new Error(`No handler for job ${job.name}`);
      await handler.run(payload);
      await this.db.deleteFrom('jobs').where('id', '=', job.id).where('locked_by', '=', this.workerId).execute();
    } catch (caught) {
      const error = caught instanceof Error ? caught : new Error(String(caught));
      const finalAttempt = job.attempts >= job.max_attempts;
      this.options.log?.(`job ${job.name} ${job.id} failed (attempt ${job.attempts}/${job.max_attempts})`, error);
      const now = Date.now();
      await this.db
        .updateTable('jobs')
        .set({
          status: finalAttempt ? 'failed' : 'queued',
          run_after: new Date(now + Math.min(30_000, 1000 * 2 ** (job.attempts - 1))).toISOString(),
          locked_by: null,
          locked_until: null,
          last_error: error.message,
          updated_at: new Date(now).toISOString(),
        })
        .where('id', '=', job.id)
        .execute();
      if (finalAttempt && handler) {
        await handler.onFailed(payload, error).catch((e: unknown) => this.options.log?.(`job ${job.id}: recording failure failed`, e));
      }
    }
  }

  private async heartbeat(): Promise<void> {
    if (this.running.size === 0) return;
    const leaseUntil = new Date(Date.now() + this.options.leaseMs).toISOString();
    await this.db
      .updateTable('jobs')
      .set({ locked_until: leaseUntil })
      .where('locked_by', '=', this.workerId)
      .where('status', '=', 'running')
      .execute()
      .catch((error: unknown) => this.options.log?.('job queue: heartbeat failed', error));
  }

  /** After a crash on this host, resume its jobs at once rather than after their lease lapses. */
  private async reclaimFromDeadLocalRunners(): Promise<void> {
    const prefix = `${os.hostname()}:`;
    const held = await this.db
      .selectFrom('jobs')
      .select(['id', 'locked_by'])
      .where('status', '=', 'running')
      .where('locked_by', 'like', `${prefix}%`)
      .execute();
    const dead = held.filter((job) => {
      const [pid, incarnation] = (job.locked_by ?? '').slice(prefix.length).split(':');
      // Our own pid: alive only if the claim is this process's, not an earlier one's that had the pid.
      if (Number(pid) === process.pid) return incarnation !== PROCESS_INCARNATION;
      return !isProcessAlive(Number(pid));
    });
    for (const job of dead) {
      await this.db
        .updateTable('jobs')
        .set({ status: 'queued', locked_by: null, locked_until: null, attempts: sql`case when attempts > 0 then attempts - 1 else 0 end` })
        .where('id', '=', job.id)
        .where('locked_by', '=', job.locked_by)
        .execute();
    }
  }
}

function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
