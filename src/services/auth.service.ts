import crypto from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import { AppError, BadRequestError, ConflictError, ForbiddenError, NotFoundError, TooManyRequestsError, UnauthorizedError } from '../domain/errors.js';
import type { UserRow, UsersRepository } from '../db/users.repository.js';
import type { Keyring } from '../security/keyring.js';
import { randomToken, sha256Hex } from '../security/keyring.js';
import { LoginThrottle, emailKey, ipKey } from '../security/login-throttle.js';
import { hashPassword, verifyPassword } from '../security/passwords.js';
import type { Clock } from './clock.js';

export interface AuthenticatedUser {
  id: string;
  email: string;
  name: string;
  isAdmin: boolean;
}

export interface ApiCredentials {
  api_key: string;
  api_secret: string;
}

export interface ApiKeyView {
  api_key: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface NewUser {
  email: string;
  name?: string | undefined;
  password?: string | undefined;
}

const MAX_TOKEN_LIFETIME_SECONDS = 24 * 60 * 60;
const SESSION_LIFETIME_MS = 14 * 24 * 60 * 60 * 1000;
const CLOCK_TOLERANCE_SECONDS = 30;
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const MIN_PASSWORD_LENGTH = 8;

/** Users, their API keys (client-minted HS256 JWTs) and browser sessions. */
export class AuthService {
  constructor(
    private readonly users: UsersRepository,
    private readonly keyring: Keyring,
    private readonly clock: Clock,
    private readonly options: { openSignup: boolean },
    /** Failed log-ins/sign-ups per email and client address; in memory, per process (see LoginThrottle). */
    private readonly throttle: LoginThrottle = new LoginThrottle({ maxFailures: 10, windowMs: 15 * 60 * 1000, maxKeys: 10_000, now: () => clock.now().getTime() }),
  ) {}

  /** Verifies `Authorization: Bearer <jwt>` as the Visual Layer SDKs mint it. */
  async authenticateBearer(token: string): Promise<AuthenticatedUser> {
    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new UnauthorizedError('Invalid token: not a JWT');
    }
    if (header.alg !== 'HS256') throw new UnauthorizedError('Invalid token: only HS256 tokens are accepted');
    if (typeof header.kid !== 'string' || header.kid === '') throw new UnauthorizedError('Invalid token: missing kid (the API key)');

    const key = await this.users.findActiveApiKey(header.kid);
    if (!key) throw new UnauthorizedError('Invalid token: unknown or revoked API key');

    const secret = new TextEncoder().encode(this.keyring.decrypt(key.secret_enc));
    let payload;
    try {
      ({ payload } = await jwtVerify(token, secret, {
        algorithms: ['HS256'],
        requiredClaims: ['exp'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: this.clock.now(),
      }));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw new UnauthorizedError('Token expired');
      if (error instanceof joseErrors.JWSSignatureVerificationFailed) throw new UnauthorizedError('Invalid token: bad signature');
      throw new UnauthorizedError(`Invalid token: ${(error as Error).message}`);
    }
    if (payload.sub !== undefined && payload.sub !== header.kid) throw new UnauthorizedError('Invalid token: sub does not match kid');
    const nowSeconds = Math.floor(this.clock.now().getTime() / 1000);
    // Otherwise a short nominal lifetime starting in the future would make a long-lived token.
    if (payload.iat !== undefined && payload.iat > nowSeconds + CLOCK_TOLERANCE_SECONDS) {
      throw new UnauthorizedError('Invalid token: issued in the future');
    }
    const issuedAt = payload.iat ?? nowSeconds;
    if ((payload.exp ?? 0) - issuedAt > MAX_TOKEN_LIFETIME_SECONDS) {
      throw new UnauthorizedError('Invalid token: lifetime exceeds 24 hours');
    }

    const user = await this.users.findById(key.user_id);
    if (!user) throw new UnauthorizedError('Invalid token: unknown user');
    void this.users.touchApiKey(key.api_key, this.clock.now().toISOString()).catch(() => undefined);
    return toAuthenticated(user);
  }

  /** The browser's `SESSION` cookie: `<token>.<signature>`; the token's hash is looked up. */
  async authenticateSession(cookie: string): Promise<AuthenticatedUser> {
    const dot = cookie.lastIndexOf('.');
    const token = cookie.slice(0, dot);
    if (dot <= 0 || !this.keyring.verify(token, cookie.slice(dot + 1))) throw new UnauthorizedError('Invalid session');
    const user = await this.users.findSessionUser(sha256Hex(token), this.clock.now().toISOString());
    if (!user) throw new UnauthorizedError('Session expired');
    return toAuthenticated(user);
  }

  /** Email + password login; returns the cookie value and its expiry. */
  async login(email: string, password: string, clientIp?: string): Promise<{ user: AuthenticatedUser; cookie: string; expiresAt: Date }> {
    const keys = [emailKey(email), ...(clientIp ? [ipKey(clientIp)] : [])];
    this.refuseIfThrottled(keys, 'login');
    try {
      return await this.checkedLogin(email, password);
    } catch (error) {
      if (error instanceof UnauthorizedError) this.throttle.recordFailure(keys);
      throw error;
    }
  }

  private async checkedLogin(email: string, password: string): Promise<{ user: AuthenticatedUser; cookie: string; expiresAt: Date }> {
    const user = await this.users.findByEmail(email.trim());
    // Verify against a dummy hash for unknown users too, so timing does not reveal who exists.
    const ok = await verifyPassword(password, user?.password_hash ?? DUMMY_HASH);
    if (!user || !user.password_hash || !ok) throw new UnauthorizedError('Incorrect email or password');
    const token = randomToken();
    const now = this.clock.now();
    const expiresAt = new Date(now.getTime() + SESSION_LIFETIME_MS);
    await this.users.insertSession(sha256Hex(token), user.id, now.toISOString(), expiresAt.toISOString());
    await this.users.deleteExpiredSessions(now.toISOString());
    // A successful login clears the email's failures (not the address's: one good account does not
    // buy an address more guesses at others).
    this.throttle.reset(emailKey(email));
    return { user: toAuthenticated(user), cookie: `${token}.${this.keyring.sign(token)}`, expiresAt };
  }

  async logout(cookie: string): Promise<void> {
    const token = cookie.slice(0, Math.max(0, cookie.lastIndexOf('.')));
    if (token) await this.users.deleteSession(sha256Hex(token));
  }

  async signupAllowed(): Promise<boolean> {
    return this.options.openSignup || (await this.users.count()) === 0;
  }

  /** Self-service sign-up: open while no user exists, afterwards only with VIZDEX_OPEN_SIGNUP. */
  async signup(input: NewUser, clientIp?: string): Promise<AuthenticatedUser> {
    const keys = clientIp ? [ipKey(`signup:${clientIp}`)] : [];
    this.refuseIfThrottled(keys, 'sign-up');
    try {
      return await this.checkedSignup(input);
    } catch (error) {
      // Failed sign-ups (closed, taken email, bad input) count per address: probing which emails exist is slowed too.
      if (error instanceof AppError && error.statusCode < 500) this.throttle.recordFailure(keys);
      throw error;
    }
  }

  private refuseIfThrottled(keys: string[], what: string): void {
    const wait = this.throttle.retryAfterSeconds(keys);
    if (wait > 0) throw new TooManyRequestsError(`Too many failed ${what} attempts; try again in ${wait} seconds`, wait);
  }

  private async checkedSignup(input: NewUser): Promise<AuthenticatedUser> {
    if (!(await this.signupAllowed())) throw new ForbiddenError('Sign-up is closed: ask an administrator for an account');
    if (!input.password) throw new BadRequestError('A password is required');
    return this.createUser(input);
  }

  /** Creates a user (the first one becomes the admin). */
  async createUser(input: NewUser): Promise<AuthenticatedUser> {
    const email = input.email.trim().toLowerCase();
    if (!EMAIL_PATTERN.test(email)) throw new BadRequestError(`Invalid email address: ${input.email}`);
    if (input.password !== undefined && input.password.length < MIN_PASSWORD_LENGTH) {
      throw new BadRequestError(`Password must be at least ${MIN_PASSWORD_LENGTH} characters`);
    }
    if (await this.users.findByEmail(email)) throw new ConflictError(`A user with email ${email} already exists`);
    const isFirst = (await this.users.count()) === 0;
    const user: UserRow = {
      id: crypto.randomUUID(),
      email,
      name: input.name?.trim() || email.split('@')[0] || email,
      password_hash: input.password ? await hashPassword(input.password) : null,
      is_admin: isFirst ? 1 : 0,
      created_at: this.clock.now().toISOString(),
    };
    await this.users.insert(user);
    return toAuthenticated(user);
  }

  /** A new key pair; the secret is returned once and stored only encrypted. */
  async createApiCredentials(userId: string): Promise<ApiCredentials> {
    const apiKey = crypto.randomBytes(16).toString('hex');
    const apiSecret = randomToken(32);
    await this.users.insertApiKey({
      api_key: apiKey,
      user_id: userId,
      secret_enc: this.keyring.encrypt(apiSecret),
      created_at: this.clock.now().toISOString(),
      last_used_at: null,
      revoked_at: null,
    });
    return { api_key: apiKey, api_secret: apiSecret };
  }

  async listApiKeys(userId: string): Promise<ApiKeyView[]> {
    const keys = await this.users.listApiKeys(userId);
    return keys.map(({ api_key, created_at, last_used_at, revoked_at }) => ({ api_key, created_at, last_used_at, revoked_at }));
  }

  async revokeApiKey(userId: string, apiKey: string): Promise<void> {
    if (!(await this.users.revokeApiKey(userId, apiKey, this.clock.now().toISOString()))) {
      throw new NotFoundError('API key not found');
    }
  }

  async listUsers(): Promise<AuthenticatedUser[]> {
    return (await this.users.list()).map(toAuthenticated);
  }
}

// A real scrypt hash of a random password: verifying against it costs the same as a real check.
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

function toAuthenticated(user: UserRow): AuthenticatedUser {
  return { id: user.id, email: user.email, name: user.name, isAdmin: user.is_admin === 1 };
}
