import type { Kysely, Transaction } from 'kysely';
import type { Database, IssueType, MediaType } from './schema.js';

/**
 * What the dataset-level index groups together: images (stills and video frames) and objects are
 * analysed apart, so an object is never a duplicate of, an outlier among or clustered with images.
 */
export type IndexEntity = 'images' | 'objects';

export const ENTITY_MEDIA_TYPES: Record<IndexEntity, MediaType[]> = { images: ['image', 'video_frame'], objects: ['object'] };

/** Every indexed vector of a dataset, in media-id order, in one compact matrix. */
export interface DatasetVectors {
  mediaIds: string[];
  sha256: string[];
  /** Each item's label: its one distinct label in media_labels; null when it has none or several. */
  labels: (string | null)[];
  modelIds: Set<string>;
  dimensions: number;
  /** mediaIds.length × dimensions, row-major. */
  vectors: Float32Array;
}

export interface IssueRow {
  mediaId: string;
  issueType: IssueType;
  confidence: number;
  groupId?: string;
  threshold?: number;
}

export interface ClusterRow {
  level: number;
  clusterId: string;
  size: number;
  representativeMediaId: string;
}

export interface DatasetAnalysisRows {
  perMedia: { mediaId: string; uniqueness: number; nnSimilarity: number }[];
  /** Duplicates, outliers and mislabels; replaces what the previous index run wrote. */
  issues: IssueRow[];
  clusters: ClusterRow[];
  memberships: { level: number; mediaId: string; clusterId: string }[];
}

const PAGE = 5000;
const INSERT_CHUNK = 500;
const LABEL_CHUNK = 900;
/** Issue types the dataset-level index computes (quality issues are per media, written at ingest). */
const DATASET_LEVEL_ISSUES: IssueType[] = ['duplicates', 'outliers', 'mislabels'];

/** The dataset-level index: vectors in, groupings out. */
export class IndexRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async countVectors(datasetId: string): Promise<number> {
    const row = await this.db
      .selectFrom('embeddings')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('dataset_id', '=', datasetId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * Reads the vectors a page at a time straight into one preallocated matrix. `unclusteredOnly`:
   * just the media no cluster holds yet (added since the last indexing). `entity`: images (stills
   * and video frames, the default) or objects.
   */
  async loadVectors(datasetId: string, options: { unclusteredOnly?: boolean; entity?: IndexEntity } = {}): Promise<DatasetVectors> {
    const total = await this.countVectors(datasetId);
    const mediaIds: string[] = [];
    const sha256: string[] = [];
    const labels: (string | null)[] = [];
    const modelIds = new Set<string>();
    let vectors = new Float32Array(0);
    let dimensions = 0;
    let afterId: string | null = null;
    for (;;) {
      let query = this.db
        .selectFrom('embeddings')
        .innerJoin('media', 'media.id', 'embeddings.media_id')
        .select(['embeddings.media_id', 'embeddings.model_id', 'embeddings.vector', 'media.sha256'])
        .where('embeddings.dataset_id', '=', datasetId)
        .where('media.status', '=', 'READY')
        .where('media.media_type', 'in', ENTITY_MEDIA_TYPES[options.entity ?? 'images']);
      if (options.unclusteredOnly) {
        query = query.where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('media_clusters').select('media_clusters.media_id').whereRef('media_clusters.media_id', '=', 'embeddings.media_id').where('media_clusters.level', '=', 0))),
        );
      }
      if (afterId !== null) query = query.where('embeddings.media_id', '>', afterId);
      const rows = await query.orderBy('embeddings.media_id').limit(PAGE).execute();
      if (rows.length === 0) break;
      const labelOf = await this.singleLabels(rows.map((r) => r.media_id));
      for (const row of rows) {
        const vector = new Float32Array(row.vector.buffer.slice(row.vector.byteOffset, row.vector.byteOffset + row.vector.byteLength));
        if (dimensions === 0) {
          dimensions = vector.length;
          vectors = new Float32Array(total * dimensions);
        }
        if (vector.length !== dimensions || mediaIds.length >= total) continue;
        vectors.set(vector, mediaIds.length * dimensions);
        mediaIds.push(row.media_id);
        sha256.push(row.sha256);
        labels.push(labelOf.get(row.media_id) ?? null);
        modelIds.add(row.model_id);
      }
      afterId = rows[rows.length - 1]!.media_id;
    }
    return { mediaIds, sha256, labels, modelIds, dimensions, vectors: vectors.subarray(0, mediaIds.length * dimensions) };
  }

  /** The label of each media that carries exactly one distinct label (several disagree: no label to check). */
  private async singleLabels(mediaIds: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (let i = 0; i < mediaIds.length; i += LABEL_CHUNK) {
      const rows = await this.db
        .selectFrom('media_labels')
        .select(['media_id', (eb) => eb.fn.min('label').as('first'), (eb) => eb.fn.max('label').as('last')])
        .where('media_id', 'in', mediaIds.slice(i, i + LABEL_CHUNK))
        .groupBy('media_id')
        .execute();
      for (const row of rows) if (row.first === row.last && row.first !== null) out.set(row.media_id, row.first);
    }
    return out;
  }

  /** Replaces the dataset's previous analysis in one transaction, so readers never see half of one. */
  async saveAnalysis(datasetId: string, analysis: DatasetAnalysisRows): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('media_issues').where('dataset_id', '=', datasetId).where('issue_type', 'in', DATASET_LEVEL_ISSUES).execute();
      await trx.deleteFrom('media_clusters').where('dataset_id', '=', datasetId).execute();
      await trx.deleteFrom('clusters').where('dataset_id', '=', datasetId).execute();

      for (const row of analysis.perMedia) {
        await trx
          .updateTable('media')
          .set({ uniqueness_score: row.uniqueness, nn_similarity: row.nnSimilarity })
          .where('id', '=', row.mediaId)
          .execute();
      }
      for (let i = 0; i < analysis.issues.length; i += INSERT_CHUNK) {
        await trx
          .insertInto('media_issues')
          .values(
            analysis.issues.slice(i, i + INSERT_CHUNK).map((issue) => ({
              dataset_id: datasetId,
              media_id: issue.mediaId,
              issue_type: issue.issueType,
              confidence: issue.confidence,
              group_id: issue.groupId ?? null,
              threshold: issue.threshold ?? null,
            })),
          )
          .execute();
      }
      await insertClusters(trx, datasetId, analysis);
    });
  }

  /** Adds the clusters of a batch of new media beside the existing ones (nothing is replaced). */
  async addClusters(datasetId: string, rows: Pick<DatasetAnalysisRows, 'clusters' | 'memberships'>): Promise<void> {
    await this.db.transaction().execute(async (trx) => insertClusters(trx, datasetId, rows));
  }
}

/** Clusters and memberships, a chunk at a time; rows already there (a retried job) are kept. */
async function insertClusters(trx: Transaction<Database>, datasetId: string, rows: Pick<DatasetAnalysisRows, 'clusters' | 'memberships'>): Promise<void> {
  for (let i = 0; i < rows.clusters.length; i += INSERT_CHUNK) {
    await trx
      .insertInto('clusters')
      .values(
        rows.clusters.slice(i, i + INSERT_CHUNK).map((c) => ({
          dataset_id: datasetId,
          level: c.level,
          cluster_id: c.clusterId,
          size: c.size,
          representative_media_id: c.representativeMediaId,
        })),
      )
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
  for (let i = 0; i < rows.memberships.length; i += INSERT_CHUNK) {
    await trx
      .insertInto('media_clusters')
      .values(rows.memberships.slice(i, i + INSERT_CHUNK).map((m) => ({ dataset_id: datasetId, level: m.level, media_id: m.mediaId, cluster_id: m.clusterId })))
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}

/** Two analyses (images and objects) as one set of rows for one `saveAnalysis`. */
export function mergeAnalysisRows(a: DatasetAnalysisRows, b: DatasetAnalysisRows): DatasetAnalysisRows {
  return {
    perMedia: [...a.perMedia, ...b.perMedia],
    issues: [...a.issues, ...b.issues],
    clusters: [...a.clusters, ...b.clusters],
    memberships: [...a.memberships, ...b.memberships],
  };
}
