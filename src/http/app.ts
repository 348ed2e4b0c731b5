import cookie from '@fastify/cookie';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv, type ValidateFunction } from 'ajv';
import Fastify, { type FastifyInstance, type FastifyReply, type RouteOptions } from 'fastify';
import type { Container } from '../app/container.js';
import { registerAuth } from './plugins/auth.js';
import { registerBodyParsers } from './plugins/body-parsers.js';
import { registerErrorHandling } from './plugins/errors.js';
import { registerSecurityHeaders } from './plugins/security.js';
import { registerWebUi } from './plugins/web-ui.js';
import { authRoutes } from './routes/auth.js';
import { datasetRoutes } from './routes/datasets.js';
import { exploreRoutes } from './routes/explore.js';
import { mediaRoutes } from './routes/media.js';
import { mediaDetailsRoutes } from './routes/media-details.js';
import { exportRoutes } from './routes/export.js';
import { ingestionRoutes } from './routes/ingestion.js';
import { addMediaRoutes } from './routes/add-media.js';
import { sharingRoutes } from './routes/sharing.js';
import { taskRoutes } from './routes/tasks.js';
import { tagRoutes } from './routes/tags.js';
import { vectorSearchRoutes } from './routes/vector-search.js';
import { annotationRoutes } from './routes/annotations.js';

export interface AppOptions {
  logger?: boolean | { level: string };
  /** Called for every route as it is registered (tests derive their access matrix from the real route table). */
  onRoute?: (route: RouteOptions) => void;
}

export type App = FastifyInstance;

/** Builds the HTTP API on a container; listening is server.ts's job, tests use `inject()`. */
export async function buildApp(container: Container, options: AppOptions = {}): Promise<App> {
  const { config, services } = container;
  const app = Fastify({
    logger: options.logger ?? false,
    // Bodies other than uploads are small JSON documents.
    bodyLimit: 1024 * 1024,
    // A malformed %-escape or an over-long path parameter is refused by the router itself, before the
    // error handler: answer in the spec's `{"detail": ...}` shape rather than Fastify's own.
    frameworkErrors: (error, _request, reply) => {
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      void (reply as FastifyReply).code(tooLong ? 414 : 400).send({ detail: tooLong ? 'URL path parameter too long' : 'Malformed URL' });
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  if (options.onRoute) app.addHook('onRoute', options.onRoute);

  // Query strings and paths are text, so their values are coerced to the schema's types; JSON bodies
  // are not: a number where a string belongs is a 422, as FastAPI (pydantic) answers it.
  const coercing = new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, allErrors: false });
  const strict = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict.compile(schema) : refusingNonFinite(coercing.compile(schema))));

  registerBodyParsers(app);
  registerErrorHandling(app);
  registerSecurityHeaders(app, { publicUrl: config.publicUrl });
  await app.register(cookie);
  await app.register(multipart, {
    // One above our own limits, so the service answers with its clearer 413 first.
    limits: { fileSize: config.maxFileBytes + 1, files: config.maxRequestFiles + 1, fields: 100, fieldSize: 64 * 1024 },
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'vizdex API', version: '1', description: 'Wire-compatible with the Visual Layer API.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });

  registerAuth(app, services.auth, services.access);

  app.get('/healthz', { config: { public: true }, schema: { hide: true } }, async () => ({ status: 'ok' }));
  await app.register(
    async (api) => {
      await api.register(authRoutes, { auth: services.auth });
      await api.register(datasetRoutes, { datasets: services.datasets });
      await api.register(ingestionRoutes, { ingestion: services.ingestion });
      await api.register(addMediaRoutes, { addMedia: services.addMedia, ingestion: services.ingestion, uploadLimit: Math.max(config.maxFileBytes, config.archives.maxTotalBytes) });
      await api.register(sharingRoutes, { sharing: services.sharing });
      await api.register(taskRoutes, { tasks: services.tasks });
      await api.register(exploreRoutes, { explore: services.explore, config });
      await api.register(vectorSearchRoutes, { explore: services.explore, config });
      await api.register(mediaRoutes, { media: services.media, explore: services.explore });
      await api.register(exportRoutes, { exports: services.exports, publicUrl: config.publicUrl });
      await api.register(mediaDetailsRoutes, { mediaDetails: services.mediaDetails, config });
      await api.register(tagRoutes, { tags: services.tags });
      await api.register(annotationRoutes, { annotations: services.annotations, uploadLimit: config.archives.maxTotalBytes });
    },
    { prefix: '/api/v1' },
  );
  await registerWebUi(app);
  return app;
}

/**
 * Ajv coerces "Infinity" or "1e400" to Infinity and then skips minimum/maximum for it, so such a
 * page number reached SQL as a 500 (as did page=1e30, an OFFSET past SQLite's 64-bit integers):
 * refuse a non-finite or unsafe-integer-sized number in a coerced part as a 422.
 */
function refusingNonFinite(validate: ValidateFunction): ValidateFunction {
  const checked = ((data: unknown, context?: Parameters<ValidateFunction>[1]) => {
    if (!validate(data, context)) {
      checked.errors = validate.errors;
      return false;
    }
    const bad = data && typeof data === 'object' ? Object.entries(data).find(([, value]) => [value].flat().some(outOfRange)) : undefined;
    checked.errors = bad ? [{ instancePath: `/${bad[0]}`, schemaPath: '', keyword: 'maximum', params: {}, message: 'must be a finite number within ±2^53' }] : null;
    return !bad;
  }) as ValidateFunction;
  checked.schema = validate.schema;
  checked.schemaEnv = validate.schemaEnv;
  return checked;
}

const outOfRange = (value: unknown) => typeof value === 'number' && !(Math.abs(value) <= Number.MAX_SAFE_INTEGER);
