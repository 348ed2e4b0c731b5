/**
 * Issue 9: the access matrix, generated from the app's real route table. Every `/api/v1` route must
 * have a row in ROUTES (the test fails on a route nobody thought about), and every row is called by
 * eight actors: three kinds of bad token, a valid user who is not a member, and the three roles.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadPath, signDownload } from '../../src/export/download-link.js';
import { buildApp } from '../../src/http/app.js';
import { Keyring } from '../../src/security/keyring.js';
import { makeImage } from '../fixtures/media.js';
import { addMedia, draftDataset, processFiles, readyDataset, type Headers } from '../helpers/flows.js';
import { mintJwt, multipart, startTestApp, waitForStatus, type TestApp, type TestUser } from '../helpers/harness.js';

const ACTORS = ['no token', 'expired token', 'wrong signature', "other user's key", 'non-member', 'viewer', 'editor', 'owner'] as const;
type Actor = (typeof ACTORS)[number];
type Member = 'viewer' | 'editor' | 'owner';
type Needs = 'public' | 'user' | 'admin' | Member;
const BAD_TOKENS: Actor[] = ['no token', 'expired token', 'wrong signature', "other user's key"];
const RANK: Record<Member, number> = { viewer: 0, editor: 1, owner: 2 };
const PASSWORD = 'correct horse battery staple';

/** What the requests act on: built once in beforeAll. */
interface World {
  /** READY, owned by `owner`, with `editor` and `viewer` members. */
  datasetId: string;
  transId: string;
  mediaId: string;
  originalUri: string;
  exportId: string;
  downloadUri: string;
  image: Buffer;
  users: Record<'admin' | 'owner' | 'editor' | 'viewer' | 'outsider' | 'bystander' | 'invitee', TestUser>;
  /** Datasets for the calls that succeed and change state (one per call). */
  ready: string[];
  partial: string[];
}

interface Call {
  /** The user the request acts as (bad tokens are built from this user's credentials). */
  user: TestUser;
  /** Whether this actor is expected to succeed; builders use a fresh dataset only then. */
  succeeds: boolean;
}

interface Route {
  needs: Needs;
  /** The status an actor with enough rights gets. */
  ok: number;
  request(w: World, call: Call): Promise<InjectOptions> | InjectOptions;
}

const json = (body: unknown): Pick<InjectOptions, 'headers' | 'payload'> => ({ headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });
const upload = (image: Buffer, field: string, fields: Record<string, string> = {}) => {
  const body = multipart([{ name: 'extra.jpg', data: image, field }], fields);
  return { headers: body.headers, payload: body.payload };
};
const annotationUpload = (csv: string) => {
  const body = multipart([{ name: 'labels.csv', data: Buffer.from(csv), field: 'file' }]);
  return { headers: body.headers, payload: body.payload };
};
const unique = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}@example.com`;

let t: TestApp;

/** A fresh DRAFT dataset of the owner (one uploaded image, editor and viewer invited). */
async function freshDraft(w: World): Promise<{ datasetId: string; transId: string }> {
  const owner = await w.users.owner.headers();
  const draft = await draftDataset(t.app, owner, [{ name: 'first.jpg', data: w.image }], 'fresh');
  await share(w, draft.datasetId);
  return draft;
}

async function share(w: World, datasetId: string): Promise<void> {
  const owner = await w.users.owner.headers();
  for (const [user, role] of [
    [w.users.editor, 'editor'],
    [w.users.viewer, 'viewer'],
    [w.users.bystander, 'viewer'],
  ] as const) {
    const response = await send({ method: 'PUT', url: `/api/v1/manage/${datasetId}/invite`, ...json({ grant_to_user_email: user.email, role }) }, owner);
    expect(response.statusCode, response.body).toBe(200);
  }
}

/** A new tag in the shared dataset (created by the owner through the service), for the calls that act on one. */
async function newTag(w: World): Promise<string> {
  return (await t.container.services.tags.create(w.users.owner.user_id, w.datasetId, `tag-${crypto.randomUUID()}`)).id;
}

/**
 * Every `/api/v1` route (HEAD routes follow their GET), keyed as Fastify names it. A new route
 * without a row here fails 'every route of the app is in the matrix'.
 */
const ROUTES: Record<string, Route> = {
  // Public: login, sign-up, logout, the login page's config and the signed export download.
  'POST /api/v1/auth': { needs: 'public', ok: 200, request: (w) => ({ method: 'POST', url: '/api/v1/auth', ...json({ username: w.users.viewer.email, password: PASSWORD }) }) },
  'POST /api/v1/auth/signup': { needs: 'public', ok: 200, request: () => ({ method: 'POST', url: '/api/v1/auth/signup', ...json({ email: unique('signup'), password: PASSWORD }) }) },
  'GET /api/v1/auth/config': { needs: 'public', ok: 200, request: () => ({ method: 'GET', url: '/api/v1/auth/config' }) },
  'POST /api/v1/auth/logout': { needs: 'public', ok: 200, request: () => ({ method: 'POST', url: '/api/v1/auth/logout' }) },
  'GET /api/v1/dataset/:datasetId/export_download/:exportId': { needs: 'public', ok: 200, request: (w) => ({ method: 'GET', url: new URL(w.downloadUri).pathname + new URL(w.downloadUri).search }) },

  // Any authenticated user.
  'GET /api/v1/auth/me': { needs: 'user', ok: 200, request: () => ({ method: 'GET', url: '/api/v1/auth/me' }) },
  'GET /api/v1/api_credentials': { needs: 'user', ok: 200, request: () => ({ method: 'GET', url: '/api/v1/api_credentials' }) },
  'GET /api/v1/api_keys': { needs: 'user', ok: 200, request: () => ({ method: 'GET', url: '/api/v1/api_keys' }) },
  'DELETE /api/v1/api_keys/:apiKey': {
    needs: 'user',
    ok: 200,
    request: async (_w, call) => {
      const { api_key } = await t.container.services.auth.createApiCredentials(call.user.user_id);
      return { method: 'DELETE', url: `/api/v1/api_keys/${api_key}` };
    },
  },
  'GET /api/v1/datasets': { needs: 'user', ok: 200, request: () => ({ method: 'GET', url: '/api/v1/datasets' }) },
  'GET /api/v1/tasks': { needs: 'user', ok: 200, request: () => ({ method: 'GET', url: '/api/v1/tasks' }) },
  'GET /api/v1/ingestion/new_dataset': { needs: 'user', ok: 200, request: () => ({ method: 'GET', url: '/api/v1/ingestion/new_dataset?dataset_name=matrix' }) },
  // No S3 in the embedded run: an authenticated caller gets as far as the location check (400: not an s3:// URI).
  'POST /api/v1/dataset': {
    needs: 'user',
    ok: 400,
    request: () => ({ method: 'POST', url: '/api/v1/dataset', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'dataset_name=x&bucket_path=%2Ftmp%2Fnowhere' }),
  },

  // Administrators only (none of the eight actors is one; the admin is checked separately).
  'GET /api/v1/users': { needs: 'admin', ok: 200, request: () => ({ method: 'GET', url: '/api/v1/users' }) },
  'POST /api/v1/users': { needs: 'admin', ok: 200, request: () => ({ method: 'POST', url: '/api/v1/users', ...json({ email: unique('created') }) }) },

  // Dataset viewers.
  'GET /api/v1/dataset/:datasetId': { needs: 'viewer', ok: 200, request: (w) => ({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}` }) },
  'GET /api/v1/dataset/:datasetId/failed_files': { needs: 'viewer', ok: 200, request: (w) => ({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}/failed_files` }) },
  'GET /api/v1/manage/:datasetId/share': { needs: 'viewer', ok: 200, request: (w) => ({ method: 'GET', url: `/api/v1/manage/${w.datasetId}/share` }) },
  'GET /api/v1/explore/:datasetId': { needs: 'viewer', ok: 200, request: (w) => ({ method: 'GET', url: `/api/v1/explore/${w.datasetId}` }) },
  'GET /api/v1/explore/:datasetId/exploration_metadata': { needs: 'viewer', ok: 200, request: (w) => ({ method: 'GET', url: `/api/v1/explore/${w.datasetId}/exploration_metadata` }) },
  'GET /api/v1/dataset/:datasetId/media/:mediaId/file': { needs: 'viewer', ok: 200, request: (w) => ({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}/media/${w.mediaId}/file` }) },
  'GET /api/v1/dataset/:datasetId/media/:mediaId/thumbnail': { needs: 'viewer', ok: 200, request: (w) => ({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}/media/${w.mediaId}/thumbnail` }) },
  'GET /api/v1/dataset/:datasetId/media/id': {
    needs: 'viewer',
    ok: 200,
    request: (w) => ({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}/media/id?original_media_uri=${encodeURIComponent(w.originalUri)}` }),
  },
  'GET /api/v1/dataset/:datasetId/media/:mediaId/duplicates': { needs: 'viewer', ok: 200, request: (w) => ({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}/media/${w.mediaId}/duplicates` }) },
  'GET /api/v1/dataset/:datasetId/media/:mediaId': { needs: 'viewer', ok: 200, request: (w) => ({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}/media/${w.mediaId}` }) },
  'GET /api/v1/dataset/:datasetId/issues_summary': { needs: 'viewer', ok: 200, request: (w) => ({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}/issues_summary` }) },
  'GET /api/v1/dataset/:datasetId/duplicate_groups': { needs: 'viewer', ok: 200, request: (w) => ({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}/duplicate_groups` }) },
  'POST /api/v1/dataset/:datasetId/search-image-similarity': {
    needs: 'viewer',
    ok: 200,
    request: (w) => ({ method: 'POST', url: `/api/v1/dataset/${w.datasetId}/search-image-similarity`, ...upload(w.image, 'file') }),
  },
  'GET /api/v1/dataset/:datasetId/export_context_async': {
    needs: 'viewer',
    ok: 200,
    request: (w) => ({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}/export_context_async?file_name=m.zip&export_format=json` }),
  },
  'POST /api/v1/dataset/:datasetId/export_entities_async': {
    needs: 'viewer',
    ok: 200,
    request: (w) => ({ method: 'POST', url: `/api/v1/dataset/${w.datasetId}/export_entities_async`, ...json({ media_selection: [{ type: 'media', payload: { media_ids: [w.mediaId] } }] }) }),
  },
  'GET /api/v1/dataset/:datasetId/export_status': {
    needs: 'viewer',
    ok: 200,
    request: (w) => ({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}/export_status?export_task_id=${w.exportId}` }),
  },

  // The matrix runs on the built-in model: text search answers 409 (no text-capable model) to those who may see the dataset.
  'POST /api/v1/vector_search/:datasetId': { needs: 'viewer', ok: 409, request: (w) => ({ method: 'POST', url: `/api/v1/vector_search/${w.datasetId}`, ...json({ text: 'a red car' }) }) },
  'GET /api/v1/vector_search/:datasetId/embedding_models': { needs: 'viewer', ok: 200, request: (w) => ({ method: 'GET', url: `/api/v1/vector_search/${w.datasetId}/embedding_models` }) },
  'GET /api/v1/dataset/:datasetId/tags': { needs: 'viewer', ok: 200, request: (w) => ({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}/tags` }) },
  'GET /api/v1/dataset/:datasetId/media/:mediaId/tags': { needs: 'viewer', ok: 200, request: (w) => ({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}/media/${w.mediaId}/tags` }) },
  'GET /api/v1/dataset/:datasetId/labels': { needs: 'viewer', ok: 200, request: (w) => ({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}/labels` }) },
  'GET /api/v1/dataset/:datasetId/annotations/imports': { needs: 'viewer', ok: 200, request: (w) => ({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}/annotations/imports` }) },
  'GET /api/v1/dataset/:datasetId/annotations/imports/:importId': {
    needs: 'viewer',
    ok: 200,
    request: async (w) => {
      const created = await send({ method: 'POST', url: `/api/v1/dataset/${w.datasetId}/annotations`, ...annotationUpload('file_name,label\nnobody.jpg,cat\n') }, await w.users.owner.headers());
      const report = created.json() as { annotation_import_id: string };
      return { method: 'GET', url: `/api/v1/dataset/${w.datasetId}/annotations/imports/${report.annotation_import_id}` };
    },
  },

  // Editors: each allowed call gets a dataset of its own in the state the call needs.
  'POST /api/v1/dataset/:datasetId/tags': {
    needs: 'editor',
    ok: 201,
    request: (w) => ({ method: 'POST', url: `/api/v1/dataset/${w.datasetId}/tags`, ...json({ name: `tag-${crypto.randomUUID()}` }) }),
  },
  'DELETE /api/v1/dataset/:datasetId/tags/:tagId': {
    needs: 'editor',
    ok: 200,
    request: async (w) => ({ method: 'DELETE', url: `/api/v1/dataset/${w.datasetId}/tags/${await newTag(w)}` }),
  },
  'POST /api/v1/dataset/:datasetId/tags/:tagId/media': {
    needs: 'editor',
    ok: 200,
    request: async (w) => ({ method: 'POST', url: `/api/v1/dataset/${w.datasetId}/tags/${await newTag(w)}/media`, ...json({ media_ids: [w.mediaId] }) }),
  },
  'DELETE /api/v1/dataset/:datasetId/tags/:tagId/media': {
    needs: 'editor',
    ok: 200,
    request: async (w) => ({ method: 'DELETE', url: `/api/v1/dataset/${w.datasetId}/tags/${await newTag(w)}/media`, ...json({ media_ids: [w.mediaId] }) }),
  },
  'POST /api/v1/dataset/:datasetId/annotations': {
    needs: 'editor',
    ok: 200,
    // Names no media: the import is recorded (its row unmatched) and the dataset stays as it is.
    request: (w) => ({ method: 'POST', url: `/api/v1/dataset/${w.datasetId}/annotations`, ...annotationUpload('file_name,label\nnobody.jpg,cat\n') }),
  },
  'PUT /api/v1/dataset/:datasetId/media/:mediaId/caption': {
    needs: 'editor',
    ok: 200,
    request: (w) => ({ method: 'PUT', url: `/api/v1/dataset/${w.datasetId}/media/${w.mediaId}/caption`, ...json({ caption: 'a caption' }) }),
  },
  'PUT /api/v1/dataset/:datasetId/media/:mediaId/labels': {
    needs: 'editor',
    ok: 200,
    request: (w) => ({ method: 'PUT', url: `/api/v1/dataset/${w.datasetId}/media/${w.mediaId}/labels`, ...json({ labels: ['checked'] }) }),
  },
  'POST /api/v1/dataset/:datasetId/captions': {
    needs: 'editor',
    ok: 200,
    request: (w) => ({ method: 'POST', url: `/api/v1/dataset/${w.datasetId}/captions`, ...json({ captions: [{ media_id: w.mediaId, caption: 'a caption' }] }) }),
  },
  'GET /api/v1/ingestion/:datasetId/data_files': {
    needs: 'editor',
    ok: 200,
    request: async (w, call) => ({ method: 'GET', url: `/api/v1/ingestion/${call.succeeds ? (await freshDraft(w)).datasetId : w.datasetId}/data_files` }),
  },
  'POST /api/v1/ingestion/:datasetId/data_files/:transId': {
    needs: 'editor',
    ok: 202,
    request: async (w, call) => {
      const { datasetId, transId } = call.succeeds ? await freshDraft(w) : w;
      return { method: 'POST', url: `/api/v1/ingestion/${datasetId}/data_files/${transId}`, ...upload(w.image, 'files') };
    },
  },
  'POST /api/v1/ingestion/:datasetId/process_files/:transId': {
    needs: 'editor',
    ok: 202,
    request: async (w, call) => {
      const { datasetId, transId } = call.succeeds ? await freshDraft(w) : w;
      return { method: 'POST', url: `/api/v1/ingestion/${datasetId}/process_files/${transId}` };
    },
  },
  'POST /api/v1/dataset/:datasetId/add_media': {
    needs: 'editor',
    ok: 202,
    request: (w, call) => ({ method: 'POST', url: `/api/v1/dataset/${call.succeeds ? w.ready.pop()! : w.datasetId}/add_media`, ...upload(w.image, 'files[]') }),
  },
  'POST /api/v1/dataset/:datasetId/reindex': {
    needs: 'editor',
    ok: 202,
    request: (w, call) => ({ method: 'POST', url: `/api/v1/dataset/${call.succeeds ? w.partial.pop()! : w.datasetId}/reindex` }),
  },

  // Owners.
  'DELETE /api/v1/dataset/:datasetId': {
    needs: 'owner',
    ok: 200,
    request: async (w, call) => ({ method: 'DELETE', url: `/api/v1/dataset/${call.succeeds ? (await freshDraft(w)).datasetId : w.datasetId}` }),
  },
  'PUT /api/v1/manage/:datasetId/invite': {
    needs: 'owner',
    ok: 200,
    request: (w) => ({ method: 'PUT', url: `/api/v1/manage/${w.datasetId}/invite`, ...json({ grant_to_user_email: w.users.invitee.email }) }),
  },
  'DELETE /api/v1/manage/:datasetId/share/:email': {
    needs: 'owner',
    ok: 200,
    request: async (w) => {
      await share(w, w.datasetId); // the bystander is a member before every call
      return { method: 'DELETE', url: `/api/v1/manage/${w.datasetId}/share/${encodeURIComponent(w.users.bystander.email)}` };
    },
  },
};

function expectedStatus(route: Route, actor: Actor): number {
  if (route.needs === 'public') return route.ok;
  if (BAD_TOKENS.includes(actor)) return 401;
  if (route.needs === 'user') return route.ok;
  if (route.needs === 'admin') return 403;
  if (actor === 'non-member') return 404;
  return RANK[actor as Member] >= RANK[route.needs] ? route.ok : 403;
}

/** The Authorization header an actor sends (bad tokens are built on the owner's own credentials). */
async function credentials(w: World, actor: Actor): Promise<Headers> {
  const owner = w.users.owner;
  const now = Math.floor(Date.now() / 1000);
  const bearer = (jwt: string) => ({ authorization: `Bearer ${jwt}` });
  switch (actor) {
    case 'no token':
      return {};
    case 'expired token':
      return bearer(await mintJwt(owner.api_key, owner.api_secret, { iat: now - 1200, exp: now - 600 }));
    case 'wrong signature':
      return bearer(await mintJwt(owner.api_key, crypto.randomBytes(32).toString('base64url')));
    case "other user's key":
      return bearer(await mintJwt(w.users.viewer.api_key, owner.api_secret));
    case 'non-member':
      return w.users.outsider.headers();
    default:
      return w.users[actor].headers();
  }
}

const userOf = (w: World, actor: Actor): TestUser => (actor === 'non-member' ? w.users.outsider : BAD_TOKENS.includes(actor) ? w.users.owner : w.users[actor as Member]);

/** The `:datasetId` of a request, read at the route's position of it. */
function datasetIdOf(routeUrl: string, requestUrl: string): string | null {
  const index = routeUrl.split('/').indexOf(':datasetId');
  return index < 0 ? null : (requestUrl.split('?')[0]!.split('/')[index] ?? null);
}

async function snapshot(datasetId: string) {
  const db = t.container.db;
  return {
    dataset: await db.selectFrom('datasets').select(['status', 'progress']).where('id', '=', datasetId).executeTakeFirst(),
    media: (await db.selectFrom('media').select('id').where('dataset_id', '=', datasetId).execute()).length,
    members: await db.selectFrom('dataset_members').select(['user_id', 'role']).where('dataset_id', '=', datasetId).orderBy('user_id').execute(),
    transactions: await db.selectFrom('upload_transactions').select(['id', 'status']).where('dataset_id', '=', datasetId).orderBy('id').execute(),
    tasks: (await db.selectFrom('tasks').select('id').where('dataset_id', '=', datasetId).execute()).length,
  };
}

const send = (request: InjectOptions, headers: Headers) => t.app.inject({ ...request, headers: { ...headers, ...(request.headers as Headers | undefined) } });

describe('access matrix: every /api/v1 route × {no token, expired, wrong signature, other user\'s key, non-member, viewer, editor, owner}', () => {
  const w = {} as World;
  let stranger: { datasetId: string; mediaId: string };
  const appRoutes: { method: string; url: string }[] = [];

  beforeAll(async () => {
    t = await startTestApp({ env: { VIZDEX_OPEN_SIGNUP: 'true' } });
    // The real route table, as the app registers it.
    const probe = await buildApp(t.container, {
      onRoute: (route) => {
        for (const method of [route.method].flat()) if (route.url.startsWith('/api/v1')) appRoutes.push({ method, url: route.url });
      },
    });
    await probe.close();

    const users = {} as World['users'];
    for (const name of ['admin', 'owner', 'editor', 'viewer', 'outsider', 'bystander', 'invitee'] as const) {
      users[name] = await t.createUser(`${name}@example.com`, { password: PASSWORD }); // the first user is the admin
    }
    w.users = users;
    w.image = await makeImage({ width: 64, height: 64, seed: 11 });
    const images = await Promise.all([1, 2].map((seed) => makeImage({ width: 64, height: 64, seed })));
    const owner = await users.owner.headers();
    const files = images.map((data, i) => ({ name: `${i}.jpg`, data }));

    // The shared READY dataset, the outsider's own dataset, and the datasets the allowed add_media and reindex calls consume.
    const [main, strangerId, ...pool] = await Promise.all([
      (async () => {
        const draft = await draftDataset(t.app, owner, files, 'main');
        expect((await processFiles(t.app, owner, draft.datasetId, draft.transId)).statusCode).toBe(202);
        await waitForStatus(t.app, owner, draft.datasetId, ['READY']);
        return draft;
      })(),
      readyDataset(t.app, await users.outsider.headers(), [{ name: 'theirs.jpg', data: images[0]! }], 'theirs'),
      ...[0, 1, 2, 3].map(() => readyDataset(t.app, owner, files, 'pool')),
    ]);
    w.datasetId = main.datasetId;
    w.transId = main.transId;
    await share(w, w.datasetId);
    for (const id of pool) await share(w, id);
    w.ready = pool.slice(0, 2);
    w.partial = pool.slice(2);
    await Promise.all(
      w.partial.map(async (id) => {
        expect((await addMedia(t.app, owner, id, { files: [{ name: 'more.jpg', data: w.image, field: 'files[]' }] })).statusCode).toBe(202);
        await waitForStatus(t.app, owner, id, ['PARTIAL INDEX']);
      }),
    );

    const media = await t.container.db.selectFrom('media').select(['id', 'original_media_uri']).where('dataset_id', '=', w.datasetId).orderBy('id').execute();
    w.mediaId = media[0]!.id;
    w.originalUri = media[0]!.original_media_uri!;
    const theirs = await t.container.db.selectFrom('media').select('id').where('dataset_id', '=', strangerId).executeTakeFirstOrThrow();
    stranger = { datasetId: strangerId, mediaId: theirs.id };

    const started = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}/export_context_async?file_name=e.zip&export_format=json`, headers: owner });
    expect(started.statusCode, started.body).toBe(200);
    w.exportId = (started.json() as { id: string }).id;
    for (const deadline = Date.now() + 60_000; ; ) {
      const status = (await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}/export_status?export_task_id=${w.exportId}`, headers: owner })).json() as { status: string; download_uri: string | null };
      if (status.status === 'COMPLETED') {
        w.downloadUri = status.download_uri!;
        break;
      }
      if (status.status === 'FAILED' || Date.now() > deadline) throw new Error(`export ended ${status.status}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }, 180_000);
  afterAll(async () => t?.close());

  it('every route of the app is in the matrix, and every row of the matrix is a route of the app', () => {
    const keys = new Set(appRoutes.filter((r) => r.method !== 'HEAD').map((r) => `${r.method} ${r.url}`));
    expect([...keys].filter((key) => !(key in ROUTES)), 'routes without a row in ROUTES').toEqual([]);
    expect(Object.keys(ROUTES).filter((key) => !keys.has(key)), 'rows of ROUTES that are no route').toEqual([]);
    // HEAD routes are the GET routes again (Fastify's exposeHeadRoutes) and are checked with them.
    for (const head of appRoutes.filter((r) => r.method === 'HEAD')) expect(keys.has(`GET ${head.url}`), head.url).toBe(true);
  });

  let cases = 0;
  it('each route answers each actor with the expected status; a non-member cannot tell the dataset exists; refused calls change nothing', async () => {
    const failures: string[] = [];
    for (const [key, route] of Object.entries(ROUTES)) {
      const [, routeUrl] = key.split(' ') as [string, string];
      const methods = [key.split(' ')[0]!, ...(key.startsWith('GET ') && appRoutes.some((r) => r.method === 'HEAD' && r.url === routeUrl) ? ['HEAD'] : [])];
      for (const method of methods) {
        for (const actor of ACTORS) {
          const expected = expectedStatus(route, actor);
          const request = { ...(await route.request(w, { user: userOf(w, actor), succeeds: expected === route.ok && expected < 400 })), method } as InjectOptions;
          const datasetId = datasetIdOf(routeUrl, String(request.url));
          const before = datasetId && expected >= 400 && route.needs !== 'public' ? await snapshot(datasetId) : null;
          const response = await send(request, await credentials(w, actor));
          cases++;
          const label = `${method} ${routeUrl} as ${actor}`;
          if (response.statusCode !== expected) {
            failures.push(`${label}: ${response.statusCode} (expected ${expected}) ${response.body.slice(0, 200)}`);
            continue;
          }
          if (method === 'HEAD') continue;
          if (expected === 401) expect(typeof (response.json() as { detail: unknown }).detail, label).toBe('string');
          if (expected === 404 && datasetId) {
            // Byte for byte what the owner gets for a dataset that does not exist.
            expect(response.body, label).toBe('{"detail":"Dataset not found"}');
            const nowhere = String(request.url).replace(datasetId, crypto.randomUUID());
            const missing = await send({ ...request, url: nowhere }, await w.users.owner.headers());
            expect({ status: missing.statusCode, body: missing.body, type: missing.headers['content-type'] }, label).toEqual({
              status: 404,
              body: response.body,
              type: response.headers['content-type'],
            });
          }
          if (before) expect(await snapshot(datasetId!), `${label} changed the dataset`).toEqual(before);
        }
      }
    }
    expect(failures).toEqual([]);
    const routes = appRoutes.length;
    console.log(`access matrix: ${routes} routes (${appRoutes.filter((r) => r.method !== 'HEAD').length} + HEAD) × ${ACTORS.length} actors = ${cases} cases`);
    expect(cases).toBe(routes * ACTORS.length);
  }, 300_000);

  it('the admin-only routes answer the admin', async () => {
    const admin = await w.users.admin.headers();
    for (const [key, route] of Object.entries(ROUTES).filter(([, r]) => r.needs === 'admin')) {
      const response = await send(await route.request(w, { user: w.users.admin, succeeds: true }), admin);
      expect(response.statusCode, `${key}: ${response.body}`).toBe(route.ok);
    }
  });

  it('listings of a non-member never contain the dataset or its tasks', async () => {
    const outsider = await w.users.outsider.headers();
    const datasets = (await t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers: outsider })).json() as { id: string }[];
    expect(datasets.map((d) => d.id)).not.toContain(w.datasetId);
    expect(datasets.map((d) => d.id)).toContain(stranger.datasetId);
    for (const query of ['', `?dataset_id=${w.datasetId}`, '?task_type=EXPORT']) {
      const tasks = (await t.app.inject({ method: 'GET', url: `/api/v1/tasks${query}`, headers: outsider })).json() as { tasks: { dataset_id: string }[] };
      expect(tasks.tasks.map((task) => task.dataset_id)).not.toContain(w.datasetId);
    }
    const viewerTasks = (await t.app.inject({ method: 'GET', url: `/api/v1/tasks?dataset_id=${w.datasetId}`, headers: await w.users.viewer.headers() })).json() as { tasks: unknown[] };
    expect(viewerTasks.tasks.length).toBeGreaterThan(0);
  });

  it('media bytes: no credentials → 401, non-member → 404, another dataset\'s media through one the caller owns → 404', async () => {
    const owner = await w.users.owner.headers();
    for (const variant of ['file', 'thumbnail']) {
      const url = `/api/v1/dataset/${w.datasetId}/media/${w.mediaId}/${variant}`;
      expect((await t.app.inject({ method: 'GET', url })).statusCode).toBe(401);
      expect((await t.app.inject({ method: 'GET', url, headers: { cookie: 'SESSION=forged' } })).statusCode).toBe(401);
      const outsider = await t.app.inject({ method: 'GET', url, headers: await w.users.outsider.headers() });
      expect(outsider.statusCode).toBe(404);
      expect(outsider.rawPayload.length).toBeLessThan(100);
      // The outsider's media through the owner's dataset, and the owner's through the outsider's.
      for (const crossed of [
        `/api/v1/dataset/${w.datasetId}/media/${stranger.mediaId}/${variant}`,
        `/api/v1/dataset/${stranger.datasetId}/media/${w.mediaId}/${variant}`,
      ]) {
        const response = await t.app.inject({ method: 'GET', url: crossed, headers: crossed.includes(w.datasetId) ? owner : await w.users.outsider.headers() });
        expect(response.statusCode, crossed).toBe(404);
        expect(response.headers['content-type']).toMatch(/json/);
      }
      expect((await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}/media/${stranger.mediaId}`, headers: owner })).statusCode).toBe(404);
      expect((await t.app.inject({ method: 'GET', url, headers: owner })).statusCode).toBe(200);
    }
  });

  it('the SESSION cookie works like the token on every viewer route, media and thumbnail included', async () => {
    const login = async (user: TestUser) => {
      const response = await send({ method: 'POST', url: '/api/v1/auth', ...json({ username: user.email, password: PASSWORD }) }, {});
      expect(response.statusCode, response.body).toBe(200);
      const session = response.cookies.find((c) => c.name === 'SESSION')!;
      return { cookie: `SESSION=${session.value}` };
    };
    const viewer = await login(w.users.viewer);
    const outsider = await login(w.users.outsider);
    const viewerRoutes = Object.entries(ROUTES).filter(([key, r]) => r.needs === 'viewer' && key.startsWith('GET ') && !key.includes('export_context_async'));
    expect(viewerRoutes.length).toBeGreaterThan(8);
    for (const [key, route] of viewerRoutes) {
      const request = await route.request(w, { user: w.users.viewer, succeeds: true });
      expect((await send(request, viewer)).statusCode, key).toBe(route.ok);
      const refused = await send(request, outsider);
      expect(refused.statusCode, key).toBe(404);
      expect(refused.body).toBe('{"detail":"Dataset not found"}');
    }
    const editorOnly = await send({ method: 'POST', url: `/api/v1/dataset/${w.datasetId}/reindex` }, viewer);
    expect(editorOnly.statusCode).toBe(403);
  });

  it("ids of another dataset's media, exports and tasks are refused through a dataset the caller owns", async () => {
    const owner = await w.users.owner.headers();
    const outsider = await w.users.outsider.headers();
    const started = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${stranger.datasetId}/export_context_async?file_name=s.zip&export_format=json`, headers: outsider });
    expect(started.statusCode, started.body).toBe(200);
    const theirExport = (started.json() as { id: string }).id;
    const theirUri = (await t.container.db.selectFrom('media').select('original_media_uri').where('id', '=', stranger.mediaId).executeTakeFirstOrThrow()).original_media_uri!;
    const base = `/api/v1/dataset/${w.datasetId}`;
    const refused: [InjectOptions, number][] = [
      [{ method: 'GET', url: `${base}/export_status?export_task_id=${theirExport}` }, 404],
      [{ method: 'GET', url: `${base}/media/${stranger.mediaId}/duplicates` }, 404],
      [{ method: 'GET', url: `${base}/media/${stranger.mediaId}/file`, headers: { range: 'bytes=0-10' } }, 404],
      [{ method: 'GET', url: `${base}/media/id?original_media_uri=${encodeURIComponent(theirUri)}` }, 404],
      [{ method: 'GET', url: `/api/v1/explore/${w.datasetId}?anchor_media_id=${stranger.mediaId}&anchor_type=MEDIA` }, 404],
      // Exporting someone else's media by id: refused before any export starts.
      [{ method: 'POST', url: `${base}/export_entities_async`, ...json({ media_selection: [{ type: 'media', payload: { media_ids: [stranger.mediaId] } }] }) }, 400],
    ];
    for (const [request, status] of refused) {
      const response = await send(request, owner);
      expect(response.statusCode, `${request.method} ${request.url}: ${response.body}`).toBe(status);
      expect(response.headers['content-type']).toMatch(/json/);
    }
    const tasks = (await t.app.inject({ method: 'GET', url: `/api/v1/tasks?dataset_id=${stranger.datasetId}`, headers: owner })).json();
    expect(tasks).toMatchObject({ total: 0, tasks: [] });
  });

  describe('export download links', () => {
    const link = () => new URL(w.downloadUri);
    const keyring = () => new Keyring(t.container.config.secretKey ?? fs.readFileSync(path.join(t.dataDir, 'secret.key'), 'utf8').trim());

    it('work without credentials, only as handed out', async () => {
      const url = link();
      const ok = await t.app.inject({ method: 'GET', url: url.pathname + url.search });
      expect(ok.statusCode).toBe(200);
      expect(ok.headers['content-type']).toBe('application/zip');
      const signature = url.searchParams.get('signature')!;
      const expires = url.searchParams.get('expires')!;
      const flipped = signature.slice(0, -1) + (signature.endsWith('A') ? 'B' : 'A');
      const forged = [
        `${url.pathname}?expires=${expires}&signature=${flipped}`,
        `${url.pathname}?expires=${expires}&signature=`,
        `${url.pathname}?expires=${expires}`,
        `${url.pathname}?expires=${Number(expires) + 3600}&signature=${signature}`,
        `${url.pathname}?expires=${Number(expires) - 1}&signature=${signature}`,
        `/api/v1/dataset/${w.datasetId}/export_download/${crypto.randomUUID()}${url.search}`,
        `/api/v1/dataset/${stranger.datasetId}/export_download/${w.exportId}${url.search}`,
      ];
      for (const forgery of forged) {
        const response = await t.app.inject({ method: 'GET', url: forgery });
        expect(response.statusCode, forgery).toBe(403);
        expect(response.headers['content-type'], forgery).toMatch(/json/);
      }
    });

    it('expire, and a valid signature reaches only its own export', async () => {
      const expired = { datasetId: w.datasetId, exportId: w.exportId, expires: Math.floor(Date.now() / 1000) - 60 };
      const response = await t.app.inject({ method: 'GET', url: downloadPath(expired, signDownload(keyring(), expired)) });
      expect(response.statusCode).toBe(403);
      expect(response.json()).toEqual({ detail: 'This download link has expired; ask export_status for a new one' });
      // Correctly signed, but naming an export of another dataset or no export at all: nothing to download.
      const expires = Math.floor(Date.now() / 1000) + 600;
      for (const grant of [
        { datasetId: stranger.datasetId, exportId: w.exportId, expires },
        { datasetId: w.datasetId, exportId: crypto.randomUUID(), expires },
      ]) {
        const answer = await t.app.inject({ method: 'GET', url: downloadPath(grant, signDownload(keyring(), grant)) });
        expect(answer.statusCode, JSON.stringify(grant)).toBe(404);
        expect(answer.headers['content-type']).toMatch(/json/);
      }
    });
  });

  it('refused mutations leave everything as it was', async () => {
    const viewer = await w.users.viewer.headers();
    const editor = await w.users.editor.headers();
    const outsider = await w.users.outsider.headers();
    const before = await snapshot(w.datasetId);
    const attempts: [Headers, InjectOptions][] = [
      [viewer, { method: 'POST', url: `/api/v1/dataset/${w.datasetId}/add_media`, ...upload(w.image, 'files[]') }],
      [outsider, { method: 'POST', url: `/api/v1/dataset/${w.datasetId}/add_media`, ...upload(w.image, 'files[]') }],
      [viewer, { method: 'DELETE', url: `/api/v1/dataset/${w.datasetId}` }],
      [editor, { method: 'DELETE', url: `/api/v1/dataset/${w.datasetId}` }],
      [editor, { method: 'PUT', url: `/api/v1/manage/${w.datasetId}/invite`, ...json({ grant_to_user_email: w.users.outsider.email, role: 'editor' }) }],
      [viewer, { method: 'PUT', url: `/api/v1/manage/${w.datasetId}/invite`, ...json({ grant_to_user_email: w.users.viewer.email, role: 'editor' }) }],
      [editor, { method: 'DELETE', url: `/api/v1/manage/${w.datasetId}/share/${encodeURIComponent(w.users.viewer.email)}` }],
      [viewer, { method: 'POST', url: `/api/v1/dataset/${w.datasetId}/reindex` }],
      [outsider, { method: 'GET', url: `/api/v1/ingestion/${w.datasetId}/data_files` }],
    ];
    for (const [headers, request] of attempts) {
      const response = await send(request, headers);
      expect([403, 404], `${request.method} ${request.url}: ${response.body}`).toContain(response.statusCode);
    }
    expect(await snapshot(w.datasetId)).toEqual(before);
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${w.datasetId}`, headers: viewer })).json()).toMatchObject({ role: 'viewer' });

    // One user cannot revoke another's API key, and the key keeps working.
    const revoke = await t.app.inject({ method: 'DELETE', url: `/api/v1/api_keys/${w.users.owner.api_key}`, headers: viewer });
    expect(revoke.statusCode).toBeGreaterThanOrEqual(400);
    expect(revoke.statusCode).toBeLessThan(500);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: await w.users.owner.headers() })).statusCode).toBe(200);
  });
});
