import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { calibrateSimilarity } from '../domain/similarity.js';
import { createSharpImageDecoder } from '../pipeline/image-decoder.js';
import type { Raster } from '../pipeline/raster.js';
import { BUILTIN_DIMENSIONS, BuiltinDescriptorModel, createBuiltinModel, describe as describeRaster } from './builtin-descriptor.js';

const decoder = createSharpImageDecoder({ thumbnailSize: 320, maxPixels: 100_000_000 });
const model = createBuiltinModel();

/** A deterministic picture: a lit gradient with shapes from large to small, and fine grain. */
async function picture(seed: number, width = 900, height = 600): Promise<Buffer> {
  let state = seed >>> 0;
  const random = () => {
    state = (Math.imul(state ^ (state >>> 15), 2246822519) + 374761393) >>> 0;
    return state / 4_294_967_296;
  };
  const hue = Math.floor(random() * 360);
  const shapes: string[] = [];
  for (let i = 0; i < 120; i++) {
    const size = Math.max(3, Math.round((width / 3) * Math.pow(random(), 2.5)));
    const [x, y] = [Math.round(random() * width), Math.round(random() * height)];
    const fill = `hsl(${(hue + Math.floor(random() * 160)) % 360}, ${30 + Math.floor(random() * 60)}%, ${15 + Math.floor(random() * 70)}%)`;
    shapes.push(
      random() < 0.5
        ? `<circle cx="${x}" cy="${y}" r="${size / 2}" fill="${fill}"/>`
        : `<rect x="${x}" y="${y}" width="${size}" height="${Math.round(size * (0.3 + random()))}" fill="${fill}" transform="rotate(${Math.floor(random() * 90)} ${x} ${y})"/>`,
    );
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs><linearGradient id="g" gradientTransform="rotate(${Math.floor(random() * 360)} 0.5 0.5)">
      <stop offset="0" stop-color="hsl(${hue}, 50%, 70%)"/><stop offset="1" stop-color="hsl(${(hue + 60) % 360}, 40%, 25%)"/>
    </linearGradient></defs><rect width="100%" height="100%" fill="url(#g)"/>${shapes.join('')}</svg>`;
  const grain = Buffer.alloc(width * height);
  for (let i = 0; i < grain.length; i++) grain[i] = Math.floor(random() * 256);
  const grainPng = await sharp(grain, { raw: { width, height, channels: 1 } }).png().toBuffer();
  return sharp(Buffer.from(svg)).composite([{ input: grainPng, blend: 'soft-light' }]).png().toBuffer();
}

async function rasterOf(image: Buffer): Promise<Raster> {
  return (await decoder.thumbnailFromBuffer(image)).raster;
}

async function embed(image: Buffer): Promise<Float32Array> {
  const [vector] = await model.embed([await rasterOf(image)]);
  return vector!;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

function watermark(width: number, height: number): Buffer {
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <text x="${width / 2}" y="${height / 2}" text-anchor="middle" font-family="DejaVu Sans, sans-serif" font-weight="bold"
      font-size="${Math.round(width / 9)}" fill="white" fill-opacity="0.5">© vizdex stock</text></svg>`);
}

function logo(width: number, height: number): Buffer {
  const side = Math.round(Math.min(width, height) * 0.15);
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <rect x="${width - side - 20}" y="${height - side - 20}" width="${side}" height="${side}" rx="12" fill="#d22"/>
    <circle cx="${width - side / 2 - 20}" cy="${height - side / 2 - 20}" r="${side / 3}" fill="white"/></svg>`);
}

/** Edits that keep "the same picture", applied to a 900×600 PNG. */
const EDITS: Record<string, (image: Buffer) => Promise<Buffer>> = {
  'resized to 40%': (image) => sharp(image).resize(360).png().toBuffer(),
  'resized to 150%': (image) => sharp(image).resize(1350).jpeg({ quality: 90 }).toBuffer(),
  'recompressed as JPEG q30': (image) => sharp(image).jpeg({ quality: 30 }).toBuffer(),
  'recompressed as JPEG q60 at 70%': (image) => sharp(image).resize(630).jpeg({ quality: 60 }).toBuffer(),
  're-encoded as WebP': (image) => sharp(image).webp({ quality: 75 }).toBuffer(),
  'cropped 8% at a corner': (image) => sharp(image).extract({ left: 72, top: 48, width: 828, height: 552 }).png().toBuffer(),
  'cropped 5% on every side': (image) => sharp(image).extract({ left: 45, top: 30, width: 810, height: 540 }).png().toBuffer(),
  brightened: (image) => sharp(image).modulate({ brightness: 1.35 }).png().toBuffer(),
  darkened: (image) => sharp(image).modulate({ brightness: 0.6 }).png().toBuffer(),
  'contrast raised': (image) => sharp(image).linear(1.5, -64).png().toBuffer(),
  'contrast lowered': (image) => sharp(image).linear(0.6, 51).png().toBuffer(),
  'gamma-corrected': (image) => sharp(image).gamma(2.2, 1.6).png().toBuffer(),
  'watermarked with text': (image) => sharp(image).composite([{ input: watermark(900, 600) }]).jpeg({ quality: 85 }).toBuffer(),
  'stamped with a logo': (image) => sharp(image).composite([{ input: logo(900, 600) }]).jpeg({ quality: 85 }).toBuffer(),
};

describe('builtin descriptor model', () => {
  it('has a stable id, its dimensions and a duplicate cosine below 1', () => {
    expect(model.id).toBe('builtin-v1');
    expect(model.dimensions).toBe(BUILTIN_DIMENSIONS);
    expect(model.duplicateCosine).toBeGreaterThan(0.5);
    expect(model.duplicateCosine).toBeLessThan(1);
    expect(new BuiltinDescriptorModel().dimensions).toBe(BUILTIN_DIMENSIONS);
  });

  it('returns one L2-normalised vector per raster, deterministically', async () => {
    const rasters = [await rasterOf(await picture(1)), await rasterOf(await picture(2))];
    const vectors = await model.embed(rasters);
    expect(vectors).toHaveLength(2);
    for (const vector of vectors) {
      expect(vector).toBeInstanceOf(Float32Array);
      expect(vector.length).toBe(model.dimensions);
      expect(cosine(vector, vector)).toBeCloseTo(1, 5);
      expect(vector.every(Number.isFinite)).toBe(true);
    }
    expect(Array.from((await model.embed([rasters[0]!]))[0]!)).toEqual(Array.from(vectors[0]!));
    expect(await model.embed([])).toEqual([]);
  });

  it('handles tiny, flat, grey and odd-shaped rasters', () => {
    const make = (width: number, height: number, fill: (i: number) => number): Raster => ({
      data: Uint8Array.from({ length: width * height * 3 }, (_, i) => fill(i)),
      width,
      height,
      channels: 3,
    });
    for (const raster of [
      make(1, 1, () => 128),
      make(2, 3, (i) => (i * 37) % 256),
      make(320, 1, (i) => i % 256),
      make(1, 320, (i) => i % 256),
      make(64, 64, () => 0),
      make(64, 64, () => 255),
      make(100, 80, (i) => Math.floor(i / 3) % 200), // grey ramp, no colour at all
    ]) {
      const vector = describeRaster(raster);
      expect(vector.every(Number.isFinite)).toBe(true);
      expect(cosine(vector, vector)).toBeCloseTo(1, 4);
    }
    expect(() => describeRaster({ data: new Uint8Array(5), width: 4, height: 4, channels: 3 })).toThrow(RangeError);
  });

  describe('finds the same picture after an edit', () => {
    let original: Buffer;
    let originalVector: Float32Array;
    beforeAll(async () => {
      original = await picture(42);
      originalVector = await embed(original);
    });

    it.each(Object.keys(EDITS))('%s', async (name) => {
      const edited = await embed(await EDITS[name]!(original));
      const similarity = calibrateSimilarity(cosine(originalVector, edited), model.duplicateCosine);
      expect(similarity).toBeGreaterThanOrEqual(0.96);
    });
  });

  it('does not pair different pictures', async () => {
    const vectors = await Promise.all([1, 2, 3, 4, 5, 6].map(async (seed) => embed(await picture(seed))));
    for (let i = 0; i < vectors.length; i++) {
      for (let j = i + 1; j < vectors.length; j++) {
        expect(cosine(vectors[i]!, vectors[j]!)).toBeLessThan(model.duplicateCosine);
      }
    }
  });

  it('tells a colour variant of one layout apart (a wallpaper series), unlike a brightened copy', async () => {
    const original = await picture(42);
    const base = await embed(original);
    const recoloured = await embed(await sharp(original).modulate({ hue: 150 }).png().toBuffer());
    const brightened = await embed(await sharp(original).modulate({ brightness: 1.3 }).png().toBuffer());
    expect(cosine(base, recoloured)).toBeLessThan(model.duplicateCosine);
    expect(cosine(base, brightened)).toBeGreaterThan(cosine(base, recoloured));
  });

  it('treats a greyscale copy as a different picture (colour is part of its identity, as for a series)', async () => {
    const original = await picture(7);
    const grey = await embed(await sharp(original).greyscale().png().toBuffer());
    expect(cosine(await embed(original), grey)).toBeLessThan(model.duplicateCosine);
  });
});

// Real photographs (skimage's sample data), when the benchmark cache holds them.
const skimageData = join(
  process.env.VIZDEX_BENCH_CACHE ?? join(homedir(), '.cache', 'vizdex-bench'),
  'python3-skimage/usr/lib/python3/dist-packages/skimage/data',
);
const photos = ['astronaut.png', 'coffee.png', 'chelsea.png', 'rocket.jpg', 'motorcycle_left.png', 'retina.jpg'];

describe.skipIf(!existsSync(skimageData))('builtin descriptor on real photographs', () => {
  it('finds each photo edited and pairs no two different photos', async () => {
    const originals = await Promise.all(photos.map((name) => sharp(join(skimageData, name)).toColourspace('srgb').png().toBuffer()));
    const vectors = await Promise.all(originals.map(embed));
    for (let i = 0; i < vectors.length; i++) {
      for (let j = i + 1; j < vectors.length; j++) expect(cosine(vectors[i]!, vectors[j]!)).toBeLessThan(model.duplicateCosine);
      const { width = 0, height = 0 } = await sharp(originals[i]!).metadata();
      const edited = await sharp(originals[i]!)
        .extract({ left: Math.round(width * 0.06), top: 0, width: Math.round(width * 0.94), height })
        .modulate({ brightness: 1.2 })
        .jpeg({ quality: 50 })
        .toBuffer();
      expect(cosine(vectors[i]!, await embed(edited))).toBeGreaterThanOrEqual(model.duplicateCosine);
    }
  });
});
