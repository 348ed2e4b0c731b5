import path from 'node:path';
import type { DatasetsRepository } from '../db/datasets.repository.js';
import type { UserRow, UsersRepository } from '../db/users.repository.js';
import { BadRequestError, datasetNotFound } from '../domain/errors.js';
import fs from 'node:fs';
import type { AddMediaService, FormPart } from './add-media.service.js';
import type { AnnotationImportView, AnnotationsService } from './annotations.service.js';
import type { IngestionService } from './ingestion.service.js';

export interface OperatorOptions {
  /** `--owner` / `VIZDEX_PIPELINE_OWNER`: the email of the user that owns created datasets; null = the first admin. */
  owner: string | null;
}

export const NO_OWNER = 'no user to own the dataset: create one with "vizdex user create" or pass --owner';

/**
 * What an operator does without an API token — the CLI's create / add-media / reindex and the
 * on-prem pipeline service: datasets it creates belong to the configured owner (else the first
 * admin); add_media and reindex act as the dataset's owner. Locations are absolute local paths,
 * `file://`, `s3://` or `http(s)://` URLs (a folder, or a .txt/.csv/.parquet list of files).
 */
export class OperatorService {
  constructor(
    private readonly users: UsersRepository,
    private readonly datasets: DatasetsRepository,
    private readonly ingestion: IngestionService,
    private readonly addMedia: AddMediaService,
    private readonly annotations: AnnotationsService,
    private readonly options: OperatorOptions,
  ) {}

  /** The user that owns datasets the operator creates. */
  async owner(): Promise<UserRow> {
    const email = this.options.owner;
    if (email) {
      const user = await this.users.findByEmail(email);
      if (!user) throw new BadRequestError(`The owner ${email} is not a vizdex user: create it with "vizdex user create --email ${email}" or choose another --owner`);
      return user;
    }
    const admin = await this.users.findAdmin();
    if (!admin) throw new BadRequestError(NO_OWNER);
    return admin;
  }

  async createDataset(input: { location: string; name?: string | undefined }): Promise<{ dataset_id: string; taskId: string; name: string }> {
    const location = requireLocation(input.location);
    const name = input.name?.trim() || defaultName(location);
    const owner = await this.owner();
    const { dataset_id, taskId } = await this.ingestion.createFromLocation(owner.id, { name, location, origin: 'operator' });
    return { dataset_id, taskId, name };
  }

  async addMediaFrom(datasetId: string, location: string, autoReindex: boolean): Promise<{ taskId: string }> {
    const checked = requireLocation(location);
    const owner = await this.datasetOwner(datasetId);
    return this.addMedia.addFromLocation(owner, datasetId, checked, autoReindex);
  }

  async reindex(datasetId: string): Promise<{ taskId: string }> {
    return this.addMedia.reindex(await this.datasetOwner(datasetId), datasetId);
  }

  /** Applies an annotation file (a local path) to the dataset, as its owner; the report as the API gives it. */
  async importAnnotations(datasetId: string, filePath: string, fields: { format?: string | undefined; source?: string | undefined }): Promise<AnnotationImportView> {
    const owner = await this.datasetOwner(datasetId);
    if (!fs.statSync(filePath, { throwIfNoEntry: false })?.isFile()) throw new BadRequestError(`No annotation file at ${filePath}`);
    async function* form(): AsyncIterable<FormPart> {
      for (const [name, value] of Object.entries(fields)) if (value !== undefined) yield { kind: 'field', name, value };
      yield { kind: 'file', fieldName: 'file', fileName: path.basename(filePath), stream: fs.createReadStream(filePath) };
    }
    return this.annotations.importFile(owner, datasetId.trim(), form());
  }

  private async datasetOwner(datasetId: string): Promise<string> {
    const dataset = await this.datasets.findById(datasetId.trim());
    if (!dataset) throw datasetNotFound();
    return dataset.owned_by;
  }
}

/** An absolute local path (or file://, s3://, http(s):// URL); anything else is refused. */
export function requireLocation(location: string): string {
  const trimmed = location.trim();
  if (isUrlLocation(trimmed) || path.isAbsolute(trimmed)) return trimmed;
  throw new BadRequestError('path must be an absolute path');
}

export function isUrlLocation(location: string): boolean {
  return /^(s3|https?|file):\/\//i.test(location);
}

/** The last segment of the location (`/data/cats/` → `cats`, `s3://b/p/list.csv` → `list.csv`). */
export function defaultName(location: string): string {
  let pathPart = location;
  if (isUrlLocation(location)) {
    try {
      const url = new URL(location);
      pathPart = url.pathname === '' || url.pathname === '/' ? url.host : decodeURIComponent(url.pathname);
    } catch {
      pathPart = location;
    }
  }
  const segments = pathPart.split('/').filter((segment) => segment !== '');
  return segments[segments.length - 1] ?? location;
}
