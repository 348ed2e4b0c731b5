/**
 * The operator's tools as real processes on real images (SPEC §4, §4b): `vizdex create / add-media /
 * reindex` with and without a server on the same data dir, the on-prem pipeline service that `serve`
 * starts, and `run_profiler.sh` with Visual Layer's flags.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { truncatedJpeg, writeImageFolder } from '../fixtures/media.js';
import { makeTempDir } from '../helpers/harness.js';
import { ApiClient, pollDataset, type Credentials } from './api-client.js';
import { childEnv, REPO_ROOT, runCli, runProcess, startServerProcess, type CliResult, type ServerProcess } from './server-process.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TSX = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
const CLI_SOURCE = path.join(REPO_ROOT, 'src', 'cli', 'main.ts');
const RUN_PROFILER = path.join(REPO_ROOT, 'run_profiler.sh');

describe('operator tools', () => {
  let root: string;
  let outside: string;
  let dataDir: string;
  let folders: { a: string; b: string; c: string };
  let admin: Credentials & { user_id: string };
  let cliDatasetId: string;

  beforeAll(async () => {
    root = makeTempDir('vizdex-e2e-operator-');
    outside = makeTempDir('vizdex-e2e-operator-outside-');
    dataDir = path.join(root, 'data');
    folders = { a: path.join(root, 'a'), b: path.join(root, 'b'), c: path.join(root, 'c') };
    await writeImageFolder(folders.a, 20, { width: 64, height: 64, firstSeed: 1 });
    fs.writeFileSync(path.join(folders.a, 'broken.jpg'), await truncatedJpeg());
    await writeImageFolder(folders.b, 8, { width: 64, height: 64, firstSeed: 100 });
    await writeImageFolder(folders.c, 5, { width: 64, height: 64, firstSeed: 200 });
    await writeImageFolder(outside, 3, { width: 64, height: 64, firstSeed: 300 });

    const created = await runCli(['user', 'create', '--email', 'admin@example.com', '--data-dir', dataDir, '--json']);
    expect(created.code, describeRun(created)).toBe(0);
    admin = JSON.parse(created.stdout) as Credentials & { user_id: string };
  });

  afterAll(() => {
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(outside, { recursive: true, force: true });
  });

  describe('without a server', () => {
    it('create → add-media → reindex → add-media -a, each waiting for its end with plain progress lines', async () => {
      const create = await runCli(['create', '-n', 'photos', '-p', folders.a, '--data-dir', dataDir]);
      expect(create.code, describeRun(create)).toBe(0);
      const lines = stdoutLines(create);
      cliDatasetId = lines[0]!;
      expect(cliDatasetId).toMatch(UUID);
      // Not a terminal: plain lines, no bar and no carriage returns.
      expect(create.stdout).not.toContain('\r');
      for (const line of lines.slice(1, -1)) expect(line).toMatch(/^(INDEXING|READY) \d{1,3}%( .*)?$/);
      expect(lines).toContain('READY 100% Processed 20 files; 1 could not be processed');
      expect(lines.at(-1)).toBe(`Dataset ${cliDatasetId} is READY: 20 images, 1 file could not be processed`);

      const add = await runCli(['add-media', '-d', cliDatasetId, '-p', folders.b, '--data-dir', dataDir]);
      expect(add.code, describeRun(add)).toBe(0);
      expect(stdoutLines(add)[0]).toBe(cliDatasetId);
      expect(stdoutLines(add)).toContain('PARTIAL INDEX 100% Added 8 files');
      expect(stdoutLines(add).at(-1)).toBe(`Dataset ${cliDatasetId} is PARTIAL INDEX: 28 images, 1 file could not be processed`);

      const reindex = await runCli(['reindex', '-d', cliDatasetId, '--data-dir', dataDir]);
      expect(reindex.code, describeRun(reindex)).toBe(0);
      expect(stdoutLines(reindex)[0]).toBe(cliDatasetId);
      expect(stdoutLines(reindex).at(-1)).toBe(`Dataset ${cliDatasetId} is READY: 28 images, 1 file could not be processed`);

      // A relative path is the operator's: resolved against the current directory.
      const auto = await runProcess(TSX, [CLI_SOURCE, 'add-media', '-d', cliDatasetId, '-p', 'c', '-a', '--data-dir', 'data'], {
        cwd: root,
        env: childEnv(),
      });
      expect(auto.code, describeRun(auto)).toBe(0);
      expect(stdoutLines(auto).at(-1)).toBe(`Dataset ${cliDatasetId} is READY: 33 images, 1 file could not be processed`);
    });

    it('annotations imports a label file as the owner and prints the report; an unreadable file exits 1 with why', async () => {
      const [first, second] = fs.readdirSync(folders.a).filter((name) => !name.startsWith('broken')).sort();
      const csv = path.join(root, 'labels.csv');
      // Folders a, b and c all hold img_0001…: the folder tells them apart.
      fs.writeFileSync(csv, `file_name,label\na/${first},cat\na/${second},dog\nnot-there.jpg,cat\n`);
      const run = await runCli(['annotations', '-d', cliDatasetId, '-f', csv, '--source', 'Model', '--data-dir', dataDir]);
      expect(run.code, describeRun(run)).toBe(0);
      expect(stdoutLines(run)[0]).toBe('csv: 3 rows; 2 image labels, 0 objects, 0 captions; 1 unmatched, 0 invalid');
      expect(stdoutLines(run)[1]).toMatch(/line 4 \(not-there\.jpg\): no media in the dataset is named "not-there\.jpg"/);

      const broken = path.join(root, 'broken.json');
      fs.writeFileSync(broken, '{"images": [');
      const refused = await runCli(['annotations', '-d', cliDatasetId, '-f', broken, '--data-dir', dataDir]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/annotation file cannot be read/);
    });

    it('exits 1 with the reason when the operation cannot start', async () => {
      const missing = await runCli(['add-media', '-d', cliDatasetId, '-p', '/nonexistent/folder', '--data-dir', dataDir]);
      expect(missing.code, describeRun(missing)).toBe(1);
      expect(missing.stdout.trim()).toBe('');
      expect(missing.stderr.trim()).toBe('error: Invalid S3 URI or no media files found at /nonexistent/folder (No such folder: /nonexistent/folder)');

      const busyless = await runCli(['reindex', '-d', cliDatasetId, '--data-dir', dataDir]);
      expect(busyless.code, describeRun(busyless)).toBe(1);
      expect(busyless.stderr.trim()).toBe(`error: Dataset ${cliDatasetId} is READY; reindex is possible only when it is PARTIAL INDEX`);

      const unknown = await runCli(['add-media', '-d', '7f9c1a52-0000-4000-8000-000000000000', '-p', folders.b, '--data-dir', dataDir]);
      expect(unknown.code, describeRun(unknown)).toBe(1);
      expect(unknown.stderr.trim()).toBe('error: Dataset not found');

      const nobody = await runCli(['create', '-n', 'x', '-p', folders.c, '--owner', 'nobody@example.com', '--data-dir', dataDir]);
      expect(nobody.code, describeRun(nobody)).toBe(1);
      expect(nobody.stdout.trim()).toBe('');
      expect(nobody.stderr).toMatch(/^error: .*nobody@example\.com/);

      const noUsers = await runCli(['create', '-n', 'x', '-p', folders.c, '--data-dir', path.join(root, 'empty-data')]);
      expect(noUsers.code, describeRun(noUsers)).toBe(1);
      expect(noUsers.stderr.trim()).toBe('error: no user to own the dataset: create one with "vizdex user create" or pass --owner');
    });

    it('exits 1 with the reason when the work itself ends in ERROR', async () => {
      const failing = await runCli(['create', '-n', 'no-model', '-p', folders.c, '--model', path.join(root, 'missing-model.onnx'), '--data-dir', dataDir], {
        env: { VIZDEX_JOB_MAX_ATTEMPTS: '1' },
      });
      expect(failing.code, describeRun(failing)).toBe(1);
      const id = stdoutLines(failing)[0]!;
      expect(id).toMatch(UUID);
      expect(stdoutLines(failing).at(-1)).toMatch(/^ERROR \d+%/);
      expect(failing.stderr.trim()).toMatch(new RegExp(`^error: .*missing-model\\.onnx.* \\(dataset ${id} is ERROR\\)$`));
    });
  });

  describe('with vizdex serve on the same data dir', () => {
    let server: ServerProcess | undefined;
    let pipeline: string;
    let api: ApiClient;

    beforeAll(async () => {
      server = await startServerProcess({ dataDir, args: ['--roots', root] });
      expect(server.pipelineUrl, server.output().stdout).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      pipeline = server.pipelineUrl!;
      api = new ApiClient(server.url, admin);
    });

    afterAll(async () => {
      await server?.stop();
    });

    it('the API shows what the CLI did', async () => {
      const dataset = await api.get<{ status_new: string; n_images: number; n_failed_files: number }>(`/dataset/${cliDatasetId}`);
      expect(dataset.status, dataset.text).toBe(200);
      expect(dataset.body).toMatchObject({ status_new: 'READY', n_images: 33, n_failed_files: 1 });
    });

    it('the pipeline service creates a dataset and adds media, without auth', async () => {
      const health = await fetch(`${pipeline}/healthz`);
      expect(health.status).toBe(200);

      const processed = await fetch(`${pipeline}/api/v1/process?path=${encodeURIComponent(folders.a)}&name=on-prem`);
      const processText = await processed.text();
      expect(processed.status, processText).toBe(200);
      const created = JSON.parse(processText) as Record<string, string>;
      expect(Object.keys(created)).toEqual(['status', 'message', 'dataset_id', 'name']);
      expect(created).toMatchObject({ status: 'success', message: 'Dataset processing started', name: 'on-prem' });
      expect(created.dataset_id).toMatch(UUID);
      expect(processText).toBe(`{"status":"success","message":"Dataset processing started","dataset_id":"${created.dataset_id}","name":"on-prem"}`);
      // Owned by the admin, so the admin's token sees it.
      const ready = await pollDataset(api, created.dataset_id!, (d) => d.status_new === 'READY' || d.status_new === 'ERROR', { timeoutMs: 30_000 });
      expect(ready).toMatchObject({ status_new: 'READY', n_images: 20, n_failed_files: 1 });

      const add = await fetch(`${pipeline}/api/v1/process/add_media?dataset_id=${created.dataset_id}&path=${encodeURIComponent(folders.b)}`, { method: 'POST' });
      const addText = await add.text();
      expect(add.status, addText).toBe(200);
      expect(addText).toBe(`{"status":"success","message":"Media addition started","dataset_id":"${created.dataset_id}"}`);
      const partial = await pollDataset(api, created.dataset_id!, (d) => d.status_new === 'PARTIAL INDEX', { timeoutMs: 30_000 });
      expect(partial.n_images).toBe(28);

      // POST bodies work too (JSON here); the name defaults to the folder's.
      const fromBody = await fetch(`${pipeline}/api/v1/process`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ path: `${folders.c}/` }),
      });
      const fromBodyJson = (await fromBody.json()) as Record<string, string>;
      expect(fromBody.status, JSON.stringify(fromBodyJson)).toBe(200);
      expect(fromBodyJson.name).toBe('c');
      await pollDataset(api, fromBodyJson.dataset_id!, (d) => d.status_new === 'READY', { timeoutMs: 30_000 });
    });

    it('the pipeline service refuses relative paths, paths outside --roots, missing parameters and unknown datasets', async () => {
      const call = async (url: string, init?: RequestInit) => {
        const response = await fetch(`${pipeline}${url}`, init);
        return { status: response.status, body: (await response.json()) as { detail: unknown } };
      };
      expect(await call('/api/v1/process?path=relative/folder&name=x')).toEqual({ status: 400, body: { detail: 'path must be an absolute path' } });
      expect(await call(`/api/v1/process/add_media?dataset_id=${cliDatasetId}&path=c`, { method: 'POST' })).toEqual({
        status: 400,
        body: { detail: 'path must be an absolute path' },
      });

      const outsideRoots = await call(`/api/v1/process?path=${encodeURIComponent(outside)}&name=x`);
      expect(outsideRoots.status).toBe(400);
      expect(outsideRoots.body.detail).toBe(`Invalid S3 URI or no media files found at ${outside} (Path ${outside} is outside the configured pipeline roots)`);

      expect(await call('/api/v1/process?name=x')).toEqual({
        status: 422,
        body: { detail: [{ loc: ['query', 'path'], msg: 'Field required', type: 'missing' }] },
      });
      expect(await call(`/api/v1/process/add_media?path=${encodeURIComponent(folders.b)}`, { method: 'POST' })).toEqual({
        status: 422,
        body: { detail: [{ loc: ['query', 'dataset_id'], msg: 'Field required', type: 'missing' }] },
      });
      expect(await call(`/api/v1/process/add_media?dataset_id=7f9c1a52-0000-4000-8000-000000000000&path=${encodeURIComponent(folders.b)}`)).toEqual({
        status: 404,
        body: { detail: 'Dataset not found' },
      });
    });

    it('run_profiler.sh maps Visual Layer flags onto the CLI (a server running alongside)', async () => {
      const env = childEnv({ VIZDEX_DATA_DIR: dataDir, VIZDEX_CLI: `${TSX} ${CLI_SOURCE}` });
      const profiler = (args: string[]) => runProcess(RUN_PROFILER, args, { cwd: root, env });

      const create = await profiler(['-p', 'a', '-n', 'profiled']);
      expect(create.code, describeRun(create)).toBe(0);
      const id = stdoutLines(create)[0]!;
      expect(id).toMatch(UUID);
      expect(stdoutLines(create).at(-1)).toBe(`Dataset ${id} is READY: 20 images, 1 file could not be processed`);

      const add = await profiler(['-o', 'add_media', '-d', id, '-p', folders.b]);
      expect(add.code, describeRun(add)).toBe(0);
      expect(stdoutLines(add).at(-1)).toMatch(/ is PARTIAL INDEX: 28 images/);

      const reindex = await profiler(['-o', 'reindex', '-d', id]);
      expect(reindex.code, describeRun(reindex)).toBe(0);
      expect(stdoutLines(reindex).at(-1)).toMatch(/ is READY: 28 images/);

      const auto = await profiler(['-o', 'add_media', '-d', id, '-p', folders.c, '-a']);
      expect(auto.code, describeRun(auto)).toBe(0);
      expect(stdoutLines(auto).at(-1)).toBe(`Dataset ${id} is READY: 33 images, 1 file could not be processed`);
      expect((await api.get<{ status_new: string; n_images: number }>(`/dataset/${id}`)).body).toMatchObject({ status_new: 'READY', n_images: 33 });

      const again = await profiler(['-o', 'reindex', '-d', id]);
      expect(again.code, describeRun(again)).toBe(1);
      expect(again.stderr.trim()).toBe(`error: Dataset ${id} is READY; reindex is possible only when it is PARTIAL INDEX`);

      const help = await profiler(['-h']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('-o add_media -d <dataset_id> -p <path> [-a]');
      const bad = await profiler(['-o', 'reindex', '-x']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('unknown argument: -x');
      expect(bad.stderr).toContain('Usage:');
    });
  });
});

function stdoutLines(result: CliResult): string[] {
  return result.stdout.split('\n').filter((line) => line.trim() !== '');
}

function describeRun(result: CliResult): string {
  return `exit ${result.code} (signal ${result.signal})\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}
