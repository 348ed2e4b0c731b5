import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface TagRow {
  id: string;
  name: string;
  created_at: string;
  media_count: number;
}

export interface MediaTagRow {
  media_id: string;
  tag_id: string;
  name: string;
}

const ID_CHUNK = 900;

/** User tags of a dataset and the media they are on. */
export class TagsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** The dataset's tags by name, each with how many media carry it. */
  async list(datasetId: string): Promise<TagRow[]> {
    const rows = await this.db
      .selectFrom('tags as t')
      .leftJoin('media_tags as mt', 'mt.tag_id', 't.id')
      .select(['t.id', 't.name', 't.created_at'])
      .select(sql<number>`count(mt.media_id)`.as('media_count'))
      .where('t.dataset_id', '=', datasetId)
      .groupBy(['t.id', 't.name', 't.created_at'])
      .orderBy('t.name')
      .execute();
    return rows.map((r) => ({ ...r, media_count: Number(r.media_count) }));
  }

  async find(datasetId: string, tagId: string): Promise<TagRow | undefined> {
    return (await this.list(datasetId)).find((t) => t.id === tagId);
  }

  /** Inserts the tag; false when the dataset already has a tag of that name. */
  async insert(tag: { id: string; datasetId: string; name: string; createdBy: string; createdAt: string }): Promise<boolean> {
    try {
      await this.db
        .insertInto('tags')
        .values({ id: tag.id, dataset_id: tag.datasetId, name: tag.name, created_by: tag.createdBy, created_at: tag.createdAt })
        .execute();
      return true;
    } catch (error) {
      if (isUniqueViolation(error)) return false;
      throw error;
    }
  }

  /** Deletes the tag (its taggings go with it); false when the dataset has no such tag. */
  async delete(datasetId: string, tagId: string): Promise<boolean> {
    const result = await this.db.deleteFrom('tags').where('dataset_id', '=', datasetId).where('id', '=', tagId).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** Of `mediaIds`, those that are media of the dataset. */
  async existingMediaIds(datasetId: string, mediaIds: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < mediaIds.length; i += ID_CHUNK) {
      const rows = await this.db.selectFrom('media').select('id').where('dataset_id', '=', datasetId).where('id', 'in', mediaIds.slice(i, i + ID_CHUNK)).execute();
      for (const row of rows) found.add(row.id);
    }
    return found;
  }

  /** Puts the tag on the media (all or none); answers how many were not tagged with it before. */
  async tagMedia(datasetId: string, tagId: string, mediaIds: string[], createdBy: string, createdAt: string): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      let tagged = 0;
      for (let i = 0; i < mediaIds.length; i += ID_CHUNK / 5) {
        const chunk = mediaIds.slice(i, i + ID_CHUNK / 5);
        const result = await trx
          .insertInto('media_tags')
          .values(chunk.map((mediaId) => ({ dataset_id: datasetId, media_id: mediaId, tag_id: tagId, created_by: createdBy, created_at: createdAt })))
          .onConflict((oc) => oc.columns(['tag_id', 'media_id']).doNothing())
          .executeTakeFirst();
        tagged += Number(result.numInsertedOrUpdatedRows ?? 0);
      }
      return tagged;
    });
  }

  /** Takes the tag off the media; answers how many carried it. */
  async untagMedia(datasetId: string, tagId: string, mediaIds: string[]): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      let untagged = 0;
      for (let i = 0; i < mediaIds.length; i += ID_CHUNK) {
        const result = await trx
          .deleteFrom('media_tags')
          .where('dataset_id', '=', datasetId)
          .where('tag_id', '=', tagId)
          .where('media_id', 'in', mediaIds.slice(i, i + ID_CHUNK))
          .executeTakeFirst();
        untagged += Number(result.numDeletedRows);
      }
      return untagged;
    });
  }

  /** The tags on each of the media, by media then name. */
  async tagsOfMedia(datasetId: string, mediaIds: string[]): Promise<MediaTagRow[]> {
    return tagsOfMedia(this.db, datasetId, mediaIds);
  }
}

/** The tags on each of the media (chunked), by media then name; shared by explore and export reads. */
export async function tagsOfMedia(db: Kysely<Database>, datasetId: string, mediaIds: string[]): Promise<MediaTagRow[]> {
  const out: MediaTagRow[] = [];
  for (let i = 0; i < mediaIds.length; i += ID_CHUNK) {
    const rows = await db
      .selectFrom('media_tags as mt')
      .innerJoin('tags as t', 't.id', 'mt.tag_id')
      .select(['mt.media_id', 'mt.tag_id', 't.name'])
      .where('mt.dataset_id', '=', datasetId)
      .where('mt.media_id', 'in', mediaIds.slice(i, i + ID_CHUNK))
      .orderBy('mt.media_id')
      .orderBy('t.name')
      .execute();
    out.push(...rows);
  }
  return out;
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  // better-sqlite3 and pg respectively.
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505';
}
