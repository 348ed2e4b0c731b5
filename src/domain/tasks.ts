export const TASK_TYPES = ['DATASET_CREATION', 'MEDIA_ADDITION', 'REINDEX', 'EXPORT'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

export const TASK_STATUSES = ['INITIALIZING', 'RUNNING', 'COMPLETED', 'FAILED', 'ABORTED'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Task types that mutate a dataset and so hold its operation lock while active. */
export const MUTATING_TASK_TYPES: readonly TaskType[] = ['DATASET_CREATION', 'MEDIA_ADDITION', 'REINDEX'];

export function isActiveTaskStatus(status: TaskStatus): boolean {
  return status === 'INITIALIZING' || status === 'RUNNING';
}
