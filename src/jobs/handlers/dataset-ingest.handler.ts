import type { ProcessingService } from '../../services/processing.service.js';
import type { JobHandler } from '../job-queue.js';

export function datasetIngestHandler(processing: ProcessingService): JobHandler<'dataset.ingest'> {
  return {
    run: ({ datasetId, taskId }) => processing.startIngest(datasetId, taskId),
    onFailed: ({ datasetId, taskId }, error) => processing.fail(datasetId, taskId, error),
  };
}
