/** `status_new` as the API shows it; the legacy `status` is derived from it. */
export const DATASET_STATUSES = ['DRAFT', 'INDEXING', 'READY', 'READ ONLY', 'PARTIAL INDEX', 'ERROR'] as const;
export type DatasetStatus = (typeof DATASET_STATUSES)[number];

export type LegacyDatasetStatus = 'NEW' | 'INDEXING' | 'READY' | 'UPDATING' | 'PENDING_INDEX' | 'FATAL_ERROR';

const LEGACY: Record<DatasetStatus, LegacyDatasetStatus> = {
  DRAFT: 'NEW',
  INDEXING: 'INDEXING',
  READY: 'READY',
  'READ ONLY': 'UPDATING',
  'PARTIAL INDEX': 'PENDING_INDEX',
  ERROR: 'FATAL_ERROR',
};

export function legacyStatus(status: DatasetStatus): LegacyDatasetStatus {
  return LEGACY[status];
}

export function isDatasetStatus(value: string): value is DatasetStatus {
  return (DATASET_STATUSES as readonly string[]).includes(value);
}
