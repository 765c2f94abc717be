import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, type ActivityInterceptorsFactory, type WorkerOptions as SdkWorkerOptions } from '@temporalio/worker';
import { Pool } from 'pg';
import type { Logger } from 'pino';
import { createActivities, dockerClient } from '../activities';
import { migrateAuditSchema } from '../audit/migrate';
import type { Config } from '../config/schema';
import { routeSdkLogsTo } from '../logging/sdkLogger';
import { ensureSearchAttributes } from '../temporal/searchAttributes';
import { bundleWorkflows } from './bundle';
import { retryReporter } from './retryReporter';

export interface IncidentWorker {
  worker: Worker;
  /** Closes the worker's connections once `worker.run()` has returned. */
  close(): Promise<void>;
}

export interface WorkerOptions {
  config: Config;
  logger: Logger;
  /** A pre-built workflow bundle (tests build one per run); otherwise the workflows are bundled at start. */
  workflowBundlePath?: string;
  /** Fault injection (`npm run chaos`): activity interceptors and a shorter sticky-queue timeout. Production sets neither. */
  chaos?: { activityInterceptors?: ActivityInterceptorsFactory[] } & Pick<SdkWorkerOptions, 'stickyQueueScheduleToStartTimeout'>;
  /** Activities that replace the real ones by name (`runbooks dry-run`: pages recorded, not sent). Production sets none. */
  activityOverrides?: Partial<ReturnType<typeof createActivities>>;
}

/** Prepares what incidents need (search attributes, audit schema) and creates the worker. */
export async function createIncidentWorker({ config, logger, workflowBundlePath, chaos, activityOverrides }: WorkerOptions): Promise<IncidentWorker> {
  const { address, namespace, taskQueue } = config.temporal;
  routeSdkLogsTo(logger, config.temporal.workerMetricsAddress);
  const admin = await Connection.connect({ address, connectTimeout: '10s' });
  try {
    const added = await ensureSearchAttributes(admin, namespace);
    if (added.length > 0) logger.info({ added }, 'registered search attributes');
  } finally {
    await admin.close();
  }
  await migrateAuditSchema(config.audit.databaseUrl, config.audit.schema, logger);

  const workflowBundle = workflowBundlePath ? { codePath: workflowBundlePath } : await bundleWorkflows(logger);
  const pool = new Pool({ connectionString: config.audit.databaseUrl, max: 4 });
  const connection = await NativeConnection.connect({ address });
  const reportRetries = retryReporter(new Client({ connection, namespace }), logger);
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue,
    activities: { ...createActivities({ config, logger, pool, docker: dockerClient(config.docker.host) }), ...activityOverrides },
    workflowBundle,
    maxCachedWorkflows: config.temporal.maxCachedWorkflows,
    // Heartbeats reach the server at most this late (default: 80% of the heartbeat timeout). A backfill chunk
    // resumes from its last heartbeat's cursor after a crash, so this bounds the records loaded twice.
    maxHeartbeatThrottleInterval: '1s',
    shutdownGraceTime: config.temporal.shutdownGraceTime,
    ...(chaos?.stickyQueueScheduleToStartTimeout ? { stickyQueueScheduleToStartTimeout: chaos.stickyQueueScheduleToStartTimeout } : {}),
    interceptors: { activity: [reportRetries, ...(chaos?.activityInterceptors ?? [])] },
  });
  logger.info({ address, namespace, taskQueue }, 'worker ready');
  return {
    worker,
    async close() {
      await connection.close();
      await pool.end();
    },
  };
}
