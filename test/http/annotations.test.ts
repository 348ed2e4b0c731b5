import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeZip } from '../fixtures/archives.js';
import { makeImage } from '../fixtures/media.js';
import { addMedia, draftDataset, processFiles, readyDataset, reindex, type Headers, type UploadFile } from '../helpers/flows.js';
import { multipart, startTestApp, waitForStatus, type TestApp } from '../helpers/harness.js';

interface ImportReport {
  annotation_import_id: string;
  status: string;
  format: string;
  source: string;
  n_rows: number;
  n_image_labels: number;
  n_objects: number;
  n_captions: number;
  n_unmatched: number;
  n_invalid: number;
  problems: { location: string; file_name: string | null; reason: string }[];
  problems_truncated: boolean;
}

interface Cluster {
  labels: string[];
  captions: string[];
  previews: { media_id: string; file_name: string; caption: string | null }[];
}

/**
 * Annotation import through the API: COCO, YOLO and CSV files matched to media by name, labels with
 * their source, captions, the report of rows that could not be used, and what explore and full-text
 * search then find.
 */
describe('annotations', () => {
  let t: TestApp;
  let owner: Headers;
  let viewer: Headers;
  let datasetId: string;
  let ids: Map<string, string>;

  const names = ['cat_1.png', 'cat_2.png', 'cat_3.png', 'dog_1.png', 'dog_2.png', 'bird_1.png'];

  beforeAll(async () => {
    t = await startTestApp();
    owner = await (await t.createUser('owner@example.com')).headers();
    viewer = await (await t.createUser('viewer@example.com')).headers();
    const files: UploadFile[] = [];
    for (const [i, name] of names.entries()) files.push({ name, data: await makeImage({ width: 200, height: 150, seed: i + 1, format: 'png' }) });
    datasetId = await readyDataset(t.app, owner, files, 'annotated');
    const invite = await t.app.inject({ method: 'PUT', url: `/api/v1/manage/${datasetId}/invite`, headers: { ...owner, 'content-type': 'application/json' }, payload: { grant_to_user_email: 'viewer@example.com' } });
    expect(invite.statusCode, invite.body).toBe(200);
    ids = await mediaIdsByName(datasetId);
  }, 240_000);
  afterAll(async () => t?.close());

  async function mediaIdsByName(id: string): Promise<Map<string, string>> {
    const rows = await t.container.db.selectFrom('media').select(['id', 'file_name']).where('dataset_id', '=', id).where('media_type', '=', 'image').execute();
    return new Map(rows.map((r) => [r.file_name, r.id]));
  }

  function importFile(id: string, file: { name: string; data: Buffer }, fields: Record<string, string> = {}, headers: Headers = owner) {
    const form = multipart([{ field: 'file', ...file }], fields);
    return t.app.inject({ method: 'POST', url: `/api/v1/dataset/${id}/annotations`, headers: { ...headers, ...form.headers }, payload: form.payload });
  }

  async function imported(id: string, file: { name: string; data: Buffer }, fields: Record<string, string> = {}): Promise<ImportReport> {
    const response = await importFile(id, file, fields);
    expect(response.statusCode, response.body).toBe(200);
    return response.json() as ImportReport;
  }

  async function explore(query: Record<string, string>, headers: Headers = viewer): Promise<Cluster[]> {
    const response = await t.app.inject({ method: 'GET', url: `/api/v1/explore/${datasetId}?${new URLSearchParams(query)}`, headers });
    expect(response.statusCode, response.body).toBe(200);
    return (response.json() as { clusters: Cluster[] }).clusters;
  }
  const shownNames = (clusters: Cluster[]) => clusters.flatMap((c) => c.previews.map((p) => p.file_name)).sort();

  it('imports a CSV of image labels and captions, and reports every row it could not use', async () => {
    const csv = [
      'file_name,label,caption,source',
      'cat_1.png,cat,"a fluffy cat, asleep",',
      'cat_2.png,cat,,Model',
      'cat_3.png,cat,,',
      'dog_1.png,dog,a dog running on grass,',
      'dog_2.png,dog,,',
      'missing.png,dog,,',
      'bird_1.png,,,',
      'bird_1.png,bird,,Robot',
    ].join('\n');
    const report = await imported(datasetId, { name: 'labels.csv', data: Buffer.from(csv) });
    expect(report).toMatchObject({ status: 'COMPLETED', format: 'csv', source: 'User', n_rows: 8, n_image_labels: 5, n_captions: 2, n_objects: 0, n_unmatched: 1 });
    expect(report.n_invalid).toBe(2);
    const reasons = report.problems.map((p) => `${p.file_name}: ${p.reason}`).join('\n');
    expect(reasons).toMatch(/missing\.png: no media in the dataset is named "missing\.png"/);
    expect(report.problems).toHaveLength(3);

    // The report stays readable later, by every member.
    const again = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/annotations/imports/${report.annotation_import_id}`, headers: viewer });
    expect(again.statusCode).toBe(200);
    expect((again.json() as ImportReport).problems).toEqual(report.problems);
    const list = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/annotations/imports`, headers: viewer });
    expect((list.json() as ImportReport[]).map((r) => r.annotation_import_id)).toContain(report.annotation_import_id);

    const labels = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/labels`, headers: viewer });
    expect(labels.json()).toEqual([
      { name: 'cat', n_images: 3, n_objects: 0 },
      { name: 'dog', n_images: 2, n_objects: 0 },
    ]);
    const sources = await t.container.db.selectFrom('media_labels').select(['media_id', 'source']).where('dataset_id', '=', datasetId).execute();
    expect(sources.find((s) => s.media_id === ids.get('cat_2.png'))?.source).toBe('Model');
    expect(sources.find((s) => s.media_id === ids.get('cat_1.png'))?.source).toBe('User');

    // Importing the same file again adds no second copy of a label.
    const repeat = await imported(datasetId, { name: 'labels.csv', data: Buffer.from(csv) });
    expect(repeat.n_image_labels).toBe(5);
    expect(await t.container.db.selectFrom('media_labels').select('id').where('dataset_id', '=', datasetId).execute()).toHaveLength(5);
  });

  it('filters explore by label and caption, and shows them on clusters', async () => {
    expect(shownNames(await explore({ labels: 'cat' }))).toEqual(['cat_1.png', 'cat_2.png', 'cat_3.png']);
    expect(shownNames(await explore({ labels: 'cat,dog' }))).toHaveLength(5);
    expect(shownNames(await explore({ vql: JSON.stringify([{ labels: { op: 'one_of', value: ['dog'] } }]) }))).toEqual(['dog_1.png', 'dog_2.png']);
    expect(shownNames(await explore({ caption: 'FLUFFY' }))).toEqual(['cat_1.png']);
    expect(await explore({ labels: 'unicorn' })).toEqual([]);

    const clusters = await explore({ labels: 'dog' });
    expect(clusters.flatMap((c) => c.labels)).toContain('dog');
    const captioned = (await explore({})).flatMap((c) => c.previews).find((p) => p.file_name === 'dog_1.png');
    expect(captioned?.caption).toBe('a dog running on grass');

    const metadata = await t.app.inject({ method: 'GET', url: `/api/v1/explore/${datasetId}/exploration_metadata`, headers: viewer });
    expect((metadata.json() as { labels: unknown }).labels).toEqual([
      { name: 'cat', count: 3 },
      { name: 'dog', count: 2 },
    ]);
  });

  it('finds media by caption words and labels through the full-text index', async () => {
    const fts = async (value: string) => shownNames(await explore({ vql: JSON.stringify([{ text: { op: 'fts', value } }]) }));
    expect(await fts('fluffy')).toEqual(['cat_1.png']);
    expect(await fts('grass running')).toEqual(['dog_1.png']);
    expect(await fts('dog')).toEqual(['dog_1.png', 'dog_2.png']);
    expect(await fts('asleep dog')).toEqual([]);
  });

  it('sets and clears captions, one or many, and search follows', async () => {
    const put = await t.app.inject({
      method: 'PUT',
      url: `/api/v1/dataset/${datasetId}/media/${ids.get('bird_1.png')}/caption`,
      headers: { ...owner, 'content-type': 'application/json' },
      payload: { caption: '  a small bird on a branch ' },
    });
    expect(put.statusCode, put.body).toBe(200);
    expect(put.json()).toEqual({ media_id: ids.get('bird_1.png'), caption: 'a small bird on a branch' });
    const fts = async (value: string) => shownNames(await explore({ vql: JSON.stringify([{ text: { op: 'fts', value } }]) }));
    expect(await fts('branch')).toEqual(['bird_1.png']);

    const bulk = await t.app.inject({
      method: 'POST',
      url: `/api/v1/dataset/${datasetId}/captions`,
      headers: { ...owner, 'content-type': 'application/json' },
      payload: { captions: [{ media_id: ids.get('bird_1.png'), caption: null }, { media_id: ids.get('cat_3.png'), caption: 'a tabby on a branch' }] },
    });
    expect(bulk.statusCode, bulk.body).toBe(200);
    expect(bulk.json()).toEqual({ updated: 2 });
    expect(await fts('branch')).toEqual(['cat_3.png']);

    const unknown = await t.app.inject({
      method: 'POST',
      url: `/api/v1/dataset/${datasetId}/captions`,
      headers: { ...owner, 'content-type': 'application/json' },
      payload: { captions: [{ media_id: ids.get('cat_3.png'), caption: 'changed' }, { media_id: '00000000-0000-4000-8000-000000000000', caption: 'x' }] },
    });
    expect(unknown.statusCode).toBe(400);
    expect((unknown.json() as { detail: string }).detail).toMatch(/nothing was changed/);
    expect(await fts('tabby')).toEqual(['cat_3.png']);

    const byViewer = await t.app.inject({
      method: 'PUT',
      url: `/api/v1/dataset/${datasetId}/media/${ids.get('cat_3.png')}/caption`,
      headers: { ...viewer, 'content-type': 'application/json' },
      payload: { caption: 'nope' },
    });
    expect(byViewer.statusCode).toBe(403);
  });

  it("corrects a media's labels: the user's replace every source's, [] removes them", async () => {
    const url = `/api/v1/dataset/${datasetId}/media/${ids.get('cat_2.png')}/labels`;
    const put = (labels: unknown, headers: Headers = owner) => t.app.inject({ method: 'PUT', url, headers: { ...headers, 'content-type': 'application/json' }, payload: { labels } });
    const set = await put(['dog', ' dog ', 'puppy']);
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json()).toEqual({ media_id: ids.get('cat_2.png'), labels: [{ name: 'dog', source: 'User' }, { name: 'puppy', source: 'User' }] });
    expect(shownNames(await explore({ labels: 'cat' }))).toEqual(['cat_1.png', 'cat_3.png']);
    expect(shownNames(await explore({ labels: 'puppy' }))).toEqual(['cat_2.png']);
    expect((await put([''])).statusCode).toBe(422);
    expect((await put(['cat'], viewer)).statusCode).toBe(403);
    const unknown = await t.app.inject({
      method: 'PUT',
      url: `/api/v1/dataset/${datasetId}/media/00000000-0000-4000-8000-000000000000/labels`,
      headers: { ...owner, 'content-type': 'application/json' },
      payload: { labels: ['cat'] },
    });
    expect(unknown.statusCode).toBe(404);
    expect((await put([])).json()).toEqual({ media_id: ids.get('cat_2.png'), labels: [] });
    expect((await put(['cat'])).statusCode).toBe(200);
    const sources = await t.container.db.selectFrom('media_labels').select(['label', 'source']).where('media_id', '=', ids.get('cat_2.png')!).execute();
    expect(sources).toEqual([{ label: 'cat', source: 'User' }]);
  });

  it('refuses files it cannot read, keeping the record, and viewers cannot import', async () => {
    const broken = await importFile(datasetId, { name: 'instances.json', data: Buffer.from('{"images": [') });
    expect(broken.statusCode, broken.body).toBe(422);
    expect(JSON.stringify(broken.json())).toMatch(/annotation file cannot be read/);
    const list = (await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/annotations/imports`, headers: owner })).json() as (ImportReport & { error: string | null })[];
    expect(list[0]).toMatchObject({ status: 'FAILED', file_name: 'instances.json' });
    expect(list[0]!.error).toBeTruthy();

    const badSource = await importFile(datasetId, { name: 'labels.csv', data: Buffer.from('file_name,label\ncat_1.png,cat\n') }, { source: 'Oracle' });
    expect(badSource.statusCode).toBe(422);
    const fieldsOnly = multipart([], { source: 'User' });
    const noFile = await t.app.inject({ method: 'POST', url: `/api/v1/dataset/${datasetId}/annotations`, headers: { ...owner, ...fieldsOnly.headers }, payload: fieldsOnly.payload });
    expect(noFile.statusCode).toBe(422);
    expect((await importFile(datasetId, { name: 'labels.csv', data: Buffer.from('file_name,label\ncat_1.png,cat\n') }, {}, viewer)).statusCode).toBe(403);
  });

  it('turns COCO boxes given before processing into objects with their class', async () => {
    const files: UploadFile[] = [
      { name: 'street.png', data: await makeImage({ width: 320, height: 240, seed: 11, format: 'png' }) },
      { name: 'park.png', data: await makeImage({ width: 320, height: 240, seed: 12, format: 'png' }) },
    ];
    const { datasetId: id, transId } = await draftDataset(t.app, owner, files, 'coco boxes');
    const coco = {
      images: [
        { id: 1, file_name: 'street.png', width: 320, height: 240 },
        { id: 2, file_name: 'park.png', width: 320, height: 240 },
      ],
      categories: [
        { id: 1, name: 'car' },
        { id: 2, name: 'tree' },
      ],
      annotations: [
        { id: 1, image_id: 1, category_id: 1, bbox: [10, 20, 100, 60] },
        { id: 2, image_id: 1, category_id: 1, bbox: [150, 100, 120, 80] },
        { id: 3, image_id: 2, category_id: 2, bbox: [40, 10, 90, 200] },
        { id: 4, image_id: 3, category_id: 2, bbox: [0, 0, 5, 5] },
      ],
    };
    const report = await imported(id, { name: 'instances.json', data: Buffer.from(JSON.stringify(coco)) }, { source: 'Visual Layer' });
    expect(report).toMatchObject({ format: 'coco', source: 'Visual Layer', n_objects: 3, n_image_labels: 0 });
    expect(report.problems).toHaveLength(1);

    expect((await processFiles(t.app, owner, id, transId)).statusCode).toBe(202);
    const dataset = await waitForStatus(t.app, owner, id, ['READY', 'ERROR'], 120_000);
    expect(dataset).toMatchObject({ status_new: 'READY', n_images: 2, n_objects: 3 });
    const labels = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${id}/labels`, headers: owner });
    expect(labels.json()).toEqual([
      { name: 'car', n_images: 0, n_objects: 2 },
      { name: 'tree', n_images: 0, n_objects: 1 },
    ]);
    // An image is found by the labels of the objects in it.
    const cars = await t.app.inject({ method: 'GET', url: `/api/v1/explore/${id}?labels=car`, headers: owner });
    expect(shownNames((cars.json() as { clusters: Cluster[] }).clusters)).toEqual(['street.png']);
  });

  it('applies an annotation file sent with add_media once the new media are listed', async () => {
    const files: UploadFile[] = [
      { name: 'a.png', data: await makeImage({ width: 160, height: 120, seed: 31, format: 'png' }) },
      { name: 'b.png', data: await makeImage({ width: 160, height: 120, seed: 32, format: 'png' }) },
    ];
    const id = await readyDataset(t.app, owner, files, 'add media with labels');
    const csv = Buffer.from('file_name,label,x,y,w,h\nc.png,fox,,,,\nd.png,hen,10,10,50,40\na.png,old,,,,\nzzz.png,fox,,,,\n');

    const unreadable = await addMedia(t.app, owner, id, {
      files: [{ name: 'c.png', data: await makeImage({ width: 160, height: 120, seed: 33, format: 'png' }), field: 'files[]' }, { name: 'labels.csv', data: Buffer.from('"unclosed\n'), field: 'annotations' }],
    });
    expect(unreadable.statusCode, unreadable.body).toBe(422);
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${id}`, headers: owner })).json()).toMatchObject({ status_new: 'READY', n_images: 2 });

    const added = await addMedia(t.app, owner, id, {
      files: [
        { name: 'c.png', data: await makeImage({ width: 160, height: 120, seed: 33, format: 'png' }), field: 'files[]' },
        { name: 'd.png', data: await makeImage({ width: 160, height: 120, seed: 34, format: 'png' }), field: 'files[]' },
        { name: 'labels.csv', data: csv, field: 'annotations' },
      ],
      fields: { annotations_source: 'Model' },
    });
    expect(added.statusCode, added.body).toBe(202);
    const dataset = await waitForStatus(t.app, owner, id, ['PARTIAL INDEX', 'ERROR'], 120_000);
    expect(dataset).toMatchObject({ status_new: 'PARTIAL INDEX', n_images: 4, n_objects: 1 });
    const [report] = (await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${id}/annotations/imports`, headers: owner })).json() as ImportReport[];
    expect(report).toMatchObject({ status: 'COMPLETED', source: 'Model', n_image_labels: 2, n_objects: 1, n_unmatched: 1 });
    const labels = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${id}/labels`, headers: owner });
    expect(labels.json()).toEqual([
      { name: 'fox', n_images: 1, n_objects: 0 },
      { name: 'hen', n_images: 0, n_objects: 1 },
      { name: 'old', n_images: 1, n_objects: 0 },
    ]);
  });

  it('turns a YOLO folder given after indexing into objects once the dataset is reindexed', async () => {
    const yolo = makeZip([
      { name: 'classes.txt', data: Buffer.from('cat\ndog\n') },
      { name: 'labels/cat_1.txt', data: Buffer.from('0 0.5 0.5 0.5 0.5\n') },
      { name: 'labels/dog_1.txt', data: Buffer.from('1 0.25 0.25 0.3 0.3\n1 0.75 0.75 0.3 0.3\n7 0.5 0.5 0.1 0.1\n') },
      { name: 'labels/nobody.txt', data: Buffer.from('0 0.5 0.5 0.2 0.2\n') },
    ]);
    const report = await imported(datasetId, { name: 'yolo.zip', data: yolo });
    expect(report).toMatchObject({ format: 'yolo', n_objects: 3, n_unmatched: 1, n_invalid: 1 });
    expect((await waitForStatus(t.app, owner, datasetId, ['PARTIAL INDEX'])).status_new).toBe('PARTIAL INDEX');

    expect((await reindex(t.app, owner, datasetId)).statusCode).toBe(202);
    const dataset = await waitForStatus(t.app, owner, datasetId, ['READY', 'ERROR'], 120_000);
    expect(dataset).toMatchObject({ status_new: 'READY', n_objects: 3, n_images: 6 });
    const objects = await t.container.db
      .selectFrom('media')
      .select(['parent_media_id', 'bbox_x', 'bbox_y', 'bbox_w', 'bbox_h', 'bbox_units', 'status'])
      .where('dataset_id', '=', datasetId)
      .where('media_type', '=', 'object')
      .execute();
    const ofCat = objects.find((o) => o.parent_media_id === ids.get('cat_1.png'))!;
    // Relative YOLO boxes become whole pixels of the 200×150 original.
    expect(ofCat).toMatchObject({ status: 'READY', bbox_units: 'px', bbox_x: 50, bbox_y: 38, bbox_w: 100, bbox_h: 75 });
  });
});
