/**
 * What the annotation parsers share: the size limits of one annotation file, and the small checks
 * every format applies to numbers and confidences.
 */
import { AnnotationFileError } from './annotation-record.js';

export interface AnnotationFileLimits {
  /** Largest annotation file (or, for a YOLO archive, sum of its label files) accepted, in bytes. */
  maxBytes: number;
  /** Most rows (annotations, label lines, table rows) one file may hold. */
  maxRows: number;
}

export const MAX_ANNOTATION_FILE_BYTES = 200 * 1024 * 1024;
export const MAX_ANNOTATION_ROWS = 2_000_000;

export const DEFAULT_ANNOTATION_FILE_LIMITS: Readonly<AnnotationFileLimits> = Object.freeze({
  maxBytes: MAX_ANNOTATION_FILE_BYTES,
  maxRows: MAX_ANNOTATION_ROWS,
});

export function annotationLimits(limits: Partial<AnnotationFileLimits> = {}): AnnotationFileLimits {
  return { ...DEFAULT_ANNOTATION_FILE_LIMITS, ...limits };
}

export function tooManyRows(what: string, maxRows: number): AnnotationFileError {
  return new AnnotationFileError(`${what} has more than ${maxRows} rows; split it into smaller files`);
}

export function tooManyBytes(what: string, maxBytes: number): AnnotationFileError {
  return new AnnotationFileError(`${what} is larger than the limit of ${maxBytes} bytes; split it into smaller files`);
}

/** A decimal number written as text (`12`, `-0.5`, `1e-3`), or null for anything else ('', 'NaN', '0x10', '1,5'). */
export function numberOf(text: string): number | null {
  const trimmed = text.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(trimmed)) return null;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : null;
}

/** The reason a confidence cannot be used, or null when it is a number in [0, 1]. */
export function confidenceProblem(value: number, name: string): string | null {
  if (value < 0 || value > 1) return `${name} ${value} is not in [0, 1]`;
  return null;
}

/** Text for a value in a reason: short, quoted, one line. */
export function shown(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  const short = text.length > 60 ? `${text.slice(0, 60)}…` : text;
  return typeof value === 'string' ? `'${short.replace(/\r?\n/g, '\\n')}'` : short;
}

/** Boxes may overhang the image edge by this much (real exports round edges) and are then clamped to it. */
export const PX_EDGE_TOLERANCE = 1;
export const RELATIVE_EDGE_TOLERANCE = 0.001;

/**
 * Checks a top-left box against an image `width`×`height` (either may be unknown) and clamps an
 * overhang within `tolerance`; returns the reason it cannot be used, or the box to keep.
 */
export function fitBox(
  box: { x: number; y: number; width: number; height: number },
  imageWidth: number | null,
  imageHeight: number | null,
  tolerance: number,
): { box: { x: number; y: number; width: number; height: number } } | { problem: string } {
  if (box.width <= 0 || box.height <= 0) return { problem: `box size ${box.width}×${box.height} is not positive` };
  if (box.x < -tolerance || box.y < -tolerance) return { problem: `box starts outside the image at (${box.x}, ${box.y})` };
  if (imageWidth !== null && box.x + box.width > imageWidth + tolerance) {
    return { problem: `box right edge ${box.x + box.width} is outside the image width ${imageWidth}` };
  }
  if (imageHeight !== null && box.y + box.height > imageHeight + tolerance) {
    return { problem: `box bottom edge ${box.y + box.height} is outside the image height ${imageHeight}` };
  }
  let { x, y, width, height } = box;
  if (x < 0) [x, width] = [0, width + x];
  if (y < 0) [y, height] = [0, height + y];
  if (imageWidth !== null && x + width > imageWidth) width = imageWidth - x;
  if (imageHeight !== null && y + height > imageHeight) height = imageHeight - y;
  if (width <= 0 || height <= 0) return { problem: 'box has no area inside the image' };
  return { box: { x, y, width, height } };
}
