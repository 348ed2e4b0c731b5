import type { ProcessingService } from '../../services/processing.service.js';
import type { JobHandler } from '../job-queue.js';

export function datasetIndexHandler(processing: ProcessingService): JobHandler<'dataset.index'> {
  return {
    run: ({ datasetId, taskId }) => processing.indexDataset(datasetId, taskId),
    onFailed: ({ datasetId, taskId }, error) => processing.fail(datasetId, taskId, error),
  };
}
