import { DEFAULT_DUPLICATE_THRESHOLD } from '../../domain/similarity.js';
import { NO_NEIGHBOR } from './vector-index.js';

/**
 * Mislabel detection from one k-NN graph (pure, no I/O), as fastdup and Visual Layer do it: an item
 * whose label disagrees with the similarity-weighted vote of its labelled nearest neighbours is
 * probably mislabelled, and the label they agree on is the suggestion.
 *
 * For every labelled item, its neighbours that are labelled and at least `minSimilarity` similar
 * (calibrated scale, 0.96 = the same picture) vote for their label with their similarity as weight.
 * The item is flagged when
 *  - another label wins the vote outright: strictly more weight than the item's own label and than
 *    every other label (ties are never flagged);
 *  - that label holds at least `minShare` of the vote;
 *  - enough neighbours voted (`minVoters`), or one of the disagreeing voters is a near duplicate
 *    (≥ `duplicateSimilarity`): two copies of one picture with different labels are a conflict on
 *    their own.
 * Confidence = weight of the winning label / (total vote weight + `selfWeight`): the item's own label
 * counts as one more voter of weight `selfWeight`, so the confidence is the share the winner holds
 * when the item is heard too. It is in [0, 1), grows with both agreement and the number of voters:
 * 16 neighbours all for another label at similarity 0.8 give 0.93; three at 0.6 give 0.64; an exact
 * duplicate pair with two labels gives 0.5 to both items.
 *
 * Unlabelled items (label null) are neither judged nor voting. Missing neighbours (NO_NEIGHBOR, or a
 * similarity of -Infinity/NaN) and self-loops are skipped. O(n·k) time, O(n + labels) memory.
 *
 * Defaults were chosen on bench/mislabels.ts (synthetic classes on the unit sphere, 5 % and 10 %
 * flipped labels, the project's VectorIndex at k = 16).
 */

export interface MislabelInput {
  /** Items. */
  n: number;
  /** Neighbours per item in the graph. */
  k: number;
  /** n*k neighbour ids, best first; NO_NEIGHBOR where missing. */
  neighbors: Uint32Array;
  /** n*k calibrated similarities matching `neighbors`, -Infinity where missing. */
  similarities: Float32Array;
  /** One label per item, null = unlabelled (neither judged nor voting). */
  labels: readonly (string | null)[];
}

export interface MislabelOptions {
  /** Labelled neighbours at or above `minSimilarity` an item needs to be judged (default 3). */
  minVoters?: number;
  /** Share of the vote weight the winning other label needs (default 0.5). */
  minShare?: number;
  /** Calibrated similarity below which a neighbour does not vote (default 0.5). */
  minSimilarity?: number;
  /** A disagreeing voter at least this similar is enough on its own, whatever `minVoters` (default 0.96). */
  duplicateSimilarity?: number;
  /** Weight of the item's own label in the confidence's denominator (default 1). */
  selfWeight?: number;
  /** Only flags with at least this confidence are returned (default 0). */
  minConfidence?: number;
}

export interface Mislabel {
  item: number;
  /** In [0, 1]: how strongly the neighbours agree on `suggestedLabel`. */
  confidence: number;
  /** The label the neighbours vote for. */
  suggestedLabel: string;
}

export const MISLABEL_DEFAULTS = {
  minVoters: 3,
  minShare: 0.5,
  minSimilarity: 0.5,
  duplicateSimilarity: DEFAULT_DUPLICATE_THRESHOLD,
  selfWeight: 1,
  minConfidence: 0,
} as const satisfies Required<MislabelOptions>;

/** Relative tolerance when comparing vote weights (float sums of equal votes in another order). */
const TIE = 1e-9;

export function findMislabels(input: MislabelInput, options: MislabelOptions = {}): Mislabel[] {
  const { n, k, neighbors, similarities, labels } = input;
  if (neighbors.length !== n * k || similarities.length !== n * k) {
    throw new Error(`k-NN arrays must hold n*k = ${n * k} entries`);
  }
  if (labels.length !== n) throw new Error(`Expected ${n} labels, got ${labels.length}`);
  const minVoters = options.minVoters ?? MISLABEL_DEFAULTS.minVoters;
  const minShare = options.minShare ?? MISLABEL_DEFAULTS.minShare;
  const minSimilarity = options.minSimilarity ?? MISLABEL_DEFAULTS.minSimilarity;
  const duplicateSimilarity = options.duplicateSimilarity ?? MISLABEL_DEFAULTS.duplicateSimilarity;
  const selfWeight = options.selfWeight ?? MISLABEL_DEFAULTS.selfWeight;
  const minConfidence = options.minConfidence ?? MISLABEL_DEFAULTS.minConfidence;

  // Labels → dense ids (-1 = unlabelled).
  const labelOf = new Int32Array(n);
  const names: string[] = [];
  const idOf = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const label = labels[i];
    if (label === null || label === undefined) {
      labelOf[i] = -1;
      continue;
    }
    let id = idOf.get(label);
    if (id === undefined) {
      id = names.length;
      idOf.set(label, id);
      names.push(label);
    }
    labelOf[i] = id;
  }

  // Per-item tally over the labels seen in its row (at most k), reset after each row.
  const weight = new Float64Array(names.length);
  /** i + 1 once label l has been tallied for item i. */
  const tallied = new Uint32Array(names.length);
  const seen = new Int32Array(Math.max(1, k));
  const found: Mislabel[] = [];
  for (let i = 0; i < n; i++) {
    const own = labelOf[i]!;
    if (own < 0) continue;
    let seenCount = 0;
    let voters = 0;
    let total = 0;
    let duplicateDisagrees = false;
    for (let e = i * k; e < (i + 1) * k; e++) {
      const j = neighbors[e]!;
      if (j === NO_NEIGHBOR || j === i || j >= n) continue;
      const lj = labelOf[j]!;
      const s = similarities[e]!;
      // NaN and -Infinity fail this comparison too.
      if (lj < 0 || !(s >= minSimilarity)) continue;
      const w = Math.min(1, Math.max(0, s));
      if (tallied[lj] !== i + 1) {
        tallied[lj] = i + 1;
        seen[seenCount++] = lj;
      }
      weight[lj] = weight[lj]! + w;
      total += w;
      voters++;
      if (lj !== own && s >= duplicateSimilarity) duplicateDisagrees = true;
    }

    if (voters > 0 && (voters >= minVoters || duplicateDisagrees)) {
      // The heaviest label and the heaviest other than it (the item's own label included).
      let best = -1;
      let bestWeight = 0;
      let runnerUp = 0;
      for (let t = 0; t < seenCount; t++) {
        const label = seen[t]!;
        const w = weight[label]!;
        if (w > bestWeight) {
          runnerUp = bestWeight;
          bestWeight = w;
          best = label;
        } else if (w > runnerUp) {
          runnerUp = w;
        }
      }
      const clearWinner = bestWeight - runnerUp > TIE * bestWeight;
      if (best >= 0 && best !== own && clearWinner && bestWeight >= minShare * total - TIE * total) {
        const confidence = bestWeight / (total + selfWeight);
        if (confidence >= minConfidence) found.push({ item: i, confidence, suggestedLabel: names[best]! });
      }
    }
    for (let t = 0; t < seenCount; t++) weight[seen[t]!] = 0;
  }
  found.sort((a, b) => b.confidence - a.confidence || a.item - b.item);
  return found;
}
