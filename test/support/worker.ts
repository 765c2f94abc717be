import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import type { Config } from '../../src/config/schema';
import { createIncidentWorker, type IncidentWorker } from '../../src/worker/worker';

export interface RunningWorker extends IncidentWorker {
  client: Client;
  stop(): Promise<void>;
}

/**
 * Starts a real worker on the test's task queue with the harness's pre-built workflow bundle. `logLevel`
 * quiets warnings a test provokes on purpose (TEST_LOG_LEVEL still wins).
 */
export async function startWorker(config: Config, { logLevel = 'warn' }: { logLevel?: string } = {}): Promise<RunningWorker> {
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? logLevel });
  const incidentWorker = await createIncidentWorker({ config, logger, workflowBundlePath: process.env.RUNBOOKS_WORKFLOW_BUNDLE });
  const running = incidentWorker.worker.run();
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  return {
    ...incidentWorker,
    client,
    async stop() {
      incidentWorker.worker.shutdown();
      await running;
      await incidentWorker.close();
      await connection.close();
    },
  };
}

