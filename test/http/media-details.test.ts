import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertObject as insertObjectRow, type Box } from '../helpers/objects.js';
import { makeImage, makeVideo } from '../fixtures/media.js';
import { readyDataset, type UploadFile } from '../helpers/flows.js';
import { makeTempDir, startTestApp, type TestApp, type TestUser } from '../helpers/harness.js';

interface MediaDetails {
  media_id: string;
  media_type: string;
  file_name: string;
  width: number;
  height: number;
  media_uri: string;
  media_thumb_uri: string | null;
  video: { media_id: string; file_name: string; media_uri: string; frame_timestamp: number | null } | null;
  uniqueness_score: number | null;
  issues: { issue_type: string; confidence: number; duplicate_group_id: string | null; duplicate_threshold: number | null }[];
  clusters: { level: number; cluster_id: string }[];
  quality: Record<string, number | null>;
  labels: { name: string; source: string; confidence: number | null }[];
  caption: string | null;
  objects: { object_id: string; label: string | null; bbox: number[] | null; status: string }[];
  parent_media_id: string | null;
  bounding_box: number[] | null;
}

interface Groups {
  threshold: number;
  total: number;
  groups: { group_id: string; size: number; media: { media_id: string; file_name: string; width: number; coarse_cluster_id: string | null; media_thumb_uri: string }[] }[];
}

/** The UI's own reads: one media's details, issue counts, duplicate groups; explore's uniqueness order. */
describe('media details, issue summary and duplicate groups', () => {
  let t: TestApp;
  let owner: TestUser;
  let stranger: TestUser;
  let datasetId: string;
  const ids = new Map<string, string>();

  beforeAll(async () => {
    t = await startTestApp();
    owner = await t.createUser('owner@example.com');
    stranger = await t.createUser('stranger@example.com');
    const original = await makeImage({ width: 640, height: 480, seed: 1000 });
    const files: UploadFile[] = [
      { name: 'dup_original.jpg', data: original },
      { name: 'dup_resized.jpg', data: await sharp(original).resize(400).jpeg({ quality: 85 }).toBuffer() },
      { name: 'dark.jpg', data: await sharp(await makeImage({ width: 640, height: 480, seed: 2000 })).linear(0.08, 0).jpeg().toBuffer() },
    ];
    for (let seed = 1; seed <= 8; seed++) files.push({ name: `distinct_${seed}.png`, data: await makeImage({ width: 320, height: 240, seed, format: 'png' }) });
    const videoDir = makeTempDir();
    await makeVideo(path.join(videoDir, 'clip.mp4'), { seconds: 2 });
    files.push({ name: 'clip.mp4', data: fs.readFileSync(path.join(videoDir, 'clip.mp4')) });
    fs.rmSync(videoDir, { recursive: true, force: true });
    datasetId = await readyDataset(t.app, await owner.headers(), files, 'details');
    const rows = await t.container.db.selectFrom('media').select(['id', 'file_name']).where('dataset_id', '=', datasetId).execute();
    for (const row of rows) ids.set(row.file_name, row.id);
  }, 180_000);
  afterAll(async () => t.close());

  const get = async (url: string, user: TestUser = owner) => t.app.inject({ method: 'GET', url, headers: await user.headers() });
  const id = (name: string) => ids.get(name) ?? expect.unreachable(`no media ${name}`);

  it('answers one image with its metadata, issues (duplicates per level) and clusters at every level', async () => {
    const response = await get(`/api/v1/dataset/${datasetId}/media/${id('dup_resized.jpg')}`);
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json() as MediaDetails;
    expect(body).toMatchObject({ media_id: id('dup_resized.jpg'), media_type: 'image', file_name: 'dup_resized.jpg', width: 400, height: 300, video: null });
    expect(body.media_uri).toBe(`http://localhost:80/api/v1/dataset/${datasetId}/media/${id('dup_resized.jpg')}/file`);
    expect(body.media_thumb_uri).toMatch(/\/thumbnail$/);
    expect(body.clusters.map((c) => c.level)).toEqual([0, 1, 2, 3, 4]);
    const duplicates = body.issues.filter((i) => i.issue_type === 'duplicates');
    expect(duplicates.length).toBeGreaterThan(0);
    expect(duplicates.map((d) => d.duplicate_threshold)).toContain(0.96);
    expect(body.uniqueness_score).toBeLessThan(0.5);
    expect(typeof body.quality.blur).toBe('number');
    const dark = (await get(`/api/v1/dataset/${datasetId}/media/${id('dark.jpg')}`)).json() as MediaDetails;
    expect(dark.issues.find((i) => i.issue_type === 'dark')).toMatchObject({ duplicate_group_id: null });
  });

  it('answers a video frame with its video, the video file URI and its timestamp', async () => {
    const frame = await t.container.db
      .selectFrom('media')
      .select(['id', 'frame_timestamp'])
      .where('dataset_id', '=', datasetId)
      .where('media_type', '=', 'video_frame')
      .orderBy('frame_timestamp', 'desc')
      .executeTakeFirstOrThrow();
    const body = (await get(`/api/v1/dataset/${datasetId}/media/${frame.id}`)).json() as MediaDetails;
    expect(body.media_type).toBe('video_frame');
    expect(body.video).toMatchObject({ media_id: id('clip.mp4'), file_name: 'clip.mp4', frame_timestamp: frame.frame_timestamp });
    const video = await get(new URL(body.video!.media_uri).pathname);
    expect(video.statusCode).toBe(200);
    expect(video.headers['content-type']).toBe('video/mp4');
  });

  it('is 404 for an unknown media and for non-members, 401 without credentials', async () => {
    expect((await get(`/api/v1/dataset/${datasetId}/media/00000000-0000-0000-0000-000000000000`)).json()).toEqual({ detail: 'Media not found' });
    expect((await get(`/api/v1/dataset/${datasetId}/media/${id('dark.jpg')}`, stranger)).statusCode).toBe(404);
    expect((await get(`/api/v1/dataset/${datasetId}/issues_summary`, stranger)).statusCode).toBe(404);
    expect((await get(`/api/v1/dataset/${datasetId}/duplicate_groups`, stranger)).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/media/${id('dark.jpg')}` })).statusCode).toBe(401);
    // The static `media/id` lookup still wins over the media id parameter.
    const lookup = await get(`/api/v1/dataset/${datasetId}/media/id?original_media_uri=dark.jpg`);
    expect(lookup.body).toBe(id('dark.jpg'));
  });

  it('counts the media of each issue type, as the explore filters find them', async () => {
    const response = await get(`/api/v1/dataset/${datasetId}/issues_summary`);
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json() as { media_count: number; duplicate_threshold: number; duplicate_groups: number; issues: { issue_type: string; count: number }[] };
    expect(body.duplicate_threshold).toBe(0.96);
    expect(body.issues.map((i) => i.issue_type)).toEqual(['duplicates', 'outliers', 'blur', 'dark', 'bright']);
    const counts = Object.fromEntries(body.issues.map((i) => [i.issue_type, i.count]));
    for (const issue of ['duplicates', 'outliers', 'blur', 'dark', 'bright']) {
      const vql = encodeURIComponent(JSON.stringify([{ issues: { op: 'issue', value: issue } }]));
      const explored = (await get(`/api/v1/explore/${datasetId}?vql=${vql}`)).json() as { clusters: { previews: unknown[] }[] };
      expect(counts[issue], issue).toBe(explored.clusters.reduce((n, c) => n + c.previews.length, 0));
    }
    expect(counts.dark).toBe(1);
    expect(body.duplicate_groups).toBeGreaterThanOrEqual(1);
    const media = await t.container.db.selectFrom('media').select('id').where('dataset_id', '=', datasetId).where('status', '=', 'READY').execute();
    expect(body.media_count).toBe(media.length);
    expect((await get(`/api/v1/dataset/${datasetId}/issues_summary?duplicate_threshold=2`)).statusCode).toBe(422);
  });

  it('lists duplicate groups, largest picture first in each, with their coarsest cluster', async () => {
    const response = await get(`/api/v1/dataset/${datasetId}/duplicate_groups?threshold=0.95`);
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json() as Groups;
    expect(body.threshold).toBe(0.96);
    expect(body.total).toBe(body.groups.length);
    const family = body.groups.find((g) => g.media.some((m) => m.file_name === 'dup_resized.jpg'))!;
    expect(family.media.map((m) => m.file_name).slice(0, 2)).toEqual(['dup_original.jpg', 'dup_resized.jpg']);
    expect(family.size).toBe(family.media.length);
    const coarse = await t.container.db.selectFrom('media_clusters').select('cluster_id').where('media_id', '=', id('dup_original.jpg')).where('level', '=', 4).executeTakeFirstOrThrow();
    expect(family.media[0]!.coarse_cluster_id).toBe(coarse.cluster_id);
    const paged = (await get(`/api/v1/dataset/${datasetId}/duplicate_groups?page_size=1&page_number=5`)).json() as Groups;
    expect(paged.groups).toEqual([]);
    expect((await get(`/api/v1/dataset/${datasetId}/duplicate_groups?page_size=0`)).statusCode).toBe(422);
  });

  it("explore's sort_by=uniqueness puts the cluster with the most unique member first", async () => {
    const body = (await (await get(`/api/v1/explore/${datasetId}?sort_by=uniqueness`)).json()) as { clusters: { cluster_id: string; previews: { media_id: string }[] }[] };
    const rows = await t.container.db
      .selectFrom('media_clusters as mc')
      .innerJoin('media as m', 'm.id', 'mc.media_id')
      .select(['mc.cluster_id', 'm.uniqueness_score'])
      .where('mc.dataset_id', '=', datasetId)
      .where('mc.level', '=', 0)
      .execute();
    const best = new Map<string, number>();
    for (const r of rows) best.set(r.cluster_id, Math.max(best.get(r.cluster_id) ?? 0, r.uniqueness_score ?? 0));
    const scores = body.clusters.map((c) => best.get(c.cluster_id)!);
    expect(body.clusters.length).toBe(best.size);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    // The default order is unchanged (largest first), and a bad value is a 422.
    const bySize = (await (await get(`/api/v1/explore/${datasetId}`)).json()) as { clusters: { previews: unknown[] }[] };
    expect(bySize.clusters[0]!.previews.length).toBeGreaterThanOrEqual(2);
    expect((await get(`/api/v1/explore/${datasetId}?sort_by=random`)).statusCode).toBe(422);
    // Filters still apply.
    const vql = encodeURIComponent(JSON.stringify([{ text: { op: 'fts', value: 'distinct' } }]));
    const filtered = (await (await get(`/api/v1/explore/${datasetId}?sort_by=uniqueness&vql=${vql}`)).json()) as { clusters: { previews: { media_id: string }[] }[] };
    const names = new Map([...ids].map(([name, mediaId]) => [mediaId, name]));
    for (const c of filtered.clusters) for (const p of c.previews) expect(names.get(p.media_id)).toMatch(/^distinct_/);
  });

  it("answers the media's labels and caption (none until set)", async () => {
    const url = `/api/v1/dataset/${datasetId}/media/${id('distinct_1.png')}`;
    expect((await get(url)).json()).toMatchObject({ labels: [], caption: null });
    await t.container.db
      .insertInto('media_labels')
      .values([
        { id: crypto.randomUUID(), dataset_id: datasetId, media_id: id('distinct_1.png'), label: 'tree', source: 'Model', confidence: 0.75, import_id: null, created_at: new Date().toISOString() },
        { id: crypto.randomUUID(), dataset_id: datasetId, media_id: id('distinct_1.png'), label: 'cat', source: 'User', confidence: null, import_id: null, created_at: new Date().toISOString() },
      ])
      .execute();
    const put = await t.app.inject({ method: 'PUT', url: `${url}/caption`, headers: await owner.headers(), payload: { caption: 'a cat under a tree' } });
    expect(put.statusCode, put.body).toBe(200);
    const body = (await get(url)).json() as MediaDetails;
    expect(body.labels).toEqual([
      { name: 'cat', source: 'User', confidence: null },
      { name: 'tree', source: 'Model', confidence: 0.75 },
    ]);
    expect(body.caption).toBe('a cat under a tree');
  });

  it("answers an image's objects (label, box in pixels, status) and an object's image and box", async () => {
    const imageId = id('dup_original.jpg');
    // Object rows and labels as an annotation import leaves them (PENDING until a reindex cuts them out).
    const insertObject = (box: Box, units: 'px' | 'relative', status: 'PENDING' | 'FAILED', labels: [string, 'User' | 'Model'][]) =>
      insertObjectRow(t.container.db, imageId, box, { units, status, labels });
    const wheel = await insertObject([100, 120, 200, 150], 'px', 'PENDING', [['tyre', 'Model'], ['wheel', 'User']]);
    const unlabelled = await insertObject([0.5, 0.25, 0.25, 0.5], 'relative', 'PENDING', []);
    const failed = await insertObject([600, 400, 300, 300], 'px', 'FAILED', [['car', 'Model']]);

    const image = (await get(`/api/v1/dataset/${datasetId}/media/${imageId}`)).json() as MediaDetails;
    expect(image).toMatchObject({ parent_media_id: null, bounding_box: null });
    // The user's label wins over a model's; a relative box is in pixels of the 640×480 image; FAILED ones are listed.
    expect(image.objects).toEqual([
      { object_id: wheel, label: 'wheel', bbox: [100, 120, 200, 150], status: 'PENDING' },
      { object_id: unlabelled, label: null, bbox: [320, 120, 160, 240], status: 'PENDING' },
      { object_id: failed, label: 'car', bbox: [600, 400, 300, 300], status: 'FAILED' },
    ]);
    expect(((await get(`/api/v1/dataset/${datasetId}/media/${id('dark.jpg')}`)).json() as MediaDetails).objects).toEqual([]);

    const object = (await get(`/api/v1/dataset/${datasetId}/media/${unlabelled}`)).json() as MediaDetails;
    expect(object).toMatchObject({ media_type: 'object', parent_media_id: imageId, bounding_box: [320, 120, 160, 240], objects: [], labels: [], video: null });
    const labelled = (await get(`/api/v1/dataset/${datasetId}/media/${wheel}`)).json() as MediaDetails;
    expect(labelled).toMatchObject({ parent_media_id: imageId, bounding_box: [100, 120, 200, 150] });
    expect(labelled.labels.map((l) => l.name)).toEqual(['tyre', 'wheel']);
    // A corrected class shows in the image's list.
    const put = await t.app.inject({ method: 'PUT', url: `/api/v1/dataset/${datasetId}/media/${wheel}/labels`, headers: await owner.headers(), payload: { labels: ['rim'] } });
    expect(put.statusCode, put.body).toBe(200);
    const after = (await get(`/api/v1/dataset/${datasetId}/media/${imageId}`)).json() as MediaDetails;
    expect(after.objects[0]).toEqual({ object_id: wheel, label: 'rim', bbox: [100, 120, 200, 150], status: 'PENDING' });
  });
});
