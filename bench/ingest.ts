/**
 * npm run bench:ingest -- [folder] [--repeat N] [--originals]
 *
 * Ingests a folder of images through the real pipeline (upload → decode with shrink-on-load →
 * thumbnail → quality → embedding → k-NN index → READY) and, in the same run, times the decode floor:
 * sharp decoding the same files to a small thumbnail and nothing else, on every core. Prints images/s
 * of both, their ratio, peak RSS and the per-stage split. Without a folder it uses real photos and
 * artwork from Debian packages (bench/real-images.ts) as ≤1024 px JPEGs, or as shipped with --originals.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { createContainer } from '../src/app/container.js';
import { loadConfig } from '../src/config.js';
import { createBuiltinModel } from '../src/models/builtin-descriptor.js';
import { createSharpImageDecoder, type DecodedImage } from '../src/pipeline/image-decoder.js';
import { analyzeDataset } from '../src/pipeline/index/analysis.js';
import { VectorIndex } from '../src/pipeline/index/vector-index.js';
import { computeQuality } from '../src/pipeline/quality.js';
import { photoSizedImages, realImages } from './real-images.js';

const IMAGE = /\.(jpe?g|png|webp)$/i;
const cores = os.availableParallelism();
const THUMB = 320;

async function parseArgs(): Promise<{ files: string[]; repeat: number; source: string }> {
  const args = process.argv.slice(2);
  const option = (name: string): string | undefined => {
    const at = args.indexOf(name);
    return at >= 0 ? args.splice(at, 2)[1] : undefined;
  };
  const repeat = Number(option('--repeat') ?? 1);
  const originals = args.includes('--originals');
  const folder = args.filter((a) => !a.startsWith('--'))[0];
  let base: string[];
  let source: string;
  if (folder) {
    base = fs.readdirSync(folder).filter((f) => IMAGE.test(f)).sort().map((f) => path.join(folder, f));
    source = folder;
  } else if (originals) {
    base = realImages();
    source = 'Debian wallpapers and sample photos, as shipped (2–5K px, many PNG)';
  } else {
    base = await photoSizedImages(1024);
    source = 'Debian wallpapers and sample photos as ≤1024 px JPEGs';
  }
  return { files: Array.from({ length: repeat }, () => base).flat(), repeat, source };
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  }));
}

let peakRss = 0;
const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await fn();
  return [result, (performance.now() - start) / 1000];
}

/** The floor: decode each file to a small thumbnail with sharp, nothing else. */
async function decodeFloor(files: string[]): Promise<number> {
  const [, seconds] = await timed(() =>
    pool(files, cores, async (file) => {
      await sharp(file, { failOn: 'error' }).rotate().resize(THUMB, THUMB, { fit: 'inside', withoutEnlargement: true }).jpeg({ quality: 80 }).toBuffer();
    }),
  );
  return seconds;
}

/** The whole product path, through the services and the job runner, from upload to READY. */
async function pipeline(files: string[]): Promise<{ uploadSeconds: number; processSeconds: number; n_images: number }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vizdex-bench-'));
  const container = await createContainer(loadConfig({ dataDir }, { ...process.env, VIZDEX_LOG_LEVEL: 'silent' }));
  try {
    const { auth, ingestion, datasets } = container.services;
    const user = await auth.createUser({ email: 'bench@example.com' });
    const { dataset_id } = await ingestion.newDataset(user.id, 'bench');
    const { trans_id } = await ingestion.openTransaction(user.id, dataset_id);
    const [, uploadSeconds] = await timed(async () => {
      for (let i = 0; i < files.length; i += 50) {
        const batch = files.slice(i, i + 50);
        await ingestion.upload(user.id, dataset_id, trans_id, (async function* () {
          for (const [j, file] of batch.entries()) {
            yield { fieldName: 'files', fileName: `${i + j}_${path.basename(file)}`, stream: fs.createReadStream(file) };
          }
        })());
      }
    });
    const [view, processSeconds] = await timed(async () => {
      await ingestion.processFiles(user.id, dataset_id, trans_id);
      container.startJobs();
      await container.queue.drained(20);
      return datasets.get(user.id, dataset_id);
    });
    if (view.status_new !== 'READY') throw new Error(`dataset ended ${view.status_new}: ${view.fatal_error_msg}`);
    return { uploadSeconds, processSeconds, n_images: view.n_images };
  } finally {
    await container.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Each stage alone on (up to 500 of) the same files, to show where the time goes. */
async function stages(allFiles: string[]) {
  const files = allFiles.slice(0, 500);
  const decoder = createSharpImageDecoder({ thumbnailSize: THUMB, maxPixels: 268_402_689 });
  const decoded: DecodedImage[] = [];
  const [, decodeSeconds] = await timed(() => pool(files, cores, async (file, i) => void (decoded[i] = await decoder.decode(file))));
  const rasters = decoded.map((d) => d.raster);
  const [, qualitySeconds] = await timed(async () => rasters.forEach((r) => computeQuality(r)));
  const model = createBuiltinModel();
  const [vectors, embedSeconds] = await timed(() => model.embed(rasters));
  const d = model.dimensions;
  const matrix = new Float32Array(vectors.length * d);
  vectors.forEach((v, i) => matrix.set(v, i * d));
  const [, indexSeconds] = await timed(async () => {
    const index = await VectorIndex.build(matrix, d, {});
    const graph = await index.knn(16);
    analyzeDataset({ n: vectors.length, k: graph.k, neighbors: graph.neighbors, similarities: graph.similarities, duplicateCosine: model.duplicateCosine, contentHashes: vectors.map((_, i) => String(i)) });
  });
  const perImage = (seconds: number) => (seconds * 1000) / files.length;
  return { decodeMs: perImage(decodeSeconds), qualityMs: perImage(qualitySeconds), embedMs: perImage(embedSeconds), indexMs: perImage(indexSeconds) };
}

const { files, repeat, source } = await parseArgs();
console.log(`bench:ingest — ${files.length} images${repeat > 1 ? ` (${repeat}× each)` : ''} from ${source}; ${cores} cores, thumbnails ≤ ${THUMB}px`);
// Read everything once so neither run pays for a cold disk cache.
for (const file of files) fs.readFileSync(file);

const floorSeconds = await decodeFloor(files);
global.gc?.();
peakRss = process.memoryUsage().rss;
const rssBefore = peakRss;
const cpuBefore = process.cpuUsage();
const run = await pipeline(files);
const cpu = process.cpuUsage(cpuBefore);
const pipelineCores = (cpu.user + cpu.system) / 1e6 / (run.processSeconds + run.uploadSeconds);
const pipelinePeakRss = peakRss;
const floorAgain = await decodeFloor(files);
const floor = Math.min(floorSeconds, floorAgain);
const split = await stages(files);
clearInterval(rssTimer);

const rate = (seconds: number) => (files.length / seconds).toFixed(1);
const rows: [string, string][] = [
  ['decode floor (sharp → thumbnail only)', `${rate(floor)} img/s`],
  ['full pipeline, process_files → READY', `${rate(run.processSeconds)} img/s`],
  ['ratio pipeline / floor', (floor / run.processSeconds).toFixed(2)],
  ['upload (stream, hash, store)', `${rate(run.uploadSeconds)} img/s`],
  ['CPU busy during upload + pipeline', `${pipelineCores.toFixed(2)} of ${cores} cores`],
  ['per core, full pipeline', `${(files.length / run.processSeconds / cores).toFixed(1)} img/s/core`],
  ['peak RSS during the pipeline', `${(pipelinePeakRss / 1024 ** 2).toFixed(0)} MiB (${(rssBefore / 1024 ** 2).toFixed(0)} MiB before it)`],
  ['stage: decode + thumbnail + raster', `${split.decodeMs.toFixed(2)} ms/img (wall, ${cores} at once)`],
  ['stage: quality statistics', `${split.qualityMs.toFixed(3)} ms/img`],
  ['stage: embedding (built-in)', `${split.embedMs.toFixed(3)} ms/img`],
  ['stage: k-NN + groupings', `${split.indexMs.toFixed(3)} ms/img`],
];
const width = Math.max(...rows.map(([k]) => k.length));
for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
if (run.n_images !== files.length) console.log(`note: ${files.length - run.n_images} files did not decode`);
