/**
 * The on-prem pipeline service (SPEC §4): Visual Layer's `:2080/api/v1/process…` endpoints on a
 * listener of their own, without auth — so it binds to loopback unless told otherwise, and `path`
 * is confined to the configured roots. Parameters come from the query string (and, for POST, from
 * a JSON or urlencoded body too).
 */
import { Type, type FastifyPluginAsyncTypebox, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Container } from '../app/container.js';
import { RequestValidationError, type ValidationIssue } from '../domain/errors.js';
import type { OperatorService } from '../services/operator.service.js';
import { registerBodyParsers } from './plugins/body-parsers.js';
import { registerErrorHandling } from './plugins/errors.js';

export interface RunningPipelineService {
  app: FastifyInstance;
  url: string;
  /** Stops listening; the container stays open (serve shares it). */
  close(): Promise<void>;
}

const ProcessQuery = Type.Object({
  path: Type.Optional(Type.String({ description: 'absolute local folder or file list, or an s3:// / http(s):// location' })),
  name: Type.Optional(Type.String({ description: 'dataset name (default: the last segment of path)' })),
});

const AddMediaQuery = Type.Object({
  dataset_id: Type.Optional(Type.String()),
  path: Type.Optional(Type.String({ description: 'absolute local folder or file list, or an s3:// / http(s):// location' })),
  auto_reindex: Type.Optional(Type.String({ description: 'true: reindex after the new media are processed' })),
});

type Params = Record<string, unknown>;

/** Query parameters first, then the POST body's fields; only text-like values count. */
function parameters(query: Params, body: unknown): Map<string, string> {
  const merged = new Map<string, string>();
  const take = (source: unknown) => {
    if (source === null || typeof source !== 'object' || Array.isArray(source)) return;
    for (const [key, value] of Object.entries(source as Params)) {
      if (merged.has(key)) continue;
      const first = Array.isArray(value) ? (value as unknown[])[0] : value;
      if (typeof first === 'string' || typeof first === 'number' || typeof first === 'boolean') merged.set(key, String(first));
    }
  };
  take(query);
  take(body);
  return merged;
}

/** Missing parameters as FastAPI reports them (422). */
function requireParams(params: Map<string, string>, names: string[]): void {
  const issues: ValidationIssue[] = names.filter((name) => !params.has(name)).map((name) => ({ loc: ['query', name], msg: 'Field required', type: 'missing' }));
  if (issues.length > 0) throw new RequestValidationError(issues);
}

function parseBoolean(params: Map<string, string>, name: string): boolean {
  const raw = params.get(name)?.trim();
  if (raw === undefined || raw === '') return false;
  if (/^(true|1|yes|on)$/i.test(raw)) return true;
  if (/^(false|0|no|off)$/i.test(raw)) return false;
  throw new RequestValidationError([{ loc: ['query', name], msg: 'Input should be a valid boolean', type: 'bool_parsing' }]);
}

const ProcessResponse = Type.Object({ status: Type.String(), message: Type.String(), dataset_id: Type.String(), name: Type.String() });
const AddMediaResponse = Type.Object({ status: Type.String(), message: Type.String(), dataset_id: Type.String() });

export const pipelineRoutes: FastifyPluginAsyncTypebox<{ operator: OperatorService }> = async (app, { operator }) => {
  app.route({
    method: ['GET', 'POST'],
    url: '/process',
    schema: { summary: 'Create a dataset from a local folder, s3:// or http(s):// location, or a list of files', querystring: ProcessQuery, response: { 200: ProcessResponse } },
    handler: async (request) => {
      const params = parameters(request.query, request.body);
      requireParams(params, ['path']);
      const created = await operator.createDataset({ location: params.get('path')!, name: params.get('name') });
      return { status: 'success', message: 'Dataset processing started', dataset_id: created.dataset_id, name: created.name };
    },
  });

  app.route({
    method: ['GET', 'POST'],
    url: '/process/add_media',
    schema: { summary: 'Add the media at path to an indexed dataset', querystring: AddMediaQuery, response: { 200: AddMediaResponse } },
    handler: async (request) => {
      const params = parameters(request.query, request.body);
      requireParams(params, ['dataset_id', 'path']);
      const datasetId = params.get('dataset_id')!.trim();
      await operator.addMediaFrom(datasetId, params.get('path')!, parseBoolean(params, 'auto_reindex'));
      return { status: 'success', message: 'Media addition started', dataset_id: datasetId };
    },
  });
};

/** Builds the service's Fastify app on a container; `startPipelineService` listens. */
export async function buildPipelineService(container: Container, options: { logger?: boolean | { level: string } } = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 64 * 1024 }).withTypeProvider<TypeBoxTypeProvider>();

  registerBodyParsers(app);
  // Any other body is ignored: the parameters are in the query string.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => done(null, undefined));

  registerErrorHandling(app);
  app.get('/healthz', async () => ({ status: 'ok' }));
  await app.register(pipelineRoutes, { prefix: '/api/v1', operator: container.services.operator });
  return app;
}

/** Listens on `host:port` (port 0: any free port; the URL says which). Fails loudly when it cannot. */
export async function startPipelineService(
  container: Container,
  options: { host: string; port: number; /** What to do about a port in use, for the error message. */ hint?: string },
): Promise<RunningPipelineService> {
  const { config } = container;
  const app = await buildPipelineService(container, { logger: config.logLevel === 'silent' ? false : { level: config.logLevel } });
  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (error) {
    await app.close().catch(() => undefined);
    const reason = (error as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'the address is already in use' : (error as Error).message;
    throw new Error(`the pipeline service cannot listen on ${options.host}:${options.port}: ${reason}${options.hint ? ` (${options.hint})` : ''}`);
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return { app, url: `http://${host}:${port}`, close: () => app.close() };
}
