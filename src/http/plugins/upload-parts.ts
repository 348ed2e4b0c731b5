import type { FastifyRequest } from 'fastify';
import { finished, PassThrough, type Readable } from 'node:stream';
import { BadRequestError } from '../../domain/errors.js';
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
 * The multipart parser reports a malformed body (cut short, no boundary) with plain errors, which
 * would read as 500s; they are the client's: 400, as FastAPI answers. Errors that already carry a
 * 4xx (size limits, not multipart) keep it.
 */
function asClientError(error: unknown): unknown {
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
