import crypto from 'node:crypto';
import type { DatasetsRepository } from '../db/datasets.repository.js';
import { mergeAnalysisRows, type IndexEntity, type IndexRepository } from '../db/index.repository.js';
import type { DerivedMedia, MediaCounts, MediaRepository } from '../db/media.repository.js';
import type { TasksRepository } from '../db/tasks.repository.js';
import type { MediaImportService } from './media-import.service.js';
import type { JobQueue } from '../jobs/job-queue.js';
import { INGEST_BATCH_SIZE, jobIds } from '../jobs/pipeline.js';
import type { EmbeddingModel } from '../models/embedding-model.js';
import type { DatasetIndexer } from '../pipeline/index/dataset-indexer.js';
import type { KnnShardStore } from '../pipeline/index/knn-shards.js';
import type { MediaProcessor, ProcessedMedia } from '../pipeline/media-processor.js';
import type { Raster } from '../pipeline/raster.js';
import { blobKeys, type BlobStore } from '../storage/blob-store.js';
import type { Clock } from './clock.js';
import { mapConcurrently } from '../domain/map-concurrently.js';

/** Share of the progress bar given to decoding and embedding; the dataset-level index step takes the rest. */
const INGEST_PROGRESS_SHARE = 90;
const PENDING_PAGE = 1000;

/** What a dataset was indexed with, so later media use the same model (`embedding_config`). */
export interface EmbeddingConfig {
  model_id: string;
  dimensions: number;
  duplicate_cosine: number;
}

export interface ProcessingOptions {
  /** Media decoded at once within a batch (libvips itself is multi-threaded too). */
  decodeConcurrency: number;
  /** Datasets with more vectors than this compute their k-NN graph in shards of this many rows. */
  knnShardSize: number;
}

/**
 * The rules of processing a dataset's media, run by jobs: split the work into batches, decode each
 * batch, and finish the task once nothing is pending. Every step re-reads state from the database,
 * so a step that runs twice (after a crash) does no double work.
 */
export class ProcessingService {
  constructor(
    private readonly datasets: DatasetsRepository,
    private readonly media: MediaRepository,
    private readonly tasks: TasksRepository,
    private readonly queue: JobQueue,
    private readonly processor: MediaProcessor,
    private readonly model: () => Promise<EmbeddingModel>,
    private readonly index: IndexRepository,
    private readonly indexer: DatasetIndexer,
    private readonly blobs: BlobStore,
    private readonly imports: MediaImportService,
    private readonly knnShards: KnnShardStore,
    private readonly clock: Clock,
    private readonly options: ProcessingOptions,
    private readonly annotations: { applyPendingOfTask(taskId: string): Promise<void> },
    private readonly searchText: { ensureDocuments(datasetId: string): Promise<unknown> },
  ) {}

  async startIngest(datasetId: string, taskId: string): Promise<void> {
    if (!(await this.isTaskLive(datasetId, taskId))) return;
    const now = this.clock.now().toISOString();
    const importRow = await this.imports.findByTask(taskId);
    await this.tasks.update(taskId, { status: 'RUNNING', status_message: importRow?.listed === 0 ? 'Listing media' : 'Processing media', start_time: now });
    if (importRow) {
      await this.imports.list(importRow, () => this.isTaskLive(datasetId, taskId));
      if (!(await this.isTaskLive(datasetId, taskId))) return;
      // Annotation files sent with add_media name media that exist only now; their boxes become
      // pending objects processed with the rest.
      await this.annotations.applyPendingOfTask(taskId);
      await this.tasks.update(taskId, { status_message: 'Processing media' });
    }
    if (!(await this.queuePending(datasetId, taskId))) await this.queueAfterIngest(datasetId, taskId);
  }

  /**
   * Queues a media.ingest job per batch of the dataset's pending media (objects whose image is not
   * READY yet wait for it; those whose image failed fail). False when nothing could be queued.
   */
  private async queuePending(datasetId: string, taskId: string): Promise<boolean> {
    await this.media.failObjectsOfFailedParents(datasetId, this.clock.now().toISOString());
    let afterId: string | null = null;
    let queuedAny = false;
    for (;;) {
      const ids = await this.media.listPendingIds(datasetId, afterId, PENDING_PAGE);
      if (ids.length === 0) break;
      await this.queueBatches(datasetId, taskId, ids);
      queuedAny = true;
      afterId = ids[ids.length - 1]!;
    }
    return queuedAny;
  }

  /** One media.ingest job per INGEST_BATCH_SIZE ids, named by the task and the batch's first id (a rerun queues nothing twice). */
  private async queueBatches(datasetId: string, taskId: string, ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += INGEST_BATCH_SIZE) {
      const batch = ids.slice(i, i + INGEST_BATCH_SIZE);
      await this.queue.enqueue('media.ingest', { datasetId, taskId, mediaIds: batch }, { jobId: jobIds.mediaIngest(taskId, batch[0]!) });
    }
  }

  async ingestBatch(datasetId: string, taskId: string, mediaIds: string[]): Promise<void> {
    if (!(await this.isTaskLive(datasetId, taskId))) return;
    const pending = await this.imports.fetch((await this.media.findByIds(mediaIds)).filter((m) => m.status === 'PENDING'));
    // Objects are cut from their parent's stored file.
    const parentIds = [...new Set(pending.flatMap((m) => (m.media_type === 'object' && m.parent_media_id !== null ? [m.parent_media_id] : [])))];
    const parents = new Map((await this.media.findByIds(parentIds)).map((p) => [p.id, p]));
    const decoded = await mapConcurrently(pending, this.options.decodeConcurrency, (m) =>
      this.processor.process(m, m.parent_media_id === null ? undefined : parents.get(m.parent_media_id)),
    ).then(
      (outcomes) => ({ outcomes }),
      (error: unknown) => ({ error }),
    );
    if (!(await this.datasets.findById(datasetId))) {
      // Deleted while this batch decoded: its thumbnails may have landed after the delete emptied the
      // dataset's folder, so remove them here (the delete removes the row before the folder). A
      // decoding error then no longer matters.
      await this.blobs.deletePrefix(blobKeys.datasetPrefix(datasetId));
      return;
    }
    if ('error' in decoded) throw decoded.error;
    const model = await this.model();
    const derived = await this.embed(model, decoded.outcomes);
    await this.media.recordOutcomes(
      datasetId,
      decoded.outcomes.map((p) => p.outcome),
      derived,
      model.id,
      this.clock.now().toISOString(),
    );
    // The objects cut from the images this batch made READY can be processed now; those of images
    // that failed fail with them.
    await this.media.failObjectsOfFailedParents(datasetId, this.clock.now().toISOString(), mediaIds);
    await this.queueBatches(datasetId, taskId, await this.media.pendingObjectsOf(mediaIds));

    const counts = await this.media.counts(datasetId);
    // An import's progress counts its own media (an add_media's, not the dataset's earlier ones).
    const importRow = await this.imports.findByTask(taskId);
    const scope = importRow ? await this.media.importCounts(importRow.id) : counts;
    const total = scope.pending + scope.ready + scope.failed;
    const progress = total === 0 ? INGEST_PROGRESS_SHARE : Math.floor((INGEST_PROGRESS_SHARE * (scope.ready + scope.failed)) / total);
    await this.datasets.update(datasetId, {
      progress,
      ...countColumns(counts),
      updated_at: this.clock.now().toISOString(),
    });
    await this.tasks.update(taskId, { progress, status_message: `Processed ${scope.ready + scope.failed} of ${total} files` });
    if (counts.pending === 0) await this.queueAfterIngest(datasetId, taskId);
  }

  /**
   * After add_media: the new media are grouped among themselves (an independent batch) so they are
   * browsable at once; the dataset is PARTIAL INDEX until a reindex groups everything together.
   * With auto_reindex the lock passes straight to a REINDEX task.
   */
  async partialIndex(datasetId: string, taskId: string): Promise<void> {
    if (!(await this.isTaskLive(datasetId, taskId))) return;
    await this.tasks.update(taskId, { status_message: 'Grouping the new media' });
    await this.clusterUnclustered(datasetId);
    // Full-text documents of the new media now, rather than in the first search that needs them.
    await this.searchText.ensureDocuments(datasetId);

    const task = (await this.tasks.findById(taskId))!;
    const importRow = await this.imports.findByTask(taskId);
    const scope = importRow ? await this.media.importCounts(importRow.id) : { ready: 0, failed: 0, pending: 0 };
    const counts = await this.media.counts(datasetId);
    const now = this.clock.now().toISOString();
    const message = additionSummary(scope.ready, scope.failed, importRow?.n_skipped ?? 0);
    await this.imports.finish(taskId);
    if (importRow?.auto_reindex === 1) {
      const reindexTaskId = crypto.randomUUID();
      await this.tasks.handOverLock(
        taskId,
        { status: 'COMPLETED', progress: 100, status_message: message, end_time: now },
        { id: reindexTaskId, datasetId, taskType: 'REINDEX', createdBy: task.created_by, createdAt: now, statusMessage: 'Queued (auto_reindex)', holdsLock: true },
      );
      await this.datasets.update(datasetId, { status: 'INDEXING', progress: 0, ...countColumns(counts), updated_at: now });
      await this.queue.enqueue('dataset.index', { datasetId, taskId: reindexTaskId }, { jobId: jobIds.datasetIndex(reindexTaskId) });
      return;
    }
    await this.datasets.update(datasetId, { status: 'PARTIAL INDEX', progress: 100, ...countColumns(counts), updated_at: now });
    await this.tasks.update(taskId, { status: 'COMPLETED', progress: 100, status_message: message, end_time: now, holds_lock: 0 });
  }

  /** The dataset-level step: k-NN graph, duplicate groups, clusters, outliers, uniqueness; then READY. */
  async indexDataset(datasetId: string, taskId: string): Promise<void> {
    if (!(await this.isTaskLive(datasetId, taskId))) return;
    const task = (await this.tasks.findById(taskId))!;
    await this.tasks.update(taskId, {
      status: 'RUNNING',
      status_message: 'Indexing: duplicates, clusters, outliers',
      start_time: task.start_time ?? this.clock.now().toISOString(),
    });
    // A reindex first processes media still pending (objects of an annotation import into an indexed
    // dataset); the last batch queues this step again (queueAfterIngest). A first indexing runs once
    // its ingest left nothing pending.
    if (task.task_type === 'REINDEX' && (await this.queuePending(datasetId, taskId))) {
      await this.tasks.update(taskId, { status_message: 'Processing new media and objects' });
      return;
    }
    const model = await this.model();
    const vectors = await this.loadVectors(datasetId, 'images');
    const n = vectors.mediaIds.length;
    if (n <= this.options.knnShardSize) {
      const images = await this.indexer.analyze(datasetId, vectors, model.duplicateCosine, 'images');
      await this.index.saveAnalysis(datasetId, mergeAnalysisRows(images, await this.analyzeObjects(datasetId, model.duplicateCosine)));
      await this.finishIndexing(datasetId, taskId);
      return;
    }
    // Big datasets: the index is built once here, its k-NN rows computed in shards by any worker.
    await this.indexer.buildIndex(datasetId, vectors);
    const shards = Math.ceil(n / this.options.knnShardSize);
    await this.tasks.update(taskId, { status_message: `Indexing: k-NN graph in ${shards} shards` });
    for (let shard = 0; shard < shards; shard++) {
      await this.queue.enqueue('dataset.knn-shard', { datasetId, taskId, shard, shards }, { jobId: jobIds.knnShard(taskId, shard) });
    }
  }

  /** One shard of the k-NN graph; the last one to finish queues the merge. */
  async knnShard(datasetId: string, taskId: string, shard: number, shards: number): Promise<void> {
    if (!(await this.isTaskLive(datasetId, taskId))) return;
    if (!(await this.knnShards.exists(datasetId, taskId, shard))) {
      const vectors = await this.loadVectors(datasetId);
      const size = Math.ceil(vectors.mediaIds.length / shards);
      const from = Math.min(vectors.mediaIds.length, shard * size);
      const to = Math.min(vectors.mediaIds.length, from + size);
      await this.knnShards.save(datasetId, taskId, shard, await this.indexer.knnShard(datasetId, vectors, from, to));
    }
    let done = 0;
    for (let s = 0; s < shards; s++) if (await this.knnShards.exists(datasetId, taskId, s)) done += 1;
    await this.tasks.update(taskId, { status_message: `Indexing: k-NN graph, ${done} of ${shards} shards done` });
    if (done === shards) await this.queue.enqueue('dataset.knn-merge', { datasetId, taskId, shards }, { jobId: jobIds.knnMerge(taskId) });
  }

  /** Puts the shards together into one graph and derives every grouping from it. */
  async knnMerge(datasetId: string, taskId: string, shards: number): Promise<void> {
    if (!(await this.isTaskLive(datasetId, taskId))) return;
    const model = await this.model();
    const vectors = await this.loadVectors(datasetId, 'images');
    const graphs = [];
    for (let shard = 0; shard < shards; shard++) graphs.push(await this.knnShards.load(datasetId, taskId, shard));
    // The shards cover the images; the objects are analysed here, in one process.
    const images = await this.indexer.analyzeShards(datasetId, vectors, graphs, model.duplicateCosine);
    await this.index.saveAnalysis(datasetId, mergeAnalysisRows(images, await this.analyzeObjects(datasetId, model.duplicateCosine)));
    await this.finishIndexing(datasetId, taskId);
    await this.knnShards.deleteAll(datasetId, taskId);
  }

  /** The objects' own analysis: duplicates, outliers, clusters and mislabels among objects only. */
  private async analyzeObjects(datasetId: string, duplicateCosine: number) {
    return this.indexer.analyze(datasetId, await this.loadVectors(datasetId, 'objects'), duplicateCosine, 'objects');
  }

  private async loadVectors(datasetId: string, entity: IndexEntity = 'images') {
    const vectors = await this.index.loadVectors(datasetId, { entity });
    if (vectors.modelIds.size > 1) {
      throw new Error(`Dataset ${datasetId} holds vectors of several models (${[...vectors.modelIds].join(', ')}); reindex it with one model`);
    }
    return vectors;
  }

  /** Counts, embedding config, READY, and the end of the task. */
  private async finishIndexing(datasetId: string, taskId: string): Promise<void> {
    await this.searchText.ensureDocuments(datasetId);
    const model = await this.model();
    const counts = await this.media.counts(datasetId);
    const now = this.clock.now().toISOString();
    const embeddingConfig: EmbeddingConfig = { model_id: model.id, dimensions: model.dimensions, duplicate_cosine: model.duplicateCosine };
    await this.datasets.update(datasetId, {
      status: 'READY',
      progress: 100,
      ...countColumns(counts),
      fatal_error_msg: null,
      embedding_config: JSON.stringify(embeddingConfig),
      updated_at: now,
    });
    const failedNote = counts.failed > 0 ? `; ${counts.failed} could not be processed` : '';
    const objects = counts.readyByType.object;
    await this.imports.finish(taskId);
    await this.tasks.update(taskId, {
      status: 'COMPLETED',
      progress: 100,
      status_message: `Processed ${counts.ready - objects} files${objects > 0 ? ` and ${objects} objects` : ''}${failedNote}`,
      end_time: now,
      holds_lock: 0,
    });
  }

  /**
   * A job gave up. A first indexing leaves the dataset in ERROR with the reason; a failed add_media
   * or reindex leaves it browsable with everything it held before (and whatever new media did get
   * in), with the reason on the task.
   */
  async fail(datasetId: string, taskId: string, error: Error): Promise<void> {
    const now = this.clock.now().toISOString();
    const task = await this.tasks.findById(taskId);
    const dataset = await this.datasets.findById(datasetId);
    const label = task?.task_type === 'MEDIA_ADDITION' ? 'Add media' : task?.task_type === 'REINDEX' ? 'Reindex' : 'Processing';
    const message = `${label} failed: ${error.message}`;
    const importRow = await this.imports.findByTask(taskId);
    if (importRow) await this.media.failPendingOfImport(importRow.id, message, now);
    await this.imports.finish(taskId).catch(() => undefined);
    if (dataset) {
      if (task?.task_type === 'MEDIA_ADDITION' || task?.task_type === 'REINDEX') {
        const added = importRow ? (await this.media.importCounts(importRow.id)).ready : 0;
        if (added > 0) await this.clusterUnclustered(datasetId).catch(() => undefined);
        const restored = task.task_type === 'REINDEX' || added > 0 ? 'PARTIAL INDEX' : (importRow?.previous_status ?? 'PARTIAL INDEX');
        await this.datasets.update(datasetId, { status: restored, progress: 100, ...countColumns(await this.media.counts(datasetId)), updated_at: now });
      } else {
        await this.datasets.update(datasetId, { status: 'ERROR', fatal_error_msg: message, updated_at: now });
      }
    }
    await this.tasks.update(taskId, { status: 'FAILED', error_message: message, end_time: now, holds_lock: 0 });
  }

  /** Groups READY media that belong to no cluster yet (added since the last indexing) among themselves. */
  private async clusterUnclustered(datasetId: string): Promise<void> {
    const model = await this.model();
    // Images among images, objects among objects.
    for (const entity of ['images', 'objects'] as const) {
      const vectors = await this.index.loadVectors(datasetId, { unclusteredOnly: true, entity });
      if (vectors.mediaIds.length === 0) continue;
      await this.index.addClusters(datasetId, await this.indexer.clusterBatch(datasetId, vectors, model.duplicateCosine));
    }
  }

  /** Embeds every raster of the batch in one call (frames included) and fills the vectors in. */
  private async embed(model: EmbeddingModel, processed: ProcessedMedia[]): Promise<DerivedMedia[]> {
    const targets: { raster: Raster; setVector: (v: Float32Array) => void }[] = [];
    const derived: DerivedMedia[] = [];
    for (const item of processed) {
      const { outcome } = item;
      if (item.raster && outcome.ok) targets.push({ raster: item.raster, setVector: (v) => (outcome.vector = v) });
      for (const frame of item.frames) {
        targets.push({ raster: frame.raster, setVector: (v) => (frame.facts.vector = v) });
        derived.push({ row: frame.row, facts: frame.facts });
      }
    }
    if (targets.length > 0) {
      const vectors = await model.embed(targets.map((t) => t.raster));
      targets.forEach((t, i) => t.setVector(vectors[i]!));
    }
    return derived;
  }

  /** Once nothing is pending: a new dataset is indexed; an add_media gets its partial index. */
  private async queueAfterIngest(datasetId: string, taskId: string): Promise<void> {
    const task = await this.tasks.findById(taskId);
    if (task?.task_type === 'MEDIA_ADDITION') {
      await this.queue.enqueue('dataset.partial-index', { datasetId, taskId }, { jobId: jobIds.datasetPartialIndex(taskId) });
    } else if (task?.task_type === 'REINDEX') {
      // The reindex's own dataset.index job queued this ingest and still holds its job id.
      await this.queue.enqueue('dataset.index', { datasetId, taskId }, { jobId: jobIds.datasetIndexAfterIngest(taskId) });
    } else {
      await this.queue.enqueue('dataset.index', { datasetId, taskId }, { jobId: jobIds.datasetIndex(taskId) });
    }
  }

  /** False once the dataset is deleted or the task ended: leftover jobs then do nothing. */
  private async isTaskLive(datasetId: string, taskId: string): Promise<boolean> {
    const task = await this.tasks.findById(taskId);
    return task !== undefined && (task.status === 'INITIALIZING' || task.status === 'RUNNING') && (await this.datasets.findById(datasetId)) !== undefined;
  }
}

function additionSummary(added: number, failed: number, skipped: number): string {
  const parts = [`Added ${added} file${added === 1 ? '' : 's'}`];
  if (failed > 0) parts.push(`${failed} could not be processed`);
  if (skipped > 0) parts.push(`${skipped} skipped (already in the dataset or not media)`);
  return parts.join('; ');
}

/** The dataset's counters as SPEC §2 defines them: n_images counts stills that decoded, not frames or failures. */
function countColumns(counts: MediaCounts) {
  return {
    n_images: counts.readyByType.image,
    n_videos: counts.readyByType.video,
    n_video_frames: counts.readyByType.video_frame,
    n_objects: counts.readyByType.object,
    n_failed: counts.failed,
  };
}
