import type { DatasetStatus } from '../domain/dataset-status.js';
import type { Role } from '../domain/roles.js';
import type { TaskStatus, TaskType } from '../domain/tasks.js';

/** Timestamps are ISO-8601 strings in both dialects; booleans are 0/1 integers. */
export interface UsersTable {
  id: string;
  email: string;
  name: string;
  password_hash: string | null;
  is_admin: number;
  created_at: string;
}

export interface ApiKeysTable {
  api_key: string;
  user_id: string;
  /** The secret, encrypted with the server key: HMAC verification needs it back. */
  secret_enc: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface SessionsTable {
  /** sha256 of the session token; the token itself lives only in the browser's cookie. */
  token_hash: string;
  user_id: string;
  created_at: string;
  expires_at: string;
}

export interface DatasetsTable {
  id: string;
  display_name: string;
  description: string;
  source_type: string;
  owned_by: string;
  created_at: string;
  updated_at: string;
  status: DatasetStatus;
  progress: number;
  n_images: number;
  n_videos: number;
  n_video_frames: number;
  n_objects: number;
  n_failed: number;
  fatal_error_msg: string | null;
  source_dataset_id: string | null;
  embedding_config: string | null;
  is_hidden: number;
}

export interface DatasetMembersTable {
  dataset_id: string;
  user_id: string;
  role: Role;
  created_at: string;
}

export type UploadTransactionStatus = 'OPEN' | 'PROCESSED';

export interface UploadTransactionsTable {
  id: string;
  dataset_id: string;
  status: UploadTransactionStatus;
  created_by: string;
  created_at: string;
  processed_at: string | null;
}

/** `object`: a box cut from its parent image (`parent_media_id`), an entity of its own (entity type OBJECTS). */
export type MediaType = 'image' | 'video' | 'video_frame' | 'object';
/** PENDING: stored, not yet decoded. READY: decoded and recorded. FAILED: could not be decoded (see `error`). */
export type MediaStatus = 'PENDING' | 'READY' | 'FAILED';

export interface MediaTable {
  id: string;
  dataset_id: string;
  transaction_id: string | null;
  media_type: MediaType;
  status: MediaStatus;
  original_media_uri: string;
  file_name: string;
  blob_key: string;
  file_size: number;
  sha256: string;
  width: number | null;
  height: number | null;
  format: string | null;
  thumb_key: string | null;
  duration_seconds: number | null;
  error: string | null;
  parent_media_id: string | null;
  frame_timestamp: number | null;
  created_at: string;
  processed_at: string | null;
  /** Variance of the Laplacian at a fixed working size: low means blurry. */
  blur: number | null;
  mean_intensity: number | null;
  min_intensity: number | null;
  max_intensity: number | null;
  std_intensity: number | null;
  contrast: number | null;
  /** 0 = redundant (a duplicate exists), 1 = unique; set by indexing. */
  uniqueness_score: number | null;
  /** Calibrated similarity to the nearest other media; set by indexing. */
  nn_similarity: number | null;
  /** The media import that found this media (not set for uploads). */
  import_id: string | null;
  /** Where to copy the bytes from; set until a worker has fetched them into the store. */
  fetch_from: string | null;
  /** Free text describing the media, set through the API or an annotation import. */
  caption: string | null;
  /** An object's box in its parent image (top-left corner, width, height). */
  bbox_x: number | null;
  bbox_y: number | null;
  bbox_w: number | null;
  bbox_h: number | null;
  /** `px`: pixels of the original image; `relative`: fractions of its size (until the object is processed). */
  bbox_units: BoundingBoxUnits | null;
}

export type BoundingBoxUnits = 'px' | 'relative';

export interface EmbeddingsTable {
  media_id: string;
  dataset_id: string;
  model_id: string;
  /** Float32 little-endian, L2-normalised. */
  vector: Uint8Array;
}

export type IssueType = 'duplicates' | 'outliers' | 'blur' | 'dark' | 'bright' | 'mislabels';

export interface MediaIssuesTable {
  dataset_id: string;
  media_id: string;
  issue_type: IssueType;
  confidence: number;
  /** Near-duplicate group at `threshold` (duplicates only). */
  group_id: string | null;
  threshold: number | null;
}

export interface ClustersTable {
  dataset_id: string;
  /** 0 finest … 4 coarsest. */
  level: number;
  cluster_id: string;
  size: number;
  representative_media_id: string;
}

export interface MediaClustersTable {
  dataset_id: string;
  level: number;
  media_id: string;
  cluster_id: string;
}

export interface TasksTable {
  id: string;
  dataset_id: string;
  task_type: TaskType;
  status: TaskStatus;
  status_message: string | null;
  progress: number;
  error_message: string | null;
  created_by: string;
  created_at: string;
  start_time: string | null;
  end_time: string | null;
  /** 1 while a mutating task is active: a unique partial index makes this the dataset's operation lock. */
  holds_lock: number;
}

/** The query vector of an uploaded search image, used by explore with `anchor_type=UPLOAD` until it expires. */
export interface UploadAnchorsTable {
  id: string;
  dataset_id: string;
  model_id: string;
  /** Float32 little-endian, L2-normalised. */
  vector: Uint8Array;
  created_by: string;
  created_at: string;
  expires_at: string;
}

export type JobStatus = 'queued' | 'running' | 'failed';

export interface JobsTable {
  id: string;
  name: string;
  payload: string;
  status: JobStatus;
  attempts: number;
  max_attempts: number;
  run_after: string;
  locked_by: string | null;
  locked_until: string | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

/** `upload`: files[] sent with add_media, already stored by the request. */
export type MediaImportSourceKind = 'upload' | 'archive' | 's3' | 'local' | 'http';

export interface MediaImportsTable {
  id: string;
  dataset_id: string;
  /** The MEDIA_ADDITION or DATASET_CREATION task this import belongs to. */
  task_id: string;
  source_kind: MediaImportSourceKind;
  /** A folder, prefix, manifest or URL; for an archive, the blob key of the stored archive. */
  location: string;
  /** Assumed-role credentials (JSON), encrypted with the server key; removed when the task ends. */
  credentials_enc: string | null;
  /** The dataset's status before the import, restored if it fails before any new media is in. */
  previous_status: DatasetStatus;
  auto_reindex: number;
  /** The request's resource hints (batch_n_*, use_spot) as JSON, kept for the record. */
  options: string;
  /** 1 once every object of the source has a media row (listing is resumable until then). */
  listed: number;
  n_found: number;
  /** Objects left out: already in the dataset (same source URI) or not media by their name. */
  n_skipped: number;
  created_at: string;
}

/** A user tag: a name an editor defines in a dataset (unique there) and puts on media. */
export interface TagsTable {
  id: string;
  dataset_id: string;
  name: string;
  created_by: string;
  created_at: string;
}

export interface MediaTagsTable {
  dataset_id: string;
  media_id: string;
  tag_id: string;
  created_by: string;
  created_at: string;
}

/** Who said a label is right: the user, a model, or Visual Layer's own tagging (SPEC's label sources). */
export type LabelSource = 'User' | 'Model' | 'Visual Layer';

/** A label on a media item: an image label, or (on an `object` media) the object's class. */
export interface MediaLabelsTable {
  id: string;
  dataset_id: string;
  media_id: string;
  label: string;
  source: LabelSource;
  confidence: number | null;
  /** The annotation import that brought it (null when set otherwise). */
  import_id: string | null;
  created_at: string;
}

export type AnnotationFormat = 'coco' | 'yolo' | 'csv' | 'parquet';
/** PENDING: stored with an add_media, applied once its media are listed. */
export type AnnotationImportStatus = 'PENDING' | 'COMPLETED' | 'FAILED';

/** One annotation file applied to a dataset, with what it added and the rows it could not use. */
export interface AnnotationImportsTable {
  id: string;
  dataset_id: string;
  /** The MEDIA_ADDITION task that carries it, when given with add_media. */
  task_id: string | null;
  created_by: string;
  file_name: string;
  format: AnnotationFormat;
  source: LabelSource;
  status: AnnotationImportStatus;
  /** The stored file while PENDING. */
  blob_key: string | null;
  n_rows: number;
  n_image_labels: number;
  n_objects: number;
  n_captions: number;
  n_unmatched: number;
  n_invalid: number;
  /** JSON array of {location, file_name, reason}: the first rows that were not used, and why. */
  problems: string;
  error: string | null;
  created_at: string;
  finished_at: string | null;
}

/**
 * A media's full-text search document: its tokens, normalised (src/db/search-text.repository.ts).
 * SQLite indexes `body` in the FTS5 table `media_search_fts`; PostgreSQL in a generated tsvector.
 */
export interface MediaSearchTable {
  media_id: string;
  dataset_id: string;
  body: string;
}

export interface Database {
  users: UsersTable;
  api_keys: ApiKeysTable;
  sessions: SessionsTable;
  datasets: DatasetsTable;
  dataset_members: DatasetMembersTable;
  upload_transactions: UploadTransactionsTable;
  media: MediaTable;
  tasks: TasksTable;
  jobs: JobsTable;
  embeddings: EmbeddingsTable;
  media_issues: MediaIssuesTable;
  clusters: ClustersTable;
  media_clusters: MediaClustersTable;
  upload_anchors: UploadAnchorsTable;
  media_imports: MediaImportsTable;
  tags: TagsTable;
  media_tags: MediaTagsTable;
  media_labels: MediaLabelsTable;
  annotation_imports: AnnotationImportsTable;
  media_search: MediaSearchTable;
}
