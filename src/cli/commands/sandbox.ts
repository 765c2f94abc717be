/**
 * `runbooks sandbox up|status|down|break`: the audit-app sandbox (PostgreSQL, a Node backend, Redis in containers
 * built from this machine's binaries) for a person to run runbooks against. The work is in src/sandbox/commands.ts;
 * this file parses options and prints.
 */
import { Argument, type Command } from 'commander';
import { z } from 'zod';
import type { AuditAppStatus } from '../../sandbox/auditApp';
import { AUDIT_APP_FAULTS as FAULTS, DEFAULT_PORTS as DEFAULTS, DEFAULT_PREFIX, EtlEnv } from '../../sandbox/auditApp/contract';
import { loadCliConfig, parseInput } from '../context';
import { CliError } from '../errors';
import { table } from '../format';
import { loadSandboxCommands } from '../lazy';


const port = z.coerce.number().int('a whole number').min(1, 'a TCP port').max(65535, 'a TCP port');
const count = z.coerce.number().int('a whole number').min(0, 'at least 0');
const prefix = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$/, 'letters, digits, _ . - (max 41), starting with a letter or digit').default(DEFAULT_PREFIX);

/** Where the sandbox lives: `sandbox up`, `demo` and `dev --sandbox` take the same options. */
export const SandboxPlaceSchema = z.object({
  prefix,
  backendPort: port.default(DEFAULTS.backend),
  adminPort: port.default(DEFAULTS.admin),
  postgresPort: port.default(DEFAULTS.postgres),
  redisPort: port.default(DEFAULTS.redis),
});
export type SandboxPlace = z.infer<typeof SandboxPlaceSchema>;

export function addSandboxPlaceOptions(command: Command, note = ''): Command {
  return command
    .option('--prefix <prefix>', `container name prefix${note}`, DEFAULT_PREFIX)
    .option('--backend-port <port>', `the API on 127.0.0.1${note}`, String(DEFAULTS.backend))
    .option('--admin-port <port>', `the backend's fault knobs on 127.0.0.1${note}`, String(DEFAULTS.admin))
    .option('--postgres-port <port>', `PostgreSQL on 127.0.0.1${note}`, String(DEFAULTS.postgres))
    .option('--redis-port <port>', `Redis on 127.0.0.1${note}`, String(DEFAULTS.redis));
}

export function sandboxPorts(place: SandboxPlace) {
  return { backend: place.backendPort, admin: place.adminPort, postgres: place.postgresPort, redis: place.redisPort };
}

const UpInputSchema = SandboxPlaceSchema.extend({
  poolSize: z.coerce.number().int('a whole number').min(1, 'at least 1').max(100, 'at most 100').default(5),
  rateLimit: z.coerce.number().int('a whole number').min(1, 'at least 1').default(120),
  backendVersion: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, 'an image tag such as 1.0.0').default('1.0.0'),
  etlPushgateway: z.url({ protocol: /^https?$/, error: 'an http(s) URL such as http://127.0.0.1:9091' }).optional(),
  fresh: z.boolean().default(false),
  json: z.boolean().default(false),
});
const StatusInputSchema = z.object({ prefix, json: z.boolean().default(false) });
const DownInputSchema = z.object({ prefix, engine: z.boolean().default(false) });
const BreakInputSchema = z.object({
  fault: z.enum(FAULTS),
  prefix,
  route: z.string().min(1).optional(),
  ms: count.optional(),
  count: count.optional(),
  sessions: count.optional(),
  seconds: count.optional(),
  exitCode: z.coerce.number().int().min(1, 'non-zero: it is a crash').max(255).optional(),
  ip: z.ipv4().or(z.ipv6()).optional(),
  json: z.boolean().default(false),
});

export function registerSandboxCommands(program: Command): void {
  const sandbox = program
    .command('sandbox')
    .description('the audit-app sandbox: PostgreSQL, a backend, Redis and an ETL job in containers, to run the runbooks against (needs Docker)');

  addSandboxPlaceOptions(
    sandbox
      .command('up')
      .description('build the images if needed, start the audit-app, wait for /health 200 and print the targets config (starts a private Docker engine if none answers)'),
  )
    .option('--pool-size <n>', "the backend's database pool size", '5')
    .option('--rate-limit <n>', 'requests per minute per client unless Redis says otherwise (config:rate_limit:limit)', '120')
    .option('--backend-version <version>', 'backend image version (built if missing)', '1.0.0')
    .option('--etl-pushgateway <url>', "a Prometheus Pushgateway the ETL pushes each run's times to (the alert rules' ETLJobFailed, ETLJobNotRunning)")
    .option('--fresh', 'replace the containers even if unchanged (a fresh database)')
    .option('--json', 'print the result as JSON')
    .action(async (options: Record<string, unknown>, command: Command) => {
      const input = parseInput(UpInputSchema, options);
      const { config } = loadCliConfig(command);
      const note = (line: string) => process.stderr.write(`${line}\n`);
      const result = await sandboxStep(() =>
        loadSandboxCommands().sandboxUp({
          dockerHost: config.docker.host,
          prefix: input.prefix,
          ports: sandboxPorts(input),
          poolSize: input.poolSize,
          rateLimit: input.rateLimit,
          backendVersion: input.backendVersion,
          ...(input.etlPushgateway ? { etlEnv: { [EtlEnv.pushgatewayUrl]: input.etlPushgateway } } : {}),
          fresh: input.fresh,
          log: input.json ? () => {} : note,
        }),
      );
      if (input.json) {
        process.stdout.write(`${JSON.stringify({ engine: result.engine, built: result.built, app: result.app, targets: result.targets }, null, 2)}\n`);
        return;
      }
      note(`audit-app is up: ${result.app.urls.health} answers 200 (version ${(result.app.health as { version?: string }).version ?? '?'})`);
      process.stdout.write(result.targetsYaml);
    });

  sandbox
    .command('status')
    .description("each container's state and the backend's /health")
    .option('--prefix <prefix>', 'container name prefix', DEFAULT_PREFIX)
    .option('--json', 'print the status as JSON')
    .action(async (options: Record<string, unknown>, command: Command) => {
      const input = parseInput(StatusInputSchema, options);
      const { config } = loadCliConfig(command);
      const status = await sandboxStep(() => loadSandboxCommands().sandboxStatus({ dockerHost: config.docker.host, prefix: input.prefix }));
      process.stdout.write(input.json ? `${JSON.stringify(status, null, 2)}\n` : statusText(status));
    });

  sandbox
    .command('down')
    .description('remove the audit-app containers (and any -replaced-* a rollback kept)')
    .option('--prefix <prefix>', 'container name prefix', DEFAULT_PREFIX)
    .option('--engine', 'also stop the private Docker engine `sandbox up` started (by the PID in .runbooks/docker/dockerd.pid)')
    .action(async (options: Record<string, unknown>, command: Command) => {
      const input = parseInput(DownInputSchema, options);
      const { config } = loadCliConfig(command);
      const result = await sandboxStep(() => loadSandboxCommands().sandboxDown({ dockerHost: config.docker.host, prefix: input.prefix, stopEngine: input.engine }));
      process.stdout.write(result.removed.length ? `removed ${result.removed.join(', ')}\n` : `no ${input.prefix}* containers to remove\n`);
      if (input.engine) {
        process.stdout.write(
          result.stoppedEnginePid ? `stopped the private Docker engine (dockerd pid ${result.stoppedEnginePid})\n` : 'no private Docker engine was running\n',
        );
      }
    });

  sandbox
    .command('break')
    .description(`break the audit-app for real: ${FAULTS.join(', ')}`)
    .addArgument(new Argument('<fault>', 'what to break').choices(FAULTS))
    .option('--prefix <prefix>', 'container name prefix', DEFAULT_PREFIX)
    .option('--route <route>', 'slow-route: the route, or "*" for every /api route (default /api/v1/documents)')
    .option('--ms <ms>', "slow-route: milliseconds added (default 1500); etl-rate-limited: the source's minimum delay between records (default 200)")
    .option('--count <n>', 'leak-connections: pool connections to leak (default: the whole pool); etl-crash: records written before the crash (default 5); brute-force: failed logins (default 30)')
    .option('--sessions <n>', 'idle-in-transaction: sessions to hold (default 3)')
    .option('--seconds <s>', 'slow-query: how long pg_sleep runs (default 600)')
    .option('--exit-code <code>', 'backend-crash: the exit code (default 1)')
    .option('--ip <address>', 'brute-force: the client the failed logins come from (default 203.0.113.66)')
    .option('--json', 'print the result as JSON')
    .action(async (fault: string, options: Record<string, unknown>, command: Command) => {
      const input = parseInput(BreakInputSchema, { ...options, fault }, ['fault']);
      const { config } = loadCliConfig(command);
      const result = await sandboxStep(() => loadSandboxCommands().sandboxBreak({ dockerHost: config.docker.host, ...input }));
      process.stdout.write(input.json ? `${JSON.stringify(result, null, 2)}\n` : `${result.fault}: ${result.description}\n`);
    });
}

/** Failures of the sandbox are one line already: print them as they are. */
export async function sandboxStep<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (err instanceof Error && err.name === 'SandboxError') throw new CliError(err.message);
    throw err;
  }
}

function statusText(status: AuditAppStatus & { engine: { dockerHost: string } }): string {
  const { app } = status;
  const where = { backend: app.urls.api, postgres: app.urls.database, redis: app.urls.redis, etl: `docker exec ${app.containers.etl} ${app.etl.program.join(' ')} …` };
  const rows = (['backend', 'postgres', 'redis', 'etl'] as const).map((role) => {
    const c = status.containers[role];
    const state = !c.exists ? 'missing' : c.running ? 'running' : `${c.state} (exit code ${c.exitCode})`;
    return [role, c.name, state, c.image ?? '-', where[role]];
  });
  const health = 'error' in status.health ? `no answer (${status.health.error})` : `${status.health.status} ${JSON.stringify(status.health.body)}`;
  return `${table(['ROLE', 'CONTAINER', 'STATE', 'IMAGE', 'LISTENS'], rows)}\nhealth  ${app.urls.health} → ${health}\ndocker  ${status.engine.dockerHost}\n`;
}
