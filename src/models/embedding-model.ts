import type { Raster } from '../pipeline/raster.js';

/** Turns decoded images into vectors whose cosine similarity says how alike two pictures are. */
export interface EmbeddingModel {
  /** Stable id stored with every vector, e.g. `builtin-v1` or `onnx:dinov2-small:1a2b3c4d`. */
  readonly id: string;
  readonly dimensions: number;
  /**
   * Raw cosine similarity at which two media are "the same picture" (resized, recompressed, lightly
   * edited). It maps to 0.96 on the calibrated scale users see (see domain/similarity.ts).
   */
  readonly duplicateCosine: number;
  /** One L2-normalised vector per raster, in order. */
  embed(rasters: Raster[]): Promise<Float32Array[]>;
  close(): Promise<void>;
}
