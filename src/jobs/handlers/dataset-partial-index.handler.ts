import type { ProcessingService } from '../../services/processing.service.js';
import type { JobHandler } from '../job-queue.js';

export function datasetPartialIndexHandler(processing: ProcessingService): JobHandler<'dataset.partial-index'> {
  return {
    run: ({ datasetId, taskId }) => processing.partialIndex(datasetId, taskId),
    onFailed: ({ datasetId, taskId }, error) => processing.fail(datasetId, taskId, error),
  };
}
