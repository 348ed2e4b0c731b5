import type { TaskStatus, TaskType } from '../domain/tasks.js';
import type { TaskListRow, TasksRepository } from '../db/tasks.repository.js';

export interface TaskView {
  task_id: string;
  dataset_id: string;
  dataset_name: string | null;
  dataset_status: string | null;
  created_by: string | null;
  task_type: TaskType;
  status: TaskStatus;
  status_message: string | null;
  progress_percentage: number;
  error_message: string | null;
  start_time: string | null;
  end_time: string | null;
  created_at: string;
}

export interface TaskPage {
  tasks: TaskView[];
  total: number;
  page: number;
  page_size: number;
}

export class TasksService {
  constructor(private readonly tasks: TasksRepository) {}

  /** Tasks of the datasets the user can see, newest first; `page` is 1-based. */
  async list(
    userId: string,
    query: { datasetId?: string; taskType?: TaskType; taskStatus?: TaskStatus; page: number; pageSize: number },
  ): Promise<TaskPage> {
    const { rows, total } = await this.tasks.list({
      userId,
      datasetId: query.datasetId,
      taskType: query.taskType,
      taskStatus: query.taskStatus,
      limit: query.pageSize,
      offset: (query.page - 1) * query.pageSize,
    });
    return { tasks: rows.map(toTaskView), total, page: query.page, page_size: query.pageSize };
  }
}

function toTaskView(row: TaskListRow): TaskView {
  return {
    task_id: row.id,
    dataset_id: row.dataset_id,
    dataset_name: row.dataset_name,
    dataset_status: row.dataset_status,
    created_by: row.created_by_email ?? row.created_by,
    task_type: row.task_type,
    status: row.status,
    status_message: row.status_message,
    progress_percentage: row.progress,
    error_message: row.error_message,
    start_time: row.start_time,
    end_time: row.end_time,
    created_at: row.created_at,
  };
}
