import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hugeDimensionPng, makeImage, truncatedJpeg, type FixtureImageFormat } from '../../test/fixtures/media.js';
import { createSharpImageDecoder } from './image-decoder.js';
import { MediaDecodeError } from './media-decode-error.js';

const THUMBNAIL_SIZE = 128;
const decoder = createSharpImageDecoder({ thumbnailSize: THUMBNAIL_SIZE, maxPixels: 268_402_689 });

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vizdex-image-decoder-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeTemp(name: string, content: Buffer | string): Promise<string> {
  const filePath = join(dir, name);
  await writeFile(filePath, content);
  return filePath;
}

async function decodeFailure(filePath: string): Promise<MediaDecodeError> {
  const error = await decoder.decode(filePath).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(MediaDecodeError);
  return error as MediaDecodeError;
}

describe('createSharpImageDecoder().decode', () => {
  it.each<[FixtureImageFormat, string]>([
    ['jpeg', 'jpg'],
    ['png', 'png'],
    ['webp', 'webp'],
  ])('decodes a %s with its dimensions and a bounded JPEG thumbnail', async (format, extension) => {
    const filePath = await writeTemp(`photo.${extension}`, await makeImage({ width: 400, height: 300, format }));

    const decoded = await decoder.decode(filePath);

    expect(decoded).toMatchObject({ width: 400, height: 300, format, thumbnailWidth: 128, thumbnailHeight: 96 });
    const thumbnail = await sharp(decoded.thumbnail).metadata();
    expect(thumbnail).toMatchObject({ format: 'jpeg', width: 128, height: 96 });
  });

  it('does not enlarge images smaller than the thumbnail size', async () => {
    const filePath = await writeTemp('small.png', await makeImage({ width: 60, height: 90, format: 'png' }));

    const decoded = await decoder.decode(filePath);

    expect(decoded).toMatchObject({ width: 60, height: 90, thumbnailWidth: 60, thumbnailHeight: 90 });
  });

  it('reports display dimensions for an EXIF-rotated JPEG and rotates the thumbnail', async () => {
    // Stored 400x300 landscape; orientation 6 means "rotate 90° clockwise to display".
    const filePath = await writeTemp('rotated.jpg', await makeImage({ width: 400, height: 300, exifOrientation: 6 }));

    const decoded = await decoder.decode(filePath);

    expect(decoded).toMatchObject({ width: 300, height: 400, thumbnailWidth: 96, thumbnailHeight: 128 });
  });

  it('returns the thumbnail pixels as an RGB raster from the same decode', async () => {
    const filePath = await writeTemp('raster.png', await makeImage({ width: 400, height: 300, format: 'png', seed: 7 }));

    const { raster, thumbnail, thumbnailWidth, thumbnailHeight } = await decoder.decode(filePath);

    expect(raster).toMatchObject({ width: thumbnailWidth, height: thumbnailHeight, channels: 3 });
    expect(raster.data).toBeInstanceOf(Uint8Array);
    expect(raster.data.length).toBe(128 * 96 * 3);
    // The JPEG thumbnail was encoded from these pixels: decoding it gives them back up to JPEG loss.
    const back = await sharp(thumbnail).raw().toBuffer();
    let error = 0;
    for (let i = 0; i < back.length; i++) error += Math.abs(back[i]! - raster.data[i]!);
    expect(error / back.length).toBeLessThan(6);
  });

  it('rotates the raster like the thumbnail', async () => {
    // Left half red, right half blue, stored landscape with orientation 6 (90° clockwise): top red, bottom blue.
    const stored = await sharp({ create: { width: 200, height: 100, channels: 3, background: '#ff0000' } })
      .composite([{ input: { create: { width: 100, height: 100, channels: 3, background: '#0000ff' } }, left: 100, top: 0 }])
      .withMetadata({ orientation: 6 })
      .jpeg()
      .toBuffer();
    const { raster } = await decoder.decode(await writeTemp('rotated-halves.jpg', stored));

    expect(raster).toMatchObject({ width: 64, height: 128 });
    const pixel = (x: number, y: number) => Array.from(raster.data.subarray((y * raster.width + x) * 3, (y * raster.width + x) * 3 + 3));
    expect(pixel(32, 10)[0]).toBeGreaterThan(200);
    expect(pixel(32, 10)[2]).toBeLessThan(60);
    expect(pixel(32, 117)[2]).toBeGreaterThan(200);
    expect(pixel(32, 117)[0]).toBeLessThan(60);
  });

  it('flattens transparency onto white and expands grey to three channels', async () => {
    const transparent = await sharp({ create: { width: 50, height: 40, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
      .png()
      .toBuffer();
    const grey = await sharp({ create: { width: 50, height: 40, channels: 3, background: '#404040' } }).toColourspace('b-w').png().toBuffer();
    const sixteenBit = await sharp({ create: { width: 50, height: 40, channels: 3, background: '#208040' } }).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    expect((await sharp(sixteenBit).metadata()).depth).toBe('ushort');

    const fromTransparent = (await decoder.decode(await writeTemp('clear.png', transparent))).raster;
    const fromGrey = (await decoder.decode(await writeTemp('grey.png', grey))).raster;
    const fromSixteenBit = (await decoder.decode(await writeTemp('deep.png', sixteenBit))).raster;

    for (const raster of [fromTransparent, fromGrey, fromSixteenBit]) {
      expect(raster).toMatchObject({ width: 50, height: 40, channels: 3 });
      expect(raster.data.length).toBe(50 * 40 * 3);
    }
    expect(Array.from(fromTransparent.data.subarray(0, 3))).toEqual([255, 255, 255]);
    expect(Array.from(fromGrey.data.subarray(0, 3))).toEqual([64, 64, 64]);
    expect(Array.from(fromSixteenBit.data.subarray(0, 3))).toEqual([32, 128, 64]);
  });

  it('rejects a truncated JPEG', async () => {
    const error = await decodeFailure(await writeTemp('truncated.jpg', await truncatedJpeg()));
    expect(error.reason).toMatch(/^truncated or corrupt image data \(.*premature end/i);
  });

  it('rejects a truncated PNG', async () => {
    const png = await makeImage({ width: 200, height: 200, format: 'png' });
    const error = await decodeFailure(await writeTemp('truncated.png', png.subarray(0, png.length >> 1)));
    expect(error.reason).toMatch(/^truncated or corrupt image data \(/);
  });

  it('rejects an empty file', async () => {
    const error = await decodeFailure(await writeTemp('empty.jpg', Buffer.alloc(0)));
    expect(error.reason).toBe('empty file (0 bytes)');
  });

  it('rejects text named .jpg', async () => {
    const error = await decodeFailure(await writeTemp('notes.jpg', 'this is not an image, just some text\n'));
    expect(error.reason).toBe('not a decodable image (unsupported image format)');
  });

  it('refuses to hand SVG content to libvips even if sharp could render it', async () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>';
    const error = await decodeFailure(await writeTemp('vector.png', svg));
    expect(error.reason).toBe('not a decodable image (unsupported image format)');
  });

  it('names the container when a video is passed as an image', async () => {
    const mp4Head = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypisom\0\0\0\0isommp41', 'latin1')]);
    const error = await decodeFailure(await writeTemp('clip.jpg', mp4Head));
    expect(error.reason).toBe('not a decodable image (content is mp4 video)');
  });

  it('refuses a decompression bomb from its header, quickly', async () => {
    const startedAt = performance.now();
    const error = await decodeFailure(await writeTemp('bomb.png', hugeDimensionPng()));
    expect(error.reason).toBe('image too large: 50000x50000 pixels exceeds the limit of 268402689');
    expect(performance.now() - startedAt).toBeLessThan(1000);
  });

  it('applies the configured pixel limit', async () => {
    const strict = createSharpImageDecoder({ thumbnailSize: 64, maxPixels: 10_000 });
    const filePath = await writeTemp('medium.webp', await makeImage({ width: 200, height: 100, format: 'webp' }));
    await expect(strict.decode(filePath)).rejects.toMatchObject({
      reason: 'image too large: 200x100 pixels exceeds the limit of 10000',
    });
  });

  it('reports a missing file as a decode failure', async () => {
    const error = await decodeFailure(join(dir, 'does-not-exist.jpg'));
    expect(error.reason).toBe('file not readable (ENOENT)');
  });
});

describe('createSharpImageDecoder().thumbnailFromBuffer', () => {
  it('thumbnails an encoded image held in memory', async () => {
    const png = await makeImage({ width: 640, height: 360, format: 'png' });

    const result = await decoder.thumbnailFromBuffer(png);

    expect(result).toMatchObject({ width: 128, height: 72 });
    expect((await sharp(result.thumbnail).metadata()).format).toBe('jpeg');
    expect(result.raster).toMatchObject({ width: 128, height: 72, channels: 3 });
    expect(result.raster.data.length).toBe(128 * 72 * 3);
  });

  it('rejects bytes that are not an image', async () => {
    await expect(decoder.thumbnailFromBuffer(Buffer.from('nope'))).rejects.toBeInstanceOf(MediaDecodeError);
  });
});

describe('createSharpImageDecoder().decodeRegion', () => {
  /** 200x100 stored pixels, left half red, right half blue. */
  async function halves(orientation?: number): Promise<Buffer> {
    const red = await sharp({ create: { width: 100, height: 100, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toBuffer();
    let image = sharp({ create: { width: 200, height: 100, channels: 3, background: { r: 0, g: 0, b: 255 } } }).composite([{ input: red, left: 0, top: 0 }]);
    if (orientation !== undefined) image = image.withMetadata({ orientation });
    return image.jpeg({ quality: 95 }).toBuffer();
  }
  const firstPixel = (raster: { data: Uint8Array }) => [...raster.data.subarray(0, 3)];
  const isRed = ([r, g, b]: number[]) => r! > 200 && g! < 60 && b! < 60;
  const isBlue = ([r, g, b]: number[]) => b! > 200 && r! < 60 && g! < 60;

  it('decodes only the box: its size, pixels and thumbnail', async () => {
    const file = await writeTemp('halves.jpg', await halves());
    const right = await decoder.decodeRegion(file, { x: 110, y: 10, width: 80, height: 60 }, 'px');
    expect(right.box).toEqual({ x: 110, y: 10, width: 80, height: 60 });
    expect([right.width, right.height]).toEqual([80, 60]);
    expect(isBlue(firstPixel(right.raster))).toBe(true);
    expect(await sharp(right.thumbnail).metadata()).toMatchObject({ format: 'jpeg', width: 80, height: 60 });
  });

  it('converts a relative box with the image size and clamps a box that overhangs the image', async () => {
    const file = await writeTemp('halves-relative.jpg', await halves());
    const left = await decoder.decodeRegion(file, { x: 0.1, y: 0.2, width: 0.3, height: 0.5 }, 'relative');
    expect(left.box).toEqual({ x: 20, y: 20, width: 60, height: 50 });
    expect(isRed(firstPixel(left.raster))).toBe(true);
    const overhang = await decoder.decodeRegion(file, { x: 150, y: 50, width: 100, height: 100 }, 'px');
    expect(overhang.box).toEqual({ x: 150, y: 50, width: 50, height: 50 });
  });

  it('reads the box in display pixels of an EXIF-rotated image', async () => {
    // Orientation 6 shows the 200x100 stored image rotated 90° clockwise: 100x200, red on top.
    const file = await writeTemp('halves-rotated.jpg', await halves(6));
    const top = await decoder.decodeRegion(file, { x: 10, y: 10, width: 80, height: 80 }, 'px');
    const bottom = await decoder.decodeRegion(file, { x: 0, y: 0.55, width: 1, height: 0.45 }, 'relative');
    expect(isRed(firstPixel(top.raster))).toBe(true);
    expect(bottom.box).toEqual({ x: 0, y: 110, width: 100, height: 90 });
    expect(isBlue(firstPixel(bottom.raster))).toBe(true);
  });

  it('refuses a box outside the image or without area, saying why', async () => {
    const file = await writeTemp('halves-outside.jpg', await halves());
    await expect(decoder.decodeRegion(file, { x: 300, y: 0, width: 10, height: 10 }, 'px')).rejects.toThrow(/bounding box \[300, 0, 10, 10\] lies outside the 200x100 image/);
    await expect(decoder.decodeRegion(file, { x: 10, y: 10, width: 0, height: 10 }, 'px')).rejects.toThrow(/width and height must be positive/);
    await expect(decoder.decodeRegion(file, { x: 1.2, y: 0, width: 0.5, height: 0.5 }, 'relative')).rejects.toBeInstanceOf(MediaDecodeError);
  });
});
