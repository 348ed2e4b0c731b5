import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RequestValidationError } from '../../domain/errors.js';
import type { ExploreService } from '../../services/explore.service.js';
import type { MediaService, MediaVariant } from '../../services/media.service.js';
import { currentUser } from '../plugins/auth.js';
import { asClientError } from '../plugins/upload-parts.js';
import { DatasetIdParams } from './schemas.js';

const MediaParams = Type.Object({ datasetId: Type.String(), mediaId: Type.String() });
const tags = ['media'];

export const mediaRoutes: FastifyPluginAsyncTypebox<{ media: MediaService; explore: ExploreService }> = async (app, { media, explore }) => {
  const serve = (variant: MediaVariant) => async (request: FastifyRequest<{ Params: { datasetId: string; mediaId: string } }>, reply: FastifyReply) => {
    const result = await media.open(currentUser(request).id, request.params.datasetId, request.params.mediaId, variant, {
      range: request.headers.range,
      ifNoneMatch: request.headers['if-none-match'],
    });
    void reply.code(result.status).headers(result.headers);
    return result.body ? reply.send(result.body) : reply.send();
  };

  app.get(
    '/dataset/:datasetId/media/:mediaId/file',
    {
      config: { datasetRole: 'viewer' },
      schema: { tags, summary: "The media's original bytes (ETag, Cache-Control; `Range` requests answer 206)", params: MediaParams },
    },
    serve('file'),
  );

  app.get(
    '/dataset/:datasetId/media/:mediaId/thumbnail',
    { config: { datasetRole: 'viewer' }, schema: { tags, summary: "The media's JPEG thumbnail", params: MediaParams } },
    serve('thumbnail'),
  );

  app.get(
    '/dataset/:datasetId/media/id',
    {
      config: { datasetRole: 'viewer' },
      schema: {
        tags,
        summary: 'The id of the media with this original_media_uri, as plain text',
        params: DatasetIdParams,
        querystring: Type.Object({ original_media_uri: Type.String() }),
        response: { 200: Type.String() },
      },
    },
    async (request, reply) => {
      const id = await media.idByOriginalUri(currentUser(request).id, request.params.datasetId, request.query.original_media_uri);
      return reply.type('text/plain; charset=utf-8').send(id);
    },
  );

  app.get(
    '/dataset/:datasetId/media/:mediaId/duplicates',
    {
      config: { datasetRole: 'viewer' },
      schema: {
        tags,
        summary: "Ids of the other media in this media's near-duplicate group (default threshold 0.96)",
        params: MediaParams,
        querystring: Type.Object({ threshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })) }),
        response: { 200: Type.Array(Type.String()) },
      },
    },
    async (request) => media.duplicates(currentUser(request).id, request.params.datasetId, request.params.mediaId, request.query.threshold),
  );

  app.post(
    '/dataset/:datasetId/search-image-similarity',
    {
      config: { datasetRole: 'viewer' },
      schema: {
        tags,
        summary: 'Embed an image (multipart `file`, optional `bounding_box`) as an anchor for explore (anchor_type=UPLOAD)',
        consumes: ['multipart/form-data'],
        params: DatasetIdParams,
        querystring: Type.Object({ threshold: Type.Optional(Type.Number()), entity_type: Type.Optional(Type.String()) }),
        response: { 200: Type.Object({ anchor_media_id: Type.String(), anchor_type: Type.Literal('UPLOAD') }) },
      },
    },
    async (request) => {
      const upload = await readSearchUpload(request);
      return explore.searchByImage(currentUser(request).id, request.params.datasetId, upload.file, upload.boundingBox);
    },
  );
};

/** The `file` part (required) and `bounding_box` field of a search upload. */
async function readSearchUpload(request: FastifyRequest): Promise<{ file: Buffer; boundingBox?: string }> {
  let file: Buffer | undefined;
  let boundingBox: string | undefined;
  if (!request.isMultipart()) throw new RequestValidationError([{ loc: ['body', 'file'], msg: 'Field required (expected a multipart/form-data body)', type: 'missing' }]);
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        const data = await part.toBuffer();
        if (part.fieldname === 'file' && !file) file = data;
      } else if (part.fieldname === 'bounding_box') {
        boundingBox = String(part.value);
      }
    }
  } catch (error) {
    // A malformed body (no boundary, cut short) is the client's: 400, not 500.
    throw asClientError(error);
  }
  if (!file || file.length === 0) throw new RequestValidationError([{ loc: ['body', 'file'], msg: 'Field required', type: 'missing' }]);
  return { file, boundingBox };
}
