import crypto from 'node:crypto';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabelSource, MediaStatus } from '../../src/db/schema.js';
import { makeImage } from '../fixtures/media.js';
import { readyDataset, type Headers } from '../helpers/flows.js';
import { insertObject } from '../helpers/objects.js';
import { startTestApp, type TestApp } from '../helpers/harness.js';
import { readZip } from '../helpers/zip.js';

interface MetadataItem {
  type: string;
  properties: Record<string, unknown>;
}
interface ExportMetadata {
  info: Record<string, unknown>;
  media_items: { media_id: string; file_name: string; width: number; height: number; metadata_items: MetadataItem[] }[];
}
interface Coco {
  info: Record<string, unknown>;
  licenses: unknown[];
  images: { id: number; file_name: string; width: number; height: number; vizdex_media_id: string }[];
  annotations: { id: number; image_id: number; category_id: number; bbox: number[]; area: number; iscrowd: number; score?: number; source: string; vizdex_object_id: string }[];
  categories: { id: number; name: string; supercategory: string }[];
  image_labels: { image_id: number; label: string; source: string; score?: number }[];
}

/**
 * What pycocotools' COCO(), torchvision's CocoDetection and detectron2's loader rely on, checked
 * independently of the writer: the five top-level lists, unique integer ids, every annotation's
 * image and category listed, boxes of four finite numbers with a positive size, area = w * h.
 */
function checkCocoInstances(coco: Coco): void {
  for (const key of ['info', 'images', 'annotations', 'categories', 'licenses'] as const) expect(coco, key).toHaveProperty(key);
  const ids = (rows: { id: unknown }[]) => {
    for (const row of rows) expect(Number.isInteger(row.id), JSON.stringify(row)).toBe(true);
    const set = new Set(rows.map((r) => r.id));
    expect(set.size).toBe(rows.length);
    return set;
  };
  const images = ids(coco.images);
  const categories = ids(coco.categories);
  ids(coco.annotations);
  for (const image of coco.images) {
    expect(typeof image.file_name).toBe('string');
    expect(Number.isInteger(image.width) && Number.isInteger(image.height)).toBe(true);
  }
  for (const category of coco.categories) expect(typeof category.name).toBe('string');
  for (const a of coco.annotations) {
    expect(images.has(a.image_id), `image ${a.image_id}`).toBe(true);
    expect(categories.has(a.category_id), `category ${a.category_id}`).toBe(true);
    expect(a.bbox).toHaveLength(4);
    for (const v of a.bbox) expect(Number.isFinite(v)).toBe(true);
    expect(a.bbox[2]! > 0 && a.bbox[3]! > 0).toBe(true);
    expect(a.area).toBeCloseTo(a.bbox[2]! * a.bbox[3]!, 9);
    expect([0, 1]).toContain(a.iscrowd);
  }
  for (const l of coco.image_labels) expect(images.has(l.image_id)).toBe(true);
}

/**
 * Annotations in exports, on a real ingested dataset whose labels, objects and captions are written
 * straight into their tables: metadata.json items (`image_label`, `object_label` with its pixel box,
 * `caption`, `user_tag`), the matching metadata.parquet columns read back with hyparquet, and the
 * COCO export (`export_format=coco`) of the labelled media.
 */
describe('export of labels, objects, tags and captions', () => {
  let t: TestApp;
  let headers: Headers;
  let datasetId: string;
  const id: Record<string, string> = {};
  const objects: Record<string, string> = {};

  const send = (method: 'GET' | 'POST', url: string, body?: unknown) =>
    t.app.inject({
      method,
      url,
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });

  beforeAll(async () => {
    t = await startTestApp();
    headers = await (await t.createUser('owner@example.com')).headers();
    datasetId = await readyDataset(
      t.app,
      headers,
      [
        { name: 'living_room.jpg', data: await makeImage({ width: 640, height: 480, seed: 11 }) },
        { name: 'captioned.png', data: await makeImage({ width: 320, height: 240, seed: 12, format: 'png' }) },
        { name: 'street.png', data: await makeImage({ width: 320, height: 240, seed: 13, format: 'png' }) },
        { name: 'plain.png', data: await makeImage({ width: 320, height: 240, seed: 14, format: 'png' }) },
      ],
      'annotated',
    );
    const db = t.container.db;
    const media = await db.selectFrom('media').selectAll().where('dataset_id', '=', datasetId).execute();
    for (const m of media) id[m.file_name.replace(/\..*$/, '')] = m.id;
    const now = new Date().toISOString();

    const label = (mediaId: string, text: string, source: LabelSource, confidence: number | null = null) =>
      db.insertInto('media_labels').values({ id: crypto.randomUUID(), dataset_id: datasetId, media_id: mediaId, label: text, source, confidence, import_id: null, created_at: now }).execute();
    const object = async (
      name: string,
      parentName: string,
      box: [number, number, number, number],
      units: 'px' | 'relative',
      status: MediaStatus,
      cls: [string, LabelSource, number | null] | null,
    ) => {
      objects[name] = await insertObject(db, id[parentName]!, box, { units, status, labels: cls ? [cls] : [] });
    };

    await label(id.living_room!, 'cat', 'User');
    await label(id.living_room!, 'indoor', 'Model', 0.8);
    await object('sofa_cat', 'living_room', [10, 20, 100, 50], 'px', 'READY', ['cat', 'User', null]);
    // Not processed yet: a YOLO box in fractions of the 640×480 image.
    await object('yolo_dog', 'living_room', [0.5, 0.25, 0.25, 0.5], 'relative', 'PENDING', ['dog', 'Model', 0.9]);
    await object('street_dog', 'street', [1.5, 2.5, 30, 40], 'px', 'READY', ['dog', 'Visual Layer', null]);
    // A box that could not be cut: never exported.
    await object('broken', 'street', [300, 200, 100, 100], 'px', 'FAILED', ['car', 'User', null]);
    await db
      .insertInto('media_issues')
      .values({ dataset_id: datasetId, media_id: objects.sofa_cat!, issue_type: 'mislabels', confidence: 0.7, group_id: null, threshold: null })
      .execute();
    await db.updateTable('media').set({ caption: 'a cat and a dog on a sofa' }).where('id', '=', id.living_room!).execute();
    await db.updateTable('media').set({ caption: 'nothing labelled here' }).where('id', '=', id.captioned!).execute();

    const tag = await send('POST', `/api/v1/dataset/${datasetId}/tags`, { name: 'reviewed' });
    expect(tag.statusCode, tag.body).toBe(201);
    const tagged = await send('POST', `/api/v1/dataset/${datasetId}/tags/${(tag.json() as { id: string }).id}/media`, { media_ids: [id.plain, id.living_room] });
    expect(tagged.statusCode, tagged.body).toBeLessThan(300);
  }, 180_000);
  afterAll(async () => t?.close());

  async function exportZip(start: Promise<{ statusCode: number; body: string; json(): unknown }>): Promise<Map<string, Buffer>> {
    const response = await start;
    expect(response.statusCode, response.body).toBe(200);
    const { id: exportId } = response.json() as { id: string };
    const deadline = Date.now() + 60_000;
    for (;;) {
      const status = (await send('GET', `/api/v1/dataset/${datasetId}/export_status?export_task_id=${exportId}`)).json() as {
        status: string;
        download_uri: string | null;
        error_message: string | null;
      };
      if (status.status === 'COMPLETED' || status.status === 'FAILED') {
        expect(status.status, status.error_message ?? '').toBe('COMPLETED');
        const download = await t.app.inject({ method: 'GET', url: status.download_uri! });
        expect(download.statusCode).toBe(200);
        return readZip(download.rawPayload);
      }
      if (Date.now() > deadline) throw new Error(`export still ${status.status}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const full = (query: string) => exportZip(send('GET', `/api/v1/dataset/${datasetId}/export_context_async?file_name=e.zip&${query}`));
  const selective = (mediaIds: string[], query: string) =>
    exportZip(send('POST', `/api/v1/dataset/${datasetId}/export_entities_async?${query}`, { media_selection: [{ type: 'media', payload: { media_ids: mediaIds } }] }));

  it('metadata.json carries image labels, objects with pixel boxes, captions and user tags', async () => {
    const entries = await full('export_format=json');
    const metadata = JSON.parse(entries.get('metadata.json')!.toString('utf8')) as ExportMetadata;
    // Objects are listed under the image they are cut from, never as media items of their own.
    expect(metadata.media_items.map((m) => m.file_name).sort()).toEqual(['captioned.png', 'living_room.jpg', 'plain.png', 'street.png']);
    const itemsOf = (name: string, type: string) =>
      metadata.media_items.find((m) => m.media_id === id[name])!.metadata_items.filter((m) => m.type === type).map((m) => m.properties);

    expect(itemsOf('living_room', 'image_label')).toEqual([
      { category_name: 'cat', source: 'User' },
      { category_name: 'indoor', source: 'Model', confidence: 0.8 },
    ]);
    const boxes = itemsOf('living_room', 'object_label');
    expect(boxes).toHaveLength(2);
    expect(boxes).toContainEqual({
      category_name: 'cat',
      bbox: [10, 20, 100, 50],
      source: 'User',
      object_id: objects.sofa_cat,
      issues: [{ issue_type: 'mislabels', confidence: 0.7, duplicate_group_id: null, duplicate_threshold: null }],
    });
    // The relative YOLO box comes out in pixels of the 640×480 image.
    expect(boxes).toContainEqual({ category_name: 'dog', bbox: [320, 120, 160, 240], source: 'Model', confidence: 0.9, object_id: objects.yolo_dog });
    expect(itemsOf('living_room', 'caption')).toEqual([{ caption: 'a cat and a dog on a sofa' }]);
    expect(itemsOf('living_room', 'user_tag')).toEqual([expect.objectContaining({ tag_name: 'reviewed' })]);

    expect(itemsOf('street', 'object_label')).toEqual([{ category_name: 'dog', bbox: [1.5, 2.5, 30, 40], source: 'Visual Layer', object_id: objects.street_dog }]);
    expect(itemsOf('street', 'image_label')).toEqual([]);
    expect(itemsOf('captioned', 'caption')).toEqual([{ caption: 'nothing labelled here' }]);
    expect(itemsOf('captioned', 'object_label')).toEqual([]);
    expect(itemsOf('plain', 'caption')).toEqual([]);
    expect(itemsOf('plain', 'user_tag')).toHaveLength(1);
  });

  it('metadata.parquet has caption, image_labels (list of names) and object_labels (list of structs) columns', async () => {
    const entries = await full('export_format=parquet');
    const parquet = entries.get('metadata.parquet')!;
    const file = parquet.buffer.slice(parquet.byteOffset, parquet.byteOffset + parquet.byteLength) as ArrayBuffer;
    const columns = parquetMetadata(file).schema.map((s) => s.name);
    for (const column of ['caption', 'image_labels', 'object_labels', 'user_tags']) expect(columns).toContain(column);
    const rows = (await parquetReadObjects({ file })) as Record<string, unknown>[];
    expect(rows).toHaveLength(4);
    const row = (name: string) => rows.find((r) => r.media_id === id[name])!;

    expect(row('living_room')).toMatchObject({ caption: 'a cat and a dog on a sofa', image_labels: ['cat', 'indoor'], user_tags: 'reviewed' });
    const boxes = row('living_room').object_labels as Record<string, unknown>[];
    expect(boxes).toHaveLength(2);
    expect(boxes).toContainEqual({ category_name: 'cat', bbox: [10, 20, 100, 50], bbox_units: 'px', source: 'User', confidence: null, object_id: objects.sofa_cat });
    expect(boxes).toContainEqual({ category_name: 'dog', bbox: [320, 120, 160, 240], bbox_units: 'px', source: 'Model', confidence: 0.9, object_id: objects.yolo_dog });
    expect(row('street')).toMatchObject({
      caption: null,
      image_labels: [],
      object_labels: [{ category_name: 'dog', bbox: [1.5, 2.5, 30, 40], bbox_units: 'px', source: 'Visual Layer', confidence: null, object_id: objects.street_dog }],
    });
    expect(row('plain')).toMatchObject({ caption: null, image_labels: [], object_labels: [], user_tags: 'reviewed' });
  });

  it('export_format=coco writes annotations.json of the labelled media that a COCO reader accepts, with their images', async () => {
    const entries = await full('export_format=coco&include_images=true');
    expect(entries.has('metadata.json')).toBe(false);
    const coco = JSON.parse(entries.get('annotations.json')!.toString('utf8')) as Coco;
    checkCocoInstances(coco);
    expect(coco.licenses).toEqual([]);
    expect(coco.info).toMatchObject({ description: 'annotated', contributor: 'owner@example.com' });

    // Labelled media only: the captioned-only and the tagged-only images stay out.
    expect(coco.images.map((i) => i.vizdex_media_id).sort()).toEqual([id.living_room, id.street].sort());
    expect([...entries.keys()].filter((n) => n.startsWith('images/'))).toHaveLength(2);
    const imageOf = (name: string) => coco.images.find((i) => i.vizdex_media_id === id[name])!;
    expect(imageOf('living_room')).toMatchObject({ width: 640, height: 480 });

    const categoryName = new Map(coco.categories.map((c) => [c.id, c.name]));
    expect([...categoryName.values()].sort()).toEqual(['cat', 'dog']);
    for (const c of coco.categories) expect(c.supercategory).toBe('');
    const annotations = coco.annotations.map((a) => ({ image: a.image_id, name: categoryName.get(a.category_id), bbox: a.bbox, area: a.area, score: a.score }));
    expect(annotations).toHaveLength(3);
    expect(annotations).toContainEqual({ image: imageOf('living_room').id, name: 'cat', bbox: [10, 20, 100, 50], area: 5000, score: undefined });
    expect(annotations).toContainEqual({ image: imageOf('living_room').id, name: 'dog', bbox: [320, 120, 160, 240], area: 38_400, score: 0.9 });
    expect(annotations).toContainEqual({ image: imageOf('street').id, name: 'dog', bbox: [1.5, 2.5, 30, 40], area: 1200, score: undefined });

    // Image labels, which COCO instances cannot hold, under their own key.
    expect(coco.image_labels.filter((l) => l.image_id === imageOf('living_room').id)).toEqual([
      { image_id: imageOf('living_room').id, label: 'cat', source: 'User' },
      { image_id: imageOf('living_room').id, label: 'indoor', source: 'Model', score: 0.8 },
    ]);

    // Every image's file_name is its file under images/: it decodes at the listed size, and every box crops from it.
    for (const image of coco.images) {
      const bytes = entries.get(`images/${image.file_name}`);
      expect(bytes, image.file_name).toBeDefined();
      const decoded = await sharp(bytes).metadata();
      expect([decoded.width, decoded.height]).toEqual([image.width, image.height]);
      for (const a of coco.annotations.filter((x) => x.image_id === image.id)) {
        const [x, y, w, h] = a.bbox as [number, number, number, number];
        expect(x + w).toBeLessThanOrEqual(image.width);
        expect(y + h).toBeLessThanOrEqual(image.height);
        const crop = await sharp(bytes)
          .extract({ left: Math.floor(x), top: Math.floor(y), width: Math.ceil(w), height: Math.ceil(h) })
          .png()
          .toBuffer();
        expect((await sharp(crop).metadata()).width).toBe(Math.ceil(w));
      }
    }
  });

  it('a selective COCO export without images keeps the selected labelled media, named by their original path', async () => {
    const entries = await selective([id.street!, id.captioned!], 'export_format=coco&include_images=false');
    expect([...entries.keys()]).toEqual(['annotations.json']);
    const coco = JSON.parse(entries.get('annotations.json')!.toString('utf8')) as Coco;
    checkCocoInstances(coco);
    expect(coco.images).toEqual([{ id: 1, file_name: 'street.png', width: 320, height: 240, vizdex_media_id: id.street }]);
    expect(coco.categories).toEqual([{ id: 1, name: 'dog', supercategory: '' }]);
    expect(coco.annotations).toEqual([
      { id: 1, image_id: 1, category_id: 1, bbox: [1.5, 2.5, 30, 40], area: 1200, iscrowd: 0, segmentation: [], source: 'Visual Layer', vizdex_object_id: objects.street_dog },
    ]);
    expect(coco.image_labels).toEqual([]);
  });

  it('a selective export naming an object exports the image it is cut from, with its boxes', async () => {
    const entries = await selective([objects.street_dog!, id.plain!], 'export_format=json');
    const metadata = JSON.parse(entries.get('metadata.json')!.toString('utf8')) as ExportMetadata;
    expect(metadata.media_items.map((m) => m.file_name).sort()).toEqual(['plain.png', 'street.png']);
    const street = metadata.media_items.find((m) => m.file_name === 'street.png')!;
    expect(street.metadata_items.filter((m) => m.type === 'object_label').map((m) => m.properties.category_name)).toEqual(['dog']);
  });

  it('a COCO export of media with no labels is a valid, empty COCO file', async () => {
    const entries = await selective([id.plain!], 'export_format=coco');
    const coco = JSON.parse(entries.get('annotations.json')!.toString('utf8')) as Coco;
    checkCocoInstances(coco);
    expect([coco.images, coco.annotations, coco.categories]).toEqual([[], [], []]);
  });
});
