import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import { createContainer, type Container } from '../../src/app/container.js';
import { loadConfig } from '../../src/config.js';
import { buildApp, type App } from '../../src/http/app.js';
import { provisionScaleOut } from './scale-out.js';

export interface TestUser {
  user_id: string;
  email: string;
  api_key: string;
  api_secret: string;
  /** `Authorization` header with a freshly minted JWT. */
  headers(): Promise<Record<string, string>>;
}

export interface TestApp {
  app: App;
  container: Container;
  dataDir: string;
  createUser(email: string, options?: { password?: string }): Promise<TestUser>;
  close(): Promise<void>;
}

export function makeTempDir(prefix = 'vizdex-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** The engines a test app runs on: `VIZDEX_TEST_MODE=scaleout` runs the same tests in scale-out mode. */
export function testMode(): 'embedded' | 'scaleout' {
  return process.env.VIZDEX_TEST_MODE === 'scaleout' ? 'scaleout' : 'embedded';
}

/** The env that points an app at its scale-out engines, and how to remove them. */
interface ScaleOut {
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

/**
 * Scale-out engines belong to a data dir, as the embedded SQLite file does: created for the first app
 * on it, shared by a later app on the same dir (tests that restart on one), removed with the dir.
 */
const scaleOutByDataDir = new Map<string, Promise<ScaleOut>>();

async function scaleOutEnv(dataDir: string): Promise<ScaleOut> {
  if (testMode() !== 'scaleout') return { env: {}, cleanup: async () => undefined };
  let scaleOut = scaleOutByDataDir.get(dataDir);
  if (!scaleOut) {
    scaleOut = createScaleOut();
    scaleOutByDataDir.set(dataDir, scaleOut);
    scaleOut.catch(() => scaleOutByDataDir.delete(dataDir));
  }
  return scaleOut;
}

/** PostgreSQL, BullMQ on Redis and S3 storage (s3rver), fresh for each data dir. */
async function createScaleOut(): Promise<ScaleOut> {
  const engines = await provisionScaleOut();
  return { env: engines.env, cleanup: () => engines.close() };
}

async function removeScaleOut(dataDir: string): Promise<void> {
  const scaleOut = scaleOutByDataDir.get(dataDir);
  if (!scaleOut) return;
  scaleOutByDataDir.delete(dataDir);
  await (await scaleOut).cleanup();
}

/**
 * A real container (SQLite in a temp dir, local blobs, the job runner) behind `app.inject()`; in
 * scale-out test mode, on a fresh PostgreSQL database, BullMQ queues on Redis and an S3 bucket.
 */
export async function startTestApp(options: { env?: Record<string, string>; dataDir?: string; jobs?: boolean } = {}): Promise<TestApp> {
  const dataDir = options.dataDir ?? makeTempDir();
  const scaleOut = await scaleOutEnv(dataDir);
  const config = loadConfig({ dataDir }, { VIZDEX_LOG_LEVEL: 'silent', VIZDEX_JOB_CONCURRENCY: '2', ...options.env, ...scaleOut.env });
  const container = await createContainer(config);
  const app = await buildApp(container);
  if (options.jobs !== false) container.startJobs();
  return {
    app,
    container,
    dataDir,
    async createUser(email, userOptions = {}) {
      const user = await container.services.auth.createUser({ email, password: userOptions.password });
      const credentials = await container.services.auth.createApiCredentials(user.id);
      return {
        user_id: user.id,
        email: user.email,
        ...credentials,
        headers: async () => ({ authorization: `Bearer ${await mintJwt(credentials.api_key, credentials.api_secret)}` }),
      };
    },
    async close() {
      await app.close();
      await container.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
      await removeScaleOut(dataDir);
    },
  };
}

export interface JwtOptions {
  alg?: string;
  kid?: string;
  sub?: string;
  iss?: string;
  iat?: number;
  exp?: number;
}

/** A JWT as the Visual Layer SDK mints it: HS256, kid = sub = api_key, iss "sdk", 10 minutes. */
export async function mintJwt(apiKey: string, apiSecret: string, options: JwtOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: options.sub ?? apiKey, iss: options.iss ?? 'sdk' })
    .setProtectedHeader({ alg: options.alg ?? 'HS256', typ: 'JWT', kid: options.kid ?? apiKey })
    .setIssuedAt(options.iat ?? now)
    .setExpirationTime(options.exp ?? now + 600)
    .sign(new TextEncoder().encode(apiSecret));
}

/** Builds a multipart body for `app.inject` (`payload` + `headers`). */
export function multipart(files: { field?: string; name: string; data: Buffer }[], fields: Record<string, string> = {}) {
  const boundary = `----vizdex${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  for (const file of files) {
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${file.field ?? 'files'}"; filename="${file.name}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ),
      file.data,
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

/** Polls the dataset until `status_new` is one of `statuses` (or times out). */
export async function waitForStatus(app: App, headers: Record<string, string>, datasetId: string, statuses: string[], timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}`, headers });
    const body = response.json() as { status_new: string };
    if (statuses.includes(body.status_new)) return response.json() as Record<string, unknown>;
    if (Date.now() > deadline) throw new Error(`dataset ${datasetId} still ${body.status_new} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Keys of the blobs stored under `prefix` (local folder or S3, whichever the app uses). */
export async function storedKeys(t: TestApp, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of t.container.blobs.listKeys(prefix)) keys.push(key);
  return keys.sort();
}
