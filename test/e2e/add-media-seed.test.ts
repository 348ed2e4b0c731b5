/**
 * The add-media and create-from-S3 seed pages' own client code against the real server process and
 * a real S3 protocol server (s3rver on loopback): their Python examples, taken from the pages with
 * only the settings at the top (and the 30 s poll interval) changed, and their curl commands.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeZip } from '../fixtures/archives.js';
import { makeImage } from '../fixtures/media.js';
import { makeTempDir } from '../helpers/harness.js';
import { startTestS3, type TestS3 } from '../helpers/s3.js';
import { ApiClient, type DatasetBody } from './api-client.js';
import { PYTHON, requirePythonWithRequests, runCli, runProcess, seedClientsDir, startServerProcess, type CliResult, type ServerProcess } from './server-process.js';

const BUCKET = 'seed-bucket';
const describeRun = (result: CliResult) => `exit ${result.code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;

/** The page's Python example: the text between "Python Example" and "Response Codes". */
function seedPython(page: string, settings: [string, string][]): string {
  const text = fs.readFileSync(path.join(seedClientsDir(), '..', 'seeds', page), 'utf8');
  const start = text.indexOf('Python Example');
  const end = text.indexOf('Response Codes', start);
  expect(start, `no Python example in ${page}`).toBeGreaterThan(0);
  let code = text.slice(start + 'Python Example'.length, end).trim();
  for (const [from, to] of [...settings, ['time.sleep(30)', 'time.sleep(0.3)'] as [string, string]]) {
    expect(code, `${page} no longer contains ${from}`).toContain(from);
    code = code.replaceAll(from, to);
  }
  return code;
}

describe('add-media and create-from-S3 seeds against the real server', () => {
  let root: string;
  let s3: TestS3;
  let server: ServerProcess | undefined;
  let api: ApiClient;
  let datasetId: string;

  beforeAll(async () => {
    requirePythonWithRequests();
    root = makeTempDir('vizdex-e2e-add-media-');
    s3 = await startTestS3();
    await s3.createBucket(BUCKET);
    for (let i = 1; i <= 6; i++) await s3.put(BUCKET, `images/img_${i}.jpg`, await makeImage({ width: 200, height: 150, seed: 3000 + i }));
    for (let i = 1; i <= 3; i++) await s3.put(BUCKET, `new_media/new_${i}.jpg`, await makeImage({ width: 200, height: 150, seed: 3100 + i }));
    const dataDir = path.join(root, 'data');
    server = await startServerProcess({ dataDir, env: s3.env, args: ['--no-pipeline-service'] });
    const created = await runCli(['user', 'create', '--email', 'owner@example.com', '--data-dir', dataDir, '--json']);
    expect(created.code, describeRun(created)).toBe(0);
    api = new ApiClient(server.url, JSON.parse(created.stdout.trim()) as { api_key: string; api_secret: string });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await s3?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const python = async (code: string) => {
    const file = path.join(root, `script-${Date.now()}.py`);
    fs.writeFileSync(file, code);
    return runProcess(PYTHON, [file], { cwd: root, env: { ...process.env, PYTHONUNBUFFERED: '1' }, timeoutMs: 90_000 });
  };
  const curl = (args: string[]) => runProcess('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', ...args], { cwd: root, env: process.env, timeoutMs: 30_000 });
  const waitFor = async (statuses: string[]) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const dataset = await api.get<DatasetBody>(`/dataset/${datasetId}`);
      if (statuses.includes(dataset.body.status_new)) return dataset.body;
      if (Date.now() > deadline) throw new Error(`dataset still ${dataset.body.status_new}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  it("create-dataset-from-s3's Python example creates the dataset and polls it to READY", async () => {
    const result = await python(
      seedPython('create-dataset-from-s3.txt', [
        ['"https://app.visual-layer.com"', JSON.stringify(server!.url)],
        ['"<your-jwt-token>"', JSON.stringify(await api.token())],
        ['"s3://my-bucket/images/"', JSON.stringify(`s3://${BUCKET}/images/`)],
      ]),
    );
    expect(result.code, describeRun(result)).toBe(0);
    const created = /^Created dataset: (\S+)$/m.exec(result.stdout);
    expect(created, describeRun(result)).not.toBeNull();
    datasetId = created![1]!;
    expect(result.stdout).toMatch(/Status: INDEXING \(\d+%\)|Status: READY \(100%\)/);
    expect(result.stdout).toContain(`Dataset ready: ${datasetId}`);
    expect(await waitFor(['READY'])).toMatchObject({ source_type: 'BUCKET', n_images: 6 });
  });

  it("add-media's Python example adds an S3 folder and ends at PARTIAL INDEX; the curl reindex brings it to READY", async () => {
    const result = await python(
      seedPython('add-media.txt', [
        ['"https://app.visual-layer.com"', JSON.stringify(server!.url)],
        ['"<your-jwt-token>"', JSON.stringify(await api.token())],
        ['"<your-dataset-id>"', JSON.stringify(datasetId)],
        ['"s3://your-bucket/path/to/media/"', JSON.stringify(`s3://${BUCKET}/new_media/`)],
      ]),
    );
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stdout).toContain('Dataset: my_dataset, Status: READY');
    expect(result.stdout).toContain('Status: READY');
    expect(result.stdout).toContain('Add media accepted — processing in background.');
    expect(result.stdout).toContain('Final status: PARTIAL INDEX');
    expect(await waitFor(['PARTIAL INDEX'])).toMatchObject({ status: 'PENDING_INDEX', n_images: 9 });

    const token = await api.token();
    expect((await curl(['-X', 'POST', '-H', `Authorization: Bearer ${token}`, `${server!.url}/api/v1/dataset/${datasetId}/reindex`])).stdout).toBe('202');
    expect(await waitFor(['READY'])).toMatchObject({ n_images: 9 });
  });

  it("the page's curl uploads: files[] and an archive, each 202 with an empty body", async () => {
    const token = await api.token();
    fs.writeFileSync(path.join(root, 'image1.jpg'), await makeImage({ seed: 3201 }));
    fs.writeFileSync(path.join(root, 'image2.jpg'), await makeImage({ seed: 3202 }));
    const files = await curl([
      '-X', 'POST', '-H', `Authorization: Bearer ${token}`,
      '-F', `files[]=@${path.join(root, 'image1.jpg')}`, '-F', `files[]=@${path.join(root, 'image2.jpg')}`,
      `${server!.url}/api/v1/dataset/${datasetId}/add_media`,
    ]);
    expect(files.stdout, describeRun(files)).toBe('202');
    expect(await waitFor(['PARTIAL INDEX'])).toMatchObject({ n_images: 11 });

    fs.writeFileSync(path.join(root, 'media.zip'), makeZip([{ name: 'zipped/one.jpg', data: await makeImage({ seed: 3301 }) }, { name: 'zipped/two.jpg', data: await makeImage({ seed: 3302 }) }]));
    const archive = await curl(['-X', 'POST', '-H', `Authorization: Bearer ${token}`, '-F', `archive=@${path.join(root, 'media.zip')}`, '-F', 'auto_reindex=true', `${server!.url}/api/v1/dataset/${datasetId}/add_media`]);
    expect(archive.stdout, describeRun(archive)).toBe('202');
    expect(await waitFor(['READY'])).toMatchObject({ n_images: 13 });
  });
});
