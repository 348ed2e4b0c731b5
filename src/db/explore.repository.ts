import { sql, type Kysely, type RawBuilder, type Selectable, type SqlBool } from 'kysely';
import { dialectOf, type DialectName } from './dialect.js';
import type { Database, IssueType, MediaTable, MediaType } from './schema.js';
import { ftsCondition, SearchTextRepository } from './search-text.repository.js';
import { labelCounts, labelNamesOf } from './annotations.repository.js';
import { tagsOfMedia } from './tags.repository.js';

/** Which media an explore request may show; every condition is ANDed. */
export interface MediaFilter {
  mediaTypes: MediaType[];
  /** Has (`in`) or has not (`out`) an issue of this type (duplicates: at `threshold`). */
  issues: { issueType: IssueType; mode: 'in' | 'out'; threshold: number | null; minConfidence: number | null }[];
  /** Belongs to a near-duplicate group at each of these (computed) thresholds. */
  duplicateThresholds: number[];
  minUniqueness: number[];
  /**
   * Full-text searches (VQL `text` `fts`) over file name, path, caption and labels, each required:
   * every word must begin a word of the media's text (src/db/search-text.repository.ts). Call
   * `prepareFilter` before querying with them.
   */
  textContains: string[];
  /** User tag names: the media carries at least one name of each list (any of a list; lists ANDed). */
  tagNames: string[][];
  /**
   * Label names: the media carries at least one name of each list (lists ANDed); an image also
   * matches through the labels of the objects cut from it.
   */
  labelNames: string[][];
  /** Case-insensitive substrings of the caption, each required. */
  captionContains: string[];
  /** A condition no media can meet (an empty list of names). */
  matchNothing: boolean;
}

export const NO_FILTER: MediaFilter = { mediaTypes: ['image', 'video_frame'], issues: [], duplicateThresholds: [], minUniqueness: [], textContains: [], tagNames: [], labelNames: [], captionContains: [], matchNothing: false };

/** How explore orders a level's clusters. */
export type ClusterOrder = 'size' | 'uniqueness';

/** An object's preview also carries its parent image and its box (pixels of the parent). */
export type PreviewMedia = Pick<Selectable<MediaTable>, 'id' | 'media_type' | 'file_name' | 'original_media_uri' | 'width' | 'height' | 'parent_media_id' | 'bbox_x' | 'bbox_y' | 'bbox_w' | 'bbox_h' | 'caption'>;

const PREVIEW_COLUMNS = ['id', 'media_type', 'file_name', 'original_media_uri', 'width', 'height', 'parent_media_id', 'bbox_x', 'bbox_y', 'bbox_w', 'bbox_h', 'caption'] as const;

export interface ClusterPageRow {
  clusterId: string;
  /** Members that pass the filter. */
  size: number;
  nImages: number;
  nVideoFrames: number;
  nVideos: number;
  nObjects: number;
  representativeMediaId: string;
}

export interface ClusterPreviewRow extends PreviewMedia {
  cluster_id: string;
}

export type ExploreMediaRow = Pick<Selectable<MediaTable>, 'id' | 'dataset_id' | 'media_type' | 'status' | 'file_name' | 'original_media_uri' | 'blob_key' | 'thumb_key' | 'sha256' | 'file_size' | 'format' | 'width' | 'height'>;

const ID_CHUNK = 900;

/** Reads for explore and search: clusters, previews, filters, vectors and upload anchors. */
export class ExploreRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Whether the filter is "everything clustered" (the fast path reads cluster sizes directly). */
  static isTrivial(filter: MediaFilter): boolean {
    const types = new Set(filter.mediaTypes);
    return (
      !filter.matchNothing &&
      // Every member of an entity's clusters: images and frames (IMAGES), or objects (OBJECTS).
      ((types.has('image') && types.has('video_frame') && !types.has('object')) || (types.size === 1 && types.has('object'))) &&
      filter.issues.length === 0 &&
      filter.duplicateThresholds.length === 0 &&
      filter.minUniqueness.length === 0 &&
      filter.textContains.length === 0 &&
      filter.tagNames.length === 0 &&
      filter.labelNames.length === 0 &&
      filter.captionContains.length === 0
    );
  }

  /** Makes the filter's full-text searches see every READY media (builds missing search documents). */
  async prepareFilter(datasetId: string, filter: MediaFilter): Promise<void> {
    if (filter.textContains.length > 0 && !filter.matchNothing) await new SearchTextRepository(this.db).ensureDocuments(datasetId);
  }

  /** A page of the level's clusters, largest (after filtering) first, or (`uniqueness`) the one with the most unique member first. */
  async clusterPage(datasetId: string, level: number, filter: MediaFilter, offset: number, limit: number, order: ClusterOrder = 'size'): Promise<ClusterPageRow[]> {
    if (filter.matchNothing || filter.mediaTypes.length === 0) return [];
    let page: { cluster_id: string; size: number; representative_media_id: string }[];
    if (ExploreRepository.isTrivial(filter) && order === 'size') {
      // Images and objects are clustered apart: a cluster is of the entity its representative is.
      page = await this.db
        .selectFrom('clusters')
        .innerJoin('media as r', 'r.id', 'clusters.representative_media_id')
        .select(['clusters.cluster_id', 'clusters.size', 'clusters.representative_media_id'])
        .where('clusters.dataset_id', '=', datasetId)
        .where('clusters.level', '=', level)
        .where('r.media_type', 'in', filter.mediaTypes)
        .orderBy('clusters.size', 'desc')
        .orderBy('clusters.cluster_id')
        .limit(limit)
        .offset(offset)
        .execute();
    } else {
      page = await this.db
        .selectFrom('media_clusters as mc')
        .innerJoin('media as m', 'm.id', 'mc.media_id')
        .innerJoin('clusters as c', (join) => join.onRef('c.dataset_id', '=', 'mc.dataset_id').onRef('c.level', '=', 'mc.level').onRef('c.cluster_id', '=', 'mc.cluster_id'))
        .select(['mc.cluster_id', 'c.representative_media_id'])
        .select((eb) => eb.fn.countAll<number>().as('size'))
        .where('mc.dataset_id', '=', datasetId)
        .where('mc.level', '=', level)
        .where(filterSql(datasetId, filter, dialectOf(this.db)))
        .groupBy(['mc.cluster_id', 'c.representative_media_id'])
        .$if(order === 'uniqueness', (q) => q.orderBy(sql`max(coalesce(m.uniqueness_score, 0))`, 'desc'))
        .orderBy('size', 'desc')
        .orderBy('mc.cluster_id')
        .limit(limit)
        .offset(offset)
        .execute();
    }
    if (page.length === 0) return [];
    const counts = await this.db
      .selectFrom('media_clusters as mc')
      .innerJoin('media as m', 'm.id', 'mc.media_id')
      .select('mc.cluster_id')
      .select(sql<number>`sum(case when m.media_type = 'image' then 1 else 0 end)`.as('n_images'))
      .select(sql<number>`sum(case when m.media_type = 'video_frame' then 1 else 0 end)`.as('n_frames'))
      .select(sql<number>`sum(case when m.media_type = 'object' then 1 else 0 end)`.as('n_objects'))
      .select(sql<number>`count(distinct case when m.media_type = 'video_frame' then m.parent_media_id end)`.as('n_videos'))
      .where('mc.dataset_id', '=', datasetId)
      .where('mc.level', '=', level)
      .where(
        'mc.cluster_id',
        'in',
        page.map((p) => p.cluster_id),
      )
      .where(filterSql(datasetId, filter, dialectOf(this.db)))
      .groupBy('mc.cluster_id')
      .execute();
    const byCluster = new Map(counts.map((c) => [c.cluster_id, c]));
    return page.map((p) => {
      const c = byCluster.get(p.cluster_id);
      return {
        clusterId: p.cluster_id,
        size: Number(p.size),
        nImages: Number(c?.n_images ?? 0),
        nVideoFrames: Number(c?.n_frames ?? 0),
        nVideos: Number(c?.n_videos ?? 0),
        nObjects: Number(c?.n_objects ?? 0),
        representativeMediaId: p.representative_media_id,
      };
    });
  }

  /** Up to `perCluster` previews of each cluster that pass the filter: the representative first, then the most unique. */
  async clusterPreviews(datasetId: string, level: number, clusterIds: string[], filter: MediaFilter, perCluster: number): Promise<ClusterPreviewRow[]> {
    if (clusterIds.length === 0 || filter.matchNothing) return [];
    const ranked = this.db
      .selectFrom('media_clusters as mc')
      .innerJoin('media as m', 'm.id', 'mc.media_id')
      .innerJoin('clusters as c', (join) => join.onRef('c.dataset_id', '=', 'mc.dataset_id').onRef('c.level', '=', 'mc.level').onRef('c.cluster_id', '=', 'mc.cluster_id'))
      .select(['mc.cluster_id', 'm.id', 'm.media_type', 'm.file_name', 'm.original_media_uri', 'm.width', 'm.height', 'm.parent_media_id', 'm.bbox_x', 'm.bbox_y', 'm.bbox_w', 'm.bbox_h', 'm.caption'])
      .select(
        sql<number>`row_number() over (partition by mc.cluster_id order by case when m.id = c.representative_media_id then 0 else 1 end, coalesce(m.uniqueness_score, 0) desc, m.id)`.as('rn'),
      )
      .where('mc.dataset_id', '=', datasetId)
      .where('mc.level', '=', level)
      .where('mc.cluster_id', 'in', clusterIds)
      .where(filterSql(datasetId, filter, dialectOf(this.db)));
    const rows = await this.db.selectFrom(ranked.as('r')).selectAll().where('rn', '<=', perCluster).orderBy('rn').execute();
    return rows.map(({ rn: _rn, ...row }) => row);
  }

  /** Clusters at `level` with at least one media passing the filter. */
  async countClusters(datasetId: string, level: number, filter: MediaFilter = NO_FILTER): Promise<number> {
    if (filter.matchNothing) return 0;
    if (ExploreRepository.isTrivial(filter)) {
      const row = await this.db
        .selectFrom('clusters')
        .innerJoin('media as r', 'r.id', 'clusters.representative_media_id')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('clusters.dataset_id', '=', datasetId)
        .where('clusters.level', '=', level)
        .where('r.media_type', 'in', filter.mediaTypes)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    }
    const row = await this.db
      .selectFrom('media_clusters as mc')
      .innerJoin('media as m', 'm.id', 'mc.media_id')
      .select(sql<number>`count(distinct mc.cluster_id)`.as('n'))
      .where('mc.dataset_id', '=', datasetId)
      .where('mc.level', '=', level)
      .where(filterSql(datasetId, filter, dialectOf(this.db)))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** READY media of the dataset (images, videos and frames). */
  async countMedia(datasetId: string): Promise<number> {
    return countReadyMedia(this.db, datasetId);
  }

  /** Of `ids`, those that pass the filter. */
  async filterIds(datasetId: string, ids: string[], filter: MediaFilter): Promise<Set<string>> {
    const passing = new Set<string>();
    if (filter.matchNothing) return passing;
    for (let i = 0; i < ids.length; i += ID_CHUNK) {
      const rows = await this.db
        .selectFrom('media as m')
        .select('m.id')
        .where('m.dataset_id', '=', datasetId)
        .where('m.id', 'in', ids.slice(i, i + ID_CHUNK))
        .where(filterSql(datasetId, filter, dialectOf(this.db)))
        .execute();
      for (const row of rows) passing.add(row.id);
    }
    return passing;
  }

  async previewMedia(ids: string[]): Promise<Map<string, PreviewMedia>> {
    const out = new Map<string, PreviewMedia>();
    for (let i = 0; i < ids.length; i += ID_CHUNK) {
      const rows = await this.db
        .selectFrom('media')
        .select(PREVIEW_COLUMNS)
        .where('id', 'in', ids.slice(i, i + ID_CHUNK))
        .execute();
      for (const row of rows) out.set(row.id, row);
    }
    return out;
  }

  /** The cluster of each media at `level`. */
  async clustersOf(datasetId: string, level: number, mediaIds: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (let i = 0; i < mediaIds.length; i += ID_CHUNK) {
      const rows = await this.db
        .selectFrom('media_clusters')
        .select(['media_id', 'cluster_id'])
        .where('dataset_id', '=', datasetId)
        .where('level', '=', level)
        .where('media_id', 'in', mediaIds.slice(i, i + ID_CHUNK))
        .execute();
      for (const row of rows) out.set(row.media_id, row.cluster_id);
    }
    return out;
  }

  async findMedia(datasetId: string, mediaId: string): Promise<ExploreMediaRow | undefined> {
    return this.db
      .selectFrom('media')
      .select(['id', 'dataset_id', 'media_type', 'status', 'file_name', 'original_media_uri', 'blob_key', 'thumb_key', 'sha256', 'file_size', 'format', 'width', 'height'])
      .where('dataset_id', '=', datasetId)
      .where('id', '=', mediaId)
      .executeTakeFirst();
  }

  async findMediaIdByOriginalUri(datasetId: string, originalMediaUri: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('media')
      .select('id')
      .where('dataset_id', '=', datasetId)
      .where('original_media_uri', '=', originalMediaUri)
      .orderBy('created_at')
      .orderBy('id')
      .executeTakeFirst();
    return row?.id;
  }

  /** Members of the media's near-duplicate group at `threshold` (itself included), or null if it is in none. */
  async duplicateGroup(datasetId: string, mediaId: string, threshold: number): Promise<string[] | null> {
    const own = await this.db
      .selectFrom('media_issues')
      .select('group_id')
      .where('dataset_id', '=', datasetId)
      .where('media_id', '=', mediaId)
      .where('issue_type', '=', 'duplicates')
      .where('threshold', '=', threshold)
      .executeTakeFirst();
    if (!own?.group_id) return null;
    const rows = await this.db
      .selectFrom('media_issues')
      .select('media_id')
      .where('dataset_id', '=', datasetId)
      .where('issue_type', '=', 'duplicates')
      .where('threshold', '=', threshold)
      .where('group_id', '=', own.group_id)
      .orderBy('media_id')
      .execute();
    return rows.map((r) => r.media_id);
  }

  async vectorOf(datasetId: string, mediaId: string): Promise<{ modelId: string; vector: Float32Array } | undefined> {
    const row = await this.db.selectFrom('embeddings').select(['model_id', 'vector']).where('dataset_id', '=', datasetId).where('media_id', '=', mediaId).executeTakeFirst();
    return row && { modelId: row.model_id, vector: toFloat32(row.vector) };
  }

  async insertUploadAnchor(anchor: { id: string; datasetId: string; modelId: string; vector: Float32Array; createdBy: string; createdAt: string; expiresAt: string }): Promise<void> {
    await this.db
      .insertInto('upload_anchors')
      .values({
        id: anchor.id,
        dataset_id: anchor.datasetId,
        model_id: anchor.modelId,
        vector: new Uint8Array(anchor.vector.buffer, anchor.vector.byteOffset, anchor.vector.byteLength),
        created_by: anchor.createdBy,
        created_at: anchor.createdAt,
        expires_at: anchor.expiresAt,
      })
      .execute();
  }

  async findUploadAnchor(datasetId: string, id: string, now: string): Promise<{ modelId: string; vector: Float32Array } | undefined> {
    const row = await this.db
      .selectFrom('upload_anchors')
      .select(['model_id', 'vector'])
      .where('dataset_id', '=', datasetId)
      .where('id', '=', id)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return row && { modelId: row.model_id, vector: toFloat32(row.vector) };
  }

  /** Label names with how many media (images, frames and objects) carry each, most used first. */
  async labelCounts(datasetId: string): Promise<{ name: string; count: number }[]> {
    return (await labelCounts(this.db, datasetId)).map((l) => ({ name: l.name, count: l.n_images + l.n_objects }));
  }

  /** The distinct, sorted label names of each media: its own, and (images) those of the objects cut from it. */
  async labelNamesOf(datasetId: string, mediaIds: string[]): Promise<Map<string, string[]>> {
    return labelNamesOf(this.db, datasetId, mediaIds);
  }

  /** The distinct, sorted names of the user tags on any of the media. */
  async tagNamesOf(datasetId: string, mediaIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const row of await tagsOfMedia(this.db, datasetId, mediaIds)) {
      const list = out.get(row.media_id);
      if (list) list.push(row.name);
      else out.set(row.media_id, [row.name]);
    }
    return out;
  }

  async deleteExpiredUploadAnchors(now: string): Promise<void> {
    await this.db.deleteFrom('upload_anchors').where('expires_at', '<=', now).execute();
  }
}

/** The filter as one SQL condition on the media alias `m`; portable (SQLite and PostgreSQL). */
// Issue filters are `m.id [not] in (…)` over the dataset's issues rather than a correlated EXISTS per
// row: SQLite builds the (usually small) set once from the media_issues index instead of probing it
// for every media of the level.
function filterSql(datasetId: string, filter: MediaFilter, dialect: DialectName): RawBuilder<SqlBool> {
  if (filter.matchNothing || filter.mediaTypes.length === 0) return sql<SqlBool>`1 = 0`;
  const conditions: RawBuilder<unknown>[] = [sql`m.status = 'READY'`, sql`m.media_type in (${sql.join(filter.mediaTypes)})`];
  for (const issue of filter.issues) {
    const threshold = issue.threshold === null ? sql`` : sql` and i.threshold = ${issue.threshold}`;
    const confidence = issue.minConfidence === null ? sql`` : sql` and i.confidence >= ${issue.minConfidence}`;
    const ids = sql`(select i.media_id from media_issues i where i.dataset_id = ${datasetId} and i.issue_type = ${issue.issueType}${threshold}${confidence})`;
    conditions.push(issue.mode === 'in' ? sql`m.id in ${ids}` : sql`m.id not in ${ids}`);
  }
  for (const threshold of filter.duplicateThresholds) {
    conditions.push(sql`m.id in (select d.media_id from media_issues d where d.dataset_id = ${datasetId} and d.issue_type = 'duplicates' and d.threshold = ${threshold})`);
  }
  for (const names of filter.tagNames) {
    if (names.length === 0) return sql<SqlBool>`1 = 0`;
    conditions.push(sql`m.id in (select mt.media_id from media_tags mt inner join tags tg on tg.id = mt.tag_id where tg.dataset_id = ${datasetId} and tg.name in (${sql.join(names)}))`);
  }
  for (const names of filter.labelNames) {
    if (names.length === 0) return sql<SqlBool>`1 = 0`;
    const labelled = sql`(select l.media_id from media_labels l where l.dataset_id = ${datasetId} and l.label in (${sql.join(names)}))`;
    const throughObjects = sql`(select o.parent_media_id from media o inner join media_labels ol on ol.media_id = o.id where o.dataset_id = ${datasetId} and o.media_type = 'object' and ol.label in (${sql.join(names)}))`;
    conditions.push(sql`(m.id in ${labelled} or m.id in ${throughObjects})`);
  }
  for (const text of filter.captionContains) conditions.push(sql`lower(m.caption) like ${likePattern(text)} escape '\\'`);
  for (const min of filter.minUniqueness) conditions.push(sql`m.uniqueness_score >= ${min}`);
  for (const text of filter.textContains) conditions.push(ftsCondition(dialect, datasetId, text));
  return sql<SqlBool>`(${sql.join(conditions, sql` and `)})`;
}

function toFloat32(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** A LIKE pattern matching `text` anywhere, case-insensitively (compare with lower(column)). */
function likePattern(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** READY media of the dataset: images, videos and frames. Objects are entities of their own (n_objects), not media of the dataset. */
export async function countReadyMedia(db: Kysely<Database>, datasetId: string): Promise<number> {
  const row = await db
    .selectFrom('media')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('dataset_id', '=', datasetId)
    .where('status', '=', 'READY')
    .where('media_type', '!=', 'object')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
