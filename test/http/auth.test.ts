import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { mintJwt, startTestApp, testMode, type TestApp, type TestUser } from '../helpers/harness.js';

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const nowSeconds = () => Math.floor(Date.now() / 1000);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A JWT built by hand: any header, any payload, an HMAC with the given hash (or no signature at all). */
function handMadeJwt(header: Record<string, unknown>, payload: Record<string, unknown>, sign?: { secret: string; hash: 'sha256' | 'sha512' }): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  const signature = sign ? crypto.createHmac(sign.hash, sign.secret).update(input).digest('base64url') : '';
  return `${input}.${signature}`;
}

function sessionCookieOf(response: { cookies: { name: string; value: string }[] }): string {
  const cookie = response.cookies.find((c) => c.name === 'SESSION');
  expect(cookie, 'a SESSION cookie is set').toBeDefined();
  return cookie!.value;
}

const asCookie = (value: string) => ({ cookie: `SESSION=${value}` });

function expect401(response: { statusCode: number; body: string; json(): unknown }) {
  expect(response.statusCode, response.body).toBe(401);
  const body = response.json() as { detail: unknown };
  expect(Object.keys(body)).toEqual(['detail']);
  expect(typeof body.detail).toBe('string');
  expect((body.detail as string).length).toBeGreaterThan(0);
}

describe('bearer JWT authentication', () => {
  let t: TestApp;
  let alice: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    t = await startTestApp({ jobs: false });
    alice = await t.createUser('alice@example.com', { password: 'alice-password' });
    bob = await t.createUser('bob@example.com');
  });
  afterAll(async () => t.close());

  const getDatasets = (headers: Record<string, string> = {}) => t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers });

  it('accepts a token minted as the Visual Layer SDK mints it', async () => {
    const response = await getDatasets(await alice.headers());
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toEqual([]);
  });

  it('accepts the Bearer scheme case-insensitively', async () => {
    const token = await mintJwt(alice.api_key, alice.api_secret);
    const response = await getDatasets({ authorization: `bearer ${token}` });
    expect(response.statusCode, response.body).toBe(200);
  });

  const failures: { name: string; headers: () => Promise<Record<string, string>> }[] = [
    { name: 'no Authorization header and no cookie', headers: async () => ({}) },
    { name: 'a garbled token', headers: async () => bearer('this-is-not-a-jwt') },
    { name: 'three garbled segments', headers: async () => bearer('abc.def.ghi') },
    { name: '"Bearer " with an empty value', headers: async () => ({ authorization: 'Bearer ' }) },
    { name: '"Bearer" alone', headers: async () => ({ authorization: 'Bearer' }) },
    { name: 'another scheme (Basic)', headers: async () => ({ authorization: `Basic ${Buffer.from('alice@example.com:alice-password').toString('base64')}` }) },
    { name: 'a token signed with another secret', headers: async () => bearer(await mintJwt(alice.api_key, 'not-the-real-secret-not-the-real-secret')) },
    { name: "a token signed with another user's secret", headers: async () => bearer(await mintJwt(alice.api_key, bob.api_secret)) },
    {
      name: 'an unknown kid',
      headers: async () => {
        const unknown = crypto.randomBytes(16).toString('hex');
        return bearer(await mintJwt(unknown, alice.api_secret));
      },
    },
    { name: 'an expired token', headers: async () => bearer(await mintJwt(alice.api_key, alice.api_secret, { iat: nowSeconds() - 3600, exp: nowSeconds() - 600 })) },
    { name: 'a lifetime (exp - iat) over 24 h', headers: async () => bearer(await mintJwt(alice.api_key, alice.api_secret, { iat: nowSeconds(), exp: nowSeconds() + 24 * 3600 + 60 })) },
    {
      name: 'a lifetime over 24 h and no iat',
      headers: async () =>
        bearer(handMadeJwt({ alg: 'HS256', typ: 'JWT', kid: alice.api_key }, { sub: alice.api_key, iss: 'sdk', exp: nowSeconds() + 2 * 24 * 3600 }, { secret: alice.api_secret, hash: 'sha256' })),
    },
    {
      // A short nominal lifetime that starts a year from now would stay valid for a year.
      name: 'an iat in the future (beyond clock skew)',
      headers: async () => bearer(await mintJwt(alice.api_key, alice.api_secret, { iat: nowSeconds() + 365 * 24 * 3600, exp: nowSeconds() + 365 * 24 * 3600 + 600 })),
    },
    { name: 'HS512 signed with the right secret', headers: async () => bearer(await mintJwt(alice.api_key, alice.api_secret, { alg: 'HS512' })) },
    {
      name: 'HS512 built by hand with the right secret',
      headers: async () =>
        bearer(
          handMadeJwt(
            { alg: 'HS512', typ: 'JWT', kid: alice.api_key },
            { sub: alice.api_key, iss: 'sdk', iat: nowSeconds(), exp: nowSeconds() + 600 },
            { secret: alice.api_secret, hash: 'sha512' },
          ),
        ),
    },
    {
      name: 'an unsigned alg:none token',
      headers: async () =>
        bearer(handMadeJwt({ alg: 'none', typ: 'JWT', kid: alice.api_key }, { sub: alice.api_key, iss: 'sdk', iat: nowSeconds(), exp: nowSeconds() + 600 })),
    },
    {
      name: 'alg:none carrying a valid HS256 signature',
      headers: async () =>
        bearer(
          handMadeJwt(
            { alg: 'none', typ: 'JWT', kid: alice.api_key },
            { sub: alice.api_key, iss: 'sdk', iat: nowSeconds(), exp: nowSeconds() + 600 },
            { secret: alice.api_secret, hash: 'sha256' },
          ),
        ),
    },
    { name: 'sub different from kid', headers: async () => bearer(await mintJwt(alice.api_key, alice.api_secret, { sub: bob.api_key })) },
    {
      name: 'no exp claim',
      headers: async () =>
        bearer(handMadeJwt({ alg: 'HS256', typ: 'JWT', kid: alice.api_key }, { sub: alice.api_key, iss: 'sdk', iat: nowSeconds() }, { secret: alice.api_secret, hash: 'sha256' })),
    },
    {
      name: 'no kid in the header',
      headers: async () =>
        bearer(
          handMadeJwt({ alg: 'HS256', typ: 'JWT' }, { sub: alice.api_key, iss: 'sdk', iat: nowSeconds(), exp: nowSeconds() + 600 }, { secret: alice.api_secret, hash: 'sha256' }),
        ),
    },
    {
      name: 'a valid token whose payload was altered after signing',
      headers: async () => {
        const [header, , signature] = (await mintJwt(alice.api_key, alice.api_secret)).split('.');
        const forged = b64url({ sub: alice.api_key, iss: 'sdk', iat: nowSeconds(), exp: nowSeconds() + 3600 });
        return bearer(`${header}.${forged}.${signature}`);
      },
    },
  ];

  for (const failure of failures) {
    it(`401 {"detail"} for ${failure.name}`, async () => {
      expect401(await getDatasets(await failure.headers()));
    });
  }

  it('accepts a lifetime of exactly 24 h, and an iat a few seconds ahead (clock skew)', async () => {
    const iat = nowSeconds() - 60;
    const fullDay = await getDatasets(bearer(await mintJwt(alice.api_key, alice.api_secret, { iat, exp: iat + 24 * 3600 })));
    expect(fullDay.statusCode, fullDay.body).toBe(200);
    const skewed = await getDatasets(bearer(await mintJwt(alice.api_key, alice.api_secret, { iat: nowSeconds() + 5, exp: nowSeconds() + 605 })));
    expect(skewed.statusCode, skewed.body).toBe(200);
  });

  it('authenticates before anything else: 401 (not 404 or 422) on dataset routes and bad bodies', async () => {
    const id = crypto.randomUUID();
    const requests = [
      { method: 'GET' as const, url: `/api/v1/dataset/${id}` },
      { method: 'GET' as const, url: '/api/v1/dataset/not-a-uuid' },
      { method: 'GET' as const, url: `/api/v1/ingestion/new_dataset` },
      { method: 'POST' as const, url: `/api/v1/ingestion/${id}/data_files/${id}`, payload: 'garbage', headers: { 'content-type': 'text/plain' } },
      { method: 'PUT' as const, url: `/api/v1/manage/${id}/invite`, payload: '{not json', headers: { 'content-type': 'application/json' } },
      { method: 'GET' as const, url: '/api/v1/tasks' },
      { method: 'GET' as const, url: '/api/v1/api_credentials' },
      { method: 'GET' as const, url: '/api/v1/users' },
    ];
    for (const request of requests) expect401(await t.app.inject(request));
  });

  it('a revoked key stops working at once; other keys of the user keep working', async () => {
    const extra = await t.container.services.auth.createApiCredentials(alice.user_id);
    const extraHeaders = bearer(await mintJwt(extra.api_key, extra.api_secret));
    expect((await getDatasets(extraHeaders)).statusCode).toBe(200);

    const listed = await t.app.inject({ method: 'GET', url: '/api/v1/api_keys', headers: await alice.headers() });
    expect(listed.statusCode).toBe(200);
    expect((listed.json() as { api_key: string }[]).map((k) => k.api_key)).toEqual(expect.arrayContaining([alice.api_key, extra.api_key]));
    expect(listed.body).not.toContain(extra.api_secret);

    const revoked = await t.app.inject({ method: 'DELETE', url: `/api/v1/api_keys/${extra.api_key}`, headers: await alice.headers() });
    expect(revoked.statusCode, revoked.body).toBe(200);
    expect(revoked.body).toBe('null');

    // Both a token minted before the revocation and a fresh one are refused.
    expect401(await getDatasets(extraHeaders));
    expect401(await getDatasets(bearer(await mintJwt(extra.api_key, extra.api_secret))));
    expect((await getDatasets(await alice.headers())).statusCode).toBe(200);

    const after = (await t.app.inject({ method: 'GET', url: '/api/v1/api_keys', headers: await alice.headers() })).json() as { api_key: string; revoked_at: string | null }[];
    expect(after.find((k) => k.api_key === extra.api_key)?.revoked_at).toEqual(expect.any(String));
    expect(after.find((k) => k.api_key === alice.api_key)?.revoked_at).toBeNull();
  });

  it("revoking an unknown key, an already revoked key or another user's key is 404", async () => {
    const extra = await t.container.services.auth.createApiCredentials(alice.user_id);
    const asBob = await bob.headers();
    const notMine = await t.app.inject({ method: 'DELETE', url: `/api/v1/api_keys/${extra.api_key}`, headers: asBob });
    expect(notMine.statusCode).toBe(404);
    expect(notMine.json()).toEqual({ detail: 'API key not found' });
    // Bob's attempt did not revoke it.
    expect((await getDatasets(bearer(await mintJwt(extra.api_key, extra.api_secret)))).statusCode).toBe(200);

    const unknown = await t.app.inject({ method: 'DELETE', url: '/api/v1/api_keys/0123456789abcdef', headers: asBob });
    expect(unknown.statusCode).toBe(404);

    const asAlice = await alice.headers();
    expect((await t.app.inject({ method: 'DELETE', url: `/api/v1/api_keys/${extra.api_key}`, headers: asAlice })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'DELETE', url: `/api/v1/api_keys/${extra.api_key}`, headers: asAlice })).statusCode).toBe(404);
  });

  it('GET /auth/me names the user behind the token', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: await bob.headers() });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ user_id: bob.user_id, email: 'bob@example.com', name: 'bob', is_admin: false });
  });
});

describe('browser session', () => {
  let t: TestApp;
  const password = 'correct horse battery staple';

  beforeAll(async () => {
    t = await startTestApp({ jobs: false });
    await t.createUser('carol@example.com', { password });
  });
  afterAll(async () => t.close());

  const login = (username: string, pwd: string) => t.app.inject({ method: 'POST', url: '/api/v1/auth', payload: { username, password: pwd } });

  it('POST /auth sets an HttpOnly SESSION cookie that works on the API', async () => {
    const response = await login('carol@example.com', password);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ email: 'carol@example.com', is_admin: true });
    const cookie = response.cookies.find((c) => c.name === 'SESSION');
    expect(cookie).toMatchObject({ httpOnly: true, path: '/' });

    const datasets = await t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers: asCookie(cookie!.value) });
    expect(datasets.statusCode, datasets.body).toBe(200);
    expect(datasets.json()).toEqual([]);
  });

  it('the login email is case-insensitive', async () => {
    const response = await login('  Carol@Example.COM ', password);
    expect(response.statusCode, response.body).toBe(200);
  });

  it('GET /api_credentials with the cookie creates a key pair that works as a JWT, once', async () => {
    const session = sessionCookieOf(await login('carol@example.com', password));
    const response = await t.app.inject({ method: 'GET', url: '/api/v1/api_credentials', headers: asCookie(session) });
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json() as { api_key: string; api_secret: string; message: string };
    expect(Object.keys(body).sort()).toEqual(['api_key', 'api_secret', 'message']);
    expect(body.api_key).toMatch(/\S{16,}/);
    expect(body.api_secret).toMatch(/\S{16,}/);
    expect(body.message).toEqual(expect.any(String));

    const viaJwt = await t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers: bearer(await mintJwt(body.api_key, body.api_secret)) });
    expect(viaJwt.statusCode, viaJwt.body).toBe(200);

    // A second call makes a different pair; the first keeps working.
    const second = (await t.app.inject({ method: 'GET', url: '/api/v1/api_credentials', headers: asCookie(session) })).json() as { api_key: string };
    expect(second.api_key).not.toBe(body.api_key);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers: bearer(await mintJwt(body.api_key, body.api_secret)) })).statusCode).toBe(200);

    // The listing never shows a secret again.
    const keys = await t.app.inject({ method: 'GET', url: '/api/v1/api_keys', headers: asCookie(session) });
    expect(keys.statusCode).toBe(200);
    expect(keys.body).not.toContain(body.api_secret);
  });

  it('wrong password and unknown user are 401 with the same detail, and set no cookie', async () => {
    const wrong = await login('carol@example.com', 'not the password');
    expect401(wrong);
    expect(wrong.json()).toEqual({ detail: 'Incorrect email or password' });
    expect(wrong.cookies.find((c) => c.name === 'SESSION')).toBeUndefined();

    const unknown = await login('nobody@example.com', password);
    expect401(unknown);
    expect(unknown.json()).toEqual({ detail: 'Incorrect email or password' });
  });

  it('a user created without a password cannot log in with any password', async () => {
    await t.createUser('nopass@example.com');
    expect401(await login('nopass@example.com', ''));
    expect401(await login('nopass@example.com', 'whatever-password'));
  });

  it('POST /auth without username/password is 422 in the FastAPI shape', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/api/v1/auth', payload: { email: 'carol@example.com', password } });
    expect(response.statusCode).toBe(422);
    expect(response.json()).toEqual({ detail: [{ loc: ['body', 'username'], msg: 'Field required', type: 'missing' }] });
  });

  it('a tampered or made-up cookie is 401', async () => {
    const session = sessionCookieOf(await login('carol@example.com', password));
    const dot = session.lastIndexOf('.');
    const token = session.slice(0, dot);
    const signature = session.slice(dot + 1);
    const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);

    const tampered = [
      `${flip(token)}.${signature}`, // token changed, old signature
      `${token}.${flip(signature)}`, // signature changed
      token, // signature dropped
      `${token}.`, // empty signature
      'garbage',
      '.',
    ];
    for (const value of tampered) {
      expect401(await t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers: asCookie(value) }));
    }
    // The genuine one still works.
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers: asCookie(session) })).statusCode).toBe(200);
  });

  it('logout invalidates the session server-side and clears the cookie', async () => {
    const session = sessionCookieOf(await login('carol@example.com', password));
    const other = sessionCookieOf(await login('carol@example.com', password));
    const logout = await t.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: asCookie(session) });
    expect(logout.statusCode, logout.body).toBe(200);
    expect(logout.body).toBe('null');
    const cleared = logout.cookies.find((c) => c.name === 'SESSION');
    expect(cleared?.value ?? '').toBe('');

    // Replaying the old cookie (a browser that ignored the clearing) no longer works.
    expect401(await t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers: asCookie(session) }));
    expect401(await t.app.inject({ method: 'GET', url: '/api/v1/api_credentials', headers: asCookie(session) }));
    // Another session of the same user is unaffected.
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers: asCookie(other) })).statusCode).toBe(200);
  });

  it('the session cookie works on dataset routes too', async () => {
    const session = sessionCookieOf(await login('carol@example.com', password));
    const created = await t.app.inject({ method: 'GET', url: '/api/v1/ingestion/new_dataset?dataset_name=via-cookie', headers: asCookie(session) });
    expect(created.statusCode, created.body).toBe(200);
    const { dataset_id } = created.json() as { dataset_id: string };
    const dataset = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${dataset_id}`, headers: asCookie(session) });
    expect(dataset.statusCode, dataset.body).toBe(200);
    expect(dataset.json()).toMatchObject({ id: dataset_id, display_name: 'via-cookie' });
  });
});

describe('sign-up', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ jobs: false });
  });
  afterAll(async () => t.close());

  const signup = (email: string, password = 'long-enough-password') =>
    t.app.inject({ method: 'POST', url: '/api/v1/auth/signup', payload: { email, password } });
  const signupOpen = async () => ((await t.app.inject({ method: 'GET', url: '/api/v1/auth/config' })).json() as { signup_open: boolean }).signup_open;

  it('is open while no user exists; the first user is the admin and is logged in', async () => {
    expect(await signupOpen()).toBe(true);
    const response = await signup('first@example.com');
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ email: 'first@example.com', is_admin: true });
    const session = sessionCookieOf(response);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: asCookie(session) })).json()).toMatchObject({
      email: 'first@example.com',
      is_admin: true,
    });
  });

  it('is closed (403) once a user exists', async () => {
    expect(await signupOpen()).toBe(false);
    const response = await signup('second@example.com');
    expect(response.statusCode, response.body).toBe(403);
    expect(response.json()).toEqual({ detail: 'Sign-up is closed: ask an administrator for an account' });
    expect(response.cookies.find((c) => c.name === 'SESSION')).toBeUndefined();
    // No account was created.
    const login = await t.app.inject({ method: 'POST', url: '/api/v1/auth', payload: { username: 'second@example.com', password: 'long-enough-password' } });
    expect(login.statusCode).toBe(401);
  });
});

describe('sign-up with VIZDEX_OPEN_SIGNUP=true', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ jobs: false, env: { VIZDEX_OPEN_SIGNUP: 'true' } });
  });
  afterAll(async () => t.close());

  const signup = (email: string, password = 'long-enough-password') =>
    t.app.inject({ method: 'POST', url: '/api/v1/auth/signup', payload: { email, password } });

  it('stays open; only the first user is admin', async () => {
    expect((await signup('one@example.com')).json()).toMatchObject({ is_admin: true });
    const second = await signup('two@example.com');
    expect(second.statusCode, second.body).toBe(200);
    expect(second.json()).toMatchObject({ email: 'two@example.com', is_admin: false });
    expect(((await t.app.inject({ method: 'GET', url: '/api/v1/auth/config' })).json() as { signup_open: boolean }).signup_open).toBe(true);
  });

  it('refuses a taken email (409), a bad email or a short password (400)', async () => {
    const taken = await signup('ONE@example.com');
    expect(taken.statusCode).toBe(409);
    expect(taken.json()).toEqual({ detail: 'A user with email one@example.com already exists' });
    expect((await signup('not-an-email')).statusCode).toBe(400);
    const short = await signup('three@example.com', 'short');
    expect(short.statusCode).toBe(400);
    expect(short.json()).toEqual({ detail: 'Password must be at least 8 characters' });
  });
});

describe('secrets at rest', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ jobs: false });
  });
  afterAll(async () => t.close());

  it('neither API secrets nor passwords appear in the database, in any form the server wrote', async () => {
    const password = 'plain-text-password-123';
    await t.app.inject({ method: 'POST', url: '/api/v1/auth/signup', payload: { email: 'dana@example.com', password } });
    const login = await t.app.inject({ method: 'POST', url: '/api/v1/auth', payload: { username: 'dana@example.com', password } });
    const session = sessionCookieOf(login);
    const credentials = (await t.app.inject({ method: 'GET', url: '/api/v1/api_credentials', headers: asCookie(session) })).json() as {
      api_key: string;
      api_secret: string;
    };
    // The pair works, so the server can still verify the HMAC from what it stored.
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers: bearer(await mintJwt(credentials.api_key, credentials.api_secret)) })).statusCode).toBe(200);

    const row = await t.container.db.selectFrom('api_keys').selectAll().where('api_key', '=', credentials.api_key).executeTakeFirstOrThrow();
    expect(row.secret_enc).not.toContain(credentials.api_secret);
    expect(Object.values(row).join('\n')).not.toContain(credentials.api_secret);

    const user = await t.container.db.selectFrom('users').selectAll().where('email', '=', 'dana@example.com').executeTakeFirstOrThrow();
    expect(user.password_hash).toBeTruthy();
    expect(user.password_hash).not.toContain(password);
    expect(user.password_hash).toMatch(/^scrypt\$/);

    // The session token is kept only as a hash.
    const token = session.slice(0, session.lastIndexOf('.'));
    const sessions = await t.container.db.selectFrom('sessions').selectAll().execute();
    expect(sessions.length).toBeGreaterThan(0);
    expect(JSON.stringify(sessions)).not.toContain(token);

    // The raw store holds none of them either: SQLite's files (database and WAL), or every row of
    // every PostgreSQL table as text.
    for (const [where, bytes] of await rawDatabaseContents(t)) {
      for (const secret of [credentials.api_secret, password, token]) {
        expect(bytes.includes(Buffer.from(secret)), `${secret} found in ${where}`).toBe(false);
      }
    }
  });
});

async function rawDatabaseContents(t: TestApp): Promise<[string, Buffer][]> {
  if (testMode() === 'scaleout') {
    const tables = await sql<{ table_name: string }>`select table_name from information_schema.tables where table_schema = 'public'`.execute(t.container.db);
    expect(tables.rows.map((r) => r.table_name)).toContain('api_keys');
    const contents: [string, Buffer][] = [];
    for (const { table_name } of tables.rows) {
      const rows = await sql<{ row: string }>`select row_to_json(x)::text as row from ${sql.table(table_name)} x`.execute(t.container.db);
      contents.push([table_name, Buffer.from(rows.rows.map((r) => r.row).join('\n'))]);
    }
    return contents;
  }
  const files = fs.readdirSync(t.dataDir).filter((name) => name.startsWith('vizdex.sqlite'));
  expect(files).toContain('vizdex.sqlite');
  return files.map((name) => [name, fs.readFileSync(path.join(t.dataDir, name))]);
}

describe('admin-only user management', () => {
  let t: TestApp;
  let admin: TestUser;
  let member: TestUser;

  beforeAll(async () => {
    t = await startTestApp({ jobs: false });
    admin = await t.createUser('admin@example.com');
    member = await t.createUser('member@example.com');
  });
  afterAll(async () => t.close());

  it('GET /users lists users for the admin and is 403 for others', async () => {
    const listed = await t.app.inject({ method: 'GET', url: '/api/v1/users', headers: await admin.headers() });
    expect(listed.statusCode, listed.body).toBe(200);
    expect(listed.json()).toEqual([
      { user_id: admin.user_id, email: 'admin@example.com', name: 'admin', is_admin: true },
      { user_id: member.user_id, email: 'member@example.com', name: 'member', is_admin: false },
    ]);
    expect(listed.body).not.toContain('password');

    const refused = await t.app.inject({ method: 'GET', url: '/api/v1/users', headers: await member.headers() });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toEqual({ detail: 'Only administrators can list users' });
  });

  it('POST /users creates a (non-admin) user for the admin only; the new user can log in', async () => {
    const refused = await t.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: await member.headers(),
      payload: { email: 'sneaky@example.com', password: 'long-enough-password' },
    });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toEqual({ detail: 'Only administrators can create users' });

    const created = await t.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: await admin.headers(),
      payload: { email: 'new@example.com', name: 'New Person', password: 'long-enough-password' },
    });
    expect(created.statusCode, created.body).toBe(200);
    expect(created.json()).toMatchObject({ email: 'new@example.com', name: 'New Person', is_admin: false });

    const login = await t.app.inject({ method: 'POST', url: '/api/v1/auth', payload: { username: 'new@example.com', password: 'long-enough-password' } });
    expect(login.statusCode).toBe(200);
    const sneaky = await t.app.inject({ method: 'POST', url: '/api/v1/auth', payload: { username: 'sneaky@example.com', password: 'long-enough-password' } });
    expect(sneaky.statusCode).toBe(401);
  });
});
