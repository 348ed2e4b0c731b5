import type { Kysely, Selectable } from 'kysely';
import type { Database, MediaTable, MediaType, UploadTransactionsTable } from './schema.js';

export type MediaRow = Selectable<MediaTable>;
export type UploadTransactionRow = Selectable<UploadTransactionsTable>;

/** What decoding found out about one media item: either its facts or why it failed. */
export type MediaOutcome =
  | {
      id: string;
      ok: true;
      width: number;
      height: number;
      format: string;
      thumbKey: string;
      durationSeconds: number | null;
    }
  | { id: string; ok: false; error: string };

export interface MediaCounts {
  pending: number;
  ready: number;
  failed: number;
  readyByType: Record<MediaType, number>;
}

// SQLite allows 32766 bound parameters, PostgreSQL 65535; media rows bind ~20 each.
const INSERT_CHUNK = 500;
const ID_CHUNK = 900;

/** Media items and the upload transactions that bring them in. */
export class MediaRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insertTransaction(row: UploadTransactionRow): Promise<void> {
    await this.db.insertInto('upload_transactions').values(row).execute();
  }

  async findTransaction(datasetId: string, transactionId: string): Promise<UploadTransactionRow | undefined> {
    return this.db
      .selectFrom('upload_transactions')
      .selectAll()
      .where('id', '=', transactionId)
      .where('dataset_id', '=', datasetId)
      .executeTakeFirst();
  }

  async markTransactionProcessed(transactionId: string, at: string): Promise<void> {
    await this.db.updateTable('upload_transactions').set({ status: 'PROCESSED', processed_at: at }).where('id', '=', transactionId).execute();
  }

  async countTransactionMedia(transactionId: string): Promise<number> {
    const row = await this.db
      .selectFrom('media')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('transaction_id', '=', transactionId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async insertMany(rows: MediaRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
        await trx.insertInto('media').values(rows.slice(i, i + INSERT_CHUNK)).execute();
      }
    });
  }

  async findByIds(ids: string[]): Promise<MediaRow[]> {
    const found: MediaRow[] = [];
    for (let i = 0; i < ids.length; i += ID_CHUNK) {
      found.push(...(await this.db.selectFrom('media').selectAll().where('id', 'in', ids.slice(i, i + ID_CHUNK)).execute()));
    }
    return found;
  }

  /** Pending media ids of a dataset in id order, a page at a time (keyset pagination). */
  async listPendingIds(datasetId: string, afterId: string | null, limit: number): Promise<string[]> {
    let query = this.db
      .selectFrom('media')
      .select('id')
      .where('dataset_id', '=', datasetId)
      .where('status', '=', 'PENDING');
    if (afterId !== null) query = query.where('id', '>', afterId);
    const rows = await query.orderBy('id').limit(limit).execute();
    return rows.map((r) => r.id);
  }

  /** Records decoding outcomes in one transaction; only still-PENDING rows change, so a retried batch does no double work. */
  async recordOutcomes(outcomes: MediaOutcome[], at: string): Promise<void> {
    if (outcomes.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (const o of outcomes) {
        const patch = o.ok
          ? { status: 'READY' as const, width: o.width, height: o.height, format: o.format, thumb_key: o.thumbKey, duration_seconds: o.durationSeconds, error: null, processed_at: at }
          : { status: 'FAILED' as const, error: o.error, processed_at: at };
        await trx.updateTable('media').set(patch).where('id', '=', o.id).where('status', '=', 'PENDING').execute();
      }
    });
  }

  async counts(datasetId: string): Promise<MediaCounts> {
    const rows = await this.db
      .selectFrom('media')
      .select(['status', 'media_type', (eb) => eb.fn.countAll<number>().as('n')])
      .where('dataset_id', '=', datasetId)
      .groupBy(['status', 'media_type'])
      .execute();
    const counts: MediaCounts = { pending: 0, ready: 0, failed: 0, readyByType: { image: 0, video: 0, video_frame: 0 } };
    for (const row of rows) {
      const n = Number(row.n);
      if (row.status === 'PENDING') counts.pending += n;
      if (row.status === 'FAILED') counts.failed += n;
      if (row.status === 'READY') {
        counts.ready += n;
        counts.readyByType[row.media_type] += n;
      }
    }
    return counts;
  }

  async listFailed(datasetId: string, limit: number, offset: number): Promise<Pick<MediaRow, 'id' | 'file_name' | 'original_media_uri' | 'error'>[]> {
    return this.db
      .selectFrom('media')
      .select(['id', 'file_name', 'original_media_uri', 'error'])
      .where('dataset_id', '=', datasetId)
      .where('status', '=', 'FAILED')
      .orderBy('original_media_uri')
      .orderBy('id')
      .limit(limit)
      .offset(offset)
      .execute();
  }
}
