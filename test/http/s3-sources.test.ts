import fs from 'node:fs';
import path from 'node:path';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, truncatedJpeg } from '../fixtures/media.js';
import { addMedia, datasetTasks, getDataset, readyDataset, type Headers } from '../helpers/flows.js';
import { makeTempDir, multipart, startTestApp, waitForStatus, type TestApp } from '../helpers/harness.js';
import { S3RVER_ACCESS_KEY_ID, startTestS3, startTestSts, type TestS3, type TestSts } from '../helpers/s3.js';

/**
 * S3 as a source over the real S3 protocol (s3rver on loopback): create a dataset from a bucket
 * path, add_media from a folder and from .csv, .txt and .parquet manifests, assume_role through a
 * loopback STS, and the seed's 400 and 500 answers.
 */

const BUCKET = 'media-bucket';
const ROLE = 'arn:aws:iam::123456789012:role/VizdexReader';

describe('S3 sources', () => {
  let s3: TestS3;
  let sts: TestSts;
  let t: TestApp;
  let headers: Headers;
  const savedEnv = { ...process.env };

  beforeAll(async () => {
    s3 = await startTestS3();
    sts = await startTestSts({ accessKeyId: S3RVER_ACCESS_KEY_ID, secretAccessKey: 'assumed-secret', sessionToken: 'assumed-session-token' });
    // The AWS default credential chain reads the process environment.
    Object.assign(process.env, s3.env);
    t = await startTestApp({ env: { ...s3.env, VIZDEX_STS_ENDPOINT: sts.endpoint } });
    const owner = await t.createUser('owner@example.com');
    headers = await owner.headers();

    await s3.createBucket(BUCKET);
    for (let i = 1; i <= 4; i++) await s3.put(BUCKET, `photos/2024/img_${i}.jpg`, await makeImage({ width: 200, height: 150, seed: 2000 + i }));
    await s3.put(BUCKET, 'photos/2024/nested/deep.png', await makeImage({ width: 200, height: 150, seed: 2010, format: 'png' }));
    await s3.put(BUCKET, 'photos/2024/notes.txt', 'not media');
    await s3.put(BUCKET, 'photos/2024-other/elsewhere.jpg', await makeImage({ seed: 2020 }));
    for (let i = 1; i <= 3; i++) await s3.put(BUCKET, `extra/more_${i}.jpg`, await makeImage({ width: 200, height: 150, seed: 2100 + i }));
    await s3.put(BUCKET, 'extra/broken.jpg', await truncatedJpeg());
    await s3.put(BUCKET, 'docs/readme.md', '# no media here');
  });
  afterAll(async () => {
    await t?.close();
    await sts?.close();
    await s3?.close();
    process.env = savedEnv;
  });

  const detail = (response: { json(): unknown }) => (response.json() as { detail: unknown }).detail;
  const createFromS3 = (fields: Record<string, string>) => {
    const body = multipart([], fields);
    return t.app.inject({ method: 'POST', url: '/api/v1/dataset', headers: { ...headers, ...body.headers }, payload: body.payload });
  };
  const uris = async (datasetId: string) =>
    (await t.container.db.selectFrom('media').select('original_media_uri').where('dataset_id', '=', datasetId).where('media_type', '!=', 'video_frame').execute())
      .map((m) => m.original_media_uri)
      .sort();
  const baseDataset = async () => readyDataset(t.app, headers, [{ name: 'local.jpg', data: await makeImage({ seed: 2500 }) }]);

  it('POST /dataset from a bucket path: {"dataset_id"}, then INDEXING → READY with every media object of the prefix', async () => {
    const response = await createFromS3({ dataset_name: 'from s3', bucket_path: `s3://${BUCKET}/photos/2024` });
    expect(response.statusCode, response.body).toBe(200);
    const { dataset_id } = response.json() as { dataset_id: string };
    expect(Object.keys(response.json() as object)).toEqual(['dataset_id']);
    const ready = await waitForStatus(t.app, headers, dataset_id, ['READY', 'ERROR']);
    expect(ready).toMatchObject({ display_name: 'from s3', source_type: 'BUCKET', status_new: 'READY', n_images: 5, n_failed_files: 0 });
    // A sibling prefix sharing the name ('2024-other') is not part of the folder; notes.txt is not media.
    expect(await uris(dataset_id)).toEqual([1, 2, 3, 4].map((i) => `s3://${BUCKET}/photos/2024/img_${i}.jpg`).concat(`s3://${BUCKET}/photos/2024/nested/deep.png`).sort());
    const [task] = await datasetTasks(t.app, headers, dataset_id);
    expect(task).toMatchObject({ task_type: 'DATASET_CREATION', status: 'COMPLETED' });
  });

  it('POST /dataset accepts the urlencoded form the seed\'s Python example sends', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/api/v1/dataset',
      headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ dataset_name: 'urlencoded', bucket_path: `s3://${BUCKET}/extra/` }).toString(),
    });
    expect(response.statusCode, response.body).toBe(200);
    const ready = await waitForStatus(t.app, headers, (response.json() as { dataset_id: string }).dataset_id, ['READY', 'ERROR']);
    expect(ready).toMatchObject({ status_new: 'READY', n_images: 3, n_failed_files: 1 });
    expect((ready.failed_files as { original_media_uri: string }[])[0]!.original_media_uri).toBe(`s3://${BUCKET}/extra/broken.jpg`);
  });

  it('POST /dataset refusals: missing fields 422, a prefix without media 400, an unreachable bucket 500 saying why; no dataset is left behind', async () => {
    const before = (await t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers })).json() as unknown[];
    const missing = await createFromS3({ dataset_name: 'x' });
    expect(missing.statusCode).toBe(422);
    expect(detail(missing)).toEqual([{ loc: ['body', 'bucket_path'], msg: 'Field required', type: 'missing' }]);
    const empty = await createFromS3({ dataset_name: 'x', bucket_path: `s3://${BUCKET}/docs/` });
    expect([empty.statusCode, detail(empty)]).toEqual([400, `Invalid S3 URI or no media files found at s3://${BUCKET}/docs/`]);
    const nothing = await createFromS3({ dataset_name: 'x', bucket_path: `s3://${BUCKET}/no/such/prefix/` });
    expect([nothing.statusCode, detail(nothing)]).toEqual([400, `Invalid S3 URI or no media files found at s3://${BUCKET}/no/such/prefix/`]);
    const invalid = await createFromS3({ dataset_name: 'x', bucket_path: 'my-bucket/images' });
    expect([invalid.statusCode, detail(invalid)]).toEqual([400, 'Invalid S3 URI or no media files found at my-bucket/images']);
    const local = await createFromS3({ dataset_name: 'x', bucket_path: '/etc' });
    expect([local.statusCode, detail(local)]).toEqual([400, 'Invalid S3 URI or no media files found at /etc']);
    const unreachable = await createFromS3({ dataset_name: 'x', bucket_path: 's3://no-such-bucket/images/' });
    expect(unreachable.statusCode).toBe(500);
    expect(detail(unreachable)).toMatch(/no-such-bucket/);
    expect(detail(unreachable)).toMatch(/does not exist or is not accessible/);
    const after = (await t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers })).json() as unknown[];
    expect(after).toHaveLength(before.length);
  });

  it('add_media from an S3 folder: only new objects are added, a second add of the same folder adds nothing new', async () => {
    const datasetId = await baseDataset();
    const response = await addMedia(t.app, headers, datasetId, { fields: { s3_uri: `s3://${BUCKET}/extra/` } });
    expect(response.statusCode, response.body).toBe(202);
    expect(await waitForStatus(t.app, headers, datasetId, ['PARTIAL INDEX', 'ERROR'])).toMatchObject({ status_new: 'PARTIAL INDEX', n_images: 4, n_failed_files: 1 });

    const again = await addMedia(t.app, headers, datasetId, { fields: { s3_uri: `s3://${BUCKET}/extra/`, auto_reindex: 'true' } });
    expect(again.statusCode, again.body).toBe(202);
    expect(await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR'])).toMatchObject({ status_new: 'READY', n_images: 4, n_failed_files: 1 });
    const [, addition] = await datasetTasks(t.app, headers, datasetId);
    expect(addition).toMatchObject({ task_type: 'MEDIA_ADDITION', status: 'COMPLETED', status_message: 'Added 0 files; 4 skipped (already in the dataset or not media)' });
  });

  it('add_media from .csv, .txt and .parquet manifests: full s3:// URIs and bare keys; a missing object is recorded with its reason', async () => {
    const csv = ['\uFEFFpath,label', `s3://${BUCKET}/photos/2024/img_1.jpg,cat`, '"photos/2024/img_2.jpg",dog', 'photos/2024/missing.jpg,none', ''].join('\r\n');
    await s3.put(BUCKET, 'manifests/list.csv', csv);
    await s3.put(BUCKET, 'manifests/list.txt', ['# two media', `s3://${BUCKET}/photos/2024/img_3.jpg`, '', 'photos/2024/nested/deep.png'].join('\n'));
    await s3.put(BUCKET, 'manifests/list.parquet', await parquetManifest([`s3://${BUCKET}/extra/more_1.jpg`, 'extra/more_2.jpg']));

    const datasetId = await baseDataset();
    for (const manifest of ['list.csv', 'list.txt', 'list.parquet']) {
      const response = await addMedia(t.app, headers, datasetId, { fields: { s3_uri: `s3://${BUCKET}/manifests/${manifest}` } });
      expect(response.statusCode, `${manifest}: ${response.body}`).toBe(202);
      await waitForStatus(t.app, headers, datasetId, ['PARTIAL INDEX', 'ERROR']);
    }
    const dataset = await getDataset(t.app, headers, datasetId);
    expect(dataset).toMatchObject({ status_new: 'PARTIAL INDEX', n_images: 7, n_failed_files: 1 });
    const failed = (dataset.failed_files as { original_media_uri: string; reason: string }[])[0]!;
    expect(failed.original_media_uri).toBe(`s3://${BUCKET}/photos/2024/missing.jpg`);
    expect(failed.reason).toMatch(/No such object/);
    expect(await uris(datasetId)).toEqual(
      [
        'local.jpg',
        `s3://${BUCKET}/extra/more_1.jpg`,
        `s3://${BUCKET}/extra/more_2.jpg`,
        `s3://${BUCKET}/photos/2024/img_1.jpg`,
        `s3://${BUCKET}/photos/2024/img_2.jpg`,
        `s3://${BUCKET}/photos/2024/img_3.jpg`,
        `s3://${BUCKET}/photos/2024/missing.jpg`,
        `s3://${BUCKET}/photos/2024/nested/deep.png`,
      ].sort(),
    );
  });

  it('a manifest read through the API reaches only S3: a path is a key of its bucket, a URL is refused and recorded', async () => {
    await s3.put(BUCKET, 'manifests/sneaky.txt', ['/etc/hostname.jpg', 'http://127.0.0.1:1/x.jpg', 'photos/2024/img_4.jpg'].join('\n'));
    const datasetId = await baseDataset();
    const response = await addMedia(t.app, headers, datasetId, { fields: { s3_uri: `s3://${BUCKET}/manifests/sneaky.txt` } });
    expect(response.statusCode, response.body).toBe(202);
    const dataset = await waitForStatus(t.app, headers, datasetId, ['PARTIAL INDEX', 'ERROR']);
    expect(dataset).toMatchObject({ status_new: 'PARTIAL INDEX', n_images: 2, n_failed_files: 2 });
    const failed = (dataset.failed_files as { original_media_uri: string; reason: string }[]).map((f) => [f.original_media_uri, f.reason]);
    expect(failed).toEqual([
      ['http://127.0.0.1:1/x.jpg', 'Only s3:// locations can be read through the API: http://127.0.0.1:1/x.jpg'],
      [`s3://${BUCKET}/etc/hostname.jpg`, expect.stringMatching(/No such object/)],
    ]);
  });

  it('add_media refusals: a folder without media or a missing manifest 400; a malformed manifest 400 with the reason; a missing bucket 500', async () => {
    const datasetId = await baseDataset();
    const empty = await addMedia(t.app, headers, datasetId, { fields: { s3_uri: `s3://${BUCKET}/docs/` } });
    expect([empty.statusCode, detail(empty)]).toEqual([400, `Invalid S3 URI or no media files found at s3://${BUCKET}/docs/`]);
    const noManifest = await addMedia(t.app, headers, datasetId, { fields: { s3_uri: `s3://${BUCKET}/manifests/absent.csv` } });
    expect([noManifest.statusCode, detail(noManifest)]).toEqual([400, `Invalid S3 URI or no media files found at s3://${BUCKET}/manifests/absent.csv`]);
    await s3.put(BUCKET, 'manifests/bad.csv', 'width,height\n10,20\n');
    const bad = await addMedia(t.app, headers, datasetId, { fields: { s3_uri: `s3://${BUCKET}/manifests/bad.csv` } });
    expect(bad.statusCode).toBe(400);
    expect(detail(bad)).toMatch(/^Invalid manifest s3:\/\/media-bucket\/manifests\/bad\.csv: CSV manifest has no column of media paths/);
    const missingBucket = await addMedia(t.app, headers, datasetId, { fields: { s3_uri: 's3://no-such-bucket/x/' } });
    expect(missingBucket.statusCode).toBe(500);
    expect(detail(missingBucket)).toMatch(/Bucket 'no-such-bucket' does not exist or is not accessible/);
    expect((await getDataset(t.app, headers, datasetId)).status_new).toBe('READY');
  });

  it('an add_media that fails part way leaves the dataset as it was, browsable, with the reason on its task', async () => {
    await s3.put(BUCKET, 'manifests/vanishing.txt', 'extra/more_3.jpg\n');
    const env = { ...s3.env, VIZDEX_JOB_MAX_ATTEMPTS: '1' };
    const setup = await startTestApp({ env });
    const setupHeaders = await (await setup.createUser('owner@example.com')).headers();
    const datasetId = await readyDataset(setup.app, setupHeaders, [{ name: 'kept.jpg', data: await makeImage({ seed: 2600 }) }]);
    await setup.app.close();
    await setup.container.close();

    // Accepted while no job runner is up; then the manifest disappears before the job reads it.
    const accepting = await startTestApp({ dataDir: setup.dataDir, env, jobs: false });
    const response = await addMedia(accepting.app, setupHeaders, datasetId, { fields: { s3_uri: `s3://${BUCKET}/manifests/vanishing.txt` } });
    expect(response.statusCode, response.body).toBe(202);
    await accepting.app.close();
    await accepting.container.close();
    await s3.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'manifests/vanishing.txt' }));

    const running = await startTestApp({ dataDir: setup.dataDir, env });
    try {
      const deadline = Date.now() + 30_000;
      let tasks = await datasetTasks(running.app, setupHeaders, datasetId);
      while (tasks[0]!.status !== 'FAILED' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        tasks = await datasetTasks(running.app, setupHeaders, datasetId);
      }
      expect(tasks[0]).toMatchObject({ task_type: 'MEDIA_ADDITION', status: 'FAILED' });
      expect(tasks[0]!.error_message).toMatch(/^Add media failed: .*No such object/);
      const dataset = await getDataset(running.app, setupHeaders, datasetId);
      expect(dataset).toMatchObject({ status_new: 'READY', n_images: 1, fatal_error_msg: null });
      const explore = await running.app.inject({ method: 'GET', url: `/api/v1/explore/${datasetId}`, headers: setupHeaders });
      expect(explore.statusCode, explore.body).toBe(200);
      expect((explore.json() as { clusters: { previews: { file_name: string }[] }[] }).clusters.flatMap((c) => c.previews.map((p) => p.file_name))).toEqual(['kept.jpg']);
      // The dataset takes the next add_media.
      const next = await addMedia(running.app, setupHeaders, datasetId, { fields: { s3_uri: `s3://${BUCKET}/extra/` } });
      expect(next.statusCode, next.body).toBe(202);
      expect(await waitForStatus(running.app, setupHeaders, datasetId, ['PARTIAL INDEX', 'ERROR'])).toMatchObject({ status_new: 'PARTIAL INDEX', n_images: 4 });
    } finally {
      await running.close();
    }
  });

  describe('assume_role', () => {
    // A server whose own credentials the bucket refuses: only the assumed role's can read it.
    let roleApp: TestApp;
    let roleHeaders: Headers;
    beforeAll(async () => {
      process.env.AWS_ACCESS_KEY_ID = 'SERVER-OWN-KEY';
      roleApp = await startTestApp({ env: { ...s3.env, AWS_ACCESS_KEY_ID: 'SERVER-OWN-KEY', VIZDEX_STS_ENDPOINT: sts.endpoint } });
      roleHeaders = await (await roleApp.createUser('owner@example.com')).headers();
    });
    afterAll(async () => {
      await roleApp?.close();
      process.env.AWS_ACCESS_KEY_ID = s3.env.AWS_ACCESS_KEY_ID;
    });
    const roleDataset = async () => readyDataset(roleApp.app, roleHeaders, [{ name: 'local.jpg', data: await makeImage({ seed: 2500 }) }]);

    it("reads the bucket with the role's temporary credentials, for that request only", async () => {
      const datasetId = await roleDataset();
      const without = await addMedia(roleApp.app, roleHeaders, datasetId, { fields: { s3_uri: `s3://${BUCKET}/extra/` } });
      expect(without.statusCode).toBe(500);
      expect(detail(without)).toMatch(/Access denied/);

      const calls = sts.calls.length;
      const response = await addMedia(roleApp.app, roleHeaders, datasetId, { fields: { s3_uri: `s3://${BUCKET}/extra/`, assume_role: ROLE } });
      expect(response.statusCode, response.body).toBe(202);
      expect(await waitForStatus(roleApp.app, roleHeaders, datasetId, ['PARTIAL INDEX', 'ERROR'])).toMatchObject({ status_new: 'PARTIAL INDEX', n_images: 4 });
      expect(sts.calls.slice(calls).map((c) => c.roleArn)).toEqual([ROLE]);
      // The credentials are gone once the import is over.
      const imports = await roleApp.container.db.selectFrom('media_imports').select('credentials_enc').where('dataset_id', '=', datasetId).execute();
      expect(imports.map((i) => i.credentials_enc)).toEqual([null]);
    });

    it('a role STS refuses: 500 saying so; a malformed ARN: 400', async () => {
      const datasetId = await roleDataset();
      const denied = await addMedia(roleApp.app, roleHeaders, datasetId, { fields: { s3_uri: `s3://${BUCKET}/extra/`, assume_role: 'arn:aws:iam::123456789012:role/denied' } });
      expect(denied.statusCode).toBe(500);
      expect(detail(denied)).toMatch(/^Could not assume role arn:aws:iam::123456789012:role\/denied: AccessDenied/);
      const malformed = await addMedia(roleApp.app, roleHeaders, datasetId, { fields: { s3_uri: `s3://${BUCKET}/extra/`, assume_role: 'admin' } });
      expect(malformed.statusCode).toBe(400);
      expect(detail(malformed)).toMatch(/admin/);
      const withFiles = await addMedia(roleApp.app, roleHeaders, datasetId, { files: [{ field: 'files[]', name: 'a.jpg', data: await makeImage({ seed: 1 }) }], fields: { assume_role: ROLE } });
      expect([withFiles.statusCode, detail(withFiles)]).toEqual([400, 'assume_role applies only to an s3_uri source']);
    });
  });
});

async function parquetManifest(entries: string[]): Promise<Buffer> {
  const dir = makeTempDir('vizdex-parquet-');
  const file = path.join(dir, 'manifest.parquet');
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const values = entries.map((e) => `('${e.replaceAll("'", "''")}', 1)`).join(', ');
    await connection.run(`COPY (SELECT * FROM (VALUES ${values}) AS t(s3_uri, n)) TO '${file}' (FORMAT parquet)`);
    return fs.readFileSync(file);
  } finally {
    connection.closeSync();
    instance.closeSync();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
