import fs from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import cookie from '@fastify/cookie';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAuth } from '../../src/http/plugins/auth.js';
import { registerErrorHandling } from '../../src/http/plugins/errors.js';
import { registerWebUi } from '../../src/http/plugins/web-ui.js';
import { UnauthorizedError } from '../../src/domain/errors.js';
import type { AccessService } from '../../src/services/access.service.js';
import type { AuthService } from '../../src/services/auth.service.js';
import { makeTempDir, startTestApp } from '../helpers/harness.js';

/** An app with the real auth and error plugins (every credential refused) around the web UI plugin. */
async function appWithUi(root: string | null): Promise<FastifyInstance> {
  const app = Fastify();
  registerErrorHandling(app);
  await app.register(cookie);
  const refuse = async () => {
    throw new UnauthorizedError();
  };
  registerAuth(app, { authenticateBearer: refuse, authenticateSession: refuse } as unknown as AuthService, {} as AccessService);
  app.get('/api/v1/private', async () => ({ secret: true }));
  await registerWebUi(app, { root });
  return app;
}

const HTML = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

describe('web UI serving', () => {
  let root: string;
  let app: FastifyInstance;

  beforeAll(async () => {
    root = makeTempDir('vizdex-web-');
    fs.mkdirSync(path.join(root, 'assets'));
    fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>vizdex</title><div id="root"></div>');
    fs.writeFileSync(path.join(root, 'assets', 'index-abc123.js'), 'console.log(1)');
    app = await appWithUi(root);
  });
  afterAll(async () => {
    await app.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('serves index.html at / without credentials, never cached', async () => {
    const response = await app.inject({ method: 'GET', url: '/', headers: HTML });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.headers['cache-control']).toBe('no-cache');
    expect(response.headers['x-frame-options']).toBe('DENY');
    expect(response.body).toContain('<div id="root">');
  });

  it('serves hashed assets with a long, immutable cache and 404s missing ones', async () => {
    const response = await app.inject({ method: 'GET', url: '/assets/index-abc123.js' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/javascript/);
    expect(response.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const missing = await app.inject({ method: 'GET', url: '/assets/nope.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ detail: 'Not Found' });
  });

  it('answers page paths that accept HTML with index.html (client-side routes)', async () => {
    for (const url of ['/datasets', '/dataset/8f0e2c3e-0000-4000-8000-000000000000/data', '/dataset/x/data/image/y?z=1', '/login']) {
      const response = await app.inject({ method: 'GET', url, headers: HTML });
      expect(response.statusCode, url).toBe(200);
      expect(response.body).toContain('<div id="root">');
      expect(response.headers['cache-control']).toBe('no-cache');
    }
  });

  it('keeps /api and /docs out of the fallback, and non-HTML requests get the JSON 404', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/v1/nothing-here', headers: HTML })).json()).toEqual({ detail: 'Not Found' });
    expect((await app.inject({ method: 'GET', url: '/docs/nothing-here', headers: HTML })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/datasets', headers: { accept: 'application/json' } })).statusCode).toBe(404);
    expect((await app.inject({ method: 'POST', url: '/datasets', headers: HTML })).statusCode).toBe(404);
    // The API still needs credentials.
    expect((await app.inject({ method: 'GET', url: '/api/v1/private', headers: HTML })).statusCode).toBe(401);
  });

  it('answers / with a short "not built" page when there is no build', async () => {
    const bare = await appWithUi(null);
    try {
      const response = await bare.inject({ method: 'GET', url: '/', headers: HTML });
      expect(response.statusCode).toBe(200);
      expect(response.body).toContain('The web UI is not built');
      expect((await bare.inject({ method: 'GET', url: '/datasets', headers: HTML })).statusCode).toBe(404);
    } finally {
      await bare.close();
    }
  });

  it('is part of the real app: / answers HTML (the UI, or the "not built" page)', async () => {
    const t = await startTestApp({ jobs: false });
    try {
      const response = await t.app.inject({ method: 'GET', url: '/', headers: HTML });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toMatch(/^text\/html/);
      expect((await t.app.inject({ method: 'GET', url: '/api/v1/datasets' })).statusCode).toBe(401);
    } finally {
      await t.close();
    }
  });
});
