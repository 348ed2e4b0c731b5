/**
 * The loopback load scenarios of issue 9, shared by `bench/load.ts` (≈10 s each, printed as a table)
 * and the quick check in test/hardening/load.test.ts (2–3 s each, asserting only that nothing failed
 * and nothing was lost). A real server process on a temp data dir, driven by autocannon.
 */
import fs from 'node:fs';
import path from 'node:path';
import autocannon, { type Result as AutocannonResult } from 'autocannon';
import { makeImage } from '../fixtures/media.js';
import { makeTempDir, mintJwt } from '../helpers/harness.js';
import { ApiClient, pollDataset, type Credentials } from '../e2e/api-client.js';
import { runCli, startServerProcess, type ServerProcess } from '../e2e/server-process.js';

export interface LoadOptions {
  /** Images in the READY dataset that is polled and explored. */
  images: number;
  /** Seconds per scenario. */
  seconds: number;
  pollConnections: number;
  exploreConnections: number;
  uploadConnections: number;
  /** Upper bound on upload requests, so processing them afterwards stays short. */
  maxUploads: number;
  log?: (line: string) => void;
}

export interface ScenarioResult {
  name: string;
  connections: number;
  requests: number;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodes: Record<string, number>;
}

export interface LoadReport {
  scenarios: ScenarioResult[];
  /** Upload scenario: files answered 202, and what the dataset counts after processing them. */
  acceptedFiles: number;
  processedImages: number;
  processedFailed: number;
  finalStatus: string;
}

async function readyDataset(api: ApiClient, count: number): Promise<string> {
  const created = await api.get<{ dataset_id: string }>('/ingestion/new_dataset?dataset_name=load');
  const datasetId = created.body.dataset_id;
  const trans = await api.get<{ trans_id: string }>(`/ingestion/${datasetId}/data_files`);
  for (let first = 0; first < count; first += 50) {
    const form = new FormData();
    for (let i = first; i < Math.min(count, first + 50); i++) {
      form.append('files', new Blob([await makeImage({ width: 96, height: 72, seed: 100 + i })]), `img_${String(i).padStart(4, '0')}.jpg`);
    }
    const response = await api.post(`/ingestion/${datasetId}/data_files/${trans.body.trans_id}`, form);
    if (response.status !== 202) throw new Error(`seed upload answered ${response.status}: ${response.text}`);
  }
  const processing = await api.post(`/ingestion/${datasetId}/process_files/${trans.body.trans_id}`);
  if (processing.status !== 202) throw new Error(`process_files answered ${processing.status}: ${processing.text}`);
  const dataset = await pollDataset(api, datasetId, (d) => d.status_new === 'READY' || d.status_new === 'ERROR', { timeoutMs: 120_000 });
  if (dataset.status_new !== 'READY' || dataset.n_images !== count) throw new Error(`seed dataset not READY with ${count} images: ${JSON.stringify(dataset)}`);
  return datasetId;
}

function summarise(name: string, connections: number, result: AutocannonResult): ScenarioResult {
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = count;
  return {
    name,
    connections,
    requests: result.requests.total,
    requestsPerSecond: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    statusCodes,
  };
}

export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const log = options.log ?? (() => undefined);
  const root = makeTempDir('vizdex-load-');
  const dataDir = path.join(root, 'data');
  let server: ServerProcess | null = null;
  try {
    const created = await runCli(['user', 'create', '--email', 'load@example.com', '--data-dir', dataDir, '--json']);
    if (created.code !== 0) throw new Error(`user create failed: ${created.stderr}`);
    const credentials = JSON.parse(created.stdout.trim()) as Credentials;
    server = await startServerProcess({ dataDir, args: ['--no-pipeline-service'] });
    const api = new ApiClient(server.url, credentials);

    log(`seeding a READY dataset of ${options.images} images…`);
    const datasetId = await readyDataset(api, options.images);
    // One token for the whole run (an hour: within the 24 h limit), as a long-running client would hold it.
    const now = Math.floor(Date.now() / 1000);
    const authorization = `Bearer ${await mintJwt(credentials.api_key, credentials.api_secret, { iat: now, exp: now + 3600 })}`;
    const scenarios: ScenarioResult[] = [];

    log(`polling GET /dataset/{id} with ${options.pollConnections} connections for ${options.seconds} s…`);
    scenarios.push(
      summarise('status polling  GET /dataset/{id}', options.pollConnections, await autocannon({
        url: `${server.url}/api/v1/dataset/${datasetId}`,
        connections: options.pollConnections,
        duration: options.seconds,
        timeout: 10,
        headers: { authorization },
      })),
    );

    log(`explore GET /explore/{id} with ${options.exploreConnections} connections for ${options.seconds} s…`);
    scenarios.push(
      summarise('explore         GET /explore/{id}', options.exploreConnections, await autocannon({
        url: `${server.url}/api/v1/explore/${datasetId}`,
        connections: options.exploreConnections,
        duration: options.seconds,
        timeout: 10,
        headers: { authorization },
      })),
    );

    // Uploads: one multipart body (one small picture), built once, posted by many clients to one transaction.
    const target = await api.get<{ dataset_id: string }>('/ingestion/new_dataset?dataset_name=load-uploads');
    const uploadsId = target.body.dataset_id;
    const trans = await api.get<{ trans_id: string }>(`/ingestion/${uploadsId}/data_files`);
    const boundary = '----vizdexload';
    const picture = await makeImage({ width: 64, height: 48, seed: 4242 });
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="upload.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`),
      picture,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    log(`uploads POST /ingestion/…/data_files with ${options.uploadConnections} connections for ${options.seconds} s (at most ${options.maxUploads})…`);
    const uploads = summarise('uploads         POST data_files', options.uploadConnections, await autocannon({
      url: `${server.url}/api/v1/ingestion/${uploadsId}/data_files/${trans.body.trans_id}`,
      method: 'POST',
      connections: options.uploadConnections,
      duration: options.seconds,
      amount: options.maxUploads,
      timeout: 20,
      headers: { authorization, 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
    }));
    scenarios.push(uploads);
    const acceptedFiles = uploads.statusCodes['202'] ?? 0;

    log(`processing the ${acceptedFiles} accepted uploads…`);
    const processing = await api.post(`/ingestion/${uploadsId}/process_files/${trans.body.trans_id}`);
    if (processing.status !== 202) throw new Error(`process_files answered ${processing.status}: ${processing.text}`);
    const done = await pollDataset(api, uploadsId, (d) => d.status_new === 'READY' || d.status_new === 'ERROR', { timeoutMs: 180_000, intervalMs: 250 });
    return { scenarios, acceptedFiles, processedImages: done.n_images, processedFailed: done.n_failed_files, finalStatus: done.status_new };
  } finally {
    if (server) await server.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** The report as a plain-text table. */
export function formatReport(report: LoadReport): string {
  const header = ['scenario', 'conns', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'timeouts', 'non-2xx', 'status codes'];
  const rows = report.scenarios.map((s) => [
    s.name,
    String(s.connections),
    String(s.requests),
    String(s.requestsPerSecond),
    String(s.p50),
    String(s.p99),
    String(s.errors),
    String(s.timeouts),
    String(s.non2xx),
    Object.entries(s.statusCodes).map(([code, count]) => `${code}×${count}`).join(' '),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    `uploads: ${report.acceptedFiles} files answered 202; after processing the dataset is ${report.finalStatus} with n_images=${report.processedImages}, n_failed_files=${report.processedFailed} → ${
      report.processedImages === report.acceptedFiles && report.processedFailed === 0 ? 'nothing lost' : 'MISMATCH'
    }`,
  ].join('\n');
}
