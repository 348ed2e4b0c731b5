import { sql, type Insertable, type Kysely, type Selectable } from 'kysely';
import type { QualityIssue, QualityStats } from '../pipeline/quality.js';
import type { Database, EmbeddingsTable, MediaIssuesTable, MediaTable, MediaType, UploadTransactionsTable } from './schema.js';

export type MediaRow = Selectable<MediaTable>;
export type NewMediaRow = Insertable<MediaTable>;
export type UploadTransactionRow = Selectable<UploadTransactionsTable>;

/** What processing learned about one media item. */
export interface MediaFacts {
  width: number;
  height: number;
  format: string;
  thumbKey: string | null;
  durationSeconds: number | null;
  quality: QualityStats | null;
  issues: QualityIssue[];
  vector: Float32Array | null;
  /** An object's content hash (its crop's pixels), set when processing computes it. */
  sha256?: string;
  /** An object's box in whole pixels of its parent image (stored back with units 'px'). */
  box?: { x: number; y: number; width: number; height: number };
}

/** What decoding found out about one media item: either its facts or why it failed. */
export type MediaOutcome = ({ id: string; ok: true } & MediaFacts) | { id: string; ok: false; error: string };

/** Media that processing creates from another (a video's frames), already processed. */
export interface DerivedMedia {
  row: NewMediaRow;
  facts: MediaFacts;
}

function factColumns(f: MediaFacts) {
  return {
    width: f.width,
    height: f.height,
    format: f.format,
    thumb_key: f.thumbKey,
    duration_seconds: f.durationSeconds,
    blur: f.quality?.blur ?? null,
    mean_intensity: f.quality?.mean ?? null,
    min_intensity: f.quality?.min ?? null,
    max_intensity: f.quality?.max ?? null,
    std_intensity: f.quality?.std ?? null,
    contrast: f.quality?.contrast ?? null,
    ...(f.sha256 === undefined ? {} : { sha256: f.sha256 }),
    ...(f.box === undefined ? {} : { bbox_x: f.box.x, bbox_y: f.box.y, bbox_w: f.box.width, bbox_h: f.box.height, bbox_units: 'px' as const }),
  };
}

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

  async insertMany(rows: NewMediaRow[]): Promise<void> {
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

  /**
   * Pending media ids of a dataset in id order, a page at a time (keyset pagination). Objects are
   * listed only once their parent image is READY (before that its bytes may not even be fetched);
   * the batch that makes the parent READY queues them (`pendingObjectsOf`).
   */
  async listPendingIds(datasetId: string, afterId: string | null, limit: number): Promise<string[]> {
    let query = this.db
      .selectFrom('media')
      .select('id')
      .where('dataset_id', '=', datasetId)
      .where('status', '=', 'PENDING')
      // (An object whose parent is gone is listed, and fails saying so.)
      .where(sql<boolean>`(media.media_type <> 'object' or not exists (select 1 from media p where p.id = media.parent_media_id and p.status <> 'READY'))`);
    if (afterId !== null) query = query.where('id', '>', afterId);
    const rows = await query.orderBy('id').limit(limit).execute();
    return rows.map((r) => r.id);
  }

  /** Pending objects cut from these (READY) parents, in id order. */
  async pendingObjectsOf(parentIds: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < parentIds.length; i += ID_CHUNK) {
      const rows = await this.db
        .selectFrom('media as o')
        .innerJoin('media as p', 'p.id', 'o.parent_media_id')
        .select('o.id')
        .where('o.parent_media_id', 'in', parentIds.slice(i, i + ID_CHUNK))
        .where('o.media_type', '=', 'object')
        .where('o.status', '=', 'PENDING')
        .where('p.status', '=', 'READY')
        .execute();
      ids.push(...rows.map((r) => r.id));
    }
    return ids.sort();
  }

  /** Pending objects whose parent image failed fail too, with the parent's reason; `parentIds`: only the objects of these. */
  async failObjectsOfFailedParents(datasetId: string, at: string, parentIds?: string[]): Promise<void> {
    if (parentIds?.length === 0) return;
    await this.db
      .updateTable('media')
      .set({
        status: 'FAILED',
        processed_at: at,
        error: sql<string>`'the image it was cut from could not be decoded: ' || coalesce((select p.error from media p where p.id = media.parent_media_id), 'unknown reason')`,
      })
      .where('dataset_id', '=', datasetId)
      .where('media_type', '=', 'object')
      .where('status', '=', 'PENDING')
      .where(sql<boolean>`exists (select 1 from media p where p.id = media.parent_media_id and p.status = 'FAILED')`)
      .$if(parentIds !== undefined, (q) => q.where('parent_media_id', 'in', parentIds!))
      .execute();
  }

  /**
   * Records a batch's outcomes — facts, vectors, quality issues, derived media — in one transaction.
   * Only still-PENDING rows change and derived rows have deterministic ids, so a retried batch does no
   * double work (and a row that changes has no vectors or quality issues yet).
   */
  async recordOutcomes(datasetId: string, outcomes: MediaOutcome[], derived: DerivedMedia[], modelId: string, at: string): Promise<void> {
    if (outcomes.length === 0 && derived.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      // Vectors and issues of the rows that changed are gathered and inserted a chunk at a time.
      const embeddings: Insertable<EmbeddingsTable>[] = [];
      const issues: Insertable<MediaIssuesTable>[] = [];
      const gather = (mediaId: string, facts: MediaFacts) => {
        if (facts.vector) {
          const vector = new Uint8Array(facts.vector.buffer, facts.vector.byteOffset, facts.vector.byteLength);
          embeddings.push({ media_id: mediaId, dataset_id: datasetId, model_id: modelId, vector });
        }
        for (const issue of facts.issues) {
          issues.push({ dataset_id: datasetId, media_id: mediaId, issue_type: issue.type, confidence: issue.confidence, group_id: null, threshold: null });
        }
      };

      for (const o of outcomes) {
        if (!o.ok) {
          await trx.updateTable('media').set({ status: 'FAILED', error: o.error, processed_at: at }).where('id', '=', o.id).where('status', '=', 'PENDING').execute();
          continue;
        }
        const updated = await trx
          .updateTable('media')
          .set({ status: 'READY', error: null, processed_at: at, ...factColumns(o) })
          .where('id', '=', o.id)
          .where('status', '=', 'PENDING')
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) > 0) gather(o.id, o);
      }
      for (const d of derived) {
        const inserted = await trx
          .insertInto('media')
          .values({ ...d.row, status: 'READY', error: null, processed_at: at, ...factColumns(d.facts) })
          .onConflict((oc) => oc.column('id').doNothing())
          .executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0) gather(d.row.id, d.facts);
      }
      for (let i = 0; i < embeddings.length; i += INSERT_CHUNK) {
        await trx
          .insertInto('embeddings')
          .values(embeddings.slice(i, i + INSERT_CHUNK))
          .onConflict((oc) => oc.column('media_id').doUpdateSet((eb) => ({ model_id: eb.ref('excluded.model_id'), vector: eb.ref('excluded.vector') })))
          .execute();
      }
      for (let i = 0; i < issues.length; i += INSERT_CHUNK) await trx.insertInto('media_issues').values(issues.slice(i, i + INSERT_CHUNK)).execute();
    });
  }

  async counts(datasetId: string): Promise<MediaCounts> {
    const rows = await this.db
      .selectFrom('media')
      .select(['status', 'media_type', (eb) => eb.fn.countAll<number>().as('n')])
      .where('dataset_id', '=', datasetId)
      .groupBy(['status', 'media_type'])
      .execute();
    const counts: MediaCounts = { pending: 0, ready: 0, failed: 0, readyByType: { image: 0, video: 0, video_frame: 0, object: 0 } };
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

  /** Media of one import by status, for an add_media's own progress. */
  async importCounts(importId: string): Promise<{ pending: number; ready: number; failed: number }> {
    const rows = await this.db
      .selectFrom('media')
      .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('import_id', '=', importId)
      .groupBy('status')
      .execute();
    const counts = { pending: 0, ready: 0, failed: 0 };
    for (const row of rows) {
      if (row.status === 'PENDING') counts.pending = Number(row.n);
      if (row.status === 'READY') counts.ready = Number(row.n);
      if (row.status === 'FAILED') counts.failed = Number(row.n);
    }
    return counts;
  }

  /** Which of these source URIs the dataset already holds, with the import that brought each (adding a folder again adds only what is new). */
  async existingOriginalUris(datasetId: string, uris: string[]): Promise<Map<string, string | null>> {
    const found = new Map<string, string | null>();
    for (let i = 0; i < uris.length; i += ID_CHUNK) {
      const rows = await this.db
        .selectFrom('media')
        .select(['original_media_uri', 'import_id'])
        .where('dataset_id', '=', datasetId)
        .where('original_media_uri', 'in', uris.slice(i, i + ID_CHUNK))
        .execute();
      for (const row of rows) found.set(row.original_media_uri, row.import_id);
    }
    return found;
  }

  /** Inserts rows whose deterministic ids may already exist (a resumed import), keeping the existing ones. */
  async insertNewOnly(rows: NewMediaRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
        await trx
          .insertInto('media')
          .values(rows.slice(i, i + INSERT_CHUNK))
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
      }
    });
  }

  /** A fetched media's bytes are in the store: record what they are. */
  async recordFetched(id: string, facts: { mediaType: MediaType; blobKey: string; fileSize: number; sha256: string }): Promise<void> {
    await this.db
      .updateTable('media')
      .set({ media_type: facts.mediaType, blob_key: facts.blobKey, file_size: facts.fileSize, sha256: facts.sha256, fetch_from: null })
      .where('id', '=', id)
      .where('status', '=', 'PENDING')
      .execute();
  }

  async markFailed(ids: string[], reason: string, at: string): Promise<void> {
    for (let i = 0; i < ids.length; i += ID_CHUNK) {
      await this.db
        .updateTable('media')
        .set({ status: 'FAILED', error: reason, processed_at: at })
        .where('id', 'in', ids.slice(i, i + ID_CHUNK))
        .where('status', '=', 'PENDING')
        .execute();
    }
  }

  /** Ends an import that failed part way: what it had not processed yet is recorded as failed, with the reason. */
  async failPendingOfImport(importId: string, reason: string, at: string): Promise<void> {
    await this.db
      .updateTable('media')
      .set({ status: 'FAILED', error: reason, processed_at: at })
      .where('import_id', '=', importId)
      .where('status', '=', 'PENDING')
      .execute();
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
