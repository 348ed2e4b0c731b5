import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeBlobStore, readAll } from '../../test/helpers/blob-store-contract.js';
import { S3RVER_ACCESS_KEY_ID, startTestS3, type TestS3 } from '../../test/helpers/s3.js';
import { S3BlobStore } from './s3-blob-store.js';

const credentials = { accessKeyId: S3RVER_ACCESS_KEY_ID, secretAccessKey: 'S3RVER' };

let s3: TestS3;
let bucketCount = 0;

beforeAll(async () => {
  s3 = await startTestS3();
});

afterAll(async () => {
  await s3?.close();
});

/** A store over a fresh bucket, under `prefix`, with its own scratch folder. */
async function freshStore(prefix: string): Promise<{ store: S3BlobStore; bucket: string; scratchDir: string }> {
  const bucket = `blobs-${++bucketCount}`;
  await s3.createBucket(bucket);
  const scratchDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'vizdex-s3-scratch-'));
  return { store: new S3BlobStore(s3.settings, { bucket, prefix }, { scratchDir, credentials }), bucket, scratchDir };
}

async function allKeys(bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    keys.push(...(page.Contents ?? []).map((object) => object.Key!));
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

describeBlobStore('S3BlobStore (s3rver)', async () => {
  const { store, bucket, scratchDir } = await freshStore('tenant-a/');
  return {
    store,
    scratchDir,
    // More than one ListObjectsV2 page and one DeleteObjects batch.
    bulkKeys: 1050,
    async storedKeys() {
      const keys = await allKeys(bucket);
      expect(keys.every((key) => key.startsWith('tenant-a/'))).toBe(true);
      return keys.map((key) => key.slice('tenant-a/'.length)).sort();
    },
    async close() {
      store.destroy();
      await fsp.rm(scratchDir, { recursive: true, force: true });
    },
  };
});

describe('S3BlobStore', () => {
  it('writes under its prefix and leaves other prefixes of the bucket alone', async () => {
    const { store, bucket, scratchDir } = await freshStore('tenant-a/');
    const other = new S3BlobStore(s3.settings, { bucket, prefix: 'tenant-b/' }, { credentials });
    try {
      await store.putBuffer('datasets/d/media/a.jpg', Buffer.from('a'));
      await other.putBuffer('datasets/d/media/a.jpg', Buffer.from('b'));
      expect((await allKeys(bucket)).sort()).toEqual(['tenant-a/datasets/d/media/a.jpg', 'tenant-b/datasets/d/media/a.jpg']);
      await store.deletePrefix('datasets/d/');
      expect(await allKeys(bucket)).toEqual(['tenant-b/datasets/d/media/a.jpg']);
      expect((await readAll(await other.get('datasets/d/media/a.jpg'))).toString()).toBe('b');
    } finally {
      store.destroy();
      other.destroy();
      await fsp.rm(scratchDir, { recursive: true, force: true });
    }
  });

  it('works without a prefix', async () => {
    const { store, bucket, scratchDir } = await freshStore('');
    try {
      await store.putBuffer('datasets/d/thumbs/a.jpg', Buffer.from('a'));
      expect(await allKeys(bucket)).toEqual(['datasets/d/thumbs/a.jpg']);
      expect(await store.withLocalFile('datasets/d/thumbs/a.jpg', (file) => fsp.readFile(file, 'utf8'))).toBe('a');
    } finally {
      store.destroy();
      await fsp.rm(scratchDir, { recursive: true, force: true });
    }
  });

  it('refuses a prefix that does not end in a slash', () => {
    expect(() => new S3BlobStore(s3.settings, { bucket: 'b', prefix: 'tenant' }, { credentials })).toThrow(/end in '\/'/);
  });

  it('uploads a file larger than one part as a multipart upload, and consumes it', async () => {
    const { store, scratchDir } = await freshStore('big/');
    const data = randomBytes(17 * 1024 * 1024 + 123);
    const source = path.join(scratchDir, 'upload.bin');
    await fsp.writeFile(source, data);
    try {
      await store.putFile('datasets/d/media/video.mp4', source);
      expect(fs.existsSync(source)).toBe(false);
      const back = await readAll(await store.get('datasets/d/media/video.mp4'));
      expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
      const tail = await readAll(await store.get('datasets/d/media/video.mp4', { start: data.length - 100, end: data.length - 1 }));
      expect(tail).toEqual(data.subarray(data.length - 100));
      // The extension survives into the temporary copy (decoders may go by it).
      expect(await store.withLocalFile('datasets/d/media/video.mp4', async (file) => path.extname(file))).toBe('.mp4');
    } finally {
      store.destroy();
      await fsp.rm(scratchDir, { recursive: true, force: true });
    }
  });

  it('keeps the local file when the upload fails, and reports a missing bucket', async () => {
    const scratchDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'vizdex-s3-scratch-'));
    const store = new S3BlobStore(s3.settings, { bucket: 'no-such-bucket', prefix: '' }, { scratchDir, credentials });
    const source = path.join(scratchDir, 'upload.bin');
    await fsp.writeFile(source, 'x');
    try {
      await expect(store.putFile('datasets/d/media/a.jpg', source)).rejects.toThrow(/bucket/i);
      expect(fs.existsSync(source)).toBe(true);
      const error = await store.get('datasets/d/media/a.jpg').catch((e: unknown) => e as NodeJS.ErrnoException);
      expect((error as NodeJS.ErrnoException).code).not.toBe('ENOENT');
    } finally {
      store.destroy();
      await fsp.rm(scratchDir, { recursive: true, force: true });
    }
  });
});
