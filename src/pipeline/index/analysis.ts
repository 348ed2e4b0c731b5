import { calibrateSimilarity, DEFAULT_DUPLICATE_THRESHOLD, DUPLICATE_THRESHOLDS } from '../../domain/similarity.js';
import { findMislabels, type Mislabel } from './mislabels.js';
import { UnionFind } from './union-find.js';
import { NO_NEIGHBOR } from './vector-index.js';

/**
 * Dataset analysis from one k-NN graph (pure, no I/O): exact-duplicate groups, near-duplicate groups
 * at every threshold, clusters at five nested granularities, outliers and uniqueness. Everything is
 * typed arrays indexed by item (0..n-1) so a million items stay compact.
 *
 * Similarities are put on the calibrated scale first (`calibrateSimilarity`, 0.96 = "the same
 * picture"); items with the same content hash count as similarity 1 whether or not the graph
 * links them.
 *
 * Clusters (level 0 finest … 4 coarsest) are nested agglomerations over the k-NN edges: starting
 * from exact-duplicate groups, each level merges whole clusters of the level below over edges at or
 * above its threshold, so a coarse cluster is always a union of finer ones. Level 0 links at the
 * default near-duplicate threshold (0.96), so its clusters are near-duplicate groups; the thresholds
 * of levels 1–4 adapt to the dataset: level L uses the similarity below which a fixed share of items
 * have no neighbour at all (quantiles of the nearest-neighbour similarity, default 50 %, 30 %, 15 %,
 * 5 %), so a granularity means the same on any embedding model. Merging avoids single-linkage
 * chaining three ways:
 *  - support: clusters A and B may merge only when the edges above the threshold between them number
 *    at least `linkSupport` × min(|A|, |B|): the smaller one is attached by many links, not joined
 *    through one bridge;
 *  - average linkage: a cluster's preferred partner maximises the summed edge similarity divided by
 *    |A|·|B| (graph average linkage, missing pairs count 0), so compact groups form before an
 *    elongated cluster can swallow pieces of its neighbours;
 *  - star rounds: each cluster points at its preferred eligible partner; only clusters pointing at a
 *    cluster that stays put (the winner of a mutual pair, or one with no partner) merge into it in a
 *    round, so chains X→Y→Z never collapse in one step; sizes and support are re-evaluated between
 *    rounds.
 * The near-duplicate groups are plain connected components (transitive, like fastdup); a level-0
 * cluster can split a long chain of near duplicates (a slow video pan) that the groups keep whole.
 */

export interface AnalysisInput {
  /** Items. */
  n: number;
  /** Neighbours per item in the graph. */
  k: number;
  /** n*k neighbour ids, best first; NO_NEIGHBOR (0xffffffff) where missing. */
  neighbors: Uint32Array;
  /** n*k raw cosine similarities matching `neighbors`. */
  similarities: Float32Array;
  /** The model's raw cosine that means "the same picture" (→ 0.96 calibrated). */
  duplicateCosine: number;
  /** sha256 per item; '' when unknown (never grouped). */
  contentHashes: readonly string[];
  /** One label per item (null = unlabelled): items whose neighbours' labels disagree are mislabels. */
  labels?: readonly (string | null)[];
}

export interface AnalysisOptions {
  /** Quantiles of nearest-neighbour similarity giving the thresholds of cluster levels 1–4. */
  clusterQuantiles?: readonly [number, number, number, number];
  /** Edges needed between two clusters per member of the smaller one (default 1). */
  linkSupport?: number;
  /** Datasets smaller than this have no outliers (default 10). */
  minItemsForOutliers?: number;
  /** At most this share of items are outliers (default 0.05). */
  outlierFraction?: number;
  /** An item whose nearest neighbour is at least this similar (calibrated) is never an outlier (default 0.9). */
  outlierMaxSimilarity?: number;
  /** Robust z-score (log nearest-neighbour distance vs. the dataset's median, in scaled MADs) an outlier needs (default 3). */
  outlierMinZ?: number;
}

export interface GroupLevel {
  /** Calibrated similarity threshold (1 for exact duplicates). */
  threshold: number;
  /** Group per item, -1 when the item has no duplicate; groups numbered by size, largest first. */
  groupOf: Int32Array;
  /** Members per group. */
  sizes: Uint32Array;
  readonly count: number;
}

export interface ClusterLevel {
  /** 0 finest … 4 coarsest. */
  level: number;
  /** Calibrated similarity the level links at. */
  threshold: number;
  /** Cluster per item; clusters numbered by size, largest first (ties: earliest member). */
  clusterOf: Uint32Array;
  sizes: Uint32Array;
  /** The most central member of each cluster (highest summed in-cluster similarity). */
  representatives: Uint32Array;
  /** Cluster at level+1 that contains each cluster (null at the coarsest level). */
  parentOf: Uint32Array | null;
  readonly count: number;
}

export interface DatasetAnalysis {
  n: number;
  /** Items with identical content hash. */
  exact: GroupLevel;
  /** One level per DUPLICATE_THRESHOLDS entry, same order. */
  nearDuplicates: GroupLevel[];
  /** Five levels, 0 finest … 4 coarsest. */
  clusters: ClusterLevel[];
  /** Outlier items, most confident first, with confidence in [0, 1]. */
  outliers: { items: Uint32Array; confidence: Float32Array };
  /** Calibrated similarity of each item's nearest neighbour (1 for an exact duplicate, 0 for none). */
  nearestSimilarity: Float32Array;
  /** 0 = redundant (a near duplicate exists) … 1 = unique. */
  uniqueness: Float32Array;
  /** Items whose label disagrees with their neighbours' (findMislabels on the calibrated graph). */
  mislabels: Mislabel[];
}

const EPS = 1e-6;
const DEFAULT_QUANTILES = [0.5, 0.3, 0.15, 0.05] as const;
/** Each cluster level links at least this much lower than the one below it. */
const MIN_LEVEL_STEP = 0.005;
const MAX_MERGE_ROUNDS = 64;
/** Keeps log(distance) finite for exact duplicates (distance 0). */
const LOG_DISTANCE_FLOOR = 1e-3;

export function analyzeDataset(input: AnalysisInput, options: AnalysisOptions = {}): DatasetAnalysis {
  const { n, k, neighbors } = input;
  if (neighbors.length !== n * k || input.similarities.length !== n * k) {
    throw new Error(`k-NN arrays must hold n*k = ${n * k} entries`);
  }
  if (input.contentHashes.length !== n) throw new Error(`Expected ${n} content hashes, got ${input.contentHashes.length}`);

  const calibrated = calibrate(input);
  const exact = exactGroups(input.contentHashes);
  const { nearest, alone } = nearestSimilarities(n, k, neighbors, calibrated, exact.groupOf);
  const nearDuplicates = nearDuplicateGroups(n, k, neighbors, calibrated, exact.groupOf);
  const clusters = clusterLevels(n, k, neighbors, calibrated, nearest, exact, options);
  const outliers = findOutliers(nearest, options);
  const uniqueness = uniquenessScores(nearest, alone);
  const labels = input.labels;
  if (labels && labels.length !== n) throw new Error(`Expected ${n} labels, got ${labels.length}`);
  const mislabels = labels?.some((l) => l !== null) ? findMislabels({ n, k, neighbors, similarities: calibrated, labels }) : [];
  return { n, exact, nearDuplicates, clusters, outliers, nearestSimilarity: nearest, uniqueness, mislabels };
}

/** Raw → calibrated similarities; missing neighbours stay -Infinity. */
function calibrate(input: AnalysisInput): Float32Array {
  const { neighbors, similarities, duplicateCosine } = input;
  const out = new Float32Array(similarities.length);
  for (let e = 0; e < out.length; e++) {
    out[e] = neighbors[e] === NO_NEIGHBOR ? Number.NEGATIVE_INFINITY : calibrateSimilarity(similarities[e]!, duplicateCosine);
  }
  return out;
}

function exactGroups(hashes: readonly string[]): GroupLevel {
  const n = hashes.length;
  const uf = new UnionFind(n);
  const first = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const h = hashes[i];
    if (!h) continue;
    const f = first.get(h);
    if (f === undefined) first.set(h, i);
    else uf.union(f, i);
  }
  return groupsFrom(uf, 1);
}

function nearestSimilarities(
  n: number,
  k: number,
  neighbors: Uint32Array,
  calibrated: Float32Array,
  exactGroupOf: Int32Array,
): { nearest: Float32Array; alone: Uint8Array } {
  const nearest = new Float32Array(n);
  const alone = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if (exactGroupOf[i]! >= 0) {
      nearest[i] = 1;
      continue;
    }
    let best = 0;
    let any = false;
    for (let e = i * k; e < (i + 1) * k; e++) {
      const j = neighbors[e]!;
      if (j === NO_NEIGHBOR || j === i) continue;
      any = true;
      if (calibrated[e]! > best) best = calibrated[e]!;
    }
    nearest[i] = best;
    alone[i] = any ? 0 : 1;
  }
  return { nearest, alone };
}

/**
 * Connected components of the edges at or above each threshold, computed in one sweep from the
 * strictest threshold down with one union-find (components only grow as the threshold drops).
 */
function nearDuplicateGroups(
  n: number,
  k: number,
  neighbors: Uint32Array,
  calibrated: Float32Array,
  exactGroupOf: Int32Array,
): GroupLevel[] {
  const levels = DUPLICATE_THRESHOLDS.length;
  // Bucket every edge by the strictest threshold it passes.
  const bucketOf = new Int8Array(n * k).fill(-1);
  const bucketSize = new Uint32Array(levels);
  for (let e = 0; e < n * k; e++) {
    const s = calibrated[e]!;
    const j = neighbors[e]!;
    if (j === NO_NEIGHBOR || s < DUPLICATE_THRESHOLDS[0] - EPS) continue;
    let b = 0;
    while (b + 1 < levels && s >= DUPLICATE_THRESHOLDS[b + 1]! - EPS) b++;
    bucketOf[e] = b;
    bucketSize[b]!++;
  }
  const bucketStart = new Uint32Array(levels + 1);
  for (let b = 0; b < levels; b++) bucketStart[b + 1] = bucketStart[b]! + bucketSize[b]!;
  const order = new Uint32Array(bucketStart[levels]!);
  const fill = bucketStart.slice(0, levels);
  for (let e = 0; e < n * k; e++) {
    const b = bucketOf[e]!;
    if (b >= 0) order[fill[b]!++] = e;
  }

  const uf = new UnionFind(n);
  // Exact duplicates are joined at every level.
  const firstOfGroup = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const g = exactGroupOf[i]!;
    if (g < 0) continue;
    const f = firstOfGroup.get(g);
    if (f === undefined) firstOfGroup.set(g, i);
    else uf.union(f, i);
  }
  const result: GroupLevel[] = new Array(levels);
  for (let b = levels - 1; b >= 0; b--) {
    for (let o = bucketStart[b]!; o < bucketStart[b + 1]!; o++) {
      const e = order[o]!;
      uf.union(Math.floor(e / k), neighbors[e]!);
    }
    result[b] = groupsFrom(uf, DUPLICATE_THRESHOLDS[b]!);
  }
  return result;
}

/** Sets of two or more → group ids numbered by size (largest first, ties by earliest member). */
function groupsFrom(uf: UnionFind, threshold: number): GroupLevel {
  const n = uf.n;
  const groupOf = new Int32Array(n).fill(-1);
  const provisional = new Int32Array(n).fill(-1); // root → provisional id
  const provSizes: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = uf.find(i);
    const size = uf.size(r);
    if (size < 2) continue;
    let p = provisional[r]!;
    if (p < 0) {
      p = provSizes.length;
      provisional[r] = p;
      provSizes.push(size);
    }
    groupOf[i] = p;
  }
  const { remap, sizes } = renumberBySize(provSizes);
  for (let i = 0; i < n; i++) if (groupOf[i]! >= 0) groupOf[i] = remap[groupOf[i]!]!;
  return { threshold, groupOf, sizes, count: sizes.length };
}

/** Ids in first-appearance order → ids by size descending (stable). */
function renumberBySize(sizesByOldId: ArrayLike<number>): { remap: Uint32Array; sizes: Uint32Array } {
  const count = sizesByOldId.length;
  const order = Array.from({ length: count }, (_, i) => i);
  order.sort((a, b) => sizesByOldId[b]! - sizesByOldId[a]! || a - b);
  const remap = new Uint32Array(count);
  const sizes = new Uint32Array(count);
  for (let rank = 0; rank < count; rank++) {
    remap[order[rank]!] = rank;
    sizes[rank] = sizesByOldId[order[rank]!]!;
  }
  return { remap, sizes };
}

// ---------------------------------------------------------------------------------------------
// Clusters

/** Aggregated edges between clusters: pair (a < b), how many base edges, their summed similarity. */
interface ClusterEdges {
  a: Uint32Array;
  b: Uint32Array;
  count: Uint32Array;
  sum: Float64Array;
  length: number;
}

function clusterLevels(
  n: number,
  k: number,
  neighbors: Uint32Array,
  calibrated: Float32Array,
  nearest: Float32Array,
  exact: GroupLevel,
  options: AnalysisOptions,
): ClusterLevel[] {
  const quantiles = options.clusterQuantiles ?? DEFAULT_QUANTILES;
  const support = options.linkSupport ?? 1;

  const thresholds = [DEFAULT_DUPLICATE_THRESHOLD];
  const sortedNearest = nearest.slice().sort();
  for (const q of quantiles) {
    const previous = thresholds[thresholds.length - 1]!;
    const fromData = n > 0 ? quantileOfSorted(sortedNearest, q) : previous;
    thresholds.push(Math.max(0, Math.min(fromData, previous - MIN_LEVEL_STEP)));
  }

  // Start from exact duplicates (same content), every other item alone; level 0 merges at 0.96.
  const raw: { labels: Uint32Array; count: number; threshold: number }[] = [];
  let labels: Uint32Array = new Uint32Array(n);
  let count = exact.count;
  for (let i = 0; i < n; i++) {
    const g = exact.groupOf[i]!;
    labels[i] = g >= 0 ? g : count++;
  }
  for (let level = 0; level < thresholds.length; level++) {
    const t = thresholds[level]!;
    const merged = mergeLevel(n, k, neighbors, calibrated, labels, count, t, support);
    labels = merged.labels;
    count = merged.count;
    raw.push({ labels, count, threshold: t });
  }

  // Number clusters by size at every level, then link each level to the next.
  const levels: ClusterLevel[] = raw.map((r, level) => {
    const sizesOld = new Uint32Array(r.count);
    for (let i = 0; i < n; i++) sizesOld[r.labels[i]!]!++;
    // Stable "earliest member" tie-break: renumber ids by first appearance first.
    const firstSeen = new Int32Array(r.count).fill(-1);
    let next = 0;
    for (let i = 0; i < n; i++) if (firstSeen[r.labels[i]!]! < 0) firstSeen[r.labels[i]!] = next++;
    const sizesByFirst = new Uint32Array(r.count);
    for (let c = 0; c < r.count; c++) sizesByFirst[firstSeen[c]!] = sizesOld[c]!;
    const { remap, sizes } = renumberBySize(sizesByFirst);
    const clusterOf = new Uint32Array(n);
    for (let i = 0; i < n; i++) clusterOf[i] = remap[firstSeen[r.labels[i]!]!]!;
    return {
      level,
      threshold: r.threshold,
      clusterOf,
      sizes,
      representatives: representatives(n, k, neighbors, calibrated, clusterOf, sizes.length),
      parentOf: null,
      count: sizes.length,
    };
  });
  for (let level = 0; level + 1 < levels.length; level++) {
    const fine = levels[level]!;
    const coarse = levels[level + 1]!;
    const parentOf = new Uint32Array(fine.count);
    for (let i = 0; i < n; i++) parentOf[fine.clusterOf[i]!] = coarse.clusterOf[i]!;
    fine.parentOf = parentOf;
  }
  return levels;
}

/** Merges the clusters `labels` (0..count-1) over edges ≥ t; returns the coarser labelling. */
function mergeLevel(
  n: number,
  k: number,
  neighbors: Uint32Array,
  calibrated: Float32Array,
  labels: Uint32Array,
  count: number,
  t: number,
  support: number,
): { labels: Uint32Array; count: number } {
  // Base edges above the threshold between different clusters.
  let m = 0;
  for (let e = 0; e < n * k; e++) {
    const j = neighbors[e]!;
    if (j !== NO_NEIGHBOR && calibrated[e]! >= t - EPS && labels[Math.floor(e / k)] !== labels[j]) m++;
  }
  const ea = new Uint32Array(m);
  const eb = new Uint32Array(m);
  const ec = new Uint32Array(m).fill(1);
  const es = new Float64Array(m);
  m = 0;
  for (let i = 0; i < n; i++) {
    const li = labels[i]!;
    for (let e = i * k; e < (i + 1) * k; e++) {
      const j = neighbors[e]!;
      if (j === NO_NEIGHBOR || calibrated[e]! < t - EPS) continue;
      const lj = labels[j]!;
      if (li === lj) continue;
      ea[m] = Math.min(li, lj);
      eb[m] = Math.max(li, lj);
      es[m] = calibrated[e]!;
      m++;
    }
  }
  let edges = aggregate({ a: ea, b: eb, count: ec, sum: es, length: m }, count);

  const sizes = new Float64Array(count);
  for (let i = 0; i < n; i++) sizes[labels[i]!]!++;
  // into[c] = the cluster c was merged into (c itself while it is a root); follow it to the final root.
  const into = new Uint32Array(count);
  for (let c = 0; c < count; c++) into[c] = c;

  const best = new Int32Array(count);
  const bestScore = new Float64Array(count);
  const bestCount = new Float64Array(count);
  for (let round = 0; round < MAX_MERGE_ROUNDS && edges.length > 0; round++) {
    best.fill(-1);
    bestScore.fill(Number.NEGATIVE_INFINITY);
    bestCount.fill(0);
    const offer = (x: number, y: number, score: number, c: number) => {
      const s = bestScore[x]!;
      if (score > s || (score === s && (c > bestCount[x]! || (c === bestCount[x]! && y < best[x]!)))) {
        best[x] = y;
        bestScore[x] = score;
        bestCount[x] = c;
      }
    };
    for (let p = 0; p < edges.length; p++) {
      const a = edges.a[p]!;
      const b = edges.b[p]!;
      const c = edges.count[p]!;
      if (c < support * Math.min(sizes[a]!, sizes[b]!)) continue;
      const score = edges.sum[p]! / (sizes[a]! * sizes[b]!);
      offer(a, b, score, c);
      offer(b, a, score, c);
    }
    // A cluster stays put when it has no partner, or it is the winner of a mutual best pair.
    const stays = (x: number): boolean => {
      const y = best[x]!;
      if (y < 0) return true;
      if (best[y] !== x) return false;
      return sizes[x]! > sizes[y]! || (sizes[x] === sizes[y] && x < y);
    };
    let merges = 0;
    const target = new Int32Array(count).fill(-1);
    for (let x = 0; x < count; x++) {
      const y = best[x]!;
      if (y < 0 || stays(x) || !stays(y)) continue;
      target[x] = y;
      merges++;
    }
    if (merges === 0) break;
    for (let x = 0; x < count; x++) {
      const y = target[x]!;
      if (y < 0) continue;
      into[x] = y;
      sizes[y] = sizes[y]! + sizes[x]!;
      sizes[x] = 0;
    }
    // Relabel the edge endpoints to the surviving clusters and re-aggregate.
    let w = 0;
    for (let p = 0; p < edges.length; p++) {
      const a = into[edges.a[p]!]!;
      const b = into[edges.b[p]!]!;
      if (a === b) continue;
      edges.a[w] = Math.min(a, b);
      edges.b[w] = Math.max(a, b);
      edges.count[w] = edges.count[p]!;
      edges.sum[w] = edges.sum[p]!;
      w++;
    }
    edges.length = w;
    edges = aggregate(edges, count);
  }

  // Resolve every old cluster to its final root (merges form trees across rounds) and number densely.
  const root = new Uint32Array(count);
  for (let c = 0; c < count; c++) {
    let r = c;
    while (into[r] !== r) r = into[r]!;
    root[c] = r;
  }
  const dense = new Int32Array(count).fill(-1);
  let next = 0;
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const r = root[labels[i]!]!;
    if (dense[r]! < 0) dense[r] = next++;
    out[i] = dense[r]!;
  }
  return { labels: out, count: next };
}

/** Sums duplicate (a, b) pairs: bucket by a, accumulate b through a scatter table. O(E + clusters). */
function aggregate(edges: ClusterEdges, clusters: number): ClusterEdges {
  const m = edges.length;
  const start = new Uint32Array(clusters + 1);
  for (let p = 0; p < m; p++) start[edges.a[p]! + 1]!++;
  for (let c = 0; c < clusters; c++) start[c + 1] = start[c + 1]! + start[c]!;
  const fill = start.slice(0, clusters);
  const byA = new Uint32Array(m);
  for (let p = 0; p < m; p++) byA[fill[edges.a[p]!]!++] = p;

  const a = new Uint32Array(m);
  const b = new Uint32Array(m);
  const count = new Uint32Array(m);
  const sum = new Float64Array(m);
  const slot = new Int32Array(clusters).fill(-1);
  let w = 0;
  for (let c = 0; c < clusters; c++) {
    const rowStart = w;
    for (let o = start[c]!; o < start[c + 1]!; o++) {
      const p = byA[o]!;
      const other = edges.b[p]!;
      let s = slot[other]!;
      if (s < rowStart) {
        s = w++;
        slot[other] = s;
        a[s] = c;
        b[s] = other;
        count[s] = 0;
        sum[s] = 0;
      }
      count[s] = count[s]! + edges.count[p]!;
      sum[s] = sum[s]! + edges.sum[p]!;
    }
  }
  return { a, b, count, sum, length: w };
}

/** Per cluster, the member with the highest summed similarity to its in-cluster graph neighbours. */
function representatives(
  n: number,
  k: number,
  neighbors: Uint32Array,
  calibrated: Float32Array,
  clusterOf: Uint32Array,
  count: number,
): Uint32Array {
  const centrality = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const ci = clusterOf[i]!;
    for (let e = i * k; e < (i + 1) * k; e++) {
      const j = neighbors[e]!;
      if (j === NO_NEIGHBOR || j === i || clusterOf[j] !== ci) continue;
      const s = calibrated[e]!;
      centrality[i] = centrality[i]! + s;
      centrality[j] = centrality[j]! + s;
    }
  }
  const rep = new Int32Array(count).fill(-1);
  for (let i = 0; i < n; i++) {
    const c = clusterOf[i]!;
    const r = rep[c]!;
    if (r < 0 || centrality[i]! > centrality[r]!) rep[c] = i;
  }
  return Uint32Array.from(rep);
}

// ---------------------------------------------------------------------------------------------
// Outliers and uniqueness

function quantileOfSorted(sorted: Float32Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = Math.min(sorted.length - 1, Math.max(0, q * (sorted.length - 1)));
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * Outliers: items whose nearest neighbour is far by the dataset's own standard — a robust z-score of
 * the log nearest-neighbour distance (median and MAD over all items) of at least `outlierMinZ` — and among
 * the `outlierFraction` most isolated items, and with no neighbour at least `outlierMaxSimilarity`
 * similar. Confidence grows with the z-score: 0.5 at the bar, → 1 far beyond it.
 */
function findOutliers(nearest: Float32Array, options: AnalysisOptions): { items: Uint32Array; confidence: Float32Array } {
  const n = nearest.length;
  const none = { items: new Uint32Array(0), confidence: new Float32Array(0) };
  if (n < (options.minItemsForOutliers ?? 10)) return none;
  const fraction = options.outlierFraction ?? 0.05;
  const maxSimilarity = options.outlierMaxSimilarity ?? 0.9;
  const minZ = options.outlierMinZ ?? 3;

  // Nearest-neighbour distances are right-skewed (a long tail of merely sparse regions): the robust
  // z-score is taken on their logarithm, where that tail is tamed and true isolation still stands out.
  const logDistance = new Float32Array(n);
  for (let i = 0; i < n; i++) logDistance[i] = Math.log(1 - nearest[i]! + LOG_DISTANCE_FLOOR);
  const sorted = logDistance.slice().sort();
  const median = quantileOfSorted(sorted, 0.5);
  const deviations = new Float32Array(n);
  for (let i = 0; i < n; i++) deviations[i] = Math.abs(logDistance[i]! - median);
  const mad = quantileOfSorted(deviations.sort(), 0.5);
  const scale = Math.max(1.4826 * mad, 0.05);
  const rankBar = quantileOfSorted(sorted, 1 - fraction);
  const maxCount = Math.floor(n * fraction);

  const candidates: { item: number; z: number }[] = [];
  for (let i = 0; i < n; i++) {
    const d = logDistance[i]!;
    if (nearest[i]! >= maxSimilarity || d < rankBar) continue;
    const z = (d - median) / scale;
    if (z >= minZ) candidates.push({ item: i, z });
  }
  candidates.sort((x, y) => y.z - x.z || x.item - y.item);
  candidates.length = Math.min(candidates.length, maxCount);
  const items = new Uint32Array(candidates.length);
  const confidence = new Float32Array(candidates.length);
  candidates.forEach((c, idx) => {
    items[idx] = c.item;
    const over = c.z - minZ;
    confidence[idx] = (over + 1) / (over + 2);
  });
  return { items, confidence };
}

/**
 * Uniqueness from the nearest neighbour: 0 when it is a near duplicate (calibrated ≥ 0.96, or an
 * exact duplicate), rising towards 1 as it gets farther; 0.5 at the median distance of the items
 * that have no near duplicate, so the score spreads over the dataset. Monotone in the distance; an
 * item with no neighbour at all (a dataset of one) is 1.
 */
function uniquenessScores(nearest: Float32Array, alone: Uint8Array): Float32Array {
  const n = nearest.length;
  const t = DEFAULT_DUPLICATE_THRESHOLD;
  const gaps: number[] = [];
  for (let i = 0; i < n; i++) if (nearest[i]! < t - EPS) gaps.push(t - nearest[i]!);
  const sortedGaps = Float32Array.from(gaps).sort();
  const halfAt = Math.max(sortedGaps.length > 0 ? quantileOfSorted(sortedGaps, 0.5) : 0.1, 1e-3);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const gap = t - nearest[i]!;
    out[i] = alone[i] ? 1 : gap <= EPS ? 0 : 1 - Math.pow(2, -gap / halfAt);
  }
  return out;
}
