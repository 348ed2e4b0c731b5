import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { IngestionService } from '../../services/ingestion.service.js';
import { currentUser } from '../plugins/auth.js';
import { fileParts } from '../plugins/upload-parts.js';
import { DatasetIdParams, EmptyResponse } from './schemas.js';

const TransactionParams = Type.Object({ datasetId: Type.String(), transId: Type.String() });
const tags = ['ingestion'];

export const ingestionRoutes: FastifyPluginAsyncTypebox<{ ingestion: IngestionService }> = async (app, { ingestion }) => {
  app.get(
    '/ingestion/new_dataset',
    {
      schema: {
        tags,
        summary: 'Step 1: create an empty dataset',
        querystring: Type.Object({ dataset_name: Type.String() }),
        response: { 200: Type.Object({ dataset_id: Type.String() }) },
      },
    },
    async (request) => ingestion.newDataset(currentUser(request).id, request.query.dataset_name),
  );

  app.get(
    '/ingestion/:datasetId/data_files',
    {
      config: { datasetRole: 'editor' },
      schema: { tags, summary: 'Step 2: open an upload transaction', params: DatasetIdParams, response: { 200: Type.Object({ trans_id: Type.String() }) } },
    },
    async (request) => ingestion.openTransaction(currentUser(request).id, request.params.datasetId),
  );

  app.post(
    '/ingestion/:datasetId/data_files/:transId',
    {
      config: { datasetRole: 'editor' },
      schema: {
        tags,
        summary: 'Step 3: upload files (multipart field `files`, repeatable; many requests per transaction)',
        description: 'All or nothing per request: an unsupported file or an archive rejects the request with 400 naming every bad file.',
        consumes: ['multipart/form-data'],
        params: TransactionParams,
        response: { 202: EmptyResponse },
      },
    },
    async (request, reply) => {
      await ingestion.upload(currentUser(request).id, request.params.datasetId, request.params.transId, fileParts(request));
      return reply.code(202).send();
    },
  );

  app.post(
    '/ingestion/:datasetId/process_files/:transId',
    {
      config: { datasetRole: 'editor' },
      schema: { tags, summary: 'Step 4: process the uploaded files (asynchronous; poll the dataset)', params: TransactionParams, response: { 202: EmptyResponse } },
    },
    async (request, reply) => {
      await ingestion.processFiles(currentUser(request).id, request.params.datasetId, request.params.transId);
      return reply.code(202).send();
    },
  );
};
