import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTar, makeTarGz, makeZip } from '../fixtures/archives.js';
import { makeImage, truncatedJpeg } from '../fixtures/media.js';
import { addMedia, datasetTasks, draftDataset, getDataset, readyDataset, reindex, type Headers, type UploadFile } from '../helpers/flows.js';
import { startTestApp, waitForStatus, type TestApp, type TestUser } from '../helpers/harness.js';

/**
 * add_media and reindex through the API on the embedded default: the seed's status flow, every
 * source that needs no S3 (files[], zip, tar, tar.gz), and every row of its error table. The S3
 * sources are in s3-sources.test.ts.
 */

const images = async (prefix: string, count: number, firstSeed: number): Promise<UploadFile[]> =>
  Promise.all(Array.from({ length: count }, async (_, i) => ({ name: `${prefix}_${i + 1}.jpg`, data: await makeImage({ width: 200, height: 150, seed: firstSeed + i }) })));

interface ExploreBody {
  clusters: { n_images: number; previews: { file_name: string }[] }[];
}

describe('add_media and reindex', () => {
  let t: TestApp;
  let owner: TestUser;
  let headers: Headers;

  beforeAll(async () => {
    t = await startTestApp();
    owner = await t.createUser('owner@example.com');
    headers = await owner.headers();
  });
  afterAll(async () => t.close());

  const explore = async (datasetId: string): Promise<ExploreBody> => {
    const response = await t.app.inject({ method: 'GET', url: `/api/v1/explore/${datasetId}?threshold=0`, headers });
    expect(response.statusCode, response.body).toBe(200);
    return response.json() as ExploreBody;
  };
  const mediaRows = (datasetId: string) =>
    t.container.db.selectFrom('media').select(['id', 'file_name', 'original_media_uri', 'processed_at', 'status']).where('dataset_id', '=', datasetId).execute();

  it('files[]: READY → READ ONLY → PARTIAL INDEX with only the new media decoded, browsable at once; reindex → READY', async () => {
    const datasetId = await readyDataset(t.app, headers, await images('first', 6, 100));
    const before = new Map((await mediaRows(datasetId)).map((m) => [m.id, m.processed_at]));

    const added = await addMedia(t.app, headers, datasetId, { files: (await images('second', 4, 200)).map((f) => ({ ...f, field: 'files[]' })) });
    expect(added.statusCode, added.body).toBe(202);
    expect(added.body).toBe('');
    // The status changes before the answer: a poll right after the 202 never reads READY.
    expect((await getDataset(t.app, headers, datasetId)).status_new).toMatch(/^(READ ONLY|PARTIAL INDEX)$/);
    expect((await getDataset(t.app, headers, datasetId)).status).toMatch(/^(UPDATING|PENDING_INDEX)$/);

    const partial = await waitForStatus(t.app, headers, datasetId, ['PARTIAL INDEX', 'ERROR']);
    expect(partial).toMatchObject({ status_new: 'PARTIAL INDEX', status: 'PENDING_INDEX', n_images: 10, progress: 100 });

    // Earlier media were not decoded again; the new ones are, and every one is in a cluster.
    const after = await mediaRows(datasetId);
    for (const [id, processedAt] of before) expect(after.find((m) => m.id === id)?.processed_at).toBe(processedAt);
    expect(after.filter((m) => m.file_name.startsWith('second_') && m.status === 'READY')).toHaveLength(4);
    const browsed = await explore(datasetId);
    expect(browsed.clusters.reduce((n, c) => n + c.n_images, 0)).toBe(10);

    const [additionTask] = await datasetTasks(t.app, headers, datasetId);
    expect(additionTask).toMatchObject({ task_type: 'MEDIA_ADDITION', status: 'COMPLETED', progress_percentage: 100, status_message: 'Added 4 files' });

    expect((await reindex(t.app, headers, datasetId)).statusCode).toBe(202);
    const ready = await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR']);
    expect(ready).toMatchObject({ status_new: 'READY', n_images: 10 });
    const tasks = await datasetTasks(t.app, headers, datasetId);
    expect(tasks.map((task) => [task.task_type, task.status])).toEqual([
      ['REINDEX', 'COMPLETED'],
      ['MEDIA_ADDITION', 'COMPLETED'],
      ['DATASET_CREATION', 'COMPLETED'],
    ]);
  });

  it('auto_reindex=true goes on through INDEXING to READY, and the duplicate added later is found', async () => {
    const first = await images('base', 5, 300);
    const datasetId = await readyDataset(t.app, headers, first);
    const response = await addMedia(t.app, headers, datasetId, {
      files: [{ field: 'files[]', name: 'copy_of_base_1.jpg', data: first[0]!.data }, ...(await images('more', 2, 400)).map((f) => ({ ...f, field: 'files[]' }))],
      fields: { auto_reindex: 'true' },
    });
    expect(response.statusCode, response.body).toBe(202);
    const ready = await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR', 'PARTIAL INDEX']);
    expect(ready).toMatchObject({ status_new: 'READY', n_images: 8 });
    const tasks = await datasetTasks(t.app, headers, datasetId);
    expect(tasks.slice(0, 2).map((task) => [task.task_type, task.status])).toEqual([
      ['REINDEX', 'COMPLETED'],
      ['MEDIA_ADDITION', 'COMPLETED'],
    ]);
    const duplicates = await t.container.db
      .selectFrom('media_issues')
      .innerJoin('media', 'media.id', 'media_issues.media_id')
      .select('media.file_name')
      .where('media_issues.dataset_id', '=', datasetId)
      .where('issue_type', '=', 'duplicates')
      .where('threshold', '=', 0.96)
      .execute();
    expect(duplicates.map((d) => d.file_name).sort()).toEqual(['base_1.jpg', 'copy_of_base_1.jpg']);
  });

  it.each([
    ['zip', 'media.zip', makeZip],
    ['tar', 'media.tar', makeTar],
    ['tar.gz', 'media.tar.gz', makeTarGz],
  ] as const)('archive (%s): entries become media named by their path inside; junk skipped, a corrupt entry recorded', async (_format, archiveName, make) => {
    const datasetId = await readyDataset(t.app, headers, await images('seed', 3, 500));
    const archive = make([
      { name: 'cats/cat_1.jpg', data: await makeImage({ seed: 600 }) },
      { name: 'cats/nested/cat_2.png', data: await makeImage({ seed: 601, format: 'png' }) },
      { name: 'dogs/dog_1.webp', data: await makeImage({ seed: 602, format: 'webp' }) },
      { name: 'dogs/broken.jpg', data: await truncatedJpeg() },
      { name: 'README.txt', data: Buffer.from('not media') },
      { name: '__MACOSX/._cat_1.jpg', data: Buffer.from('resource fork') },
    ]);
    const response = await addMedia(t.app, headers, datasetId, { files: [{ field: 'archive', name: archiveName, data: archive }] });
    expect(response.statusCode, response.body).toBe(202);
    const partial = await waitForStatus(t.app, headers, datasetId, ['PARTIAL INDEX', 'ERROR']);
    expect(partial).toMatchObject({ status_new: 'PARTIAL INDEX', n_images: 6, n_failed_files: 1 });
    expect((partial.failed_files as { original_media_uri: string }[]).map((f) => f.original_media_uri)).toEqual(['dogs/broken.jpg']);
    const uris = (await mediaRows(datasetId)).map((m) => m.original_media_uri).sort();
    expect(uris).toEqual(['cats/cat_1.jpg', 'cats/nested/cat_2.png', 'dogs/broken.jpg', 'dogs/dog_1.webp', 'seed_1.jpg', 'seed_2.jpg', 'seed_3.jpg']);
    const [task] = await datasetTasks(t.app, headers, datasetId);
    expect(task).toMatchObject({ task_type: 'MEDIA_ADDITION', status: 'COMPLETED' });
    expect(task!.status_message).toBe('Added 3 files; 1 could not be processed; 1 skipped (already in the dataset or not media)');
    // The stored archive is removed once its media are in.
    const stored = await t.container.db.selectFrom('media_imports').select('location').where('dataset_id', '=', datasetId).executeTakeFirstOrThrow();
    expect(stored.location).toMatch(new RegExp(`^datasets/${datasetId}/imports/.+/archive\\.${_format.replace('.', '\\.')}$`));
    expect(await t.container.blobs.exists(stored.location)).toBe(false);
  });

  describe('refusals, word for word', () => {
    let datasetId: string;
    let image: Buffer;
    beforeAll(async () => {
      datasetId = await readyDataset(t.app, headers, await images('refusal', 3, 700));
      image = await makeImage({ seed: 799 });
    });

    const detail = (response: { json(): unknown }) => (response.json() as { detail: unknown }).detail;

    it('no media source, or more than one: 400', async () => {
      const none = await addMedia(t.app, headers, datasetId, { fields: { auto_reindex: 'true' } });
      expect(none.statusCode).toBe(400);
      expect(detail(none)).toBe('Exactly one media source must be provided: files[], s3_uri, or archive');
      const bare = await t.app.inject({ method: 'POST', url: `/api/v1/dataset/${datasetId}/add_media`, headers });
      expect([bare.statusCode, detail(bare)]).toEqual([400, 'Exactly one media source must be provided: files[], s3_uri, or archive']);
      const two = await addMedia(t.app, headers, datasetId, { files: [{ field: 'files[]', name: 'a.jpg', data: image }], fields: { s3_uri: 's3://bucket/folder/' } });
      expect([two.statusCode, detail(two)]).toEqual([400, 'Exactly one media source must be provided: files[], s3_uri, or archive']);
      const archives = await addMedia(t.app, headers, datasetId, {
        files: [
          { field: 'archive', name: 'a.zip', data: makeZip([{ name: 'a.jpg', data: image }]) },
          { field: 'archive', name: 'b.zip', data: makeZip([{ name: 'b.jpg', data: image }]) },
        ],
      });
      expect([archives.statusCode, detail(archives)]).toEqual([400, 'Exactly one media source must be provided: files[], s3_uri, or archive']);
    });

    it('an invalid S3 URI: 400', async () => {
      for (const uri of ['not-a-uri', 'http://example.com/x/', 's3://', '/etc/']) {
        const response = await addMedia(t.app, headers, datasetId, { fields: { s3_uri: uri } });
        expect([response.statusCode, detail(response)]).toEqual([400, `Invalid S3 URI or no media files found at ${uri}`]);
      }
    });

    it('a dataset never indexed has no embedding config: 400', async () => {
      const { datasetId: draftId } = await draftDataset(t.app, headers, [{ name: 'a.jpg', data: image }]);
      const response = await addMedia(t.app, headers, draftId, { files: [{ field: 'files[]', name: 'b.jpg', data: image }] });
      expect([response.statusCode, detail(response)]).toEqual([400, `Dataset ${draftId} has no embedding_config — index the dataset first.`]);
    });

    it('unsupported files name every bad file and store nothing; archives are refused in files[]', async () => {
      const response = await addMedia(t.app, headers, datasetId, {
        files: [
          { field: 'files[]', name: 'good.jpg', data: image },
          { field: 'files[]', name: 'notes.txt', data: Buffer.from('text') },
          { field: 'files[]', name: 'more.zip', data: makeZip([{ name: 'x.jpg', data: image }]) },
        ],
      });
      expect(response.statusCode).toBe(400);
      expect(detail(response)).toBe(
        "Unsupported file format; nothing from this request was stored: notes.txt (unsupported file extension '.txt'); more.zip (archives are sent in the `archive` field, one per request)",
      );
      expect((await getDataset(t.app, headers, datasetId)).status_new).toBe('READY');
      expect(await mediaRows(datasetId)).toHaveLength(3);
    });

    it('hostile or unreadable archives: 400 with the reason, nothing stored', async () => {
      const slip = await addMedia(t.app, headers, datasetId, {
        files: [{ field: 'archive', name: 'slip.zip', data: makeZip([{ name: 'ok.jpg', data: image }, { name: '../../evil.jpg', data: image }]) }],
      });
      expect(slip.statusCode).toBe(400);
      expect(detail(slip)).toMatch(/^Archive slip\.zip was refused: .*\.\.\/\.\.\/evil\.jpg/);
      const corrupt = await addMedia(t.app, headers, datasetId, { files: [{ field: 'archive', name: 'corrupt.zip', data: Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(100, 7)]) }] });
      expect(corrupt.statusCode).toBe(400);
      expect(detail(corrupt)).toMatch(/^Archive corrupt\.zip cannot be read: /);
      const notArchive = await addMedia(t.app, headers, datasetId, { files: [{ field: 'archive', name: 'photo.jpg', data: image }] });
      expect([notArchive.statusCode, detail(notArchive)]).toEqual([400, 'The archive must be a .zip, .tar or .tar.gz file: photo.jpg']);
      const empty = await addMedia(t.app, headers, datasetId, { files: [{ field: 'archive', name: 'docs.zip', data: makeZip([{ name: 'a.txt', data: Buffer.from('x') }]) }] });
      expect([empty.statusCode, detail(empty)]).toEqual([400, 'No media files found in archive docs.zip']);
      expect((await getDataset(t.app, headers, datasetId)).status_new).toBe('READY');
      expect(await mediaRows(datasetId)).toHaveLength(3);
    });

    it('options of the wrong type: 422 in the FastAPI shape', async () => {
      const response = await addMedia(t.app, headers, datasetId, { files: [{ field: 'files[]', name: 'a.jpg', data: image }], fields: { auto_reindex: 'maybe', batch_n_images: '-3' } });
      expect(response.statusCode).toBe(422);
      expect(detail(response)).toEqual([
        { loc: ['body', 'auto_reindex'], msg: 'Input should be a valid boolean', type: 'bool_parsing' },
        { loc: ['body', 'batch_n_images'], msg: 'Input should be a valid non-negative integer', type: 'int_parsing' },
      ]);
    });

    it('reindex is possible only from PARTIAL INDEX: 409', async () => {
      const response = await reindex(t.app, headers, datasetId);
      expect([response.statusCode, detail(response)]).toEqual([409, `Dataset ${datasetId} is READY; reindex is possible only when it is PARTIAL INDEX`]);
    });

    it('a viewer may not add media (403); a non-member cannot see the dataset (404), even with a malformed request', async () => {
      const viewer = await t.createUser('viewer@example.com');
      const invite = await t.app.inject({ method: 'PUT', url: `/api/v1/manage/${datasetId}/invite`, headers, payload: { grant_to_user_email: 'viewer@example.com', role: 'viewer' } });
      expect(invite.statusCode, invite.body).toBe(200);
      const asViewer = await addMedia(t.app, await viewer.headers(), datasetId, { files: [{ field: 'files[]', name: 'a.jpg', data: image }] });
      expect(asViewer.statusCode).toBe(403);
      expect((await reindex(t.app, await viewer.headers(), datasetId)).statusCode).toBe(403);

      const stranger = await t.createUser('stranger@example.com');
      const asStranger = await addMedia(t.app, await stranger.headers(), datasetId, { files: [{ field: 'files[]', name: 'a.jpg', data: image }] });
      expect([asStranger.statusCode, detail(asStranger)]).toEqual([404, 'Dataset not found']);
      const malformed = await t.app.inject({ method: 'POST', url: `/api/v1/dataset/${datasetId}/add_media`, headers: { ...(await stranger.headers()), 'content-type': 'multipart/form-data; boundary=x' }, payload: 'garbage' });
      expect([malformed.statusCode, detail(malformed)]).toEqual([404, 'Dataset not found']);
      const missing = await addMedia(t.app, headers, '00000000-0000-4000-8000-000000000000', { fields: { s3_uri: 's3://bucket/x/' } });
      expect([missing.statusCode, detail(missing)]).toEqual([404, 'Dataset not found']);
      expect((await reindex(t.app, await stranger.headers(), datasetId)).statusCode).toBe(404);
    });
  });
});

describe('add_media while another operation runs', () => {
  // No job runner: an accepted add_media stays in progress, holding the dataset's lock.
  let t: TestApp;
  let headers: Headers;
  let datasetId: string;
  let image: Buffer;

  beforeAll(async () => {
    const setup = await startTestApp();
    const user = await setup.createUser('owner@example.com');
    headers = await user.headers();
    datasetId = await readyDataset(setup.app, headers, await images('locked', 3, 900));
    const dataDir = setup.dataDir;
    await setup.app.close();
    await setup.container.close();
    t = await startTestApp({ dataDir, jobs: false });
    image = await makeImage({ seed: 999 });
  });
  afterAll(async () => t.close());

  it('two concurrent add_media: one is accepted, the other gets 409; reindex is blocked too', async () => {
    const send = (name: string) => addMedia(t.app, headers, datasetId, { files: [{ field: 'files[]', name, data: image }] });
    const responses = await Promise.all([send('one.jpg'), send('two.jpg')]);
    expect(responses.map((r) => r.statusCode).sort()).toEqual([202, 409]);
    const refused = responses.find((r) => r.statusCode === 409)!;
    expect(refused.json()).toEqual({ detail: "Operation 'add_media' is blocked while MEDIA_ADDITION task is running" });

    expect((await getDataset(t.app, headers, datasetId)).status_new).toBe('READ ONLY');
    const third = await send('three.jpg');
    expect([third.statusCode, third.json()]).toEqual([409, { detail: "Operation 'add_media' is blocked while MEDIA_ADDITION task is running" }]);
    const blockedReindex = await reindex(t.app, headers, datasetId);
    expect([blockedReindex.statusCode, blockedReindex.json()]).toEqual([409, { detail: "Operation 'reindex' is blocked while MEDIA_ADDITION task is running" }]);

    // Nothing of the refused requests was stored.
    const media = await t.container.db.selectFrom('media').select('file_name').where('dataset_id', '=', datasetId).execute();
    expect(media.map((m) => m.file_name).filter((n) => ['one.jpg', 'two.jpg', 'three.jpg'].includes(n))).toHaveLength(1);

    // Browsing and searching still work while READ ONLY.
    const explore = await t.app.inject({ method: 'GET', url: `/api/v1/explore/${datasetId}`, headers });
    expect(explore.statusCode, explore.body).toBe(200);
    const anchor = (await t.container.db.selectFrom('media').select('id').where('dataset_id', '=', datasetId).where('status', '=', 'READY').executeTakeFirstOrThrow()).id;
    const search = await t.app.inject({ method: 'GET', url: `/api/v1/explore/${datasetId}?anchor_media_id=${anchor}&anchor_type=MEDIA`, headers });
    expect(search.statusCode, search.body).toBe(200);
  });
});

describe('add_media switched off', () => {
  let t: TestApp;
  afterAll(async () => t.close());

  it('VIZDEX_ADD_MEDIA_ENABLED=false: 403 "Add media feature is not enabled"', async () => {
    t = await startTestApp({ env: { VIZDEX_ADD_MEDIA_ENABLED: 'false' } });
    const user = await t.createUser('owner@example.com');
    const headers = await user.headers();
    const datasetId = await readyDataset(t.app, headers, await images('off', 2, 1000));
    const response = await addMedia(t.app, headers, datasetId, { files: [{ field: 'files[]', name: 'a.jpg', data: await makeImage({ seed: 1099 }) }] });
    expect([response.statusCode, response.json()]).toEqual([403, { detail: 'Add media feature is not enabled' }]);
  });
});
