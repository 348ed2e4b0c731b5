/**
 * The export seed's "Full Automation Script" (bash + curl + unzip), unmodified, against the real
 * server: initiate, poll, download with `curl -L` and no token, extract. Then `vizdex export` on the
 * same data dir while the server runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../fixtures/media.js';
import { makeTempDir } from '../helpers/harness.js';
import { readZip } from '../helpers/zip.js';
import { ApiClient, type DatasetBody } from './api-client.js';
import { runCli, runProcess, seedClientsDir, startServerProcess, type CliResult, type ServerProcess } from './server-process.js';

const describeRun = (result: CliResult) => `exit ${result.code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;

describe('export seed script against the real server', () => {
  let root: string;
  let dataDir: string;
  let server: ServerProcess | undefined;
  let api: ApiClient;
  let datasetId: string;

  beforeAll(async () => {
    root = makeTempDir('vizdex-e2e-export-');
    dataDir = path.join(root, 'data');
    server = await startServerProcess({ dataDir });
    const created = await runCli(['user', 'create', '--email', 'owner@example.com', '--data-dir', dataDir, '--json']);
    expect(created.code, describeRun(created)).toBe(0);
    api = new ApiClient(server.url, JSON.parse(created.stdout.trim()) as { api_key: string; api_secret: string });

    const newDataset = await api.get<{ dataset_id: string }>('/ingestion/new_dataset?dataset_name=seed%20export');
    expect(newDataset.status, newDataset.text).toBe(200);
    datasetId = newDataset.body.dataset_id;
    const transaction = await api.get<{ trans_id: string }>(`/ingestion/${datasetId}/data_files`);
    const form = new FormData();
    const original = await makeImage({ width: 320, height: 240, seed: 500 });
    form.append('files', new Blob([original]), 'original.jpg');
    form.append('files', new Blob([original]), 'copy.jpg');
    for (let seed = 1; seed <= 6; seed++) form.append('files', new Blob([await makeImage({ seed, format: 'png' })]), `distinct_${seed}.png`);
    expect((await api.post(`/ingestion/${datasetId}/data_files/${transaction.body.trans_id}`, form)).status).toBe(202);
    expect((await api.post(`/ingestion/${datasetId}/process_files/${transaction.body.trans_id}`)).status).toBe(202);
    const deadline = Date.now() + 90_000;
    for (;;) {
      const dataset = await api.get<DatasetBody>(`/dataset/${datasetId}`);
      if (dataset.body.status_new === 'READY') break;
      if (dataset.body.status_new === 'ERROR' || Date.now() > deadline) throw new Error(`dataset not READY: ${dataset.text}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('export_full.sh exports, downloads without the token and extracts metadata.json', async () => {
    const cwd = path.join(root, 'script');
    fs.mkdirSync(cwd);
    const result = await runProcess('bash', [path.join(seedClientsDir(), 'export_full.sh')], {
      cwd,
      env: { ...process.env, VL_BASE_URL: server!.url, JWT_TOKEN: await api.token(), DATASET_ID: datasetId },
      timeoutMs: 90_000,
    });
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stdout).toMatch(/Export Task ID: [0-9a-f-]{36}/);
    expect(result.stdout).toContain('Status: COMPLETED');
    expect(result.stdout).toContain('Done.');

    const metadata = JSON.parse(fs.readFileSync(path.join(cwd, 'exported_dataset', 'metadata.json'), 'utf8')) as {
      info: { schema_version: string; dataset: string; total_media_items: number };
      media_items: { file_name: string; url: string; metadata_items: { type: string; properties: { issue_type?: string; duplicate_group_id?: string | null } }[] }[];
    };
    expect(metadata.info).toMatchObject({ schema_version: '1.1', dataset: 'seed export', total_media_items: 8 });
    expect(metadata.media_items).toHaveLength(8);
    expect(metadata.media_items[0]!.url.startsWith(`${server!.url}/dataset/${datasetId}/data/image/`)).toBe(true);
    const groupsOf = (name: string) =>
      metadata.media_items
        .find((m) => m.file_name === name)!
        .metadata_items.filter((m) => m.properties.issue_type === 'duplicates')
        .map((m) => m.properties.duplicate_group_id);
    expect(groupsOf('copy.jpg').length).toBeGreaterThanOrEqual(1);
    expect(groupsOf('copy.jpg')).toEqual(groupsOf('original.jpg'));
  });

  it('vizdex export writes the same export to a file while the server runs', async () => {
    const out = path.join(root, 'cli', 'dataset.zip');
    const result = await runCli(['export', '-d', datasetId, '--format', 'parquet', '--include-images', '-o', out, '--data-dir', dataDir]);
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stdout).toContain(`Exported 8 media items of dataset ${datasetId}`);
    const entries = await readZip(fs.readFileSync(out));
    expect(entries.has('metadata.parquet')).toBe(true);
    expect([...entries.keys()].filter((name) => name.startsWith('images/'))).toHaveLength(8);

    const missing = await runCli(['export', '-d', '00000000-0000-4000-8000-000000000000', '-o', path.join(root, 'cli', 'x.zip'), '--data-dir', dataDir]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('Dataset not found');
  });
});
