import type { Kysely } from 'kysely';
import { columnTypes } from '../dialect.js';

/**
 * User tags: names an editor defines per dataset and puts on media. Deleting a dataset removes its
 * tags, deleting a tag or a media removes their taggings (cascades).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const { text } = columnTypes(db);
  await db.schema
    .createTable('tags')
    .addColumn('id', text, (c) => c.primaryKey())
    .addColumn('dataset_id', text, (c) => c.notNull().references('datasets.id').onDelete('cascade'))
    .addColumn('name', text, (c) => c.notNull())
    .addColumn('created_by', text, (c) => c.notNull())
    .addColumn('created_at', text, (c) => c.notNull())
    .addUniqueConstraint('tags_dataset_name', ['dataset_id', 'name'])
    .execute();

  await db.schema
    .createTable('media_tags')
    .addColumn('dataset_id', text, (c) => c.notNull())
    .addColumn('media_id', text, (c) => c.notNull().references('media.id').onDelete('cascade'))
    .addColumn('tag_id', text, (c) => c.notNull().references('tags.id').onDelete('cascade'))
    .addColumn('created_by', text, (c) => c.notNull())
    .addColumn('created_at', text, (c) => c.notNull())
    .addPrimaryKeyConstraint('media_tags_pk', ['tag_id', 'media_id'])
    .execute();
  await db.schema.createIndex('media_tags_media').on('media_tags').columns(['dataset_id', 'media_id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('media_tags').ifExists().execute();
  await db.schema.dropTable('tags').ifExists().execute();
}
