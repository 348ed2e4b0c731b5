import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../fixtures/media.js';
import { datasetTasks, readyDataset, type UploadFile } from '../helpers/flows.js';
import { startTestApp, type TestApp } from '../helpers/harness.js';

/**
 * The k-NN graph of a big dataset is computed in shards (any worker takes any shard) and merged:
 * the result must be exactly what one process computes. Shards of 7 rows make a small dataset "big".
 */
describe('sharded k-NN indexing', () => {
  let whole: TestApp;
  let sharded: TestApp;
  let files: UploadFile[];

  beforeAll(async () => {
    files = [];
    for (let seed = 1; seed <= 12; seed++) {
      const image = await makeImage({ width: 240, height: 180, seed: 4000 + seed });
      files.push({ name: `photo_${seed}.jpg`, data: image });
      if (seed % 3 === 0) files.push({ name: `photo_${seed}_small.jpg`, data: await sharp(image).resize(160).jpeg({ quality: 80 }).toBuffer() });
    }
    whole = await startTestApp();
    sharded = await startTestApp({ env: { VIZDEX_KNN_SHARD_SIZE: '7' } });
  });
  afterAll(async () => {
    await whole?.close();
    await sharded?.close();
  });

  /** What indexing decided, keyed by file name so two datasets compare. */
  const groupings = async (t: TestApp, datasetId: string) => {
    const db = t.container.db;
    const names = new Map((await db.selectFrom('media').select(['id', 'file_name']).where('dataset_id', '=', datasetId).execute()).map((m) => [m.id, m.file_name]));
    const issues = await db.selectFrom('media_issues').select(['media_id', 'issue_type', 'threshold', 'group_id']).where('dataset_id', '=', datasetId).execute();
    const memberships = await db.selectFrom('media_clusters').select(['media_id', 'level', 'cluster_id']).where('dataset_id', '=', datasetId).execute();
    const groupOf = (rows: { media_id: string; key: string; group: string | null }[]) => {
      const groups = new Map<string, string[]>();
      for (const row of rows) groups.set(`${row.key}/${row.group}`, [...(groups.get(`${row.key}/${row.group}`) ?? []), names.get(row.media_id)!].sort());
      return [...groups.values()].map((g) => g.join(',')).sort();
    };
    return {
      duplicates: groupOf(issues.filter((i) => i.issue_type === 'duplicates').map((i) => ({ media_id: i.media_id, key: String(i.threshold), group: i.group_id }))),
      outliers: issues.filter((i) => i.issue_type === 'outliers').map((i) => names.get(i.media_id)).sort(),
      clusters: groupOf(memberships.map((m) => ({ media_id: m.media_id, key: String(m.level), group: m.cluster_id }))),
    };
  };

  it('gives the same duplicates, outliers and clusters as one process, through shard and merge jobs', async () => {
    const wholeOwner = await (await whole.createUser('owner@example.com')).headers();
    const shardedOwner = await (await sharded.createUser('owner@example.com')).headers();
    // Which jobs ran, observed at the queue (the real queue still runs them).
    const enqueued: string[] = [];
    const enqueue = sharded.container.queue.enqueue.bind(sharded.container.queue);
    sharded.container.queue.enqueue = (name, payload, options) => {
      enqueued.push(name);
      return enqueue(name, payload, options);
    };
    const wholeId = await readyDataset(whole.app, wholeOwner, files);
    const shardedId = await readyDataset(sharded.app, shardedOwner, files);
    expect(enqueued.filter((name) => name === 'dataset.knn-shard')).toHaveLength(3);
    expect(enqueued.filter((name) => name === 'dataset.knn-merge').length).toBeGreaterThanOrEqual(1);

    const expected = await groupings(whole, wholeId);
    expect(expected.duplicates.some((g) => g.includes('photo_3.jpg,photo_3_small.jpg'))).toBe(true);
    expect(await groupings(sharded, shardedId)).toEqual(expected);

    const [task] = await datasetTasks(sharded.app, shardedOwner, shardedId);
    expect(task).toMatchObject({ task_type: 'DATASET_CREATION', status: 'COMPLETED' });
    // The shards' scratch files are gone once the merge job is over (it removes them after READY).
    await sharded.container.queue.drained(20);
    expect(await sharded.container.blobs.exists(`datasets/${shardedId}/index/knn-shards/${task!.task_id as string}/0.bin`)).toBe(false);
  });
});
