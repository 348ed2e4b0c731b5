import type { ExportService } from '../../services/export.service.js';
import type { ProcessingService } from '../../services/processing.service.js';
import type { JobHandlers } from '../job-queue.js';
import { datasetExportHandler } from './dataset-export.handler.js';
import { datasetIndexHandler } from './dataset-index.handler.js';
import { datasetIngestHandler } from './dataset-ingest.handler.js';
import { datasetKnnMergeHandler, datasetKnnShardHandler } from './dataset-knn.handler.js';
import { datasetPartialIndexHandler } from './dataset-partial-index.handler.js';
import { mediaIngestHandler } from './media-ingest.handler.js';

/** The one registry of job handlers; `JobHandlers` makes a missing one a compile error. */
export function createJobHandlers(processing: ProcessingService, exports: ExportService): JobHandlers {
  return {
    'dataset.ingest': datasetIngestHandler(processing),
    'media.ingest': mediaIngestHandler(processing),
    'dataset.index': datasetIndexHandler(processing),
    'dataset.partial-index': datasetPartialIndexHandler(processing),
    'dataset.knn-shard': datasetKnnShardHandler(processing),
    'dataset.knn-merge': datasetKnnMergeHandler(processing),
    'dataset.export': datasetExportHandler(exports),
  };
}
