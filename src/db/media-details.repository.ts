import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database, IssueType, LabelSource, MediaTable } from './schema.js';
import { countReadyMedia } from './explore.repository.js';

export type MediaDetailsRow = Pick<
  Selectable<MediaTable>,
  | 'id'
  | 'dataset_id'
  | 'media_type'
  | 'status'
  | 'file_name'
  | 'original_media_uri'
  | 'file_size'
  | 'sha256'
  | 'width'
  | 'height'
  | 'format'
  | 'thumb_key'
  | 'duration_seconds'
  | 'error'
  | 'parent_media_id'
  | 'frame_timestamp'
  | 'created_at'
  | 'processed_at'
  | 'blur'
  | 'mean_intensity'
  | 'min_intensity'
  | 'max_intensity'
  | 'std_intensity'
  | 'contrast'
  | 'uniqueness_score'
  | 'nn_similarity'
  | 'caption'
  | 'bbox_x'
  | 'bbox_y'
  | 'bbox_w'
  | 'bbox_h'
  | 'bbox_units'
>;

/** An object cut from an image, with its box as stored and one row per label (none: `label` null). */
export interface ObjectOfImageRow {
  id: string;
  status: MediaTable['status'];
  bbox_x: number | null;
  bbox_y: number | null;
  bbox_w: number | null;
  bbox_h: number | null;
  bbox_units: MediaTable['bbox_units'];
  label: string | null;
  source: LabelSource | null;
}

export interface MediaIssueRow {
  issue_type: IssueType;
  confidence: number;
  group_id: string | null;
  threshold: number | null;
}

export interface DuplicateGroupMemberRow {
  group_id: string;
  id: string;
  media_type: MediaTable['media_type'];
  file_name: string;
  original_media_uri: string;
  width: number | null;
  height: number | null;
  file_size: number;
  uniqueness_score: number | null;
  /** The media's cluster at the coarsest level (4), for selections that cover the rest of the dataset. */
  coarse_cluster_id: string | null;
}

const ID_CHUNK = 900;
const COARSEST_LEVEL = 4;

/** Reads behind the UI's media page, issue summary and duplicates view. */
export class MediaDetailsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async findMedia(datasetId: string, mediaId: string): Promise<MediaDetailsRow | undefined> {
    return this.db
      .selectFrom('media')
      .select([
        'id',
        'dataset_id',
        'media_type',
        'status',
        'file_name',
        'original_media_uri',
        'file_size',
        'sha256',
        'width',
        'height',
        'format',
        'thumb_key',
        'duration_seconds',
        'error',
        'parent_media_id',
        'frame_timestamp',
        'created_at',
        'processed_at',
        'blur',
        'mean_intensity',
        'min_intensity',
        'max_intensity',
        'std_intensity',
        'contrast',
        'uniqueness_score',
        'nn_similarity',
        'caption',
        'bbox_x',
        'bbox_y',
        'bbox_w',
        'bbox_h',
        'bbox_units',
      ])
      .where('dataset_id', '=', datasetId)
      .where('id', '=', mediaId)
      .executeTakeFirst();
  }

  async issuesOf(datasetId: string, mediaId: string): Promise<MediaIssueRow[]> {
    return this.db
      .selectFrom('media_issues')
      .select(['issue_type', 'confidence', 'group_id', 'threshold'])
      .where('dataset_id', '=', datasetId)
      .where('media_id', '=', mediaId)
      .orderBy('issue_type')
      .orderBy('threshold')
      .execute();
  }

  /** The media's own labels (an image's labels; an object's class), by name. */
  async labelsOf(datasetId: string, mediaId: string): Promise<{ label: string; source: LabelSource; confidence: number | null }[]> {
    return this.db
      .selectFrom('media_labels')
      .select(['label', 'source', 'confidence'])
      .where('dataset_id', '=', datasetId)
      .where('media_id', '=', mediaId)
      .orderBy('label')
      .execute();
  }

  /** The objects cut from an image, each with its labels (one row per label; none: a row with label null). */
  async objectsOf(datasetId: string, imageId: string): Promise<ObjectOfImageRow[]> {
    return this.db
      .selectFrom('media as m')
      .leftJoin('media_labels as l', (join) => join.onRef('l.media_id', '=', 'm.id').onRef('l.dataset_id', '=', 'm.dataset_id'))
      .select(['m.id', 'm.status', 'm.bbox_x', 'm.bbox_y', 'm.bbox_w', 'm.bbox_h', 'm.bbox_units', 'l.label', 'l.source'])
      .where('m.dataset_id', '=', datasetId)
      .where('m.parent_media_id', '=', imageId)
      .where('m.media_type', '=', 'object')
      .orderBy('m.id')
      .orderBy('l.label')
      .execute();
  }

  /** The media's cluster at each granularity (0 finest … 4 coarsest). */
  async clustersOf(datasetId: string, mediaId: string): Promise<{ level: number; cluster_id: string }[]> {
    return this.db
      .selectFrom('media_clusters')
      .select(['level', 'cluster_id'])
      .where('dataset_id', '=', datasetId)
      .where('media_id', '=', mediaId)
      .orderBy('level')
      .execute();
  }

  /** Media of each issue type (duplicates: at `duplicateThreshold` only), among READY images and frames (objects have their own). */
  async issueCounts(datasetId: string, duplicateThreshold: number): Promise<Map<IssueType, number>> {
    const rows = await this.db
      .selectFrom('media_issues as i')
      .innerJoin('media as m', 'm.id', 'i.media_id')
      .select('i.issue_type')
      .select(sql<number>`count(distinct i.media_id)`.as('n'))
      .where('i.dataset_id', '=', datasetId)
      .where('m.status', '=', 'READY')
      .where('m.media_type', '!=', 'object')
      .where((eb) => eb.or([eb('i.issue_type', '!=', 'duplicates'), eb('i.threshold', '=', duplicateThreshold)]))
      .groupBy('i.issue_type')
      .execute();
    return new Map(rows.map((r) => [r.issue_type, Number(r.n)]));
  }

  async countDuplicateGroups(datasetId: string, threshold: number): Promise<number> {
    const row = await this.db
      .selectFrom('media_issues as i')
      .innerJoin('media as m', 'm.id', 'i.media_id')
      .select(sql<number>`count(distinct i.group_id)`.as('n'))
      .where('i.dataset_id', '=', datasetId)
      .where('i.issue_type', '=', 'duplicates')
      .where('i.threshold', '=', threshold)
      .where('m.media_type', '!=', 'object')
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** READY media of the dataset (images, videos, frames; not objects). */
  async countMedia(datasetId: string): Promise<number> {
    return countReadyMedia(this.db, datasetId);
  }

  /** A page of near-duplicate groups at `threshold`, largest first, with their sizes. */
  async duplicateGroupPage(datasetId: string, threshold: number, offset: number, limit: number): Promise<{ group_id: string; size: number }[]> {
    const rows = await this.db
      .selectFrom('media_issues as i')
      .innerJoin('media as m', 'm.id', 'i.media_id')
      .select('i.group_id')
      .select((eb) => eb.fn.countAll<number>().as('size'))
      .where('i.dataset_id', '=', datasetId)
      .where('i.issue_type', '=', 'duplicates')
      .where('i.threshold', '=', threshold)
      .where('i.group_id', 'is not', null)
      .where('m.media_type', '!=', 'object')
      .groupBy('i.group_id')
      .orderBy('size', 'desc')
      .orderBy('i.group_id')
      .limit(limit)
      .offset(offset)
      .execute();
    return rows.map((r) => ({ group_id: r.group_id!, size: Number(r.size) }));
  }

  /** The members of these groups: the largest picture of a group first (the natural one to keep). */
  async duplicateGroupMembers(datasetId: string, threshold: number, groupIds: string[]): Promise<DuplicateGroupMemberRow[]> {
    const out: DuplicateGroupMemberRow[] = [];
    for (let i = 0; i < groupIds.length; i += ID_CHUNK) {
      const rows = await this.db
        .selectFrom('media_issues as i')
        .innerJoin('media as m', 'm.id', 'i.media_id')
        .leftJoin('media_clusters as mc', (join) =>
          join.onRef('mc.dataset_id', '=', 'i.dataset_id').onRef('mc.media_id', '=', 'i.media_id').on('mc.level', '=', COARSEST_LEVEL),
        )
        .select(['i.group_id', 'm.id', 'm.media_type', 'm.file_name', 'm.original_media_uri', 'm.width', 'm.height', 'm.file_size', 'm.uniqueness_score'])
        .select('mc.cluster_id as coarse_cluster_id')
        .where('i.dataset_id', '=', datasetId)
        .where('i.issue_type', '=', 'duplicates')
        .where('i.threshold', '=', threshold)
        .where('i.group_id', 'in', groupIds.slice(i, i + ID_CHUNK))
        .orderBy(sql`coalesce(m.width, 0) * coalesce(m.height, 0)`, 'desc')
        .orderBy('m.file_size', 'desc')
        .orderBy('m.file_name')
        .orderBy('m.id')
        .execute();
      for (const row of rows) out.push({ ...row, group_id: row.group_id! });
    }
    return out;
  }
}
