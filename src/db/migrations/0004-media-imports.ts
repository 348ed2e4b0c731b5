import type { Kysely } from 'kysely';
import { columnTypes } from '../dialect.js';

/**
 * Media added from somewhere other than an upload request: an archive, an S3 prefix or manifest, a
 * local folder or an http(s) location. The import row says where to read from (with the temporary
 * credentials of an assumed role, encrypted, for that operation only); each media row found there
 * keeps the URI to copy its bytes from until a worker has fetched them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const { text } = columnTypes(db);
  await db.schema
    .createTable('media_imports')
    .addColumn('id', text, (c) => c.primaryKey())
    .addColumn('dataset_id', text, (c) => c.notNull().references('datasets.id').onDelete('cascade'))
    .addColumn('task_id', text, (c) => c.notNull())
    .addColumn('source_kind', text, (c) => c.notNull())
    .addColumn('location', text, (c) => c.notNull())
    .addColumn('credentials_enc', text)
    .addColumn('previous_status', text, (c) => c.notNull())
    .addColumn('auto_reindex', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('options', text, (c) => c.notNull().defaultTo('{}'))
    .addColumn('listed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('n_found', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('n_skipped', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', text, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('media_imports_task').on('media_imports').column('task_id').execute();
  await db.schema.alterTable('media').addColumn('import_id', text).execute();
  await db.schema.alterTable('media').addColumn('fetch_from', text).execute();
  await db.schema.createIndex('media_import').on('media').column('import_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('media_import').ifExists().execute();
  await db.schema.alterTable('media').dropColumn('fetch_from').execute();
  await db.schema.alterTable('media').dropColumn('import_id').execute();
  await db.schema.dropTable('media_imports').ifExists().execute();
}
