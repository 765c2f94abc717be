/**
 * `runbooks diag <name>`: the runbook's "Useful Commands", run on the configured targets by the same activities
 * the runbooks use (called in-process here, not through Temporal). `--json` prints what the activity returned.
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { dockerClient } from '../../activities';
import { createDockerActivities } from '../../activities/docker';
import { createPostgresActivities } from '../../activities/postgres';
import { createRedisActivities } from '../../activities/redis';
import type { Config } from '../../config/schema';
import type { TargetName } from '../../runbooks/catalog';
import { loadCliConfig, parseInput } from '../context';
import { CliError, ExitCode, firstLine } from '../errors';
import { table } from '../format';

const JsonSchema = z.object({ json: z.boolean().default(false) });
const ClearSchema = z.object({ yes: z.literal(true, { message: 'clearing the cache drops every key of the Redis database: confirm with --yes' }) });
const StatsSchema = z.object({ target: z.enum(['backend', 'redis', 'postgres']).optional() });

interface Diagnostic {
  name: string;
  description: string;
  options?: (command: Command) => Command;
  /** Validates its options and runs; returns what --json prints and the text printed otherwise. */
  run(config: Config, options: Record<string, unknown>): Promise<{ value: unknown; text: string }>;
}

function activities(config: Config) {
  const docker = dockerClient(config.docker.host);
  return { docker: createDockerActivities(docker, config), postgres: createPostgresActivities(config, docker), redis: createRedisActivities(config) };
}

const diagnostics: Diagnostic[] = [
  {
    name: 'db-size',
    description: "the application database's size (pg_database_size)",
    async run(config) {
      const size = await activities(config).postgres.databaseSize({ target: 'postgres' });
      return { value: size, text: `${size.database}: ${size.pretty} (${size.bytes} bytes)` };
    },
  },
  {
    name: 'stats',
    description: 'docker stats --no-stream of the configured targets (or --target NAME)',
    options: (c) => c.option('--target <name>', 'backend, redis or postgres'),
    async run(config, options) {
      const { target } = parseInput(StatsSchema, options);
      const names = target ? [target] : (['backend', 'redis', 'postgres'] as TargetName[]).filter((t) => config.targets[t]);
      const { docker } = activities(config);
      const stats = await Promise.all(names.map((t) => docker.containerStats({ target: t })));
      const rows = stats.map((s) => [s.name, s.running ? 'running' : 'not running', s.cpuPercent === undefined ? '-' : `${s.cpuPercent}%`, mib(s.memoryBytes), mib(s.memoryLimitBytes)]);
      return { value: stats, text: table(['CONTAINER', 'STATE', 'CPU', 'MEM MiB', 'LIMIT MiB'], rows) };
    },
  },
  {
    name: 'rate-limits',
    description: 'rate_limit:* keys in Redis (SCAN, never KEYS) and the busiest clients',
    async run(config) {
      const status = await activities(config).redis.rateLimitStatus({ target: 'redis' });
      const rows = status.top.map((t) => [t.key, String(t.count)]);
      return { value: status, text: `${status.keys} rate_limit:* key(s)${status.truncated ? ' (scan stopped early)' : ''}\n${table(['KEY', 'COUNT'], rows)}` };
    },
  },
  {
    name: 'cache-clear',
    description: 'FLUSHDB of the Redis target (asks for --yes)',
    options: (c) => c.option('--yes', 'really drop every key'),
    async run(config, options) {
      parseInput(ClearSchema, options);
      const result = await activities(config).redis.flushRedisDb({ target: 'redis' });
      return { value: result, text: `flushed: ${result.keysDropped} key(s) dropped` };
    },
  },
  {
    name: 'backup',
    description: 'pg_dump -Fc in the postgres container; the dump becomes the one a restore uses',
    async run(config) {
      const backup = await activities(config).postgres.exportBackup({ target: 'postgres' });
      return { value: backup, text: `${backup.file} (${backup.bytes} bytes) in the container, copied to ${backup.backupFile}` };
    },
  },
];

export function registerDiagCommands(program: Command): void {
  const diag = program.command('diag').description("the runbook's useful commands, on the configured targets");
  for (const d of diagnostics) {
    const command = diag.command(d.name).description(d.description).option('--json', 'print JSON');
    d.options?.(command);
    command.action(async (options: Record<string, unknown>, cmd: Command) => {
      const { json } = parseInput(JsonSchema.loose(), options);
      const { config } = loadCliConfig(cmd);
      const { value, text } = await d.run(config, options).catch((err: unknown) => {
        throw err instanceof CliError ? err : new CliError(`diag ${d.name}: ${firstLine(err)}`, ExitCode.failed);
      });
      process.stdout.write(`${json ? JSON.stringify(value, null, 2) : text}\n`);
    });
  }
}

function mib(bytes: number | undefined): string {
  return bytes === undefined ? '-' : String(Math.round(bytes / 1_048_576));
}
