/**
 * The seeds' own Python clients, unmodified, against the real server: local upload of a folder
 * (with one corrupt file) and sharing. Users are created with the CLI while the server runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { truncatedJpeg, writeImageFolder } from '../fixtures/media.js';
import { makeTempDir } from '../helpers/harness.js';
import { ApiClient, type DatasetBody } from './api-client.js';
import { PYTHON, requirePythonWithRequests, runCli, runProcess, seedClientsDir, startServerProcess, type CliResult, type ServerProcess } from './server-process.js';

const GOOD_IMAGES = 300;

interface CreatedUser {
  user_id: string;
  email: string;
  api_key: string;
  api_secret: string;
}

describe('seed clients against the real server', () => {
  let root: string;
  let dataDir: string;
  let imageFolder: string;
  let server: ServerProcess | undefined;
  let owner: CreatedUser;
  let ownerApi: ApiClient;
  let datasetId: string;

  beforeAll(async () => {
    root = makeTempDir('vizdex-e2e-seeds-');
    dataDir = path.join(root, 'data');
    imageFolder = path.join(root, 'images');
    // Small pictures (jpeg, png, webp in turn) keep generation and indexing quick.
    await writeImageFolder(imageFolder, GOOD_IMAGES, { width: 160, height: 120 });
    fs.writeFileSync(path.join(imageFolder, 'corrupt.jpg'), await truncatedJpeg());
    server = await startServerProcess({ dataDir });
  });

  afterAll(async () => {
    await server?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  async function createUser(email: string): Promise<CreatedUser> {
    // The CLI opens the same data dir while the server process is running on it.
    const result = await runCli(['user', 'create', '--email', email, '--data-dir', dataDir, '--json']);
    expect(result.code, describeRun(result)).toBe(0);
    return JSON.parse(result.stdout.trim()) as CreatedUser;
  }

  async function runSeedScript(script: string, env: Record<string, string>): Promise<CliResult> {
    requirePythonWithRequests();
    const cwd = seedClientsDir();
    return runProcess(PYTHON, [script], { cwd, env: { ...process.env, PYTHONUNBUFFERED: '1', ...env }, timeoutMs: 90_000 });
  }

  it('local_upload.py creates a dataset: every good image indexed, the corrupt one reported', async () => {
    owner = await createUser('owner@example.com');
    ownerApi = new ApiClient(server!.url, owner);

    const result = await runSeedScript('local_upload.py', {
      VL_BASE_URL: server!.url,
      JWT_TOKEN: await ownerApi.token(),
      IMAGE_FOLDER: imageFolder,
    });
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stdout).toContain(`Uploading ${GOOD_IMAGES + 1} file(s) in batches of 50...`);
    const ready = /^Dataset ready: (\S+)$/m.exec(result.stdout);
    expect(ready, describeRun(result)).not.toBeNull();
    datasetId = ready![1]!;
    expect(result.stdout).toContain(`Created dataset: ${datasetId}`);

    const response = await ownerApi.get<DatasetBody>(`/dataset/${datasetId}`);
    expect(response.status, response.text).toBe(200);
    const dataset = response.body;
    expect(dataset).toMatchObject({
      id: datasetId,
      status_new: 'READY',
      status: 'READY',
      progress: 100,
      n_images: GOOD_IMAGES,
      n_videos: 0,
      n_failed_files: 1,
      role: 'owner',
    });
    expect(dataset.failed_files).toHaveLength(1);
    expect(dataset.failed_files![0]!.file_name).toBe('corrupt.jpg');
    expect(dataset.failed_files![0]!.reason.trim()).not.toBe('');
  }, 120_000);

  it('share.py grants a colleague viewer access; a third user still sees nothing', async () => {
    expect(datasetId, 'the local upload test must have created the dataset').toBeDefined();
    const [colleague, outsider] = await Promise.all([createUser('colleague@example.com'), createUser('outsider@example.com')]);

    const result = await runSeedScript('share.py', {
      VL_BASE_URL: server!.url,
      JWT_TOKEN: await ownerApi.token(),
      DATASET_ID: datasetId,
      COLLEAGUE: colleague.email,
    });
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stdout).toContain('Dataset shared successfully.');
    expect(result.stdout).toContain('Dataset has 2 member(s):');
    // The seed prints `  {email}{role}` with nothing between them.
    expect(result.stdout).toContain(`  owner@example.comowner`);
    expect(result.stdout).toContain(`  colleague@example.comviewer`);

    const colleagueApi = new ApiClient(server!.url, colleague);
    const seen = await colleagueApi.get<DatasetBody>(`/dataset/${datasetId}`);
    expect(seen.status, seen.text).toBe(200);
    expect(seen.body).toMatchObject({ id: datasetId, role: 'viewer', status_new: 'READY', n_images: GOOD_IMAGES });
    const colleagueList = await colleagueApi.get<DatasetBody[]>('/datasets');
    expect(colleagueList.status, colleagueList.text).toBe(200);
    expect(colleagueList.body.map((d) => [d.id, d.role])).toEqual([[datasetId, 'viewer']]);

    const outsiderApi = new ApiClient(server!.url, outsider);
    const hidden = await outsiderApi.get<{ detail: string }>(`/dataset/${datasetId}`);
    expect(hidden.status, hidden.text).toBe(404);
    expect(typeof hidden.body.detail).toBe('string');
    const outsiderList = await outsiderApi.get<DatasetBody[]>('/datasets');
    expect(outsiderList.status, outsiderList.text).toBe(200);
    expect(outsiderList.body).toEqual([]);
  }, 60_000);
});

function describeRun(result: CliResult): string {
  return `exit ${result.code} (signal ${result.signal})\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}
