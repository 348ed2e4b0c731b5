import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ForbiddenError } from '../../domain/errors.js';
import type { AuthService } from '../../services/auth.service.js';
import { currentUser, SESSION_COOKIE } from '../plugins/auth.js';

const UserResponse = Type.Object({
  user_id: Type.String(),
  email: Type.String(),
  name: Type.String(),
  is_admin: Type.Boolean(),
});

const toUserResponse = (u: { id: string; email: string; name: string; isAdmin: boolean }) => ({
  user_id: u.id,
  email: u.email,
  name: u.name,
  is_admin: u.isAdmin,
});

const tags = ['auth'];

export const authRoutes: FastifyPluginAsyncTypebox<{ auth: AuthService }> = async (app, { auth }) => {
  const cookieOptions = (expires: Date) => ({ path: '/', httpOnly: true, sameSite: 'lax' as const, expires });

  app.post(
    '/auth',
    {
      config: { public: true },
      schema: {
        tags,
        summary: 'Log in with email and password; sets the SESSION cookie',
        body: Type.Object({ username: Type.String(), password: Type.String() }),
        response: { 200: UserResponse, 429: Type.Object({ detail: Type.String() }) },
      },
    },
    async (request, reply) => {
      const { user, cookie, expiresAt } = await auth.login(request.body.username, request.body.password, request.ip);
      void reply.setCookie(SESSION_COOKIE, cookie, cookieOptions(expiresAt));
      return toUserResponse(user);
    },
  );

  app.post(
    '/auth/signup',
    {
      config: { public: true },
      schema: {
        tags,
        summary: 'Create an account (open while no user exists, or with VIZDEX_OPEN_SIGNUP=true) and log in',
        body: Type.Object({ email: Type.String(), password: Type.String(), name: Type.Optional(Type.String()) }),
        response: { 200: UserResponse },
      },
    },
    async (request, reply) => {
      await auth.signup(request.body, request.ip);
      const { user, cookie, expiresAt } = await auth.login(request.body.email, request.body.password, request.ip);
      void reply.setCookie(SESSION_COOKIE, cookie, cookieOptions(expiresAt));
      return toUserResponse(user);
    },
  );

  app.get(
    '/auth/config',
    { config: { public: true }, schema: { tags, summary: 'What the login page needs to know', response: { 200: Type.Object({ signup_open: Type.Boolean() }) } } },
    async () => ({ signup_open: await auth.signupAllowed() }),
  );

  app.post('/auth/logout', { config: { public: true }, schema: { tags, summary: 'End the browser session', response: { 200: Type.Null() } } }, async (request, reply) => {
    const cookie = request.cookies[SESSION_COOKIE];
    if (cookie) await auth.logout(cookie);
    void reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return null;
  });

  app.get('/auth/me', { schema: { tags, summary: 'The authenticated user', response: { 200: UserResponse } } }, async (request) =>
    toUserResponse(currentUser(request)),
  );

  app.get(
    '/api_credentials',
    {
      schema: {
        tags,
        summary: 'Create an API key pair; the secret is shown only this once',
        response: { 200: Type.Object({ api_key: Type.String(), api_secret: Type.String(), message: Type.String() }) },
      },
    },
    async (request) => ({
      ...(await auth.createApiCredentials(currentUser(request).id)),
      message: 'Store the api_secret now: it cannot be shown again.',
    }),
  );

  app.get(
    '/api_keys',
    {
      schema: {
        tags,
        summary: "List the caller's API keys (secrets are never shown again)",
        response: {
          200: Type.Array(
            Type.Object({
              api_key: Type.String(),
              created_at: Type.String(),
              last_used_at: Type.Union([Type.String(), Type.Null()]),
              revoked_at: Type.Union([Type.String(), Type.Null()]),
            }),
          ),
        },
      },
    },
    async (request) => auth.listApiKeys(currentUser(request).id),
  );

  app.delete(
    '/api_keys/:apiKey',
    { schema: { tags, summary: 'Revoke one of your API keys', params: Type.Object({ apiKey: Type.String() }), response: { 200: Type.Null() } } },
    async (request) => {
      await auth.revokeApiKey(currentUser(request).id, request.params.apiKey);
      return null;
    },
  );

  app.get('/users', { schema: { tags, summary: 'List users (admins only)', response: { 200: Type.Array(UserResponse) } } }, async (request) => {
    if (!currentUser(request).isAdmin) throw new ForbiddenError('Only administrators can list users');
    return (await auth.listUsers()).map(toUserResponse);
  });

  app.post(
    '/users',
    {
      schema: {
        tags,
        summary: 'Create a user (admins only)',
        body: Type.Object({ email: Type.String(), name: Type.Optional(Type.String()), password: Type.Optional(Type.String()) }),
        response: { 200: UserResponse },
      },
    },
    async (request) => {
      if (!currentUser(request).isAdmin) throw new ForbiddenError('Only administrators can create users');
      return toUserResponse(await auth.createUser(request.body));
    },
  );
};
