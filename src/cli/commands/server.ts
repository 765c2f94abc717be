/** `runbooks server`: the HTTP API (Alertmanager webhook, incidents), until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { createLogger } from '../../logging/logger';
import { createLazyClient } from '../../temporal/client';
import { loadCliConfig } from '../context';
import { loadServices } from '../lazy';

export function registerServerCommand(program: Command): void {
  program
    .command('server')
    .description('run the HTTP server (Alertmanager webhook and incident API); SIGINT/SIGTERM stops it')
    .action(async (_options: unknown, command: Command) => {
      const { config } = loadCliConfig(command);
      const logger = createLogger('runbooks-http');
      const { startHttpServer, untilStopSignal } = loadServices();
      const stopSignal = untilStopSignal();
      // Lazy: the server starts (and answers 503) while Temporal is down, and recovers when it is back.
      const { client, connection } = createLazyClient(config);
      try {
        const server = await startHttpServer({ config, client, logger });
        process.stdout.write(`webhook: ${server.baseUrl}/alerts\n`);
        await stopSignal.signal;
        await server.stop();
      } finally {
        stopSignal.dispose();
        await connection.close().catch(() => {});
      }
    });
}
