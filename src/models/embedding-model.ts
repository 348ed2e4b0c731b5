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
  /**
   * The text tower of a multimodal (CLIP-style) model: texts land in the same space as the images, with
   * `dimensions` dimensions. Absent for image-only models.
   */
  readonly text?: TextEmbedder;
  close(): Promise<void>;
}

/** Turns texts into vectors comparable (cosine) with an image model's. */
export interface TextEmbedder {
  /** The text encoder's own id (the pair's vectors are stored under the image model's `id`). */
  readonly id: string;
  /** One L2-normalised vector per text, in order. */
  embedText(texts: string[]): Promise<Float32Array[]>;
}
