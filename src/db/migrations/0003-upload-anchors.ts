import type { Kysely } from 'kysely';
import { columnTypes } from '../dialect.js';

/** Query vectors of uploaded search images (`search-image-similarity`), kept a while for explore to use. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const { text, blob } = columnTypes(db);
  await db.schema
    .createTable('upload_anchors')
    .addColumn('id', text, (c) => c.primaryKey())
    .addColumn('dataset_id', text, (c) => c.notNull().references('datasets.id').onDelete('cascade'))
    .addColumn('model_id', text, (c) => c.notNull())
    .addColumn('vector', blob, (c) => c.notNull())
    .addColumn('created_by', text, (c) => c.notNull())
    .addColumn('created_at', text, (c) => c.notNull())
    .addColumn('expires_at', text, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('upload_anchors_expiry').on('upload_anchors').column('expires_at').execute();
  // `media/id?original_media_uri=` looks media up by their source identity.
  await db.schema.createIndex('media_dataset_original_uri').on('media').columns(['dataset_id', 'original_media_uri']).execute();
  await db.schema.createIndex('clusters_dataset_level_size').on('clusters').columns(['dataset_id', 'level', 'size']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('clusters_dataset_level_size').ifExists().execute();
  await db.schema.dropIndex('media_dataset_original_uri').ifExists().execute();
  await db.schema.dropTable('upload_anchors').ifExists().execute();
}
