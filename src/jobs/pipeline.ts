// Which job follows which, in one place. ProcessingService enqueues the next step as drawn here:
//
//   dataset.ingest ──(lists the task's import, if any, applies its annotation files; then one per batch of pending media)──▶ media.ingest
//   media.ingest   ──(objects of the images it made READY)──▶ media.ingest
//   media.ingest   ──(once, when no media is pending)──▶ dataset.index          (DATASET_CREATION)
//                                                     ──▶ dataset.partial-index  (MEDIA_ADDITION)
//   dataset.partial-index ──▶ PARTIAL INDEX; with auto_reindex, a REINDEX task ──▶ dataset.index
//   dataset.index  ──▶ task complete, dataset READY (POST /reindex starts here too)
//                  ──(REINDEX with pending objects, annotated since)──▶ media.ingest ──▶ dataset.index (afterIngest id)
//                  ──(more vectors than VIZDEX_KNN_SHARD_SIZE: index built once)──▶ dataset.knn-shard × N
//   dataset.knn-shard ──(the last one done)──▶ dataset.knn-merge ──▶ task complete, dataset READY

/** Media per `media.ingest` job: big enough to batch DB writes, small enough to spread over workers. */
export const INGEST_BATCH_SIZE = 32;

export const jobIds = {
  datasetIngest: (taskId: string) => `${taskId}:dataset.ingest`,
  mediaIngest: (taskId: string, firstMediaId: string) => `${taskId}:media.ingest:${firstMediaId}`,
  datasetIndex: (taskId: string) => `${taskId}:dataset.index`,
  /** The second dataset.index of a reindex that first processed pending media (the first id is taken). */
  datasetIndexAfterIngest: (taskId: string) => `${taskId}:dataset.index:after-ingest`,
  datasetPartialIndex: (taskId: string) => `${taskId}:dataset.partial-index`,
  knnShard: (taskId: string, shard: number) => `${taskId}:dataset.knn-shard:${shard}`,
  knnMerge: (taskId: string) => `${taskId}:dataset.knn-merge`,
};
