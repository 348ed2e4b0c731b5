import fsp from 'node:fs/promises';
import { DUPLICATE_THRESHOLDS } from '../../domain/similarity.js';
import { deterministicUuid } from '../../domain/ids.js';
import type { DatasetAnalysisRows, DatasetVectors, IndexEntity, IssueRow } from '../../db/index.repository.js';
import { blobKeys, type BlobStore } from '../../storage/blob-store.js';
import { analyzeDataset, type DatasetAnalysis } from './analysis.js';
import { VectorIndex, type KnnGraph } from './vector-index.js';

/** The dataset-level step: k-NN graph over all vectors, groupings, and the persisted vector index. */
export interface DatasetIndexer {
  /**
   * The whole dataset-level step in one process: index, k-NN graph, groupings (mislabels included).
   * Images and objects are analysed apart, each index persisted under its own keys (`entity`).
   */
  analyze(datasetId: string, vectors: DatasetVectors, duplicateCosine: number, entity?: IndexEntity): Promise<DatasetAnalysisRows>;
  /**
   * The same step split across workers: `buildIndex` persists the index once, `knnShard` computes
   * rows from..to-1 of the k-NN graph against it (any worker), `analyzeShards` puts the rows together.
   * Images only: a dataset's objects are analysed in one process (`analyze`) at the merge.
   */
  buildIndex(datasetId: string, vectors: DatasetVectors): Promise<void>;
  knnShard(datasetId: string, vectors: DatasetVectors, from: number, to: number): Promise<KnnGraph>;
  analyzeShards(datasetId: string, vectors: DatasetVectors, shards: KnnGraph[], duplicateCosine: number): Promise<DatasetAnalysisRows>;
  /**
   * Clusters of a batch of new media among themselves (add_media before a reindex): nothing is
   * persisted, and dataset-wide results (duplicates, outliers, uniqueness) wait for the reindex.
   */
  clusterBatch(datasetId: string, vectors: DatasetVectors, duplicateCosine: number): Promise<Pick<DatasetAnalysisRows, 'clusters' | 'memberships'>>;
}

export interface KnnIndexerOptions {
  /** Neighbours per media in the k-NN graph. */
  k: number;
  /** Native threads for search (0 = every core). */
  threads: number;
}

/** A dataset's persisted vector index with the media id of each key. */
export interface LoadedDatasetIndex {
  index: VectorIndex;
  mediaIds: string[];
}

/**
 * The dataset-level index: one k-NN graph over every vector (exact search for small datasets, HNSW
 * beyond), every grouping derived from it, and the index persisted next to the dataset's media so
 * search can reload it.
 */
export class KnnDatasetIndexer implements DatasetIndexer {
  constructor(
    private readonly blobs: BlobStore,
    private readonly options: KnnIndexerOptions,
  ) {}

  async analyze(datasetId: string, vectors: DatasetVectors, duplicateCosine: number, entity: IndexEntity = 'images'): Promise<DatasetAnalysisRows> {
    if (vectors.mediaIds.length === 0) {
      await this.removePersisted(datasetId, entity);
      return { perMedia: [], issues: [], clusters: [], memberships: [] };
    }
    const { index, analysis } = await this.analyzeGraph(vectors, duplicateCosine);
    await this.persist(datasetId, index, vectors.mediaIds, entity);
    return toRows(datasetId, vectors.mediaIds, analysis);
  }

  async buildIndex(datasetId: string, vectors: DatasetVectors): Promise<void> {
    const index = await VectorIndex.build(vectors.vectors, vectors.dimensions, { threads: this.options.threads });
    await this.persist(datasetId, index, vectors.mediaIds);
  }

  async knnShard(datasetId: string, vectors: DatasetVectors, from: number, to: number): Promise<KnnGraph> {
    const index = await VectorIndex.loadFromStore(this.blobs, blobKeys.vectorIndex(datasetId), { threads: this.options.threads });
    if (!index.hasVectors) index.attachVectors(vectors.vectors);
    return index.knnRows(this.options.k, from, to);
  }

  async analyzeShards(datasetId: string, vectors: DatasetVectors, shards: KnnGraph[], duplicateCosine: number): Promise<DatasetAnalysisRows> {
    const n = vectors.mediaIds.length;
    const k = this.options.k;
    const neighbors = new Uint32Array(n * k);
    const similarities = new Float32Array(n * k);
    let row = 0;
    for (const shard of shards) {
      if (shard.k !== k) throw new Error(`A k-NN shard has k=${shard.k}, expected ${k}`);
      neighbors.set(shard.neighbors, row * k);
      similarities.set(shard.similarities, row * k);
      row += shard.n;
    }
    if (row !== n) throw new Error(`The k-NN shards hold ${row} rows for ${n} vectors`);
    const analysis = analyzeDataset({ n, k, neighbors, similarities, duplicateCosine, contentHashes: vectors.sha256, labels: vectors.labels });
    return toRows(datasetId, vectors.mediaIds, analysis);
  }

  async clusterBatch(datasetId: string, vectors: DatasetVectors, duplicateCosine: number): Promise<Pick<DatasetAnalysisRows, 'clusters' | 'memberships'>> {
    if (vectors.mediaIds.length === 0) return { clusters: [], memberships: [] };
    const { analysis } = await this.analyzeGraph(vectors, duplicateCosine);
    const { clusters, memberships } = toRows(datasetId, vectors.mediaIds, analysis);
    return { clusters, memberships };
  }

  /** The index beside the dataset's media, with the media id of each key, so search and shards can load it. */
  private async persist(datasetId: string, index: VectorIndex, mediaIds: string[], entity: IndexEntity = 'images'): Promise<void> {
    await index.saveToStore(this.blobs, blobKeys.vectorIndex(datasetId, entity));
    await this.blobs.putBuffer(blobKeys.vectorIndexKeys(datasetId, entity), Buffer.from(JSON.stringify(mediaIds)));
  }

  /** No vectors of this entity any more: an older index of it must not answer searches. */
  private async removePersisted(datasetId: string, entity: IndexEntity): Promise<void> {
    if (await this.blobs.exists(blobKeys.vectorIndexKeys(datasetId, entity))) {
      await this.blobs.deletePrefix(blobKeys.vectorIndexKeys(datasetId, entity));
      await this.blobs.deletePrefix(blobKeys.vectorIndex(datasetId, entity));
    }
  }

  /** The k-NN graph over the vectors and everything derived from it. */
  private async analyzeGraph(vectors: DatasetVectors, duplicateCosine: number): Promise<{ index: VectorIndex; analysis: DatasetAnalysis }> {
    const index = await VectorIndex.build(vectors.vectors, vectors.dimensions, { threads: this.options.threads });
    const graph = await index.knn(this.options.k);
    const analysis = analyzeDataset({
      n: vectors.mediaIds.length,
      k: graph.k,
      neighbors: graph.neighbors,
      similarities: graph.similarities,
      duplicateCosine,
      contentHashes: vectors.sha256,
      labels: vectors.labels,
    });
    return { index, analysis };
  }

  async load(datasetId: string, entity: IndexEntity = 'images'): Promise<LoadedDatasetIndex | null> {
    if (!(await this.blobs.exists(blobKeys.vectorIndexKeys(datasetId, entity)))) return null;
    const index = await VectorIndex.loadFromStore(this.blobs, blobKeys.vectorIndex(datasetId, entity), { threads: this.options.threads });
    const mediaIds = await this.blobs.withLocalFile(blobKeys.vectorIndexKeys(datasetId, entity), async (file) =>
      JSON.parse(await fsp.readFile(file, 'utf8')) as string[],
    );
    return { index, mediaIds };
  }
}

/** Analysis (item numbers) → rows keyed by media id. Group and cluster ids are derived, so a rerun on the same data gives the same ids. */
function toRows(datasetId: string, mediaIds: string[], analysis: DatasetAnalysis): DatasetAnalysisRows {
  const issues: IssueRow[] = [];
  analysis.nearDuplicates.forEach((level, li) => {
    const threshold = DUPLICATE_THRESHOLDS[li]!;
    const groupIds = new Map<number, string>();
    for (let i = 0; i < analysis.n; i++) {
      const group = level.groupOf[i]!;
      if (group < 0) continue;
      let groupId = groupIds.get(group);
      if (!groupId) {
        // Named after its first member: stable across reruns while the group is the same.
        groupId = deterministicUuid(`${datasetId}:duplicates:${threshold}:${mediaIds[i]}`);
        groupIds.set(group, groupId);
      }
      issues.push({ mediaId: mediaIds[i]!, issueType: 'duplicates', confidence: round(analysis.nearestSimilarity[i]!), groupId, threshold });
    }
  });
  for (let j = 0; j < analysis.outliers.items.length; j++) {
    issues.push({ mediaId: mediaIds[analysis.outliers.items[j]!]!, issueType: 'outliers', confidence: round(analysis.outliers.confidence[j]!) });
  }
  // The suggested label is not stored (media_issues has no column for it); the confidence is.
  for (const m of analysis.mislabels) issues.push({ mediaId: mediaIds[m.item]!, issueType: 'mislabels', confidence: round(m.confidence) });

  const clusters: DatasetAnalysisRows['clusters'] = [];
  const memberships: DatasetAnalysisRows['memberships'] = [];
  for (const level of analysis.clusters) {
    const ids: string[] = [];
    for (let c = 0; c < level.count; c++) {
      const representative = mediaIds[level.representatives[c]!]!;
      const clusterId = deterministicUuid(`${datasetId}:cluster:${level.level}:${representative}`);
      ids.push(clusterId);
      clusters.push({ level: level.level, clusterId, size: level.sizes[c]!, representativeMediaId: representative });
    }
    for (let i = 0; i < analysis.n; i++) memberships.push({ level: level.level, mediaId: mediaIds[i]!, clusterId: ids[level.clusterOf[i]!]! });
  }

  const perMedia = mediaIds.map((mediaId, i) => ({
    mediaId,
    uniqueness: round(analysis.uniqueness[i]!),
    nnSimilarity: round(analysis.nearestSimilarity[i]!),
  }));
  return { perMedia, issues, clusters, memberships };
}

const round = (value: number): number => Math.round(value * 1e6) / 1e6;
