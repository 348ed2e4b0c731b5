import type { FastifyInstance, FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../../domain/errors.js';
import type { Role } from '../../domain/roles.js';
import type { AccessService, DatasetAccess } from '../../services/access.service.js';
import type { AuthService, AuthenticatedUser } from '../../services/auth.service.js';

export const SESSION_COOKIE = 'SESSION';

declare module 'fastify' {
  interface FastifyRequest {
    user: AuthenticatedUser | null;
    datasetAccess: DatasetAccess | null;
  }
  interface FastifyContextConfig {
    /** Reachable without credentials (login, sign-up, docs, health). */
    public?: boolean;
    /** The least role on `:datasetId` this route needs; checked before the body is read or validated. */
    datasetRole?: Role;
  }
}

/**
 * Authentication on every route unless marked public, then dataset access for routes that name a
 * role — both in onRequest, so a non-member gets 404 even for a malformed request.
 */
export function registerAuth(app: FastifyInstance, auth: AuthService, access: AccessService): void {
  app.decorateRequest('user', null);
  app.decorateRequest('datasetAccess', null);

  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    if (config.public || !request.routeOptions.url) return;
    request.user = await authenticate(request, auth);
    if (config.datasetRole) {
      const { datasetId } = request.params as { datasetId?: string };
      request.datasetAccess = await access.require(request.user.id, datasetId ?? '', config.datasetRole);
    }
  });
}

async function authenticate(request: FastifyRequest, auth: AuthService): Promise<AuthenticatedUser> {
  const header = request.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) throw new UnauthorizedError('Invalid Authorization header: expected "Bearer <jwt>"');
    return auth.authenticateBearer(match[1]);
  }
  const session = request.cookies[SESSION_COOKIE];
  if (session) return auth.authenticateSession(session);
  throw new UnauthorizedError('Not authenticated');
}

/** The authenticated user of a non-public route (set by the onRequest hook). */
export function currentUser(request: FastifyRequest): AuthenticatedUser {
  if (!request.user) throw new UnauthorizedError();
  return request.user;
}
