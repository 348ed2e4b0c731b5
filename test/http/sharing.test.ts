import crypto from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { newDataset, type Headers } from '../helpers/flows.js';
import { startTestApp, type TestApp, type TestUser } from '../helpers/harness.js';

describe('sharing a dataset (seeds/share-dataset.txt)', () => {
  let t: TestApp;
  let owner: TestUser;
  let colleague: TestUser;
  let reviewer: TestUser;
  let ownerHeaders: Headers;
  let datasetId: string;

  beforeAll(async () => {
    t = await startTestApp({ jobs: false });
    owner = await t.createUser('owner@example.com');
    colleague = await t.createUser('colleague@example.com');
    reviewer = await t.createUser('reviewer@example.com');
    ownerHeaders = await owner.headers();
  });
  afterAll(async () => t.close());

  beforeEach(async () => {
    datasetId = await newDataset(t.app, ownerHeaders, 'shared');
  });

  const invite = (body: unknown, headers: Headers = ownerHeaders, id = datasetId) =>
    t.app.inject({ method: 'PUT', url: `/api/v1/manage/${id}/invite`, headers: { ...headers, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
  const members = async (headers: Headers = ownerHeaders, id = datasetId) => {
    const response = await t.app.inject({ method: 'GET', url: `/api/v1/manage/${id}/share`, headers });
    expect(response.statusCode, response.body).toBe(200);
    return response.json() as { email: string; role: string }[];
  };
  const revoke = (email: string, headers: Headers = ownerHeaders, id = datasetId) =>
    t.app.inject({ method: 'DELETE', url: `/api/v1/manage/${id}/share/${encodeURIComponent(email)}`, headers });
  const canSee = async (user: TestUser) =>
    (await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}`, headers: await user.headers() })).statusCode;

  it('PUT /manage/{id}/invite answers 200 with the body exactly null', async () => {
    const response = await invite({ grant_to_user_email: 'colleague@example.com' });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.body).toBe('null');
    expect(response.headers['content-type']).toMatch(/^application\/json/);
  });

  it('GET /manage/{id}/share lists [{email, role}] with the owner first; an invite grants viewer', async () => {
    expect(await members()).toEqual([{ email: 'owner@example.com', role: 'owner' }]);
    expect((await invite({ grant_to_user_email: 'colleague@example.com' })).statusCode).toBe(200);
    expect((await invite({ grant_to_user_email: 'reviewer@example.com' })).statusCode).toBe(200);
    const list = await members();
    expect(list).toEqual([
      { email: 'owner@example.com', role: 'owner' },
      { email: 'colleague@example.com', role: 'viewer' },
      { email: 'reviewer@example.com', role: 'viewer' },
    ]);
    for (const member of list) expect(Object.keys(member).sort()).toEqual(['email', 'role']);
    const raw = (await t.app.inject({ method: 'GET', url: `/api/v1/manage/${datasetId}/share`, headers: ownerHeaders })).body;
    expect(raw.startsWith('[{"email":"owner@example.com","role":"owner"}')).toBe(true);
  });

  it('the invited user can now see the dataset, in GET /datasets too, with their role', async () => {
    expect(await canSee(colleague)).toBe(404);
    await invite({ grant_to_user_email: 'colleague@example.com' });
    expect(await canSee(colleague)).toBe(200);
    const listed = (await t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers: await colleague.headers() })).json() as { id: string; role: string }[];
    expect(listed.find((d) => d.id === datasetId)).toMatchObject({ role: 'viewer' });
    // A member sees the member list too.
    expect(await members(await colleague.headers())).toHaveLength(2);
  });

  it('an unknown email is 404 and grants nothing', async () => {
    const response = await invite({ grant_to_user_email: 'stranger@example.com' });
    expect(response.statusCode, response.body).toBe(404);
    expect(response.json()).toEqual({ detail: 'User with email stranger@example.com not found' });
    expect(await members()).toHaveLength(1);
  });

  it('the email is matched case-insensitively', async () => {
    expect((await invite({ grant_to_user_email: ' Colleague@Example.COM ' })).statusCode).toBe(200);
    expect(await members()).toContainEqual({ email: 'colleague@example.com', role: 'viewer' });
  });

  it('invite with role editor grants editor', async () => {
    expect((await invite({ grant_to_user_email: 'colleague@example.com', role: 'editor' })).statusCode).toBe(200);
    expect(await members()).toContainEqual({ email: 'colleague@example.com', role: 'editor' });
    // An editor may open an upload transaction; a viewer may not.
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/ingestion/${datasetId}/data_files`, headers: await colleague.headers() })).statusCode).toBe(200);
  });

  it('re-inviting a member changes their role, without duplicating them or moving them in the list', async () => {
    await invite({ grant_to_user_email: 'colleague@example.com' });
    await invite({ grant_to_user_email: 'reviewer@example.com' });
    expect((await invite({ grant_to_user_email: 'colleague@example.com', role: 'editor' })).statusCode).toBe(200);
    expect(await members()).toEqual([
      { email: 'owner@example.com', role: 'owner' },
      { email: 'colleague@example.com', role: 'editor' },
      { email: 'reviewer@example.com', role: 'viewer' },
    ]);
    expect((await invite({ grant_to_user_email: 'colleague@example.com', role: 'viewer' })).statusCode).toBe(200);
    expect(await members()).toContainEqual({ email: 'colleague@example.com', role: 'viewer' });
    expect(await members()).toHaveLength(3);
  });

  it('the owner cannot be invited (demoted) to another role', async () => {
    const response = await invite({ grant_to_user_email: 'owner@example.com', role: 'viewer' });
    expect(response.statusCode).toBe(400);
    expect(await members()).toEqual([{ email: 'owner@example.com', role: 'owner' }]);
  });

  it('missing grant_to_user_email is 422 in the FastAPI shape', async () => {
    const response = await invite({ email: 'colleague@example.com' });
    expect(response.statusCode, response.body).toBe(422);
    expect(response.json()).toEqual({ detail: [{ loc: ['body', 'grant_to_user_email'], msg: 'Field required', type: 'missing' }] });
  });

  it('malformed bodies and unknown roles are 422', async () => {
    const notJson = await t.app.inject({
      method: 'PUT',
      url: `/api/v1/manage/${datasetId}/invite`,
      headers: { ...ownerHeaders, 'content-type': 'application/json' },
      payload: '{"grant_to_user_email":',
    });
    expect(notJson.statusCode).toBe(422);
    expect(Array.isArray((notJson.json() as { detail: unknown }).detail)).toBe(true);

    const noBody = await t.app.inject({ method: 'PUT', url: `/api/v1/manage/${datasetId}/invite`, headers: ownerHeaders });
    expect(noBody.statusCode).toBe(422);
    const emptyJson = await t.app.inject({ method: 'PUT', url: `/api/v1/manage/${datasetId}/invite`, headers: { ...ownerHeaders, 'content-type': 'application/json' } });
    expect(emptyJson.statusCode, emptyJson.body).toBe(422);
    expect(Array.isArray((emptyJson.json() as { detail: unknown }).detail)).toBe(true);

    for (const role of ['owner', 'admin']) {
      const response = await invite({ grant_to_user_email: 'colleague@example.com', role });
      expect(response.statusCode, role).toBe(422);
      expect((response.json() as { detail: { loc: unknown[] }[] }).detail[0]!.loc).toEqual(['body', 'role']);
    }
    const numeric = await invite({ grant_to_user_email: 42 });
    expect(numeric.statusCode).toBe(422);
    expect((numeric.json() as { detail: { loc: unknown[]; type: string }[] }).detail[0]).toMatchObject({ loc: ['body', 'grant_to_user_email'], type: 'type' });
    expect(await members()).toHaveLength(1);
  });

  it('DELETE /manage/{id}/share/{email} revokes access at once', async () => {
    await invite({ grant_to_user_email: 'colleague@example.com' });
    await invite({ grant_to_user_email: 'reviewer@example.com' });
    expect(await canSee(colleague)).toBe(200);

    const response = await revoke('colleague@example.com');
    expect(response.statusCode, response.body).toBe(200);
    expect(response.body).toBe('null');
    expect(await members()).toEqual([
      { email: 'owner@example.com', role: 'owner' },
      { email: 'reviewer@example.com', role: 'viewer' },
    ]);
    expect(await canSee(colleague)).toBe(404);
    const listed = (await t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers: await colleague.headers() })).json() as { id: string }[];
    expect(listed.map((d) => d.id)).not.toContain(datasetId);
    expect(await canSee(reviewer)).toBe(200);

    // Revoking twice: no longer a member.
    expect((await revoke('colleague@example.com')).statusCode).toBe(404);
    // And they can be invited again.
    expect((await invite({ grant_to_user_email: 'colleague@example.com' })).statusCode).toBe(200);
    expect(await canSee(colleague)).toBe(200);
  });

  it('removing the owner is 400; a registered non-member or an unknown email is 404', async () => {
    const ownerRemoval = await revoke('owner@example.com');
    expect(ownerRemoval.statusCode, ownerRemoval.body).toBe(400);
    expect(ownerRemoval.json()).toEqual({ detail: 'The owner cannot be removed from the dataset' });
    expect((await revoke('OWNER@example.com')).statusCode).toBe(400);
    expect(await members()).toEqual([{ email: 'owner@example.com', role: 'owner' }]);

    const nonMember = await revoke('reviewer@example.com');
    expect(nonMember.statusCode).toBe(404);
    expect(nonMember.json()).toEqual({ detail: 'reviewer@example.com is not a member of this dataset' });
    expect((await revoke('nobody@example.com')).statusCode).toBe(404);
  });

  it('only the owner shares and revokes: members get 403, outsiders 404', async () => {
    await invite({ grant_to_user_email: 'colleague@example.com', role: 'editor' });
    await invite({ grant_to_user_email: 'reviewer@example.com' });
    const outsider = await t.createUser(`outsider-${crypto.randomUUID()}@example.com`);

    const editorInvite = await invite({ grant_to_user_email: outsider.email }, await colleague.headers());
    expect(editorInvite.statusCode, editorInvite.body).toBe(403);
    expect(editorInvite.json()).toEqual({ detail: 'Your role on this dataset is editor; this operation requires owner' });
    expect((await invite({ grant_to_user_email: outsider.email }, await reviewer.headers())).statusCode).toBe(403);
    expect((await revoke('reviewer@example.com', await colleague.headers())).statusCode).toBe(403);
    expect((await revoke('colleague@example.com', await reviewer.headers())).statusCode).toBe(403);
    // Nobody promotes themselves.
    expect((await invite({ grant_to_user_email: 'reviewer@example.com', role: 'editor' }, await reviewer.headers())).statusCode).toBe(403);

    const outsiderHeaders = await outsider.headers();
    for (const response of [
      await invite({ grant_to_user_email: outsider.email }, outsiderHeaders),
      await t.app.inject({ method: 'GET', url: `/api/v1/manage/${datasetId}/share`, headers: outsiderHeaders }),
      await revoke('colleague@example.com', outsiderHeaders),
    ]) {
      expect(response.statusCode, response.body).toBe(404);
      expect(response.json()).toEqual({ detail: 'Dataset not found' });
    }
    expect(await members()).toEqual([
      { email: 'owner@example.com', role: 'owner' },
      { email: 'colleague@example.com', role: 'editor' },
      { email: 'reviewer@example.com', role: 'viewer' },
    ]);
  });

  it('an unknown dataset is 404 on invite, share and revoke', async () => {
    for (const id of [crypto.randomUUID(), 'not-a-uuid']) {
      for (const response of [
        await invite({ grant_to_user_email: 'colleague@example.com' }, ownerHeaders, id),
        await t.app.inject({ method: 'GET', url: `/api/v1/manage/${id}/share`, headers: ownerHeaders }),
        await revoke('colleague@example.com', ownerHeaders, id),
      ]) {
        expect(response.statusCode, response.body).toBe(404);
        expect(response.json()).toEqual({ detail: 'Dataset not found' });
      }
    }
  });

  it('requests without credentials are 401', async () => {
    expect((await invite({ grant_to_user_email: 'colleague@example.com' }, {})).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/manage/${datasetId}/share` })).statusCode).toBe(401);
    expect((await revoke('colleague@example.com', {})).statusCode).toBe(401);
  });
});
