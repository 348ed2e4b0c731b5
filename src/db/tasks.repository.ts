import type { Kysely, Selectable, Updateable } from 'kysely';
import { isActiveTaskStatus, type TaskStatus, type TaskType } from '../domain/tasks.js';
import type { Database, TasksTable } from './schema.js';

export type TaskRow = Selectable<TasksTable>;
export type TaskPatch = Updateable<TasksTable>;

export interface TaskListRow extends TaskRow {
  dataset_name: string | null;
  dataset_status: string | null;
  created_by_email: string | null;
}

export interface TaskFilter {
  userId: string;
  datasetId?: string;
  taskType?: TaskType;
  taskStatus?: TaskStatus;
  limit: number;
  offset: number;
}

/** Raised when a mutating task is inserted while another holds the dataset's operation lock. */
export class OperationLockedError extends Error {
  constructor(readonly activeTask: TaskRow) {
    super(`Dataset ${activeTask.dataset_id} is locked by task ${activeTask.id}`);
  }
}

export interface NewTask {
  id: string;
  datasetId: string;
  taskType: TaskType;
  createdBy: string;
  createdAt: string;
  statusMessage: string;
  /** Mutating tasks hold the dataset's operation lock while active. */
  holdsLock: boolean;
}

export class TasksRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Inserts a task as INITIALIZING; see `insert` for the lock. */
  async insertNew(task: NewTask): Promise<void> {
    await this.insert(newTaskRow(task));
  }

  /**
   * Inserts a task. One that holds the lock fails with OperationLockedError when another active
   * mutating task exists for the dataset (the unique partial index decides, so it holds across processes).
   */
  async insert(task: TaskRow): Promise<void> {
    try {
      await this.db.insertInto('tasks').values(task).execute();
    } catch (error) {
      if (task.holds_lock === 1 && isUniqueViolation(error)) {
        const active = await this.findLockHolder(task.dataset_id);
        if (active) throw new OperationLockedError(active);
      }
      throw error;
    }
  }

  /**
   * Ends one task and starts the next as the lock holder in one transaction, so no other operation
   * can slip in between (add_media with auto_reindex hands the dataset to its REINDEX).
   */
  async handOverLock(fromTaskId: string, ending: TaskPatch, next: NewTask): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable('tasks').set({ ...ending, holds_lock: 0 }).where('id', '=', fromTaskId).execute();
      await trx.insertInto('tasks').values(newTaskRow({ ...next, holdsLock: true })).execute();
    });
  }

  async findLockHolder(datasetId: string): Promise<TaskRow | undefined> {
    return this.db.selectFrom('tasks').selectAll().where('dataset_id', '=', datasetId).where('holds_lock', '=', 1).executeTakeFirst();
  }

  async findById(id: string): Promise<TaskRow | undefined> {
    return this.db.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * A patch that makes the task active (INITIALIZING or RUNNING) applies only while it still is: a job
   * that found its task live a moment ago cannot bring back one that a dataset deletion ended since
   * (check and write are one statement; with PostgreSQL's pool they run beside other requests).
   */
  async update(id: string, patch: TaskPatch): Promise<void> {
    let query = this.db.updateTable('tasks').set(patch).where('id', '=', id);
    if (patch.status !== undefined && isActiveTaskStatus(patch.status)) query = query.where('status', 'in', ['INITIALIZING', 'RUNNING']);
    await query.execute();
  }

  /** Ends every active task of a dataset (used when the dataset is deleted). */
  async abortActive(datasetId: string, at: string): Promise<void> {
    await this.db
      .updateTable('tasks')
      .set({ status: 'ABORTED', holds_lock: 0, end_time: at, status_message: 'Dataset deleted' })
      .where('dataset_id', '=', datasetId)
      .where('status', 'in', ['INITIALIZING', 'RUNNING'])
      .execute();
  }

  async list(filter: TaskFilter): Promise<{ rows: TaskListRow[]; total: number }> {
    let base = this.db
      .selectFrom('tasks')
      .innerJoin('dataset_members', (join) =>
        join.onRef('dataset_members.dataset_id', '=', 'tasks.dataset_id').on('dataset_members.user_id', '=', filter.userId),
      )
      .leftJoin('datasets', 'datasets.id', 'tasks.dataset_id')
      .leftJoin('users', 'users.id', 'tasks.created_by');
    if (filter.datasetId) base = base.where('tasks.dataset_id', '=', filter.datasetId);
    if (filter.taskType) base = base.where('tasks.task_type', '=', filter.taskType);
    if (filter.taskStatus) base = base.where('tasks.status', '=', filter.taskStatus);

    const totalRow = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await base
      .selectAll('tasks')
      .select(['datasets.display_name as dataset_name', 'datasets.status as dataset_status', 'users.email as created_by_email'])
      .orderBy('tasks.created_at', 'desc')
      .orderBy('tasks.id')
      .limit(filter.limit)
      .offset(filter.offset)
      .execute();
    return { rows, total: Number(totalRow.n) };
  }
}

function newTaskRow(task: NewTask): TaskRow {
  return {
    id: task.id,
    dataset_id: task.datasetId,
    task_type: task.taskType,
    status: 'INITIALIZING',
    status_message: task.statusMessage,
    progress: 0,
    error_message: null,
    created_by: task.createdBy,
    created_at: task.createdAt,
    start_time: null,
    end_time: null,
    holds_lock: task.holdsLock ? 1 : 0,
  };
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  // better-sqlite3 and pg respectively.
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505';
}
