/**
 * The built-in embedding model (`builtin-v1`): a weights-free global descriptor for near-duplicate
 * search, computed in plain TypeScript from the decoded thumbnail raster — no sharp, no download,
 * a few hundred microseconds per image.
 *
 * Every block is computed on one 64×64 working grid (the raster area-averaged and squashed to a
 * square, so the same picture at any size or aspect gives the same grid):
 *
 * - tone layout (256 dims, weight 0.85): the luminance is rank-equalised (which undoes brightness,
 *   contrast and gamma changes: any monotone tone curve), Gaussian-pooled at 8×8 cell centres, and each
 *   cell's value v ∈ [0,1] is embedded as (cos πv, sin πv, cos 2πv, sin 2πv). The dot product of two
 *   cells is then a bounded kernel of their difference, so a watermark or logo that changes a few cells
 *   completely costs at most those cells' share, instead of dominating a normalised vector.
 * - gradient orientations (128 dims, weight 0.2): HOG-like histograms (8 unsigned orientations, 4×4
 *   cells with bilinear spatial and orientation interpolation) of the slightly smoothed equalised
 *   luminance; square-rooted, mean-centred, L2-normalised. Structure, blind to tone changes.
 * - hue layout (64 dims, weight 0.9): per 4×4 cell, the hue angle h of the cell's mean opponent chroma
 *   as (cos h, sin h, cos 2h, sin 2h), scaled by how colourful the cell is. Hue survives brightness and
 *   contrast edits (both opponent axes scale alike) but tells colour-graded variants of one
 *   photograph apart; grey cells contribute nothing, so grey images lean on the other blocks.
 *
 * Each block has unit norm at most; blocks are scaled by √weight, concatenated and L2-normalised, so
 * the cosine of two descriptors is a weighted mean of the block similarities.
 *
 * Measured on `bench/dupes.ts` (see the numbers in its header): a low-frequency DCT of the luminance
 * and hue–saturation histograms were tried as blocks too and dropped, as they added nothing once the
 * tone layout was present (the DCT's normalised coefficients are dominated by any overlay on
 * low-contrast pictures; histograms pair unrelated pictures of similar colour).
 */
import type { Raster } from '../pipeline/raster.js';
import type { EmbeddingModel } from './embedding-model.js';

export const BUILTIN_MODEL_ID = 'builtin-v1';

/**
 * Raw cosine at which two descriptors are "the same picture" (maps to 0.96 on the calibrated scale).
 * Chosen on bench/dupes.ts as the cosine whose near-duplicate *groups* (connected components of the
 * pairs above it, as the index forms them) have the best F1 — on the benchmark's edits and on a
 * held-out set of different edits alike. Pairwise there: precision 0.997, recall 0.951 (the best
 * pairwise F1 sits at 0.90 with precision 0.991, but lets three look-alike families chain together).
 */
export const BUILTIN_DUPLICATE_COSINE = 0.915;

/** Side of the square working grid. */
const WORK = 64;
const PIXELS = WORK * WORK;

const TONE_GRID = 8;
const TONE_HARMONICS = 2;
/** Gaussian pooling radius of the tone layout, in cells. */
const TONE_SIGMA_CELLS = 1;
const TONE_DIMS = TONE_GRID * TONE_GRID * TONE_HARMONICS * 2;

const GRAD_GRID = 4;
const GRAD_BINS = 8;
const GRAD_DIMS = GRAD_GRID * GRAD_GRID * GRAD_BINS;

const HUE_GRID = 4;
const HUE_HARMONICS = 2;
const HUE_DIMS = HUE_GRID * HUE_GRID * HUE_HARMONICS * 2;
/** A cell counts as fully coloured once its mean chroma reaches HUE_CHROMA_FLOOR + HUE_CHROMA_PER_LUMA × luminance. */
const HUE_CHROMA_FLOOR = 6;
const HUE_CHROMA_PER_LUMA = 0.1;

const WEIGHTS = { tone: 0.85, gradient: 0.2, hue: 0.9 } as const;

export const BUILTIN_DIMENSIONS = TONE_DIMS + GRAD_DIMS + HUE_DIMS;

const TONE_OFFSET = 0;
const GRAD_OFFSET = TONE_DIMS;
const HUE_OFFSET = TONE_DIMS + GRAD_DIMS;

/** Scratch planes, reused: the descriptor runs synchronously on one thread. */
const scratch = {
  rgb: new Float32Array(PIXELS * 3),
  luma: new Float32Array(PIXELS),
  rank: new Float32Array(PIXELS),
  smooth: new Float32Array(PIXELS),
  chromaA: new Float32Array(PIXELS),
  chromaB: new Float32Array(PIXELS),
  histogram: new Uint32Array(1024),
  levels: new Float32Array(1024),
  pooled: new Float32Array(WORK * TONE_GRID),
};

/** Computes the L2-normalised descriptor of one raster (BUILTIN_DIMENSIONS values). */
export function describe(raster: Raster): Float32Array {
  const { width, height, data } = raster;
  if (!(width >= 1 && height >= 1) || data.length < width * height * 3) {
    throw new RangeError(`raster ${width}x${height} with ${data.length} bytes is not a ${width}x${height} RGB raster`);
  }
  const out = new Float32Array(BUILTIN_DIMENSIONS);
  resampleToWorkGrid(data, width, height, scratch.rgb);
  splitPlanes();
  equalise(scratch.luma, scratch.rank);
  toneLayout(out);
  gradientHistograms(out);
  hueLayout(out);
  scaleBlock(out, TONE_OFFSET, TONE_DIMS, Math.sqrt(WEIGHTS.tone));
  scaleBlock(out, GRAD_OFFSET, GRAD_DIMS, Math.sqrt(WEIGHTS.gradient));
  scaleBlock(out, HUE_OFFSET, HUE_DIMS, Math.sqrt(WEIGHTS.hue));
  normalise(out, 0, BUILTIN_DIMENSIONS);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Working grid

interface AxisWeights {
  first: Int32Array;
  count: Int32Array;
  weight: Float32Array;
  /** Weight shared by the pixels strictly between an output sample's first and last (the same for all). */
  inner: Float32Array;
  /** Index into weight of each output sample's first weight. */
  start: Int32Array;
}

const axisCache = new Map<number, AxisWeights>();

/** Area weights mapping `size` source samples onto WORK samples (nearest sample when enlarging). */
function axisWeights(size: number): AxisWeights {
  const cached = axisCache.get(size);
  if (cached) return cached;
  const first = new Int32Array(WORK);
  const count = new Int32Array(WORK);
  const start = new Int32Array(WORK);
  const inner = new Float32Array(WORK);
  const weights: number[] = [];
  const scale = size / WORK;
  for (let o = 0; o < WORK; o++) {
    const lo = o * scale;
    const hi = (o + 1) * scale;
    const from = Math.min(size - 1, Math.floor(lo));
    const to = Math.min(size, Math.max(from + 1, Math.ceil(hi)));
    first[o] = from;
    count[o] = to - from;
    start[o] = weights.length;
    let total = 0;
    const local: number[] = [];
    for (let k = from; k < to; k++) {
      const w = Math.max(0, Math.min(hi, k + 1) - Math.max(lo, k));
      local.push(w);
      total += w;
    }
    for (const w of local) weights.push(total > 0 ? w / total : 1 / local.length);
    inner[o] = total > 0 ? 1 / total : 0;
  }
  const axis = { first, count, start, inner, weight: Float32Array.from(weights) };
  if (axisCache.size >= 64) axisCache.clear();
  axisCache.set(size, axis);
  return axis;
}

let rowBuffer = new Float32Array(0);

/** Area-averages interleaved RGB `width`×`height` onto the 64×64 working grid. */
function resampleToWorkGrid(data: Uint8Array, width: number, height: number, out: Float32Array): void {
  const xs = axisWeights(width);
  const ys = axisWeights(height);
  const rowLength = WORK * 3;
  if (rowBuffer.length < height * rowLength) rowBuffer = new Float32Array(height * rowLength);
  const rows = rowBuffer;
  // Horizontal pass: every source row to 64 RGB samples. Pixels wholly inside an output sample are
  // summed as they are; only the two boundary pixels of each sample are weighted.
  for (let y = 0; y < height; y++) {
    const src = y * width * 3;
    const dst = y * rowLength;
    for (let o = 0; o < WORK; o++) {
      const w0 = xs.start[o]!;
      const n = xs.count[o]!;
      let p = src + xs.first[o]! * 3;
      const wFirst = xs.weight[w0]!;
      let r = data[p]! * wFirst;
      let g = data[p + 1]! * wFirst;
      let b = data[p + 2]! * wFirst;
      if (n > 1) {
        const inner = xs.inner[o]!;
        let ri = 0;
        let gi = 0;
        let bi = 0;
        for (let k = 1; k < n - 1; k++) {
          p += 3;
          ri += data[p]!;
          gi += data[p + 1]!;
          bi += data[p + 2]!;
        }
        p += 3;
        const wLast = xs.weight[w0 + n - 1]!;
        r += ri * inner + data[p]! * wLast;
        g += gi * inner + data[p + 1]! * wLast;
        b += bi * inner + data[p + 2]! * wLast;
      }
      rows[dst + o * 3] = r;
      rows[dst + o * 3 + 1] = g;
      rows[dst + o * 3 + 2] = b;
    }
  }
  // Vertical pass.
  out.fill(0);
  for (let o = 0; o < WORK; o++) {
    const dst = o * rowLength;
    const w0 = ys.start[o]!;
    const n = ys.count[o]!;
    for (let k = 0; k < n; k++) {
      const w = ys.weight[w0 + k]!;
      const src = (ys.first[o]! + k) * rowLength;
      for (let i = 0; i < rowLength; i++) out[dst + i]! += rows[src + i]! * w;
    }
  }
}

/** Luminance and opponent chroma planes of the working grid. */
function splitPlanes(): void {
  const { rgb, luma, chromaA, chromaB } = scratch;
  for (let i = 0, p = 0; i < PIXELS; i++, p += 3) {
    const r = rgb[p]!;
    const g = rgb[p + 1]!;
    const b = rgb[p + 2]!;
    luma[i] = 0.299 * r + 0.587 * g + 0.114 * b;
    chromaA[i] = r - g;
    chromaB[i] = (r + g - 2 * b) * 0.57735; // (r + g − 2b)/√3: commensurate with r − g
  }
}

/** Rank-equalises the luminance into [0, 1] (ties share their mid rank), over 1024 levels. */
function equalise(luma: Float32Array, rank: Float32Array): void {
  const { histogram, levels } = scratch;
  histogram.fill(0);
  for (let i = 0; i < PIXELS; i++) histogram[Math.min(1023, Math.round(luma[i]! * 4))]!++;
  let below = 0;
  for (let level = 0; level < 1024; level++) {
    const n = histogram[level]!;
    levels[level] = (below + n / 2) / PIXELS;
    below += n;
  }
  for (let i = 0; i < PIXELS; i++) rank[i] = levels[Math.min(1023, Math.round(luma[i]! * 4))]!;
}

// ---------------------------------------------------------------------------------------------------
// Blocks

let toneKernel: Float32Array | undefined;

/** Normalised Gaussian weights [cell][pixel] for pooling one axis onto the tone grid's cell centres. */
function toneWeights(): Float32Array {
  if (toneKernel) return toneKernel;
  const cell = WORK / TONE_GRID;
  const sigma = TONE_SIGMA_CELLS * cell;
  const weights = new Float32Array(TONE_GRID * WORK);
  for (let g = 0; g < TONE_GRID; g++) {
    const centre = (g + 0.5) * cell - 0.5;
    let total = 0;
    for (let x = 0; x < WORK; x++) {
      const w = Math.exp(-((x - centre) ** 2) / (2 * sigma * sigma));
      weights[g * WORK + x] = w;
      total += w;
    }
    for (let x = 0; x < WORK; x++) weights[g * WORK + x]! /= total;
  }
  toneKernel = weights;
  return weights;
}

function toneLayout(out: Float32Array): void {
  const { rank, pooled } = scratch;
  const weights = toneWeights();
  // Rows first: pooled[y][gx].
  for (let y = 0; y < WORK; y++) {
    const row = y * WORK;
    for (let g = 0; g < TONE_GRID; g++) {
      const w = g * WORK;
      let sum = 0;
      for (let x = 0; x < WORK; x++) sum += weights[w + x]! * rank[row + x]!;
      pooled[y * TONE_GRID + g] = sum;
    }
  }
  const scale = 1 / Math.sqrt(TONE_GRID * TONE_GRID * TONE_HARMONICS);
  let at = TONE_OFFSET;
  for (let gy = 0; gy < TONE_GRID; gy++) {
    const w = gy * WORK;
    for (let gx = 0; gx < TONE_GRID; gx++) {
      let value = 0;
      for (let y = 0; y < WORK; y++) value += weights[w + y]! * pooled[y * TONE_GRID + gx]!;
      for (let k = 1; k <= TONE_HARMONICS; k++) {
        const angle = k * Math.PI * value;
        out[at++] = Math.cos(angle) * scale;
        out[at++] = Math.sin(angle) * scale;
      }
    }
  }
}

function gradientHistograms(out: Float32Array): void {
  const { rank, smooth } = scratch;
  // Binomial [1 2 1]² smoothing (edges clamped): keeps JPEG noise and thin strokes from ruling the histograms.
  for (let y = 0; y < WORK; y++) {
    const up = Math.max(0, y - 1) * WORK;
    const row = y * WORK;
    const down = Math.min(WORK - 1, y + 1) * WORK;
    for (let x = 0; x < WORK; x++) {
      smooth[row + x] = rank[up + x]! + 2 * rank[row + x]! + rank[down + x]!;
    }
  }
  const column = scratch.luma; // luminance is no longer needed: reuse its plane
  for (let y = 0; y < WORK; y++) {
    const row = y * WORK;
    for (let x = 0; x < WORK; x++) {
      const left = smooth[row + Math.max(0, x - 1)]!;
      const right = smooth[row + Math.min(WORK - 1, x + 1)]!;
      column[row + x] = (left + 2 * smooth[row + x]! + right) / 16;
    }
  }
  const cell = WORK / GRAD_GRID;
  const binScale = GRAD_BINS / Math.PI;
  for (let i = GRAD_OFFSET; i < GRAD_OFFSET + GRAD_DIMS; i++) out[i] = 0;
  for (let y = 1; y < WORK - 1; y++) {
    const fy = (y + 0.5) / cell - 0.5;
    const y0 = Math.floor(fy);
    const ay = fy - y0;
    for (let x = 1; x < WORK - 1; x++) {
      const i = y * WORK + x;
      const gx = column[i + 1]! - column[i - 1]!;
      const gy = column[i + WORK]! - column[i - WORK]!;
      const magnitude = Math.sqrt(gx * gx + gy * gy);
      if (magnitude < 1e-6) continue;
      let angle = Math.atan2(gy, gx);
      if (angle < 0) angle += Math.PI;
      let position = angle * binScale;
      if (position >= GRAD_BINS) position -= GRAD_BINS;
      const lo = Math.floor(position);
      const fraction = position - lo;
      const hi = lo + 1 === GRAD_BINS ? 0 : lo + 1;
      const fx = (x + 0.5) / cell - 0.5;
      const x0 = Math.floor(fx);
      const ax = fx - x0;
      for (let dy = 0; dy < 2; dy++) {
        const cy = y0 + dy;
        if (cy < 0 || cy >= GRAD_GRID) continue;
        const wy = dy === 0 ? 1 - ay : ay;
        for (let dx = 0; dx < 2; dx++) {
          const cx = x0 + dx;
          if (cx < 0 || cx >= GRAD_GRID) continue;
          const w = magnitude * wy * (dx === 0 ? 1 - ax : ax);
          const base = GRAD_OFFSET + (cy * GRAD_GRID + cx) * GRAD_BINS;
          out[base + lo]! += w * (1 - fraction);
          out[base + hi]! += w * fraction;
        }
      }
    }
  }
  let mean = 0;
  for (let i = GRAD_OFFSET; i < GRAD_OFFSET + GRAD_DIMS; i++) {
    out[i] = Math.sqrt(out[i]!);
    mean += out[i]!;
  }
  mean /= GRAD_DIMS;
  for (let i = GRAD_OFFSET; i < GRAD_OFFSET + GRAD_DIMS; i++) out[i]! -= mean;
  normalise(out, GRAD_OFFSET, GRAD_DIMS);
}

function hueLayout(out: Float32Array): void {
  const { chromaA, chromaB, rgb } = scratch;
  const cell = WORK / HUE_GRID;
  const area = cell * cell;
  const scale = 1 / Math.sqrt(HUE_GRID * HUE_GRID * HUE_HARMONICS);
  let at = HUE_OFFSET;
  for (let gy = 0; gy < HUE_GRID; gy++) {
    for (let gx = 0; gx < HUE_GRID; gx++) {
      let a = 0;
      let b = 0;
      let luma = 0;
      for (let y = gy * cell; y < (gy + 1) * cell; y++) {
        for (let x = gx * cell; x < (gx + 1) * cell; x++) {
          const i = y * WORK + x;
          a += chromaA[i]!;
          b += chromaB[i]!;
          luma += 0.299 * rgb[i * 3]! + 0.587 * rgb[i * 3 + 1]! + 0.114 * rgb[i * 3 + 2]!;
        }
      }
      a /= area;
      b /= area;
      luma /= area;
      const chroma = Math.sqrt(a * a + b * b);
      const weight = chroma > 1e-6 ? Math.min(1, chroma / (HUE_CHROMA_FLOOR + HUE_CHROMA_PER_LUMA * luma)) * scale : 0;
      // cos(kh), sin(kh) from the unit chroma vector without atan2.
      const c1 = chroma > 1e-6 ? a / chroma : 1;
      const s1 = chroma > 1e-6 ? b / chroma : 0;
      let ck = c1;
      let sk = s1;
      for (let k = 1; k <= HUE_HARMONICS; k++) {
        out[at++] = weight * ck;
        out[at++] = weight * sk;
        const next = ck * c1 - sk * s1;
        sk = sk * c1 + ck * s1;
        ck = next;
      }
    }
  }
}

function scaleBlock(vector: Float32Array, start: number, length: number, factor: number): void {
  for (let i = start; i < start + length; i++) vector[i]! *= factor;
}

function normalise(vector: Float32Array, start: number, length: number): void {
  let sum = 0;
  for (let i = start; i < start + length; i++) sum += vector[i]! * vector[i]!;
  if (sum <= 1e-24) return;
  const inverse = 1 / Math.sqrt(sum);
  for (let i = start; i < start + length; i++) vector[i]! *= inverse;
}

// ---------------------------------------------------------------------------------------------------
// The model

export class BuiltinDescriptorModel implements EmbeddingModel {
  readonly id = BUILTIN_MODEL_ID;
  readonly dimensions = BUILTIN_DIMENSIONS;
  readonly duplicateCosine = BUILTIN_DUPLICATE_COSINE;

  async embed(rasters: Raster[]): Promise<Float32Array[]> {
    return rasters.map((raster) => describe(raster));
  }

  async close(): Promise<void> {}
}

export function createBuiltinModel(): EmbeddingModel {
  return new BuiltinDescriptorModel();
}
