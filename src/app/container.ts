import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { Config } from '../config.js';
import { migrateToLatest, openDatabase } from '../db/connect.js';
import { DatasetsRepository } from '../db/datasets.repository.js';
import { MediaRepository } from '../db/media.repository.js';
import type { Database } from '../db/schema.js';
import { TasksRepository } from '../db/tasks.repository.js';
import { UsersRepository } from '../db/users.repository.js';
import { createJobHandlers } from '../jobs/handlers/index.js';
import type { JobQueue } from '../jobs/job-queue.js';
import { SqlJobQueue } from '../jobs/sql-job-queue.js';
import { BullmqJobQueue } from '../jobs/bullmq-job-queue.js';
import { IndexRepository } from '../db/index.repository.js';
import { ExploreRepository } from '../db/explore.repository.js';
import { datasetSearcherSource } from '../pipeline/index/dataset-searcher.js';
import { ExploreService } from '../services/explore.service.js';
import { MediaService } from '../services/media.service.js';
import { MediaDetailsRepository } from '../db/media-details.repository.js';
import { MediaDetailsService } from '../services/media-details.service.js';
import { ExportRepository } from '../db/export.repository.js';
import { createEmbeddingModel } from '../models/create-model.js';
import type { EmbeddingModel } from '../models/embedding-model.js';
import { createSharpImageDecoder } from '../pipeline/image-decoder.js';
import { KnnDatasetIndexer } from '../pipeline/index/dataset-indexer.js';
import { KnnShardStore } from '../pipeline/index/knn-shards.js';
import { MediaProcessor } from '../pipeline/media-processor.js';
import { createFfmpegVideoTool } from '../pipeline/video-tool.js';
import { Keyring } from '../security/keyring.js';
import { AccessService } from '../services/access.service.js';
import { AuthService } from '../services/auth.service.js';
import { systemClock, type Clock } from '../services/clock.js';
import { DatasetsService } from '../services/datasets.service.js';
import { ExportService } from '../services/export.service.js';
import { IngestionService } from '../services/ingestion.service.js';
import { ProcessingService } from '../services/processing.service.js';
import { SharingService } from '../services/sharing.service.js';
import { TasksService } from '../services/tasks.service.js';
import { TagsRepository } from '../db/tags.repository.js';
import { TagsService } from '../services/tags.service.js';
import { parseAnnotationFile } from '../annotations/detect-format.js';
import { AnnotationsRepository } from '../db/annotations.repository.js';
import { SearchTextRepository } from '../db/search-text.repository.js';
import { AnnotationsService } from '../services/annotations.service.js';
import type { BlobStore } from '../storage/blob-store.js';
import { LocalBlobStore } from '../storage/local-blob-store.js';
import { S3BlobStore } from '../storage/s3-blob-store.js';
import { removeFilesOlderThan, UploadStaging } from '../storage/upload-staging.js';
import { MediaImportsRepository } from '../db/media-imports.repository.js';
import { AddMediaService } from '../services/add-media.service.js';
import { OperatorService } from '../services/operator.service.js';
import { MediaImportService } from '../services/media-import.service.js';
import { HttpSourceAdapter } from '../sources/http-source.js';
import { LocalFolderSourceAdapter } from '../sources/local-folder-source.js';
import { MediaSources } from '../sources/media-sources.js';
import { assumeRole, S3SourceAdapter } from '../sources/s3-source.js';

export interface Services {
  access: AccessService;
  auth: AuthService;
  datasets: DatasetsService;
  ingestion: IngestionService;
  addMedia: AddMediaService;
  operator: OperatorService;
  sharing: SharingService;
  tasks: TasksService;
  processing: ProcessingService;
  explore: ExploreService;
  media: MediaService;
  mediaDetails: MediaDetailsService;
  exports: ExportService;
  tags: TagsService;
  annotations: AnnotationsService;
}

export interface Container {
  config: Config;
  db: Kysely<Database>;
  blobs: BlobStore;
  queue: JobQueue;
  services: Services;
  /** Starts running jobs in this process (serve and worker do; one-shot CLI commands need not). */
  startJobs(): void;
  close(): Promise<void>;
}

export interface ContainerOptions {
  clock?: Clock;
  log?: (message: string, error?: unknown) => void;
}

/** The composition root: config → adapters → services, the same for serve, worker and CLI. */
export async function createContainer(config: Config, options: ContainerOptions = {}): Promise<Container> {
  const clock = options.clock ?? systemClock;
  fs.mkdirSync(config.dataDir, { recursive: true });

  const db = openDatabase(config);
  await migrateToLatest(db);
  const s3Scratch = path.join(config.dataDir, 'tmp', 's3-blobs');
  await removeFilesOlderThan(s3Scratch, 60 * 60 * 1000);
  const blobs: BlobStore = config.storage
    ? new S3BlobStore(config.storage.s3, config.storage, { scratchDir: s3Scratch, credentials: config.storage.credentials ?? undefined })
    : new LocalBlobStore(path.join(config.dataDir, 'blobs'));
  const staging = new UploadStaging(path.join(config.dataDir, 'tmp', 'uploads'));
  await staging.sweep(60 * 60 * 1000);
  const queue = createJobQueue(config, db, options.log);
  const keyring = new Keyring(config.secretKey ?? loadOrCreateSecretKey(config.dataDir));

  const users = new UsersRepository(db);
  const datasetsRepo = new DatasetsRepository(db);
  const mediaRepo = new MediaRepository(db);
  const tasksRepo = new TasksRepository(db);

  const access = new AccessService(datasetsRepo);
  const sources = new MediaSources(
    [new S3SourceAdapter(config.s3), new LocalFolderSourceAdapter(), new HttpSourceAdapter()],
    path.join(config.dataDir, 'tmp', 'manifests'),
  );
  const imports = new MediaImportService(new MediaImportsRepository(db), mediaRepo, sources, blobs, staging, keyring, clock, {
    maxFileBytes: config.maxFileBytes,
    archive: config.archives,
    roots: config.pipelineService.roots,
    fetchConcurrency: 8,
  });
  const auth = new AuthService(users, keyring, clock, { openSignup: config.openSignup });
  const datasets = new DatasetsService(datasetsRepo, mediaRepo, tasksRepo, users, blobs, access, clock);
  const ingestion = new IngestionService(
    datasets,
    datasetsRepo,
    mediaRepo,
    tasksRepo,
    blobs,
    staging,
    queue,
    access,
    clock,
    { maxFileBytes: config.maxFileBytes, maxRequestFiles: config.maxRequestFiles },
    imports,
  );
  const annotations = new AnnotationsService(
    new AnnotationsRepository(db),
    datasetsRepo,
    tasksRepo,
    blobs,
    staging,
    parseAnnotationFile,
    access,
    clock,
    { maxFileBytes: config.archives.maxTotalBytes },
  );
  const addMedia = new AddMediaService(
    datasetsRepo,
    mediaRepo,
    tasksRepo,
    imports,
    (roleArn) => assumeRole(config.s3, roleArn),
    blobs,
    staging,
    queue,
    access,
    clock,
    { enabled: config.addMediaEnabled, maxFileBytes: config.maxFileBytes, maxRequestFiles: config.maxRequestFiles, archive: config.archives },
    annotations,
  );
  const operator = new OperatorService(users, datasetsRepo, ingestion, addMedia, annotations, { owner: config.pipelineService.owner });
  const sharing = new SharingService(datasetsRepo, users, access, clock);
  const tasks = new TasksService(tasksRepo);
  const processor = new MediaProcessor(
    blobs,
    createSharpImageDecoder({ thumbnailSize: config.thumbnailSize, maxPixels: config.maxImagePixels }),
    // Frame extraction reads the whole video: an hour of 1080p takes minutes, not seconds.
    createFfmpegVideoTool(undefined, { timeoutMs: 20 * 60 * 1000 }),
    {
      everySeconds: config.video.frameIntervalSeconds,
      sceneThreshold: config.video.sceneThreshold,
      maxFramesPerVideo: config.video.maxFramesPerVideo,
    },
  );
  // Loaded on first use: commands that never embed (user create, serve --no-worker) never pay for it.
  let model: Promise<EmbeddingModel> | null = null;
  const loadModel = () => (model ??= createEmbeddingModel(config.model, config.jobConcurrency));
  const indexer = new KnnDatasetIndexer(blobs, { k: 16, threads: config.jobConcurrency });
  const processing = new ProcessingService(
    datasetsRepo,
    mediaRepo,
    tasksRepo,
    queue,
    processor,
    loadModel,
    new IndexRepository(db),
    indexer,
    blobs,
    imports,
    new KnnShardStore(blobs),
    clock,
    { decodeConcurrency: config.jobConcurrency, knnShardSize: config.knnShardSize },
    annotations,
    new SearchTextRepository(db),
  );

  const exports = new ExportService(datasetsRepo, new ExportRepository(db), tasksRepo, users, blobs, queue, access, keyring, clock, {
    workRoot: path.join(config.dataDir, 'tmp', 'exports'),
  });

  const exploreRepo = new ExploreRepository(db);
  const explore = new ExploreService(
    exploreRepo,
    access,
    datasetSearcherSource(indexer, new IndexRepository(db)),
    loadModel,
    // Query images are decoded exactly as indexed media are, so their vectors compare.
    createSharpImageDecoder({ thumbnailSize: config.thumbnailSize, maxPixels: config.maxImagePixels }),
    clock,
    { previewsPerCluster: 10, uploadAnchorTtlMs: 24 * 60 * 60 * 1000, anchorCandidates: 1000 },
  );
  const media = new MediaService(exploreRepo, blobs, access);
  const mediaDetails = new MediaDetailsService(new MediaDetailsRepository(db), access);
  const tags = new TagsService(new TagsRepository(db), access, clock);

  let jobsStarted = false;
  return {
    config,
    db,
    blobs,
    queue,
    services: { access, auth, datasets, ingestion, addMedia, operator, sharing, tasks, processing, explore, media, mediaDetails, exports, tags, annotations },
    startJobs() {
      if (jobsStarted) return;
      jobsStarted = true;
      queue.start(createJobHandlers(processing, exports));
    },
    async close() {
      // Also when jobs never started: a queue that only enqueued may hold connections (Redis).
      await queue.stop();
      if (model) await (await model.catch(() => null))?.close();
      await db.destroy();
    },
  };
}

/** BullMQ on Redis when `VIZDEX_REDIS_URL` is set (any number of workers), else the persisted in-process queue. */
function createJobQueue(config: Config, db: Kysely<Database>, log: ContainerOptions['log']): JobQueue {
  if (!config.redisUrl) {
    return new SqlJobQueue(db, { concurrency: config.jobConcurrency, leaseMs: config.jobLeaseMs, maxAttempts: config.jobMaxAttempts, log });
  }
  return new BullmqJobQueue({
    redisUrl: config.redisUrl,
    prefix: config.redisPrefix,
    // Ingest batches overlap fetching and decoding; the index and export steps use every core themselves.
    concurrency: { default: 1, ingest: config.jobConcurrency },
    maxAttempts: config.jobMaxAttempts,
    lockMs: config.jobLeaseMs,
    log,
  });
}

/** The embedded default's server key: generated once, readable only by its owner. */
function loadOrCreateSecretKey(dataDir: string): string {
  const file = path.join(dataDir, 'secret.key');
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const key = crypto.randomBytes(32).toString('base64url');
  try {
    // 'wx': if another process (CLI and server starting together) won the race, use its key.
    fs.writeFileSync(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
    return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return fs.readFileSync(file, 'utf8').trim();
    throw error;
  }
}
