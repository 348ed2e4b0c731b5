/** The closed set of jobs and their payloads: `enqueue('media.ingest', …)` is type-checked. */
export interface JobPayloads {
  /** Queue-all: splits a dataset's pending media into `media.ingest` batches. */
  'dataset.ingest': { datasetId: string; taskId: string };
  /** Decodes one batch of media: dimensions, thumbnail, and later features and embeddings. */
  'media.ingest': { datasetId: string; taskId: string; mediaIds: string[] };
  /** Runs once no media is pending: dataset-level analysis, counts, and the end of the task. */
  'dataset.index': { datasetId: string; taskId: string };
  /** Ends an add_media: groups the new media among themselves; PARTIAL INDEX, or a REINDEX with auto_reindex. */
  'dataset.partial-index': { datasetId: string; taskId: string };
  /** Rows from..to of a big dataset's k-NN graph against its persisted index (any worker). */
  'dataset.knn-shard': { datasetId: string; taskId: string; shard: number; shards: number };
  /** Puts the shards together: groupings, counts, READY. */
  'dataset.knn-merge': { datasetId: string; taskId: string; shards: number };
  /** Writes an EXPORT task's zip (what was asked is stored beside it, re-read by id). */
  'dataset.export': { datasetId: string; exportId: string };
}

export type JobName = keyof JobPayloads;

export interface JobHandler<N extends JobName> {
  run(payload: JobPayloads[N]): Promise<void>;
  /** Called once, after the last attempt failed: record the failure where users can see it. */
  onFailed(payload: JobPayloads[N], error: Error): Promise<void>;
}

/** Exactly one handler per job; a missing one is a compile error. */
export type JobHandlers = { [N in JobName]: JobHandler<N> };

export interface EnqueueOptions {
  /** Deterministic id: enqueueing a job whose id is already queued or running does nothing. */
  jobId: string;
  maxAttempts?: number;
}

export interface JobQueue {
  enqueue<N extends JobName>(name: N, payload: JobPayloads[N], options: EnqueueOptions): Promise<void>;
  /** Starts running jobs with these handlers (a process that only enqueues never calls this). */
  start(handlers: JobHandlers): void;
  /** Stops claiming jobs and waits (bounded) for running ones; unfinished ones are resumed later. */
  stop(): Promise<void>;
  /** Resolves once nothing is queued or running. */
  drained(pollMs?: number): Promise<void>;
}
