/**
 * Issue 9, security: headers on every kind of response, the login/sign-up rate limit, and the token
 * rules (HS256 only, at most 24 h). The token rules are tested in depth in test/http/auth.test.ts
 * (alg none/HS512/RS256-claimed, lifetime over 24 h, future iat, altered payload, ...); here only a
 * compact re-check that they still hold with the security plugin in place.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoginThrottle } from '../../src/security/login-throttle.js';
import { readyDataset } from '../helpers/flows.js';
import { makeImage } from '../fixtures/media.js';
import { mintJwt, startTestApp, type TestApp, type TestUser } from '../helpers/harness.js';

type Headers = Record<string, string | string[] | number | undefined>;

function expectSecurityHeaders(headers: Headers, csp: 'strict' | 'docs' = 'strict') {
  expect(headers['x-content-type-options']).toBe('nosniff');
  expect(headers['x-frame-options']).toBe('DENY');
  expect(headers['referrer-policy']).toBe('no-referrer');
  expect(headers['cross-origin-opener-policy']).toBe('same-origin');
  const policy = String(headers['content-security-policy']);
  expect(policy).toContain("frame-ancestors 'none'");
  expect(policy).toContain("object-src 'none'");
  if (csp === 'strict') {
    expect(policy).toContain("script-src 'self'");
    expect(policy).toMatch(/script-src 'self'(;|$)/);
    expect(policy).toContain("img-src 'self' data: blob:");
    expect(policy).toContain("base-uri 'none'");
  }
  // Plain http without an https public URL: no HSTS (it would pin a host that has no TLS).
  expect(headers['strict-transport-security']).toBeUndefined();
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('security headers', () => {
  let t: TestApp;
  let owner: TestUser;
  let datasetId: string;

  beforeAll(async () => {
    t = await startTestApp();
    owner = await t.createUser('owner@example.com');
    const files = [];
    for (let seed = 1; seed <= 3; seed++) files.push({ name: `pic_${seed}.png`, data: await makeImage({ width: 160, height: 120, seed, format: 'png' }) });
    datasetId = await readyDataset(t.app, await owner.headers(), files, 'headers');
  }, 180_000);
  afterAll(async () => t.close());

  it('on API JSON: success, 401, 404 and 422', async () => {
    const ok = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}`, headers: await owner.headers() });
    expect(ok.statusCode, ok.body).toBe(200);
    expectSecurityHeaders(ok.headers);
    expectSecurityHeaders((await t.app.inject({ method: 'GET', url: '/api/v1/datasets' })).headers);
    expectSecurityHeaders((await t.app.inject({ method: 'GET', url: '/api/v1/no-such-route', headers: await owner.headers() })).headers);
    expectSecurityHeaders((await t.app.inject({ method: 'POST', url: '/api/v1/auth', payload: {} })).headers);
    expectSecurityHeaders((await t.app.inject({ method: 'GET', url: '/healthz' })).headers);
  });

  it('on a media file response', async () => {
    const row = await t.container.db.selectFrom('media').select(['id']).where('dataset_id', '=', datasetId).executeTakeFirstOrThrow();
    const file = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/media/${row.id}/file`, headers: await owner.headers() });
    expect(file.statusCode, file.body.slice(0, 200)).toBe(200);
    expect(file.headers['content-type']).toMatch(/^image\//);
    expectSecurityHeaders(file.headers);
  });

  it('on the UI page (built or the "not built" page) and on a client-side route', async () => {
    const index = await t.app.inject({ method: 'GET', url: '/', headers: { accept: 'text/html' } });
    expect(index.statusCode).toBe(200);
    expect(index.headers['content-type']).toMatch(/text\/html/);
    expectSecurityHeaders(index.headers);
    // The UI page must work under its CSP: no inline <script> bodies, only external same-origin ones.
    const inlineScripts = [...index.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)].filter(([, attrs, body]) => !/\bsrc=/.test(attrs!) && body!.trim() !== '');
    expect(inlineScripts).toEqual([]);
    const deep = await t.app.inject({ method: 'GET', url: `/datasets/${datasetId}`, headers: { accept: 'text/html' } });
    expectSecurityHeaders(deep.headers);
  });

  it('/docs gets its own, relaxed CSP (swagger-ui) and still works', async () => {
    const docs = await t.app.inject({ method: 'GET', url: '/docs/', headers: await owner.headers() });
    expect([200, 302]).toContain(docs.statusCode);
    expectSecurityHeaders(docs.headers, 'docs');
    expect(String(docs.headers['content-security-policy'])).toContain("script-src 'self' 'unsafe-inline'");
    const spec = await t.app.inject({ method: 'GET', url: '/docs/json', headers: await owner.headers() });
    expect(spec.statusCode).toBe(200);
    expect(spec.json()).toHaveProperty('openapi');
  });

  it('HSTS only when the public URL is https', async () => {
    const https = await startTestApp({ jobs: false, env: { VIZDEX_PUBLIC_URL: 'https://vizdex.example.com' } });
    try {
      const response = await https.app.inject({ method: 'GET', url: '/healthz' });
      expect(response.headers['strict-transport-security']).toMatch(/^max-age=\d+/);
    } finally {
      await https.close();
    }
  });
});

describe('login and sign-up rate limit', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ jobs: false, env: { VIZDEX_OPEN_SIGNUP: 'true' } });
    await t.createUser('admin@example.com', { password: 'admin-password' });
    await t.createUser('carol@example.com', { password: 'carol-password' });
    await t.createUser('dave@example.com', { password: 'dave-password' });
  });
  afterAll(async () => t.close());

  const login = (username: string, password: string, ip = '10.0.0.1') =>
    t.app.inject({ method: 'POST', url: '/api/v1/auth', payload: { username, password }, remoteAddress: ip });

  it('a successful login resets the email counter', async () => {
    for (let i = 0; i < 9; i++) expect((await login('dave@example.com', 'wrong', '10.0.0.9')).statusCode).toBe(401);
    expect((await login('dave@example.com', 'dave-password', '10.0.0.8')).statusCode).toBe(200);
    // Nine more failures are allowed again (the IP 10.0.0.9 is at 9, so use fresh addresses).
    for (let i = 0; i < 9; i++) expect((await login('dave@example.com', 'wrong', `10.0.1.${i}`)).statusCode).toBe(401);
    expect((await login('dave@example.com', 'dave-password', '10.0.2.1')).statusCode).toBe(200);
  });

  it('10 failures for one email: the 11th attempt is 429 with Retry-After, even with the right password', async () => {
    for (let i = 0; i < 10; i++) {
      // Different addresses: the email's own counter trips.
      const response = await login('carol@example.com', `wrong-${i}`, `10.1.0.${i}`);
      expect(response.statusCode, response.body).toBe(401);
    }
    const blocked = await login('carol@example.com', 'carol-password', '10.1.1.1');
    expect(blocked.statusCode, blocked.body).toBe(429);
    const retryAfter = Number(blocked.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);
    expect(blocked.json()).toEqual({ detail: `Too many failed login attempts; try again in ${retryAfter} seconds` });
    expect(blocked.cookies.find((c) => c.name === 'SESSION')).toBeUndefined();
    expectSecurityHeaders(blocked.headers);
    // Other accounts are not affected.
    expect((await login('admin@example.com', 'admin-password', '10.1.1.2')).statusCode).toBe(200);
  });

  it('10 failures from one address (over many emails): that address gets 429, others do not', async () => {
    for (let i = 0; i < 10; i++) expect((await login(`nobody${i}@example.com`, 'x', '10.2.0.1')).statusCode).toBe(401);
    const blocked = await login('admin@example.com', 'admin-password', '10.2.0.1');
    expect(blocked.statusCode).toBe(429);
    expect(blocked.headers['retry-after']).toBeDefined();
    expect((await login('admin@example.com', 'admin-password', '10.2.0.2')).statusCode).toBe(200);
  });

  it('failed sign-ups are limited per address too', async () => {
    const signup = (email: string) =>
      t.app.inject({ method: 'POST', url: '/api/v1/auth/signup', payload: { email, password: 'short' }, remoteAddress: '10.3.0.1' });
    for (let i = 0; i < 10; i++) expect((await signup(`new${i}@example.com`)).statusCode).toBe(400);
    const blocked = await signup('new-final@example.com');
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json().detail).toMatch(/^Too many failed sign-up attempts; try again in \d+ seconds$/);
    expect(blocked.headers['retry-after']).toBeDefined();
    const elsewhere = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/signup',
      payload: { email: 'erin@example.com', password: 'erin-password' },
      remoteAddress: '10.3.0.2',
    });
    expect(elsewhere.statusCode, elsewhere.body).toBe(200);
  });
});

describe('LoginThrottle (the window and the size bound)', () => {
  it('lets an email try again once the window has passed, and says how long to wait', () => {
    let now = 1_000_000;
    const throttle = new LoginThrottle({ maxFailures: 3, windowMs: 60_000, maxKeys: 100, now: () => now });
    for (let i = 0; i < 3; i++) {
      expect(throttle.retryAfterSeconds(['email:a'])).toBe(0);
      throttle.recordFailure(['email:a']);
      now += 1000;
    }
    // First failure at 1_000_000, window 60 s, now 1_003_000: 57 s left.
    expect(throttle.retryAfterSeconds(['email:a'])).toBe(57);
    now += 57_000;
    expect(throttle.retryAfterSeconds(['email:a'])).toBe(0);
    throttle.recordFailure(['email:a']);
    throttle.reset('email:a');
    expect(throttle.retryAfterSeconds(['email:a'])).toBe(0);
  });

  it('tracks at most maxKeys keys', () => {
    const throttle = new LoginThrottle({ maxFailures: 3, windowMs: 60_000, maxKeys: 50 });
    for (let i = 0; i < 1000; i++) throttle.recordFailure([`ip:${i}`]);
    expect(throttle.size).toBe(50);
  });
});

describe('token rules still hold (full matrix in test/http/auth.test.ts)', () => {
  let t: TestApp;
  let alice: TestUser;
  beforeAll(async () => {
    t = await startTestApp({ jobs: false });
    alice = await t.createUser('alice@example.com');
  });
  afterAll(async () => t.close());

  const call = (token: string) => t.app.inject({ method: 'GET', url: '/api/v1/datasets', headers: { authorization: `Bearer ${token}` } });
  const handMade = (alg: string, hash: 'sha256' | 'sha512' | null, payload: Record<string, unknown> = {}) => {
    const input = `${b64url({ alg, typ: 'JWT', kid: alice.api_key })}.${b64url({ sub: alice.api_key, iss: 'sdk', iat: nowSeconds(), exp: nowSeconds() + 600, ...payload })}`;
    return `${input}.${hash ? crypto.createHmac(hash, alice.api_secret).update(input).digest('base64url') : ''}`;
  };

  it('alg none, HS512, RS256 and a lifetime over 24 h are 401; a normal token is 200', async () => {
    expect((await call(await mintJwt(alice.api_key, alice.api_secret))).statusCode).toBe(200);
    for (const token of [
      handMade('none', null),
      handMade('HS512', 'sha512'),
      handMade('RS256', 'sha256'),
      await mintJwt(alice.api_key, alice.api_secret, { alg: 'HS512' }),
      await mintJwt(alice.api_key, alice.api_secret, { iat: nowSeconds(), exp: nowSeconds() + 24 * 3600 + 61 }),
    ]) {
      const response = await call(token);
      expect(response.statusCode, token).toBe(401);
      expect(Object.keys(response.json() as object)).toEqual(['detail']);
    }
  });
});
