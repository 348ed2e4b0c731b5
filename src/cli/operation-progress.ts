/**
 * Waiting for a dataset operation (create, add_media, reindex) from the operator CLI and showing how
 * it goes: one updating progress bar on a terminal, plain lines (only when something changed)
 * otherwise. It reads the database, so it works whichever process runs the jobs.
 */
import type { Container } from '../app/container.js';
import { DatasetsRepository } from '../db/datasets.repository.js';
import { TasksRepository } from '../db/tasks.repository.js';
import type { DatasetStatus } from '../domain/dataset-status.js';
import { MUTATING_TASK_TYPES, isActiveTaskStatus, type TaskStatus } from '../domain/tasks.js';

/** What one progress line shows. */
export interface ProgressState {
  /** The dataset's `status_new`. */
  status: string;
  /** 0-100. */
  progress: number;
  /** The running task's `status_message` ('' when none). */
  message: string;
}

export interface RenderOptions {
  tty: boolean;
  /** Width of the bar in characters (TTY only). */
  barWidth?: number;
  /** Terminal width: a TTY line is cut to fit, so it never wraps (wrapped lines cannot be redrawn). */
  columns?: number | undefined;
}

const DEFAULT_BAR_WIDTH = 20;

/**
 * One line, without `\r` or newline:
 * TTY `[#########-----------]  45%  INDEXING  Processed 12 of 30 files`, plain `INDEXING 45% Processed 12 of 30 files`.
 */
export function renderProgressLine(state: ProgressState, options: RenderOptions): string {
  const progress = clampPercent(state.progress);
  const message = state.message.trim();
  if (!options.tty) return [state.status, `${progress}%`, message].filter((part) => part !== '').join(' ');
  const width = options.barWidth ?? DEFAULT_BAR_WIDTH;
  const filled = Math.round((progress / 100) * width);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  const line = [`${bar} ${String(progress).padStart(3)}%`, state.status, message].filter((part) => part !== '').join('  ');
  const columns = options.columns ?? 0;
  return columns > 1 && line.length > columns - 1 ? line.slice(0, columns - 1) : line;
}

function clampPercent(value: number): number {
  if (!Number.isFinite(value)) return 0;
  return Math.min(100, Math.max(0, Math.round(value)));
}

/** Where progress goes: a process stream, or anything with `write` (tests). */
export interface ProgressOutput {
  write(chunk: string): unknown;
  columns?: number | undefined;
}

/** Draws states as they come: redraws one line on a TTY; prints a line per change otherwise. */
export class ProgressReporter {
  private last: string | null = null;
  private drawn = false;

  constructor(
    private readonly out: ProgressOutput,
    private readonly tty: boolean,
  ) {}

  update(state: ProgressState): void {
    const line = renderProgressLine(state, { tty: this.tty, columns: this.out.columns });
    if (line === this.last) return;
    this.last = line;
    if (this.tty) {
      // `\x1b[K` clears what a longer previous line left on the right.
      this.out.write(`\r${line}\x1b[K`);
      this.drawn = true;
    } else {
      this.out.write(`${line}\n`);
    }
  }

  /** Ends the bar's line, so what is printed next starts on a line of its own. */
  finish(): void {
    if (this.tty && this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}

/** The rows the watcher reads, as much of them as it needs. */
export interface TaskSnapshot {
  id: string;
  status: TaskStatus;
  progress: number;
  status_message: string | null;
  error_message: string | null;
  created_at: string;
}

export interface OperationSnapshot {
  dataset: { status: DatasetStatus; progress: number; fatal_error_msg: string | null } | undefined;
  /** The task holding the dataset's operation lock, if any. */
  lockHolder: TaskSnapshot | undefined;
  /** The newest mutating task of the dataset (the operation's, or the REINDEX that followed it). */
  latestTask: TaskSnapshot | undefined;
  /** The task the operation started (when known). */
  operationTask: TaskSnapshot | undefined;
}

export interface OperationOutcome {
  ok: boolean;
  /** The dataset's `status_new` at the end ('DELETED' when it went away). */
  status: string;
  /** On success the last task's `status_message`; on failure the reason. */
  message: string;
}

export type Assessment = { done: false; state: ProgressState } | { done: true; state: ProgressState; outcome: OperationOutcome };

/** Statuses in which a dataset is still being worked on. */
const BUSY: ReadonlySet<DatasetStatus> = new Set(['INDEXING', 'READ ONLY']);

/**
 * Pure: whether the operation has ended and how. It has when the dataset is ERROR; or, with nobody
 * holding the dataset's lock, when its status is one of `until` (success) or the operation's task or
 * one that followed it ended FAILED/ABORTED (failure, with that task's reason).
 */
export function assessOperation(snapshot: OperationSnapshot, until: ReadonlySet<DatasetStatus>): Assessment {
  const { dataset, lockHolder, latestTask, operationTask } = snapshot;
  if (!dataset) {
    const state = { status: 'DELETED', progress: 0, message: '' };
    return { done: true, state, outcome: { ok: false, status: 'DELETED', message: 'the dataset was deleted' } };
  }
  const current = lockHolder ?? latestTask;
  const state: ProgressState = {
    status: dataset.status,
    progress: current && isActiveTaskStatus(current.status) ? current.progress : dataset.progress,
    message: current?.status_message ?? '',
  };
  const fail = (message: string): Assessment => ({ done: true, state, outcome: { ok: false, status: dataset.status, message } });

  if (dataset.status === 'ERROR') return fail(dataset.fatal_error_msg ?? latestTask?.error_message ?? 'the dataset is in ERROR');
  if (lockHolder) return { done: false, state };
  if (operationTask && isActiveTaskStatus(operationTask.status)) return { done: false, state };

  // Tasks older than the operation's say nothing about it.
  const relevant = latestTask && (!operationTask || latestTask.created_at >= operationTask.created_at) ? latestTask : operationTask;
  const endedBadly = relevant && (relevant.status === 'FAILED' || relevant.status === 'ABORTED');
  if (endedBadly && (operationTask || !until.has(dataset.status))) {
    return fail(relevant.error_message || relevant.status_message || `the task ended ${relevant.status}`);
  }
  if (until.has(dataset.status)) {
    return { done: true, state, outcome: { ok: true, status: dataset.status, message: relevant?.status_message ?? '' } };
  }
  if (BUSY.has(dataset.status)) return { done: false, state };
  return fail(`the operation ended with the dataset ${dataset.status}, not ${[...until].join(' or ')}`);
}

export interface WatchOptions {
  until: ReadonlySet<DatasetStatus>;
  out: ProgressOutput;
  tty: boolean;
  /** How often to look (default 300 ms). */
  pollMs?: number;
}

/** The loop: probe, draw, until assessOperation says it is over. */
export async function watchOperation(probe: () => Promise<OperationSnapshot>, options: WatchOptions): Promise<OperationOutcome> {
  const reporter = new ProgressReporter(options.out, options.tty);
  const pollMs = options.pollMs ?? 300;
  try {
    for (;;) {
      const assessment = assessOperation(await probe(), options.until);
      reporter.update(assessment.state);
      if (assessment.done) return assessment.outcome;
      await sleep(pollMs);
    }
  } finally {
    reporter.finish();
  }
}

export interface WaitForOperationOptions extends WatchOptions {
  datasetId: string;
  /** The task the operation started; without it, the dataset's status and newest task decide. */
  taskId?: string;
}

/** Waits for an operation on a dataset of this container's database, reporting progress to `out`. */
export async function waitForOperation(container: Container, options: WaitForOperationOptions): Promise<OperationOutcome> {
  const datasets = new DatasetsRepository(container.db);
  const tasks = new TasksRepository(container.db);
  const probe = async (): Promise<OperationSnapshot> => {
    const [dataset, lockHolder, operationTask, latestTask] = await Promise.all([
      datasets.findById(options.datasetId),
      tasks.findLockHolder(options.datasetId),
      options.taskId ? tasks.findById(options.taskId) : Promise.resolve(undefined),
      // The newest mutating task: the one that followed the operation's (auto_reindex) may start and end between two looks.
      container.db
        .selectFrom('tasks')
        .selectAll()
        .where('dataset_id', '=', options.datasetId)
        .where('task_type', 'in', [...MUTATING_TASK_TYPES])
        .orderBy('created_at', 'desc')
        .limit(1)
        .executeTakeFirst(),
    ]);
    return { dataset, lockHolder, operationTask, latestTask };
  };
  return watchOperation(probe, options);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
