import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import type { MediaImportRow, MediaImportsRepository } from '../db/media-imports.repository.js';
import type { MediaRepository, MediaRow, NewMediaRow } from '../db/media.repository.js';
import type { MediaImportSourceKind } from '../db/schema.js';
import type { DatasetStatus } from '../domain/dataset-status.js';
import { deterministicUuid } from '../domain/ids.js';
import { checkMediaFile, classifyFileName } from '../pipeline/media-types.js';
import type { Keyring } from '../security/keyring.js';
import { extractArchive, type ArchiveFormat, type ArchiveLimits } from '../sources/archive-reader.js';
import { ManifestError } from '../sources/manifest.js';
import { SourceNotFoundError, SourceUnreachableError, type SourceCredentials } from '../sources/media-source.js';
import { InvalidRoleArnError } from '../sources/s3-source.js';
import { AppError, BadRequestError, ServerError } from '../domain/errors.js';
import type { MediaSources, SourcePolicy } from '../sources/media-sources.js';
import { blobKeys, type BlobStore } from '../storage/blob-store.js';
import { FileTooLargeError, type StagedFile, type UploadStaging } from '../storage/upload-staging.js';
import type { Clock } from './clock.js';
import { newMediaRow } from './new-media-row.js';
import { mapConcurrently } from '../domain/map-concurrently.js';

export type ImportOrigin = SourcePolicy['kind'];

export interface NewImport {
  /** Chosen by the caller when it stores files under the import's id before creating it. */
  id?: string;
  datasetId: string;
  taskId: string;
  kind: MediaImportSourceKind;
  /** Folder, prefix, manifest or URL; for an archive, its blob key. */
  location: string;
  origin: ImportOrigin;
  previousStatus: DatasetStatus;
  autoReindex: boolean;
  credentials?: SourceCredentials;
  archiveFormat?: ArchiveFormat;
  /** Resource hints of the request (batch_n_*, use_spot), kept for the record. */
  hints?: Record<string, number | boolean>;
}

interface ImportOptions {
  origin: ImportOrigin;
  archiveFormat?: ArchiveFormat;
  hints?: Record<string, number | boolean>;
}

export interface MediaImportLimits {
  maxFileBytes: number;
  archive: ArchiveLimits;
  /** Folders an operator's local paths must lie in (empty = anywhere). */
  roots: string[];
  /** Objects fetched at once within a batch (network-bound, so more than the cores). */
  fetchConcurrency: number;
}

const LIST_PAGE = 500;
const FETCH_ATTEMPTS = 3;
const ARCHIVE_ENTRY_PROBLEM = 'an archive inside an archive is not unpacked';

/**
 * Media that come from a location or an archive rather than an upload request: the job steps that
 * list the source into PENDING media rows (resumable: ids are derived from the source), and copy each
 * object's bytes into the store right before it is decoded. A file that cannot be read is recorded
 * with its reason; the import goes on.
 */
export class MediaImportService {
  constructor(
    private readonly imports: MediaImportsRepository,
    private readonly media: MediaRepository,
    private readonly sources: MediaSources,
    private readonly blobs: BlobStore,
    private readonly staging: UploadStaging,
    private readonly keyring: Keyring,
    private readonly clock: Clock,
    private readonly limits: MediaImportLimits,
  ) {}

  kindOf(location: string): 's3' | 'local' | 'http' | null {
    return this.sources.kindOf(location);
  }

  policy(origin: ImportOrigin): SourcePolicy {
    return origin === 'api' ? { kind: 'api' } : { kind: 'operator', roots: this.limits.roots };
  }

  /** Request-time check: the location can be read and holds at least one media object. */
  async holdsMedia(location: string, origin: ImportOrigin, credentials?: SourceCredentials): Promise<boolean> {
    for await (const object of this.sources.expand(location, this.policy(origin), credentials)) {
      if (!object.rejection) return true;
    }
    return false;
  }

  async create(input: NewImport): Promise<MediaImportRow> {
    const options: ImportOptions = { origin: input.origin, archiveFormat: input.archiveFormat, hints: input.hints };
    const row: MediaImportRow = {
      id: input.id ?? crypto.randomUUID(),
      dataset_id: input.datasetId,
      task_id: input.taskId,
      source_kind: input.kind,
      location: input.location,
      credentials_enc: input.credentials ? this.keyring.encrypt(JSON.stringify(input.credentials)) : null,
      previous_status: input.previousStatus,
      auto_reindex: input.autoReindex ? 1 : 0,
      options: JSON.stringify(options),
      // Uploaded files were stored by the request itself: nothing to list.
      listed: input.kind === 'upload' ? 1 : 0,
      n_found: 0,
      n_skipped: 0,
      created_at: this.clock.now().toISOString(),
    };
    await this.imports.insert(row);
    return row;
  }

  findByTask(taskId: string): Promise<MediaImportRow | undefined> {
    return this.imports.findByTask(taskId);
  }

  /**
   * Job step: every object of the source becomes a media row (PENDING, or FAILED with a reason).
   * Safe to run again after a crash: rows already there are kept, not doubled.
   */
  async list(row: MediaImportRow, stillWanted: () => Promise<boolean>): Promise<void> {
    if (row.listed === 1) return;
    const counts = row.source_kind === 'archive' ? await this.listArchive(row, stillWanted) : await this.listLocation(row, stillWanted);
    if (counts === null) return;
    await this.imports.update(row.id, { listed: 1, n_found: counts.found, n_skipped: counts.skipped });
  }

  /** Job step: copies the bytes of not-yet-fetched media into the store. Returns the rows still PENDING (ready to decode). */
  async fetch(rows: MediaRow[]): Promise<MediaRow[]> {
    const toFetch = rows.filter((r) => r.fetch_from !== null && r.status === 'PENDING');
    if (toFetch.length === 0) return rows;
    const importsById = new Map<string, MediaImportRow | undefined>();
    for (const id of new Set(toFetch.map((r) => r.import_id).filter((id): id is string => id !== null))) {
      importsById.set(id, await this.imports.findById(id));
    }
    await mapConcurrently(toFetch, this.limits.fetchConcurrency, async (media) => {
      const importRow = media.import_id ? importsById.get(media.import_id) : undefined;
      const failure = await this.fetchOne(media, importRow);
      if (failure) await this.media.markFailed([media.id], failure, this.clock.now().toISOString());
    });
    const refreshed = await this.media.findByIds(rows.map((r) => r.id));
    return refreshed.filter((r) => r.status === 'PENDING' && r.fetch_from === null);
  }

  /** The import is over (done or failed): its credentials and stored archive are no longer needed. */
  async finish(taskId: string): Promise<void> {
    const row = await this.imports.findByTask(taskId);
    if (!row) return;
    if (row.credentials_enc !== null) await this.imports.update(row.id, { credentials_enc: null });
    if (row.source_kind === 'archive') await this.blobs.deletePrefix(blobKeys.importPrefix(row.dataset_id, row.id));
  }

  private async listLocation(row: MediaImportRow, stillWanted: () => Promise<boolean>): Promise<{ found: number; skipped: number } | null> {
    const options = parseOptions(row);
    const credentials = this.credentialsOf(row);
    let found = 0;
    let skipped = 0;
    let page: { uri: string; size?: number; failure?: string }[] = [];
    const flush = async () => {
      const uris = [...new Set(page.map((p) => p.uri))];
      const existing = await this.media.existingOriginalUris(row.dataset_id, uris);
      const now = this.clock.now().toISOString();
      const rows: NewMediaRow[] = [];
      const seen = new Set<string>();
      for (const object of page) {
        if (seen.has(object.uri)) continue;
        seen.add(object.uri);
        const owner = existing.get(object.uri);
        if (owner !== undefined) {
          // Already in the dataset from an earlier add: left out. From this import: a resumed listing.
          if (owner === row.id) found += 1;
          else skipped += 1;
          continue;
        }
        found += 1;
        rows.push(this.pendingRow(row, object.uri, object.size ?? 0, now, object.failure));
      }
      await this.media.insertNewOnly(rows);
      page = [];
    };
    for await (const object of this.sources.expand(row.location, this.policy(options.origin), credentials)) {
      if (object.rejection?.kind === 'skip') {
        skipped += 1;
        continue;
      }
      page.push({ uri: object.uri, size: object.size, failure: object.rejection?.reason });
      if (page.length >= LIST_PAGE) {
        await flush();
        if (!(await stillWanted())) return null;
      }
    }
    await flush();
    return { found, skipped };
  }

  private async listArchive(row: MediaImportRow, stillWanted: () => Promise<boolean>): Promise<{ found: number; skipped: number } | null> {
    const format = parseOptions(row).archiveFormat;
    if (!format) throw new Error(`Import ${row.id} has no archive format`);
    let ordinal = 0;
    let found = 0;
    let skipped = 0;
    let cancelled = false;
    await this.blobs.withLocalFile(row.location, async (file) =>
      extractArchive(
        file,
        format,
        async (entry, stream) => {
          ordinal += 1;
          const byName = classifyFileName(entry.path);
          if (cancelled || (byName.kind !== 'image' && byName.kind !== 'video')) {
            if (!cancelled) skipped += 1;
            stream.resume();
            await new Promise((resolve) => stream.once('end', resolve).once('close', resolve));
            return;
          }
          found += 1;
          await this.storeArchiveEntry(row, deterministicUuid(`${row.id}:entry:${ordinal}`), entry.path, stream);
          if (ordinal % LIST_PAGE === 0 && !(await stillWanted())) cancelled = true;
        },
        this.limits.archive,
      ),
    );
    return cancelled ? null : { found, skipped };
  }

  private async storeArchiveEntry(row: MediaImportRow, id: string, entryPath: string, stream: Readable): Promise<void> {
    const now = this.clock.now().toISOString();
    let staged: StagedFile | null = null;
    try {
      staged = await this.staging.stage(stream, this.limits.maxFileBytes);
    } catch (error) {
      if (!(error instanceof FileTooLargeError)) throw error;
      await this.media.insertNewOnly([this.pendingRow(row, entryPath, 0, now, `larger than the limit of ${this.limits.maxFileBytes} bytes per file`, null)]);
      return;
    }
    try {
      const verdict = checkMediaFile(entryPath, staged.head, ARCHIVE_ENTRY_PROBLEM);
      if ('problem' in verdict) {
        await this.media.insertNewOnly([{ ...this.pendingRow(row, entryPath, staged.size, now, verdict.problem, null), id }]);
        return;
      }
      const blobKey = blobKeys.media(row.dataset_id, id, verdict.extension);
      await this.blobs.putFile(blobKey, staged.path);
      await this.media.insertNewOnly([
        { ...this.pendingRow(row, entryPath, staged.size, now, undefined, null), id, media_type: verdict.kind, blob_key: blobKey, sha256: staged.sha256 },
      ]);
    } finally {
      await this.staging.discard([staged]);
    }
  }

  /** A media row for an object of the import: PENDING with where to fetch it from, or FAILED with why. */
  private pendingRow(row: MediaImportRow, uri: string, size: number, now: string, failure?: string, fetchFrom: string | null = uri): NewMediaRow {
    const id = deterministicUuid(`${row.id}:${uri}`);
    const byName = classifyFileName(uri);
    return newMediaRow({
      id,
      datasetId: row.dataset_id,
      importId: row.id,
      fetchFrom,
      failure,
      mediaType: byName.kind === 'video' ? 'video' : 'image',
      originalUri: uri,
      blobKey: blobKeys.media(row.dataset_id, id, byName.extension),
      fileSize: size,
      sha256: '',
      createdAt: now,
    });
  }

  /** Copies one object into the store; returns why it failed, or null. Store failures throw (the batch is retried). */
  private async fetchOne(media: MediaRow, importRow: MediaImportRow | undefined): Promise<string | null> {
    const uri = media.fetch_from!;
    if (!importRow) return 'the import this file belonged to no longer exists';
    const policy = this.policy(parseOptions(importRow).origin);
    const credentials = this.credentialsOf(importRow);
    let staged: StagedFile | null = null;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          staged = await this.staging.stage(await this.sources.open(uri, policy, credentials), this.limits.maxFileBytes);
          break;
        } catch (error) {
          if (error instanceof FileTooLargeError) return `larger than the limit of ${this.limits.maxFileBytes} bytes per file`;
          if (!(error instanceof SourceUnreachableError) || attempt >= FETCH_ATTEMPTS) return `could not read ${uri}: ${(error as Error).message}`;
          await sleep(250 * 2 ** attempt);
        }
      }
      const verdict = checkMediaFile(media.file_name, staged.head, ARCHIVE_ENTRY_PROBLEM);
      if ('problem' in verdict) return verdict.problem;
      const blobKey = blobKeys.media(media.dataset_id, media.id, verdict.extension);
      await this.blobs.putFile(blobKey, staged.path);
      await this.media.recordFetched(media.id, { mediaType: verdict.kind, blobKey, fileSize: staged.size, sha256: staged.sha256 });
      return null;
    } finally {
      if (staged) await this.staging.discard([staged]);
    }
  }

  private credentialsOf(row: MediaImportRow): SourceCredentials | undefined {
    return row.credentials_enc === null ? undefined : (JSON.parse(this.keyring.decrypt(row.credentials_enc)) as SourceCredentials);
  }
}

/**
 * A request's source problem as the seed words it: nothing there → 400 "Invalid S3 URI or no media
 * files found at {uri}"; cannot be reached or read → 500 saying why.
 */
export function asSourceRequestError(error: unknown, location: string, origin: ImportOrigin = 'api'): unknown {
  if (error instanceof AppError) return error;
  if (error instanceof SourceNotFoundError) {
    // The operator may read why (a path outside the roots, a missing folder); an API caller gets the seed's words.
    const why = origin === 'operator' ? ` (${error.message})` : '';
    return new BadRequestError(`Invalid S3 URI or no media files found at ${location}${why}`);
  }
  if (error instanceof ManifestError) return new BadRequestError(`Invalid manifest ${location}: ${error.message}`);
  if (error instanceof InvalidRoleArnError) return new BadRequestError(error.message);
  if (error instanceof SourceUnreachableError) return new ServerError(error.message);
  return error;
}

function parseOptions(row: MediaImportRow): ImportOptions {
  return JSON.parse(row.options) as ImportOptions;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
