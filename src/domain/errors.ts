/** A failure the API reports as `{"detail": ...}` with this status. */
export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    readonly detail: string,
  ) {
    super(detail);
    this.name = new.target.name;
  }
}

export class BadRequestError extends AppError {
  constructor(detail: string) {
    super(400, detail);
  }
}

export class UnauthorizedError extends AppError {
  constructor(detail = 'Not authenticated') {
    super(401, detail);
  }
}

export class ForbiddenError extends AppError {
  constructor(detail: string) {
    super(403, detail);
  }
}

export class NotFoundError extends AppError {
  constructor(detail: string) {
    super(404, detail);
  }
}

export class ConflictError extends AppError {
  constructor(detail: string) {
    super(409, detail);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(detail: string) {
    super(413, detail);
  }
}

/** 429 with a `Retry-After` header (seconds). */
export class TooManyRequestsError extends AppError {
  constructor(
    detail: string,
    readonly retryAfterSeconds: number,
  ) {
    super(429, detail);
  }
}

/** 507: the server's disk (or the store's quota) is full; nothing of the request was kept. */
export class InsufficientStorageError extends AppError {
  constructor(detail = 'Insufficient storage: the server\'s disk is full; nothing of this request was stored') {
    super(507, detail);
  }
}

/** A server-side failure whose reason the caller should read (an unreachable bucket, a failed store). */
export class ServerError extends AppError {
  constructor(detail: string) {
    super(500, detail);
  }
}

/** One item of a FastAPI-style validation error (`{"detail":[{loc,msg,type}]}`). */
export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

export class RequestValidationError extends Error {
  readonly statusCode = 422;
  constructor(readonly issues: ValidationIssue[]) {
    super(issues.map((i) => `${i.loc.join('.')}: ${i.msg}`).join('; '));
    this.name = 'RequestValidationError';
  }
}

export const datasetNotFound = (): NotFoundError => new NotFoundError('Dataset not found');

/** A bulk request naming ids that are not `what` of the dataset: 400 naming the first 20, nothing changed. */
export function notInDataset(what: string, unknown: string[]): BadRequestError {
  const shown = unknown.slice(0, 20).join(', ');
  return new BadRequestError(`Not ${what} of this dataset: ${shown}${unknown.length > 20 ? ` and ${unknown.length - 20} more` : ''}; nothing was changed`);
}
