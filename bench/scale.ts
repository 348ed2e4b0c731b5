/**
 * npm run bench:scale -- [folder] [--repeat N]
 *
 * The same images ingested by the scale-out deployment with one and with two `vizdex worker`
 * processes: the API (`serve --no-worker`), PostgreSQL, BullMQ on Redis and S3 storage (s3rver on
 * loopback), all real processes. Each worker runs one job at a time (`--concurrency 1`), so the
 * comparison shows whether the work really divides between processes; a third run gives the one
 * worker both cores, for reference. Timed from process_files to READY (upload excluded), in one run,
 * side by side. Without a folder it uses real photos from Debian packages as ≤1024 px JPEGs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApiClient, type DatasetBody } from '../test/e2e/api-client.js';
import { runCli, startServerProcess, startWorkerProcess, type ServerProcess } from '../test/e2e/server-process.js';
import { provisionScaleOut } from '../test/helpers/scale-out.js';
import { photoSizedImages } from './real-images.js';

const IMAGE = /\.(jpe?g|png|webp)$/i;
const PER_REQUEST = 50;

interface Run {
  label: string;
  workers: number;
  concurrency: number;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const repeatAt = args.indexOf('--repeat');
  const repeat = repeatAt >= 0 ? Number(args.splice(repeatAt, 2)[1]) : 1;
  const folder = args.find((a) => !a.startsWith('--'));
  const base = folder ? fs.readdirSync(folder).filter((f) => IMAGE.test(f)).sort().map((f) => path.join(folder, f)) : await photoSizedImages(1024);
  const files = Array.from({ length: repeat }, () => base).flat();
  console.log(`bench:scale — ${files.length} images from ${folder ?? 'Debian image packages (≤1024 px JPEGs)'}; ${os.availableParallelism()} cores`);
  const data = files.map((file, i) => ({ name: `${String(i).padStart(5, '0')}_${path.basename(file)}`, bytes: fs.readFileSync(file) }));

  const runs: Run[] = [
    { label: '1 worker × 1 job', workers: 1, concurrency: 1 },
    { label: '2 workers × 1 job', workers: 2, concurrency: 1 },
    { label: '1 worker × 2 jobs (reference)', workers: 1, concurrency: 2 },
  ];
  const results: { run: Run; seconds: number }[] = [];
  for (const run of runs) {
    const seconds = await ingest(run, data);
    results.push({ run, seconds });
    console.log(`  ${run.label.padEnd(32)} ${seconds.toFixed(1).padStart(6)} s  ${(data.length / seconds).toFixed(1).padStart(6)} images/s`);
  }
  const [one, two] = results;
  console.log(`\nspeed-up of 2 worker processes over 1: ${(one!.seconds / two!.seconds).toFixed(2)}× (ideal on ${os.availableParallelism()} cores: 2×; the API, PostgreSQL, Redis and s3rver share the same cores)`);
}

/** One fresh deployment (database, queues, bucket), `run.workers` workers; seconds from process_files to READY. */
async function ingest(run: Run, images: { name: string; bytes: Buffer }[]): Promise<number> {
  const engines = await provisionScaleOut();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vizdex-bench-scale-'));
  const processes: ServerProcess[] = [];
  try {
    const env = { ...engines.env, VIZDEX_JOB_CONCURRENCY: String(run.concurrency), VIZDEX_LOG_LEVEL: 'error' };
    const api = await startServerProcess({ dataDir: path.join(root, 'api'), env, args: ['--no-worker', '--no-pipeline-service'] });
    processes.push(api);
    for (let w = 0; w < run.workers; w++) processes.push(await startWorkerProcess({ dataDir: path.join(root, `worker-${w}`), env }));
    const user = await runCli(['user', 'create', '--email', 'bench@example.com', '--data-dir', path.join(root, 'api'), '--json'], { env });
    if (user.code !== 0) throw new Error(`user create failed: ${user.stderr}`);
    const client = new ApiClient(api.url, JSON.parse(user.stdout.trim()) as { api_key: string; api_secret: string });

    const datasetId = (await client.get<{ dataset_id: string }>('/ingestion/new_dataset?dataset_name=bench')).body.dataset_id;
    const transId = (await client.get<{ trans_id: string }>(`/ingestion/${datasetId}/data_files`)).body.trans_id;
    for (let i = 0; i < images.length; i += PER_REQUEST) {
      const form = new FormData();
      for (const image of images.slice(i, i + PER_REQUEST)) form.append('files', new Blob([image.bytes]), image.name);
      const uploaded = await client.post(`/ingestion/${datasetId}/data_files/${transId}`, form);
      if (uploaded.status !== 202) throw new Error(`upload failed: ${uploaded.status} ${uploaded.text}`);
    }
    const started = performance.now();
    await client.post(`/ingestion/${datasetId}/process_files/${transId}`);
    for (;;) {
      const dataset = (await client.get<DatasetBody>(`/dataset/${datasetId}`)).body;
      if (dataset.status_new === 'READY') {
        if (dataset.n_images + dataset.n_failed_files !== images.length) throw new Error(`counts off: ${JSON.stringify(dataset)}`);
        return (performance.now() - started) / 1000;
      }
      if (dataset.status_new === 'ERROR') throw new Error(`dataset ERROR: ${JSON.stringify(dataset)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    for (const p of processes) await p.stop();
    await engines.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
