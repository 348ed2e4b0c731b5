import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BadRequestError, ConflictError, ForbiddenError, NotFoundError } from '../domain/errors.js';
import { legacyStatus } from '../domain/dataset-status.js';
import { isActiveTaskStatus, type TaskStatus } from '../domain/tasks.js';
import type { DatasetRow, DatasetsRepository } from '../db/datasets.repository.js';
import type { ExportRepository } from '../db/export.repository.js';
import type { TasksRepository } from '../db/tasks.repository.js';
import type { UsersRepository } from '../db/users.repository.js';
import { DOWNLOAD_LINK_TTL_SECONDS, downloadPath, signDownload, verifyDownload } from '../export/download-link.js';
import type { ExportFormat } from '../export/export-item.js';
import { writeExportZip, type ExportSelection } from '../export/export-writer.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { Keyring } from '../security/keyring.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { AccessService } from './access.service.js';
import type { Clock } from './clock.js';

export const exportKeys = {
  zip: (datasetId: string, exportId: string) => `datasets/${datasetId}/exports/${exportId}.zip`,
  /** What was asked for, written when the export is requested; the job re-reads it by id. */
  request: (datasetId: string, exportId: string) => `datasets/${datasetId}/exports/${exportId}.json`,
};

export const exportJobId = (exportId: string) => `${exportId}:dataset.export`;

/** An export request as stored next to its zip. */
export interface ExportRequest {
  fileName: string;
  format: ExportFormat;
  includeImages: boolean;
  selection: ExportSelection | null;
  baseUrl: string;
  requestedBy: string;
  requestedAt: string;
}

export interface ExportStatusView {
  id: string;
  dataset_id: string;
  status: TaskStatus;
  progress: number;
  status_message: string | null;
  error_message: string | null;
  file_name: string | null;
  export_format: ExportFormat | null;
  include_images: boolean | null;
  created_at: string;
  end_time: string | null;
  download_uri: string | null;
}

export interface ExportOptions {
  /** Scratch space for zips being written (inside the data dir). */
  workRoot: string;
}

const MAX_SELECTION_IDS = 100_000;

/** Full and selective exports: request (task + job), the job itself, status, signed download, CLI. */
export class ExportService {
  constructor(
    private readonly datasets: DatasetsRepository,
    private readonly exportsRepo: ExportRepository,
    private readonly tasks: TasksRepository,
    private readonly users: UsersRepository,
    private readonly blobs: BlobStore,
    private readonly queue: JobQueue,
    private readonly access: AccessService,
    private readonly keyring: Keyring,
    private readonly clock: Clock,
    private readonly options: ExportOptions,
  ) {}

  /** Starts an export of the whole dataset (`selection` null) or of the selected media; answers the task id. */
  async start(
    userId: string,
    datasetId: string,
    input: { fileName?: string | undefined; format: ExportFormat; includeImages: boolean; selection: ExportSelection | null; baseUrl: string },
  ): Promise<{ id: string }> {
    const { dataset } = await this.access.require(userId, datasetId, 'viewer');
    assertReady(dataset);
    if (input.selection) await this.validateSelection(datasetId, input.selection);

    const now = this.clock.now().toISOString();
    const id = crypto.randomUUID();
    const request: ExportRequest = {
      fileName: input.fileName?.trim() || 'export.zip',
      format: input.format,
      includeImages: input.includeImages,
      selection: input.selection,
      baseUrl: input.baseUrl,
      requestedBy: userId,
      requestedAt: now,
    };
    await this.blobs.putBuffer(exportKeys.request(datasetId, id), Buffer.from(JSON.stringify(request)));
    await this.tasks.insertNew({
      id,
      datasetId,
      taskType: 'EXPORT',
      createdBy: userId,
      createdAt: now,
      statusMessage: input.selection ? 'Selective export queued' : 'Export queued',
      holdsLock: false,
    });
    await this.queue.enqueue('dataset.export', { datasetId, exportId: id }, { jobId: exportJobId(id), maxAttempts: 2 });
    return { id };
  }

  async status(userId: string, datasetId: string, exportId: string, baseUrl: string): Promise<ExportStatusView> {
    await this.access.require(userId, datasetId, 'viewer');
    const task = await this.tasks.findById(exportId);
    if (!task || task.dataset_id !== datasetId || task.task_type !== 'EXPORT') throw new NotFoundError('Export task not found');
    const request = await this.readRequest(datasetId, exportId).catch(() => null);
    let downloadUri: string | null = null;
    if (task.status === 'COMPLETED') {
      const grant = { datasetId, exportId, expires: Math.floor(this.clock.now().getTime() / 1000) + DOWNLOAD_LINK_TTL_SECONDS };
      downloadUri = `${baseUrl}${downloadPath(grant, signDownload(this.keyring, grant))}`;
    }
    return {
      id: task.id,
      dataset_id: task.dataset_id,
      status: task.status,
      progress: task.progress,
      status_message: task.status_message,
      error_message: task.error_message,
      file_name: request?.fileName ?? null,
      export_format: request?.format ?? null,
      include_images: request?.includeImages ?? null,
      created_at: task.created_at,
      end_time: task.end_time,
      download_uri: downloadUri,
    };
  }

  /** The signed, credential-free download: the zip's bytes and the name to save them under. */
  async download(datasetId: string, exportId: string, expires: string, signature: string): Promise<{ stream: Readable; fileName: string }> {
    const expiresAt = /^\d{1,12}$/.test(expires) ? Number(expires) : NaN;
    if (!Number.isFinite(expiresAt) || !verifyDownload(this.keyring, { datasetId, exportId, expires: expiresAt }, signature)) {
      throw new ForbiddenError('Invalid download link: the signature does not match');
    }
    if (expiresAt * 1000 < this.clock.now().getTime()) throw new ForbiddenError('This download link has expired; ask export_status for a new one');
    const task = await this.tasks.findById(exportId);
    const key = exportKeys.zip(datasetId, exportId);
    if (!task || task.dataset_id !== datasetId || task.status !== 'COMPLETED' || !(await this.blobs.exists(key))) {
      throw new NotFoundError('Export not found');
    }
    const request = await this.readRequest(datasetId, exportId).catch(() => null);
    return { stream: await this.blobs.get(key), fileName: request?.fileName ?? 'export.zip' };
  }

  /** The `dataset.export` job: writes the zip into the blob store and completes the task. */
  async run(datasetId: string, exportId: string): Promise<void> {
    const task = await this.tasks.findById(exportId);
    if (!task || !isActiveTaskStatus(task.status)) return;
    const dataset = await this.datasets.findById(datasetId);
    if (!dataset) {
      await this.tasks.update(exportId, { status: 'ABORTED', status_message: 'Dataset deleted', end_time: this.clock.now().toISOString() });
      return;
    }
    const request = await this.readRequest(datasetId, exportId);
    const user = await this.users.findById(request.requestedBy);
    await this.tasks.update(exportId, { status: 'RUNNING', status_message: 'Exporting media', start_time: this.clock.now().toISOString() });

    const workDir = path.join(this.options.workRoot, exportId);
    await fsp.rm(workDir, { recursive: true, force: true });
    await fsp.mkdir(workDir, { recursive: true });
    try {
      const zipPath = path.join(workDir, 'export.zip');
      const { total } = await this.write(dataset, request, user?.email ?? request.requestedBy, workDir, zipPath, async (done, all) => {
        const progress = all === 0 ? 95 : Math.min(95, Math.floor((95 * done) / all));
        await this.tasks.update(exportId, { progress, status_message: `Exported ${done} of ${all} media items scanned` });
      });
      await this.blobs.putFile(exportKeys.zip(datasetId, exportId), zipPath);
      await this.tasks.update(exportId, {
        status: 'COMPLETED',
        progress: 100,
        status_message: `Exported ${total} media item${total === 1 ? '' : 's'}`,
        end_time: this.clock.now().toISOString(),
      });
    } finally {
      await fsp.rm(workDir, { recursive: true, force: true });
    }
  }

  async fail(_datasetId: string, exportId: string, error: Error): Promise<void> {
    await this.tasks.update(exportId, {
      status: 'FAILED',
      status_message: 'Export failed',
      error_message: error.message,
      end_time: this.clock.now().toISOString(),
    });
  }

  /** `vizdex export`: the same export, in this process, straight to a file. */
  async exportToFile(datasetId: string, input: { format: ExportFormat; includeImages: boolean; baseUrl: string; exportedBy: string }, outPath: string): Promise<{ total: number }> {
    const dataset = await this.datasets.findById(datasetId);
    if (!dataset) throw new NotFoundError('Dataset not found');
    assertReady(dataset);
    const workDir = path.join(this.options.workRoot, `cli-${crypto.randomUUID()}`);
    await fsp.mkdir(workDir, { recursive: true });
    try {
      const zipPath = path.join(workDir, 'export.zip');
      const request: ExportRequest = {
        fileName: path.basename(outPath),
        format: input.format,
        includeImages: input.includeImages,
        selection: null,
        baseUrl: input.baseUrl,
        requestedBy: input.exportedBy,
        requestedAt: this.clock.now().toISOString(),
      };
      const result = await this.write(dataset, request, input.exportedBy, workDir, zipPath);
      await fsp.mkdir(path.dirname(path.resolve(outPath)), { recursive: true });
      await fsp.copyFile(zipPath, outPath);
      return result;
    } finally {
      await fsp.rm(workDir, { recursive: true, force: true });
    }
  }

  private write(
    dataset: DatasetRow,
    request: ExportRequest,
    exportedBy: string,
    workDir: string,
    zipPath: string,
    onProgress?: (done: number, total: number) => Promise<void>,
  ): Promise<{ total: number }> {
    return writeExportZip(this.exportsRepo, this.blobs, {
      datasetId: dataset.id,
      format: request.format,
      includeImages: request.includeImages,
      selection: request.selection,
      baseUrl: request.baseUrl,
      info: {
        dataset: dataset.display_name,
        description: dataset.description,
        dataset_url: `${request.baseUrl}/dataset/${dataset.id}/data`,
        dataset_creation_time: dataset.created_at,
        exported_by: exportedBy,
      },
      exportTime: this.clock.now().toISOString(),
      workDir,
      zipPath,
      onProgress,
    });
  }

  private async validateSelection(datasetId: string, selection: ExportSelection): Promise<void> {
    const ids = [...selection.mediaIds, ...selection.clusters.flatMap((c) => c.excludeMediaIds)];
    if (ids.length > MAX_SELECTION_IDS) throw new BadRequestError(`media_selection names more than ${MAX_SELECTION_IDS} media ids`);
    const requested = [...new Set(selection.mediaIds)];
    const found = await this.exportsRepo.existingMediaIds(datasetId, requested);
    const missing = requested.filter((id) => !found.has(id));
    if (missing.length > 0) {
      const shown = missing.slice(0, 10).join(', ');
      throw new BadRequestError(`Media not found in dataset ${datasetId}: ${shown}${missing.length > 10 ? ` and ${missing.length - 10} more` : ''}`);
    }
    for (const cluster of selection.clusters) {
      if (!(await this.exportsRepo.clusterExists(datasetId, cluster.clusterId))) {
        throw new BadRequestError(`Cluster ${cluster.clusterId} not found in dataset ${datasetId}`);
      }
    }
  }

  private async readRequest(datasetId: string, exportId: string): Promise<ExportRequest> {
    const stream = await this.blobs.get(exportKeys.request(datasetId, exportId));
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as ExportRequest;
  }
}

function assertReady(dataset: DatasetRow): void {
  if (dataset.status !== 'READY') {
    throw new ConflictError(`Dataset is not in READY status (current status: ${legacyStatus(dataset.status)})`);
  }
}
