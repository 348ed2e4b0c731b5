import crypto from 'node:crypto';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../fixtures/media.js';
import { draftDataset, getDataset, processFiles, type Headers } from '../helpers/flows.js';
import { multipart, startTestApp, storedKeys, waitForStatus, type TestApp, type TestUser } from '../helpers/harness.js';

type Actor = 'owner' | 'editor' | 'viewer' | 'non-member';
const ACTORS: Actor[] = ['owner', 'editor', 'viewer', 'non-member'];
type Needs = 'viewer' | 'editor' | 'owner';

/** What one cell of the matrix acts on: a fresh DRAFT dataset with one uploaded image and three members. */
interface Target {
  datasetId: string;
  transId: string;
  /** A viewer nobody acts as, for the revoke endpoint. */
  bystanderEmail: string;
  /** A registered user who is not a member, for the invite endpoint. */
  inviteeEmail: string;
}

interface Endpoint {
  name: string;
  needs: Needs;
  /** The status the allowed roles get. */
  ok: number;
  request(target: Target, image: Buffer): InjectOptions;
}

const jsonBody = (body: unknown): Pick<InjectOptions, 'headers' | 'payload'> => ({ headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });
const uploadBody = (image: Buffer, field = 'files') => {
  const body = multipart([{ name: 'extra.jpg', data: image, field }]);
  return { headers: body.headers, payload: body.payload };
};

/** Every dataset endpoint that exists, with the least role it needs (SPEC §8). */
const ENDPOINTS: Endpoint[] = [
  { name: 'GET /dataset/{id}', needs: 'viewer', ok: 200, request: (t) => ({ method: 'GET', url: `/api/v1/dataset/${t.datasetId}` }) },
  { name: 'GET /dataset/{id}/failed_files', needs: 'viewer', ok: 200, request: (t) => ({ method: 'GET', url: `/api/v1/dataset/${t.datasetId}/failed_files` }) },
  { name: 'DELETE /dataset/{id}', needs: 'owner', ok: 200, request: (t) => ({ method: 'DELETE', url: `/api/v1/dataset/${t.datasetId}` }) },
  { name: 'GET /ingestion/{id}/data_files', needs: 'editor', ok: 200, request: (t) => ({ method: 'GET', url: `/api/v1/ingestion/${t.datasetId}/data_files` }) },
  {
    name: 'POST /ingestion/{id}/data_files/{trans}',
    needs: 'editor',
    ok: 202,
    request: (t, image) => ({ method: 'POST', url: `/api/v1/ingestion/${t.datasetId}/data_files/${t.transId}`, ...uploadBody(image) }),
  },
  { name: 'POST /ingestion/{id}/process_files/{trans}', needs: 'editor', ok: 202, request: (t) => ({ method: 'POST', url: `/api/v1/ingestion/${t.datasetId}/process_files/${t.transId}` }) },
  {
    name: 'PUT /manage/{id}/invite',
    needs: 'owner',
    ok: 200,
    request: (t) => ({ method: 'PUT', url: `/api/v1/manage/${t.datasetId}/invite`, ...jsonBody({ grant_to_user_email: t.inviteeEmail }) }),
  },
  { name: 'GET /manage/{id}/share', needs: 'viewer', ok: 200, request: (t) => ({ method: 'GET', url: `/api/v1/manage/${t.datasetId}/share` }) },
  {
    name: 'DELETE /manage/{id}/share/{email}',
    needs: 'owner',
    ok: 200,
    request: (t) => ({ method: 'DELETE', url: `/api/v1/manage/${t.datasetId}/share/${encodeURIComponent(t.bystanderEmail)}` }),
  },
];

/** Malformed requests: a non-member must still get 404 and a member without the role 403 (access before validation). */
const MALFORMED: { name: string; needs: Needs; request(target: Target, image: Buffer): InjectOptions }[] = [
  { name: 'upload with files[]', needs: 'editor', request: (t, image) => ({ method: 'POST', url: `/api/v1/ingestion/${t.datasetId}/data_files/${t.transId}`, ...uploadBody(image, 'files[]') }) },
  { name: 'upload with no body', needs: 'editor', request: (t) => ({ method: 'POST', url: `/api/v1/ingestion/${t.datasetId}/data_files/${t.transId}` }) },
  { name: 'upload with a JSON body', needs: 'editor', request: (t) => ({ method: 'POST', url: `/api/v1/ingestion/${t.datasetId}/data_files/${t.transId}`, ...jsonBody({ files: 1 }) }) },
  { name: 'upload to an unknown transaction', needs: 'editor', request: (t, image) => ({ method: 'POST', url: `/api/v1/ingestion/${t.datasetId}/data_files/${crypto.randomUUID()}`, ...uploadBody(image) }) },
  { name: 'process_files with a broken JSON body', needs: 'editor', request: (t) => ({ method: 'POST', url: `/api/v1/ingestion/${t.datasetId}/process_files/${t.transId}`, headers: { 'content-type': 'application/json' }, payload: '{oops' }) },
  { name: 'invite with broken JSON', needs: 'owner', request: (t) => ({ method: 'PUT', url: `/api/v1/manage/${t.datasetId}/invite`, headers: { 'content-type': 'application/json' }, payload: '{"grant_to_user_email":' }) },
  { name: 'invite without grant_to_user_email', needs: 'owner', request: (t) => ({ method: 'PUT', url: `/api/v1/manage/${t.datasetId}/invite`, ...jsonBody({ email: t.inviteeEmail }) }) },
  { name: 'invite with an unknown role', needs: 'owner', request: (t) => ({ method: 'PUT', url: `/api/v1/manage/${t.datasetId}/invite`, ...jsonBody({ grant_to_user_email: t.inviteeEmail, role: 'owner' }) }) },
  { name: 'invite of an unregistered email', needs: 'owner', request: (t) => ({ method: 'PUT', url: `/api/v1/manage/${t.datasetId}/invite`, ...jsonBody({ grant_to_user_email: 'ghost@example.com' }) }) },
  { name: 'failed_files with a bad page_size', needs: 'viewer', request: (t) => ({ method: 'GET', url: `/api/v1/dataset/${t.datasetId}/failed_files?page_size=abc` }) },
  { name: 'revoke of a non-member', needs: 'owner', request: (t) => ({ method: 'DELETE', url: `/api/v1/manage/${t.datasetId}/share/ghost%40example.com` }) },
];

const RANK: Record<Actor, number> = { 'non-member': -1, viewer: 0, editor: 1, owner: 2 };

function expectedStatus(actor: Actor, needs: Needs, ok: number): number {
  if (actor === 'non-member') return 404;
  return RANK[actor] >= RANK[needs] ? ok : 403;
}

describe('role matrix: every dataset endpoint × {owner, editor, viewer, non-member}', () => {
  let t: TestApp;
  let image: Buffer;
  const users = {} as Record<Actor, TestUser>;
  const headersOf = {} as Record<Actor, Headers>;
  let bystander: TestUser;
  let invitee: TestUser;

  beforeAll(async () => {
    // No job runner: process_files is accepted and queued; nothing else changes under the test's feet.
    t = await startTestApp({ jobs: false });
    for (const actor of ACTORS) {
      users[actor] = await t.createUser(`${actor}@example.com`);
      headersOf[actor] = await users[actor].headers();
    }
    bystander = await t.createUser('bystander@example.com');
    invitee = await t.createUser('invitee@example.com');
    image = await makeImage({ width: 64, height: 64, seed: 7 });
  });
  afterAll(async () => t.close());

  async function freshTarget(): Promise<Target> {
    const owner = headersOf.owner;
    const { datasetId, transId } = await draftDataset(t.app, owner, [{ name: 'first.jpg', data: image }], 'matrix');
    for (const [email, role] of [
      ['editor@example.com', 'editor'],
      ['viewer@example.com', 'viewer'],
      [bystander.email, 'viewer'],
    ] as const) {
      const response = await t.app.inject({ method: 'PUT', url: `/api/v1/manage/${datasetId}/invite`, headers: owner, payload: { grant_to_user_email: email, role } });
      expect(response.statusCode, response.body).toBe(200);
    }
    return { datasetId, transId, bystanderEmail: bystander.email, inviteeEmail: invitee.email };
  }

  /** Everything a forbidden request must leave alone. */
  async function snapshot(target: Target) {
    const dataset = await t.container.db.selectFrom('datasets').select(['status', 'progress']).where('id', '=', target.datasetId).executeTakeFirst();
    const media = await t.container.db.selectFrom('media').select('id').where('dataset_id', '=', target.datasetId).execute();
    const members = await t.container.db.selectFrom('dataset_members').select(['user_id', 'role']).where('dataset_id', '=', target.datasetId).orderBy('user_id').execute();
    const transactions = await t.container.db.selectFrom('upload_transactions').select(['id', 'status']).where('dataset_id', '=', target.datasetId).orderBy('id').execute();
    const tasks = await t.container.db.selectFrom('tasks').select('id').where('dataset_id', '=', target.datasetId).execute();
    return { dataset, media: media.length, members, transactions, tasks: tasks.length };
  }

  for (const endpoint of ENDPOINTS) {
    for (const actor of ACTORS) {
      const expected = expectedStatus(actor, endpoint.needs, endpoint.ok);
      it(`${endpoint.name} as ${actor} → ${expected}`, async () => {
        const target = await freshTarget();
        const before = await snapshot(target);
        const request = endpoint.request(target, image);
        const response = await t.app.inject({ ...request, headers: { ...headersOf[actor], ...(request.headers as Headers | undefined) } });
        expect(response.statusCode, response.body).toBe(expected);
        if (expected === 404) expect(response.json()).toEqual({ detail: 'Dataset not found' });
        if (expected === 403) {
          expect(response.json()).toEqual({ detail: `Your role on this dataset is ${actor}; this operation requires ${endpoint.needs}` });
        }
        if (expected >= 400) expect(await snapshot(target)).toEqual(before);
      });
    }
  }

  it('allowed calls have the effect they promise', async () => {
    // Reads report the caller's role.
    const target = await freshTarget();
    for (const actor of ['owner', 'editor', 'viewer'] as const) {
      expect(await getDataset(t.app, headersOf[actor], target.datasetId)).toMatchObject({ id: target.datasetId, role: actor });
    }
    // An editor's upload lands in the transaction and their process_files starts the work.
    const upload = ENDPOINTS.find((e) => e.name.startsWith('POST /ingestion/{id}/data_files'))!.request(target, image);
    const uploaded = await t.app.inject({ ...upload, headers: { ...headersOf.editor, ...(upload.headers as Headers) } });
    expect(uploaded.statusCode).toBe(202);
    expect((await snapshot(target)).media).toBe(2);
    expect((await processFiles(t.app, headersOf.editor, target.datasetId, target.transId)).statusCode).toBe(202);
    expect(await getDataset(t.app, headersOf.viewer, target.datasetId)).toMatchObject({ status_new: 'INDEXING' });
    const tasks = (await t.app.inject({ method: 'GET', url: `/api/v1/tasks?dataset_id=${target.datasetId}`, headers: headersOf.viewer })).json() as {
      tasks: { created_by: string }[];
    };
    expect(tasks.tasks.map((task) => task.created_by)).toEqual(['editor@example.com']);
  });

  for (const malformed of MALFORMED) {
    for (const actor of ACTORS) {
      // Members with the role get whatever validation says (422, 404, ...); the point here is who gets told less.
      if (actor !== 'non-member' && RANK[actor] >= RANK[malformed.needs]) continue;
      const expected = actor === 'non-member' ? 404 : 403;
      it(`${malformed.name} as ${actor} → ${expected} (access is checked before validation)`, async () => {
        const target = await freshTarget();
        const before = await snapshot(target);
        const request = malformed.request(target, image);
        const response = await t.app.inject({ ...request, headers: { ...headersOf[actor], ...(request.headers as Headers | undefined) } });
        expect(response.statusCode, response.body).toBe(expected);
        expect(typeof (response.json() as { detail: unknown }).detail).toBe('string');
        expect(await snapshot(target)).toEqual(before);
      });
    }
  }

  it('the malformed requests are indeed malformed: the owner gets a 4xx that is not 403', async () => {
    const target = await freshTarget();
    for (const malformed of MALFORMED) {
      const request = malformed.request(target, image);
      const response = await t.app.inject({ ...request, headers: { ...headersOf.owner, ...(request.headers as Headers | undefined) } });
      expect(response.statusCode, `${malformed.name}: ${response.body}`).toBeGreaterThanOrEqual(400);
      expect(response.statusCode, malformed.name).toBeLessThan(500);
      expect(response.statusCode, malformed.name).not.toBe(403);
    }
  });

  for (const [label, id] of [
    ['a random UUID', crypto.randomUUID()],
    ['a non-UUID id', 'definitely-not-a-uuid'],
    ['an upper-case UUID of nothing', crypto.randomUUID().toUpperCase()],
  ] as const) {
    it(`every endpoint is 404 "Dataset not found" for ${label}, whoever asks`, async () => {
      const target: Target = { datasetId: id, transId: crypto.randomUUID(), bystanderEmail: bystander.email, inviteeEmail: invitee.email };
      for (const actor of ACTORS) {
        for (const endpoint of [...ENDPOINTS, ...MALFORMED]) {
          const request = endpoint.request(target, image);
          const response = await t.app.inject({ ...request, headers: { ...headersOf[actor], ...(request.headers as Headers | undefined) } });
          expect(response.statusCode, `${endpoint.name} as ${actor}: ${response.body}`).toBe(404);
          expect(response.json()).toEqual({ detail: 'Dataset not found' });
        }
      }
    });
  }
});

describe('listings show only what the caller may access', () => {
  let t: TestApp;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let aliceDataset: string;
  let bobDataset: string;

  beforeAll(async () => {
    t = await startTestApp();
    alice = await t.createUser('alice@example.com');
    bob = await t.createUser('bob@example.com');
    carol = await t.createUser('carol@example.com');
    const image = await makeImage({ width: 64, height: 64, seed: 3 });
    for (const user of [alice, bob]) {
      const headers = await user.headers();
      const { datasetId, transId } = await draftDataset(t.app, headers, [{ name: 'a.jpg', data: image }], `${user.email} data`);
      expect((await processFiles(t.app, headers, datasetId, transId)).statusCode).toBe(202);
      await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR']);
      if (user === alice) aliceDataset = datasetId;
      else bobDataset = datasetId;
    }
    // Alice also has a dataset still in DRAFT, with no task.
    await draftDataset(t.app, await alice.headers(), [], 'alice draft');
  });
  afterAll(async () => t.close());

  const datasetsOf = async (user: TestUser) => {
    const response = await t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers: await user.headers() });
    expect(response.statusCode).toBe(200);
    return response.json() as { id: string; display_name: string; role: string }[];
  };
  const tasksOf = async (user: TestUser, query = '') => {
    const response = await t.app.inject({ method: 'GET', url: `/api/v1/tasks${query}`, headers: await user.headers() });
    expect(response.statusCode).toBe(200);
    return response.json() as { tasks: { dataset_id: string }[]; total: number };
  };

  it('GET /datasets is a bare array of the datasets the caller can access', async () => {
    const mine = await datasetsOf(alice);
    expect(mine.map((d) => d.display_name).sort()).toEqual(['alice draft', 'alice@example.com data']);
    expect(mine.every((d) => d.role === 'owner')).toBe(true);
    expect((await datasetsOf(bob)).map((d) => d.id)).toEqual([bobDataset]);
    expect(await datasetsOf(carol)).toEqual([]);
  });

  it('GET /datasets sorts by sort_by (newest first by default, names A-Z) and rejects unknown keys with 422', async () => {
    const byName = await t.app.inject({ method: 'GET', url: '/api/v1/datasets?sort_by=display_name', headers: await alice.headers() });
    expect((byName.json() as { display_name: string }[]).map((d) => d.display_name)).toEqual(['alice draft', 'alice@example.com data']);
    const byDefault = (await datasetsOf(alice)).map((d) => d.display_name);
    expect(byDefault).toEqual(['alice draft', 'alice@example.com data']); // the draft was created last
    const byCreation = await t.app.inject({ method: 'GET', url: '/api/v1/datasets?sort_by=created_at&include_hidden=true', headers: await alice.headers() });
    expect((byCreation.json() as { display_name: string }[]).map((d) => d.display_name)).toEqual(byDefault);
    const bad = await t.app.inject({ method: 'GET', url: '/api/v1/datasets?sort_by=size', headers: await alice.headers() });
    expect(bad.statusCode).toBe(422);
  });

  it('GET /tasks shows only tasks of accessible datasets, even when filtering by another dataset', async () => {
    expect((await tasksOf(alice)).tasks.map((task) => task.dataset_id)).toEqual([aliceDataset]);
    expect((await tasksOf(bob)).tasks.map((task) => task.dataset_id)).toEqual([bobDataset]);
    expect(await tasksOf(carol)).toMatchObject({ total: 0, tasks: [] });
    expect(await tasksOf(alice, `?dataset_id=${bobDataset}`)).toMatchObject({ total: 0, tasks: [] });
  });

  it('sharing adds the dataset and its tasks to the member listings; revoking removes them', async () => {
    const invite = await t.app.inject({ method: 'PUT', url: `/api/v1/manage/${bobDataset}/invite`, headers: await bob.headers(), payload: { grant_to_user_email: 'carol@example.com' } });
    expect(invite.statusCode).toBe(200);
    expect(await datasetsOf(carol)).toEqual([expect.objectContaining({ id: bobDataset, role: 'viewer' })]);
    expect((await tasksOf(carol)).tasks.map((task) => task.dataset_id)).toEqual([bobDataset]);

    const revoke = await t.app.inject({ method: 'DELETE', url: `/api/v1/manage/${bobDataset}/share/carol%40example.com`, headers: await bob.headers() });
    expect(revoke.statusCode).toBe(200);
    expect(await datasetsOf(carol)).toEqual([]);
    expect(await tasksOf(carol)).toMatchObject({ total: 0, tasks: [] });
  });
});

describe('deleting a dataset', () => {
  let t: TestApp;
  let owner: TestUser;
  let viewer: TestUser;

  beforeAll(async () => {
    t = await startTestApp();
    owner = await t.createUser('owner@example.com');
    viewer = await t.createUser('viewer@example.com');
  });
  afterAll(async () => t.close());

  it('a deleted dataset is 404 everywhere, gone from listings, and its blobs folder is removed', async () => {
    const headers = await owner.headers();
    const images = await Promise.all([1, 2].map((seed) => makeImage({ width: 64, height: 64, seed })));
    const { datasetId, transId } = await draftDataset(t.app, headers, images.map((data, i) => ({ name: `${i}.jpg`, data })));
    expect((await processFiles(t.app, headers, datasetId, transId)).statusCode).toBe(202);
    await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR']);
    await t.app.inject({ method: 'PUT', url: `/api/v1/manage/${datasetId}/invite`, headers, payload: { grant_to_user_email: 'viewer@example.com' } });
    const stored = await storedKeys(t, `datasets/${datasetId}`);
    expect(stored.filter((k) => k.includes('/media/'))).toHaveLength(2);
    expect(stored.filter((k) => k.includes('/thumbs/'))).toHaveLength(2);

    const deleted = await t.app.inject({ method: 'DELETE', url: `/api/v1/dataset/${datasetId}`, headers });
    expect(deleted.statusCode, deleted.body).toBe(200);
    expect(deleted.json()).toEqual({ id: datasetId, deleted: true });
    expect(await storedKeys(t, `datasets/${datasetId}`)).toEqual([]);

    const target: Target = { datasetId, transId, bystanderEmail: 'viewer@example.com', inviteeEmail: 'viewer@example.com' };
    for (const user of [owner, viewer]) {
      const userHeaders = await user.headers();
      for (const endpoint of ENDPOINTS) {
        const request = endpoint.request(target, images[0]!);
        const response = await t.app.inject({ ...request, headers: { ...userHeaders, ...(request.headers as Headers | undefined) } });
        expect(response.statusCode, `${endpoint.name}: ${response.body}`).toBe(404);
      }
      expect((await t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers: userHeaders })).json()).toEqual([]);
      expect((await t.app.inject({ method: 'GET', url: '/api/v1/tasks', headers: userHeaders })).json()).toMatchObject({ total: 0, tasks: [] });
    }
    // Nothing of it is left in the database either.
    expect(await t.container.db.selectFrom('media').select('id').where('dataset_id', '=', datasetId).execute()).toEqual([]);
    expect(await t.container.db.selectFrom('dataset_members').select('user_id').where('dataset_id', '=', datasetId).execute()).toEqual([]);
  });

  it('deleting a dataset while it is processing answers 200, ends its task and leaves no blobs behind', async () => {
    const headers = await owner.headers();
    const images = await Promise.all([1, 2, 3, 4, 5, 6].map((seed) => makeImage({ width: 64, height: 64, seed: seed + 10 })));
    // A few rounds: the delete lands at a different point of the decoding each time.
    for (let round = 0; round < 4; round++) {
      const { datasetId, transId } = await draftDataset(t.app, headers, images.map((data, i) => ({ name: `${i}.jpg`, data })));
      expect((await processFiles(t.app, headers, datasetId, transId)).statusCode).toBe(202);
      await new Promise((resolve) => setTimeout(resolve, round * 5));
      const deleted = await t.app.inject({ method: 'DELETE', url: `/api/v1/dataset/${datasetId}`, headers });
      expect(deleted.statusCode, deleted.body).toBe(200);
      await t.container.queue.drained(20);
      expect(await storedKeys(t, `datasets/${datasetId}`), `round ${round}: blobs left behind`).toEqual([]);
      const task = await t.container.db.selectFrom('tasks').select(['status', 'holds_lock']).where('dataset_id', '=', datasetId).executeTakeFirstOrThrow();
      // ABORTED when the delete came first; a round whose decoding won the race may have completed.
      expect(['ABORTED', 'COMPLETED']).toContain(task.status);
      expect(task.holds_lock).toBe(0);
      expect((await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}`, headers })).statusCode).toBe(404);
    }
  });
});
