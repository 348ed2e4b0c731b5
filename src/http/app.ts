import cookie from '@fastify/cookie';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Container } from '../app/container.js';
import { registerAuth } from './plugins/auth.js';
import { registerErrorHandling } from './plugins/errors.js';
import { authRoutes } from './routes/auth.js';
import { datasetRoutes } from './routes/datasets.js';
import { ingestionRoutes } from './routes/ingestion.js';
import { sharingRoutes } from './routes/sharing.js';
import { taskRoutes } from './routes/tasks.js';

export interface AppOptions {
  logger?: boolean | { level: string };
}

export type App = FastifyInstance;

/** Builds the HTTP API on a container; listening is server.ts's job, tests use `inject()`. */
export async function buildApp(container: Container, options: AppOptions = {}): Promise<App> {
  const { config, services } = container;
  const app = Fastify({
    logger: options.logger ?? false,
    // Bodies other than uploads are small JSON documents.
    bodyLimit: 1024 * 1024,
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  registerErrorHandling(app);
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
      await api.register(sharingRoutes, { sharing: services.sharing });
      await api.register(taskRoutes, { tasks: services.tasks });
    },
    { prefix: '/api/v1' },
  );
  return app;
}
