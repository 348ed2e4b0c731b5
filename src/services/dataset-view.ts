import { legacyStatus } from '../domain/dataset-status.js';
import type { Role } from '../domain/roles.js';
import type { DatasetRow } from '../db/datasets.repository.js';

export interface FailedFileView {
  media_id: string;
  file_name: string;
  original_media_uri: string;
  reason: string;
}

/** The dataset as `GET /dataset/{id}` and `GET /datasets` show it. */
export interface DatasetView {
  id: string;
  display_name: string;
  description: string;
  source_type: string;
  owned_by: string;
  owner_email: string | null;
  created_at: string;
  updated_at: string;
  status: string;
  status_new: string;
  progress: number;
  n_images: number;
  n_videos: number;
  n_video_frames: number;
  n_objects: number;
  n_failed_files: number;
  fatal_error_msg: string | null;
  source_dataset_id: string | null;
  role: Role;
  failed_files?: FailedFileView[];
}

export function toDatasetView(row: DatasetRow, role: Role, ownerEmail: string | null, failedFiles?: FailedFileView[]): DatasetView {
  const view: DatasetView = {
    id: row.id,
    display_name: row.display_name,
    description: row.description,
    source_type: row.source_type,
    owned_by: row.owned_by,
    owner_email: ownerEmail,
    created_at: row.created_at,
    updated_at: row.updated_at,
    status: legacyStatus(row.status),
    status_new: row.status,
    progress: row.progress,
    n_images: row.n_images,
    n_videos: row.n_videos,
    n_video_frames: row.n_video_frames,
    n_objects: row.n_objects,
    n_failed_files: row.n_failed,
    fatal_error_msg: row.fatal_error_msg,
    source_dataset_id: row.source_dataset_id,
    role,
  };
  if (failedFiles) view.failed_files = failedFiles;
  return view;
}
