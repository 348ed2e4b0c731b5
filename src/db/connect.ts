import fs from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type Migration, type MigrationProvider } from 'kysely';
import pg from 'pg';
import * as initial from './migrations/0001-initial.js';
import * as indexing from './migrations/0002-indexing.js';
import * as uploadAnchors from './migrations/0003-upload-anchors.js';
import * as mediaImports from './migrations/0004-media-imports.js';
import * as cascadeIndexes from './migrations/0005-cascade-indexes.js';
import * as userTags from './migrations/0006-user-tags.js';
import * as annotations from './migrations/0007-annotations.js';
import * as searchText from './migrations/0008-search-text.js';
import type { Database } from './schema.js';

export const MIGRATIONS: Record<string, Migration> = {
  '0001-initial': initial,
  '0002-indexing': indexing,
  '0003-upload-anchors': uploadAnchors,
  '0004-media-imports': mediaImports,
  '0005-cascade-indexes': cascadeIndexes,
  '0006-user-tags': userTags,
  '0007-annotations': annotations,
  '0008-search-text': searchText,
};

class InlineMigrationProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return MIGRATIONS;
  }
}

/**
 * The metadata database: PostgreSQL when a database URL is configured (scale-out), otherwise the
 * embedded SQLite file in the data dir. Repositories serve both through Kysely.
 */
export function openDatabase(config: { databaseUrl: string | null; dataDir: string }): Kysely<Database> {
  return config.databaseUrl ? openPostgres(config.databaseUrl) : openSqlite(config.dataDir);
}

const PG_INT8 = 20;
const PG_NUMERIC = 1700;

/**
 * pg's type parsers, except that 64-bit integers (`bigint` columns such as file sizes, and every
 * `count(*)`) and numerics (`sum` over bigints) come back as numbers, as SQLite returns them. They
 * stay far below 2^53 here. `bytea` stays a Buffer. Set per pool, not globally on the pg module.
 */
const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if ((oid === PG_INT8 || oid === PG_NUMERIC) && format !== 'binary') return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  }) as typeof pg.types.getTypeParser,
};

/** Scale-out metadata: a pool of connections to PostgreSQL, shared by serve, worker and CLI processes. */
export function openPostgres(url: string): Kysely<Database> {
  const pool = new pg.Pool({ connectionString: url, max: 10, types: pgTypes });
  // An idle client that loses its connection (server restart, network) must not crash the process:
  // the pool drops it and opens a new one for the next query.
  pool.on('error', () => undefined);
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/** The embedded database: one SQLite file in the data dir, shared safely by serve and CLI processes (WAL). */
export function openSqlite(dataDir: string): Kysely<Database> {
  fs.mkdirSync(dataDir, { recursive: true });
  const database = new SqliteDatabase(path.join(dataDir, 'vizdex.sqlite'));
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 10000');
  return new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
}

/**
 * Brings the schema up to date. On PostgreSQL several processes may start at once: Kysely's migrator
 * takes a session advisory lock and runs the pending migrations in one transaction, so one process
 * migrates and the others find nothing left to do (test/db/postgres.test.ts starts four together).
 */
export async function migrateToLatest(db: Kysely<Database>): Promise<void> {
  const migrator = new Migrator({ db, provider: new InlineMigrationProvider() });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`Database migration ${failed?.migrationName ?? ''} failed: ${String(error)}`);
  }
}
