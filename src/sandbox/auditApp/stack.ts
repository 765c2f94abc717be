/**
 * The audit-app sandbox: four containers on one Docker engine — `<prefix>postgres`, `<prefix>redis`,
 * `<prefix>backend` — each `--init --network host` on its own 127.0.0.1 port — and `<prefix>etl`, the ETL job's
 * container (host network, no init: PID 1 is `node /app/etl.js daemon`; the pipeline runs by `docker exec`; its
 * downloads dir a small tmpfs). Starting is idempotent: a container already made from the same spec (image,
 * command, environment) is kept (and started if stopped); anything else is replaced. What runbooks need to act on
 * it is `auditAppTargets()`.
 */
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import type Docker from 'dockerode';
import { Client as PgClient } from 'pg';
import { stringify as toYaml } from 'yaml';
import { demultiplex, PREVIOUS_IMAGE_LABEL, tailLogs } from '../../activities/docker';
import { withRedis } from '../../activities/redisConnection';
import { BackendEnv, DATABASE_NAME, DEFAULT_POOL_SIZE, DEFAULT_PORTS, DEFAULT_PREFIX, DEFAULT_RATE_LIMIT, EtlEnv, EtlLogPatterns, EtlPaths } from './contract';
import { BACKEND_USER, backendImage, DEFAULT_BACKEND_VERSION, ETL_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE } from './images';

export const AUDIT_APP_ROLES = ['postgres', 'redis', 'backend', 'etl'] as const;
export type AuditAppRole = (typeof AUDIT_APP_ROLES)[number];

export { DEFAULT_PORTS, DEFAULT_PREFIX };

export interface AuditAppPorts {
  /** The API: /health, /metrics, /api/v1/… */
  backend: number;
  /** The backend's fault knobs (contract.ts AdminRoutes). */
  admin: number;
  postgres: number;
  redis: number;
}

/** Labels on every audit-app container. */
export const AuditAppLabels = {
  /** The prefix of the app the container belongs to. */
  app: 'runbooks.audit-app',
  role: 'runbooks.audit-app.role',
  /** JSON of AuditAppPorts, so status/break/targets find the ports without being told. */
  ports: 'runbooks.audit-app.ports',
  /** Hash of the create options: `up` keeps a container whose spec is unchanged. */
  spec: 'runbooks.audit-app.spec',
} as const;

export interface AuditAppOptions {
  /** Container name prefix (default `audit-app-`): `<prefix>backend`, `<prefix>postgres`, `<prefix>redis`, `<prefix>etl`. */
  prefix?: string;
  ports?: Partial<AuditAppPorts>;
  /** Backend image version (default 1.0.0); the image must exist (ensureAuditAppImages). */
  backendVersion?: string;
  /** The backend's pg pool size (default 5). */
  poolSize?: number;
  /** Requests per minute per client when Redis holds no `config:rate_limit:limit` (default 120). */
  rateLimit?: number;
  /** PostgreSQL's max_connections (default 50). */
  postgresMaxConnections?: number;
  /** Redis maxmemory (default 64mb, policy noeviction, as an untuned production Redis). */
  redisMaxmemory?: string;
  /** More environment for the backend (contract.ts BackendEnv), e.g. a fault from the start. */
  backendEnv?: Readonly<Record<string, string>>;
  /** The image the api-down runbook rolls the backend back to (label runbooks.previous-image). */
  previousBackendImage?: string;
  /** More environment for the ETL (contract.ts EtlEnv), e.g. the Pushgateway its runs push to. */
  etlEnv?: Readonly<Record<string, string>>;
  /** Size of the etl container's downloads tmpfs (default 4m: a `fault disk-full` fills it in a moment). */
  etlDownloadsSize?: string;
  /** Labels on every container (the tests mark theirs for cleanup). */
  labels?: Readonly<Record<string, string>>;
  /** Replace the containers even when their spec is unchanged (a fresh database). */
  fresh?: boolean;
  /** How long to wait for PostgreSQL to accept connections and the backend's /health to answer 200 (default 90 s). */
  readyWithinMs?: number;
  /** false: wait only until /health answers, whatever it says (a bad deploy); default true: until it answers 200. */
  requireHealthy?: boolean;
}

export interface AuditApp {
  prefix: string;
  containers: Record<AuditAppRole, string>;
  ports: AuditAppPorts;
  images: Record<AuditAppRole, string>;
  urls: {
    /** GET: 200 when the backend reads its `documents` table (SELECT 1 FROM documents LIMIT 1); 503 with the error otherwise. */
    health: string;
    metrics: string;
    /** Base of the API, e.g. http://127.0.0.1:18180 */
    api: string;
    /** Base of the fault knobs, e.g. http://127.0.0.1:18181 */
    admin: string;
    /** postgres://postgres@127.0.0.1:<port>/audit_app (trust auth) */
    database: string;
    redis: string;
  };
  /** The ETL job: `docker exec <containers.etl> node /app/etl.js …` (contract.ts EtlPaths). */
  etl: {
    /** The argv prefix to exec: ['node', '/app/etl.js']. */
    program: readonly string[];
    downloadsDir: string;
  };
}

/** Names, ports, images and URLs of an audit-app; touches nothing. */
export function describeAuditApp(options: Pick<AuditAppOptions, 'prefix' | 'ports' | 'backendVersion'> = {}): AuditApp {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$/.test(prefix)) throw new Error(`prefix "${prefix}": letters, digits, _ . - (max 41), starting with a letter or digit`);
  const ports = { ...DEFAULT_PORTS, ...options.ports };
  const distinct = new Set(Object.values(ports));
  if (distinct.size !== 4) throw new Error(`the four ports must differ: ${JSON.stringify(ports)}`);
  const api = `http://127.0.0.1:${ports.backend}`;
  return {
    prefix,
    containers: { backend: `${prefix}backend`, postgres: `${prefix}postgres`, redis: `${prefix}redis`, etl: `${prefix}etl` },
    ports,
    images: { backend: backendImage(options.backendVersion ?? DEFAULT_BACKEND_VERSION), postgres: POSTGRES_IMAGE, redis: REDIS_IMAGE, etl: ETL_IMAGE },
    urls: {
      health: `${api}/health`,
      metrics: `${api}/metrics`,
      api,
      admin: `http://127.0.0.1:${ports.admin}`,
      database: `postgres://postgres@127.0.0.1:${ports.postgres}/${DATABASE_NAME}`,
      redis: `redis://127.0.0.1:${ports.redis}/0`,
    },
    etl: { program: EtlPaths.argv, downloadsDir: EtlPaths.downloadsDir },
  };
}

/** The `targets` section of a runbooks config that points at the app (and `docker.host` when not the default). */
export function auditAppTargets(app: AuditApp, dockerHost?: string) {
  return {
    ...(dockerHost ? { docker: { host: dockerHost } } : {}),
    targets: {
      backend: { container: app.containers.backend, healthUrl: app.urls.health, metricsUrl: app.urls.metrics },
      redis: { container: app.containers.redis, url: app.urls.redis },
      postgres: { container: app.containers.postgres, url: app.urls.database },
      etl: { container: app.containers.etl },
    },
  };
}

/** auditAppTargets as YAML, with where each part listens as comments. */
export function auditAppTargetsYaml(app: AuditApp, dockerHost?: string): string {
  const comments = [
    `# The audit-app sandbox (${app.prefix}*) — add to runbooks.yaml:`,
    `#   backend   ${app.containers.backend.padEnd(24)} ${app.urls.api}  (/health, /metrics, /api/v1/…; fault knobs ${app.urls.admin}/faults)`,
    `#   postgres  ${app.containers.postgres.padEnd(24)} ${app.urls.database}`,
    `#   redis     ${app.containers.redis.padEnd(24)} ${app.urls.redis}`,
    `#   etl       ${app.containers.etl.padEnd(24)} docker exec ${app.containers.etl} ${app.etl.program.join(' ')} run|status|clean-downloads`,
  ];
  return `${comments.join('\n')}\n${toYaml(auditAppTargets(app, dockerHost))}`;
}

// ---- container specs --------------------------------------------------------------------------------------------

type CreateOptions = Docker.ContainerCreateOptions & { name: string; Image: string };

function containerSpecs(app: AuditApp, options: AuditAppOptions): Record<AuditAppRole, CreateOptions> {
  // The caller's labels (options.labels) are added at create time, outside the spec: they say who made the
  // container, not how it runs, so `runbooks sandbox up` keeps a container a test made.
  const labels = (role: AuditAppRole): Record<string, string> => ({
    [AuditAppLabels.app]: app.prefix,
    [AuditAppLabels.role]: role,
    [AuditAppLabels.ports]: JSON.stringify(app.ports),
  });
  const hostConfig = { NetworkMode: 'host', Init: true };
  const backendEnv: Record<string, string> = {
    [BackendEnv.port]: String(app.ports.backend),
    [BackendEnv.adminPort]: String(app.ports.admin),
    [BackendEnv.databaseUrl]: app.urls.database,
    [BackendEnv.redisUrl]: app.urls.redis,
    [BackendEnv.poolSize]: String(options.poolSize ?? DEFAULT_POOL_SIZE),
    [BackendEnv.rateLimit]: String(options.rateLimit ?? DEFAULT_RATE_LIMIT),
    ...options.backendEnv,
  };
  return {
    redis: {
      name: app.containers.redis,
      Image: app.images.redis,
      Cmd: [
        '/usr/bin/redis-server',
        ...['--bind', '127.0.0.1', '--port', String(app.ports.redis), '--dir', '/data', '--save', '', '--appendonly', 'no'],
        ...['--maxmemory', options.redisMaxmemory ?? '64mb', '--maxmemory-policy', 'noeviction'],
      ],
      Labels: labels('redis'),
      HostConfig: hostConfig,
    },
    postgres: {
      name: app.containers.postgres,
      Image: app.images.postgres,
      Env: [`PGPORT=${app.ports.postgres}`, `PG_MAX_CONNECTIONS=${options.postgresMaxConnections ?? 50}`],
      // SIGINT is PostgreSQL's fast shutdown; its SIGTERM (smart) would wait for every client to leave.
      StopSignal: 'SIGINT',
      Labels: labels('postgres'),
      HostConfig: hostConfig,
    },
    backend: {
      name: app.containers.backend,
      Image: app.images.backend,
      Env: Object.entries(backendEnv).map(([key, value]) => `${key}=${value}`),
      Labels: { ...labels('backend'), ...(options.previousBackendImage ? { [PREVIOUS_IMAGE_LABEL]: options.previousBackendImage } : {}) },
      HostConfig: hostConfig,
    },
    etl: {
      name: app.containers.etl,
      Image: app.images.etl,
      // The image's CMD, said here so the spec shows it: PID 1 is the daemon itself (no init), so a `docker exec`ed
      // run can write to its stdout, /proc/1/fd/1, which is the container's log.
      Cmd: [EtlPaths.node, EtlPaths.program, 'daemon'],
      Env: Object.entries({ [EtlEnv.databaseUrl]: app.urls.database, [EtlEnv.downloadsDir]: EtlPaths.downloadsDir, ...options.etlEnv }).map(([key, value]) => `${key}=${value}`),
      Labels: labels('etl'),
      HostConfig: {
        NetworkMode: 'host',
        Init: false,
        // A small tmpfs, so a full disk is a real ENOSPC in a moment; the app user owns it.
        Tmpfs: { [EtlPaths.downloadsDir]: `rw,nosuid,nodev,size=${options.etlDownloadsSize ?? '4m'},uid=${BACKEND_USER.uid},gid=${BACKEND_USER.uid}` },
      },
    },
  };
}

async function inspectOrUndefined(docker: Docker, name: string): Promise<Docker.ContainerInspectInfo | undefined> {
  try {
    return await docker.getContainer(name).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  }
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Keeps a container made from the same spec and image (starting it if stopped); replaces anything else. */
async function ensureContainer(
  docker: Docker,
  spec: CreateOptions,
  ports: number[],
  options: { fresh: boolean; labels?: Readonly<Record<string, string>> },
): Promise<'kept' | 'started' | 'created'> {
  const image = await docker.getImage(spec.Image).inspect().catch((err: { statusCode?: number }) => {
    if (err.statusCode === 404) throw new Error(`image ${spec.Image} does not exist — build it first (ensureAuditAppImages; \`runbooks sandbox up\` does)`);
    throw err;
  });
  const specHash = createHash('sha256').update(JSON.stringify(spec)).update(image.Id).digest('hex').slice(0, 16);
  const current = await inspectOrUndefined(docker, spec.name);
  if (current && !options.fresh && current.Config.Labels?.[AuditAppLabels.spec] === specHash && current.Image === image.Id) {
    if (current.State.Running) return 'kept';
    await docker.getContainer(spec.name).start();
    return 'started';
  }
  if (current) await docker.getContainer(spec.name).remove({ force: true });
  for (const p of ports) {
    if (!(await portIsFree(p))) throw new Error(`port ${p} on 127.0.0.1 is in use (wanted by ${spec.name}) — choose another port`);
  }
  const container = await docker.createContainer({ ...spec, Labels: { ...options.labels, ...spec.Labels, [AuditAppLabels.spec]: specHash } });
  await container.start();
  return 'created';
}

// ---- waiting ----------------------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';

/** Last lines of a container's output, on one line. */
export async function containerLogTail(docker: Docker, name: string, lines = 5): Promise<string> {
  try {
    const text = await tailLogs(docker, name, lines);
    return text === undefined ? `(no logs: no container ${name})` : text.trim().split('\n').join(' | ');
  } catch (err) {
    return `(no logs: ${firstLine(err)})`;
  }
}

/** The etl container's whole log, in order: every run of the pipeline (`docker exec`) writes its lines there too. */
export async function etlLog(docker: Docker, app: AuditApp): Promise<string[]> {
  const raw = await docker.getContainer(app.containers.etl).logs({ stdout: true, stderr: true, follow: false });
  return demultiplex(raw).toString('utf8').split('\n');
}

/**
 * How often each record of `years` was written in `log` (its `wrote record` lines), by `<county> <year> #<record>`:
 * how the tests and the bench see a record written twice, from the pipeline's own words.
 */
export function etlWrites(log: string[], years: number[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of log) {
    const wrote = EtlLogPatterns.wroteRecord.exec(line);
    if (!wrote || !years.includes(Number(wrote[2]))) continue;
    const key = `${wrote[1]} ${wrote[2]} #${wrote[3]}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Polls `probe` until it returns true; fails early, with the container's log, when the container stops. */
async function waitUntil(docker: Docker, container: string, what: string, withinMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + withinMs;
  let last = 'no answer';
  for (;;) {
    try {
      if (await probe()) return;
    } catch (err) {
      last = firstLine(err);
    }
    const info = await inspectOrUndefined(docker, container);
    if (!info?.State.Running) {
      throw new Error(`${container} ${info ? `exited (code ${info.State.ExitCode})` : 'is gone'} before ${what}: ${await containerLogTail(docker, container)}`);
    }
    if (Date.now() > deadline) throw new Error(`${what} within ${withinMs / 1000} s (last: ${last}): ${await containerLogTail(docker, container)}`);
    await sleep(250);
  }
}

/** PostgreSQL accepts a connection to audit_app and answers SELECT 1. */
export async function databaseAnswers(url: string, timeoutMs = 2_000): Promise<boolean> {
  const client = new PgClient({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } finally {
    await client.end().catch(() => {});
  }
}

function redisAnswers(url: string): Promise<boolean> {
  return withRedis(url, async (client) => (await client.ping()) === 'PONG', { connectTimeoutMs: 1_000 });
}

/** The status code of GET `url` and its JSON body (if any); throws when nothing answers. */
export async function httpGet(url: string, timeoutMs = 2_000): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) }).catch((err: Error & { cause?: Error }) => {
    // fetch says only "fetch failed"; the cause says why (connect ECONNREFUSED 127.0.0.1:18180).
    throw new Error(err.cause?.message ?? err.message, { cause: err });
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: response.status, body };
}

// ---- up, status, down -------------------------------------------------------------------------------------------

export interface StartedAuditApp extends AuditApp {
  /** What `up` did with each container. */
  actions: Record<AuditAppRole, 'kept' | 'started' | 'created'>;
  /** The backend's /health body once it answered 200. */
  health: unknown;
}

/**
 * Starts (or keeps) the four containers and resolves once PostgreSQL answers, the backend's /health is 200 and the
 * etl container's daemon has logged that it is ready.
 * The images must exist: call ensureAuditAppImages first. Failures name the container and end with its log.
 */
export async function startAuditApp(docker: Docker, options: AuditAppOptions = {}): Promise<StartedAuditApp> {
  const app = describeAuditApp(options);
  const specs = containerSpecs(app, options);
  const within = options.readyWithinMs ?? 90_000;
  const fresh = options.fresh ?? false;
  const actions = {} as Record<AuditAppRole, 'kept' | 'started' | 'created'>;
  const labels = options.labels;
  actions.redis = await ensureContainer(docker, specs.redis, [app.ports.redis], { fresh, labels });
  actions.postgres = await ensureContainer(docker, specs.postgres, [app.ports.postgres], { fresh, labels });
  await Promise.all([
    waitUntil(docker, app.containers.postgres, `PostgreSQL answers at ${app.urls.database}`, within, () => databaseAnswers(app.urls.database)),
    waitUntil(docker, app.containers.redis, `Redis answers PING at ${app.urls.redis}`, within, () => redisAnswers(app.urls.redis)),
  ]);
  actions.backend = await ensureContainer(docker, specs.backend, [app.ports.backend, app.ports.admin], { fresh, labels });
  actions.etl = await ensureContainer(docker, specs.etl, [], { fresh, labels });
  let health: unknown;
  const requireHealthy = options.requireHealthy ?? true;
  await Promise.all([
    waitUntil(docker, app.containers.backend, `${app.urls.health} answers${requireHealthy ? ' 200' : ''}`, within, async () => {
      const answer = await httpGet(app.urls.health);
      health = answer.body;
      if (requireHealthy && answer.status !== 200) throw new Error(`HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
      return true;
    }),
    waitUntil(docker, app.containers.etl, `${app.containers.etl} logs that its daemon is ready`, within, async () =>
      EtlLogPatterns.daemonReady.test(await containerLogTail(docker, app.containers.etl, 1_000)),
    ),
  ]);
  return { ...app, actions, health };
}

/** The app whose containers carry `prefix`, read from their labels; undefined when none exists. */
export async function findAuditApp(docker: Docker, prefix: string = DEFAULT_PREFIX): Promise<AuditApp | undefined> {
  const names = describeAuditApp({ prefix }).containers;
  for (const role of AUDIT_APP_ROLES) {
    const info = await inspectOrUndefined(docker, names[role]);
    const ports = info?.Config.Labels?.[AuditAppLabels.ports];
    if (!info || !ports) continue;
    const backend = role === 'backend' ? info : await inspectOrUndefined(docker, names.backend);
    const version = backend?.Config.Image.startsWith(`${backendImage('')}`) ? backend.Config.Image.slice(backendImage('').length) : undefined;
    const app = describeAuditApp({ prefix, ports: JSON.parse(ports) as AuditAppPorts, backendVersion: version });
    if (backend) app.images.backend = backend.Config.Image;
    return app;
  }
  return undefined;
}

export interface ContainerState {
  name: string;
  exists: boolean;
  state?: string;
  running?: boolean;
  exitCode?: number;
  image?: string;
  startedAt?: string;
}

export interface AuditAppStatus {
  app: AuditApp;
  containers: Record<AuditAppRole, ContainerState>;
  /** The backend's GET /health: its status code and body, or why nothing answered. */
  health: { status: number; body: unknown } | { error: string };
}

export async function auditAppStatus(docker: Docker, app: AuditApp): Promise<AuditAppStatus> {
  const containers = {} as Record<AuditAppRole, ContainerState>;
  for (const role of AUDIT_APP_ROLES) {
    const name = app.containers[role];
    const info = await inspectOrUndefined(docker, name);
    containers[role] = info
      ? { name, exists: true, state: info.State.Status, running: info.State.Running, exitCode: info.State.ExitCode, image: info.Config.Image, startedAt: info.State.StartedAt }
      : { name, exists: false };
  }
  const health = await httpGet(app.urls.health).catch((err: unknown) => ({ error: firstLine(err) }));
  return { app, containers, health };
}

/** Removes the app's containers, and the `-replaced-*` copies a rollback kept. Returns the names removed. */
export async function removeAuditApp(docker: Docker, prefix: string = DEFAULT_PREFIX): Promise<string[]> {
  const escaped = prefix.replace(/[.]/g, '\\.');
  const byName = await docker.listContainers({ all: true, filters: { name: [`^/${escaped}(backend|postgres|redis|etl)(-replaced-.*)?$`] } });
  const byLabel = await docker.listContainers({ all: true, filters: { label: [`${AuditAppLabels.app}=${prefix}`] } });
  const containers = new Map([...byName, ...byLabel].map((c) => [c.Id, (c.Names[0] ?? c.Id).replace(/^\//, '')]));
  await Promise.all(
    [...containers.keys()].map((id) =>
      docker
        .getContainer(id)
        .remove({ force: true, v: true })
        .catch((err: { statusCode?: number }) => {
          if (err.statusCode !== 404 && err.statusCode !== 409) throw err;
        }),
    ),
  );
  return [...containers.values()].sort();
}
