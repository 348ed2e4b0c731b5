import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { BlobStore } from './blob-store.js';

/** Blobs as files under one root folder; keys are relative paths. */
export class LocalBlobStore implements BlobStore {
  constructor(private readonly root: string) {}

  private resolve(key: string): string {
    const full = path.resolve(this.root, key);
    if (!full.startsWith(this.root + path.sep)) throw new Error(`Blob key escapes the store: ${key}`);
    return full;
  }

  async putFile(key: string, localPath: string): Promise<void> {
    const target = this.resolve(key);
    await fsp.mkdir(path.dirname(target), { recursive: true });
    try {
      await fsp.rename(localPath, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
      await fsp.copyFile(localPath, target);
      await fsp.rm(localPath, { force: true });
    }
  }

  async putBuffer(key: string, data: Buffer): Promise<void> {
    const target = this.resolve(key);
    await fsp.mkdir(path.dirname(target), { recursive: true });
    // Write then rename so a reader never sees half a file.
    const partial = `${target}.partial-${process.pid}`;
    await fsp.writeFile(partial, data);
    await fsp.rename(partial, target);
  }

  async get(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const full = this.resolve(key);
    await fsp.access(full);
    return fs.createReadStream(full, range);
  }

  async withLocalFile<T>(key: string, use: (localPath: string) => Promise<T>): Promise<T> {
    return use(this.resolve(key));
  }

  async exists(key: string): Promise<boolean> {
    try {
      await fsp.access(this.resolve(key));
      return true;
    } catch {
      return false;
    }
  }

  async deletePrefix(prefix: string): Promise<void> {
    const full = this.resolve(prefix.replace(/\/+$/, ''));
    // Retries cover a writer (a job still finishing) adding a file while the folder is removed (ENOTEMPTY).
    await fsp.rm(full, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
  }

  async *listKeys(prefix: string): AsyncIterable<string> {
    const folder = this.resolve(prefix.replace(/\/+$/, ''));
    const entries = await fsp.readdir(folder, { recursive: true, withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (entry.isFile() && !entry.name.includes('.partial-')) {
        yield path.relative(this.root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/');
      }
    }
  }
}
