import crypto from 'node:crypto';
import type { DatasetRow, DatasetsRepository } from '../db/datasets.repository.js';
import type { MediaRepository, NewMediaRow } from '../db/media.repository.js';
import type { MediaImportSourceKind } from '../db/schema.js';
import { OperationLockedError, type TasksRepository } from '../db/tasks.repository.js';
import type { DatasetStatus } from '../domain/dataset-status.js';
import { BadRequestError, ConflictError, ForbiddenError, PayloadTooLargeError, RequestValidationError, ServerError } from '../domain/errors.js';
import type { TaskType } from '../domain/tasks.js';
import type { JobQueue } from '../jobs/job-queue.js';
import { jobIds } from '../jobs/pipeline.js';
import { checkMediaFile, classifyFileName, fileExtension, type MediaKind } from '../pipeline/media-types.js';
import { archiveFormatOf, CorruptArchiveError, scanArchive, UnsafeArchiveError, type ArchiveLimits } from '../sources/archive-reader.js';
import type { SourceCredentials } from '../sources/media-source.js';
import { blobKeys, type BlobStore } from '../storage/blob-store.js';
import { FileTooLargeError, type StagedFile, type UploadStaging } from '../storage/upload-staging.js';
import type { AccessService } from './access.service.js';
import type { Clock } from './clock.js';
import { newMediaRow } from './new-media-row.js';
import type { UploadPart } from './ingestion.service.js';
import { asSourceRequestError, type ImportOrigin, type MediaImportService } from './media-import.service.js';
import type { AnnotationFormat, LabelSource } from '../annotations/annotation-record.js';
import type { AttachedAnnotations } from './annotations.service.js';

/** A multipart (or urlencoded) form as the HTTP layer streams it: text fields and file parts in body order. */
export type FormPart = { kind: 'field'; name: string; value: string } | ({ kind: 'file' } & UploadPart);

/** What add_media needs of annotations: a file sent alongside the media, checked now, applied by the job. */
export interface AnnotationAttachments {
  checkAttachment(file: AttachedAnnotations): Promise<{ format: AnnotationFormat; source: LabelSource }>;
  attachToTask(userId: string, datasetId: string, taskId: string, file: AttachedAnnotations, checked: { format: AnnotationFormat; source: LabelSource }): Promise<void>;
}

/** STS AssumeRole, behind a function so services never touch the AWS SDK. */
export type RoleAssumer = (roleArn: string) => Promise<SourceCredentials>;

export interface AddMediaOptions {
  /** `VIZDEX_ADD_MEDIA_ENABLED`. */
  enabled: boolean;
  maxFileBytes: number;
  maxRequestFiles: number;
  archive: ArchiveLimits;
}

const ADDABLE: ReadonlySet<DatasetStatus> = new Set(['READY', 'PARTIAL INDEX']);
const FILES_FIELDS = new Set(['files[]', 'files']);
const ARCHIVE_FIELD = 'archive';
const ANNOTATIONS_FIELD = 'annotations';
const EXACTLY_ONE_SOURCE = 'Exactly one media source must be provided: files[], s3_uri, or archive';
const ARCHIVE_IN_FILES = 'archives are sent in the `archive` field, one per request';
const BOOLEAN_FIELDS = ['auto_reindex', 'use_spot'] as const;
const COUNT_FIELDS = ['batch_n_videos', 'batch_n_images', 'batch_n_objects'] as const;

interface ParsedForm {
  fields: Map<string, string[]>;
  files: { staged: StagedFile; fileName: string; kind: MediaKind; extension: string }[];
  fileProblems: string[];
  fileCount: number;
  archives: { staged: StagedFile; fileName: string }[];
  annotations: { staged: StagedFile; fileName: string } | null;
  staged: StagedFile[];
}

interface AddMediaSettings {
  autoReindex: boolean;
  hints: Record<string, number | boolean>;
  /** An annotation file sent with the media (checked), applied once they are listed. */
  annotations?: { file: AttachedAnnotations; checked: { format: AnnotationFormat; source: LabelSource } };
}

/**
 * Adding media to an indexed dataset (`add_media`: files, an archive, an S3 folder or manifest; or a
 * location an operator names) and reindexing it, with the status flow and 409s of SPEC §4.
 * The request does what can fail fast — checks, storing uploads, probing the source — and a job does
 * the rest: READY → READ ONLY → PARTIAL INDEX (→ INDEXING → READY with auto_reindex).
 */
export class AddMediaService {
  constructor(
    private readonly datasets: DatasetsRepository,
    private readonly media: MediaRepository,
    private readonly tasks: TasksRepository,
    private readonly imports: MediaImportService,
    private readonly assumeRole: RoleAssumer,
    private readonly blobs: BlobStore,
    private readonly staging: UploadStaging,
    private readonly queue: JobQueue,
    private readonly access: AccessService,
    private readonly clock: Clock,
    private readonly options: AddMediaOptions,
    private readonly annotations: AnnotationAttachments,
  ) {}

  /** `POST /dataset/{id}/add_media`: exactly one of files[], archive, s3_uri, with the seed's options. */
  async addMedia(userId: string, datasetId: string, parts: AsyncIterable<FormPart>): Promise<void> {
    const { dataset } = await this.access.require(userId, datasetId, 'editor');
    try {
      await this.checkAddable(dataset);
    } catch (error) {
      // Read the body anyway: a client still sending its upload would see a reset, not this answer.
      for await (const part of parts) if (part.kind === 'file') part.stream.resume();
      throw error;
    }
    const form = await this.readForm(parts);
    try {
      const settings = parseSettings(form.fields);
      if (form.annotations) {
        const file: AttachedAnnotations = {
          fileName: form.annotations.fileName,
          filePath: form.annotations.staged.path,
          fields: { annotations_format: form.fields.get('annotations_format')?.[0], annotations_source: form.fields.get('annotations_source')?.[0] },
        };
        settings.annotations = { file, checked: await this.annotations.checkAttachment(file) };
      }
      const s3Uris = (form.fields.get('s3_uri') ?? []).map((v) => v.trim()).filter((v) => v !== '');
      const sources = (form.fileCount > 0 ? 1 : 0) + form.archives.length + s3Uris.length;
      if (sources !== 1) throw new BadRequestError(EXACTLY_ONE_SOURCE);
      const assumeRoleArn = form.fields.get('assume_role')?.[0]?.trim() || null;
      if (assumeRoleArn && s3Uris.length === 0) throw new BadRequestError('assume_role applies only to an s3_uri source');

      if (form.fileCount > 0) await this.addUploadedFiles(userId, dataset, form, settings);
      else if (form.archives.length > 0) await this.addArchive(userId, dataset, form.archives[0]!, settings);
      else await this.addLocation(userId, dataset, s3Uris[0]!, 'api', settings, assumeRoleArn);
    } finally {
      await this.staging.discard(form.staged);
    }
  }

  /** The operator's add_media (CLI, pipeline service): a local folder, S3 location, URL or manifest. */
  async addFromLocation(userId: string, datasetId: string, location: string, autoReindex: boolean): Promise<{ taskId: string }> {
    const { dataset } = await this.access.require(userId, datasetId, 'editor');
    await this.checkAddable(dataset);
    return this.addLocation(userId, dataset, location, 'operator', { autoReindex, hints: {} }, null);
  }

  /** `POST /dataset/{id}/reindex`: re-clusters everything; only from PARTIAL INDEX. */
  async reindex(userId: string, datasetId: string): Promise<{ taskId: string }> {
    const { dataset } = await this.access.require(userId, datasetId, 'editor');
    await this.refuseWhileLocked(dataset.id, 'reindex');
    if (dataset.status !== 'PARTIAL INDEX') throw notPartialIndex(dataset);
    const taskId = await this.lock(dataset.id, userId, 'REINDEX', 'reindex', 'Queued');
    const current = await this.datasets.findById(dataset.id);
    if (current?.status !== 'PARTIAL INDEX') {
      await this.release(taskId);
      throw notPartialIndex(current ?? dataset);
    }
    await this.datasets.update(dataset.id, { status: 'INDEXING', progress: 0, updated_at: this.clock.now().toISOString() });
    await this.queue.enqueue('dataset.index', { datasetId: dataset.id, taskId }, { jobId: jobIds.datasetIndex(taskId) });
    return { taskId };
  }

  private async checkAddable(dataset: DatasetRow): Promise<void> {
    if (!this.options.enabled) throw new ForbiddenError('Add media feature is not enabled');
    if (dataset.embedding_config === null) throw new BadRequestError(`Dataset ${dataset.id} has no embedding_config — index the dataset first.`);
    await this.refuseWhileLocked(dataset.id, 'add_media');
    if (!ADDABLE.has(dataset.status)) throw notAddable(dataset);
  }

  private async addUploadedFiles(userId: string, dataset: DatasetRow, form: ParsedForm, settings: AddMediaSettings): Promise<void> {
    if (form.fileProblems.length > 0) {
      throw new BadRequestError(`Unsupported file format; nothing from this request was stored: ${form.fileProblems.join('; ')}`);
    }
    await this.start(userId, dataset, settings, async (importId) => {
      const now = this.clock.now().toISOString();
      const rows: NewMediaRow[] = [];
      for (const file of form.files) {
        const id = crypto.randomUUID();
        const blobKey = blobKeys.media(dataset.id, id, file.extension);
        await this.blobs.putFile(blobKey, file.staged.path);
        rows.push(
          newMediaRow({
            id,
            datasetId: dataset.id,
            importId,
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
      return { kind: 'upload' as const, location: 'upload' };
    });
  }

  private async addArchive(userId: string, dataset: DatasetRow, archive: { staged: StagedFile; fileName: string }, settings: AddMediaSettings): Promise<void> {
    const format = archiveFormatOf(archive.fileName, archive.staged.head);
    if (!format) throw new BadRequestError(`The archive must be a .zip, .tar or .tar.gz file: ${archive.fileName}`);
    let mediaEntries = 0;
    try {
      const scan = await scanArchive(archive.staged.path, format, this.options.archive);
      mediaEntries = scan.files.filter((f) => isMediaName(f.path)).length;
    } catch (error) {
      if (error instanceof UnsafeArchiveError) throw new BadRequestError(`Archive ${archive.fileName} was refused: ${error.problems.join('; ')}`);
      if (error instanceof CorruptArchiveError) throw new BadRequestError(`Archive ${archive.fileName} cannot be read: ${error.message}`);
      throw error;
    }
    if (mediaEntries === 0) throw new BadRequestError(`No media files found in archive ${archive.fileName}`);
    await this.start(userId, dataset, settings, async (importId) => {
      const key = blobKeys.importedArchive(dataset.id, importId, fileExtension(archive.fileName) || `.${format}`);
      await this.blobs.putFile(key, archive.staged.path);
      return { kind: 'archive' as const, location: key, archiveFormat: format };
    });
  }

  private async addLocation(
    userId: string,
    dataset: DatasetRow,
    location: string,
    origin: ImportOrigin,
    settings: AddMediaSettings,
    assumeRoleArn: string | null,
  ): Promise<{ taskId: string }> {
    const kind = this.imports.kindOf(location);
    let credentials: SourceCredentials | undefined;
    try {
      if (kind === null || (origin === 'api' && kind !== 's3')) throw new BadRequestError(`Invalid S3 URI or no media files found at ${location}`);
      if (assumeRoleArn) credentials = await this.assumeRole(assumeRoleArn);
      if (!(await this.imports.holdsMedia(location, origin, credentials))) throw new BadRequestError(`Invalid S3 URI or no media files found at ${location}`);
    } catch (error) {
      throw asSourceRequestError(error, location, origin);
    }
    return this.start(userId, dataset, settings, async () => ({ kind: kind!, location, credentials, origin }));
  }

  /**
   * Takes the dataset's lock with a MEDIA_ADDITION task, records the import, stores what the request
   * brought, and queues the work. Anything failing after the lock gives the dataset back as it was.
   */
  private async start(
    userId: string,
    dataset: DatasetRow,
    settings: AddMediaSettings,
    prepare: (importId: string) => Promise<{
      kind: MediaImportSourceKind;
      location: string;
      credentials?: SourceCredentials;
      archiveFormat?: 'zip' | 'tar' | 'tar.gz';
      origin?: ImportOrigin;
    }>,
  ): Promise<{ taskId: string }> {
    const taskId = await this.lock(dataset.id, userId, 'MEDIA_ADDITION', 'add_media', 'Queued');
    const current = await this.datasets.findById(dataset.id);
    if (!current || !ADDABLE.has(current.status)) {
      await this.release(taskId);
      throw current ? notAddable(current) : new ConflictError(`Dataset ${dataset.id} was deleted`);
    }
    const importId = crypto.randomUUID();
    try {
      const source = await prepare(importId);
      await this.imports.create({
        id: importId,
        datasetId: dataset.id,
        taskId,
        kind: source.kind,
        location: source.location,
        origin: source.origin ?? 'api',
        previousStatus: current.status,
        autoReindex: settings.autoReindex,
        credentials: source.credentials,
        archiveFormat: source.archiveFormat,
        hints: settings.hints,
      });
      if (settings.annotations) await this.annotations.attachToTask(userId, dataset.id, taskId, settings.annotations.file, settings.annotations.checked);
      await this.datasets.update(dataset.id, { status: 'READ ONLY', progress: 0, updated_at: this.clock.now().toISOString() });
      await this.queue.enqueue('dataset.ingest', { datasetId: dataset.id, taskId }, { jobId: jobIds.datasetIngest(taskId) });
      return { taskId };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      await this.blobs.deletePrefix(blobKeys.importPrefix(dataset.id, importId)).catch(() => undefined);
      await this.media.failPendingOfImport(importId, `Add media failed: ${reason}`, this.clock.now().toISOString()).catch(() => undefined);
      await this.datasets.update(dataset.id, { status: current.status, updated_at: this.clock.now().toISOString() });
      await this.tasks.update(taskId, { status: 'FAILED', error_message: `Add media failed: ${reason}`, end_time: this.clock.now().toISOString(), holds_lock: 0 });
      throw new ServerError(`Add media failed: storing the new media failed: ${reason}`);
    }
  }

  private async refuseWhileLocked(datasetId: string, operation: string): Promise<void> {
    const holder = await this.tasks.findLockHolder(datasetId);
    if (holder) throw blocked(operation, holder.task_type);
  }

  private async lock(datasetId: string, userId: string, taskType: TaskType, operation: string, statusMessage: string): Promise<string> {
    const id = crypto.randomUUID();
    try {
      await this.tasks.insertNew({ id, datasetId, taskType, createdBy: userId, createdAt: this.clock.now().toISOString(), statusMessage, holdsLock: true });
    } catch (error) {
      if (error instanceof OperationLockedError) throw blocked(operation, error.activeTask.task_type);
      throw error;
    }
    return id;
  }

  /** Gives the lock back without doing anything (the dataset changed under the request). */
  private async release(taskId: string): Promise<void> {
    await this.tasks.update(taskId, { status: 'ABORTED', status_message: 'Dataset state changed before the operation started', end_time: this.clock.now().toISOString(), holds_lock: 0 });
  }

  /** Streams the form: text fields kept, files staged to scratch space and checked; limits as the upload API. */
  private async readForm(parts: AsyncIterable<FormPart>): Promise<ParsedForm> {
    const form: ParsedForm = { fields: new Map(), files: [], fileProblems: [], fileCount: 0, archives: [], annotations: null, staged: [] };
    try {
      for await (const part of parts) {
        if (part.kind === 'field') {
          form.fields.set(part.name, [...(form.fields.get(part.name) ?? []), part.value]);
          continue;
        }
        if (part.fieldName === ANNOTATIONS_FIELD && form.annotations === null) {
          const staged = await this.stageOne(part, part.fileName || 'annotations', this.options.archive.maxTotalBytes);
          form.staged.push(staged);
          form.annotations = { staged, fileName: part.fileName || 'annotations' };
          continue;
        }
        if (part.fieldName === ARCHIVE_FIELD) {
          const staged = await this.stageOne(part, part.fileName || 'archive', this.options.archive.maxTotalBytes);
          form.staged.push(staged);
          form.archives.push({ staged, fileName: part.fileName || 'archive' });
          continue;
        }
        if (!FILES_FIELDS.has(part.fieldName)) {
          part.stream.resume();
          continue;
        }
        form.fileCount += 1;
        if (form.fileCount > this.options.maxRequestFiles) {
          throw new PayloadTooLargeError(`Too many files in one request: the limit is ${this.options.maxRequestFiles}; split the upload into several requests`);
        }
        const fileName = part.fileName || `unnamed-${form.fileCount}`;
        const staged = await this.stageOne(part, fileName, this.options.maxFileBytes);
        form.staged.push(staged);
        const verdict = checkMediaFile(fileName, staged.head, ARCHIVE_IN_FILES);
        if ('problem' in verdict) form.fileProblems.push(`${fileName} (${verdict.problem})`);
        else form.files.push({ staged, fileName, ...verdict });
      }
    } catch (error) {
      await this.staging.discard(form.staged);
      throw error;
    }
    return form;
  }

  private async stageOne(part: UploadPart, fileName: string, maxBytes: number): Promise<StagedFile> {
    try {
      return await this.staging.stage(part.stream, maxBytes);
    } catch (error) {
      if (error instanceof FileTooLargeError) throw new PayloadTooLargeError(`File too large: ${fileName} exceeds the limit of ${maxBytes} bytes per file`);
      throw error;
    }
  }
}

/** `auto_reindex` and the resource hints, typed; a value of the wrong type is a 422 as FastAPI answers it. */
function parseSettings(fields: Map<string, string[]>): AddMediaSettings {
  const issues: { loc: string[]; msg: string; type: string }[] = [];
  const hints: Record<string, number | boolean> = {};
  let autoReindex = false;
  for (const name of BOOLEAN_FIELDS) {
    const raw = fields.get(name)?.[0]?.trim();
    if (raw === undefined || raw === '' || raw.toLowerCase() === 'null') continue;
    const value = /^(true|1|yes|on)$/i.test(raw) ? true : /^(false|0|no|off)$/i.test(raw) ? false : null;
    if (value === null) issues.push({ loc: ['body', name], msg: 'Input should be a valid boolean', type: 'bool_parsing' });
    else if (name === 'auto_reindex') autoReindex = value;
    else hints[name] = value;
  }
  for (const name of COUNT_FIELDS) {
    const raw = fields.get(name)?.[0]?.trim();
    if (raw === undefined || raw === '' || raw.toLowerCase() === 'null') continue;
    if (!/^\d{1,9}$/.test(raw)) issues.push({ loc: ['body', name], msg: 'Input should be a valid non-negative integer', type: 'int_parsing' });
    else hints[name] = Number(raw);
  }
  if (issues.length > 0) throw new RequestValidationError(issues);
  return { autoReindex, hints };
}

const isMediaName = (name: string) => ['image', 'video'].includes(classifyFileName(name).kind);

const blocked = (operation: string, taskType: string) => new ConflictError(`Operation '${operation}' is blocked while ${taskType} task is running`);

const notAddable = (dataset: DatasetRow) =>
  new ConflictError(`Dataset ${dataset.id} is ${dataset.status}; media can be added only when it is READY or PARTIAL INDEX`);

const notPartialIndex = (dataset: DatasetRow) =>
  new ConflictError(`Dataset ${dataset.id} is ${dataset.status}; reindex is possible only when it is PARTIAL INDEX`);
