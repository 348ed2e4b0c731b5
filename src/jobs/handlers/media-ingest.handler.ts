import type { ProcessingService } from '../../services/processing.service.js';
import type { JobHandler } from '../job-queue.js';

export function mediaIngestHandler(processing: ProcessingService): JobHandler<'media.ingest'> {
  return {
    run: ({ datasetId, taskId, mediaIds }) => processing.ingestBatch(datasetId, taskId, mediaIds),
    onFailed: ({ datasetId, taskId }, error) => processing.fail(datasetId, taskId, error),
  };
}
