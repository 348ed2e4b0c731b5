/** The near-duplicate threshold levels computed for every dataset, on the calibrated scale. */
export const DUPLICATE_THRESHOLDS = [0.96, 0.97, 0.98, 0.985, 0.99, 0.995, 0.999, 1.0] as const;
export const DEFAULT_DUPLICATE_THRESHOLD = 0.96;
export const CLUSTER_LEVELS = [0, 1, 2, 3, 4] as const;

/**
 * Maps a model's raw cosine similarity onto the calibrated scale, on which 0.96 means "the same
 * picture" whatever the model: linear in distance, anchored so that `duplicateCosine` → 0.96 and
 * identical vectors → 1, clamped to [0, 1].
 */
export function calibrateSimilarity(rawCosine: number, duplicateCosine: number): number {
  const scale = (1 - DEFAULT_DUPLICATE_THRESHOLD) / Math.max(1e-6, 1 - duplicateCosine);
  return Math.min(1, Math.max(0, 1 - (1 - rawCosine) * scale));
}

/** The computed level a requested duplicate threshold snaps to: the nearest at or above it. */
export function snapDuplicateThreshold(requested: number): number {
  return DUPLICATE_THRESHOLDS.find((t) => t >= requested - 1e-9) ?? 1.0;
}
