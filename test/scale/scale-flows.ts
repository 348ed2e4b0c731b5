/** Steps the scale-out fault tests share: upload and process through the API, wait, count in PostgreSQL. */
import pg from 'pg';
import { expect } from 'vitest';
import type { ApiClient, DatasetBody } from '../e2e/api-client.js';

export interface NamedImage {
  name: string;
  data: Buffer;
}

/** new_dataset → data_files → uploads of `perRequest` files → process_files; the dataset id. */
export async function uploadAndProcess(client: ApiClient, name: string, images: NamedImage[], perRequest: number): Promise<string> {
  const datasetId = (await client.get<{ dataset_id: string }>(`/ingestion/new_dataset?dataset_name=${name}`)).body.dataset_id;
  const transId = (await client.get<{ trans_id: string }>(`/ingestion/${datasetId}/data_files`)).body.trans_id;
  for (let i = 0; i < images.length; i += perRequest) {
    const form = new FormData();
    for (const image of images.slice(i, i + perRequest)) form.append('files', new Blob([image.data]), image.name);
    expect((await client.post(`/ingestion/${datasetId}/data_files/${transId}`, form)).status).toBe(202);
  }
  expect((await client.post(`/ingestion/${datasetId}/process_files/${transId}`)).status).toBe(202);
  return datasetId;
}

/** Polls the dataset until `done` holds; throws with its last state after `timeoutMs`. */
export async function waitForDataset(client: ApiClient, datasetId: string, done: (d: DatasetBody) => boolean, timeoutMs: number): Promise<DatasetBody> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dataset = (await client.get<DatasetBody>(`/dataset/${datasetId}`)).body;
    if (done(dataset)) return dataset;
    if (Date.now() > deadline) throw new Error(`dataset ${datasetId} stuck: ${JSON.stringify(dataset)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Every name is one READY media row and one vector: none lost, none counted twice. */
export async function expectEachMediaOnce(databaseUrl: string, datasetId: string, names: string[]): Promise<void> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const media = await db.query<{ file_name: string; status: string; n: string }>(
      'select file_name, status, count(*) as n from media where dataset_id = $1 group by file_name, status',
      [datasetId],
    );
    expect(media.rows.filter((r) => r.status !== 'READY')).toEqual([]);
    expect(media.rows.filter((r) => Number(r.n) !== 1)).toEqual([]);
    expect(media.rows.map((r) => r.file_name).sort()).toEqual([...names].sort());
    const vectors = await db.query<{ n: string }>('select count(*) as n from embeddings where dataset_id = $1', [datasetId]);
    expect(Number(vectors.rows[0]!.n)).toBe(names.length);
  } finally {
    await db.end();
  }
}
