import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { createSharpImageDecoder } from './image-decoder.js';
import { QUALITY_THRESHOLDS, WORKING_SIZE, computeQuality, qualityIssues, workingLuminance, type QualityStats } from './quality.js';
import type { Raster } from './raster.js';

const decoder = createSharpImageDecoder({ thumbnailSize: 320, maxPixels: 100_000_000 });

function solid(width: number, height: number, [r, g, b]: [number, number, number]): Raster {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set([r, g, b], i * 3);
  return { data, width, height, channels: 3 };
}

/** A deterministic "photo": a lit gradient, many shapes from large to tiny (roughly 1/f), and fine grain. */
async function photoLike(width: number, height: number, seed = 7): Promise<Buffer> {
  let state = seed >>> 0;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4_294_967_296;
  };
  const shapes: string[] = [];
  for (let i = 0; i < 400; i++) {
    const size = Math.max(2, Math.round((width / 6) * Math.pow(random(), 3)));
    const [x, y] = [Math.round(random() * width), Math.round(random() * height)];
    const fill = `hsl(${Math.floor(random() * 360)}, ${30 + Math.floor(random() * 50)}%, ${25 + Math.floor(random() * 50)}%)`;
    shapes.push(
      random() < 0.5
        ? `<circle cx="${x}" cy="${y}" r="${size / 2}" fill="${fill}"/>`
        : `<rect x="${x}" y="${y}" width="${size}" height="${Math.round(size * (0.3 + random()))}" fill="${fill}"/>`,
    );
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#8ab"/><stop offset="1" stop-color="#453"/></linearGradient></defs>
    <rect width="100%" height="100%" fill="url(#sky)"/>${shapes.join('')}</svg>`;
  const grain = Buffer.alloc(width * height);
  for (let i = 0; i < grain.length; i++) grain[i] = Math.floor(random() * 256);
  const grainPng = await sharp(grain, { raw: { width, height, channels: 1 } }).png().toBuffer();
  return sharp(Buffer.from(svg))
    .composite([{ input: grainPng, blend: 'soft-light' }])
    .png()
    .toBuffer();
}

async function rasterOf(image: Buffer): Promise<Raster> {
  return (await decoder.thumbnailFromBuffer(image)).raster;
}

const issueTypes = (stats: QualityStats) => qualityIssues(stats).map((issue) => issue.type);

describe('computeQuality', () => {
  it('measures a uniform picture exactly', () => {
    const stats = computeQuality(solid(100, 50, [200, 100, 50]));
    const luma = 0.299 * 200 + 0.587 * 100 + 0.114 * 50;
    expect(stats.mean).toBeCloseTo(luma, 3);
    expect(stats.min).toBeCloseTo(luma, 3);
    expect(stats.max).toBeCloseTo(luma, 3);
    expect(stats.std).toBeCloseTo(0, 3);
    expect(stats.blur).toBeCloseTo(0, 6);
    expect(stats.contrast).toBe(0);
  });

  it('reports the range and the 5–95% contrast of a two-tone picture', () => {
    const raster = solid(200, 100, [0, 0, 0]);
    for (let y = 0; y < 100; y++) raster.data.fill(255, y * 600 + 300, y * 600 + 600); // right half white
    const stats = computeQuality(raster);
    expect(stats.min).toBe(0);
    expect(stats.max).toBe(255);
    expect(stats.mean).toBeCloseTo(127.5, 0);
    expect(stats.std).toBeCloseTo(127.5, 0);
    expect(stats.contrast).toBe(1);
  });

  it('measures at a fixed working size, whatever the raster size', async () => {
    expect(workingLuminance(solid(320, 180, [9, 9, 9])).width).toBe(WORKING_SIZE);
    expect(workingLuminance(solid(90, 160, [9, 9, 9])).height).toBe(WORKING_SIZE);
    expect(workingLuminance(solid(1, 1, [9, 9, 9]))).toMatchObject({ width: WORKING_SIZE, height: WORKING_SIZE });

    // The same picture rendered at 640 px and at 2560 px: after decoding to a thumbnail, blur agrees.
    const small = computeQuality(await rasterOf(await photoLike(640, 427)));
    const large = computeQuality(await rasterOf(await sharp(await photoLike(640, 427)).resize(2560).png().toBuffer()));
    expect(large.blur / small.blur).toBeGreaterThan(0.75);
    expect(large.blur / small.blur).toBeLessThan(1.33);
    expect(Math.abs(large.mean - small.mean)).toBeLessThan(2);
  });

  it('rejects a raster whose buffer does not match its size', () => {
    expect(() => computeQuality({ data: new Uint8Array(10), width: 10, height: 10, channels: 3 })).toThrow(RangeError);
  });
});

describe('qualityIssues', () => {
  it('does not flag a sharp, normally exposed picture', async () => {
    const stats = computeQuality(await rasterOf(await photoLike(800, 533)));
    expect(stats.blur).toBeGreaterThan(100);
    expect(qualityIssues(stats)).toEqual([]);
  });

  it('flags Gaussian-blurred copies as blurry, more confidently the stronger the blur', async () => {
    const original = await photoLike(800, 533);
    // σ in working-size pixels (the working plane is 256 px wide; this copy is 800 px wide).
    const blurred = async (sigma: number) => computeQuality(await rasterOf(await sharp(original).blur((sigma * 800) / WORKING_SIZE).png().toBuffer()));
    const mild = await blurred(2);
    const strong = await blurred(4);
    const mildBlur = qualityIssues(mild).find((issue) => issue.type === 'blur');
    const strongBlur = qualityIssues(strong).find((issue) => issue.type === 'blur');
    expect(mildBlur?.confidence).toBeGreaterThanOrEqual(0.5);
    expect(strongBlur?.confidence).toBeGreaterThan(mildBlur!.confidence);
    expect(strong.blur).toBeLessThan(mild.blur);
  });

  it('does not call a darkened sharp picture blurry, but dark', async () => {
    const dark = computeQuality(await rasterOf(await sharp(await photoLike(800, 533)).linear(0.25, 0).png().toBuffer()));
    expect(issueTypes(dark)).toEqual(['dark']);
  });

  it('flags an overexposed copy as bright', async () => {
    const bright = computeQuality(await rasterOf(await sharp(await photoLike(800, 533)).linear(2, 90).png().toBuffer()));
    expect(issueTypes(bright)).toContain('bright');
  });

  it('never calls a flat picture blurry', () => {
    expect(issueTypes(computeQuality(solid(64, 64, [128, 128, 128])))).toEqual([]);
    expect(issueTypes(computeQuality(solid(64, 64, [3, 3, 3])))).toEqual(['dark']);
    expect(issueTypes(computeQuality(solid(64, 64, [252, 252, 252])))).toEqual(['bright']);
  });

  it('gives confidences in (0.5 … 1], growing away from the threshold', () => {
    const base: QualityStats = { blur: 500, mean: 120, min: 0, max: 255, std: 50, contrast: 0.8 };
    const at = (mean: number) => qualityIssues({ ...base, mean })[0]?.confidence;
    expect(at(QUALITY_THRESHOLDS.dark - 1)).toBeGreaterThan(0.5);
    expect(at(QUALITY_THRESHOLDS.dark - 1)!).toBeLessThan(at(QUALITY_THRESHOLDS.darkFull + 1)!);
    expect(at(0)).toBe(1);
    expect(at(255)).toBe(1);
    expect(at(QUALITY_THRESHOLDS.dark + 1)).toBeUndefined();
    expect(at(QUALITY_THRESHOLDS.bright - 1)).toBeUndefined();
  });
});

// Real photographs (skimage's sample data), when the benchmark cache holds them: none may be flagged.
const skimageData = join(
  process.env.VIZDEX_BENCH_CACHE ?? join(homedir(), '.cache', 'vizdex-bench'),
  'python3-skimage/usr/lib/python3/dist-packages/skimage/data',
);
const realPhotos = ['astronaut.png', 'coffee.png', 'chelsea.png', 'camera.png', 'rocket.jpg', 'motorcycle_left.png', 'coins.png'];

describe.skipIf(!existsSync(skimageData))('qualityIssues on real photographs', () => {
  it.each(realPhotos)('%s: not flagged as it is; flagged once blurred, darkened or overexposed', async (name) => {
    const file = await sharp(join(skimageData, name)).toColourspace('srgb').png().toBuffer();
    const { width = 0 } = await sharp(file).metadata();
    expect(qualityIssues(computeQuality(await rasterOf(file)))).toEqual([]);
    const blurred = await sharp(file).blur(Math.max(0.3, (3 * width) / WORKING_SIZE)).png().toBuffer();
    expect(issueTypes(computeQuality(await rasterOf(blurred)))).toContain('blur');
    const dark = await sharp(file).linear(0.2, 0).png().toBuffer();
    expect(issueTypes(computeQuality(await rasterOf(dark)))).toContain('dark');
    const bright = await sharp(file).linear(2.5, 140).png().toBuffer();
    expect(issueTypes(computeQuality(await rasterOf(bright)))).toContain('bright');
  });
});
