import { describe, expect, it } from 'vitest';
import { classifyFileName, fileExtension, sniffContent } from './media-types.js';

/** Builds a head buffer from byte arrays and latin1 strings, in order. */
function head(...parts: Array<string | number[]>): Buffer {
  return Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'latin1') : Buffer.from(part))));
}

function ftyp(majorBrand: string, compatibleBrands: string[] = []): Buffer {
  const size = 16 + 4 * compatibleBrands.length;
  const sizeBytes = Buffer.alloc(4);
  sizeBytes.writeUInt32BE(size);
  return head([...sizeBytes], 'ftyp', majorBrand, [0, 0, 0, 0], compatibleBrands.join(''), 'moov-and-more');
}

describe('classifyFileName', () => {
  it.each([
    ['photo.jpg', 'image', '.jpg'],
    ['PHOTO.JPEG', 'image', '.jpeg'],
    ['dir/sub/scan.TIFF', 'image', '.tiff'],
    ['C:\\pics\\IMG_0001.HEIC', 'image', '.heic'],
    ['clip.MoV', 'video', '.mov'],
    ['movie.mkv', 'video', '.mkv'],
    ['bundle.zip', 'archive', '.zip'],
    ['bundle.tar', 'archive', '.tar'],
    ['bundle.TAR.GZ', 'archive', '.tar.gz'],
    ['bundle.tgz', 'archive', '.tgz'],
    ['notes.gz', 'unsupported', '.gz'],
    ['readme.txt', 'unsupported', '.txt'],
    ['Makefile', 'unsupported', ''],
    ['.jpg', 'unsupported', ''],
    ['archive/.hidden.png', 'image', '.png'],
  ])('%s → %s %s', (name, kind, extension) => {
    expect(classifyFileName(name)).toEqual({ kind, extension });
  });

  it('does not treat a bare ".tar.gz" name as an archive extension', () => {
    expect(fileExtension('.tar.gz')).toBe('.gz');
  });
});

describe('sniffContent', () => {
  it('reports empty input', () => {
    expect(sniffContent(Buffer.alloc(0))).toEqual({ kind: 'empty' });
  });

  it.each([
    ['jpeg', head([0xff, 0xd8, 0xff, 0xe0], 'JFIF')],
    ['png', head([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13], 'IHDR')],
    ['gif', head('GIF89a', [1, 0, 1, 0])],
    ['gif', head('GIF87a')],
    ['webp', head('RIFF', [0x24, 0, 0, 0], 'WEBPVP8 ')],
    ['tiff', head([0x49, 0x49, 0x2a, 0x00, 8, 0, 0, 0])],
    ['tiff', head([0x4d, 0x4d, 0x00, 0x2a, 0, 0, 0, 8])],
    ['bmp', head('BM', [0x36, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0, 40, 0, 0, 0])],
    ['heic', ftyp('heic', ['mif1', 'heic'])],
    ['heic', ftyp('mif1', ['mif1', 'heic'])],
    ['heif', ftyp('mif1', ['mif1'])],
    ['avif', ftyp('avif', ['avif', 'mif1'])],
    ['avif', ftyp('mif1', ['avif', 'mif1', 'miaf'])],
  ])('recognises %s images', (format, bytes) => {
    expect(sniffContent(bytes)).toEqual({ kind: 'image', format });
  });

  it.each([
    ['mp4', ftyp('isom', ['isom', 'iso2', 'avc1', 'mp41'])],
    ['mp4', ftyp('mp42')],
    ['mov', ftyp('qt  ', ['qt  '])],
    ['mov', head([0, 0, 0, 8], 'wide', [0, 0, 0, 8], 'mdat')],
    ['mov', head([0, 0, 0x10, 0], 'moov')],
    ['webm', head([0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01, 0x42, 0x82, 0x84], 'webm')],
    ['mkv', head([0x1a, 0x45, 0xdf, 0xa3, 0xa3, 0x42, 0x86, 0x81, 0x01, 0x42, 0x82, 0x88], 'matroska')],
    ['avi', head('RIFF', [0, 0, 0, 0], 'AVI LIST')],
  ])('recognises %s video', (format, bytes) => {
    expect(sniffContent(bytes)).toEqual({ kind: 'video', format });
  });

  it('does not call audio-only MP4 a video', () => {
    expect(sniffContent(ftyp('M4A ', ['M4A ', 'mp42'])).kind).toBe('unknown');
  });

  it.each([
    ['zip', head('PK', [0x03, 0x04, 0x14, 0])],
    ['zip', head('PK', [0x05, 0x06], Buffer.alloc(18).toString('latin1'))],
    ['gzip', head([0x1f, 0x8b, 0x08, 0])],
  ])('recognises %s archives', (format, bytes) => {
    expect(sniffContent(bytes)).toEqual({ kind: 'archive', format });
  });

  it('recognises tar from the ustar marker at offset 257, even when the name mimics another format', () => {
    const tarHeader = Buffer.alloc(512);
    tarHeader.write('BM-looks-like-a-bitmap.jpg', 0, 'latin1');
    tarHeader.write('ustar\u000000', 257, 'latin1');
    expect(sniffContent(tarHeader)).toEqual({ kind: 'archive', format: 'tar' });
  });

  it('copes with heads too short for the format being checked', () => {
    expect(sniffContent(head([0xff, 0xd8]))).toEqual({ kind: 'unknown' });
    expect(sniffContent(head('RIFF'))).toEqual({ kind: 'unknown' });
    expect(sniffContent(head([0, 0, 0, 0x20], 'ftyp'))).toEqual({ kind: 'video', format: 'mp4' });
    expect(sniffContent(head('P'))).toEqual({ kind: 'unknown' });
    expect(sniffContent(Buffer.alloc(300))).toEqual({ kind: 'unknown' });
  });

  it('does not mistake text for a bitmap', () => {
    expect(sniffContent(Buffer.from('BMX project notes, version 2', 'latin1'))).toEqual({ kind: 'unknown' });
    expect(sniffContent(Buffer.from('hello, this is not an image', 'latin1'))).toEqual({ kind: 'unknown' });
  });
});
