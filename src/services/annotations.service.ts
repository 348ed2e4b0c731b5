import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import { AnnotationFileError, LABEL_SOURCES, type AnnotationFormat, type AnnotationRecord, type LabelSource, type ParsedAnnotations } from '../annotations/annotation-record.js';
import { annotationFormatOf } from '../annotations/detect-format.js';
import { MediaMatcher } from '../annotations/media-matcher.js';
import type { AnnotationImportRow, AnnotationsRepository, LabelableMedia, LabelCount, NewMediaLabel } from '../db/annotations.repository.js';
import type { DatasetRow, DatasetsRepository } from '../db/datasets.repository.js';
import type { NewMediaRow } from '../db/media.repository.js';
import type { TasksRepository } from '../db/tasks.repository.js';
import type { DatasetStatus } from '../domain/dataset-status.js';
import { ConflictError, notInDataset, NotFoundError, PayloadTooLargeError, RequestValidationError } from '../domain/errors.js';
import { deterministicUuid, isUuid } from '../domain/ids.js';
import { blobKeys, type BlobStore } from '../storage/blob-store.js';
import { FileTooLargeError, type StagedFile, type UploadStaging } from '../storage/upload-staging.js';
import type { AccessService } from './access.service.js';
import type { FormPart } from './add-media.service.js';
import type { Clock } from './clock.js';

/** Reads an annotation file of any supported format (the format guessed from its name and content unless given). */
export type AnnotationFileParser = (file: { fileName: string; filePath: string; format?: AnnotationFormat }) => Promise<ParsedAnnotations>;

export interface AnnotationsOptions {
  maxFileBytes: number;
}

export interface AnnotationImportView {
  annotation_import_id: string;
  dataset_id: string;
  status: AnnotationImportRow['status'];
  file_name: string;
  format: AnnotationFormat;
  source: LabelSource;
  n_rows: number;
  n_image_labels: number;
  n_objects: number;
  n_captions: number;
  n_unmatched: number;
  n_invalid: number;
  /** The first rows that were not used (up to 1000), and why. */
  problems: { location: string; file_name: string | null; reason: string }[];
  problems_truncated: boolean;
  error: string | null;
  created_at: string;
  finished_at: string | null;
}

/** An annotation file staged with an add_media request, with its `annotations_format`/`annotations_source` fields. */
export interface AttachedAnnotations {
  fileName: string;
  filePath: string;
  fields: { annotations_format?: string | undefined; annotations_source?: string | undefined };
}

export interface CaptionChange {
  media_id: string;
  caption: string | null;
}

/** Problems kept with an import; all are counted. */
export const MAX_STORED_PROBLEMS = 1000;
export const MAX_CAPTION_LENGTH = 10_000;
export const MAX_LABEL_LENGTH = 200;
export const MAX_CAPTIONS_PER_REQUEST = 10_000;
export const MAX_LABELS_PER_MEDIA = 100;
/** While these run, media can be labelled; processing picks new objects up (DRAFT) or a reindex does. */
const ANNOTATABLE: ReadonlySet<DatasetStatus> = new Set(['DRAFT', 'READY', 'PARTIAL INDEX']);
const EMPTY_COUNTS = { n_rows: 0, n_image_labels: 0, n_objects: 0, n_captions: 0, n_unmatched: 0, n_invalid: 0, problems: '[]' };
const FILE_FIELDS = new Set(['file', 'annotations']);
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Annotations: label and box files (COCO, YOLO, CSV, parquet) matched to a dataset's media by name
 * or path, captions, and the record of each import with the rows it could not use. A box becomes an
 * object — a media item of its own, processed (crop, embedding) with the dataset's next processing
 * or reindex.
 */
export class AnnotationsService {
  constructor(
    private readonly repo: AnnotationsRepository,
    private readonly datasets: Pick<DatasetsRepository, 'findById' | 'update'>,
    private readonly tasks: Pick<TasksRepository, 'findLockHolder'>,
    private readonly blobs: BlobStore,
    private readonly staging: UploadStaging,
    private readonly parse: AnnotationFileParser,
    private readonly access: Pick<AccessService, 'require'>,
    private readonly clock: Clock,
    private readonly options: AnnotationsOptions,
  ) {}

  /** `POST /dataset/{id}/annotations`: one file (`file`), optional `format` and `source`; applied at once. */
  async importFile(userId: string, datasetId: string, parts: AsyncIterable<FormPart>): Promise<AnnotationImportView> {
    const { dataset } = await this.access.require(userId, datasetId, 'editor');
    let staged: { file: StagedFile; fileName: string } | null = null;
    const fields = new Map<string, string>();
    try {
      for await (const part of parts) {
        if (part.kind === 'field') fields.set(part.name, part.value);
        else if (FILE_FIELDS.has(part.fieldName) && staged === null) staged = { file: await this.stage(part.stream, part.fileName), fileName: part.fileName || 'annotations' };
        else part.stream.resume();
      }
      if (!staged) throw new RequestValidationError([{ loc: ['body', 'file'], msg: 'Field required: the annotation file (COCO .json, YOLO .zip/.tar, .csv or .parquet)', type: 'missing' }]);
      const settings = parseSettings(fields);
      await this.checkAnnotatable(dataset);
      const id = crypto.randomUUID();
      const now = this.clock.now().toISOString();
      // The format is known for sure once the file is parsed; until then, what its name suggests.
      const format = settings.format ?? annotationFormatOf(staged.fileName, staged.file.head) ?? 'csv';
      await this.repo.insertImport({ id, dataset_id: datasetId, task_id: null, created_by: userId, file_name: staged.fileName, format, source: settings.source, status: 'PENDING', blob_key: null, created_at: now, ...EMPTY_COUNTS });
      await this.run(id, dataset, { fileName: staged.fileName, filePath: staged.file.path, format: settings.format ?? undefined }, settings.source);
      return toView((await this.repo.findImport(datasetId, id))!);
    } finally {
      if (staged) await this.staging.discard([staged.file]);
    }
  }

  /**
   * An annotation file sent with add_media, checked before anything starts: its options and that
   * it reads as its format (422 otherwise). Matching waits until the new media are listed.
   */
  async checkAttachment(file: AttachedAnnotations): Promise<{ format: AnnotationFormat; source: LabelSource }> {
    const settings = parseSettings(new Map(Object.entries(file.fields).filter((e): e is [string, string] => e[1] !== undefined)), 'annotations_');
    try {
      const parsed = await this.parse({ fileName: file.fileName, filePath: file.filePath, ...(settings.format ? { format: settings.format } : {}) });
      return { format: parsed.format, source: settings.source };
    } catch (error) {
      if (error instanceof AnnotationFileError) throw unreadable(error, 'annotations');
      throw error;
    }
  }

  /** Keeps a checked annotation file with the add_media task that carries it, to apply once its media are listed. */
  async attachToTask(userId: string, datasetId: string, taskId: string, file: AttachedAnnotations, checked: { format: AnnotationFormat; source: LabelSource }): Promise<void> {
    const id = crypto.randomUUID();
    const blobKey = blobKeys.annotationFile(datasetId, id);
    await this.blobs.putFile(blobKey, file.filePath);
    await this.repo.insertImport({
      id,
      dataset_id: datasetId,
      task_id: taskId,
      created_by: userId,
      file_name: file.fileName,
      format: checked.format,
      source: checked.source,
      status: 'PENDING',
      blob_key: blobKey,
      created_at: this.clock.now().toISOString(),
      ...EMPTY_COUNTS,
    });
  }

  /**
   * Applies the annotation files an add_media carries, once its media are listed. A file that turns
   * out unreadable is recorded FAILED with why; the media go on being added.
   */
  async applyPendingOfTask(taskId: string): Promise<void> {
    for (const row of await this.repo.pendingImportsOfTask(taskId)) {
      const dataset = await this.datasets.findById(row.dataset_id);
      if (!dataset || !row.blob_key) continue;
      try {
        await this.blobs.withLocalFile(row.blob_key, (filePath) => this.run(row.id, dataset, { fileName: row.file_name, filePath, format: row.format }, row.source));
      } catch (error) {
        if (!(error instanceof RequestValidationError)) throw error;
      }
      await this.blobs.deletePrefix(row.blob_key).catch(() => undefined);
      await this.repo.updateImport(row.id, { blob_key: null });
    }
  }

  async listImports(userId: string, datasetId: string): Promise<AnnotationImportView[]> {
    await this.access.require(userId, datasetId, 'viewer');
    return (await this.repo.listImports(datasetId)).map(toView);
  }

  async getImport(userId: string, datasetId: string, importId: string): Promise<AnnotationImportView> {
    await this.access.require(userId, datasetId, 'viewer');
    const row = isUuid(importId) ? await this.repo.findImport(datasetId, importId) : undefined;
    if (!row) throw new NotFoundError('Annotation import not found');
    return toView(row);
  }

  async labels(userId: string, datasetId: string): Promise<LabelCount[]> {
    await this.access.require(userId, datasetId, 'viewer');
    return this.repo.labelCounts(datasetId);
  }

  /** Sets or clears (null or blank) captions; every id must be an image or frame of the dataset, or nothing changes. */
  async setCaptions(userId: string, datasetId: string, changes: CaptionChange[]): Promise<{ updated: number }> {
    await this.access.require(userId, datasetId, 'editor');
    if (changes.length > MAX_CAPTIONS_PER_REQUEST) throw new PayloadTooLargeError(`At most ${MAX_CAPTIONS_PER_REQUEST} captions per request; got ${changes.length}`);
    const normalised = changes.map((c, i) => ({ mediaId: c.media_id, caption: validCaption(c.caption, ['body', 'captions', i, 'caption']) }));
    const ids = [...new Set(normalised.map((c) => c.mediaId))];
    const found = await this.repo.captionableIds(datasetId, ids.filter(isUuid));
    const unknown = ids.filter((id) => !found.has(id));
    if (unknown.length > 0) {
      throw notInDataset('images', unknown);
    }
    return { updated: await this.repo.setCaptions(datasetId, normalised) };
  }

  async setCaption(userId: string, datasetId: string, mediaId: string, caption: string | null): Promise<CaptionChange> {
    await this.access.require(userId, datasetId, 'editor');
    const value = validCaption(caption, ['body', 'caption']);
    if (!isUuid(mediaId) || !(await this.repo.captionableIds(datasetId, [mediaId])).has(mediaId)) throw new NotFoundError('Media not found');
    await this.repo.setCaptions(datasetId, [{ mediaId, caption: value }]);
    return { media_id: mediaId, caption: value };
  }

  /**
   * Sets a media's labels (an image's labels, an object's class) to these names, as the user's: the
   * way to correct a mislabel. Labels of every source are replaced; [] removes them all. The
   * `mislabels` flags are recomputed by the next indexing.
   */
  async setLabels(userId: string, datasetId: string, mediaId: string, names: string[]): Promise<{ media_id: string; labels: { name: string; source: 'User' }[] }> {
    await this.access.require(userId, datasetId, 'editor');
    if (names.length > MAX_LABELS_PER_MEDIA) throw new RequestValidationError([{ loc: ['body', 'labels'], msg: `At most ${MAX_LABELS_PER_MEDIA} labels per media`, type: 'value_error' }]);
    const unique = [...new Set(names.map((n) => n.trim()))];
    unique.forEach((name, i) => {
      const problem = labelProblem(name);
      if (problem) throw new RequestValidationError([{ loc: ['body', 'labels', i], msg: problem, type: 'value_error' }]);
    });
    if (!isUuid(mediaId) || !(await this.repo.labelableMediaById(datasetId, mediaId))) throw new NotFoundError('Media not found');
    const now = this.clock.now().toISOString();
    await this.repo.replaceLabels(
      mediaId,
      unique.map((name) => ({ id: crypto.randomUUID(), dataset_id: datasetId, media_id: mediaId, label: name, source: 'User', confidence: null, import_id: null, created_at: now })),
    );
    return { media_id: mediaId, labels: unique.map((name) => ({ name, source: 'User' as const })) };
  }

  private async checkAnnotatable(dataset: DatasetRow): Promise<void> {
    const holder = await this.tasks.findLockHolder(dataset.id);
    if (holder) throw new ConflictError(`Cannot import annotations while a ${holder.task_type} task is running on dataset ${dataset.id}; try again when it ends`);
    if (!ANNOTATABLE.has(dataset.status)) throw new ConflictError(`Cannot import annotations while the dataset is ${dataset.status}`);
  }

  /** Parses, matches and writes one import, and records what happened (a file that cannot be read: FAILED with why). */
  private async run(importId: string, dataset: DatasetRow, file: { fileName: string; filePath: string; format?: AnnotationFormat | undefined }, source: LabelSource): Promise<void> {
    let parsed: ParsedAnnotations;
    try {
      parsed = await this.parse({ fileName: file.fileName, filePath: file.filePath, ...(file.format ? { format: file.format } : {}) });
    } catch (error) {
      if (!(error instanceof AnnotationFileError)) throw error;
      await this.repo.updateImport(importId, { status: 'FAILED', error: error.message, finished_at: this.clock.now().toISOString() });
      throw unreadable(error, 'file');
    }
    const matcher = new MediaMatcher<LabelableMedia>();
    for await (const page of this.repo.labelableMedia(dataset.id)) for (const media of page) matcher.add(media);

    const now = this.clock.now().toISOString();
    const problems = [...parsed.problems];
    let unmatched = 0;
    const labels: NewMediaLabel[] = [];
    const captions = new Map<string, string>();
    const objects: { row: NewMediaRow; label: NewMediaLabel | null }[] = [];
    for (const record of parsed.records) {
      const found = matcher.match(record);
      if ('problem' in found) {
        if (!found.ambiguous) unmatched += 1;
        problems.push({ location: record.location, fileName: record.fileName, reason: found.problem });
        continue;
      }
      const media = found.media;
      const invalid = recordProblem(record, media);
      if (invalid) {
        problems.push({ location: record.location, fileName: record.fileName, reason: invalid });
        continue;
      }
      const rowSource = record.source ?? source;
      if (record.caption !== null) {
        captions.set(media.id, record.caption);
      }
      if (record.box) {
        const object = objectRow(dataset.id, media, record, now);
        objects.push({ row: object, label: record.label === null ? null : labelRow(dataset.id, object.id, record.label, rowSource, record.confidence, importId, now) });
      } else if (record.label !== null) {
        labels.push(labelRow(dataset.id, media.id, record.label, rowSource, record.confidence, importId, now));
      }
    }
    // (Full-text documents of the changed media are dropped by the database and rebuilt on the next search.)
    const applied = await this.repo.apply(dataset.id, { labels, captions, objects });
    // New objects of an indexed dataset wait for a reindex to be cut out, embedded and grouped.
    if (applied.objectsAdded > 0 && dataset.status === 'READY') {
      await this.datasets.update(dataset.id, { status: 'PARTIAL INDEX', updated_at: now });
    }
    await this.repo.updateImport(importId, {
      status: 'COMPLETED',
      n_rows: parsed.rowCount,
      format: parsed.format,
      n_image_labels: labels.length,
      n_objects: objects.length,
      n_captions: captions.size,
      n_unmatched: unmatched,
      n_invalid: problems.length - unmatched,
      problems: JSON.stringify(problems.slice(0, MAX_STORED_PROBLEMS).map((p) => ({ location: p.location, file_name: p.fileName, reason: p.reason }))),
      finished_at: this.clock.now().toISOString(),
    });
  }

  private async stage(stream: Readable, fileName: string): Promise<StagedFile> {
    try {
      return await this.staging.stage(stream, this.options.maxFileBytes);
    } catch (error) {
      if (error instanceof FileTooLargeError) throw new PayloadTooLargeError(`File too large: ${fileName || 'the annotation file'} exceeds the limit of ${this.options.maxFileBytes} bytes`);
      throw error;
    }
  }
}

function labelRow(datasetId: string, mediaId: string, label: string, source: LabelSource, confidence: number | null, importId: string, now: string): NewMediaLabel {
  return { id: crypto.randomUUID(), dataset_id: datasetId, media_id: mediaId, label, source, confidence, import_id: importId, created_at: now };
}

/** An object cut from `parent`: the same box (and class) imported again is the same object. */
function objectRow(datasetId: string, parent: LabelableMedia, record: AnnotationRecord, now: string): NewMediaRow {
  const box = record.box!;
  const boxText = [box.x, box.y, box.width, box.height].map((v) => Number(v.toFixed(6))).join(',');
  return {
    id: deterministicUuid(`${datasetId}:object:${parent.id}:${box.units}:${boxText}:${record.label ?? ''}`),
    dataset_id: datasetId,
    transaction_id: null,
    import_id: null,
    fetch_from: null,
    media_type: 'object',
    status: 'PENDING',
    original_media_uri: `${parent.original_media_uri}#bbox=${boxText}`,
    file_name: parent.file_name,
    blob_key: parent.blob_key,
    file_size: 0,
    sha256: '',
    width: null,
    height: null,
    format: null,
    thumb_key: null,
    duration_seconds: null,
    error: null,
    parent_media_id: parent.id,
    frame_timestamp: null,
    created_at: now,
    processed_at: null,
    bbox_x: box.x,
    bbox_y: box.y,
    bbox_w: box.width,
    bbox_h: box.height,
    bbox_units: box.units,
  };
}

/** What is wrong with a matched row, if anything: names too long, a box outside its image. */
function recordProblem(record: AnnotationRecord, media: LabelableMedia): string | null {
  const badLabel = record.label === null ? null : labelProblem(record.label);
  if (badLabel) return badLabel;
  if (record.caption !== null && [...record.caption].length > MAX_CAPTION_LENGTH) return `the caption is longer than ${MAX_CAPTION_LENGTH} characters`;
  const box = record.box;
  if (box && box.units === 'px' && media.width !== null && media.height !== null) {
    const tolerance = 1;
    if (box.x < -tolerance || box.y < -tolerance || box.x + box.width > media.width + tolerance || box.y + box.height > media.height + tolerance) {
      return `the box [${box.x}, ${box.y}, ${box.width}, ${box.height}] lies outside the ${media.width}×${media.height} image`;
    }
  }
  return null;
}

/** 422 for a file that cannot be read as an annotation file, sent in form field `field`. */
function unreadable(error: AnnotationFileError, field: string): RequestValidationError {
  return new RequestValidationError([{ loc: ['body', field], msg: `The annotation file cannot be read: ${error.message}`, type: 'value_error' }]);
}

function labelProblem(label: string): string | null {
  if (label.trim() === '') return 'the label is empty';
  if ([...label].length > MAX_LABEL_LENGTH) return `the label is longer than ${MAX_LABEL_LENGTH} characters`;
  if (CONTROL_CHARACTERS.test(label)) return 'the label contains control characters';
  return null;
}

function validCaption(caption: string | null | undefined, loc: (string | number)[]): string | null {
  if (caption === null || caption === undefined || caption.trim() === '') return null;
  if ([...caption].length > MAX_CAPTION_LENGTH) throw new RequestValidationError([{ loc, msg: `A caption is at most ${MAX_CAPTION_LENGTH} characters`, type: 'value_error' }]);
  return caption.trim();
}

function parseSettings(fields: Map<string, string>, prefix = ''): { format: AnnotationFormat | null; source: LabelSource } {
  const formatText = fields.get(`${prefix}format`)?.trim().toLowerCase() || null;
  const formats: AnnotationFormat[] = ['coco', 'yolo', 'csv', 'parquet'];
  if (formatText !== null && !(formats as string[]).includes(formatText)) {
    throw new RequestValidationError([{ loc: ['body', `${prefix}format`], msg: `format must be one of ${formats.join(', ')}; got "${formatText}"`, type: 'value_error' }]);
  }
  const sourceText = fields.get(`${prefix}source`)?.trim() || 'User';
  const source = LABEL_SOURCES.find((s) => s.toLowerCase() === sourceText.toLowerCase());
  if (!source) throw new RequestValidationError([{ loc: ['body', `${prefix}source`], msg: `source must be one of ${LABEL_SOURCES.join(', ')}; got "${sourceText}"`, type: 'value_error' }]);
  return { format: formatText as AnnotationFormat | null, source };
}

export function toView(row: AnnotationImportRow): AnnotationImportView {
  const problems = JSON.parse(row.problems) as { location: string; file_name: string | null; reason: string }[];
  const total = row.n_unmatched + row.n_invalid;
  return {
    annotation_import_id: row.id,
    dataset_id: row.dataset_id,
    status: row.status,
    file_name: row.file_name,
    format: row.format,
    source: row.source,
    n_rows: row.n_rows,
    n_image_labels: row.n_image_labels,
    n_objects: row.n_objects,
    n_captions: row.n_captions,
    n_unmatched: row.n_unmatched,
    n_invalid: row.n_invalid,
    problems,
    problems_truncated: total > problems.length,
    error: row.error,
    created_at: row.created_at,
    finished_at: row.finished_at,
  };
}
