/**
 * Tells an annotation file's format from its name and first bytes, and reads a stored file with
 * the right parser: COCO .json, CSV, parquet, or YOLO (a .txt, a folder, or a .zip/.tar/.tar.gz of one).
 */
import { open, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import {
  archiveFormatOf,
  CorruptArchiveError,
  DEFAULT_ARCHIVE_LIMITS,
  extractArchive,
  scanArchive,
  UnsafeArchiveError,
  type ArchiveFormat,
} from '../sources/archive-reader.js';
import { AnnotationFileError, type AnnotationFormat, type ParsedAnnotations } from './annotation-record.js';
import { parseCoco } from './parse-coco.js';
import { annotationLimits, tooManyBytes, type AnnotationFileLimits } from './parse-common.js';
import { parseCsv, parseParquet } from './parse-table.js';
import { isYoloFile, parseYolo, type YoloFile } from './parse-yolo.js';

export {
  DEFAULT_ANNOTATION_FILE_LIMITS,
  MAX_ANNOTATION_FILE_BYTES,
  MAX_ANNOTATION_ROWS,
  type AnnotationFileLimits,
} from './parse-common.js';

/** Bytes `annotationFormatOf` wants to see (a tar is recognised at byte 257). */
export const FORMAT_HEAD_BYTES = 512;

const PARQUET_MAGIC = Buffer.from('PAR1', 'latin1');

/** A YOLO label line: a class id, then nothing, a box, or a box and a confidence. */
const YOLO_LINE = /^\d+(\s+[-+.\deE]+){0,5}\s*$/;

/**
 * The format of an annotation file, by its name and first bytes (`FORMAT_HEAD_BYTES` of them); null
 * when it is none. An archive counts as YOLO, the one format that comes as a folder.
 */
export function annotationFormatOf(fileName: string, head: Buffer): AnnotationFormat | null {
  const name = fileName.toLowerCase();
  if (head.subarray(0, 4).equals(PARQUET_MAGIC) || name.endsWith('.parquet')) return 'parquet';
  if (name.endsWith('.json')) return 'coco';
  if (name.endsWith('.csv')) return 'csv';
  if (archiveFormatOf(fileName, head) !== null) return 'yolo';
  if (name.endsWith('.txt')) {
    const text = head.toString('utf8').replace(/^\uFEFF/, '');
    const firstLine = text.split('\n').find((line) => line.trim() !== '');
    // A whole file shorter than the head, or a first line that ended within it.
    return firstLine === undefined || YOLO_LINE.test(firstLine.replace(/\r$/, '').trim()) ? 'yolo' : null;
  }
  return null;
}

export interface AnnotationFileInput {
  /** The name the user gave the file (its extension tells the format). */
  fileName: string;
  /** Where it is stored on local disk: a file, or a folder of YOLO labels. */
  filePath: string;
  /** Skips detection. */
  format?: AnnotationFormat;
  limits?: Partial<AnnotationFileLimits>;
}

/**
 * Reads a stored annotation file with its format's parser. Throws AnnotationFileError when the
 * file is not of a known format, breaks a limit, or cannot be read as its format at all.
 */
export async function parseAnnotationFile(input: AnnotationFileInput): Promise<ParsedAnnotations> {
  const limits = annotationLimits(input.limits);
  const info = await stat(input.filePath);
  if (info.isDirectory()) return parseYolo(await readYoloFolder(input.filePath, limits), limits);
  if (info.size > limits.maxBytes) throw tooManyBytes(`The annotation file ${JSON.stringify(input.fileName)}`, limits.maxBytes);

  const head = await readHead(input.filePath);
  const format = input.format ?? annotationFormatOf(input.fileName, head);
  if (format === null) {
    throw new AnnotationFileError(
      `${JSON.stringify(input.fileName)} is not an annotation file this server reads: send COCO .json, a .csv or .parquet table, or YOLO labels (.txt, or a .zip/.tar/.tar.gz folder)`,
    );
  }
  switch (format) {
    case 'coco':
      return parseCoco(await readFile(input.filePath), limits);
    case 'csv':
      return parseCsv(await readFile(input.filePath), limits);
    case 'parquet':
      return parseParquet(input.filePath, limits);
    case 'yolo': {
      const archive = archiveFormatOf(input.fileName, head);
      if (archive !== null) return parseYolo(await readYoloArchive(input.filePath, archive, limits), limits);
      return parseYolo([{ path: path.posix.basename(input.fileName.replaceAll('\\', '/')), bytes: await readFile(input.filePath) }], limits);
    }
  }
}

async function readHead(filePath: string): Promise<Buffer> {
  const handle = await open(filePath, 'r');
  try {
    const buffer = Buffer.alloc(FORMAT_HEAD_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, FORMAT_HEAD_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Keeps the byte count of the YOLO files read so far under the limit. */
class ByteBudget {
  private used = 0;

  constructor(private readonly maxBytes: number) {}

  take(bytes: number): void {
    this.used += bytes;
    if (this.used > this.maxBytes) {
      throw new AnnotationFileError(`The YOLO label files add up to more than the limit of ${this.maxBytes} bytes; split them into smaller folders`);
    }
  }
}

/**
 * The label and class-name files of a YOLO archive, read into memory (images and anything else are
 * passed over unread). The archive is checked first (paths, links, entry count, expansion) by the
 * archive reader, which checks the bytes again as they come out.
 */
async function readYoloArchive(filePath: string, format: ArchiveFormat, limits: AnnotationFileLimits): Promise<YoloFile[]> {
  const files: YoloFile[] = [];
  const budget = new ByteBudget(limits.maxBytes);
  try {
    const scan = await scanArchive(filePath, format, DEFAULT_ARCHIVE_LIMITS);
    if (!scan.files.some((entry) => isYoloFile(entry.path))) {
      throw new AnnotationFileError('The archive holds no YOLO label .txt files or class names');
    }
    await extractArchive(
      filePath,
      format,
      async (entry, stream) => {
        if (!isYoloFile(entry.path)) {
          stream.destroy();
          return;
        }
        budget.take(entry.size);
        files.push({ path: entry.path, bytes: await bytesOf(stream) });
      },
      DEFAULT_ARCHIVE_LIMITS,
    );
  } catch (error) {
    if (error instanceof UnsafeArchiveError || error instanceof CorruptArchiveError) {
      throw new AnnotationFileError(`The YOLO archive cannot be read: ${error.message}`);
    }
    throw error;
  }
  return files;
}

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** The label and class-name files of a YOLO folder, by their '/'-separated paths; links are not followed. */
async function readYoloFolder(root: string, limits: AnnotationFileLimits): Promise<YoloFile[]> {
  const files: YoloFile[] = [];
  const budget = new ByteBudget(limits.maxBytes);
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const absolute = path.join(entry.parentPath, entry.name);
    const relative = path.relative(root, absolute).split(path.sep).join('/');
    if (!isYoloFile(relative)) continue;
    budget.take((await stat(absolute)).size);
    files.push({ path: relative, bytes: await readFile(absolute) });
  }
  return files;
}
