import crypto from 'node:crypto';
import { ConflictError, NotFoundError, RequestValidationError } from '../domain/errors.js';
import { DEFAULT_DUPLICATE_THRESHOLD, snapDuplicateThreshold } from '../domain/similarity.js';
import { parseVql, VqlError, type VqlFilter } from '../domain/vql.js';
import type { DatasetRow } from '../db/datasets.repository.js';
import { ExploreRepository, type ClusterOrder, type MediaFilter, type PreviewMedia } from '../db/explore.repository.js';
import type { DatasetVectors, IndexEntity } from '../db/index.repository.js';
import type { MediaType } from '../db/schema.js';
import type { EmbeddingModel } from '../models/embedding-model.js';
import type { ImageDecoder } from '../pipeline/image-decoder.js';
import type { Raster } from '../pipeline/raster.js';
import type { AccessService } from './access.service.js';
import type { Clock } from './clock.js';

export type EntityType = 'IMAGES' | 'OBJECTS' | 'VIDEOS';
export type AnchorType = 'MEDIA' | 'UPLOAD';

export interface ExploreQuery {
  entityType: EntityType;
  /** Cluster granularity, 0 finest … 4 coarsest. */
  threshold: number;
  pageNumber: number;
  /** Cluster order: largest first (default) or most unique member first. */
  sortBy?: ClusterOrder;
  anchorMediaId?: string;
  anchorType?: AnchorType;
  vql?: string;
  labels?: string;
  /**
   * User tag names: comma-separated, repeated, or a JSON array; media carrying ANY of them pass
   * (ANDed with the VQL, whose `tags` terms work the same way).
   */
  tags?: string | string[];
  caption?: string;
}

export interface PreviewView {
  type: string;
  media_id: string;
  media_uri: string;
  media_thumb_uri: string;
  caption: string | null;
  file_name: string;
  bounding_box: number[] | null;
  relevance_score: number | null;
  relevance_score_type: 'cosine_distance';
  width: number | null;
  height: number | null;
}

export interface ClusterView {
  cluster_id: string;
  type: EntityType;
  n_images: number;
  n_objects: number;
  n_videos: number;
  similarity_threshold: number;
  relevance_score: number | null;
  relevance_score_type: 'cosine_distance';
  previews: PreviewView[];
  labels: string[];
  user_tags: string[];
  captions: string[];
}

export interface ExploreView {
  clusters: ClusterView[];
  metadata: Record<string, unknown>;
}

/** Builds the absolute URIs of a dataset's media (the route knows the public base URL). */
export interface MediaUris {
  file(datasetId: string, mediaId: string): string;
  thumbnail(datasetId: string, mediaId: string): string;
}

/** A dataset's vectors, searchable by a query vector. */
export interface VectorSearcher {
  readonly size: number;
  search(query: Float32Array, k: number): { mediaIds: string[]; similarities: number[] };
}

/** Where searchers come from: the persisted index, or (not yet indexed media) the stored vectors. */
export interface SearcherSource {
  /** `entity`: the dataset's images (default) or its objects, searched apart. */
  persisted(datasetId: string, entity?: IndexEntity): Promise<VectorSearcher | null>;
  loadVectors(datasetId: string, entity?: IndexEntity): Promise<DatasetVectors>;
}

export interface ExploreOptions {
  previewsPerCluster: number;
  /** How long an uploaded search image's vector stays usable. */
  uploadAnchorTtlMs: number;
  /** Nearest media considered for an anchored explore (before grouping into clusters). */
  anchorCandidates: number;
}

/** A VQL `{"text":{"op":"semantic","value","threshold"}}` term. */
interface SemanticTerm {
  text: string;
  threshold: number | null;
}

/** Keep media whose cosine similarity to `vector` is at least `min` (null: rank only). */
interface SimilarityCondition {
  vector: Float32Array;
  min: number | null;
}

export interface VectorSearchQuery {
  text: string;
  entityType: 'IMAGES' | 'OBJECTS';
  /** Results wanted, most similar first. */
  limit: number;
}

export interface VectorSearchView {
  model_id: string;
  entity_type: 'IMAGES' | 'OBJECTS';
  /** As explore's previews, always with a relevance score. */
  results: (PreviewView & { relevance_score: number })[];
}

export interface EmbeddingModelsView {
  models: { model_id: string; modalities: ('image' | 'text')[]; dimensions: number; is_dataset_model: boolean; text_model_id: string | null }[];
}

/** What a user sets to enable text search (the 409/422 messages say it). */
const TEXT_MODEL_SETTINGS =
  'set VIZDEX_MODEL to the image encoder .onnx of a CLIP-style model, VIZDEX_TEXT_MODEL to its text encoder .onnx and VIZDEX_TOKENIZER to its tokenizer (tokenizer.json, vocab.json + merges.txt, or bpe_simple_vocab_16e6.txt.gz); datasets indexed with that image model can then be searched by text';

export const CLUSTERS_PER_PAGE = 100;
/** The similarity a cluster level stands for, reported as `similarity_threshold` (0 finest … 4 coarsest). */
const LEVEL_SIMILARITY = [0.9, 0.8, 0.7, 0.6, 0.5] as const;
// While media are being added (READ ONLY) the stored vectors still answer: browsing goes on.
const SEARCHABLE = new Set(['READY', 'PARTIAL INDEX', 'READ ONLY']);
const SEARCHER_CACHE = 4;

/** Explore and search: clusters, filters (VQL), search by image. */
export class ExploreService {
  private readonly searchers = new Map<string, { version: string; searcher: Promise<VectorSearcher> }>();

  constructor(
    private readonly repo: ExploreRepository,
    private readonly access: AccessService,
    private readonly vectors: SearcherSource,
    private readonly model: () => Promise<EmbeddingModel>,
    private readonly decoder: Pick<ImageDecoder, 'thumbnailFromBuffer'>,
    private readonly clock: Clock,
    private readonly options: ExploreOptions,
  ) {}

  async explore(userId: string, datasetId: string, query: ExploreQuery, uris: MediaUris): Promise<ExploreView> {
    const { dataset } = await this.access.require(userId, datasetId, 'viewer');
    const semantic: SemanticTerm[] = [];
    const filter = this.toFilter(query, semantic);
    await this.repo.prepareFilter(datasetId, filter);
    const conditions = semantic.length > 0 ? await this.semanticConditions(dataset, semantic) : [];
    const level = query.threshold;
    const metadata: Record<string, unknown> = {
      dataset_id: dataset.id,
      entity_type: query.entityType,
      threshold: level,
      page_number: query.pageNumber,
      page_size: CLUSTERS_PER_PAGE,
    };
    if (query.anchorMediaId) {
      const anchorType = query.anchorType ?? 'MEDIA';
      const clusters = await this.anchored(dataset, query.anchorMediaId, anchorType, query, filter, uris, conditions);
      return { clusters, metadata: { ...metadata, anchor_media_id: query.anchorMediaId, anchor_type: anchorType } };
    }
    if (conditions.length > 0) {
      // Semantic text search: the media nearest the (first) text, clusters by relevance.
      const clusters = await this.nearest(dataset, conditions[0]!.vector, query, filter, uris, conditions);
      return { clusters, metadata: { ...metadata, semantic_text: semantic[0]!.text } };
    }

    const page = await this.repo.clusterPage(datasetId, level, filter, query.pageNumber * CLUSTERS_PER_PAGE, CLUSTERS_PER_PAGE, query.sortBy ?? 'size');
    const previews = await this.repo.clusterPreviews(
      datasetId,
      level,
      page.map((c) => c.clusterId),
      filter,
      this.options.previewsPerCluster,
    );
    const byCluster = groupBy(previews, (p) => p.cluster_id);
    const [totalClusters, tagNames, labelNames] = await Promise.all([
      this.repo.countClusters(datasetId, level, filter),
      this.repo.tagNamesOf(
        datasetId,
        previews.map((p) => p.id),
      ),
      this.repo.labelNamesOf(
        datasetId,
        previews.map((p) => p.id),
      ),
    ]);
    const clusters = page.map((c) => {
      const shown = byCluster.get(c.clusterId) ?? [];
      return {
        ...clusterShell(c.clusterId, query.entityType, level, null, c.nImages, c.nVideos, c.nObjects),
        user_tags: userTags(shown.map((m) => m.id), tagNames),
        ...annotationsOf(shown, labelNames),
        previews: shown.map((m) => preview(datasetId, m, null, uris)),
      };
    });
    return { clusters, metadata: { ...metadata, total_clusters: totalClusters, has_more: (query.pageNumber + 1) * CLUSTERS_PER_PAGE < totalClusters } };
  }

  async explorationMetadata(userId: string, datasetId: string) {
    const { dataset } = await this.access.require(userId, datasetId, 'viewer');
    const [clusters, media] = await Promise.all([this.repo.countClusters(datasetId, 0), this.repo.countMedia(datasetId)]);
    const labels = await this.repo.labelCounts(datasetId);
    return { dataset_name: dataset.display_name, clusters_count: clusters, media_count: media, labels };
  }

  /** Embeds an uploaded image with the dataset's model and keeps its vector as an anchor for explore. */
  async searchByImage(userId: string, datasetId: string, image: Buffer, boundingBox: string | undefined): Promise<{ anchor_media_id: string; anchor_type: 'UPLOAD' }> {
    const { dataset } = await this.access.require(userId, datasetId, 'viewer');
    this.assertSearchable(dataset);
    const box = parseBoundingBox(boundingBox);
    const model = await this.model();
    const configured = embeddingModelOf(dataset);
    if (configured !== model.id) {
      throw new ConflictError(`Dataset ${datasetId} was indexed with model ${configured ?? '(none)'}, but this server runs ${model.id}; search it on a server running ${configured ?? 'that model'}, or index its media into a new dataset with this one`);
    }
    let raster: Raster;
    try {
      raster = (await this.decoder.thumbnailFromBuffer(image)).raster;
    } catch (error) {
      throw new RequestValidationError([{ loc: ['body', 'file'], msg: `The uploaded file is not a decodable image: ${error instanceof Error ? error.message : String(error)}`, type: 'value_error' }]);
    }
    if (box) raster = cropRaster(raster, box);
    const [vector] = await model.embed([raster]);
    const now = this.clock.now();
    const id = crypto.randomUUID();
    await this.repo.deleteExpiredUploadAnchors(now.toISOString());
    await this.repo.insertUploadAnchor({
      id,
      datasetId,
      modelId: model.id,
      vector: vector!,
      createdBy: userId,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + this.options.uploadAnchorTtlMs).toISOString(),
    });
    return { anchor_media_id: id, anchor_type: 'UPLOAD' };
  }

  /**
   * The dataset's media most similar to a text (CLIP-style text search), most similar first;
   * `relevance_score` is the cosine distance. 409 without a text-capable model, or when the dataset is
   * not searchable or was indexed with another model.
   */
  async vectorSearch(userId: string, datasetId: string, query: VectorSearchQuery, uris: MediaUris): Promise<VectorSearchView> {
    const { dataset } = await this.access.require(userId, datasetId, 'viewer');
    const filter = this.toFilter({ entityType: query.entityType, threshold: 0, pageNumber: 0 });
    const { model, vectors } = await this.textVectors(dataset, [query.text], 'body');
    const view: VectorSearchView = { model_id: model.id, entity_type: query.entityType, results: [] };
    if (filter.mediaTypes.length === 0) return view;
    const searcher = await this.searcher(dataset, query.entityType === 'OBJECTS' ? 'objects' : 'images');
    const trivial = ExploreRepository.isTrivial(filter);
    const found = searcher.search(vectors[0]!, Math.min(searcher.size, trivial ? query.limit : searcher.size));
    let ids = found.mediaIds;
    let sims = found.similarities;
    if (!trivial) {
      await this.repo.prepareFilter(datasetId, filter);
      const passing = await this.repo.filterIds(dataset.id, ids, filter);
      const keep = ids.map((id) => passing.has(id));
      ids = ids.filter((_, i) => keep[i]).slice(0, query.limit);
      sims = sims.filter((_, i) => keep[i]).slice(0, query.limit);
    }
    const media = await this.repo.previewMedia(ids);
    view.results = ids.flatMap((id, i) => {
      const row = media.get(id);
      const distance = cosineDistance(sims[i]!);
      return row ? [{ ...preview(dataset.id, row, distance, uris), relevance_score: distance }] : [];
    });
    return view;
  }

  /** The embedding model this server runs for the dataset: its modalities, and whether the dataset was indexed with it. */
  async embeddingModels(userId: string, datasetId: string): Promise<EmbeddingModelsView> {
    const { dataset } = await this.access.require(userId, datasetId, 'viewer');
    const model = await this.model();
    return {
      models: [
        {
          model_id: model.id,
          modalities: model.text ? ['image', 'text'] : ['image'],
          dimensions: model.dimensions,
          is_dataset_model: embeddingModelOf(dataset) === model.id,
          text_model_id: model.text?.id ?? null,
        },
      ],
    };
  }

  /** The semantic terms' text vectors, each with its threshold. */
  private async semanticConditions(dataset: DatasetRow, terms: SemanticTerm[]): Promise<SimilarityCondition[]> {
    const { vectors } = await this.textVectors(
      dataset,
      terms.map((term) => term.text),
      'vql',
    );
    return terms.map((term, i) => ({ vector: vectors[i]!, min: term.threshold }));
  }

  /** Embeds texts with the server's text tower, refusing when there is none or the dataset's vectors are another model's. */
  private async textVectors(dataset: DatasetRow, texts: string[], from: 'vql' | 'body'): Promise<{ model: EmbeddingModel; vectors: Float32Array[] }> {
    const model = await this.model();
    if (!model.text) {
      const message = `Semantic text search needs a text-capable (multimodal) embedding model, and none is configured: ${TEXT_MODEL_SETTINGS}`;
      if (from === 'vql') throw new RequestValidationError([{ loc: ['query', 'vql'], msg: message, type: 'value_error' }]);
      throw new ConflictError(message);
    }
    this.assertSearchable(dataset);
    const configured = embeddingModelOf(dataset);
    if (configured !== model.id) {
      throw new ConflictError(`Dataset ${dataset.id} was indexed with model ${configured ?? '(none)'}, but text search here uses ${model.id}; index its media into a new dataset with this model to search them by text`);
    }
    return { model, vectors: await model.text.embedText(texts) };
  }

  /** VQL and the explore parameters as one media filter; a malformed VQL is a 422 that says why. */
  private toFilter(query: ExploreQuery, semantic: SemanticTerm[] = []): MediaFilter {
    const types: Record<EntityType, MediaType[]> = { IMAGES: ['image', 'video_frame'], VIDEOS: ['video_frame'], OBJECTS: ['object'] };
    const filter: MediaFilter = { mediaTypes: types[query.entityType], issues: [], duplicateThresholds: [], minUniqueness: [], textContains: [], tagNames: [], labelNames: [], captionContains: [], matchNothing: false };
    if (nonEmptyList(query.labels)) filter.labelNames.push(tagNameList(query.labels));
    if ((query.caption ?? '').trim() !== '') filter.captionContains.push(query.caption!.trim());
    const tagNames = tagNameList(query.tags);
    if (tagNames.length > 0) filter.tagNames.push(tagNames);
    let terms: VqlFilter[];
    try {
      terms = parseVql(query.vql);
    } catch (error) {
      if (error instanceof VqlError) throw new RequestValidationError([{ loc: ['query', 'vql', ...error.path], msg: error.message, type: 'value_error' }]);
      throw error;
    }
    for (const term of terms) {
      switch (term.kind) {
        case 'fts':
          filter.textContains.push(term.value);
          break;
        case 'semantic':
          // Ranked and thresholded by similarity to the text (see semanticConditions and nearest).
          semantic.push({ text: term.value, threshold: term.threshold });
          break;
        case 'labels':
          filter.labelNames.push(term.values.map((v) => v.trim()).filter((v) => v !== ''));
          break;
        case 'tags':
          // `{"tags":{"op":"is","value":[...]}}`: media carrying any of the names.
          filter.tagNames.push(term.values.map((v) => v.trim()).filter((v) => v !== ''));
          break;
        case 'issue':
          filter.issues.push({
            issueType: term.issue,
            mode: term.mode,
            threshold: term.issue === 'duplicates' ? DEFAULT_DUPLICATE_THRESHOLD : null,
            minConfidence: term.minConfidence,
          });
          break;
        case 'duplicates':
          filter.duplicateThresholds.push(snapDuplicateThreshold(term.threshold));
          break;
        case 'uniqueness':
          filter.minUniqueness.push(term.min);
          break;
      }
    }
    return filter;
  }

  /** Media nearest the anchor, grouped by their cluster at the level: clusters ordered by their nearest member. */
  private async anchored(dataset: DatasetRow, anchorId: string, anchorType: AnchorType, query: ExploreQuery, filter: MediaFilter, uris: MediaUris, conditions: SimilarityCondition[] = []): Promise<ClusterView[]> {
    const now = this.clock.now().toISOString();
    const anchor = anchorType === 'MEDIA' ? await this.repo.vectorOf(dataset.id, anchorId) : await this.repo.findUploadAnchor(dataset.id, anchorId, now);
    if (!anchor) {
      throw new NotFoundError(
        anchorType === 'MEDIA' ? `Media ${anchorId} not found in this dataset (or not indexed)` : `Upload anchor ${anchorId} not found or expired; run search-image-similarity again`,
      );
    }
    const configured = embeddingModelOf(dataset);
    if (configured !== null && anchor.modelId !== configured) {
      throw new ConflictError(`The anchor was embedded with ${anchor.modelId}, but the dataset is indexed with ${configured}; search again`);
    }
    return this.nearest(dataset, anchor.vector, query, filter, uris, conditions);
  }

  /**
   * Media nearest a query vector (an anchor's or a text's), grouped by their cluster at the level:
   * clusters ordered by their nearest member. Each condition keeps only media at least that similar
   * to its vector (semantic terms with a threshold).
   */
  private async nearest(dataset: DatasetRow, vector: Float32Array, query: ExploreQuery, filter: MediaFilter, uris: MediaUris, conditions: SimilarityCondition[] = []): Promise<ClusterView[]> {
    if (filter.matchNothing || filter.mediaTypes.length === 0) return [];
    const searcher = await this.searcher(dataset, query.entityType === 'OBJECTS' ? 'objects' : 'images');
    const found = searcher.search(vector, Math.min(searcher.size, this.options.anchorCandidates));
    let ids = found.mediaIds;
    let sims = found.similarities;
    if (!ExploreRepository.isTrivial(filter)) {
      const passing = await this.repo.filterIds(dataset.id, ids, filter);
      const keep = ids.map((id) => passing.has(id));
      ids = ids.filter((_, i) => keep[i]);
      sims = sims.filter((_, i) => keep[i]);
    }
    for (const condition of conditions.filter((c) => c.min !== null)) {
      const similarity = condition.vector === vector ? new Map(ids.map((id, i) => [id, sims[i]!])) : similarities(searcher, condition.vector);
      const keep = ids.map((id) => (similarity.get(id) ?? -Infinity) >= condition.min!);
      ids = ids.filter((_, i) => keep[i]);
      sims = sims.filter((_, i) => keep[i]);
    }
    const clusterOf = await this.repo.clustersOf(dataset.id, query.threshold, ids);
    const order: string[] = [];
    const members = new Map<string, { id: string; distance: number }[]>();
    ids.forEach((id, i) => {
      const clusterId = clusterOf.get(id) ?? id;
      let list = members.get(clusterId);
      if (!list) members.set(clusterId, (list = [])), order.push(clusterId);
      list.push({ id, distance: cosineDistance(sims[i]!) });
    });
    const pageIds = order.slice(query.pageNumber * CLUSTERS_PER_PAGE, (query.pageNumber + 1) * CLUSTERS_PER_PAGE);
    const shown = pageIds.flatMap((c) => members.get(c)!.slice(0, this.options.previewsPerCluster));
    const [media, tagNames, labelNames] = await Promise.all([
      this.repo.previewMedia(shown.map((m) => m.id)),
      this.repo.tagNamesOf(
        dataset.id,
        shown.map((m) => m.id),
      ),
      this.repo.labelNamesOf(
        dataset.id,
        shown.map((m) => m.id),
      ),
    ]);
    return pageIds.map((clusterId) => {
      const list = members.get(clusterId)!;
      const all = list.map((m) => media.get(m.id)).filter((m): m is PreviewMedia => m !== undefined);
      const nImages = list.filter((m) => media.get(m.id)?.media_type === 'image').length;
      return {
        ...clusterShell(
          clusterId,
          query.entityType,
          query.threshold,
          list[0]!.distance,
          nImages,
          all.some((m) => m.media_type === 'video_frame') ? 1 : 0,
          all.filter((m) => m.media_type === 'object').length,
        ),
        user_tags: userTags(
          list.slice(0, this.options.previewsPerCluster).map((m) => m.id),
          tagNames,
        ),
        ...annotationsOf(
          list
            .slice(0, this.options.previewsPerCluster)
            .map((m) => media.get(m.id))
            .filter((m): m is PreviewMedia => m !== undefined),
          labelNames,
        ),
        previews: list
          .slice(0, this.options.previewsPerCluster)
          .flatMap((m) => {
            const row = media.get(m.id);
            return row ? [preview(dataset.id, row, m.distance, uris)] : [];
          }),
      };
    });
  }

  private assertSearchable(dataset: DatasetRow): void {
    if (!SEARCHABLE.has(dataset.status)) {
      throw new ConflictError(`Dataset ${dataset.id} is not searchable while its status is ${dataset.status}; wait until it is READY`);
    }
  }

  /** The searcher of the dataset's images or objects, cached while the dataset is unchanged. */
  private searcher(dataset: DatasetRow, entity: IndexEntity): Promise<VectorSearcher> {
    const version = `${dataset.status}:${dataset.updated_at}`;
    const key = `${dataset.id}:${entity}`;
    const cached = this.searchers.get(key);
    if (cached?.version === version) return cached.searcher;
    const searcher = (async () => {
      // New media of a PARTIAL INDEX (or READ ONLY) dataset are not in the persisted index yet: search the stored vectors.
      if (dataset.status === 'READY') {
        const persisted = await this.vectors.persisted(dataset.id, entity);
        if (persisted) return persisted;
      }
      return new BruteForceSearcher(await this.vectors.loadVectors(dataset.id, entity));
    })();
    searcher.catch(() => this.searchers.delete(key));
    this.searchers.delete(key);
    this.searchers.set(key, { version, searcher });
    while (this.searchers.size > SEARCHER_CACHE) this.searchers.delete(this.searchers.keys().next().value!);
    return searcher;
  }
}

/** Exact search over the stored vectors (L2-normalised, so cosine is a dot product). */
export class BruteForceSearcher implements VectorSearcher {
  constructor(private readonly data: DatasetVectors) {}

  get size(): number {
    return this.data.mediaIds.length;
  }

  search(query: Float32Array, k: number): { mediaIds: string[]; similarities: number[] } {
    const { vectors, dimensions, mediaIds } = this.data;
    const n = mediaIds.length;
    if (n === 0 || query.length !== dimensions) return { mediaIds: [], similarities: [] };
    const scores = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let dot = 0;
      const base = i * dimensions;
      for (let d = 0; d < dimensions; d++) dot += vectors[base + d]! * query[d]!;
      scores[i] = dot;
    }
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b).slice(0, k);
    return { mediaIds: order.map((i) => mediaIds[i]!), similarities: order.map((i) => scores[i]!) };
  }
}

function clusterShell(clusterId: string, type: EntityType, level: number, relevance: number | null, nImages: number, nVideos: number, nObjects = 0): Omit<ClusterView, 'previews'> {
  return {
    cluster_id: clusterId,
    type,
    n_images: nImages,
    n_objects: nObjects,
    n_videos: nVideos,
    similarity_threshold: LEVEL_SIMILARITY[level] ?? LEVEL_SIMILARITY[0],
    relevance_score: relevance,
    relevance_score_type: 'cosine_distance',
    labels: [],
    user_tags: [],
    captions: [],
  };
}

function preview(datasetId: string, media: PreviewMedia, relevance: number | null, uris: MediaUris): PreviewView {
  return {
    type: media.media_type === 'video_frame' ? 'VIDEO_FRAME' : media.media_type === 'video' ? 'VIDEO' : media.media_type === 'object' ? 'OBJECT' : 'IMAGE',
    media_id: media.id,
    // An object is shown on its image: media_uri is the parent's file, bounding_box the box on it (pixels).
    media_uri: uris.file(datasetId, media.media_type === 'object' && media.parent_media_id ? media.parent_media_id : media.id),
    media_thumb_uri: uris.thumbnail(datasetId, media.id),
    caption: media.caption ?? null,
    file_name: media.file_name,
    bounding_box: objectBox(media),
    relevance_score: relevance,
    relevance_score_type: 'cosine_distance',
    width: media.width,
    height: media.height,
  };
}

/** An object's box on its parent image, [x, y, width, height] in pixels; null for other media. */
function objectBox(media: PreviewMedia): number[] | null {
  if (media.media_type !== 'object' || media.bbox_x === null || media.bbox_y === null || media.bbox_w === null || media.bbox_h === null) return null;
  return [media.bbox_x, media.bbox_y, media.bbox_w, media.bbox_h];
}

/** 0 = identical; rounded so float noise does not show. */
function cosineDistance(similarity: number): number {
  return Math.max(0, Math.round((1 - similarity) * 1e6) / 1e6);
}

/** Every searched media's cosine similarity to a vector. */
function similarities(searcher: VectorSearcher, vector: Float32Array): Map<string, number> {
  const found = searcher.search(vector, searcher.size);
  return new Map(found.mediaIds.map((id, i) => [id, found.similarities[i]!]));
}

function embeddingModelOf(dataset: DatasetRow): string | null {
  if (!dataset.embedding_config) return null;
  try {
    return (JSON.parse(dataset.embedding_config) as { model_id?: string }).model_id ?? null;
  } catch {
    return null;
  }
}

/** A cluster's `labels` and `captions`: those of its previewed media (labels distinct and sorted). */
function annotationsOf(shown: Pick<PreviewMedia, 'id' | 'caption'>[], labelNames: Map<string, string[]>): Pick<ClusterView, 'labels' | 'captions'> {
  return {
    labels: [...new Set(shown.flatMap((m) => labelNames.get(m.id) ?? []))].sort(),
    captions: shown.map((m) => m.caption).filter((c): c is string => c !== null && c !== undefined),
  };
}

/** The distinct, sorted tag names carried by the previewed media of a cluster. */
function userTags(mediaIds: string[], tagNames: Map<string, string[]>): string[] {
  return [...new Set(mediaIds.flatMap((id) => tagNames.get(id) ?? []))].sort();
}

/** `a,b`, repeated parameters or a JSON array of names, trimmed, empty ones dropped. */
function tagNameList(value: string | string[] | undefined): string[] {
  const values = value === undefined ? [] : Array.isArray(value) ? value : [value];
  return values.flatMap((v) => {
    const text = v.trim();
    if (text.startsWith('[')) {
      try {
        const parsed: unknown = JSON.parse(text);
        if (Array.isArray(parsed)) return parsed.filter((p): p is string => typeof p === 'string').map((p) => p.trim()).filter((p) => p !== '');
      } catch {
        // Not JSON: a name list that starts with a bracket.
      }
    }
    return text.split(',').map((p) => p.trim()).filter((p) => p !== '');
  });
}

function nonEmptyList(value: string | undefined): boolean {
  const text = (value ?? '').trim();
  if (text === '' || text === '[]') return false;
  return true;
}

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** `[x, y, width, height]` (JSON array or object, or `x,y,width,height`): fractions of the image, or pixels. */
function parseBoundingBox(value: string | undefined): Box | null {
  if (value === undefined || value.trim() === '') return null;
  let numbers: unknown;
  try {
    numbers = value.trim().startsWith('[') ? JSON.parse(value) : value.split(',').map((v) => Number(v.trim()));
    if (numbers && typeof numbers === 'object' && !Array.isArray(numbers)) {
      const o = numbers as Record<string, unknown>;
      numbers = [o.x, o.y, o.width ?? o.w, o.height ?? o.h];
    }
  } catch {
    numbers = null;
  }
  if (!Array.isArray(numbers) || numbers.length !== 4 || !numbers.every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0) || numbers[2] <= 0 || numbers[3] <= 0) {
    throw new RequestValidationError([{ loc: ['body', 'bounding_box'], msg: 'bounding_box must be [x, y, width, height]: fractions of the image (0-1) or pixels; non-negative, positive size', type: 'value_error' }]);
  }
  const [x, y, width, height] = numbers as number[];
  return { x: x!, y: y!, width: width!, height: height! };
}

/**
 * Crops the decoded raster to the box. A box whose values are all at most 1 is in fractions of the
 * image; otherwise it is in pixels of the decoded raster, which is the upload itself unless the
 * upload is larger than the thumbnail size (then it was shrunk while decoding: use fractions).
 */
function cropRaster(raster: Raster, input: Box): Raster {
  const fractional = input.x <= 1 && input.y <= 1 && input.width <= 1 && input.height <= 1;
  const box = fractional ? { x: input.x * raster.width, y: input.y * raster.height, width: input.width * raster.width, height: input.height * raster.height } : input;
  const x0 = Math.min(raster.width - 1, Math.floor(box.x));
  const y0 = Math.min(raster.height - 1, Math.floor(box.y));
  const w = Math.max(1, Math.min(raster.width - x0, Math.round(box.width)));
  const h = Math.max(1, Math.min(raster.height - y0, Math.round(box.height)));
  const data = new Uint8Array(w * h * 3);
  for (let row = 0; row < h; row++) {
    const from = ((y0 + row) * raster.width + x0) * 3;
    data.set(raster.data.subarray(from, from + w * 3), row * w * 3);
  }
  return { data, width: w, height: h, channels: 3 };
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}
