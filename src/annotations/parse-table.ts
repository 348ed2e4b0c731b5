/**
 * Annotation tables, CSV or parquet: one row per image label, object box or caption, with the
 * columns `file_name,label[,x,y,w,h]` and optional `caption`, `confidence`, `source`. Header names
 * are matched case-insensitively, with the aliases below; boxes are in pixels, top-left corner.
 */
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { CsvRecordBuilder, duckDbReason, quoteIdentifier } from '../sources/manifest.js';
import {
  AnnotationFileError,
  LABEL_SOURCES,
  type AnnotationFormat,
  type AnnotationProblem,
  type AnnotationRecord,
  type LabelSource,
  type ParsedAnnotations,
} from './annotation-record.js';
import {
  annotationLimits,
  confidenceProblem,
  fitBox,
  numberOf,
  shown,
  tooManyRows,
  type AnnotationFileLimits,
} from './parse-common.js';

export type TableColumn = 'file_name' | 'label' | 'x' | 'y' | 'w' | 'h' | 'caption' | 'confidence' | 'source';

/** Accepted header names per column, most preferred first (a header matches case-insensitively, trimmed). */
export const TABLE_COLUMN_NAMES: Readonly<Record<TableColumn, readonly string[]>> = {
  file_name: ['file_name', 'filename', 'file', 'file_path', 'filepath', 'image', 'image_name', 'image_path', 'path', 'media', 'media_path'],
  label: ['label', 'category', 'class', 'category_name', 'label_name', 'class_name'],
  x: ['x', 'col_x', 'bbox_x'],
  y: ['y', 'row_y', 'bbox_y'],
  w: ['w', 'width', 'bbox_w', 'bbox_width'],
  h: ['h', 'height', 'bbox_h', 'bbox_height'],
  caption: ['caption'],
  confidence: ['confidence', 'score', 'conf'],
  source: ['source', 'label_source'],
};

const BOX_COLUMNS = ['x', 'y', 'w', 'h'] as const;

type ColumnIndex = Partial<Record<TableColumn, number>>;

/** Which cell holds which column; throws when the header cannot describe annotations. */
function columnsOf(header: readonly string[], what: string): ColumnIndex {
  const normalised = header.map((name) => name.trim().toLowerCase());
  const columns: ColumnIndex = {};
  for (const [column, names] of Object.entries(TABLE_COLUMN_NAMES) as [TableColumn, readonly string[]][]) {
    for (const name of names) {
      const index = normalised.indexOf(name);
      if (index !== -1) {
        columns[column] = index;
        break;
      }
    }
  }
  const found = `found ${header.map((name) => shown(name.trim())).join(', ')}`;
  if (columns.file_name === undefined) {
    throw new AnnotationFileError(`${what} has no file_name column (or ${TABLE_COLUMN_NAMES.file_name.slice(1).join(', ')}) in its header; ${found}`);
  }
  const boxColumns = BOX_COLUMNS.filter((column) => columns[column] !== undefined);
  if (boxColumns.length > 0 && boxColumns.length < 4) {
    const missing = BOX_COLUMNS.filter((column) => columns[column] === undefined);
    throw new AnnotationFileError(`${what} has box columns ${boxColumns.join(', ')} but not ${missing.join(', ')}; a box needs x, y, w, h`);
  }
  if (columns.label === undefined && boxColumns.length === 0 && columns.caption === undefined) {
    throw new AnnotationFileError(`${what} has no label, box (x, y, w, h) or caption column; ${found}`);
  }
  return columns;
}

type Cell = string | null;

/** One data row as a record, or the reasons it cannot be used. */
function readRow(cells: readonly Cell[], columns: ColumnIndex): Omit<AnnotationRecord, 'location'> | { fileName: string | null; reasons: string[] } {
  const text = (column: TableColumn): string => {
    const index = columns[column];
    return index === undefined ? '' : (cells[index] ?? '').trim();
  };
  const reasons: string[] = [];
  const fileName = text('file_name');
  if (fileName === '') reasons.push('no file_name');
  const label = text('label') || null;

  let box: AnnotationRecord['box'] = null;
  const boxText = BOX_COLUMNS.map((column) => text(column));
  const given = BOX_COLUMNS.filter((_, index) => boxText[index] !== '');
  if (given.length > 0 && given.length < 4) {
    reasons.push(`partial box: ${BOX_COLUMNS.filter((column) => !given.includes(column)).join(', ')} empty`);
  } else if (given.length === 4) {
    const values = boxText.map(numberOf);
    const bad = BOX_COLUMNS.flatMap((column, index) => (values[index] === null ? [`${column} ${shown(boxText[index])}`] : []));
    if (bad.length > 0) reasons.push(`box value ${bad.join(', ')} is not a number`);
    else {
      const [x, y, width, height] = values as [number, number, number, number];
      const fitted = fitBox({ x, y, width, height }, null, null, 0);
      if ('problem' in fitted) reasons.push(fitted.problem);
      else box = { ...fitted.box, units: 'px' };
    }
  }

  const caption = text('caption') || null;

  let confidence: number | null = null;
  const confidenceText = text('confidence');
  if (confidenceText !== '') {
    const value = numberOf(confidenceText);
    const problem = value === null ? `confidence ${shown(confidenceText)} is not a number` : confidenceProblem(value, 'confidence');
    if (problem) reasons.push(problem);
    else confidence = value;
  }

  let source: LabelSource | null = null;
  const sourceText = text('source');
  if (sourceText !== '') {
    source = sourceOf(sourceText);
    if (source === null) reasons.push(`source ${shown(sourceText)} is not one of ${LABEL_SOURCES.join(', ')}`);
  }

  if (label === null && given.length === 0 && caption === null) reasons.push('no label, box or caption');
  if (reasons.length > 0) return { fileName: fileName || null, reasons };
  return { fileName, stemOnly: false, label, box, caption, confidence, source };
}

/** `User`, `model`, `Visual Layer`, `visual_layer`, `VL`… */
function sourceOf(text: string): LabelSource | null {
  const key = text.toLowerCase().replace(/[\s_-]+/g, '');
  if (key === 'vl') return 'Visual Layer';
  return LABEL_SOURCES.find((source) => source.toLowerCase().replace(/\s+/g, '') === key) ?? null;
}

/** Collects rows into the parse result. */
class TableCollector {
  readonly records: AnnotationRecord[] = [];
  readonly problems: AnnotationProblem[] = [];
  rowCount = 0;

  constructor(
    private readonly columns: ColumnIndex,
    private readonly headerWidth: number,
    private readonly maxRows: number,
    private readonly what: string,
  ) {}

  add(cells: readonly Cell[], location: string): void {
    this.rowCount += 1;
    if (this.rowCount > this.maxRows) throw tooManyRows(this.what, this.maxRows);
    const row = readRow(cells, this.columns);
    // A short row is read as if its missing trailing cells were empty; a long one is misaligned.
    const width = cells.length > this.headerWidth ? [`${cells.length} fields; the header has ${this.headerWidth}`] : [];
    if ('reasons' in row || width.length > 0) {
      const reasons = [...width, ...('reasons' in row ? row.reasons : [])];
      this.problems.push({ location, fileName: row.fileName || null, reason: reasons.join('; ') });
    } else this.records.push({ location, ...row });
  }

  result(format: AnnotationFormat): ParsedAnnotations {
    return { format, records: this.records, problems: this.problems, rowCount: this.rowCount };
  }
}

/**
 * A CSV annotation table: RFC 4180 (quoted cells with commas, `""` and line breaks), UTF-8 with or
 * without a BOM, LF or CRLF. The first non-blank row is the header; blank rows are skipped.
 */
export function parseCsv(bytes: Buffer, limits: Partial<AnnotationFileLimits> = {}): ParsedAnnotations {
  const { maxRows } = annotationLimits(limits);
  let text = bytes.toString('utf8');
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const builder = new CsvRecordBuilder();
  let collector: TableCollector | undefined;
  let recordStart = 0;
  for (const [index, rawLine] of lines.entries()) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (!builder.pending) recordStart = index + 1;
    const cells = builder.addLine(line);
    if (cells === null) continue;
    if (cells.every((cell) => cell.trim() === '')) continue;
    if (!collector) {
      collector = new TableCollector(columnsOf(cells, 'The CSV file'), cells.length, maxRows, 'The CSV file');
      continue;
    }
    collector.add(cells, `line ${recordStart}`);
  }
  if (builder.pending) throw new AnnotationFileError(`The CSV file's record starting on line ${recordStart} has a quote that is never closed`);
  if (!collector) throw new AnnotationFileError('The CSV file is empty; it needs a header row (file_name,label[,x,y,w,h]) and rows');
  return collector.result('csv');
}

/**
 * A parquet annotation table, read with DuckDB confined to this one file. Any column type is read
 * as its text; `row N` counts data rows from 1.
 */
export async function parseParquet(filePath: string, limits: Partial<AnnotationFileLimits> = {}): Promise<ParsedAnnotations> {
  const { maxRows } = annotationLimits(limits);
  const absolute = path.resolve(filePath);
  let instance: DuckDBInstance | undefined;
  let connection: DuckDBConnection | undefined;
  try {
    instance = await DuckDBInstance.create(':memory:', { threads: '1', memory_limit: '256MB' });
    connection = await instance.connect();
    // SET takes no bound parameters, hence the escaped literal.
    await connection.run(`SET allowed_paths = ['${absolute.replace(/'/g, "''")}']`);
    await connection.run('SET enable_external_access = false');
    const schema = await connection.run('SELECT * FROM read_parquet(?) LIMIT 0', [absolute]);
    const names = schema.columnNames();
    const columns = columnsOf(names, 'The parquet file');
    const countResult = await connection.run('SELECT count(*) FROM read_parquet(?)', [absolute]);
    const total = Number((await countResult.getRows())[0]?.[0] ?? 0);
    if (total > maxRows) throw tooManyRows('The parquet file', maxRows);

    const chosen = Object.entries(columns) as [TableColumn, number][];
    const select = chosen.map(([, index]) => `CAST(${quoteIdentifier(names[index] as string)} AS VARCHAR)`).join(', ');
    const remapped: ColumnIndex = Object.fromEntries(chosen.map(([column], position) => [column, position]));
    const collector = new TableCollector(remapped, chosen.length, maxRows, 'The parquet file');
    const result = await connection.stream(`SELECT ${select} FROM read_parquet(?)`, [absolute]);
    for await (const chunk of result) {
      const rows = chunk.getRows();
      for (const row of rows) {
        const cells = row.map((value) => (value === null || value === undefined ? null : String(value)));
        collector.add(cells, `row ${collector.rowCount + 1}`);
      }
    }
    return collector.result('parquet');
  } catch (error) {
    if (error instanceof AnnotationFileError) throw error;
    throw new AnnotationFileError(`The parquet file could not be read: ${duckDbReason(error, absolute)}`);
  } finally {
    connection?.closeSync();
    instance?.closeSync();
  }
}
