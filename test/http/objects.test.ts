import crypto from 'node:crypto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, truncatedJpeg } from '../fixtures/media.js';
import { draftDataset, getDataset, processFiles, reindex, type Headers, type UploadFile } from '../helpers/flows.js';
import { startTestApp, waitForStatus, type TestApp } from '../helpers/harness.js';
import { insertObject as insertObjectRow, type Box } from '../helpers/objects.js';
import { readZip } from '../helpers/zip.js';

/**
 * Objects (boxes cut from images) as entities of their own, end to end: processed from their box of
 * the parent's stored file (crop thumbnail, embedding), analysed among themselves (duplicates,
 * clusters), browsable with entity_type=OBJECTS; and mislabel detection on images and objects.
 * Object rows and labels are written straight to the database, as an annotation import leaves them.
 */

interface Preview {
  type: string;
  media_id: string;
  media_uri: string;
  media_thumb_uri: string;
  file_name: string;
  bounding_box: number[] | null;
  width: number | null;
  height: number | null;
}
interface ExploreBody {
  clusters: { cluster_id: string; n_images: number; n_objects: number; type: string; previews: Preview[] }[];
  metadata: Record<string, unknown>;
}


describe('objects cut from images', () => {
  let t: TestApp;
  let headers: Headers;

  beforeAll(async () => {
    t = await startTestApp();
    headers = await (await t.createUser('owner@example.com')).headers();
  });
  afterAll(async () => t.close());

  const db = (on: TestApp = t) => on.container.db;
  const mediaIdsByName = async (datasetId: string) => {
    const rows = await db().selectFrom('media').select(['id', 'file_name']).where('dataset_id', '=', datasetId).where('media_type', '!=', 'object').execute();
    return new Map(rows.map((r) => [r.file_name, r.id]));
  };
  /** A PENDING object row on `parentId`, as an annotation import writes it; optionally with a label. */
  const insertObject = (parentId: string, box: Box, units: 'px' | 'relative' = 'px', label?: string, on: TestApp = t) =>
    insertObjectRow(db(on), parentId, box, { units, labels: label === undefined ? [] : [[label, 'User']] });
  const insertLabel = async (datasetId: string, mediaId: string, label: string) => {
    await db()
      .insertInto('media_labels')
      .values({ id: crypto.randomUUID(), dataset_id: datasetId, media_id: mediaId, label, source: 'User', confidence: null, import_id: null, created_at: new Date().toISOString() })
      .execute();
  };
  const get = async (url: string) => {
    const response = await t.app.inject({ method: 'GET', url, headers });
    expect(response.statusCode, response.body).toBe(200);
    return response;
  };
  const explore = async (datasetId: string, query: Record<string, string>) => (await get(`/api/v1/explore/${datasetId}?${new URLSearchParams(query).toString()}`)).json() as ExploreBody;
  const previews = (body: ExploreBody) => body.clusters.flatMap((c) => c.previews);
  const mediaRow = (id: string) => db().selectFrom('media').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  describe('boxes annotated on uploaded images, then a reindex after more boxes are annotated', () => {
    let datasetId: string;
    let ids: Map<string, string>;
    const objects: Record<string, string> = {};

    beforeAll(async () => {
      const photo = await makeImage({ width: 640, height: 480, seed: 11 });
      const files: UploadFile[] = [
        { name: 'street.jpg', data: photo },
        { name: 'street_copy.jpg', data: photo },
        { name: 'park.png', data: await makeImage({ width: 320, height: 240, seed: 12, format: 'png' }) },
        { name: 'broken.jpg', data: await truncatedJpeg() },
      ];
      const draft = await draftDataset(t.app, headers, files, 'objects');
      datasetId = draft.datasetId;
      ids = await mediaIdsByName(datasetId);
      // Written while the images are still PENDING (an import with the upload): processed once their image is.
      objects.car = await insertObject(ids.get('street.jpg')!, [100, 80, 200, 150], 'px', 'car');
      objects.carCopy = await insertObject(ids.get('street_copy.jpg')!, [100, 80, 200, 150], 'px', 'car');
      objects.tree = await insertObject(ids.get('park.png')!, [0.5, 0.5, 0.25, 0.25], 'relative', 'tree');
      objects.bench = await insertObject(ids.get('park.png')!, [0, 0, 100, 100], 'px', 'bench');
      objects.outside = await insertObject(ids.get('street.jpg')!, [1000, 1000, 50, 50], 'px', 'ghost');
      objects.onBroken = await insertObject(ids.get('broken.jpg')!, [0, 0, 10, 10], 'px', 'ghost');
      expect((await processFiles(t.app, headers, datasetId, draft.transId)).statusCode).toBe(202);
      const dataset = await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR'], 120_000);
      expect(dataset, String(dataset.fatal_error_msg)).toMatchObject({ status_new: 'READY', n_images: 3, n_objects: 4 });
    }, 180_000);

    it('processes each box from its image: READY, box in pixels of the image, crop-sized thumbnail', async () => {
      const tree = await mediaRow(objects.tree!);
      expect(tree).toMatchObject({ status: 'READY', bbox_x: 160, bbox_y: 120, bbox_w: 80, bbox_h: 60, bbox_units: 'px', width: 80, height: 60 });
      const thumbnail = await get(`/api/v1/dataset/${datasetId}/media/${objects.tree}/thumbnail`);
      expect(await sharp(thumbnail.rawPayload).metadata()).toMatchObject({ format: 'jpeg', width: 80, height: 60 });
      const car = await mediaRow(objects.car!);
      expect(car).toMatchObject({ status: 'READY', width: 200, height: 150 });
      const vectors = await db().selectFrom('embeddings').select('media_id').where('media_id', 'in', [objects.car!, objects.tree!]).execute();
      expect(vectors).toHaveLength(2);
    });

    it('fails a box outside its image, and the boxes of an image that could not be decoded, with the reason', async () => {
      const outside = await mediaRow(objects.outside!);
      expect(outside.status).toBe('FAILED');
      expect(outside.error).toMatch(/outside the 640x480 image/);
      const onBroken = await mediaRow(objects.onBroken!);
      expect(onBroken.status).toBe('FAILED');
      expect(onBroken.error).toMatch(/^the image it was cut from could not be decoded: truncated or corrupt/);
    });

    it('explores objects with entity_type=OBJECTS: boxes on their image, crop thumbnails, counted as objects', async () => {
      const body = await explore(datasetId, { entity_type: 'OBJECTS' });
      const shown = previews(body);
      expect(shown.map((p) => p.media_id).sort()).toEqual([objects.car!, objects.carCopy!, objects.tree!, objects.bench!].sort());
      expect(body.clusters.reduce((sum, c) => sum + c.n_objects, 0)).toBe(4);
      expect(body.clusters.every((c) => c.n_images === 0 && c.type === 'OBJECTS')).toBe(true);
      const car = shown.find((p) => p.media_id === objects.car)!;
      expect(car).toMatchObject({ type: 'OBJECT', bounding_box: [100, 80, 200, 150], width: 200, height: 150, file_name: 'street.jpg' });
      expect(car.media_uri).toContain(`/media/${ids.get('street.jpg')}/file`);
      expect(car.media_thumb_uri).toContain(`/media/${objects.car}/thumbnail`);
      // Search by an object: the objects nearest it, its identical copy first.
      const anchored = previews(await explore(datasetId, { entity_type: 'OBJECTS', anchor_media_id: objects.car! }));
      expect(anchored.slice(0, 2).map((p) => p.media_id).sort()).toEqual([objects.car!, objects.carCopy!].sort());
      expect(anchored.every((p) => p.type === 'OBJECT')).toBe(true);
    });

    it('keeps objects out of the images view and counts', async () => {
      const shown = previews(await explore(datasetId, {})).map((p) => p.media_id);
      expect(shown.sort()).toEqual([ids.get('street.jpg')!, ids.get('street_copy.jpg')!, ids.get('park.png')!].sort());
      const metadata = (await get(`/api/v1/explore/${datasetId}/exploration_metadata`)).json() as { media_count: number };
      expect(metadata.media_count).toBe(3);
    });

    it('finds two identical crops as duplicates of each other, never of an image', async () => {
      const ofCar = (await get(`/api/v1/dataset/${datasetId}/media/${objects.car}/duplicates`)).json() as string[];
      expect(ofCar).toEqual([objects.carCopy]);
      const ofStreet = (await get(`/api/v1/dataset/${datasetId}/media/${ids.get('street.jpg')}/duplicates`)).json() as string[];
      expect(ofStreet).toEqual([ids.get('street_copy.jpg')]);
      const duplicates = await explore(datasetId, { entity_type: 'OBJECTS', vql: JSON.stringify([{ issues: { op: 'issue', value: 'duplicates' } }]) });
      expect(previews(duplicates).map((p) => p.media_id).sort()).toEqual([objects.car!, objects.carCopy!].sort());
      // The issue summary and the duplicates page are about pictures: the objects' pair is not in them.
      const summary = (await get(`/api/v1/dataset/${datasetId}/issues_summary`)).json() as { media_count: number; issues: { issue_type: string; count: number }[] };
      expect(summary.issues.find((i) => i.issue_type === 'duplicates')?.count).toBe(2);
      const groups = (await get(`/api/v1/dataset/${datasetId}/duplicate_groups`)).json() as { groups: { media: { media_id: string }[] }[] };
      expect(groups.groups.flatMap((g) => g.media.map((m) => m.media_id)).sort()).toEqual([ids.get('street.jpg')!, ids.get('street_copy.jpg')!].sort());
    });

    it('a selective export of an OBJECTS cluster exports the images its objects are cut from', async () => {
      const clusters = (await explore(datasetId, { entity_type: 'OBJECTS' })).clusters;
      const cars = clusters.find((c) => c.previews.some((p) => p.media_id === objects.car))!;
      const exported = async (exclude: string[]) => {
        const started = await t.app.inject({
          method: 'POST',
          url: `/api/v1/dataset/${datasetId}/export_entities_async?export_format=json`,
          headers: { ...headers, 'content-type': 'application/json' },
          payload: { media_selection: [{ type: 'cluster', payload: { cluster_id: cars.cluster_id, cluster_filters: { entity_type: 'OBJECTS' }, exclude_media_ids: exclude } }] },
        });
        expect(started.statusCode, started.body).toBe(200);
        const exportId = (started.json() as { id: string }).id;
        for (;;) {
          const status = (await get(`/api/v1/dataset/${datasetId}/export_status?export_task_id=${exportId}`)).json() as { status: string; download_uri: string };
          if (status.status === 'COMPLETED') {
            const zip = await readZip((await t.app.inject({ method: 'GET', url: status.download_uri })).rawPayload);
            return (JSON.parse(zip.get('metadata.json')!.toString('utf8')) as { media_items: { file_name: string }[] }).media_items.map((m) => m.file_name).sort();
          }
          expect(status.status).not.toBe('FAILED');
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      };
      expect(await exported([])).toEqual(['street.jpg', 'street_copy.jpg']);
      expect(await exported([objects.carCopy!])).toEqual(['street.jpg']);
    });

    it('a reindex processes boxes annotated after indexing, then indexes them with the rest', async () => {
      const added = await insertObject(ids.get('street.jpg')!, [320, 240, 160, 120], 'px', 'sign');
      // An annotation import into an indexed dataset leaves it PARTIAL INDEX.
      await db().updateTable('datasets').set({ status: 'PARTIAL INDEX' }).where('id', '=', datasetId).execute();
      expect((await reindex(t.app, headers, datasetId)).statusCode).toBe(202);
      const dataset = await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR'], 120_000);
      expect(dataset).toMatchObject({ status_new: 'READY', n_images: 3, n_objects: 5 });
      expect(await mediaRow(added)).toMatchObject({ status: 'READY', width: 160, height: 120 });
      const shown = previews(await explore(datasetId, { entity_type: 'OBJECTS' })).map((p) => p.media_id);
      expect(shown).toContain(added);
      const ofCar = (await get(`/api/v1/dataset/${datasetId}/media/${objects.car}/duplicates`)).json() as string[];
      expect(ofCar).toEqual([objects.carCopy]);
      expect((await getDataset(t.app, headers, datasetId)).n_objects).toBe(5);
    }, 180_000);
  });

  describe('on the sharded path (k-NN graph of the images in shards)', () => {
    let sharded: TestApp;
    afterAll(async () => sharded?.close());

    it('analyses the objects at the merge, apart from the images', async () => {
      sharded = await startTestApp({ env: { VIZDEX_KNN_SHARD_SIZE: '4' } });
      const owner = await (await sharded.createUser('sharded@example.com')).headers();
      const photo = await makeImage({ width: 320, height: 240, seed: 40 });
      const files: UploadFile[] = [{ name: 'copy_a.jpg', data: photo }, { name: 'copy_b.jpg', data: photo }];
      for (let seed = 41; seed < 49; seed++) files.push({ name: `other_${seed}.jpg`, data: await makeImage({ width: 320, height: 240, seed }) });
      const draft = await draftDataset(sharded.app, owner, files, 'sharded objects');
      const rows = await sharded.container.db.selectFrom('media').select(['id', 'file_name']).where('dataset_id', '=', draft.datasetId).execute();
      const idOf = new Map(rows.map((r) => [r.file_name, r.id]));
      const a = await insertObject(idOf.get('copy_a.jpg')!, [40, 30, 120, 90], 'px', undefined, sharded);
      const b = await insertObject(idOf.get('copy_b.jpg')!, [40, 30, 120, 90], 'px', undefined, sharded);
      const c = await insertObject(idOf.get('other_41.jpg')!, [0, 0, 160, 120], 'px', undefined, sharded);
      expect((await processFiles(sharded.app, owner, draft.datasetId, draft.transId)).statusCode).toBe(202);
      const dataset = await waitForStatus(sharded.app, owner, draft.datasetId, ['READY', 'ERROR'], 120_000);
      expect(dataset, String(dataset.fatal_error_msg)).toMatchObject({ status_new: 'READY', n_images: 10, n_objects: 3 });
      const response = await sharded.app.inject({ method: 'GET', url: `/api/v1/dataset/${draft.datasetId}/media/${a}/duplicates`, headers: owner });
      expect(response.json()).toEqual([b]);
      const objectsView = await sharded.app.inject({ method: 'GET', url: `/api/v1/explore/${draft.datasetId}?entity_type=OBJECTS`, headers: owner });
      expect(previews(objectsView.json() as ExploreBody).map((p) => p.media_id).sort()).toEqual([a, b, c].sort());
      const imagesView = await sharded.app.inject({ method: 'GET', url: `/api/v1/explore/${draft.datasetId}`, headers: owner });
      expect(previews(imagesView.json() as ExploreBody).every((p) => p.type === 'IMAGE')).toBe(true);
    }, 180_000);
  });

  describe('mislabels', () => {
    const CLASSES = { red: { r: 200, g: 30, b: 30 }, green: { r: 30, g: 170, b: 50 }, blue: { r: 30, g: 60, b: 200 } } as const;
    const PER_CLASS = 10;
    let datasetId: string;
    let ids: Map<string, string>;
    const objectOf = new Map<string, string>();

    /** A picture of one colour class: its colour jittered, with a small white square somewhere. */
    const classImage = async (colour: { r: number; g: number; b: number }, i: number) => {
      const jitter = (v: number) => Math.max(0, Math.min(255, v + ((i * 37) % 21) - 10));
      const square = await sharp({ create: { width: 40, height: 40, channels: 3, background: { r: 250, g: 250, b: 250 } } }).png().toBuffer();
      return sharp({ create: { width: 240, height: 180, channels: 3, background: { r: jitter(colour.r), g: jitter(colour.g), b: jitter(colour.b) } } })
        .composite([{ input: square, left: 10 + ((i * 53) % 180), top: 10 + ((i * 29) % 120) }])
        .jpeg({ quality: 90 })
        .toBuffer();
    };

    beforeAll(async () => {
      const files: UploadFile[] = [];
      for (const [name, colour] of Object.entries(CLASSES)) {
        for (let i = 0; i < PER_CLASS; i++) files.push({ name: `${name}_${i}.jpg`, data: await classImage(colour, i) });
      }
      const draft = await draftDataset(t.app, headers, files, 'labelled');
      datasetId = draft.datasetId;
      ids = await mediaIdsByName(datasetId);
      for (const name of ids.keys()) {
        const cls = name.split('_')[0]!;
        // One image and one (other) object carry the wrong label.
        await insertLabel(datasetId, ids.get(name)!, name === 'red_3.jpg' ? 'green' : cls);
        objectOf.set(name, await insertObject(ids.get(name)!, [60, 45, 120, 90], 'px', name === 'blue_6.jpg' ? 'red' : cls));
      }
      expect((await processFiles(t.app, headers, datasetId, draft.transId)).statusCode).toBe(202);
      const dataset = await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR'], 120_000);
      expect(dataset).toMatchObject({ status_new: 'READY', n_images: 3 * PER_CLASS, n_objects: 3 * PER_CLASS });
    }, 180_000);

    const mislabelled = { vql: JSON.stringify([{ issues: { op: 'issue', value: 'mislabels' } }]) };

    it('flags the image whose label disagrees with its neighbours, with a confidence', async () => {
      const shown = previews(await explore(datasetId, mislabelled));
      expect(shown.map((p) => p.file_name)).toEqual(['red_3.jpg']);
      const issue = await db().selectFrom('media_issues').select('confidence').where('media_id', '=', ids.get('red_3.jpg')!).where('issue_type', '=', 'mislabels').executeTakeFirstOrThrow();
      expect(issue.confidence).toBeGreaterThan(0.5);
      expect(issue.confidence).toBeLessThanOrEqual(1);
      // The issue summary lists mislabels once labels exist (images only; the object's is its own).
      const summary = (await get(`/api/v1/dataset/${datasetId}/issues_summary`)).json() as { issues: { issue_type: string; count: number }[] };
      expect(summary.issues.find((i) => i.issue_type === 'mislabels')?.count).toBe(1);
    });

    it('flags the mislabelled object among objects', async () => {
      const shown = previews(await explore(datasetId, { ...mislabelled, entity_type: 'OBJECTS' }));
      expect(shown.map((p) => p.media_id)).toEqual([objectOf.get('blue_6.jpg')]);
    });
  });
});
