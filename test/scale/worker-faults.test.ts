/**
 * Scale-out faults with real processes on real engines (PostgreSQL, BullMQ on Redis, S3 over the
 * real protocol): the API without a job runner, two `vizdex worker`s; one is killed with SIGKILL in
 * the middle of ingestion and the other finishes its batches — every image counted exactly once.
 * Then Redis drops every client connection mid-run and the workers reconnect and finish (a real
 * Redis restart is in redis-restart.test.ts); and a job that keeps failing ends its task FAILED and
 * the dataset ERROR, with the reason.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../fixtures/media.js';
import { ApiClient, type DatasetBody, type TaskBody } from '../e2e/api-client.js';
import { runCli, startServerProcess, startWorkerProcess, type ServerProcess } from '../e2e/server-process.js';
import { makeTempDir } from '../helpers/harness.js';
import { provisionScaleOut, testRedisUrl, type ScaleOutEngines } from '../helpers/scale-out.js';
import { expectEachMediaOnce, uploadAndProcess as uploadAndProcessImages, waitForDataset } from './scale-flows.js';

const IMAGES = 240;
const PER_REQUEST = 60;

describe('scale-out: workers killed, Redis dropped, jobs failing', () => {
  let root: string;
  let engines: ScaleOutEngines;
  let api: ServerProcess;
  let client: ApiClient;
  const processes: ServerProcess[] = [];
  let images: { name: string; data: Buffer }[];

  const env = (extra: Record<string, string> = {}) => ({
    ...engines.env,
    // Small batches on one decode each: ingestion takes long enough to interrupt, and a killed
    // worker's batch lock lapses within seconds.
    VIZDEX_JOB_CONCURRENCY: '1',
    VIZDEX_JOB_LEASE_MS: '3000',
    VIZDEX_THUMBNAIL_SIZE: '1024',
    ...extra,
  });
  const worker = async (dataDir: string, extra: Record<string, string> = {}) => {
    const started = await startWorkerProcess({ dataDir, env: env(extra) });
    processes.push(started);
    return started;
  };

  beforeAll(async () => {
    root = makeTempDir('vizdex-scale-faults-');
    engines = await provisionScaleOut();
    images = [];
    for (let i = 0; i < IMAGES; i++) images.push({ name: `photo_${String(i).padStart(4, '0')}.jpg`, data: await makeImage({ width: 1024, height: 768, seed: 7000 + i }) });
    api = await startServerProcess({ dataDir: path.join(root, 'api'), env: env(), args: ['--no-worker', '--no-pipeline-service'] });
    processes.push(api);
    const created = await runCli(['user', 'create', '--email', 'owner@example.com', '--data-dir', path.join(root, 'api'), '--json'], { env: env() });
    expect(created.code, created.stderr).toBe(0);
    client = new ApiClient(api.url, JSON.parse(created.stdout.trim()) as { api_key: string; api_secret: string });
  }, 120_000);

  afterAll(async () => {
    for (const p of processes) await p.kill('SIGKILL');
    await engines?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const uploadAndProcess = (name: string) => uploadAndProcessImages(client, name, images, PER_REQUEST);
  const waitFor = (datasetId: string, done: (d: DatasetBody) => boolean, timeoutMs = 240_000) => waitForDataset(client, datasetId, done, timeoutMs);
  const expectExactlyOnce = (datasetId: string) => expectEachMediaOnce(engines.env.VIZDEX_DATABASE_URL!, datasetId, images.map((i) => i.name));

  it('a worker killed with SIGKILL mid-ingestion: the other takes its batches over; exact counts, READY', async () => {
    const first = await worker(path.join(root, 'w1'));
    await worker(path.join(root, 'w2'));
    const datasetId = await uploadAndProcess('killed-worker');
    // Kill the first worker while it is decoding, a few batches in.
    await waitFor(datasetId, (d) => d.progress >= 10 || d.status_new !== 'INDEXING');
    expect((await client.get<DatasetBody>(`/dataset/${datasetId}`)).body.status_new).toBe('INDEXING');
    await first.kill('SIGKILL');
    const ready = await waitFor(datasetId, (d) => d.status_new === 'READY' || d.status_new === 'ERROR');
    expect(ready).toMatchObject({ status_new: 'READY', n_images: IMAGES, n_failed_files: 0 });
    await expectExactlyOnce(datasetId);
  });

  it('Redis drops every connection mid-run: workers reconnect and finish', async () => {
    const datasetId = await uploadAndProcess('redis-drop');
    await waitFor(datasetId, (d) => d.progress >= 10 || d.status_new !== 'INDEXING');
    const admin = new Redis(testRedisUrl());
    try {
      await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    } finally {
      admin.disconnect();
    }
    const ready = await waitFor(datasetId, (d) => d.status_new === 'READY' || d.status_new === 'ERROR');
    expect(ready).toMatchObject({ status_new: 'READY', n_images: IMAGES });
    await expectExactlyOnce(datasetId);
  });

  it('a job that keeps failing ends FAILED with its reason, and the dataset ERROR instead of hanging in INDEXING', async () => {
    // Every worker now loads a model that does not exist: each attempt fails the same way.
    for (const p of processes.slice(1)) await p.kill('SIGKILL');
    await worker(path.join(root, 'w3'), { VIZDEX_MODEL: path.join(root, 'missing-model.onnx'), VIZDEX_JOB_MAX_ATTEMPTS: '2' });
    const datasetId = await uploadAndProcess('failing');
    const failed = await waitFor(datasetId, (d) => d.status_new === 'ERROR' || d.status_new === 'READY', 120_000);
    expect(failed.status_new).toBe('ERROR');
    expect(failed.fatal_error_msg).toMatch(/missing-model\.onnx/);
    const tasks = (await client.get<{ tasks: TaskBody[] }>(`/tasks?dataset_id=${datasetId}`)).body.tasks;
    expect(tasks[0]).toMatchObject({ task_type: 'DATASET_CREATION', status: 'FAILED' });
    expect(tasks[0]!.error_message).toMatch(/missing-model\.onnx/);
  });
});
