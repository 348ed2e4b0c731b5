import type { AnnotationFormat, LabelSource } from '../db/schema.js';

export type { AnnotationFormat, LabelSource };

export const LABEL_SOURCES: readonly LabelSource[] = ['User', 'Model', 'Visual Layer'];

/** A box with its top-left corner; `relative` boxes are fractions of the image's width and height. */
export interface AnnotationBox {
  x: number;
  y: number;
  width: number;
  height: number;
  units: 'px' | 'relative';
}

/**
 * One usable row of an annotation file, before it is matched to a media item. A row with a box is an
 * object (its label is the object's class); a label without a box is an image label; a caption sets
 * the media's caption. A row may carry a caption and a label at once.
 */
export interface AnnotationRecord {
  /** Where the row is, for reports: `line 12`, `annotations[3]`, `labels/cat1.txt line 2`. */
  location: string;
  /** The media as the file names it: a base name (`cat1.jpg`) or a relative path (`train/cat1.jpg`). */
  fileName: string;
  /** True when `fileName` has no extension to compare (YOLO names a label file after the image's stem). */
  stemOnly: boolean;
  label: string | null;
  box: AnnotationBox | null;
  caption: string | null;
  /** In [0, 1], when the file gives one (model predictions). */
  confidence: number | null;
  /** A per-row source (a CSV `source` column); null = the import's source. */
  source: LabelSource | null;
}

/** A row that could not be used, and why; reported to the user, never silently dropped. */
export interface AnnotationProblem {
  location: string;
  /** The media the row names, when it could be read. */
  fileName: string | null;
  reason: string;
}

export interface ParsedAnnotations {
  format: AnnotationFormat;
  records: AnnotationRecord[];
  problems: AnnotationProblem[];
  /** Rows read, usable or not. */
  rowCount: number;
}

/** The file as a whole cannot be read as the format (not JSON, no header, missing required keys…). */
export class AnnotationFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AnnotationFileError';
  }
}
