#!/usr/bin/env node
import path from 'node:path';
import { Command, Option } from 'commander';
import { createContainer, type Container } from '../app/container.js';
import { ConfigError, loadConfig, type ConfigFlags } from '../config.js';
import { DatasetsRepository, type DatasetRow } from '../db/datasets.repository.js';
import type { DatasetStatus } from '../domain/dataset-status.js';
import { AppError } from '../domain/errors.js';
import { startPipelineService, type RunningPipelineService } from '../http/pipeline-service.js';
import { startServer } from '../http/server.js';
import { mintSdkToken } from '../security/sdk-token.js';
import { isUrlLocation, type OperatorService } from '../services/operator.service.js';
import { waitForOperation } from './operation-progress.js';

const program = new Command();
program
  .name('vizdex')
  .description('Self-hostable platform for visual datasets, wire-compatible with the Visual Layer API')
  .showHelpAfterError();

const dataDirOption = () => new Option('--data-dir <dir>', 'data folder: database, media, thumbnails (env VIZDEX_DATA_DIR, default ./data)');
const rootsOption = () => new Option('--roots <dirs>', 'comma-separated absolute folders the pipeline service may read (env VIZDEX_PIPELINE_ROOTS, default unrestricted)');
const modelOption = () => new Option('--model <model>', 'embedding model: builtin, or the path of an ONNX image model (env VIZDEX_MODEL)');
const ownerOption = (what: string) => new Option('--owner <email>', `${what} (env VIZDEX_PIPELINE_OWNER, default the first admin)`);

/** Stops `stop` on SIGINT/SIGTERM (a second signal exits at once), then exits 0 (1 if stopping failed). */
function exitOnSignals(stop: () => Promise<void>): void {
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) process.exit(1);
    closing = true;
    console.log(`${signal} received, shutting down`);
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

const debugLog = (message: string, error?: unknown) => {
  if (process.env.VIZDEX_DEBUG) console.error(message, error ?? '');
};

program
  .command('serve')
  .description('run the HTTP API, the job runner and the on-prem pipeline service')
  .addOption(new Option('--port <port>', 'port to listen on (env VIZDEX_PORT, default 8080)'))
  .addOption(new Option('--host <host>', 'interface to bind (env VIZDEX_HOST, default 127.0.0.1)'))
  .addOption(dataDirOption())
  .addOption(modelOption())
  .option('--no-worker', 'serve the API only; jobs are left to other processes')
  .option('--no-pipeline-service', 'do not start the on-prem pipeline service (it has no auth)')
  .addOption(new Option('--pipeline-port <port>', 'pipeline service port; 0 = any free port (env VIZDEX_PIPELINE_PORT, default 2080)'))
  .addOption(new Option('--pipeline-host <host>', 'pipeline service interface (env VIZDEX_PIPELINE_HOST, default 127.0.0.1)'))
  .addOption(rootsOption())
  .addOption(ownerOption('email of the user that owns datasets the pipeline service creates'))
  .action(async (options: ConfigFlags & { worker: boolean; pipelineService: boolean }) => {
    const config = loadConfig(options);
    const container = await createContainer(config, { log: (message, error) => console.error(message, error ?? '') });
    // The pipeline service first: a port in use stops serve before anything runs (no silent half start).
    let pipeline: RunningPipelineService | null = null;
    if (options.pipelineService) {
      try {
        pipeline = await startPipelineService(container, {
          ...config.pipelineService,
          hint: 'choose another port with --pipeline-port or VIZDEX_PIPELINE_PORT, or pass --no-pipeline-service',
        });
      } catch (error) {
        await container.close();
        throw error;
      }
      console.log(`vizdex pipeline service listening on ${pipeline.url}`);
    }
    let server;
    try {
      server = await startServer(container, { withJobs: options.worker });
    } catch (error) {
      await pipeline?.close();
      await container.close();
      throw error;
    }
    console.log(`vizdex listening on ${server.url} (data in ${config.dataDir})`);
    const running = server;
    exitOnSignals(async () => {
      await pipeline?.close();
      await running.close();
    });
  });

program
  .command('worker')
  .description('run jobs only (ingest batches, indexing shards, exports): start as many as you like on the same configuration')
  .addOption(new Option('--concurrency <n>', 'jobs (and images within a batch) processed at once (env VIZDEX_JOB_CONCURRENCY, default the number of cores)'))
  .addOption(dataDirOption())
  .addOption(modelOption())
  .action(async (options: ConfigFlags) => {
    const config = loadConfig(options);
    const container = await createContainer(config, { log: (message, error) => console.error(message, error ?? '') });
    container.startJobs();
    const queue = config.redisUrl ? `Redis (${config.redisPrefix})` : `the database in ${config.databaseUrl ? 'PostgreSQL' : config.dataDir}`;
    console.log(`vizdex worker running ${config.jobConcurrency} at once, jobs from ${queue}`);
    exitOnSignals(() => container.close());
  });

program
  .command('pipeline-service')
  .description('run the on-prem pipeline service alone: GET|POST /api/v1/process and /api/v1/process/add_media, no auth')
  .addOption(new Option('--port <port>', 'port to listen on; 0 = any free port (env VIZDEX_PIPELINE_PORT, default 2080)'))
  .addOption(new Option('--host <host>', 'interface to bind (env VIZDEX_PIPELINE_HOST, default 127.0.0.1)'))
  .addOption(dataDirOption())
  .addOption(rootsOption())
  .addOption(ownerOption('email of the user that owns the datasets it creates'))
  .addOption(modelOption())
  .option('--no-worker', 'only queue the work; jobs are left to `vizdex serve` or a worker on the same configuration')
  .action(async (options: { port?: string; host?: string; dataDir?: string; roots?: string; owner?: string; model?: string; worker: boolean }) => {
    const config = loadConfig({
      dataDir: options.dataDir,
      model: options.model,
      pipelinePort: options.port,
      pipelineHost: options.host,
      roots: options.roots,
      owner: options.owner,
    });
    const container = await createContainer(config, { log: (message, error) => console.error(message, error ?? '') });
    let pipeline: RunningPipelineService;
    try {
      pipeline = await startPipelineService(container, { ...config.pipelineService, hint: 'choose another port with --port or VIZDEX_PIPELINE_PORT' });
    } catch (error) {
      await container.close();
      throw error;
    }
    if (options.worker) container.startJobs();
    const { roots, owner } = config.pipelineService;
    console.log(`vizdex pipeline service listening on ${pipeline.url} (data in ${config.dataDir})`);
    console.log(`paths: ${roots.length > 0 ? `under ${roots.join(', ')}` : 'anywhere'}; new datasets owned by ${owner ?? 'the first admin'}`);
    exitOnSignals(async () => {
      await pipeline.close();
      await container.close();
    });
  });

const user = program.command('user').description('manage users');
user
  .command('create')
  .description('create a user with an API key pair (works while the server runs on the same data dir)')
  .requiredOption('--email <email>', 'email address, the identity used by sharing')
  .option('--name <name>', 'display name')
  .option('--password <password>', 'password for the web UI (omit for an API-only user)')
  .addOption(dataDirOption())
  .option('--json', 'print {"user_id","email","api_key","api_secret"} as JSON')
  .action(async (options: { email: string; name?: string; password?: string; dataDir?: string; json?: boolean }) => {
    const container = await createContainer(loadConfig({ dataDir: options.dataDir }));
    try {
      const created = await container.services.auth.createUser(options);
      const credentials = await container.services.auth.createApiCredentials(created.id);
      const result = { user_id: created.id, email: created.email, ...credentials };
      if (options.json) console.log(JSON.stringify(result));
      else {
        console.log(`Created ${created.isAdmin ? 'admin ' : ''}user ${created.email} (${created.id})`);
        console.log(`api_key:    ${credentials.api_key}`);
        console.log(`api_secret: ${credentials.api_secret}  (shown once; store it now)`);
      }
    } finally {
      await container.close();
    }
  });

program
  .command('token')
  .description('print a JWT for an API key pair, as the Visual Layer SDK mints it (for curl)')
  .requiredOption('--api-key <key>', 'the api_key')
  .requiredOption('--api-secret <secret>', 'the api_secret')
  .option('--ttl <seconds>', 'lifetime in seconds (at most 86400)', '600')
  .action(async (options: { apiKey: string; apiSecret: string; ttl: string }) => {
    const ttl = Number(options.ttl);
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 86_400) throw new Error('--ttl must be an integer between 1 and 86400');
    console.log(await mintSdkToken(options.apiKey, options.apiSecret, ttl));
  });

program
  .command('annotations')
  .description("import labels, boxes and captions (COCO .json, YOLO .zip/.tar, .csv, .parquet) into a dataset, as its owner; prints the report")
  .requiredOption('-d, --dataset <id>', 'dataset id')
  .requiredOption('-f, --file <path>', 'the annotation file')
  .addOption(new Option('--format <format>', 'the file format (guessed from the file when absent)').choices(['coco', 'yolo', 'csv', 'parquet']))
  .addOption(new Option('--source <source>', 'who made the labels').choices(['User', 'Model', 'Visual Layer']).default('User'))
  .option('--json', 'print the whole report as JSON')
  .addOption(dataDirOption())
  .action(async (options: { dataset: string; file: string; format?: string; source: string; json?: boolean; dataDir?: string }) => {
    const container = await createContainer(loadConfig({ dataDir: options.dataDir }));
    try {
      const report = await container.services.operator.importAnnotations(options.dataset, path.resolve(options.file), { format: options.format, source: options.source });
      if (options.json) {
        console.log(JSON.stringify(report, null, 2));
        return;
      }
      console.log(
        `${report.format}: ${report.n_rows} rows; ${report.n_image_labels} image labels, ${report.n_objects} objects, ${report.n_captions} captions; ` +
          `${report.n_unmatched} unmatched, ${report.n_invalid} invalid`,
      );
      for (const problem of report.problems.slice(0, 20)) console.log(`  ${problem.location}${problem.file_name ? ` (${problem.file_name})` : ''}: ${problem.reason}`);
      if (report.problems.length > 20) console.log(`  … ${report.n_unmatched + report.n_invalid - 20} more (--json for the first 1000)`);
    } finally {
      await closeQuietly(container);
    }
  });

program
  .command('export')
  .description('export a READY dataset to a zip (metadata.json, metadata.parquet or COCO annotations.json; images/ with --include-images)')
  .requiredOption('-d, --dataset <id>', 'dataset id')
  .addOption(new Option('--format <format>', 'metadata format (coco: labelled images only)').choices(['json', 'parquet', 'coco']).default('json'))
  .option('--include-images', 'put every image under images/ in the zip')
  .requiredOption('-o, --output <file>', 'the zip file to write')
  .addOption(dataDirOption())
  .action(async (options: { dataset: string; format: 'json' | 'parquet' | 'coco'; includeImages?: boolean; output: string; dataDir?: string }) => {
    const config = loadConfig({ dataDir: options.dataDir });
    const container = await createContainer(config);
    try {
      console.log(options.dataset);
      const { total } = await container.services.exports.exportToFile(
        options.dataset,
        {
          format: options.format,
          includeImages: options.includeImages === true,
          baseUrl: config.publicUrl ?? `http://${config.host}:${config.port}`,
          exportedBy: 'vizdex-cli',
        },
        options.output,
      );
      console.log(`Exported ${total} media item${total === 1 ? '' : 's'} of dataset ${options.dataset} to ${options.output}`);
    } finally {
      await container.close();
    }
  });

const pathHelp = 'an absolute or relative local folder, a .txt/.csv/.parquet list of files, or an s3:// or http(s):// location';

program
  .command('create')
  .description('create a dataset from a folder, an S3 or HTTP location, or a list of files, and wait until it is READY')
  .requiredOption('-n, --name <name>', 'dataset name')
  .requiredOption('-p, --path <path>', pathHelp)
  .addOption(ownerOption('email of the user that owns the dataset'))
  .addOption(dataDirOption())
  .addOption(modelOption())
  .action(async (options: { name: string; path: string; owner?: string; dataDir?: string; model?: string }) => {
    await runOperation({ dataDir: options.dataDir, model: options.model, owner: options.owner }, ['READY'], async (operator) => {
      const created = await operator.createDataset({ name: options.name, location: resolveLocation(options.path) });
      return { datasetId: created.dataset_id, taskId: created.taskId };
    });
  });

program
  .command('add-media')
  .description('add the media at a location to an indexed dataset and wait until they are in (PARTIAL INDEX, or READY with -a)')
  .requiredOption('-d, --dataset <id>', 'dataset id')
  .requiredOption('-p, --path <path>', pathHelp)
  .option('-a, --auto-reindex', 'reindex once the new media are in, ending READY')
  .addOption(dataDirOption())
  .addOption(modelOption())
  .action(async (options: { dataset: string; path: string; autoReindex?: boolean; dataDir?: string; model?: string }) => {
    const autoReindex = options.autoReindex === true;
    await runOperation({ dataDir: options.dataDir, model: options.model }, autoReindex ? ['READY'] : ['PARTIAL INDEX'], async (operator) => {
      const { taskId } = await operator.addMediaFrom(options.dataset, resolveLocation(options.path), autoReindex);
      return { datasetId: options.dataset.trim(), taskId };
    });
  });

program
  .command('reindex')
  .description('re-cluster a PARTIAL INDEX dataset and wait until it is READY')
  .requiredOption('-d, --dataset <id>', 'dataset id')
  .addOption(dataDirOption())
  .addOption(modelOption())
  .action(async (options: { dataset: string; dataDir?: string; model?: string }) => {
    await runOperation({ dataDir: options.dataDir, model: options.model }, ['READY'], async (operator) => {
      const { taskId } = await operator.reindex(options.dataset);
      return { datasetId: options.dataset.trim(), taskId };
    });
  });

/** A relative local path is the operator's: resolved against the current directory. */
function resolveLocation(location: string): string {
  const trimmed = location.trim();
  return isUrlLocation(trimmed) ? trimmed : path.resolve(trimmed);
}

/**
 * The operator commands' shape: open the container, run jobs here too (harmless when a server runs
 * on the same data dir: jobs are claimed through the database), start the operation, print the
 * dataset id, show progress until the dataset reaches one of `until`, print a summary. Ending in
 * ERROR or a failed task throws, so the process exits 1 with the reason.
 */
async function runOperation(
  flags: ConfigFlags,
  until: DatasetStatus[],
  start: (operator: OperatorService) => Promise<{ datasetId: string; taskId: string }>,
): Promise<void> {
  const config = loadConfig(flags);
  const container = await createContainer(config, { log: debugLog });
  // `vizdex create … | head -1` closes stdout early; the operation must still run to its end.
  process.stdout.on('error', () => undefined);
  let failure: string | null = null;
  try {
    container.startJobs();
    const { datasetId, taskId } = await start(container.services.operator);
    console.log(datasetId);
    const stopWaiting = interruptNotice(datasetId);
    try {
      const outcome = await waitForOperation(container, {
        datasetId,
        taskId,
        until: new Set(until),
        out: process.stdout,
        tty: process.stdout.isTTY === true,
      });
      const dataset = await new DatasetsRepository(container.db).findById(datasetId);
      if (outcome.ok) console.log(summarize(datasetId, outcome.status, dataset));
      else failure = `${outcome.message} (dataset ${datasetId} is ${outcome.status})`;
    } finally {
      stopWaiting();
    }
  } finally {
    await closeQuietly(container);
  }
  if (failure !== null) throw new Error(failure);
}

/** Ctrl-C while waiting: say where the work stands instead of dying mid-line. */
function interruptNotice(datasetId: string): () => void {
  const onSignal = (signal: NodeJS.Signals) => {
    process.stdout.write('\n');
    console.error(`${signal}: stopped waiting; dataset ${datasetId} goes on processing when vizdex serve (or another command) runs on this data dir`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

async function closeQuietly(container: Container): Promise<void> {
  try {
    await container.close();
  } catch (error) {
    debugLog('closing the container failed', error);
  }
}

/** `Dataset <id> is READY: 30 images, 1 video, 2 files could not be processed`. */
function summarize(datasetId: string, status: string, dataset: DatasetRow | undefined): string {
  if (!dataset) return `Dataset ${datasetId} is ${status}`;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const parts = [plural(dataset.n_images, 'image')];
  if (dataset.n_videos > 0) parts.push(`${plural(dataset.n_videos, 'video')} (${plural(dataset.n_video_frames, 'frame')})`);
  if (dataset.n_failed > 0) parts.push(`${plural(dataset.n_failed, 'file')} could not be processed`);
  return `Dataset ${datasetId} is ${status}: ${parts.join(', ')}`;
}

program.parseAsync().catch((error: unknown) => {
  if (error instanceof ConfigError) console.error(error.message);
  else if (error instanceof AppError) console.error(`error: ${error.detail}`);
  else if (error instanceof Error && !process.env.VIZDEX_DEBUG) console.error(`error: ${error.message}`);
  else console.error(error);
  process.exit(1);
});
