import type { Kysely } from 'kysely';
import { columnTypes } from '../dialect.js';

/**
 * Annotations: a caption per media, labels on media (image labels) and on objects, and the record
 * of every annotation import with the rows it could not use.
 *
 * Objects are media rows of type `object` cut from their parent image (`parent_media_id`) by a box.
 * Until the object is processed the box may still be relative to the image (`bbox_units = 'relative'`,
 * as YOLO gives it); processing turns it into pixels of the original image.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const { text, real } = columnTypes(db);
  // SQLite adds one column per ALTER TABLE.
  await db.schema.alterTable('media').addColumn('caption', text).execute();
  await db.schema.alterTable('media').addColumn('bbox_x', real).execute();
  await db.schema.alterTable('media').addColumn('bbox_y', real).execute();
  await db.schema.alterTable('media').addColumn('bbox_w', real).execute();
  await db.schema.alterTable('media').addColumn('bbox_h', real).execute();
  await db.schema.alterTable('media').addColumn('bbox_units', text).execute();
  await db.schema.createIndex('media_parent').on('media').columns(['parent_media_id']).execute();

  await db.schema
    .createTable('media_labels')
    .addColumn('id', text, (c) => c.primaryKey())
    .addColumn('dataset_id', text, (c) => c.notNull().references('datasets.id').onDelete('cascade'))
    .addColumn('media_id', text, (c) => c.notNull().references('media.id').onDelete('cascade'))
    .addColumn('label', text, (c) => c.notNull())
    .addColumn('source', text, (c) => c.notNull())
    .addColumn('confidence', real)
    .addColumn('import_id', text)
    .addColumn('created_at', text, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('media_labels_media').on('media_labels').columns(['media_id']).execute();
  await db.schema.createIndex('media_labels_dataset_label').on('media_labels').columns(['dataset_id', 'label']).execute();

  await db.schema
    .createTable('annotation_imports')
    .addColumn('id', text, (c) => c.primaryKey())
    .addColumn('dataset_id', text, (c) => c.notNull().references('datasets.id').onDelete('cascade'))
    .addColumn('task_id', text)
    .addColumn('created_by', text, (c) => c.notNull())
    .addColumn('file_name', text, (c) => c.notNull())
    .addColumn('format', text, (c) => c.notNull())
    .addColumn('source', text, (c) => c.notNull())
    .addColumn('status', text, (c) => c.notNull())
    .addColumn('blob_key', text)
    .addColumn('n_rows', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('n_image_labels', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('n_objects', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('n_captions', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('n_unmatched', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('n_invalid', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('problems', text, (c) => c.notNull().defaultTo('[]'))
    .addColumn('error', text)
    .addColumn('created_at', text, (c) => c.notNull())
    .addColumn('finished_at', text)
    .execute();
  await db.schema.createIndex('annotation_imports_dataset').on('annotation_imports').columns(['dataset_id', 'created_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('annotation_imports').ifExists().execute();
  await db.schema.dropTable('media_labels').ifExists().execute();
  await db.schema.dropIndex('media_parent').ifExists().execute();
  for (const column of ['bbox_units', 'bbox_h', 'bbox_w', 'bbox_y', 'bbox_x', 'caption']) await db.schema.alterTable('media').dropColumn(column).execute();
}
