import type { ExportService } from '../../services/export.service.js';
import type { JobHandler } from '../job-queue.js';

export function datasetExportHandler(exports: ExportService): JobHandler<'dataset.export'> {
  return {
    run: ({ datasetId, exportId }) => exports.run(datasetId, exportId),
    onFailed: ({ datasetId, exportId }, error) => exports.fail(datasetId, exportId, error),
  };
}
