import type { Kysely, Selectable, Updateable } from 'kysely';
import type { Database, MediaImportsTable } from './schema.js';

export type MediaImportRow = Selectable<MediaImportsTable>;

/** Where an add_media or a dataset created from a location reads its media from. */
export class MediaImportsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: MediaImportRow): Promise<void> {
    await this.db.insertInto('media_imports').values(row).execute();
  }

  async findByTask(taskId: string): Promise<MediaImportRow | undefined> {
    return this.db.selectFrom('media_imports').selectAll().where('task_id', '=', taskId).executeTakeFirst();
  }

  async findById(id: string): Promise<MediaImportRow | undefined> {
    return this.db.selectFrom('media_imports').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async update(id: string, patch: Updateable<MediaImportsTable>): Promise<void> {
    await this.db.updateTable('media_imports').set(patch).where('id', '=', id).execute();
  }
}
