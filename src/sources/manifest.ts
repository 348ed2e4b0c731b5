import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance, DuckDBTypeId, type DuckDBConnection } from '@duckdb/node-api';
import { classifyFileName } from '../pipeline/media-types.js';

/**
 * Reads a manifest (a .txt, .csv or .parquet file listing media by URI, path or key) that has
 * already been copied to a local file. References stream out in file order; the file is never held
 * whole in memory.
 */

export type ManifestFormat = 'txt' | 'csv' | 'parquet';

/** What is wrong with a manifest, in words for the user (it becomes a 400's detail). */
export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

export interface ManifestLimits {
  /** Longest line (txt) or record (csv) accepted, in bytes. */
  maxLineBytes: number;
  /** Most references one manifest may list. */
  maxEntries: number;
}

export const DEFAULT_MANIFEST_LIMITS: Readonly<ManifestLimits> = Object.freeze({
  maxLineBytes: 64 * 1024,
  maxEntries: 10_000_000,
});

/** Header names of the column that holds media references, most preferred first (matched case-insensitively). */
export const MEDIA_COLUMN_NAMES: readonly string[] = [
  'uri', 'url', 's3_uri', 's3_url', 'path', 'file_path', 'filepath', 'media_path', 'media_uri',
  'image_path', 'image_uri', 'image', 'file', 'file_name', 'filename', 'key', 's3_key',
];

const FORMAT_BY_EXTENSION: Readonly<Record<string, ManifestFormat>> = { '.txt': 'txt', '.csv': 'csv', '.parquet': 'parquet' };

/** The manifest format a location names by its extension, or null when it is not a manifest. */
export function manifestFormatOf(uriOrPath: string): ManifestFormat | null {
  const withoutQuery = /^[a-z][a-z0-9+.-]*:\/\//i.test(uriOrPath) ? uriOrPath.replace(/[?#].*$/s, '') : uriOrPath;
  const extension = path.posix.extname(withoutQuery).toLowerCase();
  return FORMAT_BY_EXTENSION[extension] ?? null;
}

/**
 * Streams the media references of a manifest, in file order, trimmed, without blank entries (and,
 * in txt manifests, without '#' comment lines). Throws ManifestError when the file cannot be read
 * as `format` or breaks a limit.
 */
export async function* readManifest(
  file: string,
  format: ManifestFormat,
  limits: Partial<ManifestLimits> = {},
): AsyncIterable<string> {
  const maxLineBytes = limits.maxLineBytes ?? DEFAULT_MANIFEST_LIMITS.maxLineBytes;
  const maxEntries = limits.maxEntries ?? DEFAULT_MANIFEST_LIMITS.maxEntries;
  let count = 0;
  for await (const reference of referencesOf(file, format, maxLineBytes)) {
    count += 1;
    if (count > maxEntries) throw new ManifestError(`The manifest lists more than ${maxEntries} media; split it into smaller manifests`);
    yield reference;
  }
}

function referencesOf(file: string, format: ManifestFormat, maxLineBytes: number): AsyncIterable<string> {
  switch (format) {
    case 'txt':
      return readTxtReferences(file, maxLineBytes);
    case 'csv':
      return readCsvReferences(file, maxLineBytes);
    case 'parquet':
      return readParquetReferences(file);
  }
}

async function* readTxtReferences(file: string, maxLineBytes: number): AsyncIterable<string> {
  for await (const line of readLines(file, maxLineBytes)) {
    const reference = line.text.trim();
    if (reference !== '' && !reference.startsWith('#')) yield reference;
  }
}

async function* readCsvReferences(file: string, maxLineBytes: number): AsyncIterable<string> {
  let column: number | undefined;
  for await (const record of readCsvRecords(file, maxLineBytes)) {
    if (record.cells.every((cell) => cell.trim() === '')) continue;
    if (column === undefined) {
      column = mediaColumnIndex(record.cells);
      if (column !== undefined) continue; // the header row
      if (!looksLikeMediaReference(record.cells[0] ?? '')) {
        throw new ManifestError(
          `CSV manifest has no column of media paths; name one of ${MEDIA_COLUMN_NAMES.join(', ')} in the header (line ${record.lineNumber})`,
        );
      }
      column = 0;
    }
    const reference = record.cells[column]?.trim();
    if (reference) yield reference;
  }
}

function mediaColumnIndex(names: readonly string[]): number | undefined {
  const normalised = names.map((name) => name.trim().toLowerCase());
  for (const wanted of MEDIA_COLUMN_NAMES) {
    const index = normalised.indexOf(wanted);
    if (index !== -1) return index;
  }
  return undefined;
}

/** Whether a header-less first cell is already data: a URI, an absolute path, or a media file name. */
function looksLikeMediaReference(cell: string): boolean {
  const value = cell.trim();
  if (/^(s3|https?):\/\//i.test(value) || value.startsWith('/')) return true;
  const kind = classifyFileName(value.replace(/[?#].*$/s, '')).kind;
  return kind === 'image' || kind === 'video';
}

interface ManifestLine {
  text: string;
  /** 1-based. */
  lineNumber: number;
  /** Length in bytes without the line break. */
  bytes: number;
}

/** Splits a file into lines (LF or CRLF) without holding more than one line; drops a leading UTF-8 BOM. */
async function* readLines(file: string, maxLineBytes: number): AsyncIterable<ManifestLine> {
  const stream = fs.createReadStream(file, { highWaterMark: 64 * 1024 });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let lineNumber = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let start = 0;
    for (let newline = chunk.indexOf(0x0a, start); newline !== -1; newline = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, newline);
      const bytes = pendingBytes > 0 ? Buffer.concat([...pending, piece]) : piece;
      pending = [];
      pendingBytes = 0;
      lineNumber += 1;
      yield decodeLine(bytes, lineNumber, maxLineBytes);
      start = newline + 1;
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
      // +1 leaves room for the CR of a CRLF that has not arrived yet.
      if (pendingBytes > maxLineBytes + 1) throw lineTooLong(lineNumber + 1, maxLineBytes);
    }
  }
  if (pendingBytes > 0) yield decodeLine(Buffer.concat(pending), lineNumber + 1, maxLineBytes);
}

function decodeLine(raw: Buffer, lineNumber: number, maxLineBytes: number): ManifestLine {
  const content = raw.at(-1) === 0x0d ? raw.subarray(0, -1) : raw;
  if (content.length > maxLineBytes) throw lineTooLong(lineNumber, maxLineBytes);
  let text = content.toString('utf8');
  if (lineNumber === 1 && text.startsWith('\uFEFF')) text = text.slice(1);
  return { text, lineNumber, bytes: content.length };
}

function lineTooLong(lineNumber: number, maxLineBytes: number): ManifestError {
  return new ManifestError(`Manifest line ${lineNumber} is longer than ${maxLineBytes} bytes`);
}

interface CsvRecord {
  cells: string[];
  /** Line the record starts on. */
  lineNumber: number;
}

/** RFC 4180 records from physical lines; a quoted cell may span lines, so a record is bounded as a whole. */
async function* readCsvRecords(file: string, maxLineBytes: number): AsyncIterable<CsvRecord> {
  const builder = new CsvRecordBuilder();
  let firstLine = 0;
  let recordBytes = 0;
  for await (const line of readLines(file, maxLineBytes)) {
    if (firstLine === 0) firstLine = line.lineNumber;
    recordBytes += line.bytes + (line.lineNumber > firstLine ? 1 : 0);
    if (recordBytes > maxLineBytes) {
      throw new ManifestError(
        `CSV manifest record starting on line ${firstLine} is longer than ${maxLineBytes} bytes (is a quote left open?)`,
      );
    }
    const cells = builder.addLine(line.text);
    if (cells === null) continue;
    yield { cells, lineNumber: firstLine };
    firstLine = 0;
    recordBytes = 0;
  }
  if (firstLine !== 0) throw new ManifestError(`CSV manifest record starting on line ${firstLine} has a quote that is never closed`);
}

/**
 * Assembles one CSV record from one or more lines. Lenient where writers commonly stray from
 * RFC 4180: a quote inside an unquoted cell, or text after a closing quote, is kept as is.
 * Also reads CSV annotation files (src/annotations/parse-table.ts).
 */
export class CsvRecordBuilder {
  private cells: string[] = [];
  private cell = '';
  private inQuotes = false;

  /** Whether a quoted cell is open, waiting for its next line. */
  get pending(): boolean {
    return this.inQuotes;
  }

  /** The completed record's cells, or null when a quoted cell goes on to the next line. */
  addLine(line: string): string[] | null {
    let position = 0;
    for (;;) {
      if (this.inQuotes) {
        const quote = line.indexOf('"', position);
        if (quote === -1) {
          this.cell += `${line.slice(position)}\n`;
          return null;
        }
        this.cell += line.slice(position, quote);
        if (line[quote + 1] === '"') {
          this.cell += '"';
          position = quote + 2;
        } else {
          this.inQuotes = false;
          position = quote + 1;
        }
        continue;
      }
      if (line[position] === '"' && this.cell === '') {
        this.inQuotes = true;
        position += 1;
        continue;
      }
      const comma = line.indexOf(',', position);
      this.cell += line.slice(position, comma === -1 ? line.length : comma);
      this.cells.push(this.cell);
      this.cell = '';
      if (comma === -1) {
        const cells = this.cells;
        this.cells = [];
        return cells;
      }
      position = comma + 1;
    }
  }
}

/** DuckDB reads the file in chunks of a few thousand rows; only the chosen column is decoded. */
async function* readParquetReferences(file: string): AsyncIterable<string> {
  const absolute = path.resolve(file);
  let instance: DuckDBInstance | undefined;
  let connection: DuckDBConnection | undefined;
  try {
    // One thread: the rows come out in file order.
    instance = await DuckDBInstance.create(':memory:', { threads: '1', memory_limit: '256MB' });
    connection = await instance.connect();
    await confineToFile(connection, absolute);
    const column = await chooseParquetColumn(connection, absolute);
    const result = await connection.stream(`SELECT ${quoteIdentifier(column)} FROM read_parquet(?)`, [absolute]);
    for await (const chunk of result) {
      for (const value of chunk.getColumnValues(0)) {
        const reference = typeof value === 'string' ? value.trim() : '';
        if (reference !== '') yield reference;
      }
    }
  } catch (error) {
    if (error instanceof ManifestError) throw error;
    throw new ManifestError(`Parquet manifest could not be read: ${duckDbReason(error, absolute)}`);
  } finally {
    connection?.closeSync();
    instance?.closeSync();
  }
}

/** DuckDB may then touch this one file and nothing else (no globbing into neighbours, no other reads). */
async function confineToFile(connection: DuckDBConnection, file: string): Promise<void> {
  // SET takes no bound parameters, hence the escaped literal.
  await connection.run(`SET allowed_paths = ['${file.replace(/'/g, "''")}']`);
  await connection.run('SET enable_external_access = false');
}

async function chooseParquetColumn(connection: DuckDBConnection, file: string): Promise<string> {
  const schema = await connection.run('SELECT * FROM read_parquet(?) LIMIT 0', [file]);
  const names = schema.columnNames();
  const types = schema.columnTypes();
  const named = mediaColumnIndex(names);
  if (named !== undefined) {
    const type = types[named];
    if (type?.typeId !== DuckDBTypeId.VARCHAR) {
      throw new ManifestError(`Parquet manifest column '${names[named]}' has type ${String(type)}; expected strings`);
    }
    return names[named] as string;
  }
  const firstString = types.findIndex((type) => type.typeId === DuckDBTypeId.VARCHAR);
  if (firstString === -1) {
    throw new ManifestError(`Parquet manifest has no string column of media paths; name one of ${MEDIA_COLUMN_NAMES.join(', ')}`);
  }
  return names[firstString] as string;
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** DuckDB's first message line, without the server's temp path. */
export function duckDbReason(error: unknown, file: string): string {
  const message = error instanceof Error ? error.message : String(error);
  const firstLine = message.split('\n')[0] ?? message;
  return firstLine.split(file).join('the file').trim();
}
