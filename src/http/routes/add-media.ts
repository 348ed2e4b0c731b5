import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AddMediaService } from '../../services/add-media.service.js';
import type { IngestionService } from '../../services/ingestion.service.js';
import { RequestValidationError } from '../../domain/errors.js';
import { currentUser } from '../plugins/auth.js';
import { formParts } from '../plugins/upload-parts.js';
import { DatasetIdParams, EmptyResponse } from './schemas.js';

const tags = ['add media'];

const ADD_MEDIA_DESCRIPTION = [
  'Multipart (or urlencoded) form with exactly one media source:',
  '`files[]` (repeatable), `archive` (one .zip, .tar or .tar.gz), or `s3_uri` (an S3 folder, or a .csv/.parquet/.txt manifest listing media by s3:// URI or key).',
  'Options: `auto_reindex` (reindex after the new media are processed), `assume_role` (IAM role ARN assumed through STS for this request only),',
  '`batch_n_videos`, `batch_n_images`, `batch_n_objects`, `use_spot` (resource hints: accepted and recorded; vizdex sizes its batches itself).',
  'Optionally `annotations`: a label/box file (as for POST /dataset/{id}/annotations, with `annotations_format` and `annotations_source`), checked now (422 if unreadable) and applied once the new media are listed; its report is under /dataset/{id}/annotations/imports.',
  'Only the new media are decoded and embedded: READY → READ ONLY → PARTIAL INDEX (→ INDEXING → READY with auto_reindex).',
].join(' ');

export const addMediaRoutes: FastifyPluginAsyncTypebox<{ addMedia: AddMediaService; ingestion: IngestionService; uploadLimit: number }> = async (
  app,
  { addMedia, ingestion, uploadLimit },
) => {
  app.post(
    '/dataset',
    {
      schema: {
        tags: ['datasets'],
        summary: 'Create a dataset from an S3 folder or manifest (form fields `dataset_name`, `bucket_path`)',
        consumes: ['multipart/form-data', 'application/x-www-form-urlencoded'],
        response: { 200: Type.Object({ dataset_id: Type.String() }) },
      },
    },
    async (request) => {
      const fields = new Map<string, string>();
      for await (const part of formParts(request)) {
        if (part.kind === 'field') fields.set(part.name, part.value);
        else part.stream.resume();
      }
      const missing = ['dataset_name', 'bucket_path'].filter((name) => !fields.has(name));
      if (missing.length > 0) throw new RequestValidationError(missing.map((name) => ({ loc: ['body', name], msg: 'Field required', type: 'missing' })));
      const { dataset_id } = await ingestion.createFromLocation(currentUser(request).id, {
        name: fields.get('dataset_name')!,
        location: fields.get('bucket_path')!,
        origin: 'api',
      });
      return { dataset_id };
    },
  );

  app.post(
    '/dataset/:datasetId/add_media',
    {
      config: { datasetRole: 'editor' },
      schema: {
        tags,
        summary: 'Add media to an indexed dataset (asynchronous; poll the dataset)',
        description: ADD_MEDIA_DESCRIPTION,
        consumes: ['multipart/form-data', 'application/x-www-form-urlencoded'],
        params: DatasetIdParams,
        response: { 202: EmptyResponse },
      },
    },
    async (request, reply) => {
      await addMedia.addMedia(currentUser(request).id, request.params.datasetId, formParts(request, { fileSize: uploadLimit + 1 }));
      return reply.code(202).send();
    },
  );

  app.post(
    '/dataset/:datasetId/reindex',
    {
      config: { datasetRole: 'editor' },
      schema: {
        tags,
        summary: 'Re-cluster the whole dataset after add_media (only from PARTIAL INDEX)',
        params: DatasetIdParams,
        response: { 202: EmptyResponse },
      },
    },
    async (request, reply) => {
      await addMedia.reindex(currentUser(request).id, request.params.datasetId);
      return reply.code(202).send();
    },
  );
};
