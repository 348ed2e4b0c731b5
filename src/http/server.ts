import type { Container } from '../app/container.js';
import { buildApp, type App } from './app.js';

export interface RunningServer {
  app: App;
  url: string;
  close(): Promise<void>;
}

/** Listens, starts the job runner, and shuts both down gracefully on close. */
export async function startServer(container: Container, options: { withJobs: boolean }): Promise<RunningServer> {
  const { config } = container;
  const app = await buildApp(container, { logger: config.logLevel === 'silent' ? false : { level: config.logLevel } });
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  if (options.withJobs) container.startJobs();
  return {
    app,
    url: `http://${host}:${port}`,
    async close() {
      await app.close();
      await container.close();
    },
  };
}
