/**
 * Mislabel detection accuracy (`npm run bench:mislabels`, i.e. `npx tsx bench/mislabels.ts`).
 *
 * Sets with known flipped labels go through what the indexer does — the project's VectorIndex k-NN
 * graph (k = 16), similarities on the calibrated scale (`calibrateSimilarity`) — and then
 * `findMislabels` with its defaults. Printed per setting: flagged items, precision, recall and F1
 * against the flipped items, and how often the suggested label is the true one.
 *
 *  (a) synthetic embeddings: C classes as clusters on the unit sphere (D dims). Class centres come in
 *      super-classes of four (siblings at cosine ≈ 0.5, so neighbouring classes overlap when loose);
 *      items are centre + Gaussian noise, at four tightnesses, plus 400 small classes (about 12 items a
 *      class, fewer than k). 5 % and 10 % of the labels are flipped,
 *      either to any other class ("random") or to a sibling class ("sibling": the confusable kind of
 *      mistake a labeller makes).
 *  (b) real pictures (bench/real-images.ts, Debian packages' photos and artwork; skipped with
 *      --no-real): every original and its 14 edited copies (bench/dupes.ts: resized, recompressed,
 *      cropped, brightened, recoloured by contrast, watermarked, …) form one class, embedded with the
 *      built-in model through the real decoder; every fourth original stays single (a class of one).
 *      10 % of the labels are flipped to another class.
 *
 * Options: --sweep (grid of thresholds on the synthetic set, mean F1 per combination; how the
 * defaults were chosen), --no-real, --seed N, --n N (synthetic items, default 5000), --families N.
 * Ratios only: nothing here is timed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { calibrateSimilarity } from '../src/domain/similarity.js';
import { createBuiltinModel } from '../src/models/builtin-descriptor.js';
import { findMislabels, MISLABEL_DEFAULTS, type Mislabel, type MislabelOptions } from '../src/pipeline/index/mislabels.js';
import { NO_NEIGHBOR, VectorIndex } from '../src/pipeline/index/vector-index.js';
import { seededRandom, type SeededRandom } from '../test/fixtures/random.js';

const K = 16;
/** Raw cosine that calibrates to 0.96 for the synthetic "model" (as in bench/knn.ts). */
const SYNTHETIC_DUPLICATE_COSINE = 0.95;
const FLIP_RATES = [0.05, 0.1] as const;
/** Cluster tightness (noise) and class count; 'small classes' has about 12 items a class, fewer than k. */
const SETTINGS = [
  { name: 'tight', noise: 0.6, classes: 24 },
  { name: 'medium', noise: 1.0, classes: 24 },
  { name: 'loose', noise: 1.4, classes: 24 },
  { name: 'very loose', noise: 1.8, classes: 24 },
  { name: 'small classes', noise: 1.0, classes: 400 },
] as const;

const args = process.argv.slice(2);
const arg = (name: string, fallback: number): number => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const SEED = arg('seed', 7);
const N = arg('n', 5000);
const DIMS = 64;

// ---------------------------------------------------------------------------------------------------
// Random numbers

const rng = seededRandom;
type Rng = SeededRandom;

function normalizeRow(v: Float32Array | Float64Array, offset: number, d: number): void {
  let s = 0;
  for (let j = 0; j < d; j++) s += v[offset + j]! * v[offset + j]!;
  const inv = 1 / Math.sqrt(s || 1);
  for (let j = 0; j < d; j++) v[offset + j]! *= inv;
}

// ---------------------------------------------------------------------------------------------------
// Sets and flips

interface LabelledSet {
  vectors: Float32Array;
  dims: number;
  /** True class per item. */
  truth: Int32Array;
  classes: number;
  /** Classes a labeller would confuse with each class (synthetic: its super-class siblings). */
  siblings: (c: number) => number[];
}

function syntheticSet(n: number, classes: number, d: number, noise: number, r: Rng): LabelledSet {
  const perSuper = 4;
  const supers = Math.ceil(classes / perSuper);
  const superCentres = new Float64Array(supers * d);
  for (let i = 0; i < superCentres.length; i++) superCentres[i] = r.gaussian();
  for (let s = 0; s < supers; s++) normalizeRow(superCentres, s * d, d);
  // Sibling centres: super centre + an equal-sized random part → cosine ≈ 0.5 between siblings.
  const centres = new Float64Array(classes * d);
  for (let c = 0; c < classes; c++) {
    const s = Math.floor(c / perSuper);
    for (let j = 0; j < d; j++) centres[c * d + j] = superCentres[s * d + j]! + r.gaussian() / Math.sqrt(d);
    normalizeRow(centres, c * d, d);
  }
  // Uneven class sizes (log-normal weights).
  const weights = Array.from({ length: classes }, () => Math.exp(0.5 * r.gaussian()));
  const total = weights.reduce((a, b) => a + b, 0);
  const truth = new Int32Array(n);
  const vectors = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let x = r.uniform() * total;
    let c = 0;
    while (c < classes - 1 && x >= weights[c]!) x -= weights[c++]!;
    truth[i] = c;
    for (let j = 0; j < d; j++) vectors[i * d + j] = centres[c * d + j]! + (noise * r.gaussian()) / Math.sqrt(d);
    normalizeRow(vectors, i * d, d);
  }
  const siblings = (c: number) => {
    const s = Math.floor(c / perSuper);
    const out: number[] = [];
    for (let o = s * perSuper; o < Math.min(classes, (s + 1) * perSuper); o++) if (o !== c) out.push(o);
    return out;
  };
  return { vectors, dims: d, truth, classes, siblings };
}

/** Flips `rate` of the labels (exactly round(rate·n) items): to any other class, or to a sibling. */
function flipLabels(set: LabelledSet, rate: number, mode: 'random' | 'sibling', r: Rng): { labels: string[]; flipped: Uint8Array } {
  const n = set.truth.length;
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const flipped = new Uint8Array(n);
  const label = Array.from(set.truth, (c) => c);
  for (const i of order.slice(0, Math.round(rate * n))) {
    const c = set.truth[i]!;
    const choices = mode === 'sibling' && set.siblings(c).length > 0 ? set.siblings(c) : [...Array(set.classes).keys()].filter((o) => o !== c);
    label[i] = choices[r.int(choices.length)]!;
    flipped[i] = 1;
  }
  return { labels: label.map((c) => `class-${c}`), flipped };
}

// ---------------------------------------------------------------------------------------------------
// Graph and scoring

interface CalibratedGraph {
  n: number;
  k: number;
  neighbors: Uint32Array;
  similarities: Float32Array;
}

async function calibratedGraph(vectors: Float32Array, dims: number, duplicateCosine: number): Promise<CalibratedGraph> {
  const index = await VectorIndex.build(vectors, dims);
  const graph = await index.knn(K);
  const similarities = new Float32Array(graph.similarities.length);
  for (let e = 0; e < similarities.length; e++) {
    similarities[e] = graph.neighbors[e] === NO_NEIGHBOR ? Number.NEGATIVE_INFINITY : calibrateSimilarity(graph.similarities[e]!, duplicateCosine);
  }
  return { n: graph.n, k: graph.k, neighbors: graph.neighbors, similarities };
}

interface Score {
  flagged: number;
  precision: number;
  recall: number;
  f1: number;
  /** Share of the true positives whose suggested label is the true class. */
  suggestion: number;
}

function score(found: readonly Mislabel[], flipped: Uint8Array, truth: Int32Array): Score {
  let tp = 0;
  let rightSuggestion = 0;
  for (const m of found) {
    if (!flipped[m.item]) continue;
    tp++;
    if (m.suggestedLabel === `class-${truth[m.item]}`) rightSuggestion++;
  }
  const positives = flipped.reduce((a, b) => a + b, 0);
  const precision = found.length === 0 ? 1 : tp / found.length;
  const recall = positives === 0 ? 1 : tp / positives;
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { flagged: found.length, precision, recall, f1, suggestion: tp === 0 ? 1 : rightSuggestion / tp };
}

/** Share of graph edges (above the default similarity floor) that join items of the same true class. */
function purity(graph: CalibratedGraph, truth: Int32Array): number {
  let same = 0;
  let all = 0;
  for (let e = 0; e < graph.neighbors.length; e++) {
    const j = graph.neighbors[e]!;
    if (j === NO_NEIGHBOR || !(graph.similarities[e]! >= MISLABEL_DEFAULTS.minSimilarity)) continue;
    all++;
    if (truth[Math.floor(e / graph.k)] === truth[j]) same++;
  }
  return all === 0 ? 0 : same / all;
}

function meanSimilarity(graph: CalibratedGraph): number {
  let sum = 0;
  let count = 0;
  for (let e = 0; e < graph.similarities.length; e++) {
    if (graph.neighbors[e] === NO_NEIGHBOR) continue;
    sum += graph.similarities[e]!;
    count++;
  }
  return count === 0 ? 0 : sum / count;
}

const fmt = (value: number, digits = 3) => value.toFixed(digits);

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const [index, r] of rows.entries()) {
    console.log(r.map((cell, c) => (c < 3 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
    if (index === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

// ---------------------------------------------------------------------------------------------------
// (a) synthetic

interface Case {
  name: string;
  rate: number;
  mode: 'random' | 'sibling';
  graph: CalibratedGraph;
  labels: string[];
  flipped: Uint8Array;
  truth: Int32Array;
}

async function syntheticCases(): Promise<{ cases: Case[]; info: string[][] }> {
  const cases: Case[] = [];
  const info: string[][] = [['set', 'n', 'classes', 'dims', 'mean kNN similarity', 'same-class edges']];
  for (const [t, tightness] of SETTINGS.entries()) {
    const set = syntheticSet(N, tightness.classes, DIMS, tightness.noise, rng(SEED * 101 + t));
    const graph = await calibratedGraph(set.vectors, set.dims, SYNTHETIC_DUPLICATE_COSINE);
    info.push([`${tightness.name} (noise ${tightness.noise})`, String(N), String(tightness.classes), String(DIMS), fmt(meanSimilarity(graph)), fmt(purity(graph, set.truth))]);
    for (const mode of ['random', 'sibling'] as const) {
      for (const rate of FLIP_RATES) {
        const { labels, flipped } = flipLabels(set, rate, mode, rng(SEED * 7919 + t * 31 + rate * 1000 + (mode === 'sibling' ? 17 : 0)));
        cases.push({ name: tightness.name, rate, mode, graph, labels, flipped, truth: set.truth });
      }
    }
  }
  return { cases, info };
}

function runCases(cases: Case[], options: MislabelOptions = {}): Array<{ c: Case; s: Score; found: Mislabel[] }> {
  return cases.map((c) => {
    const found = findMislabels({ ...c.graph, labels: c.labels }, options);
    return { c, s: score(found, c.flipped, c.truth), found };
  });
}

function printResults(results: Array<{ c: Case; s: Score; found: Mislabel[] }>): void {
  const rows = [['set', 'flips', 'kind', 'flipped', 'flagged', 'precision', 'recall', 'F1', 'suggestion ok', 'P@conf≥0.7', 'R@conf≥0.7']];
  for (const { c, s, found } of results) {
    const confident = score(
      found.filter((m) => m.confidence >= 0.7),
      c.flipped,
      c.truth,
    );
    rows.push([
      c.name,
      `${Math.round(c.rate * 100)} %`,
      c.mode,
      String(c.flipped.reduce((a, b) => a + b, 0)),
      String(s.flagged),
      fmt(s.precision),
      fmt(s.recall),
      fmt(s.f1),
      fmt(s.suggestion),
      fmt(confident.precision),
      fmt(confident.recall),
    ]);
  }
  printTable(rows);
}

function sweep(cases: Case[]): void {
  const grid: MislabelOptions[] = [];
  for (const minSimilarity of [0, 0.5, 0.6, 0.7]) {
    for (const minVoters of [1, 2, 3, 4, 6]) {
      for (const minShare of [0.4, 0.5, 0.55, 0.6, 0.65, 0.7]) grid.push({ minSimilarity, minVoters, minShare });
    }
  }
  const rows = grid.map((options) => {
    const scores = runCases(cases, options).map((r) => r.s);
    const mean = (pick: (s: Score) => number) => scores.reduce((a, s) => a + pick(s), 0) / scores.length;
    return { options, f1: mean((s) => s.f1), p: mean((s) => s.precision), r: mean((s) => s.recall), worst: Math.min(...scores.map((s) => s.f1)) };
  });
  rows.sort((a, b) => b.f1 - a.f1);
  console.log('\nthreshold sweep (mean over the synthetic settings; best 15):');
  const table = [['minSimilarity', 'minVoters', 'minShare', 'mean P', 'mean R', 'mean F1', 'worst F1']];
  for (const row of rows.slice(0, 15)) {
    table.push([String(row.options.minSimilarity), String(row.options.minVoters), String(row.options.minShare), fmt(row.p), fmt(row.r), fmt(row.f1), fmt(row.worst)]);
  }
  printTable(table);
}

// ---------------------------------------------------------------------------------------------------
// (b) real pictures

async function realCases(): Promise<{ cases: Case[]; info: string }> {
  const { curatedOriginals, buildSet, decodeAll } = await import('./dupes.js');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vizdex-bench-mislabels-'));
  try {
    const originals = await curatedOriginals();
    const families = args.includes('--families') ? arg('families', originals.length) : undefined;
    const items = await buildSet(dir, originals, { maxFamilies: families });
    const rasters = await decodeAll(items);
    const model = createBuiltinModel();
    const embedded = await model.embed(rasters);
    const d = model.dimensions;
    const vectors = new Float32Array(items.length * d);
    embedded.forEach((v, i) => vectors.set(v, i * d));
    const graph = await calibratedGraph(vectors, d, model.duplicateCosine);
    const truth = Int32Array.from(items, (item) => item.family);
    const classes = Math.max(...truth) + 1;
    const set: LabelledSet = { vectors, dims: d, truth, classes, siblings: () => [] };
    // Flip among the labels that exist (class ids are family indexes; some are empty after curation).
    const present = [...new Set(truth)];
    const { labels, flipped } = flipLabels({ ...set, classes: present.length, truth: Int32Array.from(truth, (c) => present.indexOf(c)) }, 0.1, 'random', rng(SEED));
    const renamed = labels.map((l) => `class-${present[Number(l.slice('class-'.length))]}`);
    const multi = new Set(items.filter((item) => item.edit !== 'original').map((item) => item.family)).size;
    const info =
      `real pictures: ${originals.length} originals (${multi} with ${items.length > 0 ? 14 : 0} edited copies each, the rest single), ` +
      `${items.length} images, built-in model ${model.id} (duplicateCosine ${model.duplicateCosine}); same-class edges ${fmt(purity(graph, truth))}`;
    return { cases: [{ name: 'real photos', rate: 0.1, mode: 'random', graph, labels: renamed, flipped, truth }], info };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const defaults = { ...MISLABEL_DEFAULTS };
  console.log(
    `mislabel benchmark: findMislabels defaults minSimilarity ${defaults.minSimilarity}, minVoters ${defaults.minVoters}, ` +
      `minShare ${defaults.minShare}, duplicateSimilarity ${defaults.duplicateSimilarity}, selfWeight ${defaults.selfWeight}; ` +
      `k-NN graph k = ${K} from VectorIndex`,
  );
  console.log('\n(a) synthetic classes on the unit sphere (calibrated with duplicateCosine ' + `${SYNTHETIC_DUPLICATE_COSINE}):`);
  const { cases, info } = await syntheticCases();
  printTable(info);
  console.log('');
  printResults(runCases(cases));
  if (args.includes('--sweep')) sweep(cases);

  if (!args.includes('--no-real')) {
    console.log('\n(b) real pictures, one class per original and its edited copies, 10 % of labels flipped:');
    const real = await realCases();
    console.log(real.info);
    console.log('');
    printResults(runCases(real.cases));
    // The built-in model is a near-duplicate descriptor, not a semantic one: unrelated pictures sit at
    // calibrated 0.5–0.8, so a class of one borrows its neighbours' votes unless the floor is raised.
    const floors = [['minSimilarity', 'flagged', 'precision', 'recall', 'F1']];
    for (const minSimilarity of [0.5, 0.7, 0.8, 0.9]) {
      const { s } = runCases(real.cases, { minSimilarity })[0]!;
      floors.push([String(minSimilarity), String(s.flagged), fmt(s.precision), fmt(s.recall), fmt(s.f1)]);
    }
    console.log('\nreal pictures at other similarity floors:');
    printTable(floors);
  }
  console.log(
    '\nprecision = flagged items whose label was flipped / flagged; recall = flipped items flagged / flipped; ' +
      'suggestion ok = flagged flips whose suggested label is the true one; @conf≥0.7 = only flags with confidence ≥ 0.7',
  );
}

await main();
