import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../../config.js';
import type { ExploreService } from '../../services/explore.service.js';
import { currentUser } from '../plugins/auth.js';
import { mediaUris, requestBaseUrl } from '../request-base-url.js';
import { DatasetIdParams, Nullable } from './schemas.js';

const EntityType = Type.Union([Type.Literal('IMAGES'), Type.Literal('OBJECTS'), Type.Literal('VIDEOS')]);

const Preview = Type.Object({
  type: Type.String({ description: 'IMAGE, VIDEO_FRAME or VIDEO' }),
  media_id: Type.String(),
  media_uri: Type.String(),
  media_thumb_uri: Type.String(),
  caption: Nullable(Type.String()),
  file_name: Type.String(),
  bounding_box: Type.Union([Type.Array(Type.Number()), Type.Null()]),
  relevance_score: Nullable(Type.Number()),
  relevance_score_type: Type.Literal('cosine_distance'),
  width: Nullable(Type.Number()),
  height: Nullable(Type.Number()),
});

const Cluster = Type.Object({
  cluster_id: Type.String(),
  type: EntityType,
  n_images: Type.Integer(),
  n_objects: Type.Integer(),
  n_videos: Type.Integer(),
  similarity_threshold: Type.Number(),
  relevance_score: Nullable(Type.Number()),
  relevance_score_type: Type.Literal('cosine_distance'),
  previews: Type.Array(Preview),
  labels: Type.Array(Type.String()),
  user_tags: Type.Array(Type.String()),
  captions: Type.Array(Type.String()),
});

const tags = ['explore'];

export const exploreRoutes: FastifyPluginAsyncTypebox<{ explore: ExploreService; config: Config }> = async (app, { explore, config }) => {
  app.get(
    '/explore/:datasetId',
    {
      config: { datasetRole: 'viewer' },
      schema: {
        tags,
        summary: 'Clusters of a dataset (100 a page, largest first), filtered by VQL, or media nearest an anchor',
        description:
          'Without an anchor: the clusters at granularity `threshold` (0 finest … 4 coarsest), largest first, each with up to 10 previews (representative first). ' +
          'With `anchor_media_id` (+ `anchor_type` MEDIA or UPLOAD): the 1000 media nearest the anchor, grouped by cluster, ordered by cosine distance (`relevance_score`, 0 = identical). ' +
          '`vql`: a JSON array of filters (text fts/semantic, labels, tags, issues, duplicates, uniqueness), ANDed.',
        params: DatasetIdParams,
        querystring: Type.Object({
          entity_type: Type.Optional(EntityType),
          threshold: Type.Integer({ minimum: 0, maximum: 4, default: 0 }),
          page_number: Type.Integer({ minimum: 0, default: 0 }),
          sort_by: Type.Optional(Type.Union([Type.Literal('size'), Type.Literal('uniqueness')], { description: 'size (default): largest cluster first; uniqueness: the cluster with the most unique member first (vizdex extension)' })),
          anchor_media_id: Type.Optional(Type.String()),
          anchor_type: Type.Optional(Type.Union([Type.Literal('MEDIA'), Type.Literal('UPLOAD')])),
          vql: Type.Optional(Type.String()),
          labels: Type.Optional(Type.String()),
          tags: Type.Optional(
            Type.Array(Type.String(), {
              description: 'User tag names (comma-separated or repeated): media carrying ANY of them; ANDed with `vql`, whose `{"tags":{"op":"is","value":[...]}}` selects the same way',
            }),
          ),
          caption: Type.Optional(Type.String()),
        }),
        response: { 200: Type.Object({ clusters: Type.Array(Cluster), metadata: Type.Object({}, { additionalProperties: true }) }) },
      },
    },
    async (request) => {
      const q = request.query;
      return explore.explore(
        currentUser(request).id,
        request.params.datasetId,
        {
          entityType: q.entity_type ?? 'IMAGES',
          threshold: q.threshold,
          pageNumber: q.page_number,
          sortBy: q.sort_by,
          anchorMediaId: q.anchor_media_id || undefined,
          anchorType: q.anchor_type,
          vql: q.vql,
          labels: q.labels,
          tags: q.tags,
          caption: q.caption,
        },
        mediaUris(requestBaseUrl(request, config)),
      );
    },
  );

  app.get(
    '/explore/:datasetId/exploration_metadata',
    {
      config: { datasetRole: 'viewer' },
      schema: {
        tags,
        summary: 'Dataset name, cluster count (finest level), media count and labels',
        params: DatasetIdParams,
        response: {
          200: Type.Object({
            dataset_name: Type.String(),
            clusters_count: Type.Integer(),
            media_count: Type.Integer(),
            labels: Type.Array(Type.Object({ name: Type.String(), count: Type.Integer() })),
          }),
        },
      },
    },
    async (request) => explore.explorationMetadata(currentUser(request).id, request.params.datasetId),
  );
};
