import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { deflateRawSync, gzipSync } from 'node:zlib';
import { create as createTar } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yazl from 'yazl';
import { crc32, makeTar, makeZip } from '../../test/fixtures/archives.js';
import {
  archiveFormatOf,
  CorruptArchiveError,
  DEFAULT_ARCHIVE_LIMITS,
  extractArchive,
  scanArchive,
  UnsafeArchiveError,
  type ArchiveFormat,
  type ArchiveLimits,
} from './archive-reader.js';

let dir: string;
let fileCount = 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vizdex-archive-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const MiB = 1024 ** 2;
const smallLimits = (overrides: Partial<ArchiveLimits>): ArchiveLimits => ({ ...DEFAULT_ARCHIVE_LIMITS, ...overrides });

async function saved(bytes: Buffer, extension: string): Promise<string> {
  const file = path.join(dir, `archive-${++fileCount}${extension}`);
  await writeFile(file, bytes);
  return file;
}

async function yazlZip(add: (zip: yazl.ZipFile) => void): Promise<string> {
  const file = path.join(dir, `archive-${++fileCount}.zip`);
  const zip = new yazl.ZipFile();
  add(zip);
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(file));
  return file;
}

interface Extracted {
  path: string;
  size: number;
  bytes: Buffer;
}

async function extractAll(file: string, format: ArchiveFormat, limits?: ArchiveLimits): Promise<Extracted[]> {
  const out: Extracted[] = [];
  await extractArchive(
    file,
    format,
    async (entry, stream) => {
      out.push({ ...entry, bytes: await bytesOf(stream) });
    },
    limits,
  );
  return out;
}

/** Short stand-ins for big buffers: vitest's deep equality walks a Buffer byte by byte. */
function digest(bytes: Buffer | 'skipped'): string {
  return bytes === 'skipped' ? bytes : createHash('sha256').update(bytes).digest('hex');
}

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function problemsOf(promise: Promise<unknown>): Promise<string[]> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UnsafeArchiveError);
  return (error as UnsafeArchiveError).problems;
}

// ---- Hand-written archives, for what the real tools refuse to write ------------------------------

interface RawZipEntry {
  name: string | Buffer;
  data?: Buffer;
  deflate?: boolean;
  /** The UTF-8 name flag; off means CP437. */
  utf8?: boolean;
  /** A unix mode for the external attributes (made by unix). */
  unixMode?: number;
  /** Lie about the uncompressed size, in both headers. */
  declaredSize?: number;
  /** Lie about the compressed size, in both headers. */
  declaredCompressedSize?: number;
  flags?: number;
  method?: number;
}

function rawZip(entries: RawZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = typeof entry.name === 'string' ? Buffer.from(entry.name, 'utf8') : entry.name;
    const data = entry.data ?? Buffer.alloc(0);
    const stored = entry.deflate ? deflateRawSync(data) : data;
    const method = entry.method ?? (entry.deflate ? 8 : 0);
    const flags = (entry.flags ?? 0) | (entry.utf8 === false ? 0 : 0x0800);
    const size = entry.declaredSize ?? data.length;
    const compressedSize = entry.declaredCompressedSize ?? stored.length;
    const crc = crc32(data);

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(compressedSize, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, stored);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(entry.unixMode === undefined ? 20 : (3 << 8) | 20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(compressedSize, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((entry.unixMode ?? 0) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += local.length + name.length + stored.length;
  }
  const centralDirectory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralDirectory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, centralDirectory, end]);
}

/** One ustar entry: header block, data, padding. `type` is the typeflag ('0' file, '1' hard link, '2' symlink, '3' char device, '5' directory, '6' FIFO). */
function tarEntry(name: string, options: { type?: string; data?: Buffer; linkname?: string } = {}): Buffer {
  const data = options.data ?? Buffer.alloc(0);
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100, 'ascii');
  header.write('0000000\0', 108, 'ascii');
  header.write('0000000\0', 116, 'ascii');
  header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  header.write('00000000000\0', 136, 'ascii');
  header.write('        ', 148, 'ascii');
  header.write(options.type ?? '0', 156, 'ascii');
  if (options.linkname) header.write(options.linkname, 157, 100, 'utf8');
  header.write('ustar\0', 257, 'ascii');
  header.write('00', 263, 'ascii');
  header.write('0000000\0', 329, 'ascii');
  header.write('0000000\0', 337, 'ascii');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return Buffer.concat([header, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

function tarOf(...entries: Buffer[]): Buffer {
  return Buffer.concat([...entries, Buffer.alloc(1024)]);
}

const TAR_FORMATS = [
  { format: 'tar' as const, extension: '.tar', pack: (tar: Buffer) => tar },
  { format: 'tar.gz' as const, extension: '.tar.gz', pack: (tar: Buffer) => gzipSync(tar) },
];

// ---- Tests --------------------------------------------------------------------------------------

describe('archiveFormatOf', () => {
  const zipHead = makeZip([{ name: 'a.jpg', data: Buffer.from('x') }]).subarray(0, 512);
  const tarHead = makeTar([{ name: 'a.jpg', data: Buffer.from('x') }]).subarray(0, 512);
  const gzHead = gzipSync(Buffer.from('x'));
  const emptyZip = Buffer.from('PK\x05\x06' + '\0'.repeat(18), 'latin1');

  it('confirms the name by the first bytes', () => {
    expect(archiveFormatOf('photos.zip', zipHead)).toBe('zip');
    expect(archiveFormatOf('PHOTOS.ZIP', zipHead)).toBe('zip');
    expect(archiveFormatOf('empty.zip', emptyZip)).toBe('zip');
    expect(archiveFormatOf('photos.tar', tarHead)).toBe('tar');
    expect(archiveFormatOf('photos.tar.gz', gzHead)).toBe('tar.gz');
    expect(archiveFormatOf('photos.tgz', gzHead)).toBe('tar.gz');
  });

  it('is null when name and content disagree or it is no archive', () => {
    expect(archiveFormatOf('photos.zip', gzHead)).toBeNull();
    expect(archiveFormatOf('photos.tar.gz', zipHead)).toBeNull();
    expect(archiveFormatOf('photos.tar', gzHead)).toBeNull();
    expect(archiveFormatOf('photos.tar', Buffer.from('ustar'))).toBeNull();
    expect(archiveFormatOf('photo.jpg', zipHead)).toBeNull();
    expect(archiveFormatOf('photos.zip', Buffer.alloc(0))).toBeNull();
  });
});

describe('zip', () => {
  const a = randomBytes(300_000);
  const b = randomBytes(1000);
  const c = Buffer.from('same name, first');
  const d = Buffer.from('same name, second');

  it('lists and streams files in nested folders, passing over directories and OS junk', async () => {
    const file = await yazlZip((zip) => {
      zip.addEmptyDirectory('photos/');
      zip.addEmptyDirectory('photos/2024/');
      zip.addBuffer(a, 'photos/2024/a.jpg');
      zip.addBuffer(b, 'photos/b.png', { compress: false });
      zip.addBuffer(Buffer.alloc(0), 'photos/empty.jpg');
      zip.addBuffer(Buffer.from('junk'), '__MACOSX/photos/._a.jpg');
      zip.addBuffer(Buffer.from('junk'), 'photos/._b.png');
      zip.addBuffer(Buffer.from('junk'), 'photos/.DS_Store');
      zip.addBuffer(Buffer.from('junk'), 'photos/Thumbs.db');
      zip.addBuffer(c, 'dup.jpg');
      zip.addBuffer(d, 'dup.jpg');
    });
    const expected = [
      { path: 'photos/2024/a.jpg', size: a.length },
      { path: 'photos/b.png', size: b.length },
      { path: 'photos/empty.jpg', size: 0 },
      { path: 'dup.jpg', size: c.length },
      { path: 'dup.jpg', size: d.length },
    ];
    expect((await scanArchive(file, 'zip')).files).toEqual(expected);

    const extracted = await extractAll(file, 'zip');
    expect(extracted.map(({ path, size }) => ({ path, size }))).toEqual(expected);
    expect(extracted.map((e) => digest(e.bytes))).toEqual([a, b, Buffer.alloc(0), c, d].map(digest));
  });

  it("normalises '\\' separators and a leading './'", async () => {
    const file = await saved(
      rawZip([
        { name: 'photos\\a.jpg', data: b },
        { name: './b.jpg', data: b },
        { name: 'photos\\', data: Buffer.alloc(0) },
      ]),
      '.zip',
    );
    expect((await scanArchive(file, 'zip')).files.map((f) => f.path)).toEqual(['photos/a.jpg', 'b.jpg']);
  });

  it('reads a CP437 name (no UTF-8 flag) without crashing', async () => {
    const name = Buffer.concat([Buffer.from('caf'), Buffer.from([0x82]), Buffer.from('.jpg')]);
    const file = await saved(rawZip([{ name, data: b, utf8: false }]), '.zip');
    expect((await scanArchive(file, 'zip')).files).toEqual([{ path: 'café.jpg', size: b.length }]);
    expect((await extractAll(file, 'zip'))[0]?.bytes.equals(b)).toBe(true);
  });

  it('refuses zip-slip, absolute and NUL names, listing every one', async () => {
    const file = await saved(
      rawZip([
        { name: 'ok.jpg', data: b },
        { name: '../x.jpg', data: b },
        { name: '/etc/x', data: b },
        { name: 'C:\\x.jpg', data: b },
        { name: '\\\\server\\share\\x.jpg', data: b },
        { name: 'photos/../../x.jpg', data: b },
        { name: 'nul\0.jpg', data: b },
      ]),
      '.zip',
    );
    const problems = await problemsOf(scanArchive(file, 'zip'));
    expect(problems).toEqual([
      `"../x.jpg": '..' in path`,
      '"/etc/x": absolute path',
      '"C:/x.jpg": absolute path',
      '"//server/share/x.jpg": absolute path',
      `"photos/../../x.jpg": '..' in path`,
      '"nul\\u0000.jpg": NUL byte in name',
    ]);

    const seen: string[] = [];
    const extractProblems = await problemsOf(
      extractArchive(file, 'zip', async (entry, stream) => {
        seen.push(entry.path);
        await bytesOf(stream);
      }),
    );
    expect(seen).toEqual(['ok.jpg']);
    expect(extractProblems).toEqual([`"../x.jpg": '..' in path`]);
  });

  it('lists at most 20 problems, then how many more', async () => {
    const entries = Array.from({ length: 25 }, (_, i) => ({ name: `../${i}.jpg`, data: b }));
    const problems = await problemsOf(scanArchive(await saved(rawZip(entries), '.zip'), 'zip'));
    expect(problems).toHaveLength(21);
    expect(problems.at(-1)).toBe('and 5 more');
  });

  it('refuses symlinks and devices (unix mode in the external attributes)', async () => {
    const viaYazl = await yazlZip((zip) => {
      zip.addBuffer(b, 'ok.jpg');
      zip.addBuffer(Buffer.from('/etc/passwd'), 'link.jpg', { mode: 0o120777 });
    });
    expect(await problemsOf(scanArchive(viaYazl, 'zip'))).toEqual(['"link.jpg": symbolic link']);
    await expect(extractAll(viaYazl, 'zip')).rejects.toThrow(UnsafeArchiveError);

    const device = await saved(rawZip([{ name: 'tty', unixMode: 0o020644 }]), '.zip');
    expect(await problemsOf(scanArchive(device, 'zip'))).toEqual(['"tty": device or FIFO']);
  });

  it('refuses entries it cannot decode', async () => {
    const file = await saved(
      rawZip([
        { name: 'secret.jpg', data: b, deflate: true, flags: 0x1 },
        { name: 'bzip2.jpg', data: b, method: 12 },
      ]),
      '.zip',
    );
    expect(await problemsOf(scanArchive(file, 'zip'))).toEqual([
      '"secret.jpg": encrypted',
      '"bzip2.jpg": compression method 12 is not supported',
    ]);
  });

  it('refuses too many entries, counting directories, from the central directory alone', async () => {
    const file = await yazlZip((zip) => {
      zip.addEmptyDirectory('photos/');
      for (let i = 0; i < 10; i++) zip.addBuffer(b, `photos/${i}.jpg`);
    });
    expect(await problemsOf(scanArchive(file, 'zip', smallLimits({ maxEntries: 10 })))).toEqual([
      '11 entries, more than the limit of 10',
    ]);
    await expect(extractAll(file, 'zip', smallLimits({ maxEntries: 10 }))).rejects.toThrow(UnsafeArchiveError);
    expect(await scanArchive(file, 'zip', smallLimits({ maxEntries: 11 }))).toHaveProperty('files.length', 10);
  });

  it('refuses files adding up to more than the total', async () => {
    const file = await yazlZip((zip) => {
      for (let i = 0; i < 3; i++) zip.addBuffer(b, `${i}.jpg`);
    });
    const limits = smallLimits({ maxTotalBytes: 2500 });
    expect(await problemsOf(scanArchive(file, 'zip', limits))).toEqual(['files add up to more than the limit of 2500 bytes']);
    const seen: string[] = [];
    await expect(
      extractArchive(
        file,
        'zip',
        async (entry, stream) => {
          seen.push(entry.path);
          await bytesOf(stream);
        },
        limits,
      ),
    ).rejects.toThrow(UnsafeArchiveError);
    expect(seen).toEqual(['0.jpg', '1.jpg']);
  });

  it('refuses a deflate bomb by its declared ratio, before inflating anything', async () => {
    const file = await saved(rawZip([{ name: 'zeros.bin', data: Buffer.alloc(50 * MiB), deflate: true }]), '.zip');
    const limits = smallLimits({ maxCompressionRatio: 100 });
    const started = Date.now();
    const problems = await problemsOf(scanArchive(file, 'zip', limits));
    expect(problems).toContain('"zeros.bin": compressed more than 100:1');
    let delivered = 0;
    await expect(
      extractArchive(file, 'zip', async () => void delivered++, limits),
    ).rejects.toThrow(UnsafeArchiveError);
    expect(delivered).toBe(0);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('stops an entry that inflates to more than its header declares', async () => {
    // The headers claim 1000 bytes; the deflated data holds 20 MiB.
    const file = await saved(rawZip([{ name: 'liar.bin', data: Buffer.alloc(20 * MiB), deflate: true, declaredSize: 1000 }]), '.zip');
    expect((await scanArchive(file, 'zip')).files).toEqual([{ path: 'liar.bin', size: 1000 }]);
    let received = 0;
    const error = await extractArchive(file, 'zip', async (_entry, stream) => {
      for await (const chunk of stream) received += (chunk as Buffer).length;
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsafeArchiveError);
    expect((error as UnsafeArchiveError).problems).toEqual(['"liar.bin": more bytes than the 1000 its header declares']);
    expect(received).toBeLessThanOrEqual(1000);
  });

  it('reports an entry that ends before its declared size as corrupt', async () => {
    const file = await saved(rawZip([{ name: 'short.bin', data: randomBytes(100), deflate: true, declaredSize: 2000 }]), '.zip');
    await expect(extractAll(file, 'zip')).rejects.toThrow(CorruptArchiveError);
  });

  it('reports a stored entry whose sizes disagree as corrupt', async () => {
    const file = await saved(rawZip([{ name: 'a.jpg', data: b, declaredCompressedSize: 10 }]), '.zip');
    await expect(scanArchive(file, 'zip')).rejects.toThrow(CorruptArchiveError);
  });

  it('reports truncated, random and damaged zips as corrupt', async () => {
    const whole = await yazlZip((zip) => zip.addBuffer(a, 'a.jpg'));
    const bytes = await readFile(whole);
    const truncated = await saved(bytes.subarray(0, bytes.length / 2), '.zip');
    await expect(scanArchive(truncated, 'zip')).rejects.toThrow(CorruptArchiveError);
    await expect(extractAll(truncated, 'zip')).rejects.toThrow(CorruptArchiveError);

    const random = await saved(randomBytes(5000), '.zip');
    await expect(scanArchive(random, 'zip')).rejects.toThrow(CorruptArchiveError);
    const empty = await saved(Buffer.alloc(0), '.zip');
    await expect(scanArchive(empty, 'zip')).rejects.toThrow(CorruptArchiveError);

    // The central directory is intact but the entry's data was overwritten.
    const damaged = Buffer.from(bytes);
    damaged.fill(0x55, 0, 40_000);
    const damagedFile = await saved(damaged, '.zip');
    await expect(scanArchive(damagedFile, 'zip')).resolves.toHaveProperty('files.length', 1);
    await expect(extractAll(damagedFile, 'zip')).rejects.toThrow(CorruptArchiveError);
  });

  it('reads an empty zip', async () => {
    const file = await yazlZip(() => {});
    expect(await scanArchive(file, 'zip')).toEqual({ files: [] });
  });
});

describe.each(TAR_FORMATS)('$format', ({ format, extension, pack }) => {
  const a = randomBytes(300_000);
  const b = randomBytes(1000);

  it('lists and streams files in nested folders, passing over directories and OS junk', async () => {
    const tree = await mkdtemp(path.join(dir, 'tree-'));
    await mkdir(path.join(tree, 'photos/2024'), { recursive: true });
    await mkdir(path.join(tree, '__MACOSX/photos'), { recursive: true });
    await writeFile(path.join(tree, 'photos/2024/a.jpg'), a);
    await writeFile(path.join(tree, 'photos/b.png'), b);
    await writeFile(path.join(tree, 'photos/empty.jpg'), '');
    await writeFile(path.join(tree, 'photos/.DS_Store'), 'junk');
    await writeFile(path.join(tree, 'photos/._b.png'), 'junk');
    await writeFile(path.join(tree, '__MACOSX/photos/._a.jpg'), 'junk');
    const file = path.join(dir, `tree-${++fileCount}${extension}`);
    await createTar({ file, cwd: tree, gzip: format === 'tar.gz', portable: true }, ['.']);

    const byPath = (x: { path: string }, y: { path: string }) => x.path.localeCompare(y.path);
    const expected = [
      { path: 'photos/2024/a.jpg', size: a.length },
      { path: 'photos/b.png', size: b.length },
      { path: 'photos/empty.jpg', size: 0 },
    ];
    expect((await scanArchive(file, format)).files.sort(byPath)).toEqual(expected);
    const extracted = (await extractAll(file, format)).sort(byPath);
    expect(extracted.map(({ path, size }) => ({ path, size }))).toEqual(expected);
    expect(extracted.map((e) => digest(e.bytes))).toEqual([a, b, Buffer.alloc(0)].map(digest));
  });

  it('yields both files of a duplicated name', async () => {
    const file = await saved(pack(tarOf(tarEntry('dup.jpg', { data: a }), tarEntry('dup.jpg', { data: b }))), extension);
    const extracted = await extractAll(file, format);
    expect(extracted.map((e) => [e.path, digest(e.bytes)])).toEqual([
      ['dup.jpg', digest(a)],
      ['dup.jpg', digest(b)],
    ]);
  });

  it('refuses zip-slip, absolute paths, links and devices, listing every one', async () => {
    const file = await saved(
      pack(
        tarOf(
          tarEntry('./photos/', { type: '5' }),
          tarEntry('./photos/ok.jpg', { data: b }),
          tarEntry('../x.jpg', { data: b }),
          tarEntry('/etc/x', { data: b }),
          tarEntry('photos/link.jpg', { type: '2', linkname: '/etc/passwd' }),
          tarEntry('photos/hard.jpg', { type: '1', linkname: 'photos/ok.jpg' }),
          tarEntry('photos/tty', { type: '3' }),
          tarEntry('photos/fifo', { type: '6' }),
        ),
      ),
      extension,
    );
    expect(await problemsOf(scanArchive(file, format))).toEqual([
      `"../x.jpg": '..' in path`,
      '"/etc/x": absolute path',
      '"photos/link.jpg": symbolic link',
      '"photos/hard.jpg": hard link',
      '"photos/tty": device or FIFO',
      '"photos/fifo": device or FIFO',
    ]);
    const seen: string[] = [];
    const problems = await problemsOf(
      extractArchive(file, format, async (entry, stream) => {
        seen.push(entry.path);
        await bytesOf(stream);
      }),
    );
    expect(seen).toEqual(['photos/ok.jpg']);
    expect(problems).toEqual([`"../x.jpg": '..' in path`]);
  });

  it('checks the path a pax header or a GNU long name gives, not the one in the ustar header', async () => {
    const record = (key: string, value: string): Buffer => {
      const body = ` ${key}=${value}\n`;
      let length = body.length + 2;
      if (`${length}${body}`.length !== length) length += 1;
      return Buffer.from(`${length}${body}`);
    };
    const file = await saved(
      pack(
        tarOf(
          tarEntry('PaxHeader/innocent.jpg', { type: 'x', data: record('path', '../../pax.jpg') }),
          tarEntry('innocent.jpg', { data: b }),
          tarEntry('././@LongLink', { type: 'L', data: Buffer.from('/abs/gnu.jpg\0') }),
          tarEntry('innocent2.jpg', { data: b }),
          tarEntry('PaxHeader/fine.jpg', { type: 'x', data: record('path', 'deep/'.repeat(30) + 'fine.jpg') }),
          tarEntry('fine.jpg', { data: b }),
        ),
      ),
      extension,
    );
    expect(await problemsOf(scanArchive(file, format))).toEqual([`"../../pax.jpg": '..' in path`, '"/abs/gnu.jpg": absolute path']);
  });

  it('refuses too many entries, counting directories', async () => {
    const entries = [tarEntry('photos/', { type: '5' }), ...Array.from({ length: 10 }, (_, i) => tarEntry(`photos/${i}.jpg`, { data: b }))];
    const file = await saved(pack(tarOf(...entries)), extension);
    const limits = smallLimits({ maxEntries: 10 });
    expect(await problemsOf(scanArchive(file, format, limits))).toEqual(['more than the limit of 10 entries']);
    await expect(extractAll(file, format, limits)).rejects.toThrow(UnsafeArchiveError);
  });

  it('refuses files adding up to more than the total', async () => {
    const file = await saved(pack(tarOf(...[0, 1, 2].map((i) => tarEntry(`${i}.jpg`, { data: b })))), extension);
    const limits = smallLimits({ maxTotalBytes: 2500 });
    expect(await problemsOf(scanArchive(file, format, limits))).toEqual(['files add up to more than the limit of 2500 bytes']);
    await expect(extractAll(file, format, limits)).rejects.toThrow(UnsafeArchiveError);
  });

  it('reports truncated and random archives as corrupt', async () => {
    const whole = pack(tarOf(tarEntry('a.jpg', { data: a }), tarEntry('b.jpg', { data: b })));
    const truncated = await saved(whole.subarray(0, Math.floor(whole.length / 2)), extension);
    await expect(scanArchive(truncated, format)).rejects.toThrow(CorruptArchiveError);
    await expect(extractAll(truncated, format)).rejects.toThrow(CorruptArchiveError);
    const random = await saved(pack(randomBytes(5000)), extension);
    await expect(scanArchive(random, format)).rejects.toThrow(CorruptArchiveError);
    const empty = await saved(Buffer.alloc(0), extension);
    await expect(scanArchive(empty, format)).rejects.toThrow(CorruptArchiveError);
  });

  it('refuses compressed data where tar headers should be', async () => {
    const nested = await saved(pack(gzipSync(tarOf(tarEntry('a.jpg', { data: b })))), extension);
    await expect(scanArchive(nested, format)).rejects.toThrow(CorruptArchiveError);
  });
});

describe('tar.gz bombs', () => {
  it('refuses a file whose declared size is far beyond the ratio, without inflating it', async () => {
    const file = await saved(gzipSync(tarOf(tarEntry('zeros.bin', { data: Buffer.alloc(50 * MiB) }))), '.tar.gz');
    const limits = smallLimits({ maxCompressionRatio: 100 });
    const started = Date.now();
    expect((await problemsOf(scanArchive(file, 'tar.gz', limits)))[0]).toMatch(/^expands to more than 100 times/);
    let delivered = 0;
    await expect(extractArchive(file, 'tar.gz', async () => void delivered++, limits)).rejects.toThrow(UnsafeArchiveError);
    expect(delivered).toBe(0);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('stops inflating once the stream itself passes the ratio', async () => {
    // A small honest tar followed by 50 MiB of zeros that no header accounts for.
    const small = randomBytes(1000);
    const file = await saved(gzipSync(Buffer.concat([tarOf(tarEntry('a.jpg', { data: small })), Buffer.alloc(50 * MiB)])), '.tar.gz');
    const limits = smallLimits({ maxCompressionRatio: 100 });
    const problems = await problemsOf(scanArchive(file, 'tar.gz', limits));
    expect(problems[0]).toMatch(/^expands to more than 100 times/);
    const seen: string[] = [];
    await expect(
      extractArchive(
        file,
        'tar.gz',
        async (entry, stream) => {
          seen.push(entry.path);
          await bytesOf(stream);
        },
        limits,
      ),
    ).rejects.toThrow(UnsafeArchiveError);
    expect(seen).toEqual(['a.jpg']);
  });
});

describe.each([
  {
    label: 'stored zip',
    format: 'zip' as const,
    build: (files: Buffer[]) => saved(makeZip(files.map((data, i) => ({ name: `${i}.jpg`, data }))), '.zip'),
  },
  {
    label: 'deflated zip',
    format: 'zip' as const,
    build: (files: Buffer[]) => yazlZip((zip) => files.forEach((data, i) => zip.addBuffer(data, `${i}.jpg`))),
  },
  {
    label: 'tar',
    format: 'tar' as const,
    build: (files: Buffer[]) => saved(tarOf(...files.map((data, i) => tarEntry(`${i}.jpg`, { data }))), '.tar'),
  },
  {
    label: 'tar.gz',
    format: 'tar.gz' as const,
    build: (files: Buffer[]) => saved(gzipSync(tarOf(...files.map((data, i) => tarEntry(`${i}.jpg`, { data })))), '.tar.gz'),
  },
])('$label extraction', ({ format, build }) => {
  const files = [randomBytes(700_000), randomBytes(300_000), randomBytes(500_000), randomBytes(10)];

  it('waits for each onEntry before the next, and lets it destroy a stream it does not want', async () => {
    const file = await build(files);
    let active = 0;
    const got: Array<Buffer | 'skipped'> = [];
    await extractArchive(file, format, async (entry, stream) => {
      expect(active++).toBe(0);
      if (entry.path === '0.jpg') {
        stream.destroy();
        got.push('skipped');
      } else {
        await new Promise((resolve) => setTimeout(resolve, 5));
        got.push(await bytesOf(stream));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      active--;
    });
    expect(got.map(digest)).toEqual(['skipped', ...files.slice(1).map(digest)]);
  });

  it('passes on what onEntry throws and stops', async () => {
    const file = await build(files);
    let calls = 0;
    await expect(
      extractArchive(file, format, async () => {
        calls++;
        throw new Error('storage is full');
      }),
    ).rejects.toThrow('storage is full');
    expect(calls).toBe(1);
  });

  it('complains when onEntry neither reads nor destroys its stream', async () => {
    const file = await build(files);
    await expect(extractArchive(file, format, async () => {})).rejects.toThrow(/resolved before reading/);
  });
});
