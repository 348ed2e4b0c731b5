import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../../test/fixtures/media.js';
import { tinyOnnxProjection, writeTinyOnnxModel, type TinyOnnxModelOptions } from '../../test/fixtures/onnx.js';
import type { Raster } from '../pipeline/raster.js';
import type { EmbeddingModel } from './embedding-model.js';
import { IMAGENET_MEAN, IMAGENET_STD, loadOnnxModel, OnnxModelError, type OnnxModelOptions } from './onnx-model.js';

const INPUT_SIZE = 32;
const DIMENSIONS = 48;

let dir: string;
let modelPath: string;
let model: EmbeddingModel;
/** Decoded pictures: seeds 1..4 at 320x240, and seed 1 again resized to 200x150 and recompressed. */
const pictures: Raster[] = [];
let resizedFirst: Raster;

function options(path: string, extra: Partial<OnnxModelOptions> = {}): OnnxModelOptions {
  return { path, inputSize: INPUT_SIZE, mean: IMAGENET_MEAN, std: IMAGENET_STD, duplicateCosine: 0.9, ...extra };
}

async function writeModel(name: string, fixture: TinyOnnxModelOptions = {}): Promise<string> {
  const path = join(dir, name);
  await writeTinyOnnxModel(path, { inputSize: INPUT_SIZE, dimensions: DIMENSIONS, ...fixture });
  return path;
}

async function decode(bytes: Buffer): Promise<Raster> {
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(3);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: 3 };
}

function noise(width: number, height: number, seed: number): Raster {
  const data = new Uint8Array(width * height * 3);
  let state = seed;
  for (let index = 0; index < data.length; index++) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    data[index] = state >>> 24;
  }
  return { data, width, height, channels: 3 };
}

function solid(width: number, height: number, rgb: [number, number, number]): Raster {
  const data = new Uint8Array(width * height * 3);
  for (let index = 0; index < data.length; index += 3) data.set(rgb, index);
  return { data, width, height, channels: 3 };
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let index = 0; index < a.length; index++) dot += a[index]! * b[index]!;
  return dot;
}

function norm(vector: Float32Array): number {
  return Math.sqrt(cosine(vector, vector));
}

function expectClose(actual: Float32Array, expected: Float32Array, tolerance = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  const worst = Math.max(...Array.from(actual, (value, index) => Math.abs(value - expected[index]!)));
  expect(worst).toBeLessThan(tolerance);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vizdex-onnx-'));
  modelPath = await writeModel('tiny.onnx');
  model = await loadOnnxModel(options(modelPath));
  for (const seed of [1, 2, 3, 4]) pictures.push(await decode(await makeImage({ width: 320, height: 240, seed })));
  const original = await makeImage({ width: 320, height: 240, seed: 1, format: 'png' });
  resizedFirst = await decode(await sharp(original).resize(200, 150).jpeg({ quality: 75 }).toBuffer());
});

afterAll(async () => {
  await model?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('loadOnnxModel', () => {
  it('reads the embedding size from the model and names the model after the file and its hash', () => {
    expect(model.dimensions).toBe(DIMENSIONS);
    expect(model.duplicateCosine).toBe(0.9);
    expect(model.id).toMatch(/^onnx:tiny:[0-9a-f]{8}$/);
  });

  it('embeds decoded pictures into unit vectors of that size, one per picture', async () => {
    const vectors = await model.embed(pictures);

    expect(vectors).toHaveLength(pictures.length);
    for (const vector of vectors) {
      expect(vector).toBeInstanceOf(Float32Array);
      expect(vector).toHaveLength(DIMENSIONS);
      expect(norm(vector)).toBeCloseTo(1, 5);
    }
  });

  it('is deterministic', async () => {
    const first = await model.embed(pictures);
    const second = await model.embed(pictures);

    expect(second).toEqual(first);
  });

  it('puts a resized, recompressed copy much closer than a different picture', async () => {
    const [original, copy, ...others] = await model.embed([pictures[0]!, resizedFirst, ...pictures.slice(1)]);

    const copySimilarity = cosine(original!, copy!);
    expect(copySimilarity).toBeGreaterThan(0.98);
    for (const other of others) expect(cosine(original!, other)).toBeLessThan(copySimilarity - 0.05);
  });

  it('gives the same vectors whether pictures are embedded together, in small batches or one by one', async () => {
    const together = await model.embed(pictures);
    const smallBatches = await loadOnnxModel(options(modelPath, { batchSize: 3, threads: 1 }));
    try {
      const batched = await smallBatches.embed(pictures);
      for (const [index, picture] of pictures.entries()) {
        const [single] = await model.embed([picture]);
        expectClose(single!, together[index]!);
        expectClose(batched[index]!, together[index]!);
      }
    } finally {
      await smallBatches.close();
    }
  });

  it('returns nothing for no pictures', async () => {
    await expect(model.embed([])).resolves.toEqual([]);
  });

  it('feeds the model NCHW pixels normalised with mean and std (checked against the graph computed by hand)', async () => {
    // A raster already at the input size is not resampled, so the expected output can be computed
    // directly: normalise, average 4x4 blocks per channel, project, L2-normalise.
    const raster = noise(INPUT_SIZE, INPUT_SIZE, 7);
    const projection = tinyOnnxProjection({ dimensions: DIMENSIONS });
    const block = INPUT_SIZE / 8;
    const pooled = new Float64Array(192);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < INPUT_SIZE; y++) {
        for (let x = 0; x < INPUT_SIZE; x++) {
          const value = (raster.data[(y * INPUT_SIZE + x) * 3 + c]! / 255 - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!;
          pooled[c * 64 + Math.floor(y / block) * 8 + Math.floor(x / block)]! += value / (block * block);
        }
      }
    }
    const expected = new Float32Array(DIMENSIONS);
    for (let d = 0; d < DIMENSIONS; d++) {
      let sum = 0;
      for (let i = 0; i < 192; i++) sum += pooled[i]! * projection[i * DIMENSIONS + d]!;
      expected[d] = sum;
    }
    const length = norm(expected);
    expected.forEach((value, index) => (expected[index] = value / length));

    const [actual] = await model.embed([raster]);

    expectClose(actual!, expected, 1e-4);
  });

  it('centre-crops to a square by default, and squashes the whole frame when asked', async () => {
    const centre = noise(INPUT_SIZE, INPUT_SIZE, 11);
    // 96x32: noise | centre | other noise.
    const wide = noise(INPUT_SIZE * 3, INPUT_SIZE, 12);
    for (let y = 0; y < INPUT_SIZE; y++) {
      wide.data.set(centre.data.subarray(y * INPUT_SIZE * 3, (y + 1) * INPUT_SIZE * 3), (y * INPUT_SIZE * 3 + INPUT_SIZE) * 3);
    }
    const squash = await loadOnnxModel(options(modelPath, { resize: 'squash' }));
    try {
      const [centreVector, wideVector] = await model.embed([centre, wide]);
      const [squashedWide] = await squash.embed([wide]);

      expectClose(wideVector!, centreVector!);
      expect(cosine(squashedWide!, centreVector!)).toBeLessThan(0.9);
    } finally {
      await squash.close();
    }
  });

  it('resamples any size with weights that sum to one: a flat colour gives the same vector at every size', async () => {
    const colour: [number, number, number] = [200, 40, 90];
    const vectors = await model.embed([
      solid(INPUT_SIZE, INPUT_SIZE, colour),
      solid(1, 1, colour),
      solid(7, 500, colour),
      solid(1001, 333, colour),
    ]);

    for (const vector of vectors.slice(1)) expectClose(vector, vectors[0]!);
  });

  it('rejects rasters whose buffer does not match their size', async () => {
    await expect(model.embed([{ data: new Uint8Array(10), width: 4, height: 4, channels: 3 }])).rejects.toThrow(
      /raster 0 holds 10 bytes, expected 4x4x3/,
    );
  });

  describe('output layouts', () => {
    it('uses token 0 (CLS) of a [N, T, D] output, or the mean of the tokens when asked', async () => {
      const path = await writeModel('tokens.onnx', { output: 'tokens' });
      const cls = await loadOnnxModel(options(path));
      const mean = await loadOnnxModel(options(path, { tokenPooling: 'mean' }));
      try {
        expect(cls.dimensions).toBe(DIMENSIONS);
        const [clsVector] = await cls.embed([pictures[0]!]);
        const [meanVector] = await mean.embed([pictures[0]!]);
        expect(norm(clsVector!)).toBeCloseTo(1, 5);
        expect(norm(meanVector!)).toBeCloseTo(1, 5);
        expect(cosine(clsVector!, meanVector!)).toBeLessThan(0.999);
      } finally {
        await cls.close();
        await mean.close();
      }
    });

    it('flattens a [N, D, 1, 1] output into the same vector as [N, D]', async () => {
      const path = await writeModel('map.onnx', { output: 'map', symbolicDimensions: true });
      const mapModel = await loadOnnxModel(options(path));
      try {
        expect(mapModel.dimensions).toBe(DIMENSIONS);
        const [expected] = await model.embed([pictures[1]!]);
        const [actual] = await mapModel.embed([pictures[1]!]);
        expectClose(actual!, expected!);
      } finally {
        await mapModel.close();
      }
    });

    it('pads batches for a model with a fixed batch size', async () => {
      const path = await writeModel('fixed-batch.onnx', { fixedBatch: 3 });
      const fixed = await loadOnnxModel(options(path, { batchSize: 16 }));
      try {
        const expected = await model.embed(pictures);
        const actual = await fixed.embed(pictures);
        expect(actual).toHaveLength(pictures.length);
        actual.forEach((vector, index) => expectClose(vector, expected[index]!));
      } finally {
        await fixed.close();
      }
    });

    it('accepts symbolic height and width', async () => {
      const path = await writeModel('any-size.onnx', { symbolicSpatial: true });
      const anySize = await loadOnnxModel(options(path));
      try {
        const [expected] = await model.embed([pictures[2]!]);
        const [actual] = await anySize.embed([pictures[2]!]);
        expectClose(actual!, expected!);
      } finally {
        await anySize.close();
      }
    });

    it('picks the embedding output among several, or the one named in options', async () => {
      const path = await writeModel('two-outputs.onnx', { extraOutput: true });
      const guessed = await loadOnnxModel(options(path));
      try {
        expect(guessed.dimensions).toBe(DIMENSIONS);
        const [expected] = await model.embed([pictures[3]!]);
        const [actual] = await guessed.embed([pictures[3]!]);
        expectClose(actual!, expected!);
      } finally {
        await guessed.close();
      }
      await expect(loadOnnxModel(options(path, { outputName: 'logits' }))).rejects.toThrow(
        /no output named 'logits' \(outputs: pooled, embeddings\)/,
      );
    });
  });

  describe('errors', () => {
    it('says clearly when the file does not exist', async () => {
      const missing = join(dir, 'nowhere', 'model.onnx');

      const error = await loadOnnxModel(options(missing)).catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(OnnxModelError);
      expect((error as Error).message).toBe(`ONNX model file not found: ${missing}`);
    });

    it('says clearly when the path is a directory', async () => {
      await expect(loadOnnxModel(options(dir))).rejects.toThrow(`ONNX model path is not a file: ${dir}`);
    });

    it('says clearly when the file is not an ONNX model', async () => {
      const jpegPath = join(dir, 'photo.onnx');
      await writeFile(jpegPath, await makeImage());
      const textPath = join(dir, 'notes.onnx');
      await writeFile(textPath, 'this is not a model\n');
      const emptyPath = join(dir, 'empty.onnx');
      await writeFile(emptyPath, Buffer.alloc(0));

      for (const path of [jpegPath, textPath, emptyPath]) {
        const error = await loadOnnxModel(options(path)).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(OnnxModelError);
        expect((error as Error).message).toMatch(new RegExp(`^not a loadable ONNX model: ${path} \\(.+\\)$`));
      }
    });

    it('refuses a model whose fixed input size differs from inputSize', async () => {
      await expect(loadOnnxModel(options(modelPath, { inputSize: 64 }))).rejects.toThrow(
        /unsupported ONNX model .*tiny\.onnx: input 'pixel_values' is 32x32 but inputSize is 64/,
      );
    });

    it('refuses nonsensical options before touching the file', async () => {
      await expect(loadOnnxModel(options(modelPath, { std: [0.2, 0, 0.2] }))).rejects.toThrow(RangeError);
      await expect(loadOnnxModel(options(modelPath, { batchSize: 0 }))).rejects.toThrow(RangeError);
    });

    it('cannot be used after close', async () => {
      const short = await loadOnnxModel(options(modelPath));
      await short.close();
      await short.close();

      await expect(short.embed(pictures)).rejects.toThrow(/closed/);
    });
  });

  describe('id', () => {
    it('is the same for the same bytes and changes when the file changes', async () => {
      const otherDir = join(dir, 'copy');
      await mkdir(otherDir);
      const copyPath = join(otherDir, 'tiny.onnx');
      await copyFile(modelPath, copyPath);
      const copy = await loadOnnxModel(options(copyPath));
      await copy.close();
      expect(copy.id).toBe(model.id);

      await writeTinyOnnxModel(copyPath, { inputSize: INPUT_SIZE, dimensions: DIMENSIONS, seed: 2 });
      const changed = await loadOnnxModel(options(copyPath));
      await changed.close();
      expect(changed.id).toMatch(/^onnx:tiny:[0-9a-f]{8}$/);
      expect(changed.id).not.toBe(model.id);
    });
  });
});
