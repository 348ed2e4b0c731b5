import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { LabelSource, MediaStatus, Database } from '../../src/db/schema.js';

export type Box = [number, number, number, number];

/**
 * An object row cut from `parentId` by `box`, and its labels, written as an annotation import leaves
 * them (PENDING until processing cuts them out, unless another status is given). Returns its id.
 */
export async function insertObject(
  db: Kysely<Database>,
  parentId: string,
  box: Box,
  options: { units?: 'px' | 'relative'; status?: MediaStatus; labels?: [string, LabelSource, (number | null)?][] } = {},
): Promise<string> {
  const parent = await db.selectFrom('media').selectAll().where('id', '=', parentId).executeTakeFirstOrThrow();
  const id = crypto.randomUUID();
  const now = new Date().toISOString();
  await db
    .insertInto('media')
    .values({
      id,
      dataset_id: parent.dataset_id,
      transaction_id: null,
      media_type: 'object',
      status: options.status ?? 'PENDING',
      original_media_uri: `${parent.original_media_uri}#bbox=${box.join(',')}`,
      file_name: parent.file_name,
      blob_key: parent.blob_key,
      file_size: parent.file_size,
      sha256: '',
      parent_media_id: parentId,
      created_at: now,
      bbox_x: box[0],
      bbox_y: box[1],
      bbox_w: box[2],
      bbox_h: box[3],
      bbox_units: options.units ?? 'px',
    })
    .execute();
  for (const [label, source, confidence] of options.labels ?? []) {
    await db
      .insertInto('media_labels')
      .values({ id: crypto.randomUUID(), dataset_id: parent.dataset_id, media_id: id, label, source, confidence: confidence ?? null, import_id: null, created_at: now })
      .execute();
  }
  return id;
}
