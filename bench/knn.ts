/**
 * k-NN graph + dataset analysis at scale, on synthetic vectors:
 *
 *   npx tsx bench/knn.ts --n 100000 [--dim 256] [--k 16] [--mode auto|exact|hnsw|both]
 *                        [--queries 1000] [--connectivity 16] [--ef-add 128] [--ef-search 64]
 *                        [--quantization f16|f32|bf16] [--threads 0] [--seed 1] [--no-save]
 *
 * Data: a Gaussian mixture on the unit sphere (n/200 clusters of uneven size, each spread over its
 * own 16-dimensional subspace plus isotropic noise, like image embeddings whose neighbourhoods are
 * low-dimensional), plus planted near duplicates (5 %), exact copies with the same content hash
 * (0.5 %) and isolated outliers (0.2 %), so every grouping has work to do.
 *
 * Prints build, k-NN, analysis and save time; peak RSS and bytes per vector; recall@10 of the graph
 * against exact search on a sample of queries (a neighbour counts when it is at least as similar as
 * the true 10th, so ties among duplicates are not misses); and how much of the planted structure the
 * analysis found. `--mode both` builds the graph both ways on the same data.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { analyzeDataset } from '../src/pipeline/index/analysis.js';
import { DEFAULT_EXACT_MAX_SIZE, exactNeighbors, type KnnGraph, VectorIndex } from '../src/pipeline/index/vector-index.js';

// ---- arguments -------------------------------------------------------------------------------

function parseArgs(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) continue;
    const [key, inline] = a.slice(2).split('=', 2) as [string, string | undefined];
    if (inline !== undefined) out.set(key, inline);
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) out.set(key, argv[++i]!);
    else out.set(key, 'true');
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const num = (key: string, fallback: number) => {
  const v = args.get(key);
  if (v === undefined) return fallback;
  const parsed = Number(v.replace(/_/g, ''));
  if (!Number.isFinite(parsed)) throw new Error(`--${key} must be a number, got ${v}`);
  return parsed;
};
const N = num('n', 100_000);
const DIM = num('dim', 256);
const K = num('k', 16);
const QUERIES = Math.min(N, num('queries', 1000));
const SEED = num('seed', 1);
const MODE = (args.get('mode') ?? 'auto') as 'auto' | 'exact' | 'hnsw' | 'both';
const SAVE = args.get('no-save') === undefined;
const indexOptions = {
  exactMaxSize: num('exact-max', DEFAULT_EXACT_MAX_SIZE),
  connectivity: num('connectivity', 16),
  expansionAdd: num('ef-add', 128),
  expansionSearch: num('ef-search', 64),
  quantization: (args.get('quantization') ?? 'f16') as 'f32' | 'f16' | 'bf16',
  threads: num('threads', 0),
};
/** Raw cosine that calibrates to 0.96 for this synthetic "model". */
const DUPLICATE_COSINE = 0.95;

// ---- data ------------------------------------------------------------------------------------

function rng(seed: number) {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let spare: number | undefined;
  const gaussian = () => {
    if (spare !== undefined) {
      const g = spare;
      spare = undefined;
      return g;
    }
    const r = Math.sqrt(-2 * Math.log(1 - uniform()));
    const a = 2 * Math.PI * uniform();
    spare = r * Math.sin(a);
    return r * Math.cos(a);
  };
  return { uniform, gaussian };
}

function normalizeRow(v: Float32Array, offset: number, d: number): void {
  let s = 0;
  for (let j = 0; j < d; j++) s += v[offset + j]! * v[offset + j]!;
  const inv = 1 / Math.sqrt(s || 1);
  for (let j = 0; j < d; j++) v[offset + j]! *= inv;
}

interface Synthetic {
  vectors: Float32Array;
  hashes: string[];
  /** [copy, source] pairs planted at calibrated ≥ 0.96 (near) or identical with the same hash (exact). */
  nearPairs: Uint32Array;
  exactPairs: Uint32Array;
  outliers: Uint32Array;
  clusters: number;
  /** Planted cluster per item (copies inherit their source's), -1 for outliers. */
  truth: Int32Array;
}

function synthesize(n: number, d: number, seed: number): Synthetic {
  const r = rng(seed);
  const SUB = Math.min(16, d);
  const clusters = Math.max(4, Math.round(n / 200));
  const centers = new Float32Array(clusters * d);
  const bases = new Float32Array(clusters * SUB * d);
  for (let c = 0; c < clusters; c++) {
    for (let j = 0; j < d; j++) centers[c * d + j] = r.gaussian();
    normalizeRow(centers, c * d, d);
    for (let b = 0; b < SUB; b++) {
      for (let j = 0; j < d; j++) bases[(c * SUB + b) * d + j] = r.gaussian() / Math.sqrt(d);
    }
  }
  // Uneven cluster sizes: log-normal weights, sampled through a cumulative table.
  const cumulative = new Float64Array(clusters);
  let total = 0;
  for (let c = 0; c < clusters; c++) {
    total += Math.exp(r.gaussian());
    cumulative[c] = total;
  }
  const pickCluster = () => {
    const x = r.uniform() * total;
    let lo = 0;
    let hi = clusters - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };

  const vectors = new Float32Array(n * d);
  const hashes: string[] = new Array(n);
  const near: number[] = [];
  const exact: number[] = [];
  const outliers: number[] = [];
  const coef = new Float32Array(SUB);
  const truth = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    hashes[i] = `h${i}`;
    const roll = r.uniform();
    if (i > 0 && roll < 0.05) {
      // Near duplicate of an earlier item: raw cosine ≈ 0.96–0.999 (calibrated 0.968–0.999).
      const src = Math.floor(r.uniform() * i);
      const target = 0.96 + 0.039 * r.uniform();
      const sigma = Math.sqrt((1 / (target * target) - 1) / d);
      for (let j = 0; j < d; j++) vectors[o + j] = vectors[src * d + j]! + sigma * r.gaussian();
      normalizeRow(vectors, o, d);
      near.push(i, src);
      truth[i] = truth[src]!;
      continue;
    }
    if (i > 0 && roll < 0.055) {
      const src = Math.floor(r.uniform() * i);
      vectors.copyWithin(o, src * d, src * d + d);
      hashes[i] = hashes[src]!;
      exact.push(i, src);
      truth[i] = truth[src]!;
      continue;
    }
    if (roll < 0.057) {
      for (let j = 0; j < d; j++) vectors[o + j] = r.gaussian();
      normalizeRow(vectors, o, d);
      outliers.push(i);
      continue;
    }
    const c = pickCluster();
    truth[i] = c;
    // Off the centre by ~0.4–0.8 along the cluster's subspace plus ~0.15 of isotropic noise.
    const spread = (0.4 + 0.4 * r.uniform()) / Math.sqrt(SUB);
    for (let b = 0; b < SUB; b++) coef[b] = r.gaussian() * spread;
    for (let j = 0; j < d; j++) {
      let x = centers[c * d + j]! + (0.15 * r.gaussian()) / Math.sqrt(d);
      for (let b = 0; b < SUB; b++) x += coef[b]! * bases[(c * SUB + b) * d + j]!;
      vectors[o + j] = x;
    }
    normalizeRow(vectors, o, d);
  }
  return {
    vectors,
    hashes,
    nearPairs: Uint32Array.from(near),
    exactPairs: Uint32Array.from(exact),
    outliers: Uint32Array.from(outliers),
    clusters,
    truth,
  };
}

// ---- measurement -----------------------------------------------------------------------------

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
const rss = () => process.memoryUsage.rss();
const peakRss = () => process.resourceUsage().maxRSS * 1024;
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** Wall-clock milliseconds; the process CPU time of the last call is kept in `lastCpuMs`. */
let lastCpuMs = 0;
async function timed<T>(fn: () => Promise<T> | T): Promise<[T, number]> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const out = await fn();
  const c = process.cpuUsage(c0);
  lastCpuMs = (c.user + c.system) / 1000;
  return [out, performance.now() - t0];
}

function recallAt10(graph: KnnGraph, vectors: Float32Array, sample: Uint32Array): { recall: number; ms: number } {
  const d = DIM;
  const queries = new Float32Array(sample.length * d);
  sample.forEach((q, i) => queries.set(vectors.subarray(q * d, q * d + d), i * d));
  const t0 = performance.now();
  const truth = exactNeighbors(vectors, queries, d, 11); // self + 10
  const ms = performance.now() - t0;
  const at = Math.min(10, graph.k);
  let hits = 0;
  let wanted = 0;
  for (let s = 0; s < sample.length; s++) {
    const q = sample[s]!;
    // The true 10th neighbour other than self (self has similarity 1; so may its exact copies).
    const sims: number[] = [];
    let selfSkipped = false;
    for (let j = 0; j < 11; j++) {
      const id = truth.neighbors[s * 11 + j]!;
      if (id === q && !selfSkipped) {
        selfSkipped = true;
        continue;
      }
      sims.push(truth.similarities[s * 11 + j]!);
    }
    const need = Math.min(at, sims.length);
    const bar = sims[need - 1] ?? -Infinity;
    wanted += need;
    for (let j = 0; j < need; j++) if (graph.similarities[q * graph.k + j]! >= bar - 1e-5) hits++;
  }
  return { recall: wanted ? hits / wanted : 1, ms };
}

interface Row {
  mode: string;
  build: number;
  buildCpu: number;
  knn: number;
  knnCpu: number;
  analysis: number;
  save: number | undefined;
  fileBytes: number | undefined;
  indexBytes: number;
  recall: number;
}

async function main(): Promise<void> {
  console.log(
    `bench:knn n=${N.toLocaleString('en')} dim=${DIM} k=${K} mode=${MODE} cores=${os.availableParallelism()} node=${process.version}` +
      ` M=${indexOptions.connectivity} efAdd=${indexOptions.expansionAdd} efSearch=${indexOptions.expansionSearch} q=${indexOptions.quantization}`,
  );
  const baseline = rss();
  const [data, genMs] = await timed(() => synthesize(N, DIM, SEED));
  console.log(
    `data: ${data.clusters} clusters, ${data.nearPairs.length / 2} planted near duplicates, ${data.exactPairs.length / 2} exact copies, ` +
      `${data.outliers.length} outliers (generated in ${secs(genMs)}, ${mb(data.vectors.byteLength)} of vectors)`,
  );

  const sample = new Uint32Array(QUERIES);
  const pick = rng(SEED + 99);
  for (let i = 0; i < QUERIES; i++) sample[i] = Math.floor(pick.uniform() * N);

  const modes: ('auto' | 'exact' | 'hnsw')[] = MODE === 'both' ? ['hnsw', 'exact'] : [MODE];
  const rows: Row[] = [];
  let analysisSummary = '';
  for (const mode of modes) {
    const before = rss();
    const [index, build] = await timed(() => VectorIndex.build(data.vectors, DIM, { ...indexOptions, mode }));
    const buildCpu = lastCpuMs;
    const indexBytes = Math.max(0, rss() - before);
    const [graph, knn] = await timed(() => index.knn(K));
    const knnCpu = lastCpuMs;
    console.log(`  ${index.mode}: build ${secs(build)} (cpu ${secs(buildCpu)}), k-NN ${secs(knn)} (cpu ${secs(knnCpu)}), RSS ${mb(rss())}`);
    let save: number | undefined;
    let fileBytes: number | undefined;
    if (SAVE) {
      const file = path.join(os.tmpdir(), `vizdex-bench-knn-${process.pid}.index`);
      [, save] = await timed(() => index.save(file));
      fileBytes = fs.statSync(file).size;
      fs.rmSync(file, { force: true });
    }
    const [analysis, analysisMs] = await timed(() =>
      analyzeDataset({
        n: N,
        k: graph.k,
        neighbors: graph.neighbors,
        similarities: graph.similarities,
        duplicateCosine: DUPLICATE_COSINE,
        contentHashes: data.hashes,
      }),
    );
    const { recall, ms: truthMs } = recallAt10(graph, data.vectors, sample);
    rows.push({ mode: `${index.mode}${mode === 'auto' ? ' (auto)' : ''}`, build, buildCpu, knn, knnCpu, analysis: analysisMs, save, fileBytes, indexBytes, recall });
    console.log(`  ${index.mode}: ground truth for ${QUERIES} queries took ${secs(truthMs)}`);

    // What the analysis found vs. what was planted.
    const at096 = analysis.nearDuplicates[0]!;
    let foundNear = 0;
    for (let p = 0; p < data.nearPairs.length; p += 2) {
      const g = at096.groupOf[data.nearPairs[p]!]!;
      if (g >= 0 && g === at096.groupOf[data.nearPairs[p + 1]!]) foundNear++;
    }
    let foundExact = 0;
    for (let p = 0; p < data.exactPairs.length; p += 2) {
      const g = analysis.exact.groupOf[data.exactPairs[p]!]!;
      if (g >= 0 && g === analysis.exact.groupOf[data.exactPairs[p + 1]!]) foundExact++;
    }
    const flagged = new Set(analysis.outliers.items);
    const foundOutliers = Array.from(data.outliers).filter((o) => flagged.has(o)).length;
    analysisSummary =
      `analysis (${index.mode}): near-dup pairs found at 0.96: ${pct(foundNear, data.nearPairs.length / 2)}; ` +
      `exact copies grouped: ${pct(foundExact, data.exactPairs.length / 2)}; ` +
      `outliers: ${analysis.outliers.items.length} flagged, ${pct(foundOutliers, data.outliers.length)} of planted\n` +
      `  groups at ${analysis.nearDuplicates.map((l) => `${l.threshold}:${l.count}`).join(' ')}\n` +
      `  clusters per level ${analysis.clusters.map((c) => `${c.level}:${c.count} (t=${c.threshold.toFixed(3)}, largest ${c.sizes[0] ?? 0})`).join(', ')}\n` +
      `  vs the ${data.clusters} planted clusters: ${analysis.clusters.map((c) => `L${c.level} ${clusterAgreement(c.clusterOf, data.truth, data.clusters)}`).join('; ')}\n` +
      `  uniqueness: median ${median(analysis.uniqueness).toFixed(3)}, zero for ${pct(analysis.uniqueness.filter((u) => u === 0).length, N)}`;
    console.log(analysisSummary);
  }

  const peak = peakRss();
  console.log('');
  console.log(`| n | dim | k | index | build (cpu) | k-NN (cpu) | analysis | save | recall@10 | index RSS/vector | file/vector | peak RSS | peak RSS/vector |`);
  console.log(`|---|---|---|---|---|---|---|---|---|---|---|---|---|`);
  for (const r of rows) {
    console.log(
      `| ${N.toLocaleString('en')} | ${DIM} | ${K} | ${r.mode} | ${secs(r.build)} (${secs(r.buildCpu)}) | ${secs(r.knn)} (${secs(r.knnCpu)}) | ${secs(r.analysis)} | ` +
        `${r.save === undefined ? '–' : secs(r.save)} | ${r.recall.toFixed(4)} | ${(r.indexBytes / N).toFixed(0)} B | ` +
        `${r.fileBytes === undefined ? '–' : `${(r.fileBytes / N).toFixed(0)} B`} | ${mb(peak)} | ${((peak - baseline) / N).toFixed(0)} B |`,
    );
  }
  console.log(
    `(vectors alone: ${DIM * 4} B/vector; k-NN graph: ${K * 8} B/vector; peak RSS/vector counts everything above the process baseline of ${mb(baseline)}, the input vectors included)`,
  );
}

/**
 * Purity (share of clustered items whose cluster's majority is their planted cluster), completeness
 * (share of items in their planted cluster's largest piece) and the share in clusters of 2 or more.
 */
function clusterAgreement(clusterOf: Uint32Array, truth: Int32Array, planted: number): string {
  const n = clusterOf.length;
  let found = 0;
  for (const c of clusterOf) if (c + 1 > found) found = c + 1;
  const pairCounts = new Map<number, number>(); // found * planted + truth → count
  const sizes = new Uint32Array(found);
  for (let i = 0; i < n; i++) {
    sizes[clusterOf[i]!]!++;
    if (truth[i]! < 0) continue;
    const key = clusterOf[i]! * planted + truth[i]!;
    pairCounts.set(key, (pairCounts.get(key) ?? 0) + 1);
  }
  const bestOfFound = new Uint32Array(found);
  const bestOfTruth = new Uint32Array(planted);
  for (const [key, count] of pairCounts) {
    const f = Math.floor(key / planted);
    const t = key % planted;
    if (count > bestOfFound[f]!) bestOfFound[f] = count;
    if (count > bestOfTruth[t]!) bestOfTruth[t] = count;
  }
  let labelled = 0;
  let inGroups = 0;
  for (let i = 0; i < n; i++) {
    if (truth[i]! >= 0) labelled++;
    if (sizes[clusterOf[i]!]! >= 2) inGroups++;
  }
  const sum = (a: Uint32Array) => a.reduce((x, y) => x + y, 0);
  return `purity ${(sum(bestOfFound) / labelled).toFixed(3)} completeness ${(sum(bestOfTruth) / labelled).toFixed(3)} grouped ${((100 * inGroups) / n).toFixed(0)}%`;
}

function pct(a: number, b: number): string {
  return b === 0 ? 'n/a' : `${((100 * a) / b).toFixed(1)} %`;
}

function median(values: Float32Array): number {
  if (values.length === 0) return Number.NaN;
  const sorted = values.slice().sort();
  return sorted[Math.floor(sorted.length / 2)]!;
}

await main();
