/**
 * The real `vizdex` command as a child process, for end-to-end tests: `serve` on an ephemeral port,
 * and one-shot CLI commands. Every child started here is tracked and killed when the test process
 * exits, so a failing test never leaves a server behind.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const CLI_ENTRY = 'src/cli/main.ts';
const LISTENING = /vizdex listening on (http:\/\/\S+)/;
/** `serve` prints this line (before the API's) unless started with `--no-pipeline-service`. */
const PIPELINE_LISTENING = /vizdex pipeline service listening on (http:\/\/\S+)/;

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  /** Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash, no `/api/v1`). */
  url: string;
  /** The on-prem pipeline service's base URL (on an ephemeral port); null with `--no-pipeline-service`. */
  pipelineUrl: string | null;
  child: ChildProcess;
  dataDir: string;
  /** Everything the child printed so far. */
  output(): { stdout: string; stderr: string };
  /** Resolves when the child has exited. */
  exited: Promise<ExitStatus>;
  /** SIGTERM (graceful shutdown), then SIGKILL after `timeoutMs`; resolves with how it exited. */
  stop(timeoutMs?: number): Promise<ExitStatus>;
  /** Sends `signal` (default SIGKILL) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<ExitStatus>;
}

export interface StartServerOptions {
  dataDir: string;
  /** Extra environment (`VIZDEX_*`); `VIZDEX_LOG_LEVEL` defaults to warn. */
  env?: Record<string, string>;
  /**
   * Extra `serve` arguments, e.g. `['--no-worker']`. The pipeline service gets `--pipeline-port 0`
   * (servers of parallel tests must not compete for 2080); a later `--pipeline-port` here wins.
   */
  args?: string[];
  /** How long to wait for the "listening" line. */
  startTimeoutMs?: number;
  /**
   * A program (with its arguments) to run the server under, e.g. `pid1Launcher()`. Signals then go to
   * that program, so use kill('SIGKILL') (with `--kill-child` it takes the server down too), not stop().
   */
  launcher?: string[];
}

export interface CliResult {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

const live = new Set<ChildProcess>();

// Last resort for children a failing test did not stop: the test process never exits leaving them running.
process.once('exit', () => {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

/** The parent's environment without any `VIZDEX_*` setting, so children see only what a test gives them. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('VIZDEX_')) env[key] = value;
  }
  return { ...env, VIZDEX_LOG_LEVEL: 'warn', ...extra };
}

function track(child: ChildProcess): Promise<ExitStatus> {
  live.add(child);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
}

/** Starts `vizdex serve --port 0` and resolves once it prints the address it listens on. */
export async function startServerProcess(options: StartServerOptions): Promise<ServerProcess> {
  const serve = ['serve', '--port', '0', '--host', '127.0.0.1', '--pipeline-port', '0', '--data-dir', options.dataDir, ...(options.args ?? [])];
  return startVizdexProcess(serve, LISTENING, options);
}

/** Starts `vizdex worker` and resolves once it says it runs (`url` is '' for a worker). */
export async function startWorkerProcess(options: StartServerOptions): Promise<ServerProcess> {
  return startVizdexProcess(['worker', '--data-dir', options.dataDir, ...(options.args ?? [])], WORKER_RUNNING, options);
}

const WORKER_RUNNING = /vizdex worker running()/;

async function startVizdexProcess(argv: string[], ready: RegExp, options: StartServerOptions): Promise<ServerProcess> {
  const command = [...(options.launcher ?? []), process.execPath, '--import', 'tsx', CLI_ENTRY, ...argv];
  const child = spawn(command[0]!, command.slice(1), { cwd: REPO_ROOT, env: childEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = track(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));

  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<ExitStatus> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  const stop = async (timeoutMs = 15_000): Promise<ExitStatus> => {
    if (child.exitCode !== null || child.signalCode !== null) return exited;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };

  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`vizdex ${argv[0]} printed no "${ready.source}" line within ${timeoutMs} ms`)), timeoutMs);
    const onData = () => {
      const match = ready.exec(stdout);
      if (match?.[1] !== undefined) {
        cleanup();
        resolve(match[1]);
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(new Error(`vizdex ${argv[0]} exited before it was ready (code ${code}, signal ${signal})`));
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
    };
    function fail(error: Error) {
      cleanup();
      void kill('SIGKILL');
      reject(new Error(`${error.message}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`));
    }
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });

  // The pipeline service listens (and says so) before the API does.
  const pipelineUrl = PIPELINE_LISTENING.exec(stdout)?.[1] ?? null;
  return { url, pipelineUrl, child, dataDir: options.dataDir, output: () => ({ stdout, stderr }), exited, stop, kill };
}

/** Runs `vizdex <args>` to completion (killed after `timeoutMs`). */
export async function runCli(args: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return runProcess(process.execPath, ['--import', 'tsx', CLI_ENTRY, ...args], { cwd: REPO_ROOT, env: childEnv(options.env), timeoutMs: options.timeoutMs });
}

/** Runs any program to completion, collecting its output; killed after `timeoutMs` (default 60 s). */
export async function runProcess(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number | undefined },
): Promise<CliResult> {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  void track(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // 'close' comes after the exit and after both pipes are drained.
  const closed = new Promise<ExitStatus>((resolve, reject) => {
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal }));
    child.once('error', reject);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  try {
    const { code, signal } = await closed;
    return { stdout, stderr, code, signal };
  } finally {
    clearTimeout(timer);
  }
}

/** Where the seeds' runnable client scripts live (`VIZDEX_SEED_CLIENTS_DIR` overrides). */
export function seedClientsDir(): string {
  const candidates = [
    process.env.VIZDEX_SEED_CLIENTS_DIR,
    path.join(REPO_ROOT, 'shared', 'seed-clients'),
    path.join(REPO_ROOT, '..', 'shared', 'seed-clients'),
  ].filter((dir): dir is string => typeof dir === 'string' && dir !== '');
  const found = candidates.find((dir) => fs.existsSync(path.join(dir, 'local_upload.py')));
  if (!found) {
    throw new Error(`The seed client scripts (local_upload.py, share.py) were not found; looked in: ${candidates.join(', ')}. Set VIZDEX_SEED_CLIENTS_DIR.`);
  }
  return found;
}

/** The Python that runs the seed clients: `VIZDEX_TEST_PYTHON` (set by .ci/run when needed), else python3. */
export const PYTHON = process.env.VIZDEX_TEST_PYTHON || 'python3';

/** Fails (never skips) when Python 3 with `requests` is missing: CI installs both. */
export function requirePythonWithRequests(): void {
  const probe = spawnSync(PYTHON, ['-c', 'import requests'], { encoding: 'utf8' });
  if (probe.error) {
    throw new Error(`python3 is required to run the seed client scripts but could not be started (${probe.error.message}); install Python 3 and 'pip install requests'`);
  }
  if (probe.status !== 0) {
    throw new Error(`python3 cannot import the 'requests' module, which the seed client scripts need; run 'pip install requests'.\n${probe.stderr}`);
  }
}

/**
 * A launcher that runs the server as pid 1 in a new pid namespace, as a container does, or null where
 * this machine does not allow one (no `unshare`, no namespaces for this user).
 */
export function pid1Launcher(): string[] | null {
  if (process.platform !== 'linux') return null;
  const candidates = [
    ['unshare', '--pid', '--fork', '--kill-child'],
    ['unshare', '--user', '--map-root-user', '--pid', '--fork', '--kill-child'],
  ];
  for (const launcher of candidates) {
    const probe = spawnSync(launcher[0]!, [...launcher.slice(1), process.execPath, '-e', 'process.exit(process.pid === 1 ? 0 : 1)'], { timeout: 10_000 });
    if (probe.status === 0) return launcher;
  }
  return null;
}
