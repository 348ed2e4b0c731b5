import crypto from 'node:crypto';
import { BadRequestError } from '../domain/errors.js';
import type { DatasetRow, DatasetSort, DatasetsRepository } from '../db/datasets.repository.js';
import type { MediaRepository } from '../db/media.repository.js';
import type { TasksRepository } from '../db/tasks.repository.js';
import type { UsersRepository } from '../db/users.repository.js';
import { blobKeys, type BlobStore } from '../storage/blob-store.js';
import type { AccessService } from './access.service.js';
import type { Clock } from './clock.js';
import { toDatasetView, type DatasetView, type FailedFileView } from './dataset-view.js';

/** Failed files listed inline in `GET /dataset/{id}`; the full list is a paged sub-resource. */
const INLINE_FAILED_FILES = 100;
const MAX_NAME_LENGTH = 255;

export class DatasetsService {
  constructor(
    private readonly datasets: DatasetsRepository,
    private readonly media: MediaRepository,
    private readonly tasks: TasksRepository,
    private readonly users: UsersRepository,
    private readonly blobs: BlobStore,
    private readonly access: AccessService,
    private readonly clock: Clock,
  ) {}

  async create(ownerId: string, input: { name: string; description?: string; sourceType: string }): Promise<DatasetRow> {
    const name = input.name.trim();
    if (name === '') throw new BadRequestError('dataset_name must not be empty');
    if (name.length > MAX_NAME_LENGTH) throw new BadRequestError(`dataset_name must be at most ${MAX_NAME_LENGTH} characters`);
    // Control characters (NUL above all, which PostgreSQL cannot store) have no place in a name.
    if (/[\u0000-\u001f\u007f]/.test(name)) throw new BadRequestError('dataset_name must not contain control characters');
    const now = this.clock.now().toISOString();
    const dataset: DatasetRow = {
      id: crypto.randomUUID(),
      display_name: name,
      description: input.description ?? '',
      source_type: input.sourceType,
      owned_by: ownerId,
      created_at: now,
      updated_at: now,
      status: 'DRAFT',
      progress: 0,
      n_images: 0,
      n_videos: 0,
      n_video_frames: 0,
      n_objects: 0,
      n_failed: 0,
      fatal_error_msg: null,
      source_dataset_id: null,
      embedding_config: null,
      is_hidden: 0,
    };
    await this.datasets.insertWithOwner(dataset);
    return dataset;
  }

  async get(userId: string, datasetId: string): Promise<DatasetView> {
    const { dataset, role } = await this.access.require(userId, datasetId, 'viewer');
    const [owner, failed] = await Promise.all([
      this.users.findById(dataset.owned_by),
      dataset.n_failed > 0 ? this.listFailedRows(dataset.id, INLINE_FAILED_FILES, 0) : Promise.resolve([]),
    ]);
    return toDatasetView(dataset, role, owner?.email ?? null, failed);
  }

  async list(userId: string, options: { sortBy: DatasetSort; includeHidden: boolean }): Promise<DatasetView[]> {
    const rows = await this.datasets.listForUser(userId, options);
    const ownerEmails = new Map<string, string | null>();
    for (const row of rows) {
      if (!ownerEmails.has(row.owned_by)) ownerEmails.set(row.owned_by, (await this.users.findById(row.owned_by))?.email ?? null);
    }
    return rows.map(({ role, ...row }) => toDatasetView(row, role, ownerEmails.get(row.owned_by) ?? null));
  }

  async listFailedFiles(userId: string, datasetId: string, page: { limit: number; offset: number }): Promise<{ total: number; files: FailedFileView[] }> {
    const { dataset } = await this.access.require(userId, datasetId, 'viewer');
    return { total: dataset.n_failed, files: await this.listFailedRows(dataset.id, page.limit, page.offset) };
  }

  /** Owner only. Running work on the dataset is aborted; its handlers find the dataset gone and stop. */
  async delete(userId: string, datasetId: string): Promise<void> {
    const { dataset } = await this.access.require(userId, datasetId, 'owner');
    await this.tasks.abortActive(dataset.id, this.clock.now().toISOString());
    await this.datasets.delete(dataset.id);
    await this.blobs.deletePrefix(blobKeys.datasetPrefix(dataset.id));
  }

  private async listFailedRows(datasetId: string, limit: number, offset: number): Promise<FailedFileView[]> {
    const rows = await this.media.listFailed(datasetId, limit, offset);
    return rows.map((r) => ({ media_id: r.id, file_name: r.file_name, original_media_uri: r.original_media_uri, reason: r.error ?? 'unknown error' }));
  }
}
