/**
 * The UI's only door to the server: the same /api/v1 endpoints a script uses, authenticated by the
 * SESSION cookie. Every request has a timeout; every failure becomes an ApiError whose message can be
 * shown as it is (`{"detail": "..."}` and 422 arrays turned into sentences).
 */

export class ApiError extends Error {
  constructor(
    message: string,
    /** HTTP status; 0 when no answer came (network, timeout). */
    readonly status: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const API = '/api/v1';
const DEFAULT_TIMEOUT_MS = 30_000;

let onUnauthorized: (() => void) | null = null;
/** Called when a request answers 401 (the session ended): the app shows the login page. */
export function setUnauthorizedHandler(handler: (() => void) | null): void {
  onUnauthorized = handler;
}

type Query = Record<string, string | number | boolean | undefined | null>;

export interface RequestOptions {
  query?: Query;
  json?: unknown;
  form?: FormData;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export function apiUrl(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  const qs = params.toString();
  return `${API}${path}${qs ? `?${qs}` : ''}`;
}

/** `{"detail": ...}` as one readable sentence. */
export function describeDetail(detail: unknown): string | null {
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    const parts = detail.map((item) => {
      if (item && typeof item === 'object') {
        const { loc, msg } = item as { loc?: unknown[]; msg?: string };
        const where = (loc ?? []).filter((p) => p !== 'body' && p !== 'query' && p !== 'path').join('.');
        return where ? `${where}: ${msg ?? 'invalid'}` : (msg ?? 'invalid value');
      }
      return String(item);
    });
    return parts.length ? `Invalid request — ${parts.join('; ')}` : null;
  }
  if (detail && typeof detail === 'object') return JSON.stringify(detail);
  return null;
}

function errorFor(status: number, statusText: string, body: string, what: string): ApiError {
  let message: string | null = null;
  try {
    message = describeDetail((JSON.parse(body) as { detail?: unknown }).detail);
  } catch {
    message = null;
  }
  if (!message) {
    message =
      status === 401
        ? 'Your session has ended; log in again.'
        : status >= 500
          ? `The server failed (${status} ${statusText}) on ${what}; try again.`
          : `${what} answered ${status} ${statusText}`;
  }
  return new ApiError(message, status);
}

/** One JSON (or text) request with a timeout; rejects with an ApiError. */
export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException('timeout', 'TimeoutError')), timeoutMs);
  const forward = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', forward, { once: true });
  const what = `${method} ${path}`;
  const headers: Record<string, string> = { accept: 'application/json' };
  let body: BodyInit | undefined;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.form) {
    body = options.form;
  }
  try {
    const response = await fetch(apiUrl(path, options.query), { method, headers, body, credentials: 'same-origin', signal: controller.signal });
    const text = await response.text();
    if (!response.ok) {
      if (response.status === 401 && !path.startsWith('/auth')) onUnauthorized?.();
      throw errorFor(response.status, response.statusText, text, what);
    }
    if (text === '') return undefined as T;
    const type = response.headers.get('content-type') ?? '';
    return (type.includes('json') ? JSON.parse(text) : text) as T;
  } catch (error) {
    if (error instanceof ApiError) throw error;
    if (options.signal?.aborted) throw new ApiError('Cancelled', 0);
    if (controller.signal.aborted) throw new ApiError(`The server did not answer within ${Math.round(timeoutMs / 1000)} s (${what}); try again.`, 0);
    throw new ApiError(`Cannot reach the server (${what}): ${error instanceof Error ? error.message : String(error)}`, 0);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', forward);
  }
}

export interface UploadHandle {
  promise: Promise<void>;
  abort(): void;
}

/**
 * A multipart POST with upload progress (XMLHttpRequest: fetch cannot report it). Instead of a fixed
 * timeout, it gives up when no byte has moved for `stallMs`.
 */
export function upload(path: string, form: FormData, onProgress: (loaded: number, total: number) => void, stallMs = 60_000): UploadHandle {
  const xhr = new XMLHttpRequest();
  let stalled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      xhr.abort();
    }, stallMs);
  };
  const what = `POST ${path}`;
  const promise = new Promise<void>((resolve, reject) => {
    xhr.open('POST', apiUrl(path));
    xhr.withCredentials = true;
    xhr.setRequestHeader('accept', 'application/json');
    xhr.upload.onprogress = (event) => {
      arm();
      onProgress(event.loaded, event.lengthComputable ? event.total : 0);
    };
    xhr.onprogress = arm;
    xhr.onload = () => {
      clearTimeout(timer);
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      if (xhr.status === 401) onUnauthorized?.();
      reject(errorFor(xhr.status, xhr.statusText, xhr.responseText, what));
    };
    xhr.onerror = () => {
      clearTimeout(timer);
      reject(new ApiError(`The upload failed: the connection to the server was lost (${what}).`, 0));
    };
    xhr.onabort = () => {
      clearTimeout(timer);
      reject(new ApiError(stalled ? `The upload stalled: nothing was sent for ${Math.round(stallMs / 1000)} s (${what}).` : 'Upload cancelled', 0));
    };
    arm();
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

// ---- The API's shapes (those the UI reads) ----

export interface User {
  user_id: string;
  email: string;
  name: string;
  is_admin: boolean;
}

export type DatasetStatus = 'DRAFT' | 'INDEXING' | 'READY' | 'READ ONLY' | 'PARTIAL INDEX' | 'ERROR';
export type Role = 'owner' | 'editor' | 'viewer';

export interface Dataset {
  id: string;
  display_name: string;
  description: string;
  source_type: string;
  owned_by: string;
  owner_email: string | null;
  created_at: string;
  updated_at: string;
  status: string;
  status_new: DatasetStatus;
  progress: number;
  n_images: number;
  n_videos: number;
  n_video_frames: number;
  n_objects: number;
  n_failed_files: number;
  fatal_error_msg: string | null;
  role: Role;
  failed_files?: FailedFile[];
}

export interface FailedFile {
  media_id: string;
  file_name: string;
  original_media_uri: string;
  reason: string;
}

export interface ApiKey {
  api_key: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface Preview {
  /** IMAGE, VIDEO_FRAME, VIDEO or OBJECT. */
  type: string;
  media_id: string;
  /** An object's: its parent image's file. */
  media_uri: string;
  /** An object's: its crop. */
  media_thumb_uri: string;
  file_name: string;
  caption?: string | null;
  /** An object's box on its image, [x, y, width, height] in pixels. */
  bounding_box?: number[] | null;
  relevance_score: number | null;
  width: number | null;
  height: number | null;
}

export interface Cluster {
  cluster_id: string;
  n_images: number;
  n_videos: number;
  n_objects?: number;
  relevance_score: number | null;
  previews: Preview[];
  /** Labels and captions of the previewed media. */
  labels?: string[];
  captions?: string[];
}

export interface ExploreResult {
  clusters: Cluster[];
  metadata: { total_clusters?: number; has_more?: boolean; [key: string]: unknown };
}

export type EntityType = 'IMAGES' | 'OBJECTS';

export interface ExploreParams {
  entity_type?: EntityType;
  threshold: number;
  page_number: number;
  vql?: string;
  sort_by?: 'size' | 'uniqueness';
  anchor_media_id?: string;
  anchor_type?: 'MEDIA' | 'UPLOAD';
  /** Comma-separated label names: media carrying any of them. */
  labels?: string;
}

export interface ExplorationMetadata {
  dataset_name: string;
  clusters_count: number;
  media_count: number;
  labels?: { name: string; count: number }[];
}

export interface IssueSummary {
  media_count: number;
  duplicate_threshold: number;
  duplicate_groups: number;
  issues: { issue_type: string; count: number }[];
}

export interface MediaDetails {
  media_id: string;
  media_type: 'image' | 'video' | 'video_frame' | 'object';
  status: string;
  file_name: string;
  original_media_uri: string;
  file_size: number;
  format: string | null;
  sha256: string;
  width: number | null;
  height: number | null;
  media_uri: string;
  media_thumb_uri: string | null;
  error: string | null;
  created_at: string;
  processed_at: string | null;
  video: { media_id: string; file_name: string; media_uri: string; frame_timestamp: number | null; duration_seconds: number | null } | null;
  quality: Record<string, number | null>;
  uniqueness_score: number | null;
  nn_similarity: number | null;
  issues: { issue_type: string; confidence: number; duplicate_group_id: string | null; duplicate_threshold: number | null }[];
  clusters: { level: number; cluster_id: string }[];
  labels?: { name: string; source: string; confidence: number | null }[];
  caption?: string | null;
  /** An image's objects: class, box [x, y, w, h] in pixels of the image (null until known), status. */
  objects?: MediaObject[];
  /** An object's image and its box in it. */
  parent_media_id?: string | null;
  bounding_box?: number[] | null;
}

export interface MediaObject {
  object_id: string;
  label: string | null;
  bbox: number[] | null;
  status: string;
}

export type AnnotationFormat = 'coco' | 'yolo' | 'csv' | 'parquet';
export type LabelSource = 'User' | 'Model' | 'Visual Layer';

/** What an annotation import applied, and the rows it could not use. */
export interface AnnotationReport {
  annotation_import_id: string;
  status: 'PENDING' | 'COMPLETED' | 'FAILED';
  file_name: string;
  format: AnnotationFormat;
  n_rows: number;
  n_image_labels: number;
  n_objects: number;
  n_captions: number;
  n_unmatched: number;
  n_invalid: number;
  problems: { location: string; file_name: string | null; reason: string }[];
  problems_truncated: boolean;
  error: string | null;
}

export type ExportFormat = 'json' | 'parquet' | 'coco';

export interface GroupMember {
  media_id: string;
  media_type: string;
  file_name: string;
  original_media_uri: string;
  media_uri: string;
  media_thumb_uri: string;
  width: number | null;
  height: number | null;
  file_size: number;
  uniqueness_score: number | null;
  coarse_cluster_id: string | null;
}

export interface DuplicateGroups {
  threshold: number;
  total: number;
  groups: { group_id: string; size: number; media: GroupMember[] }[];
}

export interface Member {
  email: string;
  role: Role;
}

export interface ExportStatus {
  id: string;
  status: 'INITIALIZING' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'ABORTED';
  progress: number;
  status_message: string | null;
  error_message: string | null;
  file_name: string | null;
  download_uri: string | null;
}

export type SelectionItem =
  | { type: 'media'; payload: { media_ids: string[] } }
  | { type: 'cluster'; payload: { cluster_id: string; cluster_filters?: { entity_type: 'IMAGES' }; exclude_media_ids?: string[] } };

export interface Task {
  task_id: string;
  task_type: string;
  status: string;
  status_message: string | null;
  progress_percentage: number;
  error_message: string | null;
}

// ---- Endpoints ----

export const api = {
  me: (signal?: AbortSignal) => request<User>('GET', '/auth/me', { signal }),
  authConfig: () => request<{ signup_open: boolean }>('GET', '/auth/config'),
  login: (email: string, password: string) => request<User>('POST', '/auth', { json: { username: email, password } }),
  signup: (email: string, password: string, name?: string) => request<User>('POST', '/auth/signup', { json: { email, password, ...(name ? { name } : {}) } }),
  logout: () => request<null>('POST', '/auth/logout'),

  apiKeys: () => request<ApiKey[]>('GET', '/api_keys'),
  createApiKey: () => request<{ api_key: string; api_secret: string; message: string }>('GET', '/api_credentials'),
  revokeApiKey: (key: string) => request<null>('DELETE', `/api_keys/${encodeURIComponent(key)}`),

  users: () => request<User[]>('GET', '/users'),
  createUser: (email: string, name: string, password: string) =>
    request<User>('POST', '/users', { json: { email, ...(name ? { name } : {}), ...(password ? { password } : {}) } }),

  datasets: (signal?: AbortSignal) => request<Dataset[]>('GET', '/datasets', { signal }),
  dataset: (id: string, signal?: AbortSignal) => request<Dataset>('GET', `/dataset/${id}`, { signal }),
  deleteDataset: (id: string) => request<{ deleted: boolean }>('DELETE', `/dataset/${id}`, { timeoutMs: 120_000 }),
  failedFiles: (id: string) => request<{ total: number; files: FailedFile[] }>('GET', `/dataset/${id}/failed_files`, { query: { page_size: 100 } }),

  newDataset: (name: string) => request<{ dataset_id: string }>('GET', '/ingestion/new_dataset', { query: { dataset_name: name } }),
  openTransaction: (id: string) => request<{ trans_id: string }>('GET', `/ingestion/${id}/data_files`),
  processFiles: (id: string, transId: string) => request<void>('POST', `/ingestion/${id}/process_files/${transId}`, { timeoutMs: 120_000 }),
  createFromS3: (name: string, bucketPath: string) => {
    const form = new FormData();
    form.set('dataset_name', name);
    form.set('bucket_path', bucketPath);
    return request<{ dataset_id: string }>('POST', '/dataset', { form, timeoutMs: 120_000 });
  },
  reindex: (id: string) => request<void>('POST', `/dataset/${id}/reindex`),

  explore: (id: string, params: ExploreParams, signal?: AbortSignal) => request<ExploreResult>('GET', `/explore/${id}`, { query: { ...params }, signal }),
  explorationMetadata: (id: string, signal?: AbortSignal) => request<ExplorationMetadata>('GET', `/explore/${id}/exploration_metadata`, { signal }),
  issuesSummary: (id: string, duplicateThreshold: number, signal?: AbortSignal) =>
    request<IssueSummary>('GET', `/dataset/${id}/issues_summary`, { query: { duplicate_threshold: duplicateThreshold }, signal }),
  duplicateGroups: (id: string, threshold: number, page: number, pageSize: number, signal?: AbortSignal) =>
    request<DuplicateGroups>('GET', `/dataset/${id}/duplicate_groups`, { query: { threshold, page_number: page, page_size: pageSize }, signal }),
  media: (id: string, mediaId: string, signal?: AbortSignal) => request<MediaDetails>('GET', `/dataset/${id}/media/${mediaId}`, { signal }),
  duplicatesOf: (id: string, mediaId: string, signal?: AbortSignal) => request<string[]>('GET', `/dataset/${id}/media/${mediaId}/duplicates`, { signal }),
  setCaption: (id: string, mediaId: string, caption: string | null) =>
    request<{ media_id: string; caption: string | null }>('PUT', `/dataset/${id}/media/${mediaId}/caption`, { json: { caption } }),
  setLabels: (id: string, mediaId: string, labels: string[]) =>
    request<{ media_id: string; labels: { name: string; source: 'User' }[] }>('PUT', `/dataset/${id}/media/${mediaId}/labels`, { json: { labels } }),
  importAnnotations: (id: string, file: File, options: { format?: AnnotationFormat; source: LabelSource }) => {
    const form = new FormData();
    if (options.format) form.set('format', options.format);
    form.set('source', options.source);
    form.set('file', file, file.name);
    return request<AnnotationReport>('POST', `/dataset/${id}/annotations`, { form, timeoutMs: 600_000 });
  },
  searchByImage: (id: string, file: File) => {
    const form = new FormData();
    form.set('file', file);
    return request<{ anchor_media_id: string; anchor_type: 'UPLOAD' }>('POST', `/dataset/${id}/search-image-similarity`, { form, timeoutMs: 60_000 });
  },

  members: (id: string) => request<Member[]>('GET', `/manage/${id}/share`),
  invite: (id: string, email: string, role: 'viewer' | 'editor') => request<null>('PUT', `/manage/${id}/invite`, { json: { grant_to_user_email: email, role } }),
  revoke: (id: string, email: string) => request<null>('DELETE', `/manage/${id}/share/${encodeURIComponent(email)}`),

  tasks: (id: string, signal?: AbortSignal) => request<{ tasks: Task[] }>('GET', '/tasks', { query: { dataset_id: id, page_size: 5 }, signal }),

  exportAll: (id: string, options: { fileName: string; format: ExportFormat; includeImages: boolean }) =>
    request<{ id: string }>('GET', `/dataset/${id}/export_context_async`, {
      query: { file_name: options.fileName, export_format: options.format, include_images: options.includeImages },
    }),
  exportSelection: (id: string, selection: SelectionItem[], options: { fileName: string; format: ExportFormat; includeImages: boolean }) =>
    request<{ id: string }>('POST', `/dataset/${id}/export_entities_async`, {
      query: { file_name: options.fileName, export_format: options.format, include_images: options.includeImages },
      json: { media_selection: selection },
    }),
  exportStatus: (id: string, taskId: string, signal?: AbortSignal) => request<ExportStatus>('GET', `/dataset/${id}/export_status`, { query: { export_task_id: taskId }, signal }),
};

/** Where a media's thumbnail is served, for ids the API gave without URIs. */
export const thumbnailUrl = (datasetId: string, mediaId: string) => `${API}/dataset/${datasetId}/media/${mediaId}/thumbnail`;
