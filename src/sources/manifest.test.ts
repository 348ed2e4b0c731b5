import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ManifestError, manifestFormatOf, readManifest, type ManifestFormat, type ManifestLimits } from './manifest.js';

let dir: string;
let fileCount = 0;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vizdex-manifest-'));
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function writeFixture(content: string | Buffer, extension: string): Promise<string> {
  fileCount += 1;
  const file = path.join(dir, `manifest-${fileCount}.${extension}`);
  await fs.writeFile(file, content);
  return file;
}

/** Writes a parquet file with DuckDB from a SELECT. */
async function writeParquet(select: string): Promise<string> {
  fileCount += 1;
  const file = path.join(dir, `manifest-${fileCount}.parquet`);
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    await connection.run(`COPY (${select}) TO '${file}' (FORMAT parquet)`);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
  return file;
}

async function collect(file: string, format: ManifestFormat, limits?: Partial<ManifestLimits>): Promise<string[]> {
  const references: string[] = [];
  for await (const reference of readManifest(file, format, limits)) references.push(reference);
  return references;
}

async function failure(file: string, format: ManifestFormat, limits?: Partial<ManifestLimits>): Promise<ManifestError> {
  const error = await collect(file, format, limits).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ManifestError);
  return error as ManifestError;
}

describe('manifestFormatOf', () => {
  it('tells the format by extension, whatever the case, ignoring a query string', () => {
    expect(manifestFormatOf('s3://bucket/lists/all.CSV')).toBe('csv');
    expect(manifestFormatOf('https://host/m.parquet?X-Amz-Signature=abc')).toBe('parquet');
    expect(manifestFormatOf('/data/list.txt')).toBe('txt');
    expect(manifestFormatOf('s3://bucket/images/')).toBeNull();
    expect(manifestFormatOf('s3://bucket/a.jpg?x=list.csv')).toBeNull();
  });
});

describe('txt manifests', () => {
  it('yields one trimmed reference per line, skipping blanks and comments, with BOM and CRLF', async () => {
    const file = await writeFixture('\uFEFFs3://b/a.jpg\r\n\r\n# a comment\r\n  images/b.png  \r\n   \n/data/c.mp4', 'txt');
    expect(await collect(file, 'txt')).toEqual(['s3://b/a.jpg', 'images/b.png', '/data/c.mp4']);
  });

  it('rejects a line longer than the limit, naming it', async () => {
    const file = await writeFixture(`a.jpg\nb.jpg\n${'x'.repeat(300_000)}.jpg\n`, 'txt');
    const error = await failure(file, 'txt', { maxLineBytes: 1024 });
    expect(error.message).toContain('line 3');
  });

  it('accepts a line of exactly the limit, ended by CRLF', async () => {
    const line = `${'x'.repeat(60)}.jpg`;
    const file = await writeFixture(`${line}\r\n`, 'txt');
    expect(await collect(file, 'txt', { maxLineBytes: line.length })).toEqual([line]);
  });

  it('rejects more entries than the limit', async () => {
    const file = await writeFixture('a.jpg\nb.jpg\nc.jpg\n', 'txt');
    const error = await failure(file, 'txt', { maxEntries: 2 });
    expect(error.message).toContain('more than 2');
  });
});

describe('csv manifests', () => {
  it('reads the named column and skips the header', async () => {
    const file = await writeFixture('id,Label, Path \n1,cat,s3://b/cat.jpg\n2,dog,s3://b/dog.jpg\n', 'csv');
    expect(await collect(file, 'csv')).toEqual(['s3://b/cat.jpg', 's3://b/dog.jpg']);
  });

  it('prefers the earlier name in the list when several columns are named', async () => {
    const file = await writeFixture('key,uri\nk1.jpg,s3://b/u1.jpg\n', 'csv');
    expect(await collect(file, 'csv')).toEqual(['s3://b/u1.jpg']);
  });

  it('handles quotes, "" escapes, embedded commas and newlines, BOM and CRLF', async () => {
    const file = await writeFixture(
      '\uFEFFcaption,filename\r\n"a, ""quoted"" caption","x,1.jpg"\r\n"two\r\nlines","multi\r\nline.jpg"\r\nplain,y.png\r\n',
      'csv',
    );
    expect(await collect(file, 'csv')).toEqual(['x,1.jpg', 'multi\nline.jpg', 'y.png']);
  });

  it('reads the first column when the first row is already a media reference', async () => {
    const file = await writeFixture('s3://b/a.jpg,first\nimages/b.png,second\n', 'csv');
    expect(await collect(file, 'csv')).toEqual(['s3://b/a.jpg', 'images/b.png']);
    const bareNames = await writeFixture('a.JPG\nb.webp\n', 'csv');
    expect(await collect(bareNames, 'csv')).toEqual(['a.JPG', 'b.webp']);
  });

  it('skips blank lines and rows whose cell is missing or blank', async () => {
    const file = await writeFixture('\nlabel,path\ncat\ndog, \n\nbird,b.jpg\n,,\n', 'csv');
    expect(await collect(file, 'csv')).toEqual(['b.jpg']);
  });

  it('rejects a file with no column of media paths', async () => {
    const file = await writeFixture('id,label\n1,cat\n', 'csv');
    const error = await failure(file, 'csv');
    expect(error.message).toMatch(/^CSV manifest has no column of media paths; name one of uri, .*key/);
  });

  it('rejects a line longer than the limit, naming it', async () => {
    const file = await writeFixture(`path\na.jpg\n${'x'.repeat(200_000)}\n`, 'csv');
    const error = await failure(file, 'csv', { maxLineBytes: 4096 });
    expect(error.message).toContain('line 3');
  });

  it('rejects an unclosed quote rather than buffering the rest of the file', async () => {
    const file = await writeFixture(`path\n"a.jpg\n${'b.jpg\n'.repeat(2000)}`, 'csv');
    const error = await failure(file, 'csv', { maxLineBytes: 1024 });
    expect(error.message).toContain('line 2');
    const shortFile = await writeFixture('path\n"a.jpg\nb.jpg\n', 'csv');
    expect((await failure(shortFile, 'csv')).message).toContain('never closed');
  });
});

describe('parquet manifests', () => {
  it('reads the named column in file order', async () => {
    const file = await writeParquet(
      `SELECT i AS id, 'cat' AS label, 's3://b/' || i || '.jpg' AS "Image_Path" FROM range(5000) t(i)`,
    );
    const references = await collect(file, 'parquet');
    expect(references).toHaveLength(5000);
    expect(references.slice(0, 2)).toEqual(['s3://b/0.jpg', 's3://b/1.jpg']);
    expect(references.at(-1)).toBe('s3://b/4999.jpg');
  });

  it('falls back to the first string column and skips NULLs and blanks', async () => {
    const file = await writeParquet(
      `SELECT * FROM (VALUES (1, ' a.jpg ', 'x'), (2, NULL, 'y'), (3, '', 'z'), (4, 'b.png', 'w')) t(n, location, note)`,
    );
    expect(await collect(file, 'parquet')).toEqual(['a.jpg', 'b.png']);
  });

  it('rejects a named column that does not hold strings', async () => {
    const file = await writeParquet(`SELECT 1::INTEGER AS path, 'a.jpg' AS other`);
    const error = await failure(file, 'parquet');
    expect(error.message).toBe("Parquet manifest column 'path' has type INTEGER; expected strings");
  });

  it('rejects a file with no string column', async () => {
    const file = await writeParquet('SELECT 1 AS n, 2.5 AS score');
    expect((await failure(file, 'parquet')).message).toContain('no string column');
  });

  it('rejects a file that is not parquet, without showing the server path', async () => {
    const file = await writeFixture('path\na.jpg\n', 'parquet');
    const error = await failure(file, 'parquet');
    expect(error.message).toMatch(/^Parquet manifest could not be read/);
    expect(error.message).not.toContain(dir);
  });

  it('rejects a parquet file whose data pages are corrupt', async () => {
    const source = await fs.readFile(await writeParquet(`SELECT 'k/' || i || '.jpg' AS key FROM range(5000) t(i)`));
    const footerBytes = source.readUInt32LE(source.length - 8);
    const corrupt = Buffer.from(source);
    corrupt.fill(0x55, 4, corrupt.length - 8 - footerBytes);
    const error = await failure(await writeFixture(corrupt, 'parquet'), 'parquet');
    expect(error.message).toMatch(/^Parquet manifest could not be read/);
  });

  it('reads a path that holds a single quote', async () => {
    const source = await writeParquet(`SELECT 'a.jpg' AS uri`);
    const quoted = path.join(dir, "it's a manifest.parquet");
    await fs.copyFile(source, quoted);
    expect(await collect(quoted, 'parquet')).toEqual(['a.jpg']);
  });

  it('closes DuckDB when the consumer stops early', async () => {
    const file = await writeParquet(`SELECT 'k/' || i || '.jpg' AS key FROM range(10000) t(i)`);
    const instanceClosed = vi.spyOn(DuckDBInstance.prototype, 'closeSync');
    const connectionClosed = vi.spyOn(DuckDBConnection.prototype, 'closeSync');
    try {
      const seen: string[] = [];
      for await (const reference of readManifest(file, 'parquet')) {
        seen.push(reference);
        if (seen.length === 3) break;
      }
      expect(seen).toEqual(['k/0.jpg', 'k/1.jpg', 'k/2.jpg']);
      expect(instanceClosed).toHaveBeenCalledTimes(1);
      expect(connectionClosed).toHaveBeenCalledTimes(1);
    } finally {
      instanceClosed.mockRestore();
      connectionClosed.mockRestore();
    }
  });
});

describe('early stop', () => {
  it('lets a csv consumer break without reading the rest', async () => {
    const file = await writeFixture(`uri\n${Array.from({ length: 50_000 }, (_, i) => `s3://b/${i}.jpg`).join('\n')}\n`, 'csv');
    const seen: string[] = [];
    for await (const reference of readManifest(file, 'csv')) {
      seen.push(reference);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual(['s3://b/0.jpg', 's3://b/1.jpg']);
  });
});
