import crypto from 'node:crypto';
import { ConflictError, NotFoundError, notInDataset, PayloadTooLargeError, RequestValidationError } from '../domain/errors.js';
import { isUuid } from '../domain/ids.js';
import type { TagsRepository } from '../db/tags.repository.js';
import type { AccessService } from './access.service.js';
import type { Clock } from './clock.js';

export interface TagView {
  id: string;
  name: string;
  media_count: number;
  created_at: string;
}

export const MAX_TAG_NAME_LENGTH = 100;
/** Media ids one tag/untag request may name. */
export const MAX_BULK_MEDIA_IDS = 10_000;

// Control characters, and the comma that separates names in explore's `tags` parameter.
const FORBIDDEN_IN_NAME = /[\u0000-\u001f\u007f-\u009f,]/;

/** User tags: viewers read them; editors create and delete tags and put them on media or take them off. */
export class TagsService {
  constructor(
    private readonly repo: TagsRepository,
    private readonly access: Pick<AccessService, 'require'>,
    private readonly clock: Clock,
  ) {}

  async list(userId: string, datasetId: string): Promise<TagView[]> {
    await this.access.require(userId, datasetId, 'viewer');
    return this.repo.list(datasetId);
  }

  async create(userId: string, datasetId: string, rawName: string): Promise<TagView> {
    await this.access.require(userId, datasetId, 'editor');
    const name = validName(rawName);
    const id = crypto.randomUUID();
    const createdAt = this.clock.now().toISOString();
    if (!(await this.repo.insert({ id, datasetId, name, createdBy: userId, createdAt }))) {
      throw new ConflictError(`The dataset already has a tag named "${name}"`);
    }
    return { id, name, media_count: 0, created_at: createdAt };
  }

  /** Deletes the tag and takes it off every media. */
  async delete(userId: string, datasetId: string, tagId: string): Promise<TagView> {
    await this.access.require(userId, datasetId, 'editor');
    const tag = await this.tag(datasetId, tagId);
    await this.repo.delete(datasetId, tagId);
    return tag;
  }

  /** Tags the media (all of the dataset, or nothing changes); `tagged` counts those not tagged before. */
  async tagMedia(userId: string, datasetId: string, tagId: string, mediaIds: string[]): Promise<{ tagged: number }> {
    await this.access.require(userId, datasetId, 'editor');
    await this.tag(datasetId, tagId);
    const ids = await this.mediaOfDataset(datasetId, mediaIds);
    return { tagged: await this.repo.tagMedia(datasetId, tagId, ids, userId, this.clock.now().toISOString()) };
  }

  /** Takes the tag off the media; `untagged` counts those that carried it. */
  async untagMedia(userId: string, datasetId: string, tagId: string, mediaIds: string[]): Promise<{ untagged: number }> {
    await this.access.require(userId, datasetId, 'editor');
    await this.tag(datasetId, tagId);
    const ids = await this.mediaOfDataset(datasetId, mediaIds);
    return { untagged: await this.repo.untagMedia(datasetId, tagId, ids) };
  }

  /** The names of the tags on one media, sorted. */
  async tagsOfMedia(userId: string, datasetId: string, mediaId: string): Promise<string[]> {
    await this.access.require(userId, datasetId, 'viewer');
    if (!isUuid(mediaId) || (await this.repo.existingMediaIds(datasetId, [mediaId])).size === 0) throw new NotFoundError('Media not found');
    return (await this.repo.tagsOfMedia(datasetId, [mediaId])).map((t) => t.name);
  }

  private async tag(datasetId: string, tagId: string): Promise<TagView> {
    const tag = isUuid(tagId) ? await this.repo.find(datasetId, tagId) : undefined;
    if (!tag) throw new NotFoundError('Tag not found');
    return tag;
  }

  /** The ids, deduplicated, after checking every one is a media of the dataset (400 naming those that are not). */
  private async mediaOfDataset(datasetId: string, mediaIds: string[]): Promise<string[]> {
    if (mediaIds.length > MAX_BULK_MEDIA_IDS) {
      throw new PayloadTooLargeError(`At most ${MAX_BULK_MEDIA_IDS} media ids per request; got ${mediaIds.length}. Send them in several requests`);
    }
    const ids = [...new Set(mediaIds)];
    const found = await this.repo.existingMediaIds(datasetId, ids.filter(isUuid));
    const unknown = ids.filter((id) => !found.has(id));
    if (unknown.length > 0) {
      throw notInDataset('media', unknown);
    }
    return ids;
  }
}

function validName(raw: string): string {
  const name = raw.trim();
  const problem =
    name === ''
      ? 'A tag name must not be empty'
      : [...name].length > MAX_TAG_NAME_LENGTH
        ? `A tag name is at most ${MAX_TAG_NAME_LENGTH} characters`
        : FORBIDDEN_IN_NAME.test(name)
          ? 'A tag name must not contain control characters or commas'
          : null;
  if (problem) throw new RequestValidationError([{ loc: ['body', 'name'], msg: problem, type: 'value_error' }]);
  return name;
}
