import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS, migrateToLatest, openPostgres } from '../../src/db/connect.js';
import { DatasetsRepository } from '../../src/db/datasets.repository.js';
import { ExploreRepository, NO_FILTER } from '../../src/db/explore.repository.js';
import { IndexRepository } from '../../src/db/index.repository.js';
import { MediaRepository, type MediaFacts, type NewMediaRow } from '../../src/db/media.repository.js';
import type { Database } from '../../src/db/schema.js';
import { OperationLockedError, TasksRepository } from '../../src/db/tasks.repository.js';
import type { JobHandler, JobHandlers, JobName } from '../../src/jobs/job-queue.js';
import { SqlJobQueue } from '../../src/jobs/sql-job-queue.js';
import { datasetRow, freshTestDatabaseUrl, postgresReachable, type TestDatabase } from '../helpers/database.js';

// What only PostgreSQL can get wrong: several processes at once, and the types it spells differently.
// Runs whenever the test server answers; an explicitly configured server (or scale-out mode) must answer.
const required = Boolean(process.env.VIZDEX_TEST_POSTGRES_URL) || process.env.VIZDEX_TEST_MODE === 'scaleout';
const reachable = await postgresReachable();
if (required && !reachable) throw new Error('PostgreSQL for the tests (VIZDEX_TEST_POSTGRES_URL) does not answer');

const NOW = '2024-05-01T12:00:00.000Z';

function mediaRow(datasetId: string, id: string, fileName = `${id}.jpg`): NewMediaRow {
  return {
    id,
    dataset_id: datasetId,
    transaction_id: null,
    media_type: 'image',
    status: 'PENDING',
    original_media_uri: fileName,
    file_name: fileName,
    blob_key: `blobs/${id}`,
    file_size: 5_000_000_000,
    sha256: `sha-${id}`,
    created_at: NOW,
  };
}

function facts(vector: Float32Array | null, issues: MediaFacts['issues'] = []): MediaFacts {
  return { width: 4, height: 3, format: 'jpeg', thumbKey: null, durationSeconds: null, quality: null, issues, vector };
}

describe.skipIf(!reachable)('PostgreSQL', () => {
  describe('migrations', () => {
    it('four processes migrating a fresh database at once: one migrates, all succeed, each migration runs once', async () => {
      const database = await freshTestDatabaseUrl();
      const dbs = Array.from({ length: 4 }, () => openPostgres(database.url));
      try {
        await Promise.all(dbs.map((db) => migrateToLatest(db)));
        const db = dbs[0]!;
        const { rows } = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db);
        expect(rows.map((r) => r.name)).toEqual(Object.keys(MIGRATIONS).sort());
        expect(rows.length).toBeGreaterThanOrEqual(6);
        // Running it again is a no-op.
        await migrateToLatest(db);
      } finally {
        await Promise.all(dbs.map((db) => db.destroy()));
        await database.drop();
      }
    });
  });

  describe('text order', () => {
    it('is byte by byte, as on SQLite, even in a database whose default collation is a language\'s', async () => {
      const linguistic = await freshTestDatabaseUrl({ linguisticCollation: true });
      const ldb = openPostgres(linguistic.url);
      try {
        await migrateToLatest(ldb);
        await ldb.insertInto('users').values({ id: 'u1', email: 'owner@example.com', name: 'Owner', password_hash: null, is_admin: 0, created_at: NOW }).execute();
        const names = ['b', 'B', 'a', '_x', 'A', 'Z', 'a b', 'ab', '1', 'é'];
        const repo = new DatasetsRepository(ldb);
        for (const [i, name] of names.entries()) await repo.insertWithOwner(datasetRow(`d${i}`, name));
        const listed = await repo.listForUser('u1', { sortBy: 'display_name', includeHidden: false });
        expect(listed.map((d) => d.display_name)).toEqual([...names].sort());
        // Keyset pages (`id > last`) agree with JavaScript's order of the same ids.
        const ids = ['Media-b', 'media-a', 'media_c', 'media-B', 'media:1'];
        await new MediaRepository(ldb).insertMany(ids.map((id) => mediaRow('d0', id)));
        const pages: string[] = [];
        for (let after: string | null = null; ; ) {
          const page = await new MediaRepository(ldb).listPendingIds('d0', after, 2);
          if (page.length === 0) break;
          pages.push(...page);
          after = page[page.length - 1]!;
        }
        expect(pages).toEqual([...ids].sort());
        if (!linguistic.linguistic) console.warn('text order: the test server offers no linguistic collation; checked against its default');
      } finally {
        await ldb.destroy();
        await linguistic.drop();
      }
    });
  });

  describe('on a migrated database', () => {
    let database: TestDatabase;
    let db: Kysely<Database>;

    beforeAll(async () => {
      database = await freshTestDatabaseUrl();
      db = openPostgres(database.url);
      await migrateToLatest(db);
      await db.insertInto('users').values({ id: 'u1', email: 'owner@example.com', name: 'Owner', password_hash: null, is_admin: 1, created_at: NOW }).execute();
    });
    afterAll(async () => {
      await db?.destroy();
      await database?.drop();
    });

    async function newDataset(id: string, displayName = id): Promise<void> {
      await new DatasetsRepository(db).insertWithOwner(datasetRow(id, displayName));
    }

    it('stores vectors as bytea and reads them back bit for bit; bigint and count(*) come back as numbers', async () => {
      await newDataset('vectors');
      const media = new MediaRepository(db);
      await media.insertMany([mediaRow('vectors', 'v1'), mediaRow('vectors', 'v2')]);
      const v1 = Float32Array.from([0.1, -0.2, Math.PI, 1e-30, -0, Number.MIN_VALUE]);
      const v2 = Float32Array.from([1, 2, 3, 4, 5, 6]);
      // A view into a larger buffer, as vectors sliced out of a batch matrix are.
      const backing = new Float32Array(20);
      backing.set(v2, 7);
      await media.recordOutcomes(
        'vectors',
        [
          { id: 'v1', ok: true, ...facts(v1) },
          { id: 'v2', ok: true, ...facts(backing.subarray(7, 13)) },
        ],
        [],
        'model-a',
        NOW,
      );

      const loaded = await new IndexRepository(db).loadVectors('vectors');
      expect(loaded.mediaIds).toEqual(['v1', 'v2']);
      expect(loaded.dimensions).toBe(6);
      expect(Buffer.from(loaded.vectors.buffer, loaded.vectors.byteOffset, loaded.vectors.byteLength)).toEqual(
        Buffer.concat([Buffer.from(v1.buffer), Buffer.from(v2.buffer)]),
      );
      expect(await new ExploreRepository(db).vectorOf('vectors', 'v1')).toEqual({ modelId: 'model-a', vector: v1 });

      const { rows: columns } = await sql<{ data_type: string }>`select data_type from information_schema.columns where table_name = 'embeddings' and column_name = 'vector'`.execute(db);
      expect(columns).toEqual([{ data_type: 'bytea' }]);

      const row = await db.selectFrom('media').select('file_size').where('id', '=', 'v1').executeTakeFirstOrThrow();
      expect(row.file_size).toBe(5_000_000_000);
      expect(await new IndexRepository(db).countVectors('vectors')).toBe(2);
      expect(await media.counts('vectors')).toEqual({ pending: 0, ready: 2, failed: 0, readyByType: { image: 2, video: 0, video_frame: 0, object: 0 } });
    });

    it('upload anchors round-trip their vector', async () => {
      await newDataset('anchors');
      const explore = new ExploreRepository(db);
      const vector = Float32Array.from([0.25, -0.5, 0.75]);
      await explore.insertUploadAnchor({ id: 'a1', datasetId: 'anchors', modelId: 'm', vector, createdBy: 'u1', createdAt: NOW, expiresAt: '2999-01-01T00:00:00.000Z' });
      expect(await explore.findUploadAnchor('anchors', 'a1', NOW)).toEqual({ modelId: 'm', vector });
    });

    it('a retried batch inserts its derived media (and their vectors and issues) once: inserted rows are counted on PostgreSQL too', async () => {
      await newDataset('derived');
      const media = new MediaRepository(db);
      await media.insertMany([mediaRow('derived', 'video')]);
      const frame = { row: { ...mediaRow('derived', 'video:frame:1'), media_type: 'video_frame' as const, parent_media_id: 'video' }, facts: facts(Float32Array.from([1, 0]), [{ type: 'dark', confidence: 0.7 }]) };
      await media.recordOutcomes('derived', [{ id: 'video', ok: true, ...facts(null) }], [frame], 'm', NOW);
      await media.recordOutcomes('derived', [{ id: 'video', ok: true, ...facts(null) }], [frame], 'm', NOW);
      const issues = await db.selectFrom('media_issues').select('issue_type').where('media_id', '=', 'video:frame:1').execute();
      expect(issues).toEqual([{ issue_type: 'dark' }]);
      expect(await new IndexRepository(db).countVectors('derived')).toBe(1);
    });

    it('a second lock-holding task is OperationLockedError naming the holder (unique violation 23505)', async () => {
      await newDataset('locked');
      const tasks = new TasksRepository(db);
      const task = (id: string, holdsLock: boolean) => ({ id, datasetId: 'locked', taskType: 'REINDEX' as const, createdBy: 'u1', createdAt: NOW, statusMessage: '', holdsLock });
      await tasks.insertNew(task('t1', true));
      const second = await tasks.insertNew(task('t2', true)).catch((error: unknown) => error);
      expect(second).toBeInstanceOf(OperationLockedError);
      expect((second as OperationLockedError).activeTask.id).toBe('t1');
      // Tasks that do not hold the lock are not affected by it.
      await tasks.insertNew(task('t3', false));
      // Concurrent attempts: exactly one wins.
      await newDataset('raced');
      const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => tasks.insertNew({ ...task(`r${i}`, true), datasetId: 'raced' })));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof OperationLockedError)).toBe(true);
    });

    it('keeps thresholds and scores as doubles (PostgreSQL `real` is 4 bytes): read back exactly, found by the exact threshold', async () => {
      await newDataset('dupes');
      await new MediaRepository(db).insertMany([mediaRow('dupes', 'd1'), mediaRow('dupes', 'd2')]);
      await new IndexRepository(db).saveAnalysis('dupes', {
        perMedia: [{ mediaId: 'd1', uniqueness: 1 / 3, nnSimilarity: 0.9712345678901234 }],
        issues: ['d1', 'd2'].map((mediaId) => ({ mediaId, issueType: 'duplicates' as const, confidence: 0.97, groupId: 'g', threshold: 0.96 })),
        clusters: [],
        memberships: [],
      });
      expect(await new ExploreRepository(db).duplicateGroup('dupes', 'd1', 0.96)).toEqual(['d1', 'd2']);
      const row = await db.selectFrom('media').select(['uniqueness_score', 'nn_similarity']).where('id', '=', 'd1').executeTakeFirstOrThrow();
      expect(row).toEqual({ uniqueness_score: 1 / 3, nn_similarity: 0.9712345678901234 });
    });

    it('text filters match words: % and _ in the search text are not wildcards', async () => {
      await newDataset('like');
      const names = ['50%_off.jpg', '50xxoff.jpg', 'UPPER.JPG'];
      await new MediaRepository(db).insertMany(names.map((name, i) => ({ ...mediaRow('like', `l${i}`, name), status: 'READY' as const })));
      const explore = new ExploreRepository(db);
      const ids = ['l0', 'l1', 'l2'];
      await explore.prepareFilter('like', { ...NO_FILTER, textContains: ['upper'] });
      expect(await explore.filterIds('like', ids, { ...NO_FILTER, textContains: ['50%_off'] })).toEqual(new Set(['l0']));
      expect(await explore.filterIds('like', ids, { ...NO_FILTER, textContains: ['upper'] })).toEqual(new Set(['l2']));
    });

    it('two job queues on one database (as two processes) run each of 50 jobs exactly once', async () => {
      const runs = new Map<string, number>();
      const byQueue = [0, 0];
      const handlersFor = (queueIndex: number): JobHandlers => {
        const handler: JobHandler<JobName> = {
          run: async (payload) => {
            const id = (payload as { mediaIds: string[] }).mediaIds[0]!;
            runs.set(id, (runs.get(id) ?? 0) + 1);
            byQueue[queueIndex]! += 1;
            await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 8));
          },
          onFailed: async () => undefined,
        };
        // Every job name gets the same recording handler.
        return new Proxy({}, { get: () => handler }) as JobHandlers;
      };
      // Each queue with its own pool, as separate processes would have.
      const pools = [openPostgres(database.url), openPostgres(database.url)];
      const queues = pools.map((pool) => new SqlJobQueue(pool, { concurrency: 5, leaseMs: 60_000, pollMs: 5, stopTimeoutMs: 1_000 }));
      try {
        const ids = Array.from({ length: 50 }, (_, i) => `job-${String(i).padStart(2, '0')}`);
        await Promise.all(ids.map((id) => queues[0]!.enqueue('media.ingest', { datasetId: 'd', taskId: 't', mediaIds: [id] }, { jobId: id })));
        queues.forEach((queue, i) => queue.start(handlersFor(i)));
        await Promise.all(queues.map((queue) => queue.drained(10)));
        expect([...runs.keys()].sort()).toEqual(ids);
        expect([...runs].filter(([, n]) => n !== 1), 'jobs run more than once').toEqual([]);
        // Both took part, so the claims really raced.
        expect(byQueue.every((n) => n > 0)).toBe(true);
        expect(await db.selectFrom('jobs').select('id').execute()).toEqual([]);
      } finally {
        await Promise.all(queues.map((queue) => queue.stop()));
        await Promise.all(pools.map((pool) => pool.destroy()));
      }
    });
  });
});
