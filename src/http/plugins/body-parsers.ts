import type { FastifyInstance } from 'fastify';

/**
 * JSON and urlencoded bodies as Visual Layer clients send them. FastAPI never reads the body of a
 * route that takes none, so clients that send `Content-Type: application/json` with no body (curl
 * -X POST, process_files, DELETE…) work there: an empty JSON body is no body here too, and routes
 * that need one still answer 422. Form posts without files (`requests.post(url, data={…})`) arrive
 * urlencoded; a repeated key becomes an array.
 */
export function registerBodyParsers(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body.length === 0) return done(null, undefined);
    parseJson(request, body.toString(), done);
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    const form: Record<string, string | string[]> = {};
    for (const [key, value] of new URLSearchParams(body.toString())) {
      const existing = form[key];
      form[key] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
    }
    done(null, form);
  });
}
