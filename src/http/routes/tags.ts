import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { TagsService } from '../../services/tags.service.js';
import { currentUser } from '../plugins/auth.js';
import { DatasetIdParams } from './schemas.js';

const tags = ['tags'];
const TagParams = Type.Object({ datasetId: Type.String(), tagId: Type.String() });
const MediaParams = Type.Object({ datasetId: Type.String(), mediaId: Type.String() });

const Tag = Type.Object({
  id: Type.String(),
  name: Type.String(),
  media_count: Type.Integer({ description: 'How many media carry the tag' }),
  created_at: Type.String(),
});

const MediaIds = Type.Object({
  media_ids: Type.Array(Type.String(), { description: 'Media of this dataset, at most 10,000 a request (413 above)' }),
});

/** User tags: a dataset's tags (`/dataset/{id}/tags`) and the media they are on. */
export const tagRoutes: FastifyPluginAsyncTypebox<{ tags: TagsService }> = async (app, { tags: service }) => {
  app.get(
    '/dataset/:datasetId/tags',
    {
      config: { datasetRole: 'viewer' },
      schema: { tags, summary: "The dataset's user tags by name, each with how many media carry it", params: DatasetIdParams, response: { 200: Type.Array(Tag) } },
    },
    async (request) => service.list(currentUser(request).id, request.params.datasetId),
  );

  app.post(
    '/dataset/:datasetId/tags',
    {
      config: { datasetRole: 'editor' },
      schema: {
        tags,
        summary: 'Creates a tag (editors); 409 when the dataset has one of that name',
        description: 'A name is 1-100 characters (trimmed), without control characters or commas.',
        params: DatasetIdParams,
        body: Type.Object({ name: Type.String() }),
        response: { 201: Tag },
      },
    },
    async (request, reply) => reply.code(201).send(await service.create(currentUser(request).id, request.params.datasetId, request.body.name)),
  );

  app.delete(
    '/dataset/:datasetId/tags/:tagId',
    {
      config: { datasetRole: 'editor' },
      schema: { tags, summary: 'Deletes a tag and takes it off every media (editors)', params: TagParams, response: { 200: Tag } },
    },
    async (request) => service.delete(currentUser(request).id, request.params.datasetId, request.params.tagId),
  );

  app.post(
    '/dataset/:datasetId/tags/:tagId/media',
    {
      config: { datasetRole: 'editor' },
      schema: {
        tags,
        summary: 'Puts the tag on media (editors); `tagged` counts those that did not carry it yet',
        description: 'Every id must be a media of this dataset, or the request changes nothing and answers 400 naming the others.',
        params: TagParams,
        body: MediaIds,
        response: { 200: Type.Object({ tagged: Type.Integer() }) },
      },
    },
    async (request) => service.tagMedia(currentUser(request).id, request.params.datasetId, request.params.tagId, request.body.media_ids),
  );

  app.delete(
    '/dataset/:datasetId/tags/:tagId/media',
    {
      config: { datasetRole: 'editor' },
      schema: {
        tags,
        summary: 'Takes the tag off media (editors); `untagged` counts those that carried it',
        description: 'Every id must be a media of this dataset, or the request changes nothing and answers 400 naming the others.',
        params: TagParams,
        body: MediaIds,
        response: { 200: Type.Object({ untagged: Type.Integer() }) },
      },
    },
    async (request) => service.untagMedia(currentUser(request).id, request.params.datasetId, request.params.tagId, request.body.media_ids),
  );

  app.get(
    '/dataset/:datasetId/media/:mediaId/tags',
    {
      config: { datasetRole: 'viewer' },
      schema: { tags, summary: 'The names of the tags on one media, sorted', params: MediaParams, response: { 200: Type.Array(Type.String()) } },
    },
    async (request) => service.tagsOfMedia(currentUser(request).id, request.params.datasetId, request.params.mediaId),
  );
};
