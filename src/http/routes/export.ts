import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ExportSelection } from '../../export/export-writer.js';
import type { ExportService } from '../../services/export.service.js';
import { currentUser } from '../plugins/auth.js';
import { requestBaseUrl } from '../request-base-url.js';
import { DatasetIdParams, Nullable } from './schemas.js';

const tags = ['export'];

const ExportFormat = Type.Union([Type.Literal('json'), Type.Literal('parquet'), Type.Literal('coco')], {
  description:
    'json (metadata.json) or parquet (metadata.parquet), every media item with its issues, labels, objects, tags and caption; ' +
    'coco: annotations.json in COCO instances layout, of the media that carry an image label or an object',
});
const ExportIdResponse = Type.Object({ id: Type.String({ description: 'The export task id; poll export_status with it' }) });

const MediaSelectionItem = Type.Object({
  type: Type.Literal('media'),
  payload: Type.Object({ media_ids: Type.Array(Type.String(), { minItems: 1 }) }),
});
const ClusterSelectionItem = Type.Object({
  type: Type.Literal('cluster'),
  payload: Type.Object({
    cluster_id: Type.String(),
    cluster_filters: Type.Optional(
      Type.Object({ entity_type: Type.Optional(Type.Union([Type.Literal('IMAGES'), Type.Literal('VIDEOS'), Type.Literal('OBJECTS')])) }),
    ),
    exclude_media_ids: Type.Optional(Type.Array(Type.String())),
  }),
});


const ExportStatusResponse = Type.Object({
  id: Type.String(),
  dataset_id: Type.String(),
  status: Type.String({ description: 'INITIALIZING, RUNNING, COMPLETED, FAILED (or ABORTED when the dataset was deleted)' }),
  progress: Type.Integer(),
  status_message: Nullable(Type.String()),
  error_message: Nullable(Type.String()),
  file_name: Nullable(Type.String()),
  export_format: Nullable(Type.String()),
  include_images: Nullable(Type.Boolean()),
  created_at: Type.String(),
  end_time: Nullable(Type.String()),
  download_uri: Nullable(Type.String({ description: 'Signed link, no credentials needed, valid 24 h; null until COMPLETED' })),
});

/** `attachment` with an ASCII fallback name and the exact name in RFC 5987 form. */
function contentDisposition(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() || 'export.zip';
  const ascii = base.replace(/[^\x20-\x7e]|["\\%;]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(base)}`;
}

export const exportRoutes: FastifyPluginAsyncTypebox<{ exports: ExportService; publicUrl: string | null }> = async (app, { exports, publicUrl }) => {
  app.get(
    '/dataset/:datasetId/export_context_async',
    {
      config: { datasetRole: 'viewer' },
      schema: {
        tags,
        summary: 'Start exporting the whole dataset (asynchronous; poll export_status)',
        params: DatasetIdParams,
        querystring: Type.Object({
          file_name: Type.String({ description: 'Name for the output ZIP file' }),
          export_format: ExportFormat,
          include_images: Type.Boolean({ default: false }),
        }),
        response: { 200: ExportIdResponse },
      },
    },
    async (request) =>
      exports.start(currentUser(request).id, request.params.datasetId, {
        fileName: request.query.file_name,
        format: request.query.export_format,
        includeImages: request.query.include_images,
        selection: null,
        baseUrl: requestBaseUrl(request, { publicUrl }),
      }),
  );

  app.post(
    '/dataset/:datasetId/export_entities_async',
    {
      config: { datasetRole: 'viewer' },
      schema: {
        tags,
        summary: 'Start exporting selected media and clusters (asynchronous; poll export_status)',
        params: DatasetIdParams,
        querystring: Type.Object({
          export_format: Type.Optional(ExportFormat),
          include_images: Type.Boolean({ default: false }),
          file_name: Type.Optional(Type.String()),
        }),
        body: Type.Object({ media_selection: Type.Array(Type.Union([MediaSelectionItem, ClusterSelectionItem]), { minItems: 1 }) }),
        response: { 200: ExportIdResponse },
      },
    },
    async (request) => {
      const selection: ExportSelection = { mediaIds: [], clusters: [] };
      for (const item of request.body.media_selection) {
        if (item.type === 'media') selection.mediaIds.push(...item.payload.media_ids);
        else {
          selection.clusters.push({
            clusterId: item.payload.cluster_id,
            entityType: item.payload.cluster_filters?.entity_type ?? 'IMAGES',
            excludeMediaIds: item.payload.exclude_media_ids ?? [],
          });
        }
      }
      return exports.start(currentUser(request).id, request.params.datasetId, {
        fileName: request.query.file_name,
        format: request.query.export_format ?? 'json',
        includeImages: request.query.include_images,
        selection,
        baseUrl: requestBaseUrl(request, { publicUrl }),
      });
    },
  );

  app.get(
    '/dataset/:datasetId/export_status',
    {
      config: { datasetRole: 'viewer' },
      schema: {
        tags,
        summary: 'Status of an export; download_uri is set once it is COMPLETED',
        params: DatasetIdParams,
        querystring: Type.Object({ export_task_id: Type.String() }),
        response: { 200: ExportStatusResponse },
      },
    },
    async (request) => exports.status(currentUser(request).id, request.params.datasetId, request.query.export_task_id, requestBaseUrl(request, { publicUrl })),
  );

  app.get(
    '/dataset/:datasetId/export_download/:exportId',
    {
      // The one URL that needs no credentials: the signature (HMAC, server key) is the credential.
      config: { public: true },
      schema: {
        tags,
        summary: 'Download an export zip with a signed link from export_status (no credentials needed)',
        security: [],
        params: Type.Object({ datasetId: Type.String(), exportId: Type.String() }),
        querystring: Type.Object({ expires: Type.Optional(Type.String()), signature: Type.Optional(Type.String()) }),
      },
    },
    async (request, reply) => {
      const { stream, fileName } = await exports.download(
        request.params.datasetId,
        request.params.exportId,
        request.query.expires ?? '',
        request.query.signature ?? '',
      );
      return reply.type('application/zip').header('content-disposition', contentDisposition(fileName)).header('cache-control', 'private, no-store').send(stream);
    },
  );
};
