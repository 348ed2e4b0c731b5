/**
 * Pure helpers that decide what a file is, from its name or its first bytes.
 * No I/O here: callers read the head of the file themselves.
 */

export type MediaKind = 'image' | 'video';

// Not .bmp: the libvips build shipped with sharp cannot decode it. HEIC decodes where it holds AV1 (not HEVC).
export const SUPPORTED_IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  '.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.heic', '.heif',
]);

export const SUPPORTED_VIDEO_EXTENSIONS: ReadonlySet<string> = new Set([
  '.mp4', '.mov', '.webm', '.mkv', '.avi',
]);

export const ARCHIVE_EXTENSIONS: ReadonlySet<string> = new Set(['.zip', '.tar', '.tar.gz', '.tgz']);

/** How many leading bytes `sniffContent` needs to recognise every format (tar's marker sits at 257). */
export const SNIFF_BYTES = 512;

export interface FileNameClassification {
  kind: MediaKind | 'archive' | 'unsupported';
  /** Lower-cased, with the leading dot (`.tar.gz` for gzipped tarballs); '' when the name has none. */
  extension: string;
}

export interface ContentSniff {
  kind: MediaKind | 'archive' | 'unknown' | 'empty';
  /** e.g. 'jpeg', 'png', 'heic', 'mp4', 'mov', 'webm', 'zip', 'gzip', 'tar'. */
  format?: string;
}

/** Extension of the last path segment; accepts both '/' and '\\' separators (archive entry names use either). */
export function fileExtension(name: string): string {
  const baseName = name.split(/[\\/]/).pop() ?? '';
  const lower = baseName.toLowerCase();
  if (lower.endsWith('.tar.gz') && lower.length > '.tar.gz'.length) return '.tar.gz';
  const dot = lower.lastIndexOf('.');
  // A leading dot marks a hidden file ('.jpg' is a name, not an extension).
  return dot > 0 ? lower.slice(dot) : '';
}

export function classifyFileName(name: string): FileNameClassification {
  const extension = fileExtension(name);
  if (SUPPORTED_IMAGE_EXTENSIONS.has(extension)) return { kind: 'image', extension };
  if (SUPPORTED_VIDEO_EXTENSIONS.has(extension)) return { kind: 'video', extension };
  if (ARCHIVE_EXTENSIONS.has(extension)) return { kind: 'archive', extension };
  return { kind: 'unsupported', extension };
}

/** Identifies a file from its magic bytes. Pass at least `SNIFF_BYTES` bytes; shorter heads are fine but may miss tar. */
export function sniffContent(head: Buffer): ContentSniff {
  if (head.length === 0) return { kind: 'empty' };

  // Checked first: a tar starts with an arbitrary file name that could mimic another format's magic.
  if (asciiAt(head, 257, 'ustar')) return { kind: 'archive', format: 'tar' };

  if (bytesAt(head, 0, [0xff, 0xd8, 0xff])) return { kind: 'image', format: 'jpeg' };
  if (bytesAt(head, 0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { kind: 'image', format: 'png' };
  if (asciiAt(head, 0, 'GIF87a') || asciiAt(head, 0, 'GIF89a')) return { kind: 'image', format: 'gif' };
  if (asciiAt(head, 0, 'RIFF')) {
    if (asciiAt(head, 8, 'WEBP')) return { kind: 'image', format: 'webp' };
    if (asciiAt(head, 8, 'AVI ')) return { kind: 'video', format: 'avi' };
  }
  if (bytesAt(head, 0, [0x49, 0x49, 0x2a, 0x00]) || bytesAt(head, 0, [0x4d, 0x4d, 0x00, 0x2a])) {
    return { kind: 'image', format: 'tiff' };
  }
  if (looksLikeBmp(head)) return { kind: 'image', format: 'bmp' };

  if (asciiAt(head, 4, 'ftyp')) return sniffIsoMedia(head);
  if (QUICKTIME_LEADING_ATOMS.some((atom) => asciiAt(head, 4, atom))) return { kind: 'video', format: 'mov' };
  if (bytesAt(head, 0, [0x1a, 0x45, 0xdf, 0xa3])) return sniffMatroska(head);

  if (asciiAt(head, 0, 'PK') && ZIP_SIGNATURE_TAILS.some((tail) => bytesAt(head, 2, tail))) {
    return { kind: 'archive', format: 'zip' };
  }
  if (bytesAt(head, 0, [0x1f, 0x8b])) return { kind: 'archive', format: 'gzip' };

  return { kind: 'unknown' };
}

/** Local file header, empty archive (end of central directory only), spanned archive. */
const ZIP_SIGNATURE_TAILS = [[0x03, 0x04], [0x05, 0x06], [0x07, 0x08]];

/** Old QuickTime files may start with one of these atoms instead of `ftyp`. */
const QUICKTIME_LEADING_ATOMS = ['moov', 'mdat', 'wide', 'free', 'skip', 'pnot'];

const HEIC_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'hevm', 'hevs']);
const AVIF_BRANDS = new Set(['avif', 'avis']);
const HEIF_BRANDS = new Set(['mif1', 'msf1']);
const AUDIO_ONLY_BRANDS = new Set(['M4A ', 'M4B ', 'M4P ', 'F4A ', 'F4B ']);

/** ISO base media file (`ftyp` box at offset 4): HEIF-family stills or MP4/QuickTime movies, told apart by brand. */
function sniffIsoMedia(head: Buffer): ContentSniff {
  const majorBrand = asciiSlice(head, 8, 4);
  const compatibleBrands = ftypCompatibleBrands(head);

  if (AVIF_BRANDS.has(majorBrand)) return { kind: 'image', format: 'avif' };
  if (HEIC_BRANDS.has(majorBrand)) return { kind: 'image', format: 'heic' };
  if (HEIF_BRANDS.has(majorBrand)) {
    // The generic HEIF brands say "some still-image codec"; the compatible list names which one.
    if (compatibleBrands.some((brand) => AVIF_BRANDS.has(brand))) return { kind: 'image', format: 'avif' };
    if (compatibleBrands.some((brand) => HEIC_BRANDS.has(brand))) return { kind: 'image', format: 'heic' };
    return { kind: 'image', format: 'heif' };
  }
  if (AUDIO_ONLY_BRANDS.has(majorBrand)) return { kind: 'unknown', format: 'm4a' };
  if (majorBrand === 'qt  ') return { kind: 'video', format: 'mov' };
  return { kind: 'video', format: 'mp4' };
}

function ftypCompatibleBrands(head: Buffer): string[] {
  if (head.length < 8) return [];
  const boxEnd = Math.min(head.readUInt32BE(0), head.length);
  const brands: string[] = [];
  // Layout: size(4) 'ftyp'(4) major(4) minor version(4) then 4-byte compatible brands.
  for (let offset = 16; offset + 4 <= boxEnd; offset += 4) brands.push(asciiSlice(head, offset, 4));
  return brands;
}

/** EBML header: the DocType element says 'webm' or 'matroska'. */
function sniffMatroska(head: Buffer): ContentSniff {
  const header = head.subarray(0, 64).toString('latin1');
  return { kind: 'video', format: header.includes('webm') ? 'webm' : 'mkv' };
}

/** Size of the DIB header following the 14-byte file header, for the BMP variants in use. */
const BMP_DIB_HEADER_SIZES = new Set([12, 16, 40, 52, 56, 64, 108, 124]);

/** 'BM' alone is too weak (plenty of text starts that way), so also check the DIB header size when present. */
function looksLikeBmp(head: Buffer): boolean {
  if (!asciiAt(head, 0, 'BM')) return false;
  if (head.length < 18) return true;
  return BMP_DIB_HEADER_SIZES.has(head.readUInt32LE(14));
}

function bytesAt(buffer: Buffer, offset: number, expected: readonly number[]): boolean {
  if (buffer.length < offset + expected.length) return false;
  return expected.every((byte, index) => buffer[offset + index] === byte);
}

function asciiAt(buffer: Buffer, offset: number, expected: string): boolean {
  return asciiSlice(buffer, offset, expected.length) === expected;
}

function asciiSlice(buffer: Buffer, offset: number, length: number): string {
  if (buffer.length < offset + length) return '';
  return buffer.toString('latin1', offset, offset + length);
}

/**
 * Whether a file may enter a dataset: its extension is a supported media type and its content is
 * media too (or empty: that is recorded later as a decoding failure, not a format error).
 * `archiveProblem` is what to say about an archive where none is expected.
 */
export function checkMediaFile(fileName: string, head: Buffer, archiveProblem: string): { kind: MediaKind; extension: string } | { problem: string } {
  const byName = classifyFileName(fileName);
  if (byName.kind === 'archive') return { problem: archiveProblem };
  if (byName.kind === 'unsupported') {
    return { problem: byName.extension ? `unsupported file extension '${byName.extension}'` : 'no file extension' };
  }
  const byContent = sniffContent(head);
  if (byContent.kind === 'archive') return { problem: archiveProblem };
  if (byContent.kind === 'unknown') return { problem: 'content is not a supported image or video format' };
  const kind = byContent.kind === 'empty' ? byName.kind : byContent.kind;
  return { kind, extension: byName.extension };
}
