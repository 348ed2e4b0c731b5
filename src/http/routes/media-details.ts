import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../../config.js';
import type { MediaDetailsService } from '../../services/media-details.service.js';
import { currentUser } from '../plugins/auth.js';
import { mediaUris, requestBaseUrl } from '../request-base-url.js';
import { DatasetIdParams, Nullable } from './schemas.js';

const tags = ['media'];
const MediaParams = Type.Object({ datasetId: Type.String(), mediaId: Type.String() });

const MediaDetails = Type.Object({
  media_id: Type.String(),
  dataset_id: Type.String(),
  media_type: Type.String({ description: 'image, video, video_frame or object' }),
  status: Type.String({ description: 'PENDING, READY or FAILED' }),
  file_name: Type.String(),
  original_media_uri: Type.String(),
  file_size: Type.Integer(),
  format: Nullable(Type.String()),
  sha256: Type.String(),
  width: Nullable(Type.Integer()),
  height: Nullable(Type.Integer()),
  media_uri: Type.String(),
  media_thumb_uri: Nullable(Type.String()),
  error: Nullable(Type.String()),
  created_at: Type.String(),
  processed_at: Nullable(Type.String()),
  video: Nullable(
    Type.Object({
      media_id: Type.String(),
      file_name: Type.String(),
      media_uri: Type.String(),
      frame_timestamp: Nullable(Type.Number()),
      duration_seconds: Nullable(Type.Number()),
    }),
  ),
  quality: Type.Object({
    blur: Nullable(Type.Number()),
    mean_intensity: Nullable(Type.Number()),
    min_intensity: Nullable(Type.Number()),
    max_intensity: Nullable(Type.Number()),
    std_intensity: Nullable(Type.Number()),
    contrast: Nullable(Type.Number()),
  }),
  uniqueness_score: Nullable(Type.Number()),
  nn_similarity: Nullable(Type.Number()),
  issues: Type.Array(
    Type.Object({
      issue_type: Type.String(),
      confidence: Type.Number(),
      duplicate_group_id: Nullable(Type.String()),
      duplicate_threshold: Nullable(Type.Number()),
    }),
  ),
  clusters: Type.Array(Type.Object({ level: Type.Integer(), cluster_id: Type.String() })),
  labels: Type.Array(Type.Object({ name: Type.String(), source: Type.String({ description: 'User, Model or Visual Layer' }), confidence: Nullable(Type.Number()) }), {
    description: "The media's own labels (an object's: its class)",
  }),
  caption: Nullable(Type.String()),
  objects: Type.Array(
    Type.Object({
      object_id: Type.String(),
      label: Nullable(Type.String({ description: "The object's class (the user's label when it has several)" })),
      bbox: Nullable(Type.Array(Type.Number(), { minItems: 4, maxItems: 4, description: '[x, y, width, height] in pixels of the image; null until known' })),
      status: Type.String({ description: 'PENDING (not cut out yet), READY or FAILED' }),
    }),
    { description: 'An image: the objects cut from it, top to bottom then left to right (FAILED ones included, with their status); empty for other media' },
  ),
  parent_media_id: Nullable(Type.String({ description: 'An object: the image it is cut from' })),
  bounding_box: Nullable(
    Type.Array(Type.Number(), { minItems: 4, maxItems: 4, description: 'An object: [x, y, width, height] in pixels of its image; null until known' }),
  ),
});

const GroupMember = Type.Object({
  media_id: Type.String(),
  media_type: Type.String(),
  file_name: Type.String(),
  original_media_uri: Type.String(),
  media_uri: Type.String(),
  media_thumb_uri: Type.String(),
  width: Nullable(Type.Integer()),
  height: Nullable(Type.Integer()),
  file_size: Type.Integer(),
  uniqueness_score: Nullable(Type.Number()),
  coarse_cluster_id: Nullable(Type.String({ description: 'Cluster at the coarsest granularity (threshold 4)' })),
});

/** What the web UI needs beyond the Visual Layer endpoints: one media's details, issue counts, duplicate groups. */
export const mediaDetailsRoutes: FastifyPluginAsyncTypebox<{ mediaDetails: MediaDetailsService; config: Config }> = async (app, { mediaDetails, config }) => {
  app.get(
    '/dataset/:datasetId/media/:mediaId',
    {
      config: { datasetRole: 'viewer' },
      schema: {
        tags,
        summary: "One media item: file name, dimensions, type, video and timestamp of a frame, quality, issues, uniqueness, clusters, labels, caption; an image's objects, an object's image and box",
        params: MediaParams,
        response: { 200: MediaDetails },
      },
    },
    async (request) => mediaDetails.details(currentUser(request).id, request.params.datasetId, request.params.mediaId, mediaUris(requestBaseUrl(request, config))),
  );

  app.get(
    '/dataset/:datasetId/issues_summary',
    {
      config: { datasetRole: 'viewer' },
      schema: {
        tags,
        summary: 'How many media carry each issue (duplicates at `duplicate_threshold`, default 0.96)',
        params: DatasetIdParams,
        querystring: Type.Object({ duplicate_threshold: Type.Optional(Type.Number()) }),
        response: {
          200: Type.Object({
            media_count: Type.Integer(),
            duplicate_threshold: Type.Number(),
            duplicate_groups: Type.Integer(),
            issues: Type.Array(Type.Object({ issue_type: Type.String(), count: Type.Integer() })),
          }),
        },
      },
    },
    async (request) => mediaDetails.issueSummary(currentUser(request).id, request.params.datasetId, request.query.duplicate_threshold),
  );

  app.get(
    '/dataset/:datasetId/duplicate_groups',
    {
      config: { datasetRole: 'viewer' },
      schema: {
        tags,
        summary: 'Near-duplicate groups at `threshold` (default 0.96), largest first; in each group the largest picture first (paged, 0-based)',
        params: DatasetIdParams,
        querystring: Type.Object({
          threshold: Type.Optional(Type.Number()),
          page_number: Type.Integer({ minimum: 0, default: 0 }),
          page_size: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
        }),
        response: {
          200: Type.Object({
            threshold: Type.Number(),
            total: Type.Integer(),
            page_number: Type.Integer(),
            page_size: Type.Integer(),
            groups: Type.Array(Type.Object({ group_id: Type.String(), size: Type.Integer(), media: Type.Array(GroupMember) })),
          }),
        },
      },
    },
    async (request) =>
      mediaDetails.duplicateGroups(
        currentUser(request).id,
        request.params.datasetId,
        { threshold: request.query.threshold, pageNumber: request.query.page_number, pageSize: request.query.page_size },
        mediaUris(requestBaseUrl(request, config)),
      ),
  );
};
