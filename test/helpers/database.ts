import crypto from 'node:crypto';
import pg from 'pg';
import type { DatasetRow } from '../../src/db/datasets.repository.js';

/** The server the PostgreSQL tests use; this connection only creates and drops their databases. */
export function testPostgresAdminUrl(): string {
  return process.env.VIZDEX_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test';
}

export interface TestDatabase {
  url: string;
  /** Ends every connection to the database and drops it. */
  drop(): Promise<void>;
}

async function withAdmin<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: testPostgresAdminUrl(), connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/** Whether the test PostgreSQL server answers. */
export async function postgresReachable(): Promise<boolean> {
  try {
    await withAdmin((client) => client.query('select 1'));
    return true;
  } catch {
    return false;
  }
}

/**
 * Ways to create a database whose default collation orders text like a language does (`_x 1 a A b B`)
 * rather than byte by byte, as most production servers are set up (PostgreSQL 15+ with ICU, or a libc
 * English locale); the first the server accepts is used.
 */
const LINGUISTIC_DATABASE_OPTIONS = [
  `template template0 locale_provider icu icu_locale 'en-US'`,
  `template template0 lc_collate 'en_US.UTF-8' lc_ctype 'en_US.UTF-8'`,
  `template template0 lc_collate 'en_US.utf8' lc_ctype 'en_US.utf8'`,
];

/**
 * A new, empty database (`vizdex_t_<random>`) on the test server. `linguisticCollation`: with a
 * language's collation as its default, where the server has one (`linguistic` says whether it has).
 */
export async function freshTestDatabaseUrl(options: { linguisticCollation?: boolean } = {}): Promise<TestDatabase & { linguistic: boolean }> {
  const name = `vizdex_t_${crypto.randomBytes(6).toString('hex')}`;
  const linguistic = await withAdmin(async (client) => {
    for (const clause of options.linguisticCollation ? LINGUISTIC_DATABASE_OPTIONS : []) {
      try {
        await client.query(`create database "${name}" ${clause}`);
        return true;
      } catch {
        // Not supported by this server (version, ICU or locale missing): try the next way.
      }
    }
    await client.query(`create database "${name}"`);
    return false;
  });
  const url = new URL(testPostgresAdminUrl());
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    linguistic,
    async drop() {
      if (dropped) return;
      dropped = true;
      await withAdmin(async (client) => {
        // New connections may still be arriving from a pool being closed: end them and retry.
        for (let attempt = 1; ; attempt++) {
          await client.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [name]);
          try {
            await client.query(`drop database if exists "${name}"`);
            return;
          } catch (error) {
            // 55006: the database is being accessed by other users.
            if ((error as { code?: string }).code !== '55006' || attempt >= 5) throw error;
            await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
          }
        }
      });
    },
  };
}

/** A READY dataset row as repository tests insert it directly. */
export function datasetRow(id: string, displayName = id, at = '2024-05-01T12:00:00.000Z'): DatasetRow {
  return {
    id,
    display_name: displayName,
    description: '',
    source_type: 'upload',
    owned_by: 'u1',
    created_at: at,
    updated_at: at,
    status: 'READY',
    progress: 0,
    n_images: 0,
    n_videos: 0,
    n_video_frames: 0,
    n_objects: 0,
    n_failed: 0,
    fatal_error_msg: null,
    source_dataset_id: null,
    embedding_config: null,
    is_hidden: 0,
  };
}
