import type { Kysely } from 'kysely';
import { columnTypes } from '../dialect.js';

/** What indexing computes: quality statistics and uniqueness per media, vectors, issues, clusters. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const { text, real, blob } = columnTypes(db);
  for (const column of ['blur', 'mean_intensity', 'min_intensity', 'max_intensity', 'std_intensity', 'contrast', 'uniqueness_score', 'nn_similarity']) {
    await db.schema.alterTable('media').addColumn(column, real).execute();
  }

  // Vectors live apart from media rows, keyed by media and model.
  await db.schema
    .createTable('embeddings')
    .addColumn('media_id', text, (c) => c.primaryKey().references('media.id').onDelete('cascade'))
    .addColumn('dataset_id', text, (c) => c.notNull())
    .addColumn('model_id', text, (c) => c.notNull())
    .addColumn('vector', blob, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('embeddings_dataset').on('embeddings').columns(['dataset_id', 'media_id']).execute();

  await db.schema
    .createTable('media_issues')
    .addColumn('dataset_id', text, (c) => c.notNull())
    .addColumn('media_id', text, (c) => c.notNull().references('media.id').onDelete('cascade'))
    .addColumn('issue_type', text, (c) => c.notNull())
    .addColumn('confidence', real, (c) => c.notNull())
    .addColumn('group_id', text)
    .addColumn('threshold', real)
    .execute();
  await db.schema.createIndex('media_issues_dataset_type').on('media_issues').columns(['dataset_id', 'issue_type', 'threshold']).execute();
  await db.schema.createIndex('media_issues_media').on('media_issues').column('media_id').execute();

  await db.schema
    .createTable('clusters')
    .addColumn('dataset_id', text, (c) => c.notNull().references('datasets.id').onDelete('cascade'))
    .addColumn('level', 'integer', (c) => c.notNull())
    .addColumn('cluster_id', text, (c) => c.notNull())
    .addColumn('size', 'integer', (c) => c.notNull())
    .addColumn('representative_media_id', text, (c) => c.notNull())
    .addPrimaryKeyConstraint('clusters_pk', ['dataset_id', 'level', 'cluster_id'])
    .execute();

  await db.schema
    .createTable('media_clusters')
    .addColumn('dataset_id', text, (c) => c.notNull())
    .addColumn('level', 'integer', (c) => c.notNull())
    .addColumn('media_id', text, (c) => c.notNull().references('media.id').onDelete('cascade'))
    .addColumn('cluster_id', text, (c) => c.notNull())
    .addPrimaryKeyConstraint('media_clusters_pk', ['dataset_id', 'level', 'media_id'])
    .execute();
  await db.schema.createIndex('media_clusters_cluster').on('media_clusters').columns(['dataset_id', 'level', 'cluster_id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['media_clusters', 'clusters', 'media_issues', 'embeddings']) await db.schema.dropTable(table).ifExists().execute();
}
