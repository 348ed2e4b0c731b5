/**
 * npm run bench:explore -- [--n 100000]
 *
 * Latency of explore pages and anchor search on a large dataset, and the time and peak memory of
 * exporting it, through the real HTTP app
 * (app.inject: routing, auth, validation, services, SQLite, the persisted vector index). The dataset
 * is synthetic — media rows and 448-d vectors written straight through the repositories, then indexed
 * by the real indexer — because decoding 100k real images would take the whole benchmark's budget.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createContainer } from '../src/app/container.js';
import { loadConfig } from '../src/config.js';
import { IndexRepository } from '../src/db/index.repository.js';
import { buildApp } from '../src/http/app.js';
import { KnnDatasetIndexer } from '../src/pipeline/index/dataset-indexer.js';
import { mintSdkToken } from '../src/security/sdk-token.js';

const args = process.argv.slice(2);
const n = Number(args[args.indexOf('--n') + 1] || 100_000) || 100_000;
const DIM = 448;
const SAMPLES = 200;

function gaussianVectors(count: number, dim: number): Float32Array {
  // A clustered mixture with near-duplicates, so the groupings have structure to find.
  const centres = Math.max(1, Math.floor(count / 200));
  const centre = new Float32Array(centres * dim).map(() => Math.random() * 2 - 1);
  const out = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) {
    const c = (i * 7919) % centres;
    const spread = i % 20 === 0 ? 0.02 : 0.6;
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      const v = centre[c * dim + j]! + spread * (Math.random() * 2 - 1);
      out[i * dim + j] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm);
    for (let j = 0; j < dim; j++) out[i * dim + j]! /= norm;
  }
  return out;
}

function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vizdex-bench-explore-'));
const container = await createContainer(loadConfig({ dataDir }, { VIZDEX_LOG_LEVEL: 'silent' }));
try {
  const { auth, datasets } = container.services;
  const user = await auth.createUser({ email: 'bench@example.com' });
  const credentials = await auth.createApiCredentials(user.id);
  const dataset = await datasets.create(user.id, { name: 'explore bench', sourceType: 'LOCAL' });

  let start = performance.now();
  const vectors = gaussianVectors(n, DIM);
  const now = new Date().toISOString();
  const ids: string[] = [];
  for (let base = 0; base < n; base += 5000) {
    const count = Math.min(5000, n - base);
    await container.db.transaction().execute(async (trx) => {
      for (let i = base; i < base + count; i += 500) {
        const rows = [];
        const vectorRows = [];
        for (let j = i; j < Math.min(i + 500, base + count); j++) {
          const id = crypto.randomUUID();
          ids.push(id);
          rows.push({
            id, dataset_id: dataset.id, transaction_id: null, media_type: 'image' as const, status: 'READY' as const,
            original_media_uri: `folder/img_${j}.jpg`, file_name: `img_${j}.jpg`, blob_key: `x/${id}.jpg`, file_size: 100_000,
            sha256: crypto.createHash('sha256').update(id).digest('hex'), width: 1024, height: 768, format: 'jpeg',
            thumb_key: `x/${id}.thumb.jpg`, created_at: now, processed_at: now,
          });
          const v = vectors.subarray(j * DIM, (j + 1) * DIM);
          vectorRows.push({ media_id: id, dataset_id: dataset.id, model_id: 'builtin-v1', vector: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) });
        }
        await trx.insertInto('media').values(rows).execute();
        await trx.insertInto('embeddings').values(vectorRows).execute();
      }
    });
  }
  const insertSeconds = (performance.now() - start) / 1000;

  start = performance.now();
  const indexRepo = new IndexRepository(container.db);
  const indexer = new KnnDatasetIndexer(container.blobs, { k: 16, threads: 0 });
  const loaded = await indexRepo.loadVectors(dataset.id);
  const analysis = await indexer.analyze(dataset.id, loaded, 0.915);
  await indexRepo.saveAnalysis(dataset.id, analysis);
  await container.db
    .updateTable('datasets')
    .set({ status: 'READY', progress: 100, n_images: n, embedding_config: JSON.stringify({ model_id: 'builtin-v1', dimensions: DIM, duplicate_cosine: 0.915 }) })
    .where('id', '=', dataset.id)
    .execute();
  const indexSeconds = (performance.now() - start) / 1000;

  const app = await buildApp(container);
  const headers = { authorization: `Bearer ${await mintSdkToken(credentials.api_key, credentials.api_secret, 3600)}` };
  const time = async (url: string): Promise<number> => {
    const t0 = performance.now();
    const response = await app.inject({ url, headers });
    if (response.statusCode !== 200) throw new Error(`${url}: ${response.statusCode} ${response.body.slice(0, 200)}`);
    return performance.now() - t0;
  };
  const measure = async (label: string, url: (i: number) => string) => {
    await time(url(0));
    const samples: number[] = [];
    for (let i = 0; i < SAMPLES; i++) samples.push(await time(url(i)));
    return { label, p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) };
  };

  const pages = Math.max(1, Math.floor(n / 2000));
  const vql = encodeURIComponent(JSON.stringify([{ issues: { op: 'issue', value: 'duplicates', mode: 'in' } }]));
  const results = [
    await measure('explore, threshold 0, page i', (i) => `/api/v1/explore/${dataset.id}?threshold=0&page_number=${i % pages}`),
    await measure('explore, threshold 4 (coarsest)', (i) => `/api/v1/explore/${dataset.id}?threshold=4&page_number=${i % 3}`),
    await measure('explore with VQL issues=duplicates', () => `/api/v1/explore/${dataset.id}?vql=${vql}`),
    await measure('anchor search (MEDIA), top clusters', (i) => `/api/v1/explore/${dataset.id}?anchor_type=MEDIA&anchor_media_id=${ids[(i * 4999) % n]}`),
  ];
  // Export: the whole dataset's metadata (json and parquet) through the same writer the job uses.
  const exportRuns: { format: 'json' | 'parquet'; seconds: number; peakMiB: number; bytes: number }[] = [];
  for (const format of ['json', 'parquet'] as const) {
    const out = path.join(dataDir, `export.${format}.zip`);
    let peak = process.memoryUsage().rss;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 25);
    const t0 = performance.now();
    await container.services.exports.exportToFile(dataset.id, { format, includeImages: false, baseUrl: 'http://127.0.0.1:8080', exportedBy: 'bench' }, out);
    clearInterval(sampler);
    exportRuns.push({ format, seconds: (performance.now() - t0) / 1000, peakMiB: peak / 1024 ** 2, bytes: fs.statSync(out).size });
  }

  console.log(`bench:explore — ${n} media, ${DIM}-d vectors; insert ${insertSeconds.toFixed(1)} s, index ${indexSeconds.toFixed(1)} s; ${SAMPLES} requests each`);
  console.log('| request | p50 ms | p99 ms |\n| --- | --- | --- |');
  for (const r of results) console.log(`| ${r.label} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} |`);
  console.log('\n| export (all media, metadata only) | time | peak RSS | zip size |\n| --- | --- | --- | --- |');
  for (const e of exportRuns) console.log(`| ${e.format} | ${e.seconds.toFixed(1)} s | ${e.peakMiB.toFixed(0)} MiB | ${(e.bytes / 1024 ** 2).toFixed(1)} MiB |`);
  await app.close();
} finally {
  await container.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
