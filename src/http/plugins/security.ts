import type { FastifyInstance, FastifyRequest } from 'fastify';

/** The web UI's policy: its own scripts only, pictures and videos from the API (and blob:/data: previews). */
export const UI_CSP = [
  "default-src 'self'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  "style-src 'self' 'unsafe-inline'",
  "script-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Swagger UI (at /docs) runs an inline initializer and inline styles: a looser policy, only there. */
export const DOCS_CSP = [
  "default-src 'self'",
  "img-src 'self' data:",
  "style-src 'self' 'unsafe-inline'",
  "script-src 'self' 'unsafe-inline'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const DOCS_PATH = /^\/docs(\/|$|\?)/;

export interface SecurityHeadersOptions {
  /** VIZDEX_PUBLIC_URL: when it is https, HSTS is sent on every response. */
  publicUrl: string | null;
}

/**
 * Security headers on every response (API, media, UI, errors): no sniffing, no framing, no referrer,
 * a strict CSP (a relaxed one for /docs), COOP, and HSTS when the server is reached over https.
 * An onSend hook, so it also covers replies of plugins (static files, swagger, 404s).
 */
export function registerSecurityHeaders(app: FastifyInstance, options: SecurityHeadersOptions): void {
  const httpsPublic = options.publicUrl?.startsWith('https://') ?? false;
  const isHttps = (request: FastifyRequest) => httpsPublic || request.protocol === 'https';
  app.addHook('onSend', async (request, reply, payload) => {
    void reply.header('x-content-type-options', 'nosniff');
    void reply.header('x-frame-options', 'DENY');
    void reply.header('referrer-policy', 'no-referrer');
    void reply.header('cross-origin-opener-policy', 'same-origin');
    void reply.header('content-security-policy', DOCS_PATH.test(request.url) ? DOCS_CSP : UI_CSP);
    if (isHttps(request)) void reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
    return payload;
  });
}
