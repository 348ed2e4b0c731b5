import { sql, type Insertable, type Kysely, type Selectable } from 'kysely';
import type { AnnotationImportsTable, Database, LabelSource, MediaLabelsTable, MediaStatus, MediaType } from './schema.js';
import type { NewMediaRow } from './media.repository.js';

export type AnnotationImportRow = Selectable<AnnotationImportsTable>;
export type NewMediaLabel = Insertable<MediaLabelsTable>;

/** What an annotation file is matched against: a media item that can carry labels. */
export interface LabelableMedia {
  id: string;
  media_type: MediaType;
  status: MediaStatus;
  original_media_uri: string;
  file_name: string;
  blob_key: string;
  width: number | null;
  height: number | null;
}

export interface LabelCount {
  name: string;
  n_images: number;
  n_objects: number;
}

export interface MediaAnnotations {
  labels: { media_id: string; label: string; source: LabelSource; confidence: number | null }[];
  captions: Map<string, string>;
}

const PAGE = 5000;
const INSERT_CHUNK = 500;
const ID_CHUNK = 900;

/** Labels, captions and objects of a dataset's media, and the record of annotation imports. */
export class AnnotationsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Every image and video frame of the dataset (any status), a page at a time: what labels can name. */
  async *labelableMedia(datasetId: string): AsyncIterable<LabelableMedia[]> {
    let afterId: string | null = null;
    for (;;) {
      let query = this.db
        .selectFrom('media')
        .select(['id', 'media_type', 'status', 'original_media_uri', 'file_name', 'blob_key', 'width', 'height'])
        .where('dataset_id', '=', datasetId)
        .where('media_type', 'in', ['image', 'video_frame'])
        .where('status', '!=', 'FAILED');
      if (afterId !== null) query = query.where('id', '>', afterId);
      const rows = await query.orderBy('id').limit(PAGE).execute();
      if (rows.length === 0) return;
      yield rows;
      afterId = rows[rows.length - 1]!.id;
    }
  }

  /**
   * Writes one import's results in one transaction: labels (an identical media/label/source row is
   * not added twice), captions, and objects (deterministic ids: the same box imported again is the
   * same object). Returns how many objects were new.
   */
  async apply(
    datasetId: string,
    changes: { labels: NewMediaLabel[]; captions: Map<string, string>; objects: { row: NewMediaRow; label: NewMediaLabel | null }[] },
  ): Promise<{ objectsAdded: number }> {
    return this.db.transaction().execute(async (trx) => {
      let objectsAdded = 0;
      await updateCaptions(trx, datasetId, [...changes.captions].map(([mediaId, caption]) => ({ mediaId, caption })));
      for (let i = 0; i < changes.objects.length; i += INSERT_CHUNK) {
        const inserted = await trx
          .insertInto('media')
          .values(changes.objects.slice(i, i + INSERT_CHUNK).map((o) => o.row))
          .onConflict((oc) => oc.column('id').doNothing())
          .returning('id')
          .execute();
        objectsAdded += inserted.length;
      }
      // Labels the media already carry (same name and source) are not added again, nor twice from one file.
      const labels = [...changes.labels, ...changes.objects.flatMap((o) => (o.label ? [o.label] : []))];
      const key = (l: { media_id: string; label: string; source: string }) => `${l.media_id}\u0000${l.source}\u0000${l.label}`;
      const seen = new Set<string>();
      const mediaIds = [...new Set(labels.map((l) => l.media_id))];
      for (let i = 0; i < mediaIds.length; i += ID_CHUNK) {
        const existing = await trx.selectFrom('media_labels').select(['media_id', 'label', 'source']).where('media_id', 'in', mediaIds.slice(i, i + ID_CHUNK)).execute();
        for (const row of existing) seen.add(key(row));
      }
      const fresh = labels.filter((l) => !seen.has(key(l)) && (seen.add(key(l)), true));
      for (let i = 0; i < fresh.length; i += INSERT_CHUNK) await trx.insertInto('media_labels').values(fresh.slice(i, i + INSERT_CHUNK)).execute();
      return { objectsAdded };
    });
  }

  async insertImport(row: Insertable<AnnotationImportsTable>): Promise<void> {
    await this.db.insertInto('annotation_imports').values(row).execute();
  }

  async updateImport(id: string, patch: Partial<Omit<AnnotationImportRow, 'id' | 'dataset_id'>>): Promise<void> {
    await this.db.updateTable('annotation_imports').set(patch).where('id', '=', id).execute();
  }

  async findImport(datasetId: string, id: string): Promise<AnnotationImportRow | undefined> {
    return this.db.selectFrom('annotation_imports').selectAll().where('dataset_id', '=', datasetId).where('id', '=', id).executeTakeFirst();
  }

  async pendingImportsOfTask(taskId: string): Promise<AnnotationImportRow[]> {
    return this.db.selectFrom('annotation_imports').selectAll().where('task_id', '=', taskId).where('status', '=', 'PENDING').orderBy('created_at').execute();
  }

  async listImports(datasetId: string): Promise<AnnotationImportRow[]> {
    return this.db.selectFrom('annotation_imports').selectAll().where('dataset_id', '=', datasetId).orderBy('created_at', 'desc').orderBy('id').execute();
  }

  async labelCounts(datasetId: string): Promise<LabelCount[]> {
    return labelCounts(this.db, datasetId);
  }

  /** Labels and captions of the media (labels of their objects are not included). */
  async annotationsOf(datasetId: string, mediaIds: string[]): Promise<MediaAnnotations> {
    const out: MediaAnnotations = { labels: [], captions: new Map() };
    for (let i = 0; i < mediaIds.length; i += ID_CHUNK) {
      const ids = mediaIds.slice(i, i + ID_CHUNK);
      const labels = await this.db
        .selectFrom('media_labels')
        .select(['media_id', 'label', 'source', 'confidence'])
        .where('dataset_id', '=', datasetId)
        .where('media_id', 'in', ids)
        .orderBy('label')
        .execute();
      out.labels.push(...labels);
      const captions = await this.db.selectFrom('media').select(['id', 'caption']).where('id', 'in', ids).where('caption', 'is not', null).execute();
      for (const row of captions) out.captions.set(row.id, row.caption!);
    }
    return out;
  }

  /** Of the ids, those that are media of the dataset that can carry a caption (not objects). */
  async captionableIds(datasetId: string, ids: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < ids.length; i += ID_CHUNK) {
      const rows = await this.db
        .selectFrom('media')
        .select('id')
        .where('dataset_id', '=', datasetId)
        .where('id', 'in', ids.slice(i, i + ID_CHUNK))
        .where('media_type', '!=', 'object')
        .execute();
      for (const row of rows) found.add(row.id);
    }
    return found;
  }

  /** Replaces every label of one media (any source) with these rows. */
  async replaceLabels(mediaId: string, labels: NewMediaLabel[]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('media_labels').where('media_id', '=', mediaId).execute();
      if (labels.length > 0) await trx.insertInto('media_labels').values(labels).execute();
    });
  }

  /** The media of the dataset (any type but video), if it exists. */
  async labelableMediaById(datasetId: string, mediaId: string): Promise<{ id: string; media_type: MediaType } | undefined> {
    return this.db.selectFrom('media').select(['id', 'media_type']).where('dataset_id', '=', datasetId).where('id', '=', mediaId).where('media_type', '!=', 'video').executeTakeFirst();
  }

  /** Sets (or, with null, clears) captions; returns how many media changed. */
  async setCaptions(datasetId: string, captions: { mediaId: string; caption: string | null }[]): Promise<number> {
    return this.db.transaction().execute((trx) => updateCaptions(trx, datasetId, captions));
  }
}

/** Label names with how many images (and frames) and objects carry each, most used first. */
export async function labelCounts(db: Kysely<Database>, datasetId: string): Promise<LabelCount[]> {
  const rows = await db
    .selectFrom('media_labels as l')
    .innerJoin('media as m', 'm.id', 'l.media_id')
    .select('l.label as name')
    .select(sql<number>`count(distinct case when m.media_type <> 'object' then m.id end)`.as('n_images'))
    .select(sql<number>`count(distinct case when m.media_type = 'object' then m.id end)`.as('n_objects'))
    .where('l.dataset_id', '=', datasetId)
    .where('m.status', '!=', 'FAILED')
    .groupBy('l.label')
    .execute();
  return rows
    .map((r) => ({ name: r.name, n_images: Number(r.n_images), n_objects: Number(r.n_objects) }))
    .sort((a, b) => b.n_images + b.n_objects - (a.n_images + a.n_objects) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Sets each media's caption (null clears it); how many media changed. */
async function updateCaptions(db: Kysely<Database>, datasetId: string, captions: { mediaId: string; caption: string | null }[]): Promise<number> {
  let changed = 0;
  for (const { mediaId, caption } of captions) {
    const result = await db.updateTable('media').set({ caption }).where('dataset_id', '=', datasetId).where('id', '=', mediaId).executeTakeFirst();
    changed += Number(result.numUpdatedRows);
  }
  return changed;
}

/** The distinct, sorted label names of each media: its own, and (images) those of the objects cut from it. */
export async function labelNamesOf(db: Kysely<Database>, datasetId: string, mediaIds: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, Set<string>>();
  const add = (mediaId: string, label: string) => {
    const set = out.get(mediaId);
    if (set) set.add(label);
    else out.set(mediaId, new Set([label]));
  };
  for (let i = 0; i < mediaIds.length; i += ID_CHUNK) {
    const ids = mediaIds.slice(i, i + ID_CHUNK);
    const own = await db.selectFrom('media_labels').select(['media_id', 'label']).where('dataset_id', '=', datasetId).where('media_id', 'in', ids).execute();
    for (const row of own) add(row.media_id, row.label);
    const ofObjects = await db
      .selectFrom('media as o')
      .innerJoin('media_labels as l', 'l.media_id', 'o.id')
      .select(['o.parent_media_id', 'l.label'])
      .where('o.dataset_id', '=', datasetId)
      .where('o.media_type', '=', 'object')
      .where('o.parent_media_id', 'in', ids)
      .execute();
    for (const row of ofObjects) if (row.parent_media_id) add(row.parent_media_id, row.label);
  }
  return new Map([...out].map(([id, set]) => [id, [...set].sort()]));
}
