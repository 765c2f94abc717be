import Docker from 'dockerode';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../config/schema';
import { createAuditActivities } from './audit';
import { createControlActivities } from './controls';
import { createDeployActivities } from './deploy';
import { createDockerActivities } from './docker';
import { createEtlActivities } from './etl';
import { createHttpActivities } from './http';
import { createMetricsActivities } from './metrics';
import { createNotifyActivities } from './notify';
import { createPostgresActivities } from './postgres';
import { createRedisActivities } from './redis';

interface ActivityDeps {
  config: Config;
  logger: Logger;
  pool: Pool;
  docker: Docker;
}

/** Every activity the worker registers, wired to their systems; connection details are resolved per call from `config.targets`. */
export function createActivities({ config, logger, pool, docker }: ActivityDeps) {
  return mergeActivities({
    docker: createDockerActivities(docker, config),
    http: createHttpActivities(config),
    metrics: createMetricsActivities(config),
    redis: createRedisActivities(config),
    postgres: createPostgresActivities(config, docker),
    etl: createEtlActivities(docker, config),
    notify: createNotifyActivities(config, logger),
    audit: createAuditActivities(pool, config.audit.schema),
    controls: createControlActivities(pool, config.audit.schema),
    deploy: createDeployActivities(docker, pool, config),
  });
}

type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;

/** Activities are registered by function name: two groups defining one name would silently shadow each other. */
export function mergeActivities<G extends Record<string, Record<string, unknown>>>(groups: G): UnionToIntersection<G[keyof G]> {
  const merged: Record<string, unknown> = {};
  const owner: Record<string, string> = {};
  for (const [group, activities] of Object.entries(groups)) {
    for (const [name, activity] of Object.entries(activities)) {
      if (Object.hasOwn(merged, name)) throw new Error(`activity "${name}" is defined by both ${owner[name]} and ${group}`);
      merged[name] = activity;
      owner[name] = group;
    }
  }
  return merged as UnionToIntersection<G[keyof G]>;
}

/** `DOCKER_HOST` forms dockerode understands: unix:///path or tcp://host:port; else its own defaults. */
export function dockerClient(host: string | undefined): Docker {
  if (!host) return new Docker();
  const url = new URL(host);
  if (url.protocol === 'unix:') return new Docker({ socketPath: url.pathname });
  return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: 'http' });
}
