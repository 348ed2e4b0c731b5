import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANNOTATION_CSV, ANNOTATION_PARQUET_SELECT, writeParquet } from '../../test/fixtures/annotations.js';
import { AnnotationFileError } from './annotation-record.js';
import { parseCsv, parseParquet } from './parse-table.js';

let dir: string;
let fileCount = 0;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vizdex-annotation-table-'));
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function parquetOf(select: string): Promise<string> {
  fileCount += 1;
  const file = path.join(dir, `annotations-${fileCount}.parquet`);
  await writeParquet(file, select);
  return file;
}

function csvError(text: string): string {
  try {
    parseCsv(Buffer.from(text));
  } catch (error) {
    expect(error).toBeInstanceOf(AnnotationFileError);
    return (error as Error).message;
  }
  throw new Error('expected an AnnotationFileError');
}

const base = { stemOnly: false, label: null, box: null, caption: null, confidence: null, source: null };

describe('parseCsv', () => {
  it('reads aliased headers, quotes, "" escapes, embedded commas and line breaks, BOM and CRLF', () => {
    const parsed = parseCsv(Buffer.from(ANNOTATION_CSV));
    expect(parsed.format).toBe('csv');
    expect(parsed.problems).toEqual([]);
    expect(parsed.rowCount).toBe(4);
    expect(parsed.records).toEqual([
      {
        ...base,
        location: 'line 2',
        fileName: 'cat1.jpg',
        label: 'cat',
        box: { x: 10, y: 20, width: 100, height: 50, units: 'px' },
        confidence: 0.9,
        source: 'Model',
      },
      { ...base, location: 'line 3', fileName: 'train/dog, 2.png', label: 'dog "rex"', caption: 'A dog,\non two lines', source: 'User' },
      { ...base, location: 'line 5', fileName: 'beach.jpg', caption: 'Waves on sand' },
      { ...base, location: 'line 7', fileName: 'cat1.jpg', label: 'cat', source: 'Visual Layer' },
    ]);
  });

  it('reads the plain file_name,label,x,y,w,h form, with label-only rows shorter than the header', () => {
    const parsed = parseCsv(Buffer.from('file_name,label,x,y,w,h\na.jpg,cat,1,2,3,4\nb.jpg,dog\n'));
    expect(parsed.problems).toEqual([]);
    expect(parsed.records.map((record) => [record.fileName, record.label, record.box])).toEqual([
      ['a.jpg', 'cat', { x: 1, y: 2, width: 3, height: 4, units: 'px' }],
      ['b.jpg', 'dog', null],
    ]);
  });

  it('reports every unusable row with its line and reasons', () => {
    const parsed = parseCsv(
      Buffer.from(
        [
          'image,class,bbox_x,bbox_y,bbox_w,bbox_h,confidence,source',
          'a.jpg,cat,1,2,,',
          'a.jpg,cat,1,two,3,4',
          'a.jpg,cat,1,2,0,4',
          'a.jpg,cat,-1,2,3,4',
          'a.jpg,cat,,,,,1.5,',
          'a.jpg,cat,,,,,high,',
          'a.jpg,cat,,,,,,robot',
          ',cat,,,,,,',
          'a.jpg,,,,,,0.5,User',
          'a.jpg,cat,,,,,,,extra',
          'b.jpg,,1,2,3,4,,',
        ].join('\n'),
      ),
    );
    expect(parsed.rowCount).toBe(11);
    expect(parsed.records.map((record) => [record.location, record.label, record.box])).toEqual([
      ['line 12', null, { x: 1, y: 2, width: 3, height: 4, units: 'px' }],
    ]);
    expect(parsed.problems).toEqual([
      { location: 'line 2', fileName: 'a.jpg', reason: 'partial box: w, h empty' },
      { location: 'line 3', fileName: 'a.jpg', reason: "box value y 'two' is not a number" },
      { location: 'line 4', fileName: 'a.jpg', reason: 'box size 0×4 is not positive' },
      { location: 'line 5', fileName: 'a.jpg', reason: 'box starts outside the image at (-1, 2)' },
      { location: 'line 6', fileName: 'a.jpg', reason: 'confidence 1.5 is not in [0, 1]' },
      { location: 'line 7', fileName: 'a.jpg', reason: "confidence 'high' is not a number" },
      { location: 'line 8', fileName: 'a.jpg', reason: "source 'robot' is not one of User, Model, Visual Layer" },
      { location: 'line 9', fileName: null, reason: 'no file_name' },
      { location: 'line 10', fileName: 'a.jpg', reason: 'no label, box or caption' },
      { location: 'line 11', fileName: 'a.jpg', reason: '9 fields; the header has 8' },
    ]);
  });

  it('refuses files whose header cannot describe annotations', () => {
    expect(csvError('')).toBe('The CSV file is empty; it needs a header row (file_name,label[,x,y,w,h]) and rows');
    expect(csvError('\uFEFF\r\n\r\n')).toBe('The CSV file is empty; it needs a header row (file_name,label[,x,y,w,h]) and rows');
    expect(csvError('name;label\na.jpg;cat\n')).toBe(
      "The CSV file has no file_name column (or filename, file, file_path, filepath, image, image_name, image_path, path, media, media_path) in its header; found 'name;label'",
    );
    expect(csvError('a.jpg,cat\nb.jpg,dog\n')).toMatch(/^The CSV file has no file_name column .*; found 'a.jpg', 'cat'$/);
    expect(csvError('file_name,notes\na.jpg,x\n')).toBe("The CSV file has no label, box (x, y, w, h) or caption column; found 'file_name', 'notes'");
    expect(csvError('file_name,label,x,y\na.jpg,cat,1,2\n')).toBe('The CSV file has box columns x, y but not w, h; a box needs x, y, w, h');
    expect(csvError('file_name,label\na.jpg,cat\n"b.jpg,dog\nc.jpg,cat\n')).toBe(
      "The CSV file's record starting on line 3 has a quote that is never closed",
    );
  });

  it('refuses more rows than the limit', () => {
    const text = `file_name,label\n${'a.jpg,cat\n'.repeat(3)}`;
    expect(() => parseCsv(Buffer.from(text), { maxRows: 2 })).toThrow('The CSV file has more than 2 rows; split it into smaller files');
    expect(parseCsv(Buffer.from(text), { maxRows: 3 }).records).toHaveLength(3);
  });
});

describe('parseParquet', () => {
  it('reads typed columns (numbers, NULLs) into the same records as a CSV', async () => {
    const parsed = await parseParquet(await parquetOf(ANNOTATION_PARQUET_SELECT));
    expect(parsed.format).toBe('parquet');
    expect(parsed.problems).toEqual([]);
    expect(parsed.rowCount).toBe(3);
    expect(parsed.records).toEqual([
      {
        ...base,
        location: 'row 1',
        fileName: 'cat1.jpg',
        label: 'cat',
        box: { x: 10, y: 20, width: 100, height: 50, units: 'px' },
        confidence: 0.9,
        source: 'Model',
      },
      { ...base, location: 'row 2', fileName: 'train/dog2.png', label: 'dog', caption: 'A dog' },
      { ...base, location: 'row 3', fileName: 'beach.jpg', caption: 'Waves on sand', source: 'User' },
    ]);
  });

  it('matches aliased, differently-cased column names and integer boxes', async () => {
    const file = await parquetOf(
      "SELECT 'x.jpg' AS \"Image_Path\", 'cat' AS \"Category_Name\", 1 AS col_x, 2 AS row_y, 30 AS \"Width\", 40 AS \"Height\"",
    );
    const parsed = await parseParquet(file);
    expect(parsed.records.map((record) => [record.fileName, record.label, record.box])).toEqual([
      ['x.jpg', 'cat', { x: 1, y: 2, width: 30, height: 40, units: 'px' }],
    ]);
  });

  it('reports bad rows by row number', async () => {
    const file = await parquetOf(`
      SELECT * FROM (VALUES ('a.jpg', 'cat', 1.0, NULL), (NULL, 'cat', NULL, NULL), ('b.jpg', NULL, NULL, 2.0))
      AS t(file_name, label, confidence, score_unused)`);
    const parsed = await parseParquet(file);
    expect(parsed.rowCount).toBe(3);
    expect(parsed.records.map((record) => [record.location, record.confidence])).toEqual([['row 1', 1]]);
    expect(parsed.problems).toEqual([
      { location: 'row 2', fileName: null, reason: 'no file_name' },
      { location: 'row 3', fileName: 'b.jpg', reason: 'no label, box or caption' },
    ]);
  });

  it('refuses a file that is not parquet, one without the columns, and one over the row limit', async () => {
    const notParquet = path.join(dir, 'not.parquet');
    await fs.writeFile(notParquet, 'file_name,label\na.jpg,cat\n');
    await expect(parseParquet(notParquet)).rejects.toThrow(/^The parquet file could not be read: /);
    await expect(parseParquet(await parquetOf("SELECT 'a.jpg' AS file_name, 1 AS n"))).rejects.toThrow(
      "The parquet file has no label, box (x, y, w, h) or caption column; found 'file_name', 'n'",
    );
    const many = await parquetOf("SELECT 'a.jpg' AS file_name, 'cat' AS label FROM range(5)");
    await expect(parseParquet(many, { maxRows: 4 })).rejects.toThrow(AnnotationFileError);
    expect((await parseParquet(many, { maxRows: 5 })).records).toHaveLength(5);
  });
});
