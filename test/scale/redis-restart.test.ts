/**
 * Redis restarted for real in the middle of an ingestion: a private redis-server (append-only file,
 * as a production Redis keeps its queues) is stopped with SIGKILL and started again on the same
 * port; the API and the workers reconnect by themselves and the dataset ends READY, every image
 * exactly once.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../fixtures/media.js';
import { ApiClient, type DatasetBody } from '../e2e/api-client.js';
import { runCli, startServerProcess, startWorkerProcess, type ServerProcess } from '../e2e/server-process.js';
import { makeTempDir } from '../helpers/harness.js';
import { provisionScaleOut, type ScaleOutEngines } from '../helpers/scale-out.js';
import { expectEachMediaOnce, uploadAndProcess, waitForDataset } from './scale-flows.js';

const IMAGES = 160;
const REDIS_SERVER = process.env.VIZDEX_TEST_REDIS_SERVER || 'redis-server';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A redis-server of this test's own, persisting its queues to an append-only file in `dir`. */
class PrivateRedis {
  private child: ChildProcess | null = null;
  constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = spawn(REDIS_SERVER, ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 10_000;
    while (!(await this.answers())) {
      if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not start`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  private answers(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = net.connect(this.port, '127.0.0.1');
      socket.once('connect', () => {
        socket.write('PING\r\n');
        socket.once('data', (data) => {
          socket.destroy();
          resolve(data.toString().startsWith('+PONG'));
        });
      });
      socket.once('error', () => resolve(false));
    });
  }
}

const haveRedisServer = spawnSync(REDIS_SERVER, ['--version']).status === 0;

describe('scale-out: Redis restarted mid-run', () => {
  let root: string;
  let engines: ScaleOutEngines;
  let redis: PrivateRedis;
  const processes: ServerProcess[] = [];
  let client: ApiClient;

  beforeAll(async () => {
    if (!haveRedisServer) throw new Error(`${REDIS_SERVER} is needed to restart a Redis of the test's own (apt-get install redis-server)`);
    root = makeTempDir('vizdex-redis-restart-');
    engines = await provisionScaleOut();
    fs.mkdirSync(path.join(root, 'redis'));
    redis = new PrivateRedis(await freePort(), path.join(root, 'redis'));
    await redis.start();
  }, 60_000);

  afterAll(async () => {
    for (const p of processes) await p.kill('SIGKILL');
    await redis?.kill();
    await engines?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('the API and two workers reconnect after the restart and finish; exact counts', async () => {
    const env = { ...engines.env, VIZDEX_REDIS_URL: redis.url, VIZDEX_JOB_CONCURRENCY: '1', VIZDEX_JOB_LEASE_MS: '3000', VIZDEX_THUMBNAIL_SIZE: '1024' };
    const api = await startServerProcess({ dataDir: path.join(root, 'api'), env, args: ['--no-worker', '--no-pipeline-service'] });
    processes.push(api);
    for (const name of ['w1', 'w2']) processes.push(await startWorkerProcess({ dataDir: path.join(root, name), env }));
    const user = await runCli(['user', 'create', '--email', 'owner@example.com', '--data-dir', path.join(root, 'api'), '--json'], { env });
    expect(user.code, user.stderr).toBe(0);
    client = new ApiClient(api.url, JSON.parse(user.stdout.trim()) as { api_key: string; api_secret: string });

    const images = [];
    for (let i = 0; i < IMAGES; i++) images.push({ name: `photo_${String(i).padStart(4, '0')}.jpg`, data: await makeImage({ width: 1024, height: 768, seed: 9000 + i }) });
    const datasetId = await uploadAndProcess(client, 'restart', images, 40);
    const poll = (done: (d: DatasetBody) => boolean, timeoutMs: number) => waitForDataset(client, datasetId, done, timeoutMs);
    await poll((d) => d.progress >= 10 || d.status_new !== 'INDEXING', 120_000);
    expect((await client.get<DatasetBody>(`/dataset/${datasetId}`)).body.status_new).toBe('INDEXING');

    await redis.kill();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await redis.start();

    const ready = await poll((d) => d.status_new === 'READY' || d.status_new === 'ERROR', 240_000);
    expect(ready).toMatchObject({ status_new: 'READY', n_images: IMAGES, n_failed_files: 0 });
    await expectEachMediaOnce(engines.env.VIZDEX_DATABASE_URL!, datasetId, images.map((i) => i.name));
  });
});
