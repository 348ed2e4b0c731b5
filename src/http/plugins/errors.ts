import type { IncomingMessage } from 'node:http';
import type { FastifyError, FastifyInstance } from 'fastify';
import { AppError, InsufficientStorageError, RequestValidationError, TooManyRequestsError, type ValidationIssue } from '../../domain/errors.js';

const LOCATION: Record<string, string> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' };

interface AjvIssue {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/** Ajv's errors in FastAPI's `{"detail":[{loc,msg,type}]}` shape, which Visual Layer clients expect. */
function toValidationIssues(error: FastifyError): ValidationIssue[] {
  const where = LOCATION[error.validationContext ?? 'body'] ?? 'body';
  return (error.validation as AjvIssue[]).map((issue) => {
    const loc: (string | number)[] = [where, ...issue.instancePath.split('/').filter(Boolean)];
    if (issue.keyword === 'required') {
      loc.push(String(issue.params.missingProperty));
      return { loc, msg: 'Field required', type: 'missing' };
    }
    return { loc, msg: issue.message ?? 'Invalid value', type: issue.keyword };
  });
}

/** One place that turns every failure into `{"detail": ...}`; 5xx are logged and say nothing internal. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setNotFoundHandler((_request, reply) => {
    void reply.code(404).send({ detail: 'Not Found' });
  });

  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    // Refused before its body was read to the end (a full disk, a file over the limit): read the rest
    // (bounded) so the client, still sending, gets this answer rather than a broken pipe; past the
    // bound, close the connection after answering, or a keep-alive client would reuse a socket still
    // holding unread body.
    if (!(await drainRequestBody(request.raw))) void reply.header('connection', 'close');
    if (error instanceof TooManyRequestsError) void reply.header('retry-after', String(error.retryAfterSeconds));
    if (error instanceof AppError) return reply.code(error.statusCode).send({ detail: error.detail });
    if (error instanceof RequestValidationError) return reply.code(422).send({ detail: error.issues });
    if (error.validation) return reply.code(422).send({ detail: toValidationIssues(error) });

    switch (error.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return reply.code(422).send({ detail: [{ loc: ['body'], msg: 'JSON decode error', type: 'json_invalid' }] });
      case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
        return reply.code(422).send({ detail: [{ loc: ['body', 'files'], msg: 'Field required (expected a multipart/form-data body)', type: 'missing' }] });
      case 'FST_REQ_FILE_TOO_LARGE':
        return reply.code(413).send({ detail: 'File too large: it exceeds the per-file upload limit' });
      case 'FST_FILES_LIMIT':
      case 'FST_PARTS_LIMIT':
        return reply.code(413).send({ detail: 'Too many files in one request; split the upload into several requests' });
    }

    // A full disk (or quota) wherever it happened: say so, rather than a bare 500.
    if (isDiskFull(error)) {
      request.log.error({ err: error, reqId: request.id }, 'disk full');
      const full = new InsufficientStorageError();
      return reply.code(full.statusCode).send({ detail: full.detail });
    }

    const status = error.statusCode ?? 500;
    if (status < 500) return reply.code(status).send({ detail: error.message });
    request.log.error({ err: error, reqId: request.id }, 'request failed');
    return reply.code(500).send({ detail: `Internal server error (request id ${request.id})` });
  });
}

const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
const DRAIN_MAX_MS = 10_000;

/** Discards what is left of a request body; true once it ended within the bounds. */
function drainRequestBody(raw: IncomingMessage): Promise<boolean> {
  if (raw.complete || raw.readableEnded) return Promise.resolve(true);
  if (raw.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    let seen = 0;
    const finish = (drained: boolean) => {
      clearTimeout(timer);
      raw.off('data', onData);
      raw.off('end', onEnd);
      raw.off('error', onFail);
      raw.off('close', onClose);
      if (!drained) raw.pause();
      resolve(drained);
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > DRAIN_MAX_BYTES) finish(false);
    };
    const onEnd = () => finish(true);
    const onFail = () => finish(false);
    const onClose = () => finish(raw.complete);
    const timer = setTimeout(() => finish(false), DRAIN_MAX_MS);
    raw.on('data', onData);
    raw.once('end', onEnd);
    raw.once('error', onFail);
    raw.once('close', onClose);
    raw.unpipe();
    raw.resume();
  });
}

/** ENOSPC/EDQUOT (or SQLite's SQLITE_FULL), also when wrapped (a stream pipeline's or a cause chain's). */
export function isDiskFull(error: unknown): boolean {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') return true;
  }
  return false;
}
