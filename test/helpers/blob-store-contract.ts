import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobStore } from '../../src/storage/blob-store.js';

export interface BlobStoreUnderTest {
  store: BlobStore;
  /** Where `withLocalFile` puts temporary copies (null: it hands out the stored file itself). */
  scratchDir: string | null;
  /** Keys written in bulk by the deletePrefix test (more than one listing page for object stores). */
  bulkKeys: number;
  /** Every stored key, read behind the store's back (relative to the store's root or prefix), sorted. */
  storedKeys(): Promise<string[]>;
  close(): Promise<void>;
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function rejection(promise: Promise<unknown>): Promise<NodeJS.ErrnoException> {
  try {
    await promise;
  } catch (error) {
    return error as NodeJS.ErrnoException;
  }
  throw new Error('expected a rejection');
}

async function runLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** The behaviour every BlobStore adapter shares; run once per adapter. */
export function describeBlobStore(name: string, makeStore: () => Promise<BlobStoreUnderTest>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let subject: BlobStoreUnderTest;
    let store: BlobStore;
    let work: string;
    const big = randomBytes(5 * 1024 * 1024);

    beforeAll(async () => {
      subject = await makeStore();
      store = subject.store;
      work = await fsp.mkdtemp(path.join(os.tmpdir(), 'vizdex-blob-contract-'));
    });

    afterAll(async () => {
      await subject?.close();
      await fsp.rm(work, { recursive: true, force: true });
    });

    async function localFile(data: Buffer): Promise<string> {
      const file = path.join(work, `${Math.random().toString(36).slice(2)}.bin`);
      await fsp.writeFile(file, data);
      return file;
    }

    it('round-trips a 5 MiB file through putFile and get, consuming the source file', async () => {
      const source = await localFile(big);
      await store.putFile('datasets/d1/media/big.bin', source);
      expect(fs.existsSync(source)).toBe(false);
      expect(sha256(await readAll(await store.get('datasets/d1/media/big.bin')))).toBe(sha256(big));
    });

    it('serves inclusive byte ranges: first byte, middle, last byte', async () => {
      const key = 'datasets/d1/media/ranges.bin';
      await store.putFile(key, await localFile(big));
      const last = big.length - 1;
      // Compared as hex digests: a failing Buffer comparison would print megabytes.
      const read = async (start: number, end: number) => sha256(await readAll(await store.get(key, { start, end })));
      expect(await read(0, 0)).toBe(sha256(big.subarray(0, 1)));
      expect(await read(0, 1)).toBe(sha256(big.subarray(0, 2)));
      expect(await read(1000, 1_234_567)).toBe(sha256(big.subarray(1000, 1_234_568)));
      expect(await read(last, last)).toBe(sha256(big.subarray(last)));
      expect(await read(10, last)).toBe(sha256(big.subarray(10)));
      // A stream closed early (a client that hung up) leaves the store usable.
      (await store.get(key, { start: 0, end: last })).destroy();
      expect(await read(5, 5)).toBe(sha256(big.subarray(5, 6)));
    });

    it('stores buffers and replaces an existing blob', async () => {
      await store.putBuffer('datasets/d1/thumbs/t.jpg', Buffer.from('first'));
      await store.putBuffer('datasets/d1/thumbs/t.jpg', Buffer.from('second'));
      expect((await readAll(await store.get('datasets/d1/thumbs/t.jpg'))).toString()).toBe('second');
      await store.putBuffer('datasets/d1/empty', Buffer.alloc(0));
      expect(await readAll(await store.get('datasets/d1/empty'))).toHaveLength(0);
    });

    it('tells whether a blob exists', async () => {
      await store.putBuffer('datasets/d2/media/x.png', Buffer.from('x'));
      expect(await store.exists('datasets/d2/media/x.png')).toBe(true);
      expect(await store.exists('datasets/d2/media/y.png')).toBe(false);
      expect(await store.exists('datasets/nowhere/at/all.png')).toBe(false);
    });

    it('rejects a missing blob with ENOENT, from get and from withLocalFile', async () => {
      expect((await rejection(store.get('datasets/d2/media/missing.png'))).code).toBe('ENOENT');
      expect((await rejection(store.get('datasets/d2/media/missing.png', { start: 0, end: 1 }))).code).toBe('ENOENT');
      const read = store.withLocalFile('datasets/d2/media/missing.png', (file) => fsp.readFile(file));
      expect((await rejection(read)).code).toBe('ENOENT');
    });

    it('refuses keys that would leave the store', async () => {
      await expect(store.putBuffer('../outside', Buffer.from('x'))).rejects.toThrow(/escapes/);
      await expect(store.deletePrefix('')).rejects.toThrow(/escapes/);
    });

    it('hands withLocalFile a file with the bytes, and cleans a temporary copy up even when `use` throws', async () => {
      const key = 'datasets/d3/index/vectors.index';
      await store.putFile(key, await localFile(big));
      let seen = '';
      const digest = await store.withLocalFile(key, async (file) => {
        seen = file;
        return sha256(await fsp.readFile(file));
      });
      expect(digest).toBe(sha256(big));
      if (subject.scratchDir) expect(fs.existsSync(seen)).toBe(false);

      await expect(
        store.withLocalFile(key, async (file) => {
          seen = file;
          expect(fs.existsSync(file)).toBe(true);
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      if (subject.scratchDir) {
        expect(fs.existsSync(seen)).toBe(false);
        expect(await fsp.readdir(subject.scratchDir)).toEqual([]);
      }
      expect(await store.exists(key)).toBe(true);
    });

    it('deletes exactly one folder: the sibling with a longer name stays', async () => {
      const doomed = Array.from({ length: subject.bulkKeys }, (_, i) => `datasets/ab/media/${String(i).padStart(5, '0')}.jpg`);
      await runLimited(doomed, 32, (key) => store.putBuffer(key, Buffer.from(key)));
      await store.putBuffer('datasets/ab/index/media-ids.json', Buffer.from('[]'));
      await store.putBuffer('datasets/abc/media/keep.jpg', Buffer.from('keep'));
      await store.putBuffer('datasets/abc.jpg', Buffer.from('keep too'));

      const before = await subject.storedKeys();
      expect(before.filter((key) => key.startsWith('datasets/ab/'))).toHaveLength(doomed.length + 1);
      // listKeys sees the same folder the store's own listing does (every page of it), and only it.
      const listed: string[] = [];
      for await (const key of store.listKeys('datasets/ab')) listed.push(key);
      expect(listed.sort()).toEqual(before.filter((key) => key.startsWith('datasets/ab/')));

      await store.deletePrefix('datasets/ab/');

      const after = await subject.storedKeys();
      expect(after).toEqual(before.filter((key) => !key.startsWith('datasets/ab/')));
      expect(after).toContain('datasets/abc/media/keep.jpg');
      expect(await store.exists(doomed[doomed.length - 1]!)).toBe(false);
      expect((await readAll(await store.get('datasets/abc/media/keep.jpg'))).toString()).toBe('keep');
      expect(await store.exists('datasets/abc.jpg')).toBe(true);
      expect(await store.exists('datasets/d1/media/big.bin')).toBe(true);
      // Removing what is already gone is not an error.
      await store.deletePrefix('datasets/ab/');
    });

    it('treats a prefix without its trailing slash as the same folder', async () => {
      await store.putBuffer('datasets/ef/media/1.jpg', Buffer.from('1'));
      await store.putBuffer('datasets/efg/media/2.jpg', Buffer.from('2'));
      await store.deletePrefix('datasets/ef');
      expect(await store.exists('datasets/ef/media/1.jpg')).toBe(false);
      expect(await store.exists('datasets/efg/media/2.jpg')).toBe(true);
    });
  });
}
