import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANNOTATION_CSV,
  ANNOTATION_PARQUET_SELECT,
  cocoInstances,
  json,
  writeParquet,
  yoloFolder,
  type FixtureFile,
} from '../../test/fixtures/annotations.js';
import { makeTar, makeTarGz, makeZip } from '../../test/fixtures/archives.js';
import { AnnotationFileError, type ParsedAnnotations } from './annotation-record.js';
import { annotationFormatOf, MAX_ANNOTATION_FILE_BYTES, MAX_ANNOTATION_ROWS, parseAnnotationFile } from './detect-format.js';

let dir: string;
let fileCount = 0;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vizdex-annotation-file-'));
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** Stored as the upload path stores it: under a generated name, without the user's extension. */
async function stored(content: Buffer | string): Promise<string> {
  fileCount += 1;
  const file = path.join(dir, `blob-${fileCount}`);
  await fs.writeFile(file, content);
  return file;
}

function entries(files: FixtureFile[], prefix = ''): { name: string; data: Buffer }[] {
  return files.map((file) => ({ name: `${prefix}${file.path}`, data: file.bytes }));
}

function summary(parsed: ParsedAnnotations): unknown {
  return {
    format: parsed.format,
    rows: parsed.rowCount,
    records: parsed.records.map((record) => `${record.location} ${record.fileName} ${record.label}`),
    problems: parsed.problems.length,
  };
}

const YOLO_SUMMARY = {
  format: 'yolo',
  rows: 4,
  records: [
    'labels/cat1.txt line 1 cat1 cat',
    'labels/cat1.txt line 2 cat1 traffic light',
    'labels/train/dog2.txt line 1 train/dog2 dog',
    'labels/train/dog2.txt line 2 train/dog2 dog',
  ],
  problems: 0,
};

describe('annotationFormatOf', () => {
  it('tells the format by extension and content', () => {
    const none = Buffer.alloc(0);
    expect(annotationFormatOf('instances_val2017.JSON', Buffer.from('{'))).toBe('coco');
    expect(annotationFormatOf('labels.csv', Buffer.from('file_name,label'))).toBe('csv');
    expect(annotationFormatOf('labels.parquet', none)).toBe('parquet');
    expect(annotationFormatOf('upload.bin', Buffer.from('PAR1\x15\x04'))).toBe('parquet');
    expect(annotationFormatOf('yolo.zip', makeZip(entries(yoloFolder())))).toBe('yolo');
    expect(annotationFormatOf('yolo.tar', makeTar(entries(yoloFolder())))).toBe('yolo');
    expect(annotationFormatOf('yolo.tar.gz', makeTarGz(entries(yoloFolder())))).toBe('yolo');
    expect(annotationFormatOf('cat1.txt', Buffer.from('0 0.5 0.5 0.2 0.2\n1\n'))).toBe('yolo');
    expect(annotationFormatOf('empty.txt', none)).toBe('yolo');
  });

  it('says null for other files and for names their content contradicts', () => {
    expect(annotationFormatOf('notes.txt', Buffer.from('remember the milk\n'))).toBeNull();
    expect(annotationFormatOf('fake.zip', Buffer.from('not a zip'))).toBeNull();
    expect(annotationFormatOf('cat.jpg', Buffer.from([0xff, 0xd8, 0xff]))).toBeNull();
    expect(annotationFormatOf('labels.xml', Buffer.from('<annotation>'))).toBeNull();
  });
});

describe('parseAnnotationFile', () => {
  it('exports its limits', () => {
    expect(MAX_ANNOTATION_FILE_BYTES).toBe(200 * 1024 * 1024);
    expect(MAX_ANNOTATION_ROWS).toBe(2_000_000);
  });

  it('reads COCO, CSV and parquet files by the name the user gave them', async () => {
    const coco = await parseAnnotationFile({ fileName: 'instances.json', filePath: await stored(json(cocoInstances())) });
    expect(summary(coco)).toEqual({
      format: 'coco',
      rows: 3,
      records: ['annotations[0] cat1.jpg cat', 'annotations[1] train/dog2.png dog', 'annotations[2] cat1.jpg dog'],
      problems: 0,
    });
    const csv = await parseAnnotationFile({ fileName: 'labels.csv', filePath: await stored(ANNOTATION_CSV) });
    expect(summary(csv)).toMatchObject({ format: 'csv', rows: 4, problems: 0 });
    const parquetFile = path.join(dir, 'labels.parquet');
    await writeParquet(parquetFile, ANNOTATION_PARQUET_SELECT);
    const parquet = await parseAnnotationFile({ fileName: 'export', filePath: parquetFile });
    expect(summary(parquet)).toMatchObject({ format: 'parquet', rows: 3, problems: 0 });
  });

  it('uses a given format over the name', async () => {
    const parsed = await parseAnnotationFile({ fileName: 'labels.txt', filePath: await stored(ANNOTATION_CSV), format: 'csv' });
    expect(parsed.records).toHaveLength(4);
  });

  it.each([
    ['yolo.zip', makeZip],
    ['yolo.tar', makeTar],
    ['yolo.tar.gz', makeTarGz],
  ] as const)('reads a YOLO folder from %s, images included and passed over', async (fileName, make) => {
    const parsed = await parseAnnotationFile({ fileName, filePath: await stored(make(entries(yoloFolder('yaml-map'), 'pets/'))) });
    expect(summary(parsed)).toEqual({
      ...YOLO_SUMMARY,
      records: YOLO_SUMMARY.records.map((record) => `pets/${record}`),
    });
  });

  it('reads a YOLO folder on disk', async () => {
    const folder = path.join(dir, 'yolo-folder');
    for (const file of yoloFolder('classes.txt')) {
      await fs.mkdir(path.dirname(path.join(folder, file.path)), { recursive: true });
      await fs.writeFile(path.join(folder, file.path), file.bytes);
    }
    expect(summary(await parseAnnotationFile({ fileName: 'yolo', filePath: folder }))).toEqual(YOLO_SUMMARY);
  });

  it('refuses a lone YOLO .txt (it has no class names)', async () => {
    await expect(parseAnnotationFile({ fileName: 'cat1.txt', filePath: await stored('0 0.5 0.5 0.2 0.2\n') })).rejects.toThrow(
      /^YOLO labels need their class names: add classes.txt/,
    );
  });

  it('refuses unsafe, corrupt and label-less archives as annotation file errors', async () => {
    const unsafe = makeZip([...entries(yoloFolder()), { name: '../escape.txt', data: Buffer.from('0\n') }]);
    await expect(parseAnnotationFile({ fileName: 'a.zip', filePath: await stored(unsafe) })).rejects.toThrow(
      `The YOLO archive cannot be read: Unsafe archive: "../escape.txt": '..' in path`,
    );
    const truncated = makeTarGz(entries(yoloFolder())).subarray(0, 60);
    const corrupt = await parseAnnotationFile({ fileName: 'a.tar.gz', filePath: await stored(truncated) }).catch((error: unknown) => error);
    expect(corrupt).toBeInstanceOf(AnnotationFileError);
    expect((corrupt as Error).message).toMatch(/^The YOLO archive cannot be read: /);
    const imagesOnly = makeZip([{ name: 'images/a.jpg', data: Buffer.from([0xff, 0xd8]) }]);
    await expect(parseAnnotationFile({ fileName: 'a.zip', filePath: await stored(imagesOnly) })).rejects.toThrow(
      'The archive holds no YOLO label .txt files or class names',
    );
  });

  it('refuses files of no known format, and files over the byte limit', async () => {
    await expect(parseAnnotationFile({ fileName: 'labels.xml', filePath: await stored('<annotation/>') })).rejects.toThrow(
      '"labels.xml" is not an annotation file this server reads: send COCO .json, a .csv or .parquet table, or YOLO labels (.txt, or a .zip/.tar/.tar.gz folder)',
    );
    const file = await stored(json(cocoInstances()));
    await expect(parseAnnotationFile({ fileName: 'big.json', filePath: file, limits: { maxBytes: 100 } })).rejects.toThrow(
      'The annotation file "big.json" is larger than the limit of 100 bytes; split it into smaller files',
    );
    const zip = makeZip(entries(yoloFolder()));
    await expect(
      parseAnnotationFile({ fileName: 'a.zip', filePath: await stored(zip), limits: { maxBytes: zip.length - 1 } }),
    ).rejects.toThrow(`The annotation file "a.zip" is larger than the limit of ${zip.length - 1} bytes`);
    // A small archive whose label files expand beyond the limit.
    const big = makeTarGz([...entries(yoloFolder()), { name: 'labels/big.txt', data: Buffer.from('0 0.5 0.5 0.1 0.1\n'.repeat(10_000)) }]);
    expect(big.length).toBeLessThan(50_000);
    await expect(parseAnnotationFile({ fileName: 'a.tgz', filePath: await stored(big), limits: { maxBytes: 50_000 } })).rejects.toThrow(
      'The YOLO label files add up to more than the limit of 50000 bytes; split them into smaller folders',
    );
    expect((await parseAnnotationFile({ fileName: 'a.tgz', filePath: await stored(big) })).rowCount).toBe(10_004);
  });

  it('passes the row limit on to the parser', async () => {
    await expect(
      parseAnnotationFile({ fileName: 'a.csv', filePath: await stored(ANNOTATION_CSV), limits: { maxRows: 3 } }),
    ).rejects.toThrow('The CSV file has more than 3 rows');
  });
});
