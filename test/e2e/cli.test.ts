/** The `vizdex` command as operators and scripts use it. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/harness.js';
import { ApiClient } from './api-client.js';
import { runCli, startServerProcess, type CliResult, type ServerProcess } from './server-process.js';

describe('vizdex CLI', () => {
  let root: string;
  let dataDir: string;
  let server: ServerProcess | undefined;

  beforeAll(async () => {
    root = makeTempDir('vizdex-e2e-cli-');
    dataDir = path.join(root, 'data');
    server = await startServerProcess({ dataDir });
  });

  afterAll(async () => {
    await server?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('user create --json prints one JSON line whose credentials work against the running server', async () => {
    const result = await runCli(['user', 'create', '--email', 'Alice@Example.com', '--name', 'Alice', '--data-dir', dataDir, '--json']);
    expect(result.code, describeRun(result)).toBe(0);
    const lines = result.stdout.split('\n').filter((line) => line.trim() !== '');
    expect(lines, describeRun(result)).toHaveLength(1);
    const created = JSON.parse(lines[0]!) as Record<string, string>;
    expect(Object.keys(created).sort()).toEqual(['api_key', 'api_secret', 'email', 'user_id']);
    expect(created.email).toBe('alice@example.com');
    for (const key of ['user_id', 'api_key', 'api_secret']) expect(created[key], key).toMatch(/\S{8,}/);

    const api = new ApiClient(server!.url, { api_key: created.api_key!, api_secret: created.api_secret! });
    const me = await api.get<{ user_id: string; email: string; name: string; is_admin: boolean }>('/auth/me');
    expect(me.status, me.text).toBe(200);
    expect(me.body).toEqual({ user_id: created.user_id, email: 'alice@example.com', name: 'Alice', is_admin: true });
    const datasets = await api.get('/datasets');
    expect(datasets.status, datasets.text).toBe(200);
    expect(datasets.body).toEqual([]);

    // A token signed with another secret is refused: the server really checks the secret the CLI printed.
    const forged = new ApiClient(server!.url, { api_key: created.api_key!, api_secret: `${created.api_secret!}x` });
    expect((await forged.get('/auth/me')).status).toBe(401);
  });

  it('user create for an email that exists exits non-zero and says why', async () => {
    const first = await runCli(['user', 'create', '--email', 'bob@example.com', '--data-dir', dataDir, '--json']);
    expect(first.code, describeRun(first)).toBe(0);

    const again = await runCli(['user', 'create', '--email', 'BOB@example.com', '--data-dir', dataDir, '--json']);
    expect(again.code, describeRun(again)).not.toBe(0);
    expect(again.code).not.toBeNull();
    expect(again.stdout.trim()).toBe('');
    expect(again.stderr).toContain('A user with email bob@example.com already exists');
  });

  it('serve with an invalid VIZDEX_PORT exits non-zero listing every bad key', async () => {
    const emptyDataDir = path.join(root, 'never-created');
    const result = await runCli(['serve', '--data-dir', emptyDataDir], {
      env: { VIZDEX_PORT: 'abc', VIZDEX_JOB_CONCURRENCY: '0' },
      timeoutMs: 30_000,
    });
    expect(result.signal, 'serve must exit by itself, not be killed').toBeNull();
    expect(result.code, describeRun(result)).not.toBe(0);
    expect(result.stderr).toContain('Invalid configuration');
    expect(result.stderr).toMatch(/VIZDEX_PORT: .*"abc"/);
    expect(result.stderr).toMatch(/VIZDEX_JOB_CONCURRENCY: .*"0"/);
    expect(result.stdout).not.toContain('listening');
    expect(fs.existsSync(emptyDataDir)).toBe(false);
  });

  it('--help lists the serve and user commands', async () => {
    const result = await runCli(['--help']);
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stdout).toMatch(/^\s+serve\b/m);
    expect(result.stdout).toMatch(/^\s+user\b/m);

    const userHelp = await runCli(['user', '--help']);
    expect(userHelp.code, describeRun(userHelp)).toBe(0);
    expect(userHelp.stdout).toMatch(/^\s+create\b/m);
  });
});

function describeRun(result: CliResult): string {
  return `exit ${result.code} (signal ${result.signal})\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}
