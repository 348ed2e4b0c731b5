import fs from 'node:fs';
import path from 'node:path';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadPath, signDownload } from '../../src/export/download-link.js';
import { Keyring } from '../../src/security/keyring.js';
import { makeImage, makeVideo } from '../fixtures/media.js';
import { draftDataset, processFiles, type Headers, type UploadFile } from '../helpers/flows.js';
import { makeTempDir, startTestApp, waitForStatus, type TestApp } from '../helpers/harness.js';
import { readZip } from '../helpers/zip.js';

interface ExportMetadata {
  info: Record<string, unknown>;
  media_items: {
    media_id: string;
    media_type: string;
    file_name: string;
    file_path: string;
    file_size: string;
    uniqueness_score: number | null;
    width: number;
    height: number;
    url: string;
    cluster_id: string | null;
    image_filename?: string;
    metadata_items: { type: string; properties: Record<string, unknown> }[];
  }[];
}

/**
 * Export through the API on a real indexed dataset (a duplicate family, distinct pictures and a
 * video): the seed's response codes, the zip's metadata.json / metadata.parquet / images, selective
 * export, and the signed download link.
 */
describe('export', () => {
  let t: TestApp;
  let headers: Headers;
  let viewerHeaders: Headers;
  let strangerHeaders: Headers;
  let datasetId: string;
  const names = { original: 'dup_original.jpg', copy: 'exact_copy.jpg', resized: 'dup_resized.jpg', video: 'clip.mp4' };

  beforeAll(async () => {
    t = await startTestApp();
    const owner = await t.createUser('owner@example.com');
    headers = await owner.headers();
    const viewer = await t.createUser('viewer@example.com');
    viewerHeaders = await viewer.headers();
    strangerHeaders = await (await t.createUser('stranger@example.com')).headers();

    const original = await makeImage({ width: 640, height: 480, seed: 1000 });
    const files: UploadFile[] = [
      { name: names.original, data: original },
      { name: names.copy, data: original },
      { name: names.resized, data: await sharp(original).resize(400).jpeg({ quality: 85 }).toBuffer() },
    ];
    for (let seed = 1; seed <= 10; seed++) files.push({ name: `distinct_${seed}.png`, data: await makeImage({ width: 320, height: 240, seed, format: 'png' }) });
    const videoDir = makeTempDir();
    await makeVideo(path.join(videoDir, names.video), { seconds: 2 });
    files.push({ name: names.video, data: fs.readFileSync(path.join(videoDir, names.video)) });
    fs.rmSync(videoDir, { recursive: true, force: true });

    const draft = await draftDataset(t.app, headers, files, 'export me');
    datasetId = draft.datasetId;
    expect((await processFiles(t.app, headers, datasetId, draft.transId)).statusCode).toBe(202);
    const dataset = await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR'], 120_000);
    expect(dataset).toMatchObject({ status_new: 'READY', n_images: 13, n_videos: 1 });

    const invite = await t.app.inject({
      method: 'PUT',
      url: `/api/v1/manage/${datasetId}/invite`,
      headers: { ...headers, 'content-type': 'application/json' },
      payload: JSON.stringify({ grant_to_user_email: 'viewer@example.com' }),
    });
    expect(invite.statusCode, invite.body).toBe(200);
  }, 180_000);
  afterAll(async () => t.close());

  const db = () => t.container.db;
  const mediaIdOf = async (fileName: string) =>
    (await db().selectFrom('media').select('id').where('dataset_id', '=', datasetId).where('file_name', '=', fileName).executeTakeFirstOrThrow()).id;
  const exportableCount = async () =>
    (await db().selectFrom('media').select('id').where('dataset_id', '=', datasetId).where('status', '=', 'READY').where('media_type', '!=', 'video').execute()).length;

  const startFull = (query: string, h: Headers = headers, id = datasetId) =>
    t.app.inject({ method: 'GET', url: `/api/v1/dataset/${id}/export_context_async?${query}`, headers: h });
  const startSelective = (body: unknown, query = 'export_format=json&include_images=false', h: Headers = headers) =>
    t.app.inject({
      method: 'POST',
      url: `/api/v1/dataset/${datasetId}/export_entities_async?${query}`,
      headers: { ...h, 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    });
  const status = (exportId: string, h: Headers = headers) =>
    t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/export_status?export_task_id=${exportId}`, headers: h });

  async function waitForExport(exportId: string, h: Headers = headers): Promise<{ status: string; download_uri: string | null }> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const response = await status(exportId, h);
      expect(response.statusCode, response.body).toBe(200);
      const body = response.json() as { status: string; download_uri: string | null; error_message: string | null };
      if (body.status === 'COMPLETED' || body.status === 'FAILED') {
        expect(body.status, body.error_message ?? '').toBe('COMPLETED');
        // The seed's script greps the first `"status":"…"`: exactly one such key, compact JSON.
        expect(response.body.match(/"status":/g)).toHaveLength(1);
        return body;
      }
      expect(body.download_uri).toBeNull();
      if (Date.now() > deadline) throw new Error(`export ${exportId} still ${body.status}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Starts, waits, downloads without credentials, and reads the zip back. */
  async function exportZip(start: Promise<{ statusCode: number; body: string; json(): unknown }>) {
    const response = await start;
    expect(response.statusCode, response.body).toBe(200);
    expect(response.body).toMatch(/^\{"id":"[0-9a-f-]{36}"\}$/);
    const { id } = response.json() as { id: string };
    const { download_uri } = await waitForExport(id);
    const download = await t.app.inject({ method: 'GET', url: download_uri! });
    expect(download.statusCode, download.body).toBe(200);
    expect(download.headers['content-type']).toBe('application/zip');
    return { id, downloadUri: download_uri!, disposition: String(download.headers['content-disposition']), entries: await readZip(download.rawPayload) };
  }

  const metadataOf = (entries: Map<string, Buffer>) => JSON.parse(entries.get('metadata.json')!.toString('utf8')) as ExportMetadata;

  describe('response codes of the seed', () => {
    it('401 without a token', async () => {
      const response = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/export_context_async?file_name=e.zip&export_format=json` });
      expect(response.statusCode).toBe(401);
      expect(response.json()).toHaveProperty('detail');
    });

    it('404 for a non-member and for an unknown dataset, on every export route', async () => {
      expect((await startFull('file_name=e.zip&export_format=json', strangerHeaders)).statusCode).toBe(404);
      expect((await startFull('file_name=e.zip&export_format=json', headers, '00000000-0000-4000-8000-000000000000')).statusCode).toBe(404);
      expect((await startSelective({ media_selection: [] }, undefined, strangerHeaders)).statusCode).toBe(404);
      expect((await status('00000000-0000-4000-8000-000000000000', strangerHeaders)).statusCode).toBe(404);
      expect((await startFull('file_name=e.zip&export_format=json', strangerHeaders)).json()).toEqual({ detail: 'Dataset not found' });
    });

    it('404 for an unknown export task', async () => {
      const response = await status('00000000-0000-4000-8000-000000000000');
      expect(response.statusCode).toBe(404);
      expect(response.json()).toEqual({ detail: 'Export task not found' });
    });

    it('409 when the dataset is not READY', async () => {
      const draft = await draftDataset(t.app, headers, [{ name: 'a.jpg', data: await makeImage({ seed: 5 }) }], 'draft');
      const full = await startFull('file_name=e.zip&export_format=json', headers, draft.datasetId);
      expect(full.statusCode).toBe(409);
      expect(full.json()).toEqual({ detail: 'Dataset is not in READY status (current status: NEW)' });
      const selective = await t.app.inject({
        method: 'POST',
        url: `/api/v1/dataset/${draft.datasetId}/export_entities_async`,
        headers: { ...headers, 'content-type': 'application/json' },
        payload: JSON.stringify({ media_selection: [{ type: 'media', payload: { media_ids: ['x'] } }] }),
      });
      expect(selective.statusCode).toBe(409);
    });

    it('422 for a bad export_format, a missing file_name or an empty selection', async () => {
      expect((await startFull('file_name=e.zip&export_format=csv')).statusCode).toBe(422);
      expect((await startFull('export_format=json')).statusCode).toBe(422);
      expect((await startSelective({ media_selection: [] })).statusCode).toBe(422);
      expect((await startSelective({ media_selection: [{ type: 'media', payload: {} }] })).statusCode).toBe(422);
    });

    it('400 for media or clusters that are not in the dataset', async () => {
      const media = await startSelective({ media_selection: [{ type: 'media', payload: { media_ids: ['nope'] } }] });
      expect(media.statusCode).toBe(400);
      expect(media.json()).toEqual({ detail: `Media not found in dataset ${datasetId}: nope` });
      const cluster = await startSelective({ media_selection: [{ type: 'cluster', payload: { cluster_id: 'nope', cluster_filters: { entity_type: 'IMAGES' }, exclude_media_ids: [] } }] });
      expect(cluster.statusCode).toBe(400);
    });
  });

  it('exports metadata.json as Visual Layer lays it out: info, issues per duplicate level, video_info, sizes, urls', async () => {
    const { entries, downloadUri, disposition } = await exportZip(startFull('file_name=my%20export.zip&export_format=json&include_images=false'));
    expect([...entries.keys()]).toEqual(['metadata.json']);
    expect(disposition).toContain('filename="my export.zip"');
    const base = downloadUri.slice(0, downloadUri.indexOf('/api/v1/'));
    const metadata = metadataOf(entries);
    const total = await exportableCount();
    expect(metadata.info).toMatchObject({
      schema_version: '1.1',
      dataset: 'export me',
      dataset_url: `${base}/dataset/${datasetId}/data`,
      exported_by: 'owner@example.com',
      total_media_items: total,
    });
    expect(typeof metadata.info.export_time).toBe('string');
    expect(typeof metadata.info.dataset_creation_time).toBe('string');
    expect(metadata.media_items).toHaveLength(total);

    for (const item of metadata.media_items) {
      expect(item.file_size).toMatch(/^\d+(\.\d\d)?(B|KB|MB)$/);
      expect(item.url).toBe(`${base}/dataset/${datasetId}/data/image/${item.media_id}`);
      expect(item.cluster_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(['image', 'video_frame']).toContain(item.media_type);
    }

    // One duplicates issue per threshold level the media is grouped at, with that level's group id.
    const stored = await db()
      .selectFrom('media_issues')
      .select(['media_id', 'group_id', 'threshold'])
      .where('dataset_id', '=', datasetId)
      .where('issue_type', '=', 'duplicates')
      .execute();
    const originalId = await mediaIdOf(names.original);
    const copyId = await mediaIdOf(names.copy);
    const itemOf = (id: string) => metadata.media_items.find((m) => m.media_id === id)!;
    const duplicateIssues = (id: string) =>
      itemOf(id)
        .metadata_items.filter((m) => m.type === 'issue' && m.properties.issue_type === 'duplicates')
        .map((m) => m.properties);
    for (const id of [originalId, copyId]) {
      const expected = stored.filter((s) => s.media_id === id).map((s) => ({ duplicate_threshold: s.threshold, duplicate_group_id: s.group_id }));
      expect(expected.length).toBeGreaterThanOrEqual(2);
      expect(duplicateIssues(id).map((p) => ({ duplicate_threshold: p.duplicate_threshold, duplicate_group_id: p.duplicate_group_id }))).toEqual(
        expect.arrayContaining(expected),
      );
      expect(duplicateIssues(id)).toHaveLength(expected.length);
    }
    // The exact copy and its original share a group at every level, 1.0 included.
    const groups = (id: string) => new Map(duplicateIssues(id).map((p) => [p.duplicate_threshold, p.duplicate_group_id]));
    expect(groups(copyId).get(1)).toBeDefined();
    expect(groups(copyId)).toEqual(groups(originalId));
    expect(itemOf(await mediaIdOf('distinct_3.png')).metadata_items.filter((m) => m.properties.issue_type === 'duplicates')).toEqual([]);

    const frames = metadata.media_items.filter((m) => m.media_type === 'video_frame');
    expect(frames.length).toBeGreaterThanOrEqual(1);
    for (const frame of frames) {
      expect(frame.file_path).toBe(`${names.video}/${frame.file_name}`);
      const info = frame.metadata_items.find((m) => m.type === 'video_info');
      expect(info?.properties).toMatchObject({ video_name: names.video });
      expect(typeof info?.properties.frame_timestamp).toBe('number');
    }
    const original = itemOf(originalId);
    expect(original).toMatchObject({ file_name: names.original, file_path: names.original, width: 640, height: 480, media_type: 'image' });
    expect(original.image_filename).toBeUndefined();
  });

  it('include_images puts every media under images/ with collision-free names, and viewers may export', async () => {
    const { entries } = await exportZip(startFull('file_name=e.zip&export_format=json&include_images=true', viewerHeaders));
    const metadata = metadataOf(entries);
    expect(metadata.info.exported_by).toBe('viewer@example.com');
    const images = [...entries.keys()].filter((name) => name.startsWith('images/'));
    expect(images).toHaveLength(metadata.media_items.length);
    const rows = await db().selectFrom('media').select(['id', 'file_size']).where('dataset_id', '=', datasetId).execute();
    const sizeOf = new Map(rows.map((r) => [r.id, r.file_size]));
    for (const item of metadata.media_items) {
      expect(item.image_filename).toBe(`${item.media_id}_${item.file_name}`);
      const bytes = entries.get(`images/${item.image_filename}`);
      expect(bytes?.length).toBe(sizeOf.get(item.media_id));
    }
    // The original and its exact copy: same bytes, two entries.
    const original = metadata.media_items.find((m) => m.file_name === names.original)!;
    const copy = metadata.media_items.find((m) => m.file_name === names.copy)!;
    expect(entries.get(`images/${original.image_filename}`)).toEqual(entries.get(`images/${copy.image_filename}`));
  });

  it('exports metadata.parquet that an independent reader reads: one row per media, flat columns', async () => {
    const { entries } = await exportZip(startFull('file_name=e.zip&export_format=parquet&include_images=true'));
    expect(entries.has('metadata.json')).toBe(false);
    const parquet = entries.get('metadata.parquet')!;
    const file = parquet.buffer.slice(parquet.byteOffset, parquet.byteOffset + parquet.byteLength) as ArrayBuffer;
    const columns = parquetMetadata(file).schema.map((s) => s.name);
    for (const column of ['media_id', 'image_filename', 'file_name', 'file_path', 'file_size', 'width', 'height', 'uniqueness_score', 'cluster_id', 'media_type', 'is_duplicate', 'duplicate_group_id', 'duplicate_groups', 'is_outlier', 'is_blur', 'is_dark', 'is_bright', 'video_name', 'frame_timestamp']) {
      expect(columns).toContain(column);
    }
    const rows = (await parquetReadObjects({ file })) as Record<string, unknown>[];
    expect(rows).toHaveLength(await exportableCount());
    for (const row of rows) expect(entries.has(`images/${String(row.image_filename)}`)).toBe(true);
    const copy = rows.find((r) => r.file_name === names.copy)!;
    expect(copy).toMatchObject({ is_duplicate: true, media_type: 'image', width: 640, height: 480 });
    expect((JSON.parse(String(copy.duplicate_groups)) as unknown[]).length).toBeGreaterThanOrEqual(2);
    const frame = rows.find((r) => r.media_type === 'video_frame')!;
    expect(frame.video_name).toBe(names.video);
  });

  it('selective export by media ids holds exactly those media', async () => {
    const ids = [await mediaIdOf('distinct_1.png'), await mediaIdOf(names.resized)];
    const { entries } = await exportZip(startSelective({ media_selection: [{ type: 'media', payload: { media_ids: ids } }] }, 'export_format=json&include_images=true'));
    const metadata = metadataOf(entries);
    expect(metadata.media_items.map((m) => m.media_id).sort()).toEqual([...ids].sort());
    expect(metadata.info.total_media_items).toBe(2);
    expect([...entries.keys()].filter((n) => n.startsWith('images/'))).toHaveLength(2);
  });

  it('selective export by cluster keeps its members minus the exclusions, merged with media items', async () => {
    const originalId = await mediaIdOf(names.original);
    const { cluster_id: clusterId } = await db()
      .selectFrom('media_clusters')
      .select('cluster_id')
      .where('dataset_id', '=', datasetId)
      .where('level', '=', 0)
      .where('media_id', '=', originalId)
      .executeTakeFirstOrThrow();
    const members = (await db().selectFrom('media_clusters').select('media_id').where('cluster_id', '=', clusterId).execute()).map((m) => m.media_id);
    expect(members.length).toBeGreaterThanOrEqual(2);
    const extra = await mediaIdOf('distinct_2.png');
    expect(members).not.toContain(extra);

    const { entries } = await exportZip(
      startSelective({
        media_selection: [
          { type: 'cluster', payload: { cluster_id: clusterId, cluster_filters: { entity_type: 'IMAGES' }, exclude_media_ids: [originalId] } },
          { type: 'media', payload: { media_ids: [extra] } },
        ],
      }),
    );
    const exported = metadataOf(entries).media_items.map((m) => m.media_id).sort();
    expect(exported).toEqual([...members.filter((id) => id !== originalId), extra].sort());
  });

  describe('the signed download link', () => {
    let exportId: string;
    let downloadUri: string;
    beforeAll(async () => {
      ({ id: exportId, downloadUri } = await exportZip(startFull('file_name=e.zip&export_format=json')));
    });

    it('is absolute, and works without credentials (but not when tampered with)', async () => {
      expect(downloadUri).toMatch(new RegExp(`^http://localhost(:\\d+)?/api/v1/dataset/${datasetId}/export_download/${exportId}\\?expires=\\d+&signature=`));
      const url = new URL(downloadUri);
      const signature = url.searchParams.get('signature')!;
      const tampered = `${url.pathname}?expires=${url.searchParams.get('expires')}&signature=${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BB' : 'AA'}`;
      const response = await t.app.inject({ method: 'GET', url: tampered });
      expect(response.statusCode).toBe(403);
      expect(response.json()).toHaveProperty('detail');
      // A later expiry with the old signature.
      const extended = `${url.pathname}?expires=${Number(url.searchParams.get('expires')) + 3600}&signature=${signature}`;
      expect((await t.app.inject({ method: 'GET', url: extended })).statusCode).toBe(403);
      // The same signature for another export.
      const other = `/api/v1/dataset/${datasetId}/export_download/00000000-0000-4000-8000-000000000000${url.search}`;
      expect((await t.app.inject({ method: 'GET', url: other })).statusCode).toBe(403);
      expect((await t.app.inject({ method: 'GET', url: url.pathname })).statusCode).toBe(403);
    });

    it('expires', async () => {
      const keyring = new Keyring(t.container.config.secretKey ?? fs.readFileSync(path.join(t.dataDir, 'secret.key'), 'utf8').trim());
      const grant = { datasetId, exportId, expires: Math.floor(Date.now() / 1000) - 60 };
      const response = await t.app.inject({ method: 'GET', url: downloadPath(grant, signDownload(keyring, grant)) });
      expect(response.statusCode).toBe(403);
      expect(response.json()).toEqual({ detail: 'This download link has expired; ask export_status for a new one' });
      const fresh = { ...grant, expires: grant.expires + 3600 };
      expect((await t.app.inject({ method: 'GET', url: downloadPath(fresh, signDownload(keyring, fresh)) })).statusCode).toBe(200);
    });

    it('shows up in /tasks as an EXPORT task', async () => {
      const response = await t.app.inject({ method: 'GET', url: `/api/v1/tasks?dataset_id=${datasetId}&task_type=EXPORT`, headers });
      expect(response.statusCode).toBe(200);
      const tasks = (response.json() as { tasks: { task_id: string; status: string }[] }).tasks;
      expect(tasks.find((task) => task.task_id === exportId)).toMatchObject({ status: 'COMPLETED' });
    });
  });

  it('ends FAILED with the reason (and no download_uri) when a media file is missing from the store', async () => {
    const mediaId = await mediaIdOf('distinct_9.png');
    const { blob_key } = await db().selectFrom('media').select('blob_key').where('id', '=', mediaId).executeTakeFirstOrThrow();
    await t.container.blobs.deletePrefix(blob_key);
    expect(await t.container.blobs.exists(blob_key)).toBe(false);
    const response = await startSelective({ media_selection: [{ type: 'media', payload: { media_ids: [mediaId] } }] }, 'export_format=json&include_images=true');
    expect(response.statusCode).toBe(200);
    const { id } = response.json() as { id: string };
    const deadline = Date.now() + 30_000;
    for (;;) {
      const body = (await status(id)).json() as { status: string; download_uri: string | null; error_message: string | null };
      expect(body.download_uri).toBeNull();
      if (body.status === 'FAILED') {
        expect(body.error_message).toMatch(/ENOENT|no such file/);
        break;
      }
      expect(['INITIALIZING', 'RUNNING']).toContain(body.status);
      if (Date.now() > deadline) throw new Error('export never failed');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
});
