import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, makeVideo } from '../fixtures/media.js';
import { draftDataset, processFiles, type UploadFile } from '../helpers/flows.js';
import { makeTempDir, multipart, startTestApp, waitForStatus, type TestApp, type TestUser } from '../helpers/harness.js';

interface Preview {
  type: string;
  media_id: string;
  media_uri: string;
  media_thumb_uri: string;
  file_name: string;
  relevance_score: number | null;
  width: number;
  height: number;
}
interface Cluster {
  cluster_id: string;
  type: string;
  n_images: number;
  n_videos: number;
  relevance_score: number | null;
  previews: Preview[];
}
interface ExploreBody {
  clusters: Cluster[];
  metadata: Record<string, unknown>;
}

/** Explore, search and media serving over a real indexed dataset (SQLite, local blobs, built-in model). */
describe('explore and search', () => {
  let t: TestApp;
  let owner: TestUser;
  let stranger: TestUser;
  let datasetId: string;
  let queryImage: Buffer;
  const ids = new Map<string, string>();

  beforeAll(async () => {
    t = await startTestApp();
    owner = await t.createUser('owner@example.com', { password: 'correct horse battery staple' });
    stranger = await t.createUser('stranger@example.com');
    const headers = await owner.headers();
    const original = await makeImage({ width: 640, height: 480, seed: 1000 });
    queryImage = await makeImage({ width: 640, height: 480, seed: 5000 });
    const files: UploadFile[] = [
      { name: 'dup_original.jpg', data: original },
      { name: 'dup_resized.jpg', data: await sharp(original).resize(400).jpeg({ quality: 85 }).toBuffer() },
      { name: 'exact_copy.jpg', data: original },
      { name: 'query_copy.jpg', data: await sharp(queryImage).resize(480).jpeg({ quality: 70 }).toBuffer() },
      { name: 'dark.jpg', data: await sharp(await makeImage({ width: 640, height: 480, seed: 2000 })).linear(0.08, 0).jpeg().toBuffer() },
      { name: 'blurred.jpg', data: await sharp(await makeImage({ width: 640, height: 480, seed: 3000 })).blur(12).jpeg().toBuffer() },
    ];
    for (let seed = 1; seed <= 14; seed++) files.push({ name: `distinct_${seed}.png`, data: await makeImage({ width: 320, height: 240, seed, format: 'png' }) });
    const videoDir = makeTempDir();
    await makeVideo(path.join(videoDir, 'clip.mp4'), { seconds: 2 });
    files.push({ name: 'clip.mp4', data: fs.readFileSync(path.join(videoDir, 'clip.mp4')) });
    fs.rmSync(videoDir, { recursive: true, force: true });

    const draft = await draftDataset(t.app, headers, files, 'explore me');
    datasetId = draft.datasetId;
    expect((await processFiles(t.app, headers, datasetId, draft.transId)).statusCode).toBe(202);
    const dataset = await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR'], 120_000);
    expect(dataset.status_new).toBe('READY');
    const rows = await t.container.db.selectFrom('media').select(['id', 'file_name']).where('dataset_id', '=', datasetId).execute();
    for (const row of rows) ids.set(row.file_name, row.id);
  }, 180_000);
  afterAll(async () => t.close());

  const get = async (url: string, user: TestUser = owner, extra: Record<string, string> = {}) => t.app.inject({ method: 'GET', url, headers: { ...(await user.headers()), ...extra } });
  const explore = async (query: Record<string, string> = {}) => {
    const response = await get(`/api/v1/explore/${datasetId}?${new URLSearchParams(query).toString()}`);
    expect(response.statusCode, response.body).toBe(200);
    return response.json() as ExploreBody;
  };
  const vql = (filters: unknown[]) => ({ vql: JSON.stringify(filters) });
  const fileNames = (body: ExploreBody) => body.clusters.flatMap((c) => c.previews.map((p) => p.file_name)).sort();
  const id = (name: string) => {
    const value = ids.get(name);
    if (!value) throw new Error(`no media ${name}`);
    return value;
  };

  it('answers the SPEC §6 shape with absolute URIs, largest cluster first, representative first', async () => {
    const body = await explore();
    expect(body.clusters.length).toBeGreaterThan(0);
    const cluster = body.clusters[0]!;
    expect(Object.keys(cluster).sort()).toEqual(
      ['captions', 'cluster_id', 'labels', 'n_images', 'n_objects', 'n_videos', 'previews', 'relevance_score', 'relevance_score_type', 'similarity_threshold', 'type', 'user_tags'].sort(),
    );
    expect(cluster).toMatchObject({ type: 'IMAGES', relevance_score_type: 'cosine_distance', labels: [], user_tags: [], captions: [] });
    const preview = cluster.previews[0]!;
    expect(Object.keys(preview).sort()).toEqual(
      ['bounding_box', 'caption', 'file_name', 'height', 'media_id', 'media_thumb_uri', 'media_uri', 'relevance_score', 'relevance_score_type', 'type', 'width'].sort(),
    );
    expect(preview.media_uri).toBe(`http://localhost:80/api/v1/dataset/${datasetId}/media/${preview.media_id}/file`);
    expect(preview.media_thumb_uri).toMatch(/^http:\/\/localhost:80\/api\/v1\/dataset\/.+\/thumbnail$/);
    const sizes = body.clusters.map((c) => c.n_images + c.previews.filter((p) => p.type === 'VIDEO_FRAME').length);
    expect(body.clusters[0]!.previews.length).toBeGreaterThanOrEqual(body.clusters.at(-1)!.previews.length);
    expect(sizes[0]).toBeGreaterThanOrEqual(3);
    // The duplicate family clusters together at the finest level, its representative first.
    const family = body.clusters.find((c) => c.previews.some((p) => p.file_name === 'dup_resized.jpg'))!;
    expect(family.previews.map((p) => p.file_name)).toEqual(expect.arrayContaining(['dup_original.jpg', 'dup_resized.jpg', 'exact_copy.jpg']));
    const representative = await t.container.db.selectFrom('clusters').select('representative_media_id').where('cluster_id', '=', family.cluster_id).executeTakeFirstOrThrow();
    expect(family.previews[0]!.media_id).toBe(representative.representative_media_id);
    expect(body.metadata).toMatchObject({ page_number: 0, page_size: 100 });
  });

  it('shows each level\'s clusters, every media once per level', async () => {
    for (const threshold of ['0', '2', '4']) {
      const body = await explore({ threshold });
      const all = body.clusters.flatMap((c) => c.previews.map((p) => p.media_id));
      expect(new Set(all).size).toBe(all.length);
      const level = await t.container.db.selectFrom('clusters').select('cluster_id').where('dataset_id', '=', datasetId).where('level', '=', Number(threshold)).execute();
      expect(body.clusters.map((c) => c.cluster_id).sort()).toEqual(level.map((c) => c.cluster_id).sort());
    }
    const coarse = (await explore({ threshold: '4' })).clusters.length;
    const fine = (await explore({ threshold: '0' })).clusters.length;
    expect(coarse).toBeLessThanOrEqual(fine);
  });

  it('pages 100 clusters at a time and validates the parameters', async () => {
    expect((await explore({ page_number: '1' })).clusters).toEqual([]);
    expect((await get(`/api/v1/explore/${datasetId}?threshold=5`)).statusCode).toBe(422);
    expect((await get(`/api/v1/explore/${datasetId}?entity_type=CATS`)).statusCode).toBe(422);
    expect((await explore({ entity_type: 'OBJECTS' })).clusters).toEqual([]);
    const videos = await explore({ entity_type: 'VIDEOS' });
    expect(videos.clusters.length).toBeGreaterThan(0);
    for (const c of videos.clusters) for (const p of c.previews) expect(p.type).toBe('VIDEO_FRAME');
  });

  it('filters by issues in and out', async () => {
    expect(fileNames(await explore(vql([{ issues: { op: 'issue', value: 'dark', mode: 'in' } }])))).toEqual(['dark.jpg']);
    expect(fileNames(await explore(vql([{ issues: { op: 'issue', value: 'blur', mode: 'in' } }])))).toContain('blurred.jpg');
    const duplicates = fileNames(await explore(vql([{ issues: { op: 'issue', value: 'duplicates' } }])));
    expect(duplicates).toEqual(expect.arrayContaining(['dup_original.jpg', 'dup_resized.jpg', 'exact_copy.jpg']));
    expect(duplicates).not.toContain('distinct_1.png');
    const notDark = fileNames(await explore(vql([{ issues: { op: 'issue', value: 'dark', mode: 'out' } }])));
    expect(notDark).not.toContain('dark.jpg');
    expect(notDark).toContain('distinct_1.png');
    const outliers = await t.container.db.selectFrom('media_issues').select('media_id').where('dataset_id', '=', datasetId).where('issue_type', '=', 'outliers').execute();
    const outlierBody = await explore(vql([{ issues: { op: 'issue', value: 'outliers' } }]));
    expect(outlierBody.clusters.flatMap((c) => c.previews.map((p) => p.media_id)).sort()).toEqual(outliers.map((o) => o.media_id).sort());
    expect((await explore(vql([{ issues: { op: 'issue', value: 'mislabels' } }]))).clusters).toEqual([]);
  });

  it('filters by duplicates at a threshold (snapped to a computed level) and by uniqueness', async () => {
    const loose = fileNames(await explore(vql([{ duplicates: { op: 'duplicates', value: 0.95 } }])));
    expect(loose).toEqual(expect.arrayContaining(['dup_original.jpg', 'dup_resized.jpg', 'exact_copy.jpg']));
    const exact = fileNames(await explore(vql([{ duplicates: { op: 'duplicates', value: 1 } }])));
    expect(exact).toEqual(expect.arrayContaining(['dup_original.jpg', 'exact_copy.jpg']));
    expect(exact).not.toContain('dup_resized.jpg');
    const unique = fileNames(await explore(vql([{ uniqueness: { op: 'uniqueness', value: 0.5 } }])));
    expect(unique).toContain('distinct_2.png');
    expect(unique).not.toContain('exact_copy.jpg');
    const rows = await t.container.db.selectFrom('media').select('uniqueness_score').where('dataset_id', '=', datasetId).where('file_name', 'in', unique).execute();
    for (const row of rows) expect(row.uniqueness_score).toBeGreaterThanOrEqual(0.5);
  });

  it('filters by text (fts over names and paths, case-insensitive), labels and tags; ANDs filters', async () => {
    expect(fileNames(await explore(vql([{ text: { op: 'fts', value: 'DISTINCT_1' } }])))).toEqual(['distinct_1.png', 'distinct_10.png', 'distinct_11.png', 'distinct_12.png', 'distinct_13.png', 'distinct_14.png']);
    expect(fileNames(await explore(vql([{ text: { op: 'fts', value: 'dup_' } }, { duplicates: { op: 'duplicates', value: 1 } }])))).toEqual(['dup_original.jpg']);
    expect(fileNames(await explore(vql([{ text: { op: 'fts', value: '100%_' } }])))).toEqual([]);
    expect((await explore(vql([{ labels: { op: 'one_of', value: ['cat'] } }]))).clusters).toEqual([]);
    expect((await explore(vql([{ tags: { op: 'is', value: ['reviewed'] } }]))).clusters).toEqual([]);
    expect((await explore({ labels: '["cat"]' })).clusters).toEqual([]);
  });

  it('answers 422 naming the problem for malformed VQL and for semantic search without a text model', async () => {
    const malformed = await get(`/api/v1/explore/${datasetId}?vql=${encodeURIComponent('[{"issues":{"op":"issue","value":"sharp"}}]')}`);
    expect(malformed.statusCode).toBe(422);
    const detail = (malformed.json() as { detail: { loc: unknown[]; msg: string }[] }).detail;
    expect(detail[0]!.loc).toEqual(['query', 'vql', 0, 'issues', 'value']);
    expect(detail[0]!.msg).toContain('"value" must be one of');
    expect((await get(`/api/v1/explore/${datasetId}?vql=not-json`)).json()).toMatchObject({ detail: [{ msg: expect.stringContaining('not valid JSON') }] });
    const semantic = await get(`/api/v1/explore/${datasetId}?vql=${encodeURIComponent('[{"text":{"op":"semantic","value":"a dog"}}]')}`);
    expect(semantic.statusCode).toBe(422);
    expect(semantic.body).toContain('text-capable');
  });

  it('orders media by similarity to a MEDIA anchor (itself first at distance 0)', async () => {
    const body = await explore({ anchor_media_id: id('dup_original.jpg'), anchor_type: 'MEDIA' });
    const first = body.clusters[0]!;
    expect(first.relevance_score).toBe(0);
    const previews = body.clusters.flatMap((c) => c.previews);
    expect(previews.slice(0, 3).map((p) => p.file_name).sort()).toEqual(expect.arrayContaining(['dup_original.jpg', 'exact_copy.jpg']));
    expect(previews.find((p) => p.file_name === 'dup_resized.jpg')!.relevance_score!).toBeLessThan(previews.find((p) => p.file_name === 'distinct_1.png')!.relevance_score!);
    const scores = body.clusters.map((c) => c.relevance_score!);
    expect(scores).toEqual([...scores].sort((a, b) => a - b));
    // Filters apply to anchored results too.
    const filtered = await explore({ anchor_media_id: id('dup_original.jpg'), anchor_type: 'MEDIA', ...vql([{ text: { op: 'fts', value: 'distinct' } }]) });
    expect(fileNames(filtered).every((n) => n.startsWith('distinct'))).toBe(true);
    expect((await get(`/api/v1/explore/${datasetId}?anchor_media_id=00000000-0000-0000-0000-000000000000&anchor_type=MEDIA`)).statusCode).toBe(404);
  });

  it('search-image-similarity embeds an upload; explore with it finds the transformed copy first', async () => {
    const body = multipart([{ field: 'file', name: 'query.jpg', data: queryImage }]);
    const response = await t.app.inject({
      method: 'POST',
      url: `/api/v1/dataset/${datasetId}/search-image-similarity?threshold=0&entity_type=IMAGES`,
      headers: { ...(await owner.headers()), ...body.headers },
      payload: body.payload,
    });
    expect(response.statusCode, response.body).toBe(200);
    const anchor = response.json() as { anchor_media_id: string; anchor_type: string };
    expect(anchor.anchor_type).toBe('UPLOAD');
    const result = await explore({ anchor_media_id: anchor.anchor_media_id, anchor_type: 'UPLOAD' });
    const top = result.clusters[0]!.previews[0]!;
    expect(top.file_name).toBe('query_copy.jpg');
    expect(top.relevance_score!).toBeLessThan(0.1);
    expect((await get(`/api/v1/explore/${datasetId}?anchor_media_id=${anchor.anchor_media_id}&anchor_type=MEDIA`)).statusCode).toBe(404);
  });

  it('search-image-similarity: 422 without a file or with garbage, 404 to non-members, 409 when not searchable', async () => {
    const headers = await owner.headers();
    const noFile = multipart([], { bounding_box: '[0,0,1,1]' });
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/dataset/${datasetId}/search-image-similarity`, headers: { ...headers, ...noFile.headers }, payload: noFile.payload })).statusCode).toBe(422);
    const garbage = multipart([{ field: 'file', name: 'x.jpg', data: Buffer.from('not an image at all') }]);
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/dataset/${datasetId}/search-image-similarity`, headers: { ...headers, ...garbage.headers }, payload: garbage.payload })).statusCode).toBe(422);
    const image = multipart([{ field: 'file', name: 'q.jpg', data: queryImage }]);
    const strangerResponse = await t.app.inject({
      method: 'POST',
      url: `/api/v1/dataset/${datasetId}/search-image-similarity`,
      headers: { ...(await stranger.headers()), ...image.headers },
      payload: image.payload,
    });
    expect(strangerResponse.statusCode).toBe(404);
    const draft = await draftDataset(t.app, headers, [], 'empty');
    const notReady = await t.app.inject({ method: 'POST', url: `/api/v1/dataset/${draft.datasetId}/search-image-similarity`, headers: { ...headers, ...image.headers }, payload: image.payload });
    expect(notReady.statusCode).toBe(409);
    const cropped = multipart([{ field: 'file', name: 'q.jpg', data: queryImage }], { bounding_box: '[0.1,0.1,0.5,0.5]' });
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/dataset/${datasetId}/search-image-similarity`, headers: { ...headers, ...cropped.headers }, payload: cropped.payload })).statusCode).toBe(200);
  });

  it('serves media bytes and thumbnails to members (token or cookie) with caching headers; 404 to non-members', async () => {
    const mediaId = id('distinct_1.png');
    const file = await get(`/api/v1/dataset/${datasetId}/media/${mediaId}/file`);
    expect(file.statusCode).toBe(200);
    expect(file.headers['content-type']).toBe('image/png');
    expect(file.headers['cache-control']).toContain('max-age');
    const row = await t.container.db.selectFrom('media').select(['sha256', 'file_size']).where('id', '=', mediaId).executeTakeFirstOrThrow();
    expect(file.headers.etag).toBe(`"${row.sha256}"`);
    expect(file.rawPayload.length).toBe(row.file_size);
    expect((await get(`/api/v1/dataset/${datasetId}/media/${mediaId}/file`, owner, { 'if-none-match': `"${row.sha256}"` })).statusCode).toBe(304);

    const thumb = await get(`/api/v1/dataset/${datasetId}/media/${mediaId}/thumbnail`);
    expect(thumb.statusCode).toBe(200);
    expect(thumb.headers['content-type']).toBe('image/jpeg');
    expect((await sharp(thumb.rawPayload).metadata()).format).toBe('jpeg');

    expect((await get(`/api/v1/dataset/${datasetId}/media/${mediaId}/file`, stranger)).statusCode).toBe(404);
    expect((await get(`/api/v1/dataset/${datasetId}/media/${mediaId}/thumbnail`, stranger)).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/media/${mediaId}/file` })).statusCode).toBe(401);
    expect((await get(`/api/v1/dataset/${datasetId}/media/00000000-0000-0000-0000-000000000000/file`)).statusCode).toBe(404);

    // The UI's session cookie works on media URLs too (for <img> tags).
    const login = await t.app.inject({ method: 'POST', url: '/api/v1/auth', payload: { username: 'owner@example.com', password: 'correct horse battery staple' } });
    expect(login.statusCode, login.body).toBe(200);
    const session = login.cookies.find((c) => c.name === 'SESSION')!;
    const viaCookie = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/media/${mediaId}/thumbnail`, cookies: { SESSION: session.value } });
    expect(viaCookie.statusCode).toBe(200);
  });

  it('answers a range request on a video with 206 and the requested bytes', async () => {
    const videoId = id('clip.mp4');
    const full = await get(`/api/v1/dataset/${datasetId}/media/${videoId}/file`);
    expect(full.statusCode).toBe(200);
    expect(full.headers['content-type']).toBe('video/mp4');
    expect(full.headers['accept-ranges']).toBe('bytes');
    const partial = await get(`/api/v1/dataset/${datasetId}/media/${videoId}/file`, owner, { range: 'bytes=10-109' });
    expect(partial.statusCode).toBe(206);
    expect(partial.headers['content-range']).toBe(`bytes 10-109/${full.rawPayload.length}`);
    expect(partial.rawPayload.equals(full.rawPayload.subarray(10, 110))).toBe(true);
    const tail = await get(`/api/v1/dataset/${datasetId}/media/${videoId}/file`, owner, { range: 'bytes=-16' });
    expect(tail.statusCode).toBe(206);
    expect(tail.rawPayload.equals(full.rawPayload.subarray(full.rawPayload.length - 16))).toBe(true);
    const beyond = await get(`/api/v1/dataset/${datasetId}/media/${videoId}/file`, owner, { range: `bytes=${full.rawPayload.length + 5}-` });
    expect(beyond.statusCode).toBe(416);
  });

  it('looks media up by original_media_uri (plain text, 404 if none)', async () => {
    const response = await get(`/api/v1/dataset/${datasetId}/media/id?original_media_uri=${encodeURIComponent('dup_resized.jpg')}`);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('text/plain');
    expect(response.body).toBe(id('dup_resized.jpg'));
    expect((await get(`/api/v1/dataset/${datasetId}/media/id?original_media_uri=missing.jpg`)).statusCode).toBe(404);
    expect((await get(`/api/v1/dataset/${datasetId}/media/id?original_media_uri=dup_resized.jpg`, stranger)).statusCode).toBe(404);
  });

  it('lists near-duplicates of a media at the default threshold, or at a given one', async () => {
    const response = await get(`/api/v1/dataset/${datasetId}/media/${id('dup_original.jpg')}/duplicates`);
    expect(response.statusCode).toBe(200);
    expect((response.json() as string[]).sort()).toEqual([id('dup_resized.jpg'), id('exact_copy.jpg')].sort());
    const exact = await get(`/api/v1/dataset/${datasetId}/media/${id('dup_original.jpg')}/duplicates?threshold=1`);
    expect(exact.json()).toEqual([id('exact_copy.jpg')]);
    expect((await get(`/api/v1/dataset/${datasetId}/media/${id('distinct_3.png')}/duplicates`)).json()).toEqual([]);
    expect((await get(`/api/v1/dataset/${datasetId}/media/00000000-0000-0000-0000-000000000000/duplicates`)).statusCode).toBe(404);
    expect((await get(`/api/v1/dataset/${datasetId}/media/${id('dup_original.jpg')}/duplicates`, stranger)).statusCode).toBe(404);
  });

  it('answers exploration_metadata, and 404 for explore to non-members even with malformed VQL', async () => {
    const response = await get(`/api/v1/explore/${datasetId}/exploration_metadata`);
    expect(response.statusCode).toBe(200);
    const clusters = await t.container.db.selectFrom('clusters').select('cluster_id').where('dataset_id', '=', datasetId).where('level', '=', 0).execute();
    expect(response.json()).toEqual({ dataset_name: 'explore me', clusters_count: clusters.length, media_count: ids.size, labels: [] });
    expect((await get(`/api/v1/explore/${datasetId}/exploration_metadata`, stranger)).statusCode).toBe(404);
    expect((await get(`/api/v1/explore/${datasetId}?vql=garbage&threshold=9`, stranger)).statusCode).toBe(404);
  });
});
