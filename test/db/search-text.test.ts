import fs from 'node:fs';
import { sql, type Insertable, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest, openPostgres, openSqlite } from '../../src/db/connect.js';
import { DatasetsRepository } from '../../src/db/datasets.repository.js';
import { dialectOf } from '../../src/db/dialect.js';
import { ExploreRepository, NO_FILTER, type MediaFilter } from '../../src/db/explore.repository.js';
import type { Database, MediaTable, MediaType } from '../../src/db/schema.js';
import { documentBody, MAX_QUERY_TOKENS, SearchTextRepository, searchTokens } from '../../src/db/search-text.repository.js';
import { datasetRow, freshTestDatabaseUrl, postgresReachable } from '../helpers/database.js';
import { makeTempDir } from '../helpers/harness.js';

// VQL `text` `fts`: the same cases on the embedded SQLite database (FTS5) and on PostgreSQL (tsvector).
const required = Boolean(process.env.VIZDEX_TEST_POSTGRES_URL) || process.env.VIZDEX_TEST_MODE === 'scaleout';
const reachable = await postgresReachable();
if (required && !reachable) throw new Error('PostgreSQL for the tests (VIZDEX_TEST_POSTGRES_URL) does not answer');

const NOW = '2024-05-01T12:00:00.000Z';

describe('search text normalisation', () => {
  it('splits on anything not a letter or digit, lowercases, removes diacritics', () => {
    expect(searchTokens('Cat_001.JPG')).toEqual(['cat', '001', 'jpg']);
    expect(searchTokens('  Crème-BRÛLÉE à Zürich! ')).toEqual(['creme', 'brulee', 'a', 'zurich']);
    expect(searchTokens('ﬁle ½ İstanbul')).toEqual(['file', '1', '2', 'istanbul']);
    expect(searchTokens('%%__ -- ...')).toEqual([]);
    expect(searchTokens('dog DOG Dog')).toEqual(['dog']);
    expect(searchTokens('猫咪 кот')).toEqual(['猫咪', 'кот']);
  });

  it('documents also keep the parts of words where case or letters/digits change', () => {
    expect(documentBody(['IMG0042_DogPark.JPG'])).toBe('img0042 img 0042 dogpark dog park jpg');
    expect(documentBody(['HTTPServer.log', null, undefined, ''])).toBe('httpserver http server log');
  });

  it('cuts very long tokens and ignores tokens past the limit', () => {
    expect(searchTokens('x'.repeat(100_000))).toEqual(['x'.repeat(100)]);
    expect(searchTokens(Array.from({ length: 100 }, (_, i) => `w${i}`).join(' '))).toHaveLength(MAX_QUERY_TOKENS);
  });
});

interface Engine {
  name: string;
  open(): Promise<{ db: Kysely<Database>; close(): Promise<void> }>;
}

const engines: Engine[] = [
  {
    name: 'SQLite (FTS5)',
    async open() {
      const dir = makeTempDir();
      const db = openSqlite(dir);
      return {
        db,
        async close() {
          await db.destroy();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
];
if (reachable) {
  engines.push({
    name: 'PostgreSQL (tsvector)',
    async open() {
      const database = await freshTestDatabaseUrl();
      const db = openPostgres(database.url);
      return {
        db,
        async close() {
          await db.destroy();
          await database.drop();
        },
      };
    },
  });
} else {
  console.warn('search text: PostgreSQL for the tests does not answer; only SQLite is tested');
}

describe.each(engines)('full-text search on $name', (engine) => {
  let db: Kysely<Database>;
  let close: () => Promise<void>;
  let explore: ExploreRepository;
  let searchText: SearchTextRepository;
  let labelSeq = 0;

  beforeAll(async () => {
    ({ db, close } = await engine.open());
    await migrateToLatest(db);
    await db.insertInto('users').values({ id: 'u1', email: 'owner@example.com', name: 'Owner', password_hash: null, is_admin: 1, created_at: NOW }).execute();
    explore = new ExploreRepository(db);
    searchText = new SearchTextRepository(db);
  });
  afterAll(async () => close?.());

  async function newDataset(id: string): Promise<void> {
    await new DatasetsRepository(db).insertWithOwner(datasetRow(id));
  }

  async function addMedia(datasetId: string, id: string, fileName: string, extra: Partial<Insertable<MediaTable>> = {}): Promise<void> {
    await db
      .insertInto('media')
      .values({
        id,
        dataset_id: datasetId,
        transaction_id: null,
        media_type: 'image',
        status: 'READY',
        original_media_uri: fileName,
        file_name: fileName,
        blob_key: `blobs/${id}`,
        file_size: 10,
        sha256: `sha-${id}`,
        created_at: NOW,
        ...extra,
      })
      .execute();
  }

  async function addLabel(datasetId: string, mediaId: string, label: string): Promise<string> {
    const id = `label-${++labelSeq}`;
    await db.insertInto('media_labels').values({ id, dataset_id: datasetId, media_id: mediaId, label, source: 'User', confidence: null, import_id: null, created_at: NOW }).execute();
    return id;
  }

  /** What explore's filter finds for the text, as the explore service runs it. */
  async function search(datasetId: string, text: string, mediaTypes: MediaType[] = ['image', 'video_frame']): Promise<string[]> {
    const filter: MediaFilter = { ...NO_FILTER, mediaTypes, textContains: [text] };
    await explore.prepareFilter(datasetId, filter);
    const all = await db.selectFrom('media').select('id').where('dataset_id', '=', datasetId).execute();
    return [...(await explore.filterIds(datasetId, all.map((r) => r.id), filter))].sort();
  }

  async function documentCount(datasetId: string): Promise<number> {
    const row = await db.selectFrom('media_search').select((eb) => eb.fn.countAll<number>().as('n')).where('dataset_id', '=', datasetId).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  it('finds media by the words of their file name and path, as prefixes, case-insensitively', async () => {
    await newDataset('names');
    await addMedia('names', 'cat', 'Cat_001.JPG', { original_media_uri: 's3://bucket/holidays/2023/Cat_001.JPG' });
    await addMedia('names', 'dog', 'IMG0042_DogPark.png', { original_media_uri: 's3://bucket/walks/IMG0042_DogPark.png' });
    await addMedia('names', 'other', 'concatenate.jpg');

    expect(await search('names', 'cat')).toEqual(['cat']);
    expect(await search('names', 'CAT_001.jpg')).toEqual(['cat']);
    expect(await search('names', 'ca')).toEqual(['cat']);
    expect(await search('names', '001')).toEqual(['cat']);
    expect(await search('names', 'jpg')).toEqual(['cat', 'other']);
    expect(await search('names', 'holidays 2023')).toEqual(['cat']);
    expect(await search('names', 'bucket')).toEqual(['cat', 'dog']);
    // Words are matched from their start: `at` is not a word of `Cat_001.JPG`, nor `cat` one of `concatenate`.
    expect(await search('names', 'at')).toEqual([]);
    expect(await search('names', 'concat')).toEqual(['other']);
    // Parts of a word where case or letters/digits change are words too.
    for (const text of ['dogpark', 'DogPark', 'dog park', 'park', 'img0042', '0042', 'IMG_0042']) expect(await search('names', text), text).toEqual(['dog']);
    expect(await search('names', 'parkdog')).toEqual([]);
  });

  it('finds media by caption and by label, every word required (AND), in any order', async () => {
    await newDataset('annotated');
    await addMedia('annotated', 'a', 'a.jpg', { caption: 'A brown dog chasing a red frisbee on the beach' });
    await addMedia('annotated', 'b', 'b.jpg', { caption: 'A cat asleep on a red sofa' });
    await addMedia('annotated', 'c', 'c.jpg');
    await addLabel('annotated', 'a', 'dog');
    await addLabel('annotated', 'c', 'golden_retriever');
    await addLabel('annotated', 'c', 'Dog');

    expect(await search('annotated', 'frisbee')).toEqual(['a']);
    expect(await search('annotated', 'red')).toEqual(['a', 'b']);
    expect(await search('annotated', 'red sofa')).toEqual(['b']);
    expect(await search('annotated', 'sofa red')).toEqual(['b']);
    expect(await search('annotated', 'chas fris')).toEqual(['a']);
    expect(await search('annotated', 'dog')).toEqual(['a', 'c']);
    expect(await search('annotated', 'retriever')).toEqual(['c']);
    expect(await search('annotated', 'golden_retriever')).toEqual(['c']);
    expect(await search('annotated', 'dog sofa')).toEqual([]);
    // Several fts terms in one filter are ANDed as well.
    const filter: MediaFilter = { ...NO_FILTER, textContains: ['red', 'beach'] };
    await explore.prepareFilter('annotated', filter);
    expect([...(await explore.filterIds('annotated', ['a', 'b', 'c'], filter))]).toEqual(['a']);
  });

  it('finds an image by the labels of its objects; objects by their own label', async () => {
    await newDataset('boxes');
    await addMedia('boxes', 'street', 'street.jpg');
    await addMedia('boxes', 'street:obj:1', 'street.jpg', { media_type: 'object', parent_media_id: 'street', original_media_uri: 'street.jpg#bbox=1,2,3,4' });
    await addMedia('boxes', 'street:obj:2', 'street.jpg', { media_type: 'object', parent_media_id: 'street', original_media_uri: 'street.jpg#bbox=5,6,7,8' });
    await addLabel('boxes', 'street:obj:1', 'zebra');
    await addLabel('boxes', 'street:obj:2', 'bicycle');

    expect(await search('boxes', 'zebra')).toEqual(['street']);
    expect(await search('boxes', 'zebra', ['object'])).toEqual(['street:obj:1']);
    expect(await search('boxes', 'street', ['object'])).toEqual(['street:obj:1', 'street:obj:2']);
    // A box removed: its label no longer finds the image.
    await db.deleteFrom('media').where('id', '=', 'street:obj:1').execute();
    expect(await search('boxes', 'zebra')).toEqual([]);
    expect(await search('boxes', 'bicycle')).toEqual(['street']);
  });

  it('ignores diacritics and case on both sides', async () => {
    await newDataset('accents');
    await addMedia('accents', 'e1', 'Crème_Brûlée.jpg', { caption: 'Dessert à Zürich' });
    await addMedia('accents', 'e2', 'creme-caramel.jpg');
    expect(await search('accents', 'creme')).toEqual(['e1', 'e2']);
    expect(await search('accents', 'CRÈME brulee')).toEqual(['e1']);
    expect(await search('accents', 'zuri')).toEqual(['e1']);
    expect(await search('accents', 'ZÜRICH')).toEqual(['e1']);
    expect(await search('accents', 'dessert a')).toEqual(['e1']);
  });

  it('text without a letter or digit matches nothing; search syntax in the text is only words', async () => {
    await newDataset('syntax');
    await addMedia('syntax', 's1', '50%_off.jpg');
    await addMedia('syntax', 's2', '50xxoff.jpg');
    await addMedia('syntax', 's3', 'cat OR dog.jpg');
    for (const text of ['%', '%%__', '---', '"', "'", '*', ':*', '!()&|']) expect(await search('syntax', text), text).toEqual([]);
    expect(await search('syntax', '50%_off')).toEqual(['s1']);
    expect(await search('syntax', '50')).toEqual(['s1', 's2']);
    // FTS5 / tsquery operators are just words of the text: no error, no OR.
    expect(await search('syntax', 'cat OR dog')).toEqual(['s3']);
    expect(await search('syntax', '"cat" NOT dog')).toEqual([]);
    expect(await search('syntax', 'off | dog')).toEqual([]);
    expect(await search('syntax', 'NEAR(cat dog) * ^off')).toEqual([]);
    expect(await search('syntax', "cat:* & !dog'")).toEqual(['s3']);
    expect(await search('syntax', 'x'.repeat(100_000))).toEqual([]);
  });

  it('sees a changed caption, file name or label at the next search, and refresh() recomputes on demand', async () => {
    await newDataset('changes');
    await addMedia('changes', 'm1', 'one.jpg', { caption: 'a sunny meadow' });
    await addMedia('changes', 'm2', 'two.jpg');
    expect(await search('changes', 'meadow')).toEqual(['m1']);

    await db.updateTable('media').set({ caption: 'a snowy mountain' }).where('id', '=', 'm1').execute();
    expect(await search('changes', 'meadow')).toEqual([]);
    expect(await search('changes', 'mountain')).toEqual(['m1']);

    const label = await addLabel('changes', 'm2', 'tractor');
    expect(await search('changes', 'tractor')).toEqual(['m2']);
    await db.updateTable('media_labels').set({ label: 'combine harvester' }).where('id', '=', label).execute();
    expect(await search('changes', 'tractor')).toEqual([]);
    expect(await search('changes', 'harvester')).toEqual(['m2']);
    await db.deleteFrom('media_labels').where('id', '=', label).execute();
    expect(await search('changes', 'harvester')).toEqual([]);

    await db.updateTable('media').set({ file_name: 'renamed.jpg', original_media_uri: 'renamed.jpg' }).where('id', '=', 'm2').execute();
    expect(await search('changes', 'renamed')).toEqual(['m2']);
    expect(await search('changes', 'two')).toEqual([]);

    // Writes that do not touch the text keep the documents (no rebuild at the next search).
    await db.updateTable('media').set({ uniqueness_score: 0.5, caption: 'a snowy mountain' }).where('dataset_id', '=', 'changes').where('id', '=', 'm1').execute();
    expect(await searchText.ensureDocuments('changes')).toBe(0);

    // A document changed behind the triggers' back (as a restore might): refresh() puts it right.
    await db.updateTable('media_search').set({ body: 'stale' }).where('media_id', '=', 'm1').execute();
    expect(await search('changes', 'stale')).toEqual(['m1']);
    await searchText.refresh('changes', ['m1', 'gone']);
    expect(await search('changes', 'stale')).toEqual([]);
    expect(await search('changes', 'snowy')).toEqual(['m1']);
    expect(await searchText.documentOf('m1')).toBe('one jpg a snowy mountain');
  });

  it('only READY media have documents; deleted media lose theirs', async () => {
    await newDataset('lifecycle');
    await addMedia('lifecycle', 'p', 'pending_kite.jpg', { status: 'PENDING' });
    await addMedia('lifecycle', 'f', 'failed_kite.jpg', { status: 'FAILED' });
    await addMedia('lifecycle', 'r', 'ready_kite.jpg');
    expect(await search('lifecycle', 'kite')).toEqual(['r']);
    expect(await documentCount('lifecycle')).toBe(1);

    await db.updateTable('media').set({ status: 'READY' }).where('id', '=', 'p').execute();
    expect(await search('lifecycle', 'kite')).toEqual(['p', 'r']);

    await db.deleteFrom('media').where('id', '=', 'r').execute();
    expect(await documentCount('lifecycle')).toBe(1);
    expect(await search('lifecycle', 'kite')).toEqual(['p']);
    await searchText.refresh('lifecycle', ['r']);
    expect(await documentCount('lifecycle')).toBe(1);
  });

  it('ensureDocuments builds what is missing once, in batches, and is then a no-op', async () => {
    await newDataset('bulk');
    const n = 1_234;
    // Shard letters no other word of the documents starts with.
    const SHARDS = ['h', 'k', 'm', 'n', 'q', 'u', 'v'];
    for (let i = 0; i < n; i += 400) {
      const rows = Array.from({ length: Math.min(400, n - i) }, (_, k) => ({
        id: `bulk-${i + k}`,
        dataset_id: 'bulk',
        transaction_id: null,
        media_type: 'image' as const,
        status: 'READY' as const,
        original_media_uri: `shard_${SHARDS[(i + k) % 7]}/frame_${i + k}.jpg`,
        file_name: `frame_${i + k}.jpg`,
        blob_key: `blobs/bulk-${i + k}`,
        file_size: 10,
        sha256: `sha-bulk-${i + k}`,
        created_at: NOW,
      }));
      await db.insertInto('media').values(rows).execute();
    }
    expect(await searchText.ensureDocuments('bulk')).toBe(n);
    expect(await searchText.ensureDocuments('bulk')).toBe(0);
    expect(await documentCount('bulk')).toBe(n);
    // Two searches building at once: each document is built once.
    await db.deleteFrom('media_search').where('dataset_id', '=', 'bulk').execute();
    await Promise.all([searchText.ensureDocuments('bulk'), searchText.ensureDocuments('bulk')]);
    expect(await documentCount('bulk')).toBe(n);
    expect(await search('bulk', 'frame_1000')).toEqual(['bulk-1000']);
    expect((await search('bulk', 'shard_n frame')).length).toBe(Math.floor((n - 4) / 7) + 1);
  });

  it('searches only the dataset asked for; deleting a dataset removes its documents from the index', async () => {
    await newDataset('left');
    await newDataset('right');
    await addMedia('left', 'l1', 'platypus.jpg');
    await addMedia('right', 'r1', 'platypus.jpg');
    expect(await search('left', 'platypus')).toEqual(['l1']);
    expect(await search('right', 'platypus')).toEqual(['r1']);

    await new DatasetsRepository(db).delete('right');
    expect(await documentCount('right')).toBe(0);
    expect(await search('left', 'platypus')).toEqual(['l1']);
    if (dialectOf(db) === 'sqlite') {
      // The FTS5 index itself no longer holds the deleted documents, and agrees with its content table.
      const { rows } = await sql<{ n: number }>`select count(*) as n from media_search_fts where media_search_fts match 'platypus'`.execute(db);
      expect(Number(rows[0]!.n)).toBe(1);
      await sql`insert into media_search_fts(media_search_fts, rank) values ('integrity-check', 1)`.execute(db);
    }
  });
});
