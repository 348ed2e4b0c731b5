/**
 * Image embeddings from a user-supplied ONNX model (DINOv2, CLIP's vision tower, a CNN backbone, ...)
 * run by onnxruntime-node on the CPU. It and onnx-text-model.ts (the text half of a CLIP pair) are the only modules that import onnxruntime-node.
 *
 * What the model must look like:
 * - exactly one input, float32, NCHW `[N, 3, H, W]`; N may be symbolic (batched freely) or fixed (batches
 *   of exactly that size, the last one padded); H and W symbolic or equal to `inputSize`.
 * - the embedding output (`outputName`, else the only output, else the first whose name contains
 *   `image_embeds`, `pooler_output` or `embed`, else the first one), float32, one of
 *     `[N, D]`           used as is;
 *     `[N, T, D]`        a token sequence (ViT `last_hidden_state`): the CLS token, token 0, by default
 *                        (what DINOv2 and CLIP use as the global descriptor), or the mean of all tokens;
 *     `[N, D, H', W']`   a feature map: averaged over H'×W' (global average pooling), so `[N, D, 1, 1]`
 *                        is simply flattened.
 *
 * Preprocessing, per raster (all in TypeScript, no extra copy of the full-size image):
 * - 'center-crop' (default, what CLIP and DINOv2's evaluation transforms do): the largest centred square
 *   is resized to inputSize×inputSize, i.e. "resize the shorter side to inputSize, then centre crop";
 *   'squash' resizes the whole frame, ignoring the aspect ratio, so nothing is cut off.
 * - resampling is separable and antialiased bilinear: a triangle filter widened by the scale factor when
 *   shrinking (as Pillow's BILINEAR and torchvision's antialias=True do), plain bilinear when enlarging.
 *   CLIP trains with bicubic; the difference in the embeddings is small next to the model's invariances.
 * - values are scaled to [0, 1], then `(value - mean[c]) / std[c]`, with mean/std given on that [0, 1]
 *   scale (IMAGENET_MEAN/STD for DINOv2 and most CNNs, CLIP_MEAN/STD for CLIP).
 *
 * Outputs are L2-normalised (an all-zero output stays all zeros). The model id is
 * `onnx:<file name without extension>:<first 8 hex digits of the file's sha256>`: another file, even
 * one with the same name, gets another id, so its vectors are never compared with this one's.
 *
 * onnxruntime-node runs a batch synchronously on the calling thread (its own thread pool does the
 * arithmetic), so `embed` blocks the event loop for about one batch at a time.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Raster } from '../pipeline/raster.js';
import type { EmbeddingModel } from './embedding-model.js';

export type RgbTriple = [number, number, number];

/** ImageNet statistics on the [0, 1] scale: DINOv2, most torchvision/timm CNNs and ViTs. */
export const IMAGENET_MEAN: RgbTriple = [0.485, 0.456, 0.406];
export const IMAGENET_STD: RgbTriple = [0.229, 0.224, 0.225];
/** OpenAI CLIP's statistics on the [0, 1] scale. */
export const CLIP_MEAN: RgbTriple = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: RgbTriple = [0.26862954, 0.26130258, 0.27577711];

export type OnnxResizeMode = 'center-crop' | 'squash';
export type OnnxTokenPooling = 'cls' | 'mean';

export interface OnnxModelOptions {
  /** Local path of the .onnx file (external weights, if any, next to it). */
  path: string;
  /** Side of the square input the model expects, e.g. 224. */
  inputSize: number;
  /** Per-channel mean and standard deviation on the [0, 1] scale. */
  mean: RgbTriple;
  std: RgbTriple;
  /** Raw cosine at which two images count as the same picture for this model (see EmbeddingModel). */
  duplicateCosine: number;
  /** Images per inference run when the model's batch axis is symbolic. Default 16. */
  batchSize?: number;
  /** onnxruntime intra-op threads. Default: onnxruntime's choice (one per physical core). */
  threads?: number;
  /** Default 'center-crop'. */
  resize?: OnnxResizeMode;
  /** How a `[N, T, D]` output becomes one vector. Default 'cls'. */
  tokenPooling?: OnnxTokenPooling;
  /** Which output holds the embedding, when the model has several. */
  outputName?: string;
}

/** The model file is missing, unreadable, not ONNX, or not an image-embedding model this loader can drive. */
export class OnnxModelError extends Error {
  override readonly name = 'OnnxModelError';

  constructor(readonly modelPath: string, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

const DEFAULT_BATCH_SIZE = 16;

export async function loadOnnxModel(options: OnnxModelOptions): Promise<EmbeddingModel> {
  const path = resolve(options.path);
  const settings = validateOptions(options);
  const { session, digest } = await openOnnxSession(path, 'ONNX model', options.threads);
  const id = `onnx:${basename(path, extname(path)).replaceAll(':', '_')}:${digest.slice(0, 8)}`;

  try {
    const layout = describeSession(session, path, settings);
    const runner = new OnnxEmbedder(session, layout, settings);
    const dimensions = layout.dimensions ?? (await runner.probeDimensions());
    return {
      id,
      dimensions,
      duplicateCosine: options.duplicateCosine,
      embed: (rasters) => runner.embed(rasters, dimensions),
      close: () => runner.close(),
    };
  } catch (error) {
    await session.release().catch(() => undefined);
    throw error;
  }
}

interface Settings {
  inputSize: number;
  scale: RgbTriple;
  offset: RgbTriple;
  batchSize: number;
  resize: OnnxResizeMode;
  tokenPooling: OnnxTokenPooling;
  outputName: string | undefined;
}

function validateOptions(options: OnnxModelOptions): Settings {
  const { inputSize, mean, std, duplicateCosine } = options;
  if (!Number.isInteger(inputSize) || inputSize < 1 || inputSize > 4096) {
    throw new RangeError(`inputSize must be an integer in [1, 4096], got ${inputSize}`);
  }
  if (mean.length !== 3 || !mean.every(Number.isFinite)) throw new RangeError('mean must be three finite numbers');
  if (std.length !== 3 || !std.every((value) => Number.isFinite(value) && value > 0)) {
    throw new RangeError('std must be three positive numbers');
  }
  if (!(duplicateCosine > 0 && duplicateCosine <= 1)) throw new RangeError('duplicateCosine must be in (0, 1]');
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1)) {
    throw new RangeError('threads must be a positive integer');
  }
  // (value / 255 - mean) / std  ==  value * scale + offset
  const scale = std.map((s) => 1 / (255 * s)) as RgbTriple;
  const offset = mean.map((m, c) => -m / std[c]!) as RgbTriple;
  return {
    inputSize,
    scale,
    offset,
    batchSize,
    resize: options.resize ?? 'center-crop',
    tokenPooling: options.tokenPooling ?? 'cls',
    outputName: options.outputName,
  };
}

/**
 * A CPU inference session on the model file, with the file's sha256 (model ids carry it). `kind`
 * names the model in errors ("ONNX model", "ONNX text model").
 */
export async function openOnnxSession(path: string, kind: string, threads: number | undefined): Promise<{ session: ort.InferenceSession; digest: string }> {
  const digest = await fileSha256(path, kind);
  try {
    const session = await ort.InferenceSession.create(path, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      interOpNumThreads: 1,
      ...(threads === undefined ? {} : { intraOpNumThreads: threads }),
      logSeverityLevel: 3,
    });
    return { session, digest };
  } catch (error) {
    // onnxruntime's messages can run to a C++ signature and a trailing newline: keep the gist.
    const reason = errorMessage(error).trim().replace(/\s+/g, ' ');
    throw new OnnxModelError(path, `not a loadable ${kind}: ${path} (${reason})`, { cause: error });
  }
}

async function fileSha256(path: string, kind: string): Promise<string> {
  let isFile: boolean;
  let size: number;
  try {
    const info = await stat(path);
    isFile = info.isFile();
    size = info.size;
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? String(error.code) : '';
    const message = code === 'ENOENT' ? `${kind} file not found: ${path}` : `${kind} file not readable: ${path} (${errorMessage(error)})`;
    throw new OnnxModelError(path, message, { cause: error });
  }
  if (!isFile) throw new OnnxModelError(path, `${kind} path is not a file: ${path}`);
  if (size === 0) throw new OnnxModelError(path, `not a loadable ${kind}: ${path} (empty file)`);
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (error) {
    throw new OnnxModelError(path, `${kind} file not readable: ${path} (${errorMessage(error)})`, { cause: error });
  }
  return hash.digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Session layout

interface Layout {
  inputName: string;
  outputName: string;
  /** Fixed batch size the model demands, or undefined when the batch axis is symbolic. */
  fixedBatch: number | undefined;
  /** From the output's static shape; undefined when symbolic (learnt from a first inference). */
  dimensions: number | undefined;
}

function describeSession(session: ort.InferenceSession, path: string, settings: Settings): Layout {
  const fail = (message: string): never => {
    throw new OnnxModelError(path, `unsupported ONNX model ${path}: ${message}`);
  };

  if (session.inputMetadata.length !== 1) {
    fail(`expected exactly one image input, found ${session.inputMetadata.length} (${session.inputNames.join(', ')})`);
  }
  const input = session.inputMetadata[0]!;
  if (!input.isTensor) return fail(`input '${input.name}' is not a tensor`);
  if (input.type !== 'float32') fail(`input '${input.name}' is ${input.type}, expected float32`);
  const [batchDim, channels, height, width] = input.shape;
  if (input.shape.length !== 4 || channels !== 3) {
    fail(`input '${input.name}' has shape [${input.shape.join(', ')}], expected NCHW [N, 3, H, W]`);
  }
  for (const side of [height, width]) {
    if (typeof side === 'number' && side !== settings.inputSize) {
      fail(`input '${input.name}' is ${height}x${width} but inputSize is ${settings.inputSize}`);
    }
  }
  const fixedBatch = typeof batchDim === 'number' && batchDim > 0 ? batchDim : undefined;

  const output = pickOutput(session.outputMetadata, settings.outputName) ?? fail(
    settings.outputName === undefined
      ? 'it has no outputs'
      : `no output named '${settings.outputName}' (outputs: ${session.outputNames.join(', ')})`,
  );
  if (!output.isTensor) return fail(`output '${output.name}' is not a tensor`);
  if (output.type !== 'float32') fail(`output '${output.name}' is ${output.type}, expected float32`);
  const shape = output.shape;
  if (shape.length !== 0 && (shape.length < 2 || shape.length > 4)) {
    fail(`output '${output.name}' has shape [${shape.join(', ')}], expected [N, D], [N, T, D] or [N, D, H, W]`);
  }
  const embeddingAxis = shape.length === 3 ? shape[2] : shape[1];
  const dimensions = typeof embeddingAxis === 'number' && embeddingAxis > 0 ? embeddingAxis : undefined;

  return { inputName: input.name, outputName: output.name, fixedBatch, dimensions };
}

const PREFERRED_OUTPUTS = [/^image_embeds$/i, /pooler_output/i, /embed/i];

function pickOutput(
  outputs: readonly ort.InferenceSession.ValueMetadata[],
  wanted: string | undefined,
): ort.InferenceSession.ValueMetadata | undefined {
  if (wanted !== undefined) return outputs.find((output) => output.name === wanted);
  if (outputs.length <= 1) return outputs[0];
  for (const pattern of PREFERRED_OUTPUTS) {
    const match = outputs.find((output) => pattern.test(output.name));
    if (match !== undefined) return match;
  }
  return outputs[0];
}

// ---------------------------------------------------------------------------------------------
// Inference

class OnnxEmbedder {
  private closed = false;

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly layout: Layout,
    private readonly settings: Settings,
  ) {}

  /** Runs one mid-grey image to learn D when the output shape does not declare it. */
  async probeDimensions(): Promise<number> {
    const side = this.settings.inputSize;
    const grey: Raster = { data: new Uint8Array(side * side * 3).fill(128), width: side, height: side, channels: 3 };
    const [vector] = await this.embed([grey], undefined);
    return vector!.length;
  }

  async embed(rasters: Raster[], dimensions: number | undefined): Promise<Float32Array[]> {
    if (this.closed) throw new Error('ONNX model is closed');
    rasters.forEach(checkRaster);
    const batchSize = this.layout.fixedBatch ?? this.settings.batchSize;
    const side = this.settings.inputSize;
    const imageLength = 3 * side * side;
    const vectors: Float32Array[] = [];

    for (let start = 0; start < rasters.length; start += batchSize) {
      const batch = rasters.slice(start, start + batchSize);
      // A fixed-batch model gets a full batch every time; the padding (zeros) is ignored on the way out.
      const rows = this.layout.fixedBatch ?? batch.length;
      const pixels = new Float32Array(rows * imageLength);
      batch.forEach((raster, index) => {
        writeNormalisedChw(raster, pixels.subarray(index * imageLength, (index + 1) * imageLength), this.settings);
      });

      const input = new ort.Tensor('float32', pixels, [rows, 3, side, side]);
      let output: ort.Tensor | undefined;
      try {
        const results = await this.session.run({ [this.layout.inputName]: input }, [this.layout.outputName]);
        output = results[this.layout.outputName];
        const embeddings = poolOutput(output, rows, this.settings.tokenPooling, this.layout.outputName);
        for (const vector of embeddings.slice(0, batch.length)) {
          if (dimensions !== undefined && vector.length !== dimensions) {
            throw new Error(`ONNX model output has ${vector.length} dimensions, expected ${dimensions}`);
          }
          vectors.push(l2Normalise(vector));
        }
      } finally {
        input.dispose();
        output?.dispose();
      }
    }
    return vectors;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.release();
  }
}

function checkRaster(raster: Raster, index: number): void {
  const { width, height, data } = raster;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`raster ${index} has invalid size ${width}x${height}`);
  }
  if (raster.channels !== 3 || data.length !== width * height * 3) {
    throw new RangeError(`raster ${index} holds ${data.length} bytes, expected ${width}x${height}x3`);
  }
}

/** One vector per batch row from an output of shape [N, D], [N, T, D] or [N, D, H, W]. */
function poolOutput(output: ort.Tensor | undefined, rows: number, pooling: OnnxTokenPooling, name: string): Float32Array[] {
  if (output === undefined || output.type !== 'float32' || !(output.data instanceof Float32Array)) {
    throw new Error(`ONNX model output '${name}' is missing or not float32`);
  }
  const data = output.data;
  const dims = output.dims;
  if (dims[0] !== rows || dims.length < 2 || dims.length > 4 || dims.some((dim) => dim < 1)) {
    throw new Error(`ONNX model output '${name}' has shape [${dims.join(', ')}] for a batch of ${rows}`);
  }
  const rowLength = data.length / rows;
  const vectors: Float32Array[] = [];
  for (let row = 0; row < rows; row++) {
    const block = data.subarray(row * rowLength, (row + 1) * rowLength);
    if (dims.length === 2) {
      vectors.push(Float32Array.from(block));
    } else if (dims.length === 3) {
      // [T, D]: token 0 is CLS in ViT-style encoders.
      const [tokens, depth] = [dims[1]!, dims[2]!];
      vectors.push(pooling === 'cls' ? Float32Array.from(block.subarray(0, depth)) : meanOfRows(block, tokens, depth));
    } else {
      // [D, H, W]: global average pooling over the spatial positions (a no-op for 1×1).
      const [depth, positions] = [dims[1]!, dims[2]! * (dims[3] ?? 1)];
      const vector = new Float32Array(depth);
      for (let d = 0; d < depth; d++) {
        let sum = 0;
        for (let p = 0; p < positions; p++) sum += block[d * positions + p]!;
        vector[d] = sum / positions;
      }
      vectors.push(vector);
    }
  }
  return vectors;
}

function meanOfRows(block: Float32Array, count: number, depth: number): Float32Array {
  const vector = new Float32Array(depth);
  for (let t = 0; t < count; t++) {
    for (let d = 0; d < depth; d++) vector[d]! += block[t * depth + d]!;
  }
  for (let d = 0; d < depth; d++) vector[d]! /= count;
  return vector;
}

/** Scales the vector to unit length in place; `kind` names the model when it produced NaN or infinity. */
export function l2Normalise(vector: Float32Array, kind = 'ONNX model'): Float32Array {
  let sum = 0;
  for (const value of vector) sum += value * value;
  if (!Number.isFinite(sum)) throw new Error(`${kind} produced a non-finite embedding`);
  if (sum === 0) return vector;
  const inverse = 1 / Math.sqrt(sum);
  for (let index = 0; index < vector.length; index++) vector[index]! *= inverse;
  return vector;
}

// ---------------------------------------------------------------------------------------------
// Preprocessing: crop box → antialiased bilinear resize → normalise, written as planar CHW floats.

interface Taps {
  /** First source index of each output position. */
  first: Int32Array;
  /** Number of taps of each output position. */
  count: Int32Array;
  /** `maxTaps` weights per output position, summing to 1. */
  weights: Float32Array;
  maxTaps: number;
}

/**
 * Filter taps mapping the source span [start, start + length) (fractional allowed) of an axis with
 * `size` pixels onto `outLength` pixels; pixel centres at +0.5, samples outside the image clamped away.
 */
function resampleTaps(size: number, start: number, length: number, outLength: number): Taps {
  const scale = length / outLength;
  const support = Math.max(scale, 1); // triangle radius in source pixels
  const maxTaps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outLength);
  const count = new Int32Array(outLength);
  const weights = new Float32Array(outLength * maxTaps);
  for (let out = 0; out < outLength; out++) {
    const centre = start + (out + 0.5) * scale;
    const from = Math.max(0, Math.floor(centre - support));
    const to = Math.min(size, Math.ceil(centre + support)); // exclusive
    let total = 0;
    let taps = 0;
    for (let source = from; source < to && taps < maxTaps; source++, taps++) {
      const weight = Math.max(0, 1 - Math.abs((source + 0.5 - centre) / support));
      weights[out * maxTaps + taps] = weight;
      total += weight;
    }
    if (total === 0) {
      // Degenerate span (cannot happen for a non-empty image): take the nearest pixel.
      weights[out * maxTaps] = 1;
      total = 1;
      taps = 1;
    }
    for (let tap = 0; tap < taps; tap++) weights[out * maxTaps + tap]! /= total;
    first[out] = from;
    count[out] = taps;
  }
  return { first, count, weights, maxTaps };
}

function writeNormalisedChw(raster: Raster, target: Float32Array, settings: Settings): void {
  const { width, height, data } = raster;
  const side = settings.inputSize;
  let [left, top, cropWidth, cropHeight] = [0, 0, width, height];
  if (settings.resize === 'center-crop') {
    const square = Math.min(width, height);
    [left, top, cropWidth, cropHeight] = [(width - square) / 2, (height - square) / 2, square, square];
  }
  const horizontal = resampleTaps(width, left, cropWidth, side);
  const vertical = resampleTaps(height, top, cropHeight, side);

  // Horizontal pass over only the source rows the vertical taps will read.
  const firstRow = vertical.first[0]!;
  const lastRow = vertical.first[side - 1]! + vertical.count[side - 1]!; // exclusive
  const rowCount = lastRow - firstRow;
  const rowStride = side * 3;
  const rows = new Float32Array(rowCount * rowStride);
  for (let y = 0; y < rowCount; y++) {
    const sourceRow = (firstRow + y) * width * 3;
    for (let x = 0; x < side; x++) {
      const base = x * horizontal.maxTaps;
      const from = horizontal.first[x]!;
      const taps = horizontal.count[x]!;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let tap = 0; tap < taps; tap++) {
        const weight = horizontal.weights[base + tap]!;
        const pixel = sourceRow + (from + tap) * 3;
        r += data[pixel]! * weight;
        g += data[pixel + 1]! * weight;
        b += data[pixel + 2]! * weight;
      }
      const out = y * rowStride + x * 3;
      rows[out] = r;
      rows[out + 1] = g;
      rows[out + 2] = b;
    }
  }

  // Vertical pass, normalising into the three planes.
  const plane = side * side;
  const [scaleR, scaleG, scaleB] = settings.scale;
  const [offsetR, offsetG, offsetB] = settings.offset;
  for (let y = 0; y < side; y++) {
    const base = y * vertical.maxTaps;
    const from = vertical.first[y]! - firstRow;
    const taps = vertical.count[y]!;
    for (let x = 0; x < side; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let tap = 0; tap < taps; tap++) {
        const weight = vertical.weights[base + tap]!;
        const pixel = (from + tap) * rowStride + x * 3;
        r += rows[pixel]! * weight;
        g += rows[pixel + 1]! * weight;
        b += rows[pixel + 2]! * weight;
      }
      const out = y * side + x;
      target[out] = r * scaleR + offsetR;
      target[plane + out] = g * scaleG + offsetG;
      target[2 * plane + out] = b * scaleB + offsetB;
    }
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
