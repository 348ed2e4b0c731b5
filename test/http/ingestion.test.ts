import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTarGz, makeZip } from '../fixtures/archives.js';
import { makeImage, makeVideo, truncatedJpeg } from '../fixtures/media.js';
import { draftDataset, getDataset, newDataset, openTransaction, processFiles, uploadFiles, type Headers, type UploadFile } from '../helpers/flows.js';
import { makeTempDir, storedKeys, multipart, startTestApp, waitForStatus, type TestApp, type TestUser } from '../helpers/harness.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const FILES_MISSING = { detail: [{ loc: ['body', 'files'], msg: 'Field required', type: 'missing' }] };

const jpg = async (name: string, seed: number): Promise<UploadFile> => ({ name, data: await makeImage({ width: 64, height: 64, seed, format: 'jpeg' }) });
const png = async (name: string, seed: number): Promise<UploadFile> => ({ name, data: await makeImage({ width: 64, height: 64, seed, format: 'png' }) });
const webp = async (name: string, seed: number): Promise<UploadFile> => ({ name, data: await makeImage({ width: 64, height: 64, seed, format: 'webp' }) });

function uploadsDir(t: TestApp): string {
  return path.join(t.dataDir, 'tmp', 'uploads');
}

/** Scratch space holds nothing once a request is over, accepted or not. */
function expectNoScratchFiles(t: TestApp) {
  const dir = uploadsDir(t);
  const left = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  expect(left, `left in ${dir}`).toEqual([]);
}

async function mediaRows(t: TestApp, datasetId: string) {
  return t.container.db.selectFrom('media').select(['original_media_uri', 'status', 'media_type']).where('dataset_id', '=', datasetId).orderBy('original_media_uri').execute();
}

function blobFiles(t: TestApp, datasetId: string): Promise<string[]> {
  return storedKeys(t, `datasets/${datasetId}/media`);
}

describe('local upload: the seed flow, step by step', () => {
  let t: TestApp;
  let owner: TestUser;
  let headers: Headers;
  let video: Buffer;

  beforeAll(async () => {
    t = await startTestApp();
    owner = await t.createUser('owner@example.com');
    headers = await owner.headers();
    const dir = makeTempDir('vizdex-video-');
    await makeVideo(path.join(dir, 'clip.mp4'), { seconds: 1, width: 64, height: 48, frameRate: 5 });
    video = fs.readFileSync(path.join(dir, 'clip.mp4'));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  afterAll(async () => t.close());

  it('step 1: GET /ingestion/new_dataset answers 200 {"dataset_id"} (compact JSON), dataset in DRAFT / legacy NEW', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/api/v1/ingestion/new_dataset?dataset_name=My+Dataset', headers });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const body = response.json() as { dataset_id: string };
    expect(Object.keys(body)).toEqual(['dataset_id']);
    expect(body.dataset_id).toMatch(UUID);
    expect(response.body).toBe(`{"dataset_id":"${body.dataset_id}"}`);

    const dataset = await getDataset(t.app, headers, body.dataset_id);
    expect(dataset).toMatchObject({
      id: body.dataset_id,
      display_name: 'My Dataset',
      source_type: 'LOCAL',
      owned_by: owner.user_id,
      status: 'NEW',
      status_new: 'DRAFT',
      progress: 0,
      n_images: 0,
      n_videos: 0,
      n_video_frames: 0,
      n_objects: 0,
      n_failed_files: 0,
      fatal_error_msg: null,
      source_dataset_id: null,
    });
    for (const field of ['description', 'created_at']) expect(dataset).toHaveProperty(field);
  });

  it('step 1 without dataset_name is 422 (FastAPI shape); an empty name is 400', async () => {
    const missing = await t.app.inject({ method: 'GET', url: '/api/v1/ingestion/new_dataset', headers });
    expect(missing.statusCode).toBe(422);
    expect(missing.json()).toEqual({ detail: [{ loc: ['query', 'dataset_name'], msg: 'Field required', type: 'missing' }] });

    const empty = await t.app.inject({ method: 'GET', url: '/api/v1/ingestion/new_dataset?dataset_name=%20', headers });
    expect(empty.statusCode).toBe(400);
    expect(empty.json()).toEqual({ detail: 'dataset_name must not be empty' });

    // A NUL (which PostgreSQL cannot store) is refused the same way in both modes.
    const nul = await t.app.inject({ method: 'GET', url: '/api/v1/ingestion/new_dataset?dataset_name=a%00b', headers });
    expect([nul.statusCode, nul.json()]).toEqual([400, { detail: 'dataset_name must not contain control characters' }]);
  });

  it('step 2: GET /ingestion/{id}/data_files answers 200 {"trans_id"}', async () => {
    const datasetId = await newDataset(t.app, headers);
    const response = await t.app.inject({ method: 'GET', url: `/api/v1/ingestion/${datasetId}/data_files`, headers });
    expect(response.statusCode).toBe(200);
    const body = response.json() as { trans_id: string };
    expect(Object.keys(body)).toEqual(['trans_id']);
    expect(body.trans_id).toMatch(UUID);
    expect(response.body).toBe(`{"trans_id":"${body.trans_id}"}`);
  });

  it('steps 3 and 4 answer 202 with an empty body; many requests accumulate; the dataset reaches READY with exact counts', async () => {
    const datasetId = await newDataset(t.app, headers, 'accumulate');
    const transId = await openTransaction(t.app, headers, datasetId);

    const first = await uploadFiles(t.app, headers, datasetId, transId, [await jpg('image1.jpg', 1), await jpg('image2.jpg', 2), await jpg('image3.jpg', 3)]);
    expect(first.statusCode, first.body).toBe(202);
    expect(first.body).toBe('');
    const second = await uploadFiles(t.app, headers, datasetId, transId, [await png('image4.png', 4), await webp('image5.webp', 5)]);
    expect(second.statusCode, second.body).toBe(202);
    expect(second.body).toBe('');
    const third = await uploadFiles(t.app, headers, datasetId, transId, [{ name: 'UPPER.JPEG', data: (await jpg('x', 6)).data }]);
    expect(third.statusCode, third.body).toBe(202);
    expectNoScratchFiles(t);
    expect(await blobFiles(t, datasetId)).toHaveLength(6);

    // Still DRAFT until process_files.
    expect(await getDataset(t.app, headers, datasetId)).toMatchObject({ status_new: 'DRAFT', n_images: 0 });

    const processed = await processFiles(t.app, headers, datasetId, transId);
    expect(processed.statusCode, processed.body).toBe(202);
    expect(processed.body).toBe('');

    const ready = await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR']);
    expect(ready).toMatchObject({ status: 'READY', status_new: 'READY', progress: 100, n_images: 6, n_videos: 0, n_failed_files: 0, fatal_error_msg: null });
    expect(ready.failed_files ?? []).toEqual([]);
  });

  it('the dataset JSON is compact, so the seed bash can grep "status":"READY"', async () => {
    const { datasetId, transId } = await draftDataset(t.app, headers, [await jpg('a.jpg', 11)], 'compact');
    expect((await processFiles(t.app, headers, datasetId, transId)).statusCode).toBe(202);
    await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR']);
    const raw = (await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}`, headers })).body;
    expect(raw).toContain('"status":"READY"');
    expect(raw).toContain(`"id":"${datasetId}"`);
    expect(raw).not.toMatch(/": /);
    expect(raw).not.toContain('\n');
    const list = (await t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers })).body;
    expect(list.startsWith('[')).toBe(true);
    expect(list).toContain(`"id":"${datasetId}"`);
    expect(list).not.toMatch(/": /);
  });

  it('a request holding an unsupported file is rejected whole (400 naming every bad file) and stores nothing', async () => {
    const datasetId = await newDataset(t.app, headers, 'all or nothing');
    const transId = await openTransaction(t.app, headers, datasetId);
    const good = await uploadFiles(t.app, headers, datasetId, transId, [await jpg('keep1.jpg', 21), await png('keep2.png', 22)]);
    expect(good.statusCode, good.body).toBe(202);

    const bad = await uploadFiles(t.app, headers, datasetId, transId, [
      await jpg('lost1.jpg', 23),
      { name: 'notes.txt', data: Buffer.from('just some notes\n') },
      await png('lost2.png', 24),
      { name: 'fake.jpg', data: Buffer.from('this is plain text, not a JPEG at all\n') },
      { name: 'README', data: Buffer.from('no extension') },
    ]);
    expect(bad.statusCode, bad.body).toBe(400);
    const detail = (bad.json() as { detail: string }).detail;
    expect(typeof detail).toBe('string');
    for (const name of ['notes.txt', 'fake.jpg', 'README']) expect(detail).toContain(name);
    for (const name of ['lost1.jpg', 'lost2.png', 'keep1.jpg']) expect(detail).not.toContain(name);
    expectNoScratchFiles(t);
    expect(await blobFiles(t, datasetId)).toHaveLength(2);
    expect((await mediaRows(t, datasetId)).map((m) => m.original_media_uri)).toEqual(['keep1.jpg', 'keep2.png']);

    // The transaction stays usable.
    const later = await uploadFiles(t.app, headers, datasetId, transId, [await webp('keep3.webp', 25)]);
    expect(later.statusCode, later.body).toBe(202);

    expect((await processFiles(t.app, headers, datasetId, transId)).statusCode).toBe(202);
    const ready = await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR']);
    expect(ready).toMatchObject({ status_new: 'READY', n_images: 3, n_failed_files: 0 });
    expectNoScratchFiles(t);
  });

  const archives: { name: string; files: () => Promise<UploadFile[]>; bad: string[] }[] = [
    { name: 'a .zip', files: async () => [await jpg('ok.jpg', 31), { name: 'photos.zip', data: makeZip([{ name: 'in.jpg', data: (await jpg('in.jpg', 32)).data }]) }], bad: ['photos.zip'] },
    { name: 'a zip renamed .jpg', files: async () => [{ name: 'sneaky.jpg', data: makeZip([{ name: 'in.jpg', data: (await jpg('in.jpg', 33)).data }]) }], bad: ['sneaky.jpg'] },
    { name: 'a .tar.gz', files: async () => [{ name: 'photos.tar.gz', data: makeTarGz([{ name: 'in.jpg', data: (await jpg('in.jpg', 34)).data }]) }], bad: ['photos.tar.gz'] },
    { name: 'gzip data renamed .png', files: async () => [{ name: 'zipped.png', data: gzipSync((await png('p', 35)).data) }], bad: ['zipped.png'] },
    {
      name: 'two archives and a text file together',
      files: async () => [
        { name: 'one.zip', data: makeZip([]) },
        { name: 'two.tar', data: Buffer.alloc(0) },
        { name: 'notes.txt', data: Buffer.from('x') },
        await jpg('fine.jpg', 36),
      ],
      bad: ['one.zip', 'two.tar', 'notes.txt'],
    },
  ];
  for (const archive of archives) {
    it(`${archive.name} is refused with 400 for initial creation, naming the file`, async () => {
      const datasetId = await newDataset(t.app, headers, 'archives');
      const transId = await openTransaction(t.app, headers, datasetId);
      const response = await uploadFiles(t.app, headers, datasetId, transId, await archive.files());
      expect(response.statusCode, response.body).toBe(400);
      const detail = (response.json() as { detail: string }).detail;
      for (const name of archive.bad) expect(detail).toContain(name);
      expect(detail).toMatch(/archive/i);
      expect(await mediaRows(t, datasetId)).toEqual([]);
      expect(await blobFiles(t, datasetId)).toEqual([]);
      expectNoScratchFiles(t);
    });
  }

  it('the files[] field name is 422 in the FastAPI shape, and nothing is stored', async () => {
    const { datasetId, transId } = await draftDataset(t.app, headers, []);
    const response = await uploadFiles(t.app, headers, datasetId, transId, [{ ...(await jpg('a.jpg', 41)), field: 'files[]' }, { ...(await jpg('b.jpg', 42)), field: 'files[]' }]);
    expect(response.statusCode, response.body).toBe(422);
    expect(response.json()).toEqual(FILES_MISSING);
    expect(await mediaRows(t, datasetId)).toEqual([]);
    expectNoScratchFiles(t);
  });

  it('an upload with no file part, or no multipart body at all, is 422', async () => {
    const { datasetId, transId } = await draftDataset(t.app, headers, []);
    const url = `/api/v1/ingestion/${datasetId}/data_files/${transId}`;
    const onlyFields = multipart([], { dataset_name: 'x' });
    const noFiles = await t.app.inject({ method: 'POST', url, headers: { ...headers, ...onlyFields.headers }, payload: onlyFields.payload });
    expect(noFiles.statusCode, noFiles.body).toBe(422);
    expect(noFiles.json()).toEqual(FILES_MISSING);

    const noBody = await t.app.inject({ method: 'POST', url, headers });
    expect(noBody.statusCode, noBody.body).toBe(422);
    expect((noBody.json() as { detail: { loc: unknown[] }[] }).detail[0]!.loc).toEqual(['body', 'files']);

    const json = await t.app.inject({ method: 'POST', url, headers, payload: { files: ['a.jpg'] } });
    expect(json.statusCode, json.body).toBe(422);
  });

  it('a broken multipart body is a 400 client error, not a 500, and leaves nothing behind', async () => {
    const { datasetId, transId } = await draftDataset(t.app, headers, []);
    const url = `/api/v1/ingestion/${datasetId}/data_files/${transId}`;
    const body = multipart([await jpg('a.jpg', 43), await jpg('b.jpg', 44)]);
    const cases: [string, Buffer, string][] = [
      ['cut in the middle of a file', body.payload.subarray(0, Math.floor(body.payload.length / 3)), body.headers['content-type']],
      ['cut before the closing boundary', body.payload.subarray(0, body.payload.length - 12), body.headers['content-type']],
      ['not multipart at all', Buffer.from('hello world'), body.headers['content-type']],
      ['no boundary parameter', body.payload, 'multipart/form-data'],
    ];
    for (const [name, payload, contentType] of cases) {
      const response = await t.app.inject({ method: 'POST', url, headers: { ...headers, 'content-type': contentType }, payload });
      expect(response.statusCode, `${name}: ${response.body}`).toBe(400);
      expect((response.json() as { detail: string }).detail).toMatch(/^There was an error parsing the body/);
    }
    expect(await mediaRows(t, datasetId)).toEqual([]);
    expectNoScratchFiles(t);
  });

  it('process_files ignores an empty body sent with Content-Type: application/json (clients with JSON default headers)', async () => {
    const { datasetId, transId } = await draftDataset(t.app, headers, [await jpg('a.jpg', 45)]);
    const response = await t.app.inject({
      method: 'POST',
      url: `/api/v1/ingestion/${datasetId}/process_files/${transId}`,
      headers: { ...headers, 'content-type': 'application/json' },
    });
    expect(response.statusCode, response.body).toBe(202);
    expect(await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR'])).toMatchObject({ status_new: 'READY', n_images: 1 });
  });

  it('404 for an unknown dataset (random UUID or not a UUID) on every ingestion step', async () => {
    const random = crypto.randomUUID();
    const file = await jpg('a.jpg', 51);
    for (const id of [random, 'not-a-uuid']) {
      const steps = [
        await t.app.inject({ method: 'GET', url: `/api/v1/ingestion/${id}/data_files`, headers }),
        await uploadFiles(t.app, headers, id, crypto.randomUUID(), [file]),
        await processFiles(t.app, headers, id, crypto.randomUUID()),
      ];
      for (const response of steps) {
        expect(response.statusCode, response.body).toBe(404);
        expect(response.json()).toEqual({ detail: 'Dataset not found' });
      }
    }
    expectNoScratchFiles(t);
  });

  it('404 for an unknown transaction, and for a transaction of another dataset', async () => {
    const { datasetId } = await draftDataset(t.app, headers, []);
    const other = await draftDataset(t.app, headers, [await jpg('other.jpg', 52)]);
    const file = await jpg('a.jpg', 53);
    for (const transId of [crypto.randomUUID(), 'not-a-uuid', other.transId]) {
      const upload = await uploadFiles(t.app, headers, datasetId, transId, [file]);
      expect(upload.statusCode, upload.body).toBe(404);
      expect(upload.json()).toEqual({ detail: 'Transaction not found' });
      const process = await processFiles(t.app, headers, datasetId, transId);
      expect(process.statusCode, process.body).toBe(404);
      expect(process.json()).toEqual({ detail: 'Transaction not found' });
    }
    expect(await mediaRows(t, datasetId)).toEqual([]);
    // The other dataset's transaction is untouched by those attempts.
    expect(await mediaRows(t, other.datasetId)).toHaveLength(1);
    expectNoScratchFiles(t);
  });

  it('process_files on an empty transaction is 400 and leaves the dataset in DRAFT', async () => {
    const { datasetId, transId } = await draftDataset(t.app, headers, []);
    const response = await processFiles(t.app, headers, datasetId, transId);
    expect(response.statusCode, response.body).toBe(400);
    expect((response.json() as { detail: string }).detail).toMatch(/No files were uploaded/);
    expect(await getDataset(t.app, headers, datasetId)).toMatchObject({ status_new: 'DRAFT', status: 'NEW' });
    // Uploading afterwards still works.
    expect((await uploadFiles(t.app, headers, datasetId, transId, [await jpg('late.jpg', 54)])).statusCode).toBe(202);
  });

  it('upload to a processed transaction, process_files twice and a new transaction after processing are 409', async () => {
    const { datasetId, transId } = await draftDataset(t.app, headers, [await jpg('a.jpg', 55)]);
    expect((await processFiles(t.app, headers, datasetId, transId)).statusCode).toBe(202);

    const twice = await processFiles(t.app, headers, datasetId, transId);
    expect(twice.statusCode, twice.body).toBe(409);
    expect(twice.json()).toEqual({ detail: `Transaction ${transId} has already been processed` });

    const upload = await uploadFiles(t.app, headers, datasetId, transId, [await jpg('b.jpg', 56)]);
    expect(upload.statusCode, upload.body).toBe(409);
    expect(upload.json()).toEqual({ detail: `Transaction ${transId} has already been processed` });

    await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR']);
    expect((await processFiles(t.app, headers, datasetId, transId)).statusCode).toBe(409);
    const reopen = await t.app.inject({ method: 'GET', url: `/api/v1/ingestion/${datasetId}/data_files`, headers });
    expect(reopen.statusCode, reopen.body).toBe(409);
    expect(await getDataset(t.app, headers, datasetId)).toMatchObject({ status_new: 'READY', n_images: 1 });
    expectNoScratchFiles(t);
  });

  it('a second transaction opened before processing cannot be processed once the dataset is (409)', async () => {
    const { datasetId, transId } = await draftDataset(t.app, headers, [await jpg('a.jpg', 57)]);
    const second = await openTransaction(t.app, headers, datasetId);
    expect((await uploadFiles(t.app, headers, datasetId, second, [await jpg('b.jpg', 58)])).statusCode).toBe(202);
    expect((await processFiles(t.app, headers, datasetId, transId)).statusCode).toBe(202);
    const again = await processFiles(t.app, headers, datasetId, second);
    expect(again.statusCode, again.body).toBe(409);
    await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR']);
  });

  it('undecodable files are accepted, then recorded as failed with a reason; the dataset still reaches READY with exact counts', async () => {
    const { datasetId, transId } = await draftDataset(t.app, headers, [
      await jpg('good1.jpg', 61),
      await png('good2.png', 62),
      { name: 'broken.jpg', data: await truncatedJpeg() },
      { name: 'empty.png', data: Buffer.alloc(0) },
      { name: 'png-named.jpg', data: (await png('p', 63)).data },
    ], 'with failures');
    expect((await processFiles(t.app, headers, datasetId, transId)).statusCode).toBe(202);
    const ready = await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR']);
    expect(ready).toMatchObject({ status: 'READY', status_new: 'READY', progress: 100, n_images: 3, n_videos: 0, n_failed_files: 2, fatal_error_msg: null });

    const failed = ready.failed_files as { media_id: string; file_name: string; original_media_uri: string; reason: string }[];
    expect(failed).toHaveLength(2);
    // Ordered by name.
    expect(failed.map((f) => f.original_media_uri)).toEqual(['broken.jpg', 'empty.png']);
    expect(failed.map((f) => f.file_name)).toEqual(['broken.jpg', 'empty.png']);
    for (const file of failed) {
      expect(file.media_id).toMatch(UUID);
      expect(file.reason).toEqual(expect.any(String));
      expect(file.reason.length).toBeGreaterThan(3);
      expect(file.reason).not.toBe('unknown error');
    }

    const page0 = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/failed_files?page_size=1&page_number=0`, headers });
    const page1 = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/failed_files?page_size=1&page_number=1`, headers });
    const page2 = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/failed_files?page_size=1&page_number=2`, headers });
    for (const page of [page0, page1, page2]) expect(page.statusCode, page.body).toBe(200);
    const files0 = page0.json() as { total: number; files: { original_media_uri: string; reason: string }[] };
    const files1 = page1.json() as typeof files0;
    expect(files0.total).toBe(2);
    expect(files0.files).toHaveLength(1);
    expect(files1.files).toHaveLength(1);
    expect([files0.files[0]!.original_media_uri, files1.files[0]!.original_media_uri]).toEqual(['broken.jpg', 'empty.png']);
    expect(page2.json()).toEqual({ total: 2, files: [] });

    const all = (await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/failed_files`, headers })).json() as typeof files0;
    expect(all.files).toEqual(failed);

    const badPaging = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/failed_files?page_size=0`, headers });
    expect(badPaging.statusCode).toBe(422);
  });

  it('a video counts in n_videos, not n_images', async () => {
    const { datasetId, transId } = await draftDataset(t.app, headers, [await jpg('still.jpg', 71), { name: 'clip.mp4', data: video }], 'with video');
    expect((await processFiles(t.app, headers, datasetId, transId)).statusCode).toBe(202);
    const ready = await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR']);
    expect(ready).toMatchObject({ status_new: 'READY', n_images: 1, n_videos: 1, n_failed_files: 0 });
    // TODO(spec §3): a video should also become `video_frame` media (n_video_frames > 0); frame
    // extraction is not implemented yet, so only the count of videos is asserted here.
  });
});

describe('local upload: status and progress over time', () => {
  let t: TestApp;
  let headers: Headers;

  beforeAll(async () => {
    // Jobs start only when the test says so, so the INDEXING phase is observable.
    t = await startTestApp({ jobs: false });
    headers = await (await t.createUser('owner@example.com')).headers();
  });
  afterAll(async () => t.close());

  it('goes DRAFT (NEW) → INDEXING → READY, progress never goes back and ends at 100', async () => {
    const files = await Promise.all([1, 2, 3, 4].map((seed) => jpg(`img${seed}.jpg`, seed)));
    const { datasetId, transId } = await draftDataset(t.app, headers, files);
    expect(await getDataset(t.app, headers, datasetId)).toMatchObject({ status: 'NEW', status_new: 'DRAFT', progress: 0 });

    expect((await processFiles(t.app, headers, datasetId, transId)).statusCode).toBe(202);
    expect(await getDataset(t.app, headers, datasetId)).toMatchObject({ status: 'INDEXING', status_new: 'INDEXING', progress: 0 });
    const queued = (await t.app.inject({ method: 'GET', url: `/api/v1/tasks?dataset_id=${datasetId}`, headers })).json() as { tasks: { status: string }[] };
    expect(queued.tasks.map((task) => task.status)).toEqual(['INITIALIZING']);

    t.container.startJobs();
    const seen: { status: string; status_new: string; progress: number }[] = [];
    const deadline = Date.now() + 30_000;
    for (;;) {
      const dataset = (await getDataset(t.app, headers, datasetId)) as { status: string; status_new: string; progress: number };
      seen.push(dataset);
      if (dataset.status_new === 'READY' || dataset.status_new === 'ERROR' || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const last = seen.at(-1)!;
    expect(last).toMatchObject({ status: 'READY', status_new: 'READY', progress: 100 });
    for (const state of seen) {
      expect(['INDEXING', 'READY']).toContain(state.status_new);
      expect(state.status).toBe(state.status_new);
      expect(state.progress).toBeGreaterThanOrEqual(0);
      expect(state.progress).toBeLessThanOrEqual(100);
    }
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.progress).toBeGreaterThanOrEqual(seen[i - 1]!.progress);
    // READY is final: nothing flips back to INDEXING.
    expect(seen.findIndex((s) => s.status_new === 'READY')).toBe(seen.length - 1);
  });
});

describe('local upload: size limits', () => {
  let t: TestApp;
  let headers: Headers;

  beforeAll(async () => {
    t = await startTestApp({ env: { VIZDEX_MAX_FILE_BYTES: '1000' } });
    headers = await (await t.createUser('owner@example.com')).headers();
  });
  afterAll(async () => t.close());

  it('a file over VIZDEX_MAX_FILE_BYTES is 413 and nothing of the request is stored; files under it are accepted', async () => {
    const small = { name: 'small.jpg', data: await makeImage({ width: 16, height: 16, seed: 1, format: 'jpeg' }) };
    const big = await png('big.png', 2);
    expect(small.data.length).toBeLessThan(1000);
    expect(big.data.length).toBeGreaterThan(1000);

    const { datasetId, transId } = await draftDataset(t.app, headers, []);
    const refused = await uploadFiles(t.app, headers, datasetId, transId, [small, big]);
    expect(refused.statusCode, refused.body).toBe(413);
    const detail = (refused.json() as { detail: string }).detail;
    expect(typeof detail).toBe('string');
    expect(detail).toContain('big.png');
    expect(await mediaRows(t, datasetId)).toEqual([]);
    expectNoScratchFiles(t);

    const accepted = await uploadFiles(t.app, headers, datasetId, transId, [small]);
    expect(accepted.statusCode, accepted.body).toBe(202);
    const exactly = await uploadFiles(t.app, headers, datasetId, transId, [{ name: 'exact.jpg', data: Buffer.concat([small.data, Buffer.alloc(1000 - small.data.length)]) }]);
    expect(exactly.statusCode, exactly.body).toBe(202);
    const oneOver = await uploadFiles(t.app, headers, datasetId, transId, [{ name: 'over.jpg', data: Buffer.concat([small.data, Buffer.alloc(1001 - small.data.length)]) }]);
    expect(oneOver.statusCode, oneOver.body).toBe(413);

    expect((await processFiles(t.app, headers, datasetId, transId)).statusCode).toBe(202);
    expect(await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR'])).toMatchObject({ status_new: 'READY', n_images: 2 });
  });
});

describe('local upload: files per request', () => {
  let t: TestApp;
  let headers: Headers;

  beforeAll(async () => {
    t = await startTestApp({ env: { VIZDEX_MAX_REQUEST_FILES: '2' } });
    headers = await (await t.createUser('owner@example.com')).headers();
  });
  afterAll(async () => t.close());

  it('more files than VIZDEX_MAX_REQUEST_FILES in one request is 413 and stores nothing; split requests work', async () => {
    const files = await Promise.all([1, 2, 3, 4].map((seed) => jpg(`f${seed}.jpg`, seed)));
    const { datasetId, transId } = await draftDataset(t.app, headers, []);
    for (const count of [3, 4]) {
      const refused = await uploadFiles(t.app, headers, datasetId, transId, files.slice(0, count));
      expect(refused.statusCode, refused.body).toBe(413);
      expect((refused.json() as { detail: string }).detail).toMatch(/Too many files/);
    }
    expect(await mediaRows(t, datasetId)).toEqual([]);
    expectNoScratchFiles(t);

    expect((await uploadFiles(t.app, headers, datasetId, transId, files.slice(0, 2))).statusCode).toBe(202);
    expect((await uploadFiles(t.app, headers, datasetId, transId, files.slice(2, 4))).statusCode).toBe(202);
    expect((await processFiles(t.app, headers, datasetId, transId)).statusCode).toBe(202);
    expect(await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR'])).toMatchObject({ status_new: 'READY', n_images: 4 });
  });
});

describe('tasks of local uploads', () => {
  let t: TestApp;
  let owner: TestUser;
  let headers: Headers;
  const datasets: string[] = [];

  beforeAll(async () => {
    t = await startTestApp();
    owner = await t.createUser('owner@example.com');
    headers = await owner.headers();
    for (const name of ['first', 'second']) {
      const { datasetId, transId } = await draftDataset(t.app, headers, [await jpg('a.jpg', 1), await jpg('b.jpg', 2)], name);
      expect((await processFiles(t.app, headers, datasetId, transId)).statusCode).toBe(202);
      await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR']);
      datasets.push(datasetId);
    }
  });
  afterAll(async () => t.close());

  type TaskList = { tasks: Record<string, unknown>[]; total: number; page: number; page_size: number };
  const listTasks = async (query = '') => {
    const response = await t.app.inject({ method: 'GET', url: `/api/v1/tasks${query}`, headers });
    expect(response.statusCode, response.body).toBe(200);
    return response.json() as TaskList;
  };

  it('each process_files made one DATASET_CREATION task, COMPLETED at 100%', async () => {
    const page = await listTasks();
    expect(Object.keys(page).sort()).toEqual(['page', 'page_size', 'tasks', 'total']);
    expect(page).toMatchObject({ total: 2, page: 1 });
    expect(page.tasks).toHaveLength(2);
    // Newest first.
    expect(page.tasks.map((task) => task.dataset_id)).toEqual([datasets[1], datasets[0]]);
    for (const task of page.tasks) {
      expect(task).toMatchObject({
        task_type: 'DATASET_CREATION',
        status: 'COMPLETED',
        progress_percentage: 100,
        dataset_status: 'READY',
        created_by: 'owner@example.com',
        error_message: null,
      });
      expect(task.task_id).toEqual(expect.stringMatching(UUID));
      expect(task.start_time).toEqual(expect.any(String));
      expect(task.end_time).toEqual(expect.any(String));
      expect(Date.parse(task.end_time as string)).toBeGreaterThanOrEqual(Date.parse(task.start_time as string));
      for (const field of ['status_message', 'dataset_name']) expect(task).toHaveProperty(field);
    }
    expect(page.tasks.map((task) => task.dataset_name)).toEqual(['second', 'first']);
    const raw = (await t.app.inject({ method: 'GET', url: '/api/v1/tasks', headers })).body;
    expect(raw).toContain('"status":"COMPLETED"');
    expect(raw).not.toMatch(/": /);
  });

  it('filters by dataset_id, task_type and task_status', async () => {
    const one = await listTasks(`?dataset_id=${datasets[0]}`);
    expect(one.total).toBe(1);
    expect(one.tasks.map((task) => task.dataset_id)).toEqual([datasets[0]]);

    expect((await listTasks('?task_type=DATASET_CREATION')).total).toBe(2);
    expect(await listTasks('?task_type=EXPORT')).toMatchObject({ total: 0, tasks: [] });
    expect((await listTasks('?task_status=COMPLETED')).total).toBe(2);
    expect(await listTasks('?task_status=FAILED')).toMatchObject({ total: 0, tasks: [] });
    expect((await listTasks(`?dataset_id=${datasets[1]}&task_type=DATASET_CREATION&task_status=COMPLETED`)).total).toBe(1);
    expect((await listTasks(`?dataset_id=${crypto.randomUUID()}`)).total).toBe(0);
  });

  it('pages with page (1-based) and page_size', async () => {
    const first = await listTasks('?page=1&page_size=1');
    const second = await listTasks('?page=2&page_size=1');
    const third = await listTasks('?page=3&page_size=1');
    expect(first).toMatchObject({ total: 2, page: 1, page_size: 1 });
    expect(first.tasks).toHaveLength(1);
    expect(second.tasks).toHaveLength(1);
    expect(first.tasks[0]!.task_id).not.toBe(second.tasks[0]!.task_id);
    expect(third).toMatchObject({ total: 2, page: 3, tasks: [] });
  });

  it('rejects unknown filter values and bad paging with 422', async () => {
    for (const query of ['?task_type=NOPE', '?task_status=DONE', '?page=0', '?page_size=0', '?page=abc']) {
      const response = await t.app.inject({ method: 'GET', url: `/api/v1/tasks${query}`, headers });
      expect(response.statusCode, `${query}: ${response.body}`).toBe(422);
      expect(Array.isArray((response.json() as { detail: unknown }).detail)).toBe(true);
    }
  });
});
