import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isWithinRoots, LocalFolderSourceAdapter } from './local-folder-source.js';
import { SourceNotFoundError, SourceUnreachableError, type SourceObject } from './media-source.js';

const adapter = new LocalFolderSourceAdapter();
let root: string;
let outside: string;
const isRoot = process.getuid?.() === 0;

async function write(relative: string, content: string): Promise<void> {
  const file = path.join(root, relative);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, content);
}

async function listAll(location: string): Promise<SourceObject[]> {
  const objects: SourceObject[] = [];
  for await (const object of adapter.list(location)) objects.push(object);
  return objects;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString();
}

beforeAll(async () => {
  root = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'vizdex-local-')));
  outside = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'vizdex-outside-')));
  await write('b.jpg', 'bb');
  await write('a.png', 'a');
  await write('sub/c.jpg', 'ccc');
  await write('sub/deeper/d.mp4', 'dddd');
  await write('.hidden/e.jpg', 'e');
  await write('.f.jpg', 'f');
  await write('__MACOSX/._b.jpg', 'g');
  await fs.writeFile(path.join(outside, 'linked.jpg'), 'linked');
  await fs.symlink(path.join(outside, 'linked.jpg'), path.join(root, 'link-to-file.jpg'));
  await fs.symlink(root, path.join(root, 'sub', 'loop'));
  await fs.symlink(path.join(root, 'missing.jpg'), path.join(root, 'dangling.jpg'));
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
  await fs.rm(outside, { recursive: true, force: true });
});

describe('LocalFolderSourceAdapter', () => {
  it('handles absolute paths and file URLs only', () => {
    expect(adapter.handles('/data/x')).toBe(true);
    expect(adapter.handles('file:///data/x')).toBe(true);
    expect(adapter.handles('s3://b/k')).toBe(false);
    expect(adapter.handles('data/x')).toBe(false);
  });

  it('walks the folder in a stable sorted order, skipping hidden entries and folder links', async () => {
    const objects = await listAll(root);
    expect(objects).toEqual([
      { uri: path.join(root, 'a.png'), size: 1 },
      { uri: path.join(root, 'b.jpg'), size: 2 },
      { uri: path.join(root, 'link-to-file.jpg'), size: 6 },
      { uri: path.join(root, 'sub', 'c.jpg'), size: 3 },
      { uri: path.join(root, 'sub', 'deeper', 'd.mp4'), size: 4 },
    ]);
  });

  it('accepts a file:// URL and a trailing slash', async () => {
    const viaUrl = await listAll(pathToFileURL(path.join(root, 'sub')).href);
    expect(viaUrl.map((object) => object.uri)).toEqual([path.join(root, 'sub', 'c.jpg'), path.join(root, 'sub', 'deeper', 'd.mp4')]);
    expect(await listAll(`${path.join(root, 'sub')}/`)).toEqual(viaUrl);
  });

  it('lists a single file given as the location', async () => {
    expect(await listAll(path.join(root, 'sub', 'c.jpg'))).toEqual([{ uri: path.join(root, 'sub', 'c.jpg'), size: 3 }]);
  });

  it('rejects relative and missing locations', async () => {
    await expect(listAll('relative/folder')).rejects.toThrow(SourceNotFoundError);
    await expect(listAll('relative/folder')).rejects.toThrow('Path must be absolute: relative/folder');
    await expect(listAll(path.join(root, 'nope'))).rejects.toThrow(`No such folder: ${path.join(root, 'nope')}`);
  });

  it('reports a folder it may not read as unreachable', async () => {
    const denied = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES', path: path.join(root, 'sub') });
    const opendir = vi.spyOn(fs, 'opendir').mockRejectedValueOnce(denied);
    try {
      await expect(listAll(path.join(root, 'sub'))).rejects.toThrow(SourceUnreachableError);
    } finally {
      opendir.mockRestore();
    }
  });

  it.skipIf(isRoot)('reports real permission errors as unreachable', async () => {
    const locked = path.join(root, 'locked');
    await fs.mkdir(locked, { recursive: true });
    await fs.writeFile(path.join(locked, 'x.jpg'), 'x');
    await fs.chmod(locked, 0o000);
    try {
      await expect(listAll(locked)).rejects.toThrow(SourceUnreachableError);
      await expect(adapter.open(path.join(locked, 'x.jpg'))).rejects.toThrow(SourceUnreachableError);
    } finally {
      await fs.chmod(locked, 0o755);
      await fs.rm(locked, { recursive: true });
    }
  });

  it('opens a file, also through a link, and streams its bytes', async () => {
    expect(await readAll(await adapter.open(path.join(root, 'sub', 'deeper', 'd.mp4')))).toBe('dddd');
    expect(await readAll(await adapter.open(pathToFileURL(path.join(root, 'link-to-file.jpg')).href))).toBe('linked');
  });

  it('refuses to open what is missing or not a file', async () => {
    await expect(adapter.open(path.join(root, 'nope.jpg'))).rejects.toThrow(SourceNotFoundError);
    await expect(adapter.open(path.join(root, 'dangling.jpg'))).rejects.toThrow(SourceNotFoundError);
    await expect(adapter.open(path.join(root, 'sub'))).rejects.toThrow(`Not a file: ${path.join(root, 'sub')}`);
    await expect(adapter.open('relative.jpg')).rejects.toThrow('Path must be absolute');
  });
});

describe('isWithinRoots', () => {
  it('admits everything without roots', () => {
    expect(isWithinRoots('/anything', [])).toBe(true);
  });

  it('compares whole path segments', () => {
    expect(isWithinRoots('/data', ['/data'])).toBe(true);
    expect(isWithinRoots('/data/x/y.jpg', ['/data'])).toBe(true);
    expect(isWithinRoots('/data/x/y.jpg', ['/data/'])).toBe(true);
    expect(isWithinRoots('/data2/x', ['/data'])).toBe(false);
    expect(isWithinRoots('/data/../etc/passwd', ['/data'])).toBe(false);
    expect(isWithinRoots('/srv/media/a.jpg', ['/data', '/srv/media'])).toBe(true);
    expect(isWithinRoots('/anything', ['/'])).toBe(true);
  });
});
