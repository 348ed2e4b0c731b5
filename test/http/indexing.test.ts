import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DUPLICATE_THRESHOLDS } from '../../src/domain/similarity.js';
import { KnnDatasetIndexer } from '../../src/pipeline/index/dataset-indexer.js';
import { hugeDimensionPng, makeImage, makeVideo, truncatedJpeg } from '../fixtures/media.js';
import { writeTinyOnnxModel } from '../fixtures/onnx.js';
import { draftDataset, processFiles, type UploadFile } from '../helpers/flows.js';
import { makeTempDir, startTestApp, waitForStatus, type TestApp } from '../helpers/harness.js';

/**
 * Indexing end to end through the API: what a dataset holds once READY — vectors, near-duplicate
 * groups at every threshold, clusters at five granularities, outliers, quality issues, uniqueness,
 * video frames — read back from the database the explore and export features will read.
 */
describe('indexing a dataset', () => {
  let t: TestApp;
  let datasetId: string;
  const names = { original: 'dup_original.jpg', resized: 'dup_resized.jpg', recompressed: 'dup_recompressed.webp', dark: 'dark.jpg', blurred: 'blurred.jpg', video: 'clip.mp4' };

  beforeAll(async () => {
    t = await startTestApp();
    const owner = await t.createUser('owner@example.com');
    const headers = await owner.headers();

    const original = await makeImage({ width: 640, height: 480, seed: 1000 });
    const files: UploadFile[] = [
      { name: names.original, data: original },
      { name: names.resized, data: await sharp(original).resize(400).jpeg({ quality: 85 }).toBuffer() },
      { name: names.recompressed, data: await sharp(original).webp({ quality: 40 }).toBuffer() },
      { name: 'exact_copy.jpg', data: original },
      { name: names.dark, data: await sharp(await makeImage({ width: 640, height: 480, seed: 2000 })).linear(0.08, 0).jpeg().toBuffer() },
      { name: names.blurred, data: await sharp(await makeImage({ width: 640, height: 480, seed: 3000 })).blur(12).jpeg().toBuffer() },
    ];
    for (let seed = 1; seed <= 24; seed++) files.push({ name: `distinct_${seed}.png`, data: await makeImage({ width: 320, height: 240, seed, format: 'png' }) });
    const videoDir = makeTempDir();
    await makeVideo(path.join(videoDir, names.video), { seconds: 3 });
    files.push({ name: names.video, data: fs.readFileSync(path.join(videoDir, names.video)) });
    fs.rmSync(videoDir, { recursive: true, force: true });

    const draft = await draftDataset(t.app, headers, files);
    datasetId = draft.datasetId;
    expect((await processFiles(t.app, headers, datasetId, draft.transId)).statusCode).toBe(202);
    const dataset = await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR'], 120_000);
    expect(dataset).toMatchObject({ status_new: 'READY', n_images: 30, n_videos: 1, n_failed_files: 0 });
    expect(dataset.n_video_frames as number).toBeGreaterThanOrEqual(2);
  });
  afterAll(async () => t.close());

  const db = () => t.container.db;
  const mediaIdOf = async (fileName: string) =>
    (await db().selectFrom('media').select('id').where('dataset_id', '=', datasetId).where('file_name', '=', fileName).executeTakeFirstOrThrow()).id;

  it('stores one vector per image and video frame, and records the model in embedding_config', async () => {
    const vectors = await db().selectFrom('embeddings').select(['model_id']).where('dataset_id', '=', datasetId).execute();
    const frames = await db().selectFrom('media').select('id').where('dataset_id', '=', datasetId).where('media_type', '=', 'video_frame').execute();
    expect(vectors).toHaveLength(30 + frames.length);
    expect(new Set(vectors.map((v) => v.model_id))).toEqual(new Set(['builtin-v1']));
    const dataset = await db().selectFrom('datasets').select('embedding_config').where('id', '=', datasetId).executeTakeFirstOrThrow();
    expect(JSON.parse(dataset.embedding_config!)).toMatchObject({ model_id: 'builtin-v1' });
  });

  it('groups the resized, recompressed and exact copies with their original at the default threshold, and nothing else', async () => {
    const rows = await db()
      .selectFrom('media_issues')
      .innerJoin('media', 'media.id', 'media_issues.media_id')
      .select(['media.file_name', 'media_issues.group_id'])
      .where('media_issues.dataset_id', '=', datasetId)
      .where('media_issues.issue_type', '=', 'duplicates')
      .where('media_issues.threshold', '=', 0.96)
      .execute();
    const stills = rows.filter((r) => !r.file_name.startsWith('frame_'));
    expect(stills.map((r) => r.file_name).sort()).toEqual([names.original, names.resized, names.recompressed, 'exact_copy.jpg'].sort());
    expect(new Set(stills.map((r) => r.group_id)).size).toBe(1);
  });

  it('nests near-duplicate groups: every higher threshold groups a subset, and the exact copy stays grouped at 1.0', async () => {
    let previous = Infinity;
    for (const threshold of DUPLICATE_THRESHOLDS) {
      const rows = await db().selectFrom('media_issues').select('media_id').where('dataset_id', '=', datasetId).where('issue_type', '=', 'duplicates').where('threshold', '=', threshold).execute();
      expect(rows.length).toBeLessThanOrEqual(previous);
      previous = rows.length;
    }
    const exact = await db()
      .selectFrom('media_issues')
      .select('media_id')
      .where('dataset_id', '=', datasetId)
      .where('issue_type', '=', 'duplicates')
      .where('threshold', '=', 1)
      .execute();
    const ids = exact.map((r) => r.media_id);
    expect(ids).toContain(await mediaIdOf(names.original));
    expect(ids).toContain(await mediaIdOf('exact_copy.jpg'));
  });

  it('puts every media in exactly one cluster at each of five levels, each cluster with a member as representative', async () => {
    const total = (await db().selectFrom('embeddings').select('media_id').where('dataset_id', '=', datasetId).execute()).length;
    let previousCount = Infinity;
    for (const level of [0, 1, 2, 3, 4]) {
      const members = await db().selectFrom('media_clusters').select(['media_id', 'cluster_id']).where('dataset_id', '=', datasetId).where('level', '=', level).execute();
      expect(members).toHaveLength(total);
      const clusters = await db().selectFrom('clusters').selectAll().where('dataset_id', '=', datasetId).where('level', '=', level).execute();
      expect(clusters.reduce((sum, c) => sum + c.size, 0)).toBe(total);
      expect(clusters.length).toBeLessThanOrEqual(previousCount);
      previousCount = clusters.length;
      const clusterOf = new Map(members.map((m) => [m.media_id, m.cluster_id]));
      for (const cluster of clusters) expect(clusterOf.get(cluster.representative_media_id)).toBe(cluster.cluster_id);
    }
    // The duplicate family shares one cluster at the finest level.
    const finest = await db().selectFrom('media_clusters').select(['media_id', 'cluster_id']).where('dataset_id', '=', datasetId).where('level', '=', 0).execute();
    const clusterOf = new Map(finest.map((m) => [m.media_id, m.cluster_id]));
    expect(clusterOf.get(await mediaIdOf(names.resized))).toBe(clusterOf.get(await mediaIdOf(names.original)));
  });

  it('flags the dark and the blurred image, and scores uniqueness low for duplicates and high for distinct pictures', async () => {
    const issuesOf = async (fileName: string) =>
      (await db().selectFrom('media_issues').select(['issue_type', 'confidence']).where('media_id', '=', await mediaIdOf(fileName)).execute()).map((r) => r.issue_type);
    expect(await issuesOf(names.dark)).toContain('dark');
    expect(await issuesOf(names.blurred)).toContain('blur');

    const score = async (fileName: string) =>
      (await db().selectFrom('media').select(['uniqueness_score', 'blur', 'mean_intensity']).where('id', '=', await mediaIdOf(fileName)).executeTakeFirstOrThrow());
    const duplicate = await score(names.resized);
    const distinct = await score('distinct_5.png');
    expect(duplicate.uniqueness_score!).toBeGreaterThanOrEqual(0);
    expect(distinct.uniqueness_score!).toBeLessThanOrEqual(1);
    expect(duplicate.uniqueness_score!).toBeLessThan(distinct.uniqueness_score!);
    expect((await score(names.dark)).mean_intensity!).toBeLessThan(distinct.mean_intensity!);
    expect((await score(names.blurred)).blur!).toBeLessThan(distinct.blur!);
  });

  it('turns the video into frames that keep the video and their timestamps', async () => {
    const video = await db().selectFrom('media').selectAll().where('dataset_id', '=', datasetId).where('media_type', '=', 'video').executeTakeFirstOrThrow();
    expect(video).toMatchObject({ status: 'READY', file_name: names.video });
    expect(video.duration_seconds!).toBeCloseTo(3, 0);
    const frames = await db().selectFrom('media').selectAll().where('parent_media_id', '=', video.id).orderBy('frame_timestamp').execute();
    expect(frames.length).toBeGreaterThanOrEqual(2);
    const timestamps = frames.map((f) => f.frame_timestamp!);
    expect(timestamps[0]).toBe(0);
    expect([...timestamps].sort((a, b) => a - b)).toEqual(timestamps);
    for (const frame of frames) {
      expect(frame).toMatchObject({ media_type: 'video_frame', status: 'READY' });
      expect(frame.original_media_uri.startsWith(`${names.video}/frame_`)).toBe(true);
      expect(await t.container.blobs.exists(frame.thumb_key!)).toBe(true);
    }
  });

  it('persists the vector index so it can be reloaded and searched', async () => {
    const indexer = new KnnDatasetIndexer(t.container.blobs, { k: 16, threads: 1 });
    const loaded = await indexer.load(datasetId);
    expect(loaded).not.toBeNull();
    const original = await mediaIdOf(names.original);
    const row = await db().selectFrom('embeddings').select('vector').where('media_id', '=', original).executeTakeFirstOrThrow();
    const query = new Float32Array(row.vector.buffer.slice(row.vector.byteOffset, row.vector.byteOffset + row.vector.byteLength));
    const result = loaded!.index.search(query, 5);
    const found = Array.from(result.neighbors.slice(0, 5)).map((key) => loaded!.mediaIds[key]);
    expect(found).toContain(original);
    expect(found).toContain(await mediaIdOf(names.resized));
  });
});

describe('indexing with an ONNX model from a local path', () => {
  it('embeds through onnxruntime, records the model in embedding_config and still groups the resized copy', async () => {
    const modelDir = makeTempDir();
    const modelPath = path.join(modelDir, 'tiny-encoder.onnx');
    await writeTinyOnnxModel(modelPath, { inputSize: 32, dimensions: 48 });
    const t = await startTestApp({ env: { VIZDEX_MODEL: modelPath, VIZDEX_MODEL_INPUT_SIZE: '32', VIZDEX_MODEL_DUPLICATE_COSINE: '0.97' } });
    try {
      const owner = await t.createUser('onnx@example.com');
      const headers = await owner.headers();
      const original = await makeImage({ width: 480, height: 360, seed: 77 });
      const files: UploadFile[] = [
        { name: 'a.jpg', data: original },
        { name: 'a_small.jpg', data: await sharp(original).resize(240).jpeg({ quality: 70 }).toBuffer() },
      ];
      for (let seed = 1; seed <= 8; seed++) files.push({ name: `other_${seed}.png`, data: await makeImage({ width: 240, height: 180, seed: seed * 31, format: 'png' }) });
      const draft = await draftDataset(t.app, headers, files);
      expect((await processFiles(t.app, headers, draft.datasetId, draft.transId)).statusCode).toBe(202);
      expect(await waitForStatus(t.app, headers, draft.datasetId, ['READY', 'ERROR'])).toMatchObject({ status_new: 'READY', n_images: 10 });

      const config = await t.container.db.selectFrom('datasets').select('embedding_config').where('id', '=', draft.datasetId).executeTakeFirstOrThrow();
      expect(JSON.parse(config.embedding_config!)).toMatchObject({ model_id: expect.stringMatching(/^onnx:tiny-encoder:[0-9a-f]{8}$/), dimensions: 48 });
      const vector = await t.container.db.selectFrom('embeddings').select('vector').where('dataset_id', '=', draft.datasetId).executeTakeFirstOrThrow();
      expect(vector.vector.byteLength).toBe(48 * 4);
      const grouped = await t.container.db
        .selectFrom('media_issues')
        .innerJoin('media', 'media.id', 'media_issues.media_id')
        .select('media.file_name')
        .where('media_issues.dataset_id', '=', draft.datasetId)
        .where('media_issues.issue_type', '=', 'duplicates')
        .where('media_issues.threshold', '=', 0.96)
        .execute();
      expect(grouped.map((r) => r.file_name)).toEqual(expect.arrayContaining(['a.jpg', 'a_small.jpg']));
    } finally {
      await t.close();
      fs.rmSync(modelDir, { recursive: true, force: true });
    }
  });

  it('ends the dataset in ERROR with the reason when the configured model file is missing', async () => {
    const t = await startTestApp({ env: { VIZDEX_MODEL: '/nonexistent/model.onnx' } });
    try {
      const owner = await t.createUser('missing@example.com');
      const headers = await owner.headers();
      const draft = await draftDataset(t.app, headers, [{ name: 'a.jpg', data: await makeImage({ seed: 5 }) }]);
      await processFiles(t.app, headers, draft.datasetId, draft.transId);
      const dataset = await waitForStatus(t.app, headers, draft.datasetId, ['READY', 'ERROR'], 90_000);
      expect(dataset.status_new).toBe('ERROR');
      expect(dataset.status).toBe('FATAL_ERROR');
      expect(String(dataset.fatal_error_msg)).toContain('/nonexistent/model.onnx');
    } finally {
      await t.close();
    }
  });
});

describe('hostile and broken files in a dataset', () => {
  it('records a decompression bomb, a truncated JPEG and an empty file with their reasons; the rest indexes', async () => {
    const t = await startTestApp();
    try {
      const owner = await t.createUser('bombs@example.com');
      const headers = await owner.headers();
      const good = await Promise.all([1, 2, 3].map((seed) => makeImage({ seed: seed * 11 })));
      const files: UploadFile[] = [
        ...good.map((data, i) => ({ name: `good_${i}.jpg`, data })),
        { name: 'bomb.png', data: hugeDimensionPng() },
        { name: 'cut.jpg', data: await truncatedJpeg() },
        { name: 'empty.webp', data: Buffer.alloc(0) },
      ];
      const draft = await draftDataset(t.app, headers, files);
      await processFiles(t.app, headers, draft.datasetId, draft.transId);
      const dataset = await waitForStatus(t.app, headers, draft.datasetId, ['READY', 'ERROR']);
      expect(dataset).toMatchObject({ status_new: 'READY', n_images: 3, n_failed_files: 3 });
      const reasons = Object.fromEntries((dataset.failed_files as { file_name: string; reason: string }[]).map((f) => [f.file_name, f.reason]));
      expect(reasons['bomb.png']).toMatch(/too large: 50000x50000/);
      expect(reasons['cut.jpg']).toMatch(/truncated or corrupt/);
      expect(reasons['empty.webp']).toMatch(/empty file/);
      const vectors = await t.container.db.selectFrom('embeddings').select('media_id').where('dataset_id', '=', draft.datasetId).execute();
      expect(vectors).toHaveLength(3);
    } finally {
      await t.close();
    }
  });
});
