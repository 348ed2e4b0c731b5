import type { Kysely } from 'kysely';

/**
 * Deleting a dataset cascades from each media row to its cluster memberships; without an index that
 * starts with media_id, PostgreSQL scans media_clusters once per media deleted.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('media_clusters_media').on('media_clusters').column('media_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('media_clusters_media').ifExists().execute();
}
