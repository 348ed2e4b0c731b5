import type { Kysely, Selectable } from 'kysely';
import type { Database, LabelSource, MediaIssuesTable, MediaLabelsTable, MediaTable } from './schema.js';
import { tagsOfMedia, type MediaTagRow } from './tags.repository.js';

export type ExportMediaRow = Pick<
  Selectable<MediaTable>,
  | 'id'
  | 'media_type'
  | 'original_media_uri'
  | 'file_name'
  | 'blob_key'
  | 'file_size'
  | 'width'
  | 'height'
  | 'uniqueness_score'
  | 'parent_media_id'
  | 'frame_timestamp'
  | 'caption'
>;

export type ExportIssueRow = Pick<Selectable<MediaIssuesTable>, 'media_id' | 'issue_type' | 'confidence' | 'group_id' | 'threshold'>;

export type ExportLabelRow = Pick<Selectable<MediaLabelsTable>, 'media_id' | 'label' | 'source' | 'confidence'>;

/** An object cut from an exported media item, with its class (null when the object has no label row). */
export type ExportObjectRow = Pick<Selectable<MediaTable>, 'id' | 'parent_media_id' | 'bbox_x' | 'bbox_y' | 'bbox_w' | 'bbox_h' | 'bbox_units'> & {
  label: string | null;
  source: LabelSource | null;
  confidence: number | null;
};

/** Bind parameters are capped (SQLite, PostgreSQL): id lists go in chunks of this many. */
const ID_CHUNK = 500;

/** What an export reads: exportable media a page at a time, and what indexing recorded about them. */
export class ExportRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** READY images and video frames (never videos themselves), in id order after `afterId` (keyset paging). */
  async pageExportable(datasetId: string, afterId: string | null, limit: number): Promise<ExportMediaRow[]> {
    let query = this.db
      .selectFrom('media')
      .select([
        'id',
        'media_type',
        'original_media_uri',
        'file_name',
        'blob_key',
        'file_size',
        'width',
        'height',
        'uniqueness_score',
        'parent_media_id',
        'frame_timestamp',
        'caption',
      ])
      .where('dataset_id', '=', datasetId)
      .where('status', '=', 'READY')
      .where('media_type', 'in', ['image', 'video_frame']);
    if (afterId !== null) query = query.where('id', '>', afterId);
    return query.orderBy('id').limit(limit).execute();
  }

  async countExportable(datasetId: string): Promise<number> {
    const row = await this.db
      .selectFrom('media')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('dataset_id', '=', datasetId)
      .where('status', '=', 'READY')
      .where('media_type', 'in', ['image', 'video_frame'])
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Issues of a page of media (callers pass at most a page of ids). */
  async issuesOf(datasetId: string, mediaIds: string[]): Promise<ExportIssueRow[]> {
    if (mediaIds.length === 0) return [];
    return this.db
      .selectFrom('media_issues')
      .select(['media_id', 'issue_type', 'confidence', 'group_id', 'threshold'])
      .where('dataset_id', '=', datasetId)
      .where('media_id', 'in', mediaIds)
      .orderBy('media_id')
      .orderBy('issue_type')
      .orderBy('threshold')
      .execute();
  }

  /** User tags of a page of media, by media then name. */
  async tagsOf(datasetId: string, mediaIds: string[]): Promise<MediaTagRow[]> {
    return tagsOfMedia(this.db, datasetId, mediaIds);
  }

  /** Labels on a page of media (image labels), by media, label, source. */
  async labelsOf(datasetId: string, mediaIds: string[]): Promise<ExportLabelRow[]> {
    const out: ExportLabelRow[] = [];
    for (let i = 0; i < mediaIds.length; i += ID_CHUNK) {
      const rows = await this.db
        .selectFrom('media_labels')
        .select(['media_id', 'label', 'source', 'confidence'])
        .where('dataset_id', '=', datasetId)
        .where('media_id', 'in', mediaIds.slice(i, i + ID_CHUNK))
        .orderBy('media_id')
        .orderBy('label')
        .orderBy('source')
        .execute();
      out.push(...rows);
    }
    return out;
  }

  /**
   * The objects cut from a page of media (any but FAILED ones: a PENDING object's box is still the
   * annotation it came with), one row per object and label, by parent then object id.
   */
  async objectsOf(datasetId: string, parentIds: string[]): Promise<ExportObjectRow[]> {
    const out: ExportObjectRow[] = [];
    for (let i = 0; i < parentIds.length; i += ID_CHUNK) {
      const rows = await this.db
        .selectFrom('media as o')
        .leftJoin('media_labels as l', 'l.media_id', 'o.id')
        .select(['o.id', 'o.parent_media_id', 'o.bbox_x', 'o.bbox_y', 'o.bbox_w', 'o.bbox_h', 'o.bbox_units', 'l.label', 'l.source', 'l.confidence'])
        .where('o.dataset_id', '=', datasetId)
        .where('o.media_type', '=', 'object')
        .where('o.status', '!=', 'FAILED')
        .where('o.parent_media_id', 'in', parentIds.slice(i, i + ID_CHUNK))
        .orderBy('o.parent_media_id')
        .orderBy('o.id')
        .orderBy('l.label')
        .orderBy('l.source')
        .execute();
      out.push(...rows);
    }
    return out;
  }

  /** Issues (a `mislabels` flag above all) of the objects cut from a page of media. */
  async objectIssuesOf(datasetId: string, parentIds: string[]): Promise<ExportIssueRow[]> {
    const out: ExportIssueRow[] = [];
    for (let i = 0; i < parentIds.length; i += ID_CHUNK) {
      const rows = await this.db
        .selectFrom('media_issues as i')
        .innerJoin('media as o', 'o.id', 'i.media_id')
        .select(['i.media_id', 'i.issue_type', 'i.confidence', 'i.group_id', 'i.threshold'])
        .where('i.dataset_id', '=', datasetId)
        .where('o.media_type', '=', 'object')
        .where('o.parent_media_id', 'in', parentIds.slice(i, i + ID_CHUNK))
        .orderBy('i.media_id')
        .orderBy('i.issue_type')
        .orderBy('i.threshold')
        .execute();
      out.push(...rows);
    }
    return out;
  }

  /** media id → cluster id at one granularity (0 = finest). */
  async clustersOf(datasetId: string, mediaIds: string[], level: number): Promise<Map<string, string>> {
    if (mediaIds.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('media_clusters')
      .select(['media_id', 'cluster_id'])
      .where('dataset_id', '=', datasetId)
      .where('level', '=', level)
      .where('media_id', 'in', mediaIds)
      .execute();
    return new Map(rows.map((r) => [r.media_id, r.cluster_id]));
  }

  /** media id → file name, for the videos that frames came from. */
  async fileNamesOf(mediaIds: string[]): Promise<Map<string, string>> {
    if (mediaIds.length === 0) return new Map();
    const rows = await this.db.selectFrom('media').select(['id', 'file_name']).where('id', 'in', mediaIds).execute();
    return new Map(rows.map((r) => [r.id, r.file_name]));
  }

  /** Which of `mediaIds` belong to cluster `clusterId` (at whatever level it is). */
  async membersOfCluster(datasetId: string, clusterId: string, mediaIds: string[]): Promise<Set<string>> {
    if (mediaIds.length === 0) return new Set();
    const rows = await this.db
      .selectFrom('media_clusters')
      .select('media_id')
      .where('dataset_id', '=', datasetId)
      .where('cluster_id', '=', clusterId)
      .where('media_id', 'in', mediaIds)
      .execute();
    return new Set(rows.map((r) => r.media_id));
  }

  async clusterExists(datasetId: string, clusterId: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('clusters')
      .select('cluster_id')
      .where('dataset_id', '=', datasetId)
      .where('cluster_id', '=', clusterId)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** The subset of `mediaIds` that are media of this dataset (chunked: bind parameters are capped). */
  async existingMediaIds(datasetId: string, mediaIds: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < mediaIds.length; i += 500) {
      const rows = await this.db
        .selectFrom('media')
        .select('id')
        .where('dataset_id', '=', datasetId)
        .where('id', 'in', mediaIds.slice(i, i + 500))
        .execute();
      for (const r of rows) found.add(r.id);
    }
    return found;
  }
}
