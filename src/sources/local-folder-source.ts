import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { SourceNotFoundError, SourceUnreachableError, type SourceAdapter, type SourceObject } from './media-source.js';

/** Folders and files on the server's own disks, by absolute path or file:// URL. */
export class LocalFolderSourceAdapter implements SourceAdapter {
  handles(uri: string): boolean {
    return uri.startsWith('/') || /^file:\/\//i.test(uri);
  }

  /**
   * Every regular file under the folder, depth first, each folder's entries sorted by name. Hidden
   * entries and `__MACOSX` are skipped; symlinks are followed to files but never into folders.
   */
  async *list(location: string): AsyncIterable<SourceObject> {
    const root = toAbsolutePath(location);
    let stats: fs.Stats;
    try {
      stats = await fsp.stat(root);
    } catch (error) {
      throw translateFsError(error, location, `No such folder: ${root}`);
    }
    if (stats.isFile()) {
      yield { uri: root, size: stats.size };
      return;
    }
    if (!stats.isDirectory()) throw new SourceNotFoundError(location, `Not a folder or file: ${root}`);
    yield* walk(root, location);
  }

  async open(uri: string): Promise<Readable> {
    const file = toAbsolutePath(uri);
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(file, 'r');
    } catch (error) {
      throw translateFsError(error, uri, `No such file: ${file}`);
    }
    // fstat on the open handle: the file checked is the file read.
    const stats = await handle.stat().catch(async (error: unknown) => {
      await handle.close();
      throw translateFsError(error, uri, `No such file: ${file}`);
    });
    if (!stats.isFile()) {
      await handle.close();
      throw new SourceNotFoundError(uri, `Not a file: ${file}`);
    }
    return handle.createReadStream();
  }
}

/**
 * Whether `realPath` lies inside one of `roots` (absolute paths), compared segment by segment so
 * that '/data' admits '/data/x' but not '/data2/x'. No roots means no restriction. Pass
 * `fs.realpath` results: a symlink inside a root may point outside it.
 */
export function isWithinRoots(realPath: string, roots: string[]): boolean {
  if (roots.length === 0) return true;
  const candidate = path.resolve(realPath);
  return roots.some((root) => {
    const normalisedRoot = path.resolve(root);
    if (candidate === normalisedRoot) return true;
    const prefix = normalisedRoot.endsWith(path.sep) ? normalisedRoot : normalisedRoot + path.sep;
    return candidate.startsWith(prefix);
  });
}

function toAbsolutePath(location: string): string {
  let local = location;
  if (/^file:\/\//i.test(location)) {
    try {
      local = fileURLToPath(location);
    } catch {
      throw new SourceNotFoundError(location, `Not a local file URL: ${location}`);
    }
  }
  if (!path.isAbsolute(local)) throw new SourceNotFoundError(location, `Path must be absolute: ${location}`);
  return path.resolve(local);
}

function isSkippedName(name: string): boolean {
  return name.startsWith('.') || name === '__MACOSX';
}

async function* walk(folder: string, location: string): AsyncIterable<SourceObject> {
  for (const name of await sortedEntryNames(folder, location)) {
    if (isSkippedName(name)) continue;
    const entryPath = path.join(folder, name);
    const entry = await lstatIfPresent(entryPath, location);
    if (!entry) continue;
    if (entry.isDirectory()) {
      yield* walk(entryPath, location);
    } else if (entry.isFile()) {
      yield { uri: entryPath, size: entry.size };
    } else if (entry.isSymbolicLink()) {
      // Only links to files: a link to a folder may loop back up the tree.
      const target = await statIfPresent(entryPath, location);
      if (target?.isFile()) yield { uri: entryPath, size: target.size };
    }
  }
}

/** Names in one folder, sorted by code unit so the order does not depend on locale or file system. */
async function sortedEntryNames(folder: string, location: string): Promise<string[]> {
  const names: string[] = [];
  try {
    const dir = await fsp.opendir(folder);
    for await (const entry of dir) names.push(entry.name);
  } catch (error) {
    // A folder removed mid-walk holds nothing any more (the root's existence was checked before).
    if (isGone(error)) return [];
    throw translateFsError(error, location, `No such folder: ${folder}`);
  }
  return names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

async function lstatIfPresent(entryPath: string, location: string): Promise<fs.Stats | undefined> {
  try {
    return await fsp.lstat(entryPath);
  } catch (error) {
    if (isGone(error)) return undefined;
    throw translateFsError(error, location, `No such file: ${entryPath}`);
  }
}

/** Follows a symlink; a dangling one is undefined. */
async function statIfPresent(entryPath: string, location: string): Promise<fs.Stats | undefined> {
  try {
    return await fsp.stat(entryPath);
  } catch (error) {
    if (isGone(error) || errorCode(error) === 'ELOOP') return undefined;
    throw translateFsError(error, location, `No such file: ${entryPath}`);
  }
}

function isGone(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Missing → SourceNotFoundError(`notFound`); anything else (permissions, I/O) → SourceUnreachableError. */
function translateFsError(error: unknown, location: string, notFound: string): Error {
  const code = errorCode(error);
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG') {
    return new SourceNotFoundError(location, notFound);
  }
  if (code === 'EACCES' || code === 'EPERM') {
    const subject = (error as NodeJS.ErrnoException).path ?? location;
    return new SourceUnreachableError(location, `Permission denied: ${subject}`);
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new SourceUnreachableError(location, `Could not read ${location}: ${reason}`);
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}
