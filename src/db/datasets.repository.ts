import type { Kysely, Selectable, Updateable } from 'kysely';
import type { Role } from '../domain/roles.js';
import type { DatasetsTable, Database } from './schema.js';

export type DatasetRow = Selectable<DatasetsTable>;
export type DatasetPatch = Updateable<DatasetsTable>;
export interface MemberRow {
  user_id: string;
  email: string;
  role: Role;
  created_at: string;
}

export type DatasetSort = 'created_at' | 'display_name' | 'updated_at';

/** Datasets and who may see them. */
export class DatasetsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Inserts the dataset with its owner as the first member, atomically. */
  async insertWithOwner(dataset: DatasetRow): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('datasets').values(dataset).execute();
      await trx
        .insertInto('dataset_members')
        .values({ dataset_id: dataset.id, user_id: dataset.owned_by, role: 'owner', created_at: dataset.created_at })
        .execute();
    });
  }

  async findById(id: string): Promise<DatasetRow | undefined> {
    return this.db.selectFrom('datasets').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async update(id: string, patch: DatasetPatch): Promise<void> {
    await this.db.updateTable('datasets').set(patch).where('id', '=', id).execute();
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom('datasets').where('id', '=', id).execute();
  }

  async listForUser(userId: string, options: { sortBy: DatasetSort; includeHidden: boolean }): Promise<(DatasetRow & { role: Role })[]> {
    let query = this.db
      .selectFrom('datasets')
      .innerJoin('dataset_members', 'dataset_members.dataset_id', 'datasets.id')
      .selectAll('datasets')
      .select('dataset_members.role')
      .where('dataset_members.user_id', '=', userId);
    if (!options.includeHidden) query = query.where('datasets.is_hidden', '=', 0);
    const direction = options.sortBy === 'display_name' ? 'asc' : 'desc';
    return query.orderBy(`datasets.${options.sortBy}`, direction).orderBy('datasets.id').execute();
  }

  async findRole(datasetId: string, userId: string): Promise<Role | undefined> {
    const row = await this.db
      .selectFrom('dataset_members')
      .select('role')
      .where('dataset_id', '=', datasetId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return row?.role;
  }

  async listMembers(datasetId: string): Promise<MemberRow[]> {
    return this.db
      .selectFrom('dataset_members')
      .innerJoin('users', 'users.id', 'dataset_members.user_id')
      .select(['dataset_members.user_id', 'users.email', 'dataset_members.role', 'dataset_members.created_at'])
      .where('dataset_members.dataset_id', '=', datasetId)
      .orderBy('dataset_members.created_at')
      .orderBy('users.email')
      .execute();
  }

  async upsertMember(datasetId: string, userId: string, role: Role, at: string): Promise<void> {
    await this.db
      .insertInto('dataset_members')
      .values({ dataset_id: datasetId, user_id: userId, role, created_at: at })
      .onConflict((oc) => oc.columns(['dataset_id', 'user_id']).doUpdateSet({ role }))
      .execute();
  }

  async deleteMember(datasetId: string, userId: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('dataset_members')
      .where('dataset_id', '=', datasetId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
