import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export interface WebUiOptions {
  /** The built UI (index.html + assets/); default: dist/web of this checkout, null: none. */
  root?: string | null;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** dist/http/plugins → dist/web when compiled; src/http/plugins → dist/web when run through tsx. */
const CANDIDATES = [path.resolve(HERE, '../../web'), path.resolve(HERE, '../../../dist/web')];

/** Paths that belong to the API and its documentation: never answered with the UI's page. */
const NOT_UI = /^\/(api|docs)(\/|$)/;

const HTML_HEADERS = {
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  'content-security-policy': "frame-ancestors 'none'; object-src 'none'; base-uri 'self'",
};

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vizdex</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>vizdex</h1>
<p>The web UI is not built. Run <code>npm run build:web</code> (or <code>npm ci</code>, which builds it) and restart the server.</p>
<p>The HTTP API works without it: see <a href="/docs">/docs</a>.</p>
</body></html>
`;

/** The built UI, if any: the first candidate folder that holds an index.html. */
export function findWebRoot(candidates: string[] = CANDIDATES): string | null {
  return candidates.find((dir) => fs.existsSync(path.join(dir, 'index.html'))) ?? null;
}

/**
 * Serves the web UI at `/`: hashed assets with a year's cache, index.html never cached, and every
 * other page path (a GET that accepts HTML, outside /api and /docs) answered with index.html so the
 * client-side router can take it. Every route here is public: the page itself holds no data, and the
 * API it calls checks the SESSION cookie.
 */
export async function registerWebUi(app: FastifyInstance, options: WebUiOptions = {}): Promise<void> {
  const root = options.root === undefined ? findWebRoot() : options.root;
  await app.register(async (web) => {
    web.addHook('onRoute', (route) => {
      route.config = { ...(route.config ?? {}), public: true };
    });

    if (!root) {
      web.get('/', { schema: { hide: true } }, async (_request, reply) => reply.headers(HTML_HEADERS).type('text/html; charset=utf-8').send(NOT_BUILT_PAGE));
      return;
    }

    await web.register(fastifyStatic, {
      root: path.join(root, 'assets'),
      prefix: '/assets/',
      // File names carry a content hash: a changed file is a new URL.
      maxAge: '365d',
      immutable: true,
      index: false,
      // The page is served by the routes below, not by this prefix.
      redirect: false,
    });

    const sendIndex = (reply: FastifyReply) => reply.headers(HTML_HEADERS).sendFile('index.html', root, { cacheControl: false, maxAge: 0 });
    web.get('/', { schema: { hide: true } }, async (_request, reply) => sendIndex(reply));
    web.get('/*', { schema: { hide: true } }, async (request: FastifyRequest, reply) => {
      const pathname = request.url.split('?')[0] ?? '/';
      if (NOT_UI.test(pathname) || !acceptsHtml(request)) return reply.callNotFound();
      return sendIndex(reply);
    });
  });
}

function acceptsHtml(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return accept.includes('text/html');
}
