/** A minimal client for the real server over HTTP (fetch), as an outside script would talk to it. */
import { mintJwt } from '../helpers/harness.js';

export interface Credentials {
  api_key: string;
  api_secret: string;
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  text: string;
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly credentials: Credentials,
  ) {}

  /** Same credentials, another server (after a restart the port changes). */
  on(baseUrl: string): ApiClient {
    return new ApiClient(baseUrl, this.credentials);
  }

  async token(): Promise<string> {
    return mintJwt(this.credentials.api_key, this.credentials.api_secret);
  }

  async request<T = unknown>(method: string, path: string, body?: FormData | object): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { authorization: `Bearer ${await this.token()}` };
    let payload: FormData | string | undefined;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const response = await fetch(`${this.baseUrl}/api/v1${path}`, { method, headers, body: payload ?? null });
    const text = await response.text();
    let parsed: unknown = undefined;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    return { status: response.status, body: parsed as T, text };
  }

  get<T = unknown>(path: string): Promise<ApiResponse<T>> {
    return this.request<T>('GET', path);
  }

  post<T = unknown>(path: string, body?: FormData | object): Promise<ApiResponse<T>> {
    return this.request<T>('POST', path, body);
  }
}

/** The fields of `GET /dataset/{id}` the tests look at. */
export interface DatasetBody {
  id: string;
  status: string;
  status_new: string;
  progress: number;
  n_images: number;
  n_videos: number;
  n_failed_files: number;
  fatal_error_msg: string | null;
  role: string;
  failed_files?: { media_id: string; file_name: string; original_media_uri: string; reason: string }[];
}

export interface TaskBody {
  task_id: string;
  dataset_id: string;
  task_type: string;
  status: string;
  progress_percentage: number;
  error_message: string | null;
}

/** Polls `GET /dataset/{id}` until `done` holds for it; throws with the last state after `timeoutMs`. */
export async function pollDataset(
  api: ApiClient,
  datasetId: string,
  done: (dataset: DatasetBody) => boolean,
  options: { intervalMs?: number; timeoutMs?: number } = {},
): Promise<DatasetBody> {
  const { intervalMs = 100, timeoutMs = 60_000 } = options;
  const deadline = Date.now() + timeoutMs;
  let last: ApiResponse<DatasetBody> | undefined;
  for (;;) {
    last = await api.get<DatasetBody>(`/dataset/${datasetId}`);
    if (last.status !== 200) throw new Error(`GET /dataset/${datasetId} answered ${last.status}: ${last.text}`);
    if (done(last.body)) return last.body;
    if (Date.now() > deadline) throw new Error(`dataset ${datasetId} did not reach the expected state within ${timeoutMs} ms; last: ${last.text}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
