import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../../config.js';
import type { ExploreService } from '../../services/explore.service.js';
import { currentUser } from '../plugins/auth.js';
import { mediaUris, requestBaseUrl } from '../request-base-url.js';
import { DatasetIdParams, Nullable } from './schemas.js';

const SearchEntityType = Type.Union([Type.Literal('IMAGES'), Type.Literal('OBJECTS')], { description: 'IMAGES (images and video frames, the default) or OBJECTS' });

const Result = Type.Object({
  type: Type.String({ description: 'IMAGE, VIDEO_FRAME or OBJECT' }),
  media_id: Type.String(),
  media_uri: Type.String(),
  media_thumb_uri: Type.String(),
  caption: Nullable(Type.String()),
  file_name: Type.String(),
  bounding_box: Type.Union([Type.Array(Type.Number()), Type.Null()]),
  relevance_score: Type.Number({ description: 'Cosine distance to the text (1 - cosine similarity): lower is more relevant' }),
  relevance_score_type: Type.Literal('cosine_distance'),
  width: Nullable(Type.Number()),
  height: Nullable(Type.Number()),
});

const ModelId = Type.String({ description: 'The image model id stored with the vectors, e.g. onnx:clip-vision:1a2b3c4d' });

const tags = ['search'];

const TEXT_MODEL_HELP =
  'Text search needs a CLIP-style model pair: `VIZDEX_MODEL` (image encoder .onnx), `VIZDEX_TEXT_MODEL` (text encoder .onnx) and `VIZDEX_TOKENIZER` ' +
  '(tokenizer.json, a folder with vocab.json + merges.txt, or bpe_simple_vocab_16e6.txt.gz); the dataset must be indexed with that image model.';

export const vectorSearchRoutes: FastifyPluginAsyncTypebox<{ explore: ExploreService; config: Config }> = async (app, { explore, config }) => {
  app.post(
    '/vector_search/:datasetId',
    {
      config: { datasetRole: 'viewer' },
      schema: {
        tags,
        summary: 'Media most similar to a text (semantic text search), most similar first',
        description:
          `Embeds \`text\` with the configured text encoder and ranks the dataset's media (or objects) by cosine similarity to it. ${TEXT_MODEL_HELP} ` +
          '409 when no text-capable model is configured, when the dataset is not searchable (not READY), or when it was indexed with another model (reindex it). ' +
          'With CLIP, a matching text and image have a cosine similarity of about 0.25-0.35 (`relevance_score` 0.65-0.75); unrelated ones about 0.1-0.2.',
        params: DatasetIdParams,
        body: Type.Object({
          text: Type.String({ minLength: 1, maxLength: 1000, pattern: '\\S', description: 'What to look for, e.g. "a red car" (not blank)' }),
          entity_type: Type.Optional(SearchEntityType),
          limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
        }),
        response: { 200: Type.Object({ model_id: ModelId, entity_type: SearchEntityType, results: Type.Array(Result) }) },
      },
    },
    async (request) => {
      const { text, entity_type, limit } = request.body;
      return explore.vectorSearch(currentUser(request).id, request.params.datasetId, { text, entityType: entity_type ?? 'IMAGES', limit }, mediaUris(requestBaseUrl(request, config)));
    },
  );

  app.get(
    '/vector_search/:datasetId/embedding_models',
    {
      config: { datasetRole: 'viewer' },
      schema: {
        tags,
        summary: 'The embedding model this server runs for the dataset, and what it can search by',
        description: `\`modalities\` is ["image"] for an image-only model and ["image", "text"] when text search is available. ${TEXT_MODEL_HELP}`,
        params: DatasetIdParams,
        response: {
          200: Type.Object({
            models: Type.Array(
              Type.Object({
                model_id: ModelId,
                modalities: Type.Array(Type.Union([Type.Literal('image'), Type.Literal('text')])),
                dimensions: Type.Integer(),
                is_dataset_model: Type.Boolean({ description: 'Whether the dataset was indexed with this model (text search needs it)' }),
                text_model_id: Nullable(Type.String({ description: 'The text encoder paired with the image model, null for an image-only model' })),
              }),
            ),
          }),
        },
      },
    },
    async (request) => explore.embeddingModels(currentUser(request).id, request.params.datasetId),
  );
};
