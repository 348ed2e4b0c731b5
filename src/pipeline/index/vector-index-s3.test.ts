import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3RVER_ACCESS_KEY_ID, startTestS3, type TestS3 } from '../../../test/helpers/s3.js';
import { S3BlobStore } from '../../storage/s3-blob-store.js';
import { VectorIndex, type VectorIndexMode } from './vector-index.js';
import { randomUnitRows } from '../../../test/fixtures/vectors.js';

describe('VectorIndex saved to and loaded from S3', () => {
  let s3: TestS3;
  let store: S3BlobStore;
  let scratchDir: string;

  beforeAll(async () => {
    s3 = await startTestS3();
    await s3.createBucket('indexes');
    scratchDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'vizdex-index-s3-'));
    store = new S3BlobStore(
      s3.settings,
      { bucket: 'indexes', prefix: 'vizdex/' },
      { scratchDir, credentials: { accessKeyId: S3RVER_ACCESS_KEY_ID, secretAccessKey: 'S3RVER' } },
    );
  });

  afterAll(async () => {
    store?.destroy();
    await s3?.close();
    await fsp.rm(scratchDir, { recursive: true, force: true });
  });

  it.each<VectorIndexMode>(['exact', 'hnsw'])('%s: the reloaded index answers searches as the original does', async (mode) => {
    const d = 32;
    const v = randomUnitRows(600, d, 7);
    const queries = randomUnitRows(20, d, 99);
    const index = await VectorIndex.build(v, d, { mode, quantization: 'f32' });
    const key = `datasets/ds-${mode}/index/vectors.index`;

    await index.saveToStore(store, key);
    expect(await store.exists(key)).toBe(true);
    const loaded = await VectorIndex.loadFromStore(store, key, { vectors: v });

    expect(loaded.mode).toBe(mode);
    expect(loaded.size).toBe(600);
    expect(loaded.dimensions).toBe(d);
    const before = index.search(queries, 5);
    const after = loaded.search(queries, 5);
    expect(Array.from(after.neighbors)).toEqual(Array.from(before.neighbors));
    for (let i = 0; i < before.similarities.length; i++) expect(after.similarities[i]).toBeCloseTo(before.similarities[i]!, 5);
    // The downloaded copy is gone once loaded (the index was read into memory, not mapped).
    expect(await fsp.readdir(scratchDir)).toEqual([]);
  });
});
