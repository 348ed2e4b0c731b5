import { parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../fixtures/media.js';
import { readyDataset, type Headers, type UploadFile } from '../helpers/flows.js';
import { startTestApp, type TestApp } from '../helpers/harness.js';
import { readZip } from '../helpers/zip.js';

interface Tag {
  id: string;
  name: string;
  media_count: number;
  created_at: string;
}

interface Cluster {
  user_tags: string[];
  previews: { media_id: string }[];
}

/**
 * User tags through the API: the `/dataset/{id}/tags` resource, who may do what, bulk tagging,
 * explore's `tags` parameter and VQL `tags` operator, clusters' `user_tags`, and the export.
 */
describe('user tags', () => {
  let t: TestApp;
  let owner: Headers;
  let editor: Headers;
  let viewer: Headers;
  let stranger: Headers;
  let datasetId: string;
  let otherDatasetId: string;
  let mediaIds: string[];
  let otherMediaIds: string[];

  beforeAll(async () => {
    t = await startTestApp();
    owner = await (await t.createUser('owner@example.com')).headers();
    editor = await (await t.createUser('editor@example.com')).headers();
    viewer = await (await t.createUser('viewer@example.com')).headers();
    stranger = await (await t.createUser('stranger@example.com')).headers();
    const files: UploadFile[] = [];
    for (let seed = 1; seed <= 6; seed++) files.push({ name: `pic_${seed}.png`, data: await makeImage({ width: 160, height: 120, seed, format: 'png' }) });
    datasetId = await readyDataset(t.app, owner, files, 'tagged');
    otherDatasetId = await readyDataset(t.app, owner, files.slice(0, 2), 'other');
    for (const [email, role] of [
      ['editor@example.com', 'editor'],
      ['viewer@example.com', 'viewer'],
    ]) {
      const invite = await send('PUT', `/api/v1/manage/${datasetId}/invite`, owner, { grant_to_user_email: email, role });
      expect(invite.statusCode, invite.body).toBe(200);
    }
    const ids = async (id: string) =>
      (await t.container.db.selectFrom('media').select('id').where('dataset_id', '=', id).orderBy('id').execute()).map((r) => r.id);
    mediaIds = await ids(datasetId);
    otherMediaIds = await ids(otherDatasetId);
    expect(mediaIds).toHaveLength(6);
  }, 240_000);
  afterAll(async () => t?.close());

  function send(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, headers: Headers, body?: unknown) {
    return t.app.inject({
      method,
      url,
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
  }
  const tagsUrl = (id = datasetId) => `/api/v1/dataset/${id}/tags`;
  async function createTag(name: string, headers: Headers = editor): Promise<Tag> {
    const response = await send('POST', tagsUrl(), headers, { name });
    expect(response.statusCode, response.body).toBe(201);
    return response.json() as Tag;
  }
  async function listTags(headers: Headers = viewer): Promise<Tag[]> {
    const response = await send('GET', tagsUrl(), headers);
    expect(response.statusCode, response.body).toBe(200);
    return response.json() as Tag[];
  }
  async function tag(tagId: string, ids: string[], method: 'POST' | 'DELETE' = 'POST') {
    return send(method, `${tagsUrl()}/${tagId}/media`, editor, { media_ids: ids });
  }
  async function explore(query: string): Promise<Cluster[]> {
    const response = await send('GET', `/api/v1/explore/${datasetId}?${query}`, viewer);
    expect(response.statusCode, response.body).toBe(200);
    return (response.json() as { clusters: Cluster[] }).clusters;
  }
  const shownIds = (clusters: Cluster[]) => clusters.flatMap((c) => c.previews.map((p) => p.media_id)).sort();

  it('creates, lists and refuses duplicate or malformed names', async () => {
    const created = await createTag('reviewed');
    expect(created).toMatchObject({ name: 'reviewed', media_count: 0 });
    expect(created.id).toMatch(/^[0-9a-f-]{36}$/);
    expect((await listTags()).map((x) => x.name)).toContain('reviewed');

    const duplicate = await send('POST', tagsUrl(), editor, { name: 'reviewed' });
    expect(duplicate.statusCode).toBe(409);
    expect(duplicate.json()).toEqual({ detail: 'The dataset already has a tag named "reviewed"' });
    for (const name of ['', '   ', 'x'.repeat(101), 'bad\u0007name', 'a,b']) {
      expect((await send('POST', tagsUrl(), editor, { name })).statusCode, JSON.stringify(name)).toBe(422);
    }
    expect((await send('POST', tagsUrl(), editor, { name: 42 })).statusCode).toBe(422);
    await send('DELETE', `${tagsUrl()}/${created.id}`, editor);
  });

  it('lets viewers read, editors write, and hides the dataset from non-members', async () => {
    const own = await createTag('by-owner', owner);
    expect((await send('GET', tagsUrl(), viewer)).statusCode).toBe(200);
    expect((await send('POST', tagsUrl(), viewer, { name: 'nope' })).statusCode).toBe(403);
    expect((await send('POST', `${tagsUrl()}/${own.id}/media`, viewer, { media_ids: [mediaIds[0]] })).statusCode).toBe(403);
    expect((await send('DELETE', `${tagsUrl()}/${own.id}`, viewer)).statusCode).toBe(403);
    expect((await send('GET', tagsUrl(), stranger)).statusCode).toBe(404);
    expect((await send('POST', tagsUrl(), stranger, { name: 'nope' })).statusCode).toBe(404);
    expect((await send('GET', `/api/v1/dataset/${datasetId}/media/${mediaIds[0]}/tags`, stranger)).statusCode).toBe(404);
    expect((await send('DELETE', `${tagsUrl()}/not-a-tag`, editor)).statusCode).toBe(404);
    expect((await send('DELETE', `${tagsUrl()}/${own.id}`, editor)).statusCode).toBe(200);
    expect((await listTags()).map((x) => x.name)).not.toContain('by-owner');
  });

  it('tags and untags in bulk with counts, and refuses foreign ids changing nothing', async () => {
    const bulk = await createTag('bulk');
    const first = await tag(bulk.id, mediaIds.slice(0, 3));
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toEqual({ tagged: 3 });
    // Already tagged ones do not count again.
    expect((await tag(bulk.id, mediaIds.slice(0, 4))).json()).toEqual({ tagged: 1 });
    expect((await listTags()).find((x) => x.id === bulk.id)?.media_count).toBe(4);

    const foreign = await tag(bulk.id, [mediaIds[5]!, otherMediaIds[0]!, 'unknown-id']);
    expect(foreign.statusCode).toBe(400);
    expect(String((foreign.json() as { detail: string }).detail)).toContain(otherMediaIds[0]!);
    expect(String((foreign.json() as { detail: string }).detail)).toContain('unknown-id');
    expect((await listTags()).find((x) => x.id === bulk.id)?.media_count).toBe(4);

    const single = await send('GET', `/api/v1/dataset/${datasetId}/media/${mediaIds[0]}/tags`, viewer);
    expect(single.statusCode, single.body).toBe(200);
    expect(single.json()).toEqual(['bulk']);

    const untag = await tag(bulk.id, mediaIds.slice(2, 6), 'DELETE');
    expect(untag.statusCode, untag.body).toBe(200);
    expect(untag.json()).toEqual({ untagged: 2 });
    expect((await listTags()).find((x) => x.id === bulk.id)?.media_count).toBe(2);

    const tooMany = await tag(
      bulk.id,
      Array.from({ length: 10_001 }, (_, i) => `m${i}`),
    );
    expect(tooMany.statusCode).toBe(413);
    await send('DELETE', `${tagsUrl()}/${bulk.id}`, editor);
  });

  it('selects exactly the tagged media in explore (tags= and VQL) and shows user_tags on clusters', async () => {
    const cat = await createTag('cat');
    const dog = await createTag('dog');
    expect((await tag(cat.id, [mediaIds[0]!, mediaIds[1]!])).statusCode).toBe(200);
    expect((await tag(dog.id, [mediaIds[1]!, mediaIds[2]!])).statusCode).toBe(200);

    expect(shownIds(await explore('tags=cat'))).toEqual([mediaIds[0], mediaIds[1]].sort());
    expect(shownIds(await explore('tags=cat,dog'))).toEqual(mediaIds.slice(0, 3).sort());
    expect(shownIds(await explore('tags=cat&tags=dog'))).toEqual(mediaIds.slice(0, 3).sort());
    expect(shownIds(await explore('tags=nothing-like-it'))).toEqual([]);
    const vql = (value: unknown) => `vql=${encodeURIComponent(JSON.stringify(value))}`;
    expect(shownIds(await explore(vql([{ tags: { op: 'is', value: ['dog'] } }])))).toEqual([mediaIds[1], mediaIds[2]].sort());
    // Two VQL terms are ANDed.
    expect(shownIds(await explore(vql([{ tags: { op: 'is', value: ['cat'] } }, { tags: { op: 'is', value: ['dog'] } }])))).toEqual([mediaIds[1]]);
    // Labels do not exist yet: they still match nothing.
    expect(await explore('labels=cat')).toEqual([]);

    const all = await explore('threshold=0');
    expect(shownIds(all)).toEqual([...mediaIds].sort());
    for (const cluster of all) {
      const expected = new Set<string>();
      for (const { media_id } of cluster.previews) {
        if (media_id === mediaIds[0] || media_id === mediaIds[1]) expected.add('cat');
        if (media_id === mediaIds[1] || media_id === mediaIds[2]) expected.add('dog');
      }
      expect(cluster.user_tags).toEqual([...expected].sort());
    }

    // Deleting a tag takes it off every media.
    expect((await send('DELETE', `${tagsUrl()}/${dog.id}`, editor)).statusCode).toBe(200);
    expect(await explore('tags=dog')).toEqual([]);
    expect((await send('GET', `/api/v1/dataset/${datasetId}/media/${mediaIds[1]}/tags`, viewer)).json()).toEqual(['cat']);
    expect(await t.container.db.selectFrom('media_tags').select('media_id').where('tag_id', '=', dog.id).execute()).toEqual([]);
  });

  it('exports tags as user_tag metadata items and a parquet user_tags column', async () => {
    const cat = (await listTags()).find((x) => x.name === 'cat')!;
    const zipOf = async (format: 'json' | 'parquet') => {
      const start = await send('GET', `/api/v1/dataset/${datasetId}/export_context_async?file_name=t.zip&export_format=${format}&include_images=false`, viewer);
      expect(start.statusCode, start.body).toBe(200);
      const { id } = start.json() as { id: string };
      const deadline = Date.now() + 60_000;
      for (;;) {
        const status = (await send('GET', `/api/v1/dataset/${datasetId}/export_status?export_task_id=${id}`, viewer)).json() as { status: string; download_uri: string | null };
        if (status.status === 'COMPLETED') return readZip((await t.app.inject({ method: 'GET', url: status.download_uri! })).rawPayload);
        expect(status.status).not.toBe('FAILED');
        if (Date.now() > deadline) throw new Error('export did not finish');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const json = JSON.parse((await zipOf('json')).get('metadata.json')!.toString('utf8')) as {
      media_items: { media_id: string; metadata_items: { type: string; properties: Record<string, unknown> }[] }[];
    };
    for (const item of json.media_items) {
      const tags = item.metadata_items.filter((m) => m.type === 'user_tag');
      expect(tags, item.media_id).toEqual(item.media_id === mediaIds[0] || item.media_id === mediaIds[1] ? [{ type: 'user_tag', properties: { tag_name: 'cat', tag_id: cat.id } }] : []);
    }
    const parquet = (await zipOf('parquet')).get('metadata.parquet')!;
    const file = parquet.buffer.slice(parquet.byteOffset, parquet.byteOffset + parquet.byteLength) as ArrayBuffer;
    const rows = (await parquetReadObjects({ file })) as Record<string, unknown>[];
    expect(rows).toHaveLength(6);
    for (const row of rows) expect(row.user_tags, String(row.media_id)).toBe(row.media_id === mediaIds[0] || row.media_id === mediaIds[1] ? 'cat' : null);
  });

  it('removes tags and taggings with the dataset', async () => {
    const files = [{ name: 'one.png', data: await makeImage({ width: 64, height: 48, seed: 77, format: 'png' }) }];
    const doomed = await readyDataset(t.app, owner, files, 'doomed');
    const created = await send('POST', tagsUrl(doomed), owner, { name: 'gone' });
    expect(created.statusCode, created.body).toBe(201);
    const tagId = (created.json() as Tag).id;
    const [media] = await t.container.db.selectFrom('media').select('id').where('dataset_id', '=', doomed).execute();
    expect((await send('POST', `${tagsUrl(doomed)}/${tagId}/media`, owner, { media_ids: [media!.id] })).json()).toEqual({ tagged: 1 });
    const deleted = await send('DELETE', `/api/v1/dataset/${doomed}`, owner);
    expect(deleted.statusCode, deleted.body).toBe(200);
    expect(await t.container.db.selectFrom('tags').select('id').where('dataset_id', '=', doomed).execute()).toEqual([]);
    expect(await t.container.db.selectFrom('media_tags').select('media_id').where('dataset_id', '=', doomed).execute()).toEqual([]);
  }, 120_000);
});
