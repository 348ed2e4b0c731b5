import fs from 'node:fs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyClipPair, type TinyClipPair } from '../fixtures/onnx.js';
import { draftDataset, processFiles, readyDataset, type UploadFile } from '../helpers/flows.js';
import { makeTempDir, multipart, startTestApp, waitForStatus, type TestApp, type TestUser } from '../helpers/harness.js';

interface Result {
  media_id: string;
  file_name: string;
  media_uri: string;
  media_thumb_uri: string;
  relevance_score: number;
  relevance_score_type: string;
  bounding_box: number[] | null;
}
interface SearchBody {
  model_id: string;
  entity_type: string;
  results: Result[];
}
interface ExploreBody {
  clusters: { relevance_score: number | null; previews: { file_name: string; relevance_score: number | null }[] }[];
}

/** Solid pictures in shades of one colour: the tiny CLIP pair puts red, green and blue on their own axes. */
const SHADES: Record<'red' | 'green' | 'blue', [number, number, number][]> = {
  red: [
    [220, 30, 20],
    [180, 20, 40],
    [250, 70, 60],
  ],
  green: [
    [30, 200, 40],
    [20, 150, 30],
    [70, 240, 90],
  ],
  blue: [
    [30, 40, 210],
    [20, 30, 160],
    [80, 90, 250],
  ],
};

async function colourImages(): Promise<UploadFile[]> {
  const files: UploadFile[] = [];
  for (const [colour, shades] of Object.entries(SHADES)) {
    for (const [index, [r, g, b]] of shades.entries()) {
      const data = await sharp({ create: { width: 64 + index * 16, height: 48, channels: 3, background: { r, g, b } } }).png().toBuffer();
      files.push({ name: `${colour}_${index}.png`, data });
    }
  }
  return files;
}

const colourOf = (fileName: string) => fileName.split('_')[0];

/**
 * Semantic text search through the real ONNX path: a dataset is indexed with the built-in model (no
 * text search: 409/422), the server is restarted on the same data with a tiny generated CLIP-style pair
 * (image encoder, text encoder, tokenizer.json): the old dataset is refused (its vectors are another
 * model's) and a new one is ranked by text.
 */
describe('semantic text search with a CLIP-style ONNX pair', () => {
  const dataDir = makeTempDir();
  const modelDir = makeTempDir();
  let pair: TinyClipPair;
  let files: UploadFile[];
  let t: TestApp;
  let owner: TestUser;
  let viewer: TestUser;
  let stranger: TestUser;
  let builtinDataset: string;
  let datasetId: string;

  const search = async (id: string, body: Record<string, unknown>, user: TestUser = owner) =>
    t.app.inject({ method: 'POST', url: `/api/v1/vector_search/${id}`, headers: { ...(await user.headers()), 'content-type': 'application/json' }, payload: JSON.stringify(body) });
  const explore = async (id: string, vql: unknown[]) =>
    t.app.inject({ method: 'GET', url: `/api/v1/explore/${id}?vql=${encodeURIComponent(JSON.stringify(vql))}`, headers: await owner.headers() });
  const models = async (id: string, user: TestUser = owner) => t.app.inject({ method: 'GET', url: `/api/v1/vector_search/${id}/embedding_models`, headers: await user.headers() });

  beforeAll(async () => {
    pair = await writeTinyClipPair(modelDir);
    files = await colourImages();
    t = await startTestApp({ dataDir });
    owner = await t.createUser('owner@example.com');
    viewer = await t.createUser('viewer@example.com');
    stranger = await t.createUser('stranger@example.com');
    builtinDataset = await readyDataset(t.app, await owner.headers(), files, 'built-in');
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    fs.rmSync(modelDir, { recursive: true, force: true });
  });

  describe('without a text model (the built-in model)', () => {
    it('answers vector_search with 409 saying which settings enable text search', async () => {
      const response = await search(builtinDataset, { text: 'red' });
      expect(response.statusCode).toBe(409);
      const detail = (response.json() as { detail: string }).detail;
      expect(detail).toContain('text-capable');
      for (const setting of ['VIZDEX_MODEL', 'VIZDEX_TEXT_MODEL', 'VIZDEX_TOKENIZER']) expect(detail).toContain(setting);
    });

    it('answers a VQL semantic term with 422', async () => {
      const response = await explore(builtinDataset, [{ text: { op: 'semantic', value: 'red' } }]);
      expect(response.statusCode).toBe(422);
      expect(response.body).toContain('VIZDEX_TEXT_MODEL');
    });

    it('lists the image-only model as the dataset\'s', async () => {
      const response = await models(builtinDataset);
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ models: [{ model_id: 'builtin-v1', modalities: ['image'], dimensions: expect.any(Number), is_dataset_model: true, text_model_id: null }] });
    });
  });

  describe('with the pair configured', () => {
    beforeAll(async () => {
      // Restart on the same data (and, in scale-out mode, the same database, queues and bucket).
      await t.app.close();
      await t.container.close();
      t = await startTestApp({ dataDir, env: pair.env });
      datasetId = await readyDataset(t.app, await owner.headers(), files, 'colours');
      const invite = await t.app.inject({
        method: 'PUT',
        url: `/api/v1/manage/${datasetId}/invite`,
        headers: { ...(await owner.headers()), 'content-type': 'application/json' },
        payload: JSON.stringify({ grant_to_user_email: viewer.email, role: 'viewer' }),
      });
      expect(invite.statusCode, invite.body).toBe(200);
    }, 120_000);

    it('ranks the red pictures first for "red", with cosine distances in increasing order', async () => {
      const response = await search(datasetId, { text: 'red' }, viewer);
      expect(response.statusCode, response.body).toBe(200);
      const body = response.json() as SearchBody;
      expect(body.model_id).toMatch(/^onnx:tiny-clip-vision:[0-9a-f]{8}$/);
      expect(body.entity_type).toBe('IMAGES');
      expect(body.results).toHaveLength(9);
      expect(body.results.slice(0, 3).map((r) => colourOf(r.file_name))).toEqual(['red', 'red', 'red']);
      const scores = body.results.map((r) => r.relevance_score);
      expect(scores).toEqual([...scores].sort((a, b) => a - b));
      expect(scores[2]).toBeLessThan(0.1);
      expect(scores[3]).toBeGreaterThan(0.5);
      const first = body.results[0]!;
      expect(first.relevance_score_type).toBe('cosine_distance');
      expect(first.media_uri).toBe(`http://localhost:80/api/v1/dataset/${datasetId}/media/${first.media_id}/file`);
      expect((await t.app.inject({ method: 'GET', url: new URL(first.media_thumb_uri).pathname, headers: await viewer.headers() })).statusCode).toBe(200);
    });

    it('understands any wording the tokenizer maps onto the colour, and honours limit', async () => {
      const body = (await search(datasetId, { text: '  A photo of something BLUE!', limit: 2 })).json() as SearchBody;
      expect(body.results.map((r) => colourOf(r.file_name))).toEqual(['blue', 'blue']);
      const green = (await search(datasetId, { text: 'green' })).json() as SearchBody;
      expect(green.results.slice(0, 3).every((r) => colourOf(r.file_name) === 'green')).toBe(true);
    });

    it('ranks objects by text too: the blue box of a half-red, half-blue picture for "blue"', async () => {
      const headers = await owner.headers();
      const halves = await sharp({ create: { width: 200, height: 100, channels: 3, background: { r: 230, g: 20, b: 20 } } })
        .composite([{ input: { create: { width: 100, height: 100, channels: 3, background: { r: 20, g: 30, b: 230 } } }, left: 100, top: 0 }])
        .png()
        .toBuffer();
      const { datasetId: id, transId } = await draftDataset(t.app, headers, [{ name: 'halves.png', data: halves }], 'boxes');
      const form = multipart([{ field: 'file', name: 'boxes.csv', data: Buffer.from('file_name,label,x,y,w,h\nhalves.png,left,0,0,100,100\nhalves.png,right,100,0,100,100\n') }]);
      const imported = await t.app.inject({ method: 'POST', url: `/api/v1/dataset/${id}/annotations`, headers: { ...headers, ...form.headers }, payload: form.payload });
      expect(imported.statusCode, imported.body).toBe(200);
      expect((await processFiles(t.app, headers, id, transId)).statusCode).toBe(202);
      expect(await waitForStatus(t.app, headers, id, ['READY', 'ERROR'], 60_000)).toMatchObject({ status_new: 'READY', n_objects: 2 });

      const body = (await search(id, { text: 'blue', entity_type: 'OBJECTS' })).json() as SearchBody;
      expect(body.entity_type).toBe('OBJECTS');
      expect(body.results.map((r) => r.bounding_box)).toEqual([
        [100, 0, 100, 100],
        [0, 0, 100, 100],
      ]);
      const red = (await search(id, { text: 'red', entity_type: 'OBJECTS', limit: 1 })).json() as SearchBody;
      expect(red.results.map((r) => r.bounding_box)).toEqual([[0, 0, 100, 100]]);
    });

    it('filters explore by a VQL semantic term with a threshold, clusters ordered by relevance', async () => {
      const response = await explore(datasetId, [{ text: { op: 'semantic', value: 'green', threshold: 0.9 } }]);
      expect(response.statusCode, response.body).toBe(200);
      const body = response.json() as ExploreBody;
      const names = body.clusters.flatMap((c) => c.previews.map((p) => p.file_name));
      expect(names.sort()).toEqual(['green_0.png', 'green_1.png', 'green_2.png']);
      for (const cluster of body.clusters) expect(cluster.relevance_score).toBeLessThanOrEqual(0.1);

      // Without a threshold every picture is there, the most relevant cluster first.
      const all = (await explore(datasetId, [{ text: { op: 'semantic', value: 'blue' } }])).json() as ExploreBody;
      expect(all.clusters.flatMap((c) => c.previews).map((p) => p.file_name)).toHaveLength(9);
      expect(colourOf(all.clusters[0]!.previews[0]!.file_name)).toBe('blue');
      const relevance = all.clusters.map((c) => c.relevance_score!);
      expect(relevance).toEqual([...relevance].sort((a, b) => a - b));

      // ANDed with other terms: nothing is both red and green.
      const none = (await explore(datasetId, [
        { text: { op: 'semantic', value: 'red', threshold: 0.9 } },
        { text: { op: 'semantic', value: 'green', threshold: 0.9 } },
      ])).json() as ExploreBody;
      expect(none.clusters).toEqual([]);
    });

    it('lists the pair as an image and text model, the dataset\'s own', async () => {
      const response = await models(datasetId, viewer);
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({
        models: [
          {
            model_id: expect.stringMatching(/^onnx:tiny-clip-vision:[0-9a-f]{8}$/),
            modalities: ['image', 'text'],
            dimensions: 8,
            is_dataset_model: true,
            text_model_id: expect.stringMatching(/^onnx-text:tiny-clip-text:[0-9a-f]{8}$/),
          },
        ],
      });
    });

    it('refuses (409) to search a dataset indexed with another model, saying what to do', async () => {
      expect((await models(builtinDataset)).json()).toMatchObject({ models: [{ is_dataset_model: false, modalities: ['image', 'text'] }] });
      const refused = await search(builtinDataset, { text: 'red' });
      expect(refused.statusCode).toBe(409);
      expect(refused.body).toContain('builtin-v1');
      expect(refused.body).toContain('new dataset with this model');
      expect((await explore(builtinDataset, [{ text: { op: 'semantic', value: 'red' } }])).statusCode).toBe(409);
    });

    it('validates the request and hides the dataset from non-members', async () => {
      expect((await search(datasetId, { text: '' })).statusCode).toBe(422);
      expect((await search(datasetId, { text: '   ' })).statusCode).toBe(422);
      expect((await search(datasetId, { text: 'red', limit: 0 })).statusCode).toBe(422);
      expect((await search(datasetId, { text: 'red', limit: 1001 })).statusCode).toBe(422);
      expect((await search(datasetId, { text: 'red', entity_type: 'VIDEOS' })).statusCode).toBe(422);
      expect((await search(datasetId, { text: 'red' }, stranger)).statusCode).toBe(404);
      expect((await models(datasetId, stranger)).statusCode).toBe(404);
    });
  });
});
