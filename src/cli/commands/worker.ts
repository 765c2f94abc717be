/** `runbooks worker`: the Temporal worker that runs incidents, until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { createLogger } from '../../logging/logger';
import { loadCliConfig } from '../context';
import { loadServices } from '../lazy';

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('run the incident worker (registers search attributes, migrates the audit schema); SIGINT/SIGTERM stops it')
    .action(async (_options: unknown, command: Command) => {
      const { config } = loadCliConfig(command);
      const logger = createLogger('runbooks-worker');
      const { startWorker, untilStopSignal } = loadServices();
      const stopSignal = untilStopSignal();
      try {
        const worker = await startWorker(config, logger);
        // Stop on a signal, or stop waiting when the worker fails by itself.
        await Promise.race([stopSignal.signal, worker.done]);
        logger.info('worker stopping');
        await worker.stop();
        await worker.done;
      } finally {
        stopSignal.dispose();
      }
    });
}
