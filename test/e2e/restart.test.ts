/**
 * Crash and restart of the real server while a dataset is INDEXING: the persisted job queue resumes
 * the work and the dataset ends READY with every file indexed exactly once.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, type FixtureImageFormat } from '../fixtures/media.js';
import { makeTempDir } from '../helpers/harness.js';
import { ApiClient, pollDataset, type Credentials, type DatasetBody, type TaskBody } from './api-client.js';
import { pid1Launcher, runCli, startServerProcess, type ServerProcess } from './server-process.js';

const IMAGE_COUNT = 150;
const FILES_PER_REQUEST = 30;

const SERVER_ENV = {
  // One job and one decode at a time, so processing is sequential and takes long enough to interrupt.
  VIZDEX_JOB_CONCURRENCY: '1',
  // Thumbnails as large as the pictures: no shrink-on-load, so each image costs measurable time.
  VIZDEX_THUMBNAIL_SIZE: '2048',
  // A lease far longer than the test: work held by the killed process can only resume through the
  // start-up reclaim of jobs whose runner on this host is dead, not by waiting the lease out.
  VIZDEX_JOB_LEASE_MS: '3600000',
};

interface Fixture {
  name: string;
  data: Buffer;
}

describe('restart during indexing', () => {
  let images: Fixture[];
  const started: ServerProcess[] = [];
  const roots: string[] = [];

  beforeAll(async () => {
    // Distinct 1600x1200 pictures, generated once for both scenarios (a few at a time: sharp uses the thread pool).
    const formats: { format: FixtureImageFormat; extension: string }[] = [
      { format: 'jpeg', extension: '.jpg' },
      { format: 'png', extension: '.png' },
      { format: 'webp', extension: '.webp' },
    ];
    images = [];
    for (let first = 0; first < IMAGE_COUNT; first += 8) {
      const chunk = await Promise.all(
        Array.from({ length: Math.min(8, IMAGE_COUNT - first) }, async (_, offset) => {
          const index = first + offset;
          const { format, extension } = formats[index % formats.length]!;
          return { name: `photo_${String(index + 1).padStart(4, '0')}${extension}`, data: await makeImage({ width: 1600, height: 1200, seed: 1000 + index, format }) };
        }),
      );
      images.push(...chunk);
    }
  }, 60_000);

  afterEach(async () => {
    // Even when a test fails half-way, no server outlives it.
    await Promise.all(started.splice(0).map((server) => server.kill('SIGKILL')));
    for (const root of roots.splice(0)) fs.rmSync(root, { recursive: true, force: true });
  });

  async function start(dataDir: string, args: string[] = [], launcher?: string[]): Promise<ServerProcess> {
    const server = await startServerProcess({ dataDir, env: SERVER_ENV, args, launcher });
    started.push(server);
    return server;
  }

  function newDataDir(): string {
    const root = makeTempDir('vizdex-e2e-restart-');
    roots.push(root);
    return path.join(root, 'data');
  }

  async function createOwner(dataDir: string): Promise<Credentials> {
    const result = await runCli(['user', 'create', '--email', 'owner@example.com', '--data-dir', dataDir, '--json']);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout.trim()) as Credentials;
  }

  /** The four local-upload steps over HTTP; returns once process_files was accepted. */
  async function uploadAndProcess(api: ApiClient): Promise<string> {
    const created = await api.get<{ dataset_id: string }>('/ingestion/new_dataset?dataset_name=restart');
    expect(created.status, created.text).toBe(200);
    const datasetId = created.body.dataset_id;
    const transaction = await api.get<{ trans_id: string }>(`/ingestion/${datasetId}/data_files`);
    expect(transaction.status, transaction.text).toBe(200);
    const transId = transaction.body.trans_id;
    for (let i = 0; i < images.length; i += FILES_PER_REQUEST) {
      const form = new FormData();
      for (const image of images.slice(i, i + FILES_PER_REQUEST)) form.append('files', new Blob([image.data]), image.name);
      const upload = await api.post(`/ingestion/${datasetId}/data_files/${transId}`, form);
      expect(upload.status, upload.text).toBe(202);
    }
    const processing = await api.post(`/ingestion/${datasetId}/process_files/${transId}`);
    expect(processing.status, processing.text).toBe(202);
    return datasetId;
  }

  /** Polls every ~20 ms until indexing has visibly started but is far from done. */
  async function waitUntilMidway(api: ApiClient, datasetId: string): Promise<DatasetBody> {
    const dataset = await pollDataset(api, datasetId, (d) => d.status_new !== 'INDEXING' || (d.progress > 0 && d.progress < 95), {
      intervalMs: 20,
      timeoutMs: 60_000,
    });
    if (dataset.status_new !== 'INDEXING') {
      throw new Error(
        `indexing was not caught mid-way (dataset went ${dataset.status_new} at ${dataset.progress}%): make the workload larger (more or larger images)`,
      );
    }
    return dataset;
  }

  /** After the restart: READY with every uploaded file indexed exactly once, nothing left behind. */
  async function expectCompleteAndConsistent(dataDir: string, api: ApiClient, datasetId: string): Promise<void> {
    const dataset = await pollDataset(api, datasetId, (d) => d.status_new === 'READY' || d.status_new === 'ERROR', { timeoutMs: 60_000 });
    expect(dataset).toMatchObject({ status_new: 'READY', status: 'READY', progress: 100, n_images: IMAGE_COUNT, n_videos: 0, n_failed_files: 0 });

    const tasks = await api.get<{ tasks: TaskBody[] }>(`/tasks?dataset_id=${datasetId}`);
    expect(tasks.status, tasks.text).toBe(200);
    expect(tasks.body.tasks.map((t) => [t.task_type, t.status, t.progress_percentage])).toEqual([['DATASET_CREATION', 'COMPLETED', 100]]);

    // The rest is checked in the files themselves, with no server holding them.
    const server = started.at(-1)!;
    expect(await server.stop()).toEqual({ code: 0, signal: null });
    // The resumed jobs ran cleanly: no attempt failed on the way.
    expect(server.output().stderr).not.toMatch(/job .* failed/);

    const db = new Database(path.join(dataDir, 'vizdex.sqlite'), { readonly: true, fileMustExist: true });
    let media: { id: string; status: string; original_media_uri: string; thumb_key: string | null }[];
    let leftoverJobs: { id: string; status: string }[];
    try {
      media = db.prepare('select id, status, original_media_uri, thumb_key from media where dataset_id = ?').all(datasetId) as typeof media;
      leftoverJobs = db.prepare('select id, status from jobs').all() as typeof leftoverJobs;
    } finally {
      db.close();
    }
    expect(media).toHaveLength(IMAGE_COUNT);
    expect(media.filter((m) => m.status !== 'READY')).toEqual([]);
    // Each uploaded file is one row: none lost, none duplicated by the resumed work.
    expect(media.map((m) => m.original_media_uri).sort()).toEqual(images.map((i) => i.name).sort());
    expect(leftoverJobs).toEqual([]);

    const thumbsDir = path.join(dataDir, 'blobs', 'datasets', datasetId, 'thumbs');
    for (const row of media) {
      expect(row.thumb_key).toBe(`datasets/${datasetId}/thumbs/${row.id}.jpg`);
      expect(fs.statSync(path.join(thumbsDir, `${row.id}.jpg`)).size).toBeGreaterThan(0);
    }
    const thumbnails = fs.readdirSync(thumbsDir).filter((name) => name.endsWith('.jpg'));
    expect(thumbnails.sort()).toEqual(media.map((m) => `${m.id}.jpg`).sort());

    expect(fs.readdirSync(path.join(dataDir, 'tmp', 'uploads'))).toEqual([]);
  }

  it('SIGKILL while INDEXING: the dataset stays INDEXING, and a restart resumes it to READY with nothing lost', async () => {
    const dataDir = newDataDir();
    let server = await start(dataDir);
    const owner = await createOwner(dataDir);
    let api = new ApiClient(server.url, owner);
    const datasetId = await uploadAndProcess(api);

    const midway = await waitUntilMidway(api, datasetId);
    expect(await server.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });

    // What the crash left in the database, read through a server that runs no jobs.
    server = await start(dataDir, ['--no-worker']);
    api = api.on(server.url);
    const afterCrash = await api.get<DatasetBody>(`/dataset/${datasetId}`);
    expect(afterCrash.status, afterCrash.text).toBe(200);
    expect(afterCrash.body).toMatchObject({ status_new: 'INDEXING', status: 'INDEXING' });
    expect(afterCrash.body.progress).toBeGreaterThanOrEqual(midway.progress);
    expect(afterCrash.body.progress).toBeLessThan(100);
    expect(afterCrash.body.n_images).toBeLessThan(IMAGE_COUNT);
    expect(await server.stop()).toEqual({ code: 0, signal: null });

    server = await start(dataDir);
    api = api.on(server.url);
    await expectCompleteAndConsistent(dataDir, api, datasetId);
  }, 120_000);

  it('SIGTERM while INDEXING: a graceful exit (code 0), and a restart completes the dataset', async () => {
    const dataDir = newDataDir();
    let server = await start(dataDir);
    const owner = await createOwner(dataDir);
    let api = new ApiClient(server.url, owner);
    const datasetId = await uploadAndProcess(api);

    // The CLI writes to the same database while the server is busy indexing.
    const colleague = runCli(['user', 'create', '--email', 'colleague@example.com', '--data-dir', dataDir, '--json']);
    await waitUntilMidway(api, datasetId);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
    const created = await colleague;
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout.trim())).toMatchObject({ email: 'colleague@example.com' });
    expect(server.output().stdout).toContain('SIGTERM received, shutting down');

    server = await start(dataDir);
    api = api.on(server.url);
    await expectCompleteAndConsistent(dataDir, api, datasetId);
  }, 120_000);

  // A container restarted after a crash runs the server as pid 1 again on the same hostname: the
  // start-up reclaim must still see the old claims as dead (the lease here is an hour).
  const launcher = pid1Launcher();
  it.runIf(launcher !== null)('SIGKILL of a server running as pid 1, restarted as pid 1: resumes at once', async () => {
    const dataDir = newDataDir();
    let server = await start(dataDir, [], launcher!);
    const owner = await createOwner(dataDir);
    let api = new ApiClient(server.url, owner);
    const datasetId = await uploadAndProcess(api);

    await waitUntilMidway(api, datasetId);
    await server.kill('SIGKILL');

    server = await start(dataDir, [], launcher!);
    api = api.on(server.url);
    const dataset = await pollDataset(api, datasetId, (d) => d.status_new === 'READY' || d.status_new === 'ERROR', { timeoutMs: 60_000 });
    expect(dataset).toMatchObject({ status_new: 'READY', progress: 100, n_images: IMAGE_COUNT, n_failed_files: 0 });
    const tasks = await api.get<{ tasks: TaskBody[] }>(`/tasks?dataset_id=${datasetId}`);
    expect(tasks.body.tasks.map((t) => [t.task_type, t.status])).toEqual([['DATASET_CREATION', 'COMPLETED']]);
  }, 120_000);
});
