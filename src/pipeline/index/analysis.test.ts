import { describe, expect, it } from 'vitest';
import { calibrateSimilarity, DUPLICATE_THRESHOLDS } from '../../domain/similarity.js';
import { analyzeDataset, type DatasetAnalysis } from './analysis.js';
import { VectorIndex } from './vector-index.js';
import { seededRandom } from '../../../test/fixtures/random.js';

// ---- synthetic data -------------------------------------------------------------------------

const rng = seededRandom;

function normalize(v: Float64Array): Float64Array {
  let s = 0;
  for (const x of v) s += x * x;
  const inv = 1 / Math.sqrt(s);
  return v.map((x) => x * inv);
}

function randomUnit(d: number, r: ReturnType<typeof rng>): Float64Array {
  return normalize(Float64Array.from({ length: d }, () => r.gaussian()));
}

/** A unit vector whose cosine with unit `v` is exactly `c`. */
function atCosine(v: Float64Array, c: number, r: ReturnType<typeof rng>): Float64Array {
  const u = randomUnit(v.length, r);
  let dot = 0;
  for (let i = 0; i < v.length; i++) dot += u[i]! * v[i]!;
  const ortho = normalize(u.map((x, i) => x - dot * v[i]!));
  return v.map((x, i) => c * x + Math.sqrt(1 - c * c) * ortho[i]!);
}

/** Member of a cluster: centre + Gaussian noise so that its cosine with the centre is about `cos`. */
function around(center: Float64Array, cos: number, r: ReturnType<typeof rng>): Float64Array {
  const d = center.length;
  const sigma = Math.sqrt((1 / (cos * cos) - 1) / d);
  return normalize(center.map((x) => x + sigma * r.gaussian()));
}

const DUP_COS = 0.9; // raw cosine that calibrates to 0.96
/** The raw cosine that calibrates to `s` when DUP_COS → 0.96. */
const rawFor = (s: number) => 1 - ((1 - s) * (1 - DUP_COS)) / (1 - 0.96);

async function analyse(rows: Float64Array[], hashes?: string[], k = 16, labels?: (string | null)[]): Promise<DatasetAnalysis> {
  const d = rows[0]?.length ?? 8;
  const flat = new Float32Array(rows.length * d);
  rows.forEach((row, i) => flat.set(row, i * d));
  const index = await VectorIndex.build(flat, d, { mode: 'exact' });
  const graph = await index.knn(k);
  return analyzeDataset({
    n: rows.length,
    k: graph.k,
    neighbors: graph.neighbors,
    similarities: graph.similarities,
    duplicateCosine: DUP_COS,
    contentHashes: hashes ?? rows.map((_, i) => `h${i}`),
    labels,
  });
}

function sameGroup(groupOf: Int32Array, a: number, b: number): boolean {
  return groupOf[a]! >= 0 && groupOf[a] === groupOf[b];
}

function expectWellFormedClusters(result: DatasetAnalysis): void {
  const n = result.n;
  expect(result.clusters).toHaveLength(5);
  result.clusters.forEach((level, l) => {
    expect(level.level).toBe(l);
    expect(level.clusterOf).toHaveLength(n);
    const counted = new Uint32Array(level.count);
    for (let i = 0; i < n; i++) {
      expect(level.clusterOf[i]).toBeLessThan(level.count);
      counted[level.clusterOf[i]!]!++;
    }
    expect(Array.from(counted)).toEqual(Array.from(level.sizes));
    for (let c = 1; c < level.count; c++) expect(level.sizes[c]).toBeLessThanOrEqual(level.sizes[c - 1]!);
    for (let c = 0; c < level.count; c++) expect(level.clusterOf[level.representatives[c]!]).toBe(c);
    if (l > 0) expect(level.threshold).toBeLessThanOrEqual(result.clusters[l - 1]!.threshold);
    // Nested: every finer cluster lies inside one coarser cluster, and parentOf says which.
    if (l < 4) {
      const coarse = result.clusters[l + 1]!;
      expect(level.parentOf).not.toBeNull();
      for (let i = 0; i < n; i++) expect(coarse.clusterOf[i]).toBe(level.parentOf![level.clusterOf[i]!]);
    } else {
      expect(level.parentOf).toBeNull();
    }
  });
}

// ---- tests ----------------------------------------------------------------------------------

describe('analyzeDataset: exact duplicates', () => {
  it('groups identical content hashes, joins them at every near-duplicate level and scores them 0', async () => {
    const r = rng(1);
    const rows = Array.from({ length: 40 }, () => randomUnit(32, r));
    const hashes = rows.map((_, i) => `h${i}`);
    // Items 3, 17 and 30 are the same file; their embeddings differ (e.g. a model that is not deterministic).
    hashes[17] = hashes[3]!;
    hashes[30] = hashes[3]!;
    hashes[8] = hashes[9]!;
    hashes[5] = ''; // unknown hash: never grouped
    hashes[6] = '';
    const result = await analyse(rows, hashes);

    expect(result.exact.count).toBe(2);
    expect(Array.from(result.exact.sizes)).toEqual([3, 2]);
    expect(result.exact.groupOf[3]).toBe(0);
    expect(result.exact.groupOf[17]).toBe(0);
    expect(result.exact.groupOf[30]).toBe(0);
    expect(sameGroup(result.exact.groupOf, 8, 9)).toBe(true);
    expect(result.exact.groupOf[5]).toBe(-1);
    expect(result.exact.groupOf[6]).toBe(-1);
    for (const level of result.nearDuplicates) {
      expect(sameGroup(level.groupOf, 3, 30)).toBe(true);
      expect(sameGroup(level.groupOf, 8, 9)).toBe(true);
      expect(level.groupOf[5]).toBe(-1);
    }
    for (const i of [3, 17, 30, 8, 9]) {
      expect(result.uniqueness[i]).toBe(0);
      expect(result.nearestSimilarity[i]).toBe(1);
    }
  });
});

describe('analyzeDataset: near-duplicate groups', () => {
  it('puts planted pairs in a group exactly at the thresholds their similarity reaches', async () => {
    const r = rng(2);
    const rows: Float64Array[] = [];
    for (let i = 0; i < 300; i++) rows.push(randomUnit(64, r)); // unrelated background
    const planted = [0.955, 0.965, 0.975, 0.9825, 0.9875, 0.9925, 0.997, 0.9995];
    const pairs: { a: number; b: number; s: number }[] = [];
    for (const s of planted) {
      const base = randomUnit(64, r);
      rows.push(base, atCosine(base, rawFor(s), r));
      pairs.push({ a: rows.length - 2, b: rows.length - 1, s });
    }
    // Identical embeddings of different files: similarity 1.
    const same = randomUnit(64, r);
    rows.push(same, Float64Array.from(same));
    pairs.push({ a: rows.length - 2, b: rows.length - 1, s: 1 });

    const result = await analyse(rows);
    expect(result.nearDuplicates.map((l) => l.threshold)).toEqual([...DUPLICATE_THRESHOLDS]);
    for (const { a, b, s } of pairs) {
      result.nearDuplicates.forEach((level) => {
        expect(sameGroup(level.groupOf, a, b), `pair at ${s}, threshold ${level.threshold}`).toBe(s >= level.threshold);
      });
    }
    // The background has no duplicates at all.
    for (const level of result.nearDuplicates) {
      for (let i = 0; i < 300; i++) expect(level.groupOf[i]).toBe(-1);
    }
    expect(result.nearDuplicates[0]!.count).toBe(planted.length); // 0.955 is below every level, 1.0 counts
    expect(result.nearDuplicates[7]!.count).toBe(1);
    expect(result.exact.count).toBe(0);
  });

  it('joins chains into one group (connected components) and groups only 2+ items', async () => {
    const r = rng(3);
    const rows: Float64Array[] = [];
    for (let i = 0; i < 100; i++) rows.push(randomUnit(64, r));
    // a–b and b–c at 0.975 calibrated; a–c is then lower, but a, b, c are one group at 0.97.
    const b = randomUnit(64, r);
    const c1 = rawFor(0.975);
    const a = atCosine(b, c1, r);
    // c: same cosine with b, on the other side of b from a (so farther from a).
    const c = normalize(b.map((x, i) => 2 * c1 * x - a[i]!));
    rows.push(a, b, c);
    const [ia, ib, ic] = [100, 101, 102];
    const result = await analyse(rows);
    const at097 = result.nearDuplicates[DUPLICATE_THRESHOLDS.indexOf(0.97)]!;
    expect(sameGroup(at097.groupOf, ia, ic)).toBe(true);
    expect(at097.sizes[at097.groupOf[ia]!]).toBe(3);
    const at098 = result.nearDuplicates[DUPLICATE_THRESHOLDS.indexOf(0.98)]!;
    expect(at098.groupOf[ia]).toBe(-1);
    expect(at098.groupOf[ib]).toBe(-1);
  });
});

describe('analyzeDataset: clusters', () => {
  it('recovers planted clusters at a coarse level, nested, one cluster per item, representatives central', async () => {
    const r = rng(4);
    const d = 48;
    const rows: Float64Array[] = [];
    const truth: number[] = [];
    const clusterSizes = [120, 90, 60, 40, 30, 20];
    clusterSizes.forEach((size, c) => {
      const center = randomUnit(d, r);
      for (let i = 0; i < size; i++) {
        rows.push(around(center, 0.8, r));
        truth.push(c);
      }
    });
    // Planted near-duplicates inside clusters, so level 0 has groups.
    for (let i = 0; i < 20; i++) {
      rows.push(atCosine(rows[i * 7]!, rawFor(0.985), r));
      truth.push(truth[i * 7]!);
    }
    const result = await analyse(rows);
    expectWellFormedClusters(result);

    // Level 0 holds near duplicates only: the planted pairs, inside the 0.96 groups.
    const level0 = result.clusters[0]!;
    const dup = result.nearDuplicates[0]!;
    for (let i = 0; i < 20; i++) {
      expect(level0.clusterOf[i * 7]).toBe(level0.clusterOf[clusterSizes.reduce((a, b) => a + b) + i]);
    }
    for (let c = 0; c < level0.count; c++) {
      const members = Array.from(level0.clusterOf.keys()).filter((i) => level0.clusterOf[i] === c);
      for (const i of members.slice(1)) expect(sameGroup(dup.groupOf, members[0]!, i)).toBe(true);
    }
    // Coarse levels: each found cluster is pure, and each planted cluster is essentially one cluster.
    const coarse = result.clusters[4]!;
    for (let c = 0; c < clusterSizes.length; c++) {
      const members = truth.flatMap((t, i) => (t === c ? [i] : []));
      const counts = new Map<number, number>();
      for (const i of members) counts.set(coarse.clusterOf[i]!, (counts.get(coarse.clusterOf[i]!) ?? 0) + 1);
      const [top, topCount] = [...counts.entries()].sort((x, y) => y[1] - x[1])[0]!;
      expect(topCount / members.length, `planted cluster ${c}`).toBeGreaterThanOrEqual(0.9);
      // Purity: the found cluster holds (almost) nothing from other planted clusters.
      const foreign = truth.filter((t, i) => coarse.clusterOf[i] === top && t !== c).length;
      expect(foreign).toBeLessThanOrEqual(1);
      // The representative is a member of the planted cluster.
      expect(truth[coarse.representatives[top]!]).toBe(c);
    }
    // Granularity: coarser levels never have more clusters.
    for (let l = 1; l < 5; l++) expect(result.clusters[l]!.count).toBeLessThanOrEqual(result.clusters[l - 1]!.count);
    expect(result.clusters[0]!.count).toBeGreaterThan(result.clusters[4]!.count * 10);
  });

  it.each([0.9, 0.93])('does not chain two clusters through a bridge of points (bridge tightness %s)', async (tightness) => {
    const r = rng(5);
    const d = 48;
    const ca = randomUnit(d, r);
    const cb = randomUnit(d, r);
    const rows: Float64Array[] = [];
    for (let i = 0; i < 150; i++) rows.push(around(ca, 0.85, r));
    for (let i = 0; i < 150; i++) rows.push(around(cb, 0.85, r));
    // A bridge: points along the arc from one centre to the other, each as close to the next as
    // cluster members are to each other (0.9), or closer (0.93): single linkage joins A and B.
    for (let s = 1; s < 40; s++) {
      const w = s / 40;
      rows.push(around(normalize(ca.map((x, i) => (1 - w) * x + w * cb[i]!)), tightness, r));
    }
    const result = await analyse(rows);
    expectWellFormedClusters(result);
    for (const level of result.clusters) {
      const a = level.clusterOf[0]!;
      const b = level.clusterOf[150]!;
      expect(a, `level ${level.level}`).not.toBe(b);
    }
    // …and yet each side is one cluster at the coarsest level (but for its few most isolated members).
    const coarse = result.clusters[4]!;
    for (const side of [coarse.clusterOf.subarray(0, 150), coarse.clusterOf.subarray(150, 300)]) {
      const counts = new Map<number, number>();
      for (const c of side) counts.set(c, (counts.get(c) ?? 0) + 1);
      expect(Math.max(...counts.values())).toBeGreaterThanOrEqual(0.9 * 150);
    }
  });
});

describe('analyzeDataset: outliers and uniqueness', () => {
  it('flags planted outliers with confidence, and nothing in a tight clustered set', async () => {
    const r = rng(6);
    const d = 48;
    const rows: Float64Array[] = [];
    for (let c = 0; c < 8; c++) {
      const center = randomUnit(d, r);
      for (let i = 0; i < 60; i++) rows.push(around(center, 0.9, r));
    }
    const clean = await analyse(rows);
    expect(clean.outliers.items.length).toBeLessThanOrEqual(2);

    const planted = [rows.length, rows.length + 1, rows.length + 2];
    for (let i = 0; i < planted.length; i++) rows.push(randomUnit(d, r));
    const result = await analyse(rows);
    const flagged = Array.from(result.outliers.items);
    for (const p of planted) expect(flagged).toContain(p);
    expect(flagged.slice(0, 3).sort()).toEqual(planted);
    for (const c of result.outliers.confidence) {
      expect(c).toBeGreaterThanOrEqual(0.5);
      expect(c).toBeLessThanOrEqual(1);
    }
    for (let i = 1; i < result.outliers.confidence.length; i++) {
      expect(result.outliers.confidence[i]).toBeLessThanOrEqual(result.outliers.confidence[i - 1]!);
    }
    for (const p of planted) expect(result.uniqueness[p]).toBeGreaterThan(0.9);
  });

  it('has no outliers in a tiny dataset', async () => {
    const r = rng(7);
    const rows = Array.from({ length: 9 }, () => randomUnit(16, r));
    rows.push(randomUnit(16, r));
    const tiny = await analyse(rows.slice(0, 9));
    expect(tiny.outliers.items.length).toBe(0);
  });

  it('scores uniqueness in [0,1], 0 for near duplicates, monotone in nearest-neighbour similarity', async () => {
    const r = rng(8);
    const rows: Float64Array[] = [];
    for (let i = 0; i < 200; i++) rows.push(around(randomUnit(32, r), 0.9, r));
    for (let i = 0; i < 20; i++) rows.push(atCosine(rows[i]!, rawFor(0.95 + i * 0.0025), r));
    const result = await analyse(rows);
    const order = Array.from(result.uniqueness.keys()).sort((a, b) => result.nearestSimilarity[a]! - result.nearestSimilarity[b]!);
    for (let o = 1; o < order.length; o++) {
      expect(result.uniqueness[order[o]!]).toBeLessThanOrEqual(result.uniqueness[order[o - 1]!]! + 1e-7);
    }
    for (let i = 0; i < rows.length; i++) {
      const u = result.uniqueness[i]!;
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThanOrEqual(1);
      if (result.nearestSimilarity[i]! >= 0.96 - 1e-6) expect(u).toBe(0);
      else expect(u).toBeGreaterThan(0);
    }
    // The planted pair at 0.99 calibrated: both redundant.
    expect(result.uniqueness[16]).toBe(0);
    expect(result.uniqueness[216]).toBe(0);
    expect(result.nearestSimilarity[216]).toBeCloseTo(calibrateSimilarity(rawFor(0.99), DUP_COS), 3);
  });
});

describe('analyzeDataset: degenerate inputs', () => {
  it('handles an empty dataset', () => {
    const result = analyzeDataset({
      n: 0,
      k: 4,
      neighbors: new Uint32Array(0),
      similarities: new Float32Array(0),
      duplicateCosine: DUP_COS,
      contentHashes: [],
    });
    expect(result.exact.count).toBe(0);
    expect(result.nearDuplicates).toHaveLength(DUPLICATE_THRESHOLDS.length);
    expect(result.clusters.map((c) => c.count)).toEqual([0, 0, 0, 0, 0]);
    expect(result.outliers.items.length).toBe(0);
    expect(result.uniqueness.length).toBe(0);
  });

  it('handles one item and two items', async () => {
    const r = rng(9);
    const one = await analyse([randomUnit(8, r)]);
    expect(one.clusters.map((c) => c.count)).toEqual([1, 1, 1, 1, 1]);
    expect(one.clusters[0]!.representatives[0]).toBe(0);
    expect(one.uniqueness[0]).toBe(1);
    expect(one.nearestSimilarity[0]).toBe(0);
    expectWellFormedClusters(one);

    const v = randomUnit(8, r);
    const two = await analyse([v, Float64Array.from(v)]);
    expect(two.nearDuplicates.every((l) => l.count === 1)).toBe(true);
    expect(two.clusters.map((c) => c.count)).toEqual([1, 1, 1, 1, 1]);
    expect(Array.from(two.uniqueness)).toEqual([0, 0]);
    expectWellFormedClusters(two);
  });

  it('rejects arrays of the wrong length', () => {
    expect(() =>
      analyzeDataset({
        n: 2,
        k: 2,
        neighbors: new Uint32Array(3),
        similarities: new Float32Array(4),
        duplicateCosine: DUP_COS,
        contentHashes: ['a', 'b'],
      }),
    ).toThrow(/n\*k/);
  });
});

describe('analyzeDataset: mislabels', () => {
  it('flags the items whose label disagrees with their neighbours, on the calibrated graph, and nothing without labels', async () => {
    const r = rng(9);
    const rows: Float64Array[] = [];
    const labels: (string | null)[] = [];
    for (const name of ['cat', 'dog', 'bird']) {
      const center = randomUnit(32, r);
      for (let i = 0; i < 30; i++) {
        rows.push(around(center, 0.8, r));
        labels.push(i === 29 ? null : name);
      }
    }
    labels[5] = 'dog';
    labels[40] = 'bird';
    const result = await analyse(rows, undefined, 16, labels);
    expect(result.mislabels.map((m) => [m.item, m.suggestedLabel]).sort()).toEqual([
      [40, 'dog'],
      [5, 'cat'],
    ]);
    for (const m of result.mislabels) expect(m.confidence).toBeGreaterThan(0.5);
    expect((await analyse(rows)).mislabels).toEqual([]);
  });
});
