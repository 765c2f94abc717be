import Docker from 'dockerode';
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../config/schema';
import { createAuditActivities } from './audit';
import { createDockerActivities } from './docker';
import * as httpActivities from './http';
import { createNotifyActivities } from './notify';
import { createRedisActivities, type RedisActivities } from './redis';

export interface ActivityDeps {
  config: Config;
  logger: Logger;
  pool: Pool;
  docker: Docker;
}

/** Every activity the worker registers, wired to their systems. */
export function createActivities({ config, logger, pool, docker }: ActivityDeps) {
  return {
    ...createDockerActivities(docker),
    ...httpActivities,
    ...(config.targets.redis ? createRedisActivities(config.targets.redis.url) : unconfiguredRedis()),
    ...createNotifyActivities(config, logger),
    ...createAuditActivities(pool, config.audit.schema),
  };
}

/** `DOCKER_HOST` forms dockerode understands: unix:///path or tcp://host:port; else its own defaults. */
export function dockerClient(host: string | undefined): Docker {
  if (!host) return new Docker();
  const url = new URL(host);
  if (url.protocol === 'unix:') return new Docker({ socketPath: url.pathname });
  return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: 'http' });
}

function unconfiguredRedis(): RedisActivities {
  const refuse = async (): Promise<never> => {
    throw ApplicationFailure.nonRetryable('no Redis target is configured (targets.redis)', 'NotConfigured');
  };
  return { diagnoseRedis: refuse, waitForRedis: refuse, flushRedisDb: refuse, startBackgroundSave: refuse };
}
