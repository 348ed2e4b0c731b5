#!/usr/bin/env node
import { Command, Option } from 'commander';
import { createContainer } from '../app/container.js';
import { ConfigError, loadConfig, type ConfigFlags } from '../config.js';
import { AppError } from '../domain/errors.js';
import { startServer } from '../http/server.js';
import { mintSdkToken } from '../security/sdk-token.js';

const program = new Command();
program
  .name('vizdex')
  .description('Self-hostable platform for visual datasets, wire-compatible with the Visual Layer API')
  .showHelpAfterError();

const dataDirOption = () => new Option('--data-dir <dir>', 'data folder: database, media, thumbnails (env VIZDEX_DATA_DIR, default ./data)');

program
  .command('serve')
  .description('run the HTTP API and the job runner')
  .addOption(new Option('--port <port>', 'port to listen on (env VIZDEX_PORT, default 8080)'))
  .addOption(new Option('--host <host>', 'interface to bind (env VIZDEX_HOST, default 127.0.0.1)'))
  .addOption(dataDirOption())
  .addOption(new Option('--model <model>', 'embedding model: builtin, or the path of an ONNX image model (env VIZDEX_MODEL)'))
  .option('--no-worker', 'serve the API only; jobs are left to other processes')
  .action(async (options: ConfigFlags & { worker: boolean }) => {
    const config = loadConfig(options);
    const container = await createContainer(config, { log: (message, error) => console.error(message, error ?? '') });
    const server = await startServer(container, { withJobs: options.worker });
    console.log(`vizdex listening on ${server.url} (data in ${config.dataDir})`);
    let closing = false;
    const shutdown = (signal: string) => {
      if (closing) process.exit(1);
      closing = true;
      console.log(`${signal} received, shutting down`);
      server.close().then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(error);
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGTERM', () => shutdown('SIGTERM'));
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
  .command('export')
  .description('export a READY dataset to a zip (metadata.json or metadata.parquet, images/ with --include-images)')
  .requiredOption('-d, --dataset <id>', 'dataset id')
  .addOption(new Option('--format <format>', 'metadata format').choices(['json', 'parquet']).default('json'))
  .option('--include-images', 'put every image under images/ in the zip')
  .requiredOption('-o, --output <file>', 'the zip file to write')
  .addOption(dataDirOption())
  .action(async (options: { dataset: string; format: 'json' | 'parquet'; includeImages?: boolean; output: string; dataDir?: string }) => {
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

program.parseAsync().catch((error: unknown) => {
  if (error instanceof ConfigError) console.error(error.message);
  else if (error instanceof AppError) console.error(`error: ${error.detail}`);
  else if (error instanceof Error && !process.env.VIZDEX_DEBUG) console.error(`error: ${error.message}`);
  else console.error(error);
  process.exit(1);
});
