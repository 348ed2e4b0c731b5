import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AnnotationsService } from '../../services/annotations.service.js';
import { currentUser } from '../plugins/auth.js';
import { formParts } from '../plugins/upload-parts.js';
import { DatasetIdParams } from './schemas.js';

const tags = ['annotations'];
const ImportParams = Type.Object({ datasetId: Type.String(), importId: Type.String() });
const MediaParams = Type.Object({ datasetId: Type.String(), mediaId: Type.String() });
const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()]);

const AnnotationImport = Type.Object({
  annotation_import_id: Type.String(),
  dataset_id: Type.String(),
  status: Type.Union([Type.Literal('PENDING'), Type.Literal('COMPLETED'), Type.Literal('FAILED')]),
  file_name: Type.String(),
  format: Type.Union([Type.Literal('coco'), Type.Literal('yolo'), Type.Literal('csv'), Type.Literal('parquet')]),
  source: Type.Union([Type.Literal('User'), Type.Literal('Model'), Type.Literal('Visual Layer')]),
  n_rows: Type.Integer({ description: 'Rows (COCO annotations, YOLO lines, table rows) read, usable or not' }),
  n_image_labels: Type.Integer({ description: 'Image labels applied' }),
  n_objects: Type.Integer({ description: 'Boxes applied; each is an object, cut out and embedded by the next processing or reindex' }),
  n_captions: Type.Integer({ description: 'Media whose caption was set' }),
  n_unmatched: Type.Integer({ description: 'Rows naming no media of the dataset' }),
  n_invalid: Type.Integer({ description: 'Rows that could not be used for another reason (malformed, ambiguous name, box outside the image…)' }),
  problems: Type.Array(Type.Object({ location: Type.String(), file_name: Nullable(Type.String()), reason: Type.String() }), {
    description: 'The first 1000 rows that were not used, and why',
  }),
  problems_truncated: Type.Boolean(),
  error: Nullable(Type.String()),
  created_at: Type.String(),
  finished_at: Nullable(Type.String()),
});

const LabelCount = Type.Object({ name: Type.String(), n_images: Type.Integer(), n_objects: Type.Integer() });
const Caption = Type.Object({ media_id: Type.String(), caption: Nullable(Type.String()) });

const IMPORT_DESCRIPTION = [
  'Multipart form: `file` — COCO instances/captions JSON, a YOLO folder as .zip/.tar/.tar.gz (labels/*.txt with classes.txt, obj.names or data.yaml),',
  'or a .csv/.parquet table with columns `file_name,label[,x,y,w,h]` (and optional `caption`, `confidence`, `source`);',
  '`format` (coco|yolo|csv|parquet; guessed from the file when absent); `source` (User — the default —, Model or Visual Layer).',
  'Rows are matched to media by base name, or by the end of their path when a name is shared. A row with a box adds an object;',
  'one without adds an image label. Rows that cannot be used are reported (`problems`), never silently dropped; the rest is applied.',
  'Objects of an indexed dataset wait for a reindex (the dataset becomes PARTIAL INDEX). 409 while an operation runs on the dataset.',
].join(' ');

/** Annotations: label/box files, the record of each import, label counts, captions. */
export const annotationRoutes: FastifyPluginAsyncTypebox<{ annotations: AnnotationsService; uploadLimit: number }> = async (app, { annotations, uploadLimit }) => {
  app.post(
    '/dataset/:datasetId/annotations',
    {
      config: { datasetRole: 'editor' },
      schema: {
        tags,
        summary: 'Import labels, boxes and captions from an annotation file (editors)',
        description: IMPORT_DESCRIPTION,
        consumes: ['multipart/form-data'],
        params: DatasetIdParams,
        response: { 200: AnnotationImport },
      },
    },
    async (request) => annotations.importFile(currentUser(request).id, request.params.datasetId, formParts(request, { fileSize: uploadLimit + 1 })),
  );

  app.get(
    '/dataset/:datasetId/annotations/imports',
    {
      config: { datasetRole: 'viewer' },
      schema: { tags, summary: "The dataset's annotation imports, newest first", params: DatasetIdParams, response: { 200: Type.Array(AnnotationImport) } },
    },
    async (request) => annotations.listImports(currentUser(request).id, request.params.datasetId),
  );

  app.get(
    '/dataset/:datasetId/annotations/imports/:importId',
    {
      config: { datasetRole: 'viewer' },
      schema: { tags, summary: 'One annotation import: what it added and the rows it could not use', params: ImportParams, response: { 200: AnnotationImport } },
    },
    async (request) => annotations.getImport(currentUser(request).id, request.params.datasetId, request.params.importId),
  );

  app.get(
    '/dataset/:datasetId/labels',
    {
      config: { datasetRole: 'viewer' },
      schema: { tags, summary: 'Label names with how many images and objects carry each, most used first', params: DatasetIdParams, response: { 200: Type.Array(LabelCount) } },
    },
    async (request) => annotations.labels(currentUser(request).id, request.params.datasetId),
  );

  app.put(
    '/dataset/:datasetId/media/:mediaId/caption',
    {
      config: { datasetRole: 'editor' },
      schema: {
        tags,
        summary: "Sets an image's caption (editors); null or blank clears it",
        params: MediaParams,
        body: Type.Object({ caption: Nullable(Type.String()) }),
        response: { 200: Caption },
      },
    },
    async (request) => annotations.setCaption(currentUser(request).id, request.params.datasetId, request.params.mediaId, request.body.caption),
  );

  app.put(
    '/dataset/:datasetId/media/:mediaId/labels',
    {
      config: { datasetRole: 'editor' },
      schema: {
        tags,
        summary: "Sets a media's labels (an image's labels, an object's class) as the user's (editors); [] removes them",
        description: 'Replaces the labels of every source: the way to correct a mislabel (mislabels are recomputed by the next indexing). Names are 1-200 characters, at most 100.',
        params: MediaParams,
        body: Type.Object({ labels: Type.Array(Type.String()) }),
        response: { 200: Type.Object({ media_id: Type.String(), labels: Type.Array(Type.Object({ name: Type.String(), source: Type.Literal('User') })) }) },
      },
    },
    async (request) => annotations.setLabels(currentUser(request).id, request.params.datasetId, request.params.mediaId, request.body.labels),
  );

  app.post(
    '/dataset/:datasetId/captions',
    {
      config: { datasetRole: 'editor' },
      schema: {
        tags,
        summary: 'Sets many captions at once (editors); null or blank clears one',
        description: 'At most 10,000 a request. Every media id must be an image or video frame of this dataset, or nothing changes (400 naming the others).',
        params: DatasetIdParams,
        body: Type.Object({ captions: Type.Array(Caption) }),
        response: { 200: Type.Object({ updated: Type.Integer() }) },
      },
    },
    async (request) => annotations.setCaptions(currentUser(request).id, request.params.datasetId, request.body.captions),
  );
};
