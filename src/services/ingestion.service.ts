import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import { BadRequestError, ConflictError, NotFoundError, PayloadTooLargeError, RequestValidationError } from '../domain/errors.js';
import type { MediaRepository, NewMediaRow } from '../db/media.repository.js';
import { OperationLockedError, type TasksRepository } from '../db/tasks.repository.js';
import type { DatasetsRepository } from '../db/datasets.repository.js';
import type { JobQueue } from '../jobs/job-queue.js';
import { jobIds } from '../jobs/pipeline.js';
import { checkMediaFile, type MediaKind } from '../pipeline/media-types.js';
import { blobKeys, type BlobStore } from '../storage/blob-store.js';
import { FileTooLargeError, type StagedFile, type UploadStaging } from '../storage/upload-staging.js';
import type { AccessService } from './access.service.js';
import type { Clock } from './clock.js';
import { newMediaRow } from './new-media-row.js';
import { asSourceRequestError, type ImportOrigin, type MediaImportService } from './media-import.service.js';
import type { DatasetsService } from './datasets.service.js';

/** One part of a multipart upload, as the HTTP layer hands it over. */
export interface UploadPart {
  fieldName: string;
  fileName: string;
  stream: Readable;
}

export interface UploadLimits {
  maxFileBytes: number;
  maxRequestFiles: number;
}

/** `source_type` of a dataset created from a location, by the location's kind. */
const SOURCE_TYPES = { s3: 'BUCKET', local: 'LOCAL', http: 'URL' } as const;

const ARCHIVE_REFUSAL = 'archives (.zip, .tar, .tar.gz) are not supported for initial dataset creation; upload individual files or use S3';

/** The field the Visual Layer local-upload API reads files from (`files[]` there is a 422). */
const FILES_FIELD = 'files';

interface AcceptedFile {
  staged: StagedFile;
  fileName: string;
  kind: MediaKind;
  extension: string;
}

/** Creating a dataset from local files: new_dataset → data_files → upload → process_files. */
export class IngestionService {
  constructor(
    private readonly datasetsService: DatasetsService,
    private readonly datasets: DatasetsRepository,
    private readonly media: MediaRepository,
    private readonly tasks: TasksRepository,
    private readonly blobs: BlobStore,
    private readonly staging: UploadStaging,
    private readonly queue: JobQueue,
    private readonly access: AccessService,
    private readonly clock: Clock,
    private readonly limits: UploadLimits,
    private readonly imports: MediaImportService,
  ) {}

  async newDataset(userId: string, name: string): Promise<{ dataset_id: string }> {
    const dataset = await this.datasetsService.create(userId, { name, sourceType: 'LOCAL' });
    return { dataset_id: dataset.id };
  }

  /**
   * A dataset from a location (`POST /dataset` with an S3 `bucket_path`; the operator's folder, URL or
   * manifest): the location is checked to hold media before anything is created, then indexed.
   */
  async createFromLocation(userId: string, input: { name: string; location: string; origin: ImportOrigin }): Promise<{ dataset_id: string; taskId: string }> {
    const location = input.location.trim();
    const kind = this.imports.kindOf(location);
    try {
      if (input.name.trim() === '') throw new BadRequestError('dataset_name must not be empty');
      if (kind === null || (input.origin === 'api' && kind !== 's3')) throw new BadRequestError(`Invalid S3 URI or no media files found at ${location}`);
      if (!(await this.imports.holdsMedia(location, input.origin))) throw new BadRequestError(`Invalid S3 URI or no media files found at ${location}`);
    } catch (error) {
      throw asSourceRequestError(error, location, input.origin);
    }
    const dataset = await this.datasetsService.create(userId, { name: input.name, sourceType: SOURCE_TYPES[kind!] });
    const taskId = crypto.randomUUID();
    const now = this.clock.now().toISOString();
    await this.tasks.insertNew({ id: taskId, datasetId: dataset.id, taskType: 'DATASET_CREATION', createdBy: userId, createdAt: now, statusMessage: 'Queued', holdsLock: true });
    await this.imports.create({
      datasetId: dataset.id,
      taskId,
      kind: kind!,
      location,
      origin: input.origin,
      previousStatus: 'DRAFT',
      autoReindex: false,
    });
    await this.datasets.update(dataset.id, { status: 'INDEXING', progress: 0, updated_at: now });
    await this.queue.enqueue('dataset.ingest', { datasetId: dataset.id, taskId }, { jobId: jobIds.datasetIngest(taskId) });
    return { dataset_id: dataset.id, taskId };
  }

  async openTransaction(userId: string, datasetId: string): Promise<{ trans_id: string }> {
    const { dataset } = await this.access.require(userId, datasetId, 'editor');
    if (dataset.status !== 'DRAFT') {
      throw new ConflictError(`Dataset ${dataset.id} has already been processed; use add_media to add files to it`);
    }
    const id = crypto.randomUUID();
    await this.media.insertTransaction({
      id,
      dataset_id: dataset.id,
      status: 'OPEN',
      created_by: userId,
      created_at: this.clock.now().toISOString(),
      processed_at: null,
    });
    return { trans_id: id };
  }

  /**
   * Stores one request's files in the transaction, all or nothing: every file is streamed to
   * scratch space and checked first; one bad file rejects the request and nothing of it is kept.
   */
  async upload(userId: string, datasetId: string, transactionId: string, parts: AsyncIterable<UploadPart>): Promise<{ files: number }> {
    await this.requireOpenTransaction(userId, datasetId, transactionId);

    const accepted: AcceptedFile[] = [];
    const problems: string[] = [];
    const staged: StagedFile[] = [];
    let fileCount = 0;
    try {
      for await (const part of parts) {
        if (part.fieldName !== FILES_FIELD) {
          part.stream.resume();
          continue;
        }
        fileCount += 1;
        if (fileCount > this.limits.maxRequestFiles) {
          throw new PayloadTooLargeError(`Too many files in one request: the limit is ${this.limits.maxRequestFiles}; split the upload into several requests`);
        }
        const fileName = part.fileName || `unnamed-${fileCount}`;
        const file = await this.stageOne(part, fileName);
        staged.push(file);
        const verdict = checkMediaFile(fileName, file.head, ARCHIVE_REFUSAL);
        if ('problem' in verdict) problems.push(`${fileName} (${verdict.problem})`);
        else accepted.push({ staged: file, fileName, ...verdict });
      }
      if (fileCount === 0) {
        throw new RequestValidationError([{ loc: ['body', FILES_FIELD], msg: 'Field required', type: 'missing' }]);
      }
      if (problems.length > 0) {
        throw new BadRequestError(`Unsupported file format; nothing from this request was stored: ${problems.join('; ')}`);
      }
      // The transaction may have been processed while this request streamed in.
      await this.requireOpenTransaction(userId, datasetId, transactionId);
      await this.commit(datasetId, transactionId, accepted);
      return { files: accepted.length };
    } finally {
      // Committed files were moved into the store; this removes only what is left in scratch space.
      await this.staging.discard(staged);
    }
  }

  /** Starts processing: the transaction closes, the dataset goes INDEXING, and a job does the rest. */
  async processFiles(userId: string, datasetId: string, transactionId: string): Promise<void> {
    const transaction = await this.requireOpenTransaction(userId, datasetId, transactionId);
    const dataset = await this.datasets.findById(datasetId);
    if (!dataset || dataset.status !== 'DRAFT') {
      throw new ConflictError(`Dataset ${datasetId} has already been processed; use add_media to add files to it`);
    }
    if ((await this.media.countTransactionMedia(transaction.id)) === 0) {
      throw new BadRequestError(`No files were uploaded in transaction ${transaction.id}; upload files before calling process_files`);
    }
    const now = this.clock.now().toISOString();
    const taskId = crypto.randomUUID();
    try {
      await this.tasks.insertNew({
        id: taskId,
        datasetId,
        taskType: 'DATASET_CREATION',
        createdBy: userId,
        createdAt: now,
        statusMessage: 'Queued',
        holdsLock: true,
      });
    } catch (error) {
      if (error instanceof OperationLockedError) {
        throw new ConflictError(`Operation 'process_files' is blocked while ${error.activeTask.task_type} task is running`);
      }
      throw error;
    }
    await this.media.markTransactionProcessed(transaction.id, now);
    await this.datasets.update(datasetId, { status: 'INDEXING', progress: 0, fatal_error_msg: null, updated_at: now });
    await this.queue.enqueue('dataset.ingest', { datasetId, taskId }, { jobId: jobIds.datasetIngest(taskId) });
  }

  private async requireOpenTransaction(userId: string, datasetId: string, transactionId: string) {
    await this.access.require(userId, datasetId, 'editor');
    const transaction = await this.media.findTransaction(datasetId, transactionId);
    if (!transaction) throw new NotFoundError('Transaction not found');
    if (transaction.status !== 'OPEN') throw new ConflictError(`Transaction ${transactionId} has already been processed`);
    return transaction;
  }

  private async stageOne(part: UploadPart, fileName: string): Promise<StagedFile> {
    try {
      return await this.staging.stage(part.stream, this.limits.maxFileBytes);
    } catch (error) {
      if (error instanceof FileTooLargeError) {
        throw new PayloadTooLargeError(`File too large: ${fileName} exceeds the limit of ${this.limits.maxFileBytes} bytes per file`);
      }
      throw error;
    }
  }

  private async commit(datasetId: string, transactionId: string, files: AcceptedFile[]): Promise<void> {
    const now = this.clock.now().toISOString();
    const rows: NewMediaRow[] = [];
    for (const file of files) {
      const id = crypto.randomUUID();
      const blobKey = blobKeys.media(datasetId, id, file.extension);
      await this.blobs.putFile(blobKey, file.staged.path);
      rows.push(
        newMediaRow({
          id,
          datasetId,
          transactionId,
          mediaType: file.kind,
          originalUri: file.fileName,
          blobKey,
          fileSize: file.staged.size,
          sha256: file.staged.sha256,
          createdAt: now,
        }),
      );
    }
    await this.media.insertMany(rows);
  }
}
