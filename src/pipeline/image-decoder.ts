/**
 * Image decoding and thumbnailing. This is the only module that imports sharp,
 * so libvips' behaviour (and its error messages) stays contained here.
 */
import { open } from 'node:fs/promises';
import sharp from 'sharp';
import { MediaDecodeError } from './media-decode-error.js';
import { SNIFF_BYTES, sniffContent } from './media-types.js';
import type { Raster } from './raster.js';

export interface DecodedImage {
  /** Display size, i.e. after applying EXIF orientation. */
  width: number;
  height: number;
  /** sharp's name for the container: 'jpeg', 'png', 'webp', 'gif', 'tiff', 'heif'. */
  format: string;
  /** JPEG bytes. */
  thumbnail: Buffer;
  thumbnailWidth: number;
  thumbnailHeight: number;
  /**
   * The thumbnail's pixels (thumbnailWidth x thumbnailHeight) before JPEG encoding: 8-bit sRGB, EXIF
   * orientation applied, alpha flattened onto white, grey expanded to 3 channels. Every feature
   * (quality, embedding) is computed from it, so the file is decoded exactly once.
   */
  raster: Raster;
}

/** A thumbnail made from an encoded image held in memory, with the pixels it was encoded from. */
export interface BufferThumbnail {
  thumbnail: Buffer;
  width: number;
  height: number;
  raster: Raster;
}

/** A rectangle on an image: top-left corner, width and height. */
export interface ImageBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The crop of an image's box: the box in whole pixels of the image (clamped to it), its thumbnail and raster. */
export interface DecodedRegion extends BufferThumbnail {
  box: ImageBox;
}

export interface ImageDecoder {
  /** Fully decodes the file (so truncated/corrupt files fail), returns display dimensions (EXIF orientation applied) and a JPEG thumbnail whose longer side is at most `thumbnailSize`. */
  decode(filePath: string): Promise<DecodedImage>;
  /** Same thumbnail (and raster) from an encoded image in memory (used for video frames). */
  thumbnailFromBuffer(input: Buffer): Promise<BufferThumbnail>;
  /**
   * Decodes only the box of the file (an object cut from its image): a box in `relative` units is
   * in fractions of the image's display size. The box is rounded to whole pixels and clamped to the
   * image; one that falls outside it or has no area is a MediaDecodeError saying so.
   */
  decodeRegion(filePath: string, box: ImageBox, units: 'px' | 'relative'): Promise<DecodedRegion>;
}

export interface SharpImageDecoderOptions {
  /** Longer side of thumbnails, in pixels. */
  thumbnailSize: number;
  /** Images whose header claims more pixels than this are refused before any pixel memory is allocated. */
  maxPixels: number;
}

// libvips' operation cache only pays off when the same image is processed repeatedly; here it just holds memory.
sharp.cache(false);

const THUMBNAIL_JPEG_QUALITY = 80;
/** Transparent pixels are shown (and measured) as on a white page. */
const WHITE = { r: 255, g: 255, b: 255 };

/**
 * 'error' rejects truncated and undecodable data but tolerates libjpeg/libpng warnings
 * (e.g. stray bytes before a marker), which many real-world camera files trigger
 * and which browsers display fine.
 */
const FAIL_ON = 'error';

export function createSharpImageDecoder(options: SharpImageDecoderOptions): ImageDecoder {
  const { thumbnailSize, maxPixels } = options;

  /**
   * One decode: libvips shrinks on load (JPEG DCT scaling, WebP scaled decode) straight into the
   * thumbnail box and hands back raw RGB; the JPEG thumbnail is then encoded from those pixels, so
   * features and thumbnail come from the same decode. Every scanline is still decoded, so
   * truncation is caught here.
   */
  async function renderThumbnail(input: string | Buffer, region?: ImageBox): Promise<BufferThumbnail> {
    const image = sharp(input, { failOn: FAIL_ON, limitInputPixels: maxPixels }).rotate();
    // Extracting after the EXIF rotation: the box is in display pixels, as the image is shown.
    if (region) image.extract({ left: region.x, top: region.y, width: region.width, height: region.height });
    const { data, info } = await image
      .resize({ width: thumbnailSize, height: thumbnailSize, fit: 'inside', withoutEnlargement: true })
      .flatten({ background: WHITE })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new MediaDecodeError(`unsupported pixel layout (${info.channels} channels)`);
    const { width, height } = info;
    // Huffman-table optimisation is a second pass over the coefficients: skipping it costs ~8% in
    // thumbnail bytes and buys back most of what the second (raw → JPEG) pipeline adds.
    const thumbnail = await sharp(data, { raw: { width, height, channels: 3 } })
      .jpeg({ quality: THUMBNAIL_JPEG_QUALITY, optimiseCoding: false })
      .toBuffer();
    const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return { thumbnail, width, height, raster: { data: pixels, width, height, channels: 3 } };
  }

  async function readHeader(input: string | Buffer) {
    // The pixel limit is checked by hand below, so the reason can name the offending size.
    const metadata = await sharp(input, { failOn: FAIL_ON, limitInputPixels: false }).metadata();
    if (metadata.width * metadata.height > maxPixels) {
      throw new MediaDecodeError(
        `image too large: ${metadata.width}x${metadata.height} pixels exceeds the limit of ${maxPixels}`,
      );
    }
    return metadata;
  }

  return {
    async decode(filePath) {
      // Typical files are read once into memory and decoded from there: one open instead of three
      // (sniff, header, pixels), which matters at hundreds of images a second. Large ones stream.
      const { head, whole } = await readForDecode(filePath);
      assertDecodableContent(head);
      const input = whole ?? filePath;
      try {
        const metadata = await readHeader(input);
        const thumbnail = await renderThumbnail(input);
        return {
          width: metadata.autoOrient.width,
          height: metadata.autoOrient.height,
          format: metadata.format,
          thumbnail: thumbnail.thumbnail,
          thumbnailWidth: thumbnail.width,
          thumbnailHeight: thumbnail.height,
          raster: thumbnail.raster,
        };
      } catch (error) {
        throw toMediaDecodeError(error);
      }
    },

    async decodeRegion(filePath, box, units) {
      const { head, whole } = await readForDecode(filePath);
      assertDecodableContent(head);
      const input = whole ?? filePath;
      try {
        const metadata = await readHeader(input);
        const region = pixelBox(box, units, metadata.autoOrient.width, metadata.autoOrient.height);
        return { ...(await renderThumbnail(input, region)), box: region };
      } catch (error) {
        throw toMediaDecodeError(error);
      }
    },

    async thumbnailFromBuffer(input) {
      assertDecodableContent(input.subarray(0, SNIFF_BYTES));
      try {
        await readHeader(input);
        return await renderThumbnail(input);
      } catch (error) {
        throw toMediaDecodeError(error);
      }
    },
  };
}

/** The box in whole pixels of a width × height image, clamped to it; outside or empty → MediaDecodeError. */
export function pixelBox(box: ImageBox, units: 'px' | 'relative', width: number, height: number): ImageBox {
  const values = [box.x, box.y, box.width, box.height];
  if (!values.every((v) => Number.isFinite(v))) throw new MediaDecodeError(`invalid bounding box [${values.join(', ')}]: not numbers`);
  if (box.width <= 0 || box.height <= 0) throw new MediaDecodeError(`invalid bounding box [${values.join(', ')}]: width and height must be positive`);
  const scaleX = units === 'relative' ? width : 1;
  const scaleY = units === 'relative' ? height : 1;
  const x0 = Math.max(0, Math.round(box.x * scaleX));
  const y0 = Math.max(0, Math.round(box.y * scaleY));
  const x1 = Math.min(width, Math.round((box.x + box.width) * scaleX));
  const y1 = Math.min(height, Math.round((box.y + box.height) * scaleY));
  if (x1 - x0 < 1 || y1 - y0 < 1) {
    const shown = units === 'relative' ? `[${values.join(', ')}] (relative)` : `[${values.join(', ')}]`;
    throw new MediaDecodeError(`bounding box ${shown} lies outside the ${width}x${height} image`);
  }
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/**
 * Formats sharp may open. Checked from magic bytes before libvips sees the file, so content that
 * libvips could also load (SVG with its external references, libvips' own .v format, ...) never
 * reaches it just because it was named .jpg.
 */
const DECODABLE_FORMATS = new Set(['jpeg', 'png', 'gif', 'webp', 'tiff', 'heic', 'heif', 'avif']);

function assertDecodableContent(head: Buffer): void {
  const sniffed = sniffContent(head);
  if (sniffed.kind === 'empty') throw new MediaDecodeError('empty file (0 bytes)');
  if (sniffed.kind === 'image' && sniffed.format !== undefined && DECODABLE_FORMATS.has(sniffed.format)) return;
  if (sniffed.kind === 'image') throw new MediaDecodeError(`not a decodable image (${sniffed.format} is not supported)`);
  if (sniffed.kind === 'unknown') throw new MediaDecodeError('not a decodable image (unsupported image format)');
  throw new MediaDecodeError(`not a decodable image (content is ${sniffed.format} ${sniffed.kind})`);
}

/** Files up to this size are decoded from memory. */
const IN_MEMORY_MAX_BYTES = 16 * 1024 * 1024;

async function readForDecode(filePath: string): Promise<{ head: Buffer; whole: Buffer | null }> {
  let file;
  try {
    file = await open(filePath, 'r');
  } catch (error) {
    throw new MediaDecodeError(`file not readable (${errorCode(error)})`, { cause: error });
  }
  try {
    const stats = await file.stat();
    if (!stats.isFile()) throw new MediaDecodeError('not a regular file');
    if (stats.size <= IN_MEMORY_MAX_BYTES) {
      const whole = await file.readFile();
      return { head: whole.subarray(0, SNIFF_BYTES), whole };
    }
    const buffer = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await file.read(buffer, 0, SNIFF_BYTES, 0);
    return { head: buffer.subarray(0, bytesRead), whole: null };
  } catch (error) {
    if (error instanceof MediaDecodeError) throw error;
    throw new MediaDecodeError(`file not readable (${errorCode(error)})`, { cause: error });
  } finally {
    await file.close();
  }
}

/** Turns sharp's messages into short reasons. Its messages can span several (repeated) lines; the first says it. */
function toMediaDecodeError(error: unknown): MediaDecodeError {
  if (error instanceof MediaDecodeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const firstLine = (message.split('\n')[0] ?? '').trim();

  let reason: string;
  if (firstLine.startsWith('Input file contains unsupported image format')) {
    reason = 'not a decodable image (unsupported image format)';
  } else if (firstLine.startsWith('Input image exceeds pixel limit')) {
    reason = 'image too large: exceeds the pixel limit';
  } else if (firstLine.startsWith('Input file is missing')) {
    reason = 'file not readable (ENOENT)';
  } else if (/unsupported (codec|feature)/i.test(firstLine)) {
    // e.g. HEVC-coded HEIC with a libheif built without an HEVC decoder.
    reason = `unsupported image encoding (${stripCorruptHeaderPrefix(firstLine)})`;
  } else {
    reason = `truncated or corrupt image data (${stripCorruptHeaderPrefix(firstLine)})`;
  }
  return new MediaDecodeError(reason, { cause: error });
}

function stripCorruptHeaderPrefix(message: string): string {
  return message.replace(/^Input (file|buffer) has corrupt header:\s*/, '');
}

function errorCode(error: unknown): string {
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') return error.code;
  return error instanceof Error ? error.message : String(error);
}
