import type { FastifyRequest } from 'fastify';
import { finished, PassThrough, type Readable } from 'node:stream';
import { BadRequestError } from '../../domain/errors.js';
import type { FormPart } from '../../services/add-media.service.js';
import type { UploadPart } from '../../services/ingestion.service.js';

/** The file parts of a multipart body, streamed one at a time (text fields are skipped). */
export async function* fileParts(request: FastifyRequest): AsyncIterable<UploadPart> {
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') yield { fieldName: part.fieldname, fileName: part.filename, stream: reportingMalformedBody(part.file) };
    }
  } catch (error) {
    throw asClientError(error);
  }
}

/**
 * A form's fields and files in body order, whether the client sent multipart (curl -F) or
 * urlencoded (Python `requests.post(data=…)`, as the seeds' examples do); no body is an empty form.
 */
export async function* formParts(request: FastifyRequest, limits?: { fileSize: number }): AsyncIterable<FormPart> {
  if (!request.isMultipart()) {
    const body = request.body;
    if (body && typeof body === 'object') {
      for (const [name, value] of Object.entries(body as Record<string, unknown>)) {
        for (const item of Array.isArray(value) ? value : [value]) yield { kind: 'field', name, value: String(item) };
      }
    }
    return;
  }
  try {
    for await (const part of request.parts(limits ? { limits } : undefined)) {
      if (part.type === 'file') yield { kind: 'file', fieldName: part.fieldname, fileName: part.filename, stream: reportingMalformedBody(part.file) };
      else yield { kind: 'field', name: part.fieldname, value: String(part.value) };
    }
  } catch (error) {
    throw asClientError(error);
  }
}

/**
 * The multipart parser reports a malformed body (cut short, no boundary) with plain errors, which
 * would read as 500s; they are the client's: 400, as FastAPI answers. Errors that already carry a
 * 4xx (size limits, not multipart) keep it.
 */
export function asClientError(error: unknown): unknown {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status < 500) return error;
  return new BadRequestError(`There was an error parsing the body: ${error instanceof Error ? error.message : String(error)}`);
}

/** A file part's stream whose parse errors (a body cut short inside it, too) reach its consumer as client errors. */
function reportingMalformedBody(file: Readable): Readable {
  const out = new PassThrough();
  // finished() also reports a part that failed before it was handed over (the parser runs ahead).
  finished(file, (error) => {
    if (error && !out.destroyed) out.destroy(asClientError(error) as Error);
  });
  // The consumer may attach only later; it still sees the error (a destroyed stream keeps it), so
  // this listener just keeps it from being an uncaught exception meanwhile (as the parser does for `file`).
  out.on('error', () => undefined);
  // A consumer that gives up (size limit, bad content) stops the parser, as destroying the part itself would.
  out.on('close', () => {
    if (!file.destroyed) file.destroy();
  });
  return file.pipe(out);
}
