import type { ProcessingService } from '../../services/processing.service.js';
import type { JobHandler } from '../job-queue.js';

export function datasetKnnShardHandler(processing: ProcessingService): JobHandler<'dataset.knn-shard'> {
  return {
    run: ({ datasetId, taskId, shard, shards }) => processing.knnShard(datasetId, taskId, shard, shards),
    onFailed: ({ datasetId, taskId }, error) => processing.fail(datasetId, taskId, error),
  };
}

export function datasetKnnMergeHandler(processing: ProcessingService): JobHandler<'dataset.knn-merge'> {
  return {
    run: ({ datasetId, taskId, shards }) => processing.knnMerge(datasetId, taskId, shards),
    onFailed: ({ datasetId, taskId }, error) => processing.fail(datasetId, taskId, error),
  };
}
