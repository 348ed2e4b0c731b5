import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { DatasetsService } from '../../services/datasets.service.js';
import { currentUser } from '../plugins/auth.js';
import { DatasetIdParams, Nullable } from './schemas.js';


const FailedFile = Type.Object({
  media_id: Type.String(),
  file_name: Type.String(),
  original_media_uri: Type.String(),
  reason: Type.String(),
});

export const DatasetResponse = Type.Object({
  id: Type.String(),
  display_name: Type.String(),
  description: Type.String(),
  source_type: Type.String(),
  owned_by: Type.String(),
  owner_email: Nullable(Type.String()),
  created_at: Type.String(),
  updated_at: Type.String(),
  status: Type.String({ description: 'Legacy status: NEW, INDEXING, READY, UPDATING, PENDING_INDEX, FATAL_ERROR' }),
  status_new: Type.String({ description: "DRAFT, INDEXING, READY, 'READ ONLY', 'PARTIAL INDEX', ERROR" }),
  progress: Type.Integer(),
  n_images: Type.Integer(),
  n_videos: Type.Integer(),
  n_video_frames: Type.Integer(),
  n_objects: Type.Integer(),
  n_failed_files: Type.Integer(),
  fatal_error_msg: Nullable(Type.String()),
  source_dataset_id: Nullable(Type.String()),
  role: Type.String({ description: "The caller's role: owner, editor or viewer" }),
  failed_files: Type.Optional(Type.Array(FailedFile, { description: 'Up to 100 files that could not be processed, with reasons' })),
});

const tags = ['datasets'];

export const datasetRoutes: FastifyPluginAsyncTypebox<{ datasets: DatasetsService }> = async (app, { datasets }) => {
  app.get(
    '/datasets',
    {
      schema: {
        tags,
        summary: 'Datasets the caller can access',
        querystring: Type.Object({
          sort_by: Type.Optional(Type.Union([Type.Literal('created_at'), Type.Literal('updated_at'), Type.Literal('display_name')])),
          include_hidden: Type.Optional(Type.Boolean()),
        }),
        response: { 200: Type.Array(DatasetResponse) },
      },
    },
    async (request) =>
      datasets.list(currentUser(request).id, {
        sortBy: request.query.sort_by ?? 'created_at',
        includeHidden: request.query.include_hidden ?? false,
      }),
  );

  app.get(
    '/dataset/:datasetId',
    { config: { datasetRole: 'viewer' }, schema: { tags, summary: 'A dataset with its status and counts', params: DatasetIdParams, response: { 200: DatasetResponse } } },
    async (request) => datasets.get(currentUser(request).id, request.params.datasetId),
  );

  app.get(
    '/dataset/:datasetId/failed_files',
    {
      config: { datasetRole: 'viewer' },
      schema: {
        tags,
        summary: 'Files that could not be processed, with the reason for each (paged, 0-based)',
        params: DatasetIdParams,
        querystring: Type.Object({
          page_number: Type.Integer({ minimum: 0, default: 0 }),
          page_size: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
        }),
        response: { 200: Type.Object({ total: Type.Integer(), files: Type.Array(FailedFile) }) },
      },
    },
    async (request) => {
      const { page_number, page_size } = request.query;
      return datasets.listFailedFiles(currentUser(request).id, request.params.datasetId, { limit: page_size, offset: page_number * page_size });
    },
  );

  app.delete(
    '/dataset/:datasetId',
    {
      config: { datasetRole: 'owner' },
      schema: {
        tags,
        summary: 'Delete a dataset with its media (owner only)',
        params: DatasetIdParams,
        response: { 200: Type.Object({ id: Type.String(), deleted: Type.Boolean() }) },
      },
    },
    async (request) => {
      await datasets.delete(currentUser(request).id, request.params.datasetId);
      return { id: request.params.datasetId, deleted: true };
    },
  );
};
