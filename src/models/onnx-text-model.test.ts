import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeTinyClipTextModel,
  encodeTinyOnnxModel,
  TINY_CLIP_DIMENSIONS,
  writeTinyClipPair,
  writeTinyClipTokenizer,
  type TinyClipTextModelOptions,
} from '../../test/fixtures/onnx.js';
import { loadConfig } from '../config.js';
import { loadClipTokenizer, type ClipTokenizer } from './clip-tokenizer.js';
import { createEmbeddingModel } from './create-model.js';
import { OnnxModelError } from './onnx-model.js';
import { loadOnnxTextModel, type OnnxTextModel } from './onnx-text-model.js';

const axis = (index: number) => Float32Array.from({ length: TINY_CLIP_DIMENSIONS }, (_, i) => (i === index ? 1 : 0));
const close = (vector: Float32Array, expected: number[] | Float32Array) => {
  expect(vector).toHaveLength(expected.length);
  vector.forEach((value, i) => expect(value).toBeCloseTo(expected[i]!, 5));
};

describe('ONNX text model', () => {
  let dir: string;
  let tokenizer: ClipTokenizer;
  const opened: OnnxTextModel[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vizdex-text-model-'));
    tokenizer = await loadClipTokenizer(await writeTinyClipTokenizer(dir, 'tokenizer.json'));
  });
  afterAll(async () => {
    await Promise.all(opened.map((model) => model.close()));
    await rm(dir, { recursive: true, force: true });
  });

  async function load(name: string, options: TinyClipTextModelOptions = {}): Promise<OnnxTextModel> {
    const path = join(dir, name);
    await writeFile(path, encodeTinyClipTextModel(options));
    const model = await loadOnnxTextModel({ path, tokenizer });
    opened.push(model);
    return model;
  }

  it('feeds input_ids and attention_mask and reads text_embeds [N, D], L2-normalised', async () => {
    const model = await load('pooled.onnx');
    expect(model.id).toMatch(/^onnx-text:pooled:[0-9a-f]{8}$/);
    expect(model.dimensions).toBe(TINY_CLIP_DIMENSIONS);
    expect(model.sequenceLength).toBe(77);
    const [red, green, blue, mixed, none] = await model.embedText(['red', 'a photo of something GREEN', 'blue', 'red and blue', 'purple']);
    // The padding token's row points along the last axis: any of it would show (the mask keeps it out).
    close(red!, axis(0));
    close(green!, axis(1));
    close(blue!, axis(2));
    close(mixed!, [Math.SQRT1_2, 0, Math.SQRT1_2, 0, 0, 0, 0, 0]);
    // A text of unknown words only is the zero vector: similar to nothing.
    close(none!, new Array(TINY_CLIP_DIMENSIONS).fill(0));
  });

  it('reads a token sequence [N, L, D] at the end token, as CLIP pools', async () => {
    // CumSum over the sequence: the row at the end token sums the text's tokens; later rows add padding.
    const model = await load('sequence.onnx', { output: 'sequence' });
    expect(model.sequenceLength).toBe(77); // symbolic L: the tokenizer's context length
    const [red, mixed] = await model.embedText(['red', 'green blue']);
    close(red!, axis(0));
    close(mixed!, [0, Math.SQRT1_2, Math.SQRT1_2, 0, 0, 0, 0, 0]);
  });

  it('feeds as many tokens as a fixed sequence length asks for, cutting long texts there', async () => {
    const model = await load('short.onnx', { sequenceLength: 4 });
    expect(model.sequenceLength).toBe(4);
    // [start, red, green, end]: 'blue' is cut off.
    close((await model.embedText(['red green blue']))[0]!, [Math.SQRT1_2, Math.SQRT1_2, 0, 0, 0, 0, 0, 0]);
  });

  it('batches any number of texts', async () => {
    const model = await load('batched.onnx');
    const texts = Array.from({ length: 37 }, (_, i) => ['red', 'green', 'blue'][i % 3]!);
    const vectors = await model.embedText(texts);
    expect(vectors).toHaveLength(37);
    vectors.forEach((vector, i) => close(vector, axis(i % 3)));
    expect(await model.embedText([])).toEqual([]);
  });

  it('refuses an image model, a missing file and a non-ONNX file with a message naming the path', async () => {
    const imagePath = join(dir, 'image.onnx');
    await writeFile(imagePath, encodeTinyOnnxModel());
    await expect(loadOnnxTextModel({ path: imagePath, tokenizer })).rejects.toThrow(/unsupported ONNX text model .*image\.onnx: expected an integer input named input_ids/);
    await expect(loadOnnxTextModel({ path: join(dir, 'missing.onnx'), tokenizer })).rejects.toThrow(/ONNX text model file not found: .*missing\.onnx/);
    await writeFile(join(dir, 'garbage.onnx'), 'not a model');
    await expect(loadOnnxTextModel({ path: join(dir, 'garbage.onnx'), tokenizer })).rejects.toThrow(OnnxModelError);
  });
});

describe('the configured CLIP pair', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vizdex-clip-pair-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('embeds pictures and texts into one space: "red" is nearest the red picture', async () => {
    const pair = await writeTinyClipPair(dir, { tokenizer: 'bpe_simple_vocab.txt.gz' });
    const config = loadConfig({}, pair.env);
    expect(config.model).toMatchObject({ kind: 'onnx', text: { path: pair.textModel, tokenizer: pair.tokenizer } });
    const model = await createEmbeddingModel(config.model, 1);
    try {
      expect(model.id).toMatch(/^onnx:tiny-clip-vision:[0-9a-f]{8}$/);
      expect(model.text?.id).toMatch(/^onnx-text:tiny-clip-text:[0-9a-f]{8}$/);
      const solid = (r: number, g: number, b: number) => ({ data: new Uint8Array(16 * 16 * 3).map((_, i) => [r, g, b][i % 3]!), width: 16, height: 16, channels: 3 as const });
      const images = await model.embed([solid(220, 30, 20), solid(20, 200, 40), solid(30, 40, 210)]);
      const [text] = await model.text!.embedText(['a red thing']);
      const cosines = images.map((image) => image.reduce((sum, value, i) => sum + value * text![i]!, 0));
      expect(cosines[0]).toBeGreaterThan(0.9);
      expect(cosines[0]).toBeGreaterThan(cosines[1]! + 0.5);
      expect(cosines[0]).toBeGreaterThan(cosines[2]! + 0.5);
    } finally {
      await model.close();
    }
  });

  it('refuses a text model whose vectors do not match the image model\'s', async () => {
    const sub = await mkdtemp(join(dir, 'mismatch-'));
    const pair = await writeTinyClipPair(sub, { text: { dimensions: 5 } });
    const config = loadConfig({}, pair.env);
    await expect(createEmbeddingModel(config.model, 1)).rejects.toThrow(/gives 5-dimensional vectors but the image model .* gives 8/);
  });

  it('refuses incomplete or image-less text settings, naming the setting', () => {
    const problems = (env: Record<string, string>): string[] => {
      try {
        loadConfig({}, env);
        return [];
      } catch (error) {
        return (error as { problems: string[] }).problems;
      }
    };
    expect(problems({ VIZDEX_TEXT_MODEL: '/m/text.onnx', VIZDEX_TOKENIZER: '/m/tokenizer.json' })).toEqual([
      expect.stringMatching(/^VIZDEX_TEXT_MODEL: text search needs VIZDEX_MODEL set to the image \.onnx/),
    ]);
    expect(problems({ VIZDEX_MODEL: '/m/vision.onnx', VIZDEX_TEXT_MODEL: '/m/text.onnx' })).toEqual([expect.stringMatching(/^VIZDEX_TOKENIZER: required with VIZDEX_TEXT_MODEL/)]);
    expect(problems({ VIZDEX_MODEL: '/m/vision.onnx', VIZDEX_TOKENIZER: '/m/tokenizer.json' })).toEqual([expect.stringMatching(/^VIZDEX_TEXT_MODEL: required with VIZDEX_TOKENIZER/)]);
    expect(problems({ VIZDEX_MODEL: '/m/vision.onnx', VIZDEX_TEXT_MODEL: '/m/text.bin', VIZDEX_TOKENIZER: '/m/t.json' })).toEqual([expect.stringMatching(/^VIZDEX_TEXT_MODEL: expected the path of a \.onnx file/)]);
    expect(loadConfig({}, { VIZDEX_MODEL: '/m/vision.onnx' }).model).not.toHaveProperty('text');
  });
});
