/**
 * `runbooks schedules apply | list`: the Temporal Schedules of the config's `schedules` section (the monitoring
 * checklists). `apply` creates the missing ones, updates the changed ones and deletes this deployment's schedules the
 * config no longer has — idempotently, so it belongs in a deploy step; `list` shows each against the config.
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { configuredSchedules } from '../../intake/schedules';
import { describeSchedules, ensureSchedules, type ScheduleView } from '../../temporal/schedules';
import { loadCliConfig, parseInput, withClient } from '../context';
import { table } from '../format';

const JsonInputSchema = z.object({ json: z.boolean().default(false) });

export function registerScheduleCommands(program: Command): void {
  const schedules = program.command('schedules').description('the Temporal Schedules of the config (schedules: the monitoring checklists)');

  schedules
    .command('apply')
    .description('create, update and delete the schedules so Temporal has exactly what the config says (idempotent)')
    .option('--json', 'print what changed as JSON')
    .action(async (options: Record<string, unknown>, command: Command) => {
      const { json } = parseInput(JsonInputSchema, options);
      const { config } = loadCliConfig(command);
      const changes = await withClient(config, (client) => ensureSchedules(client, config.temporal.taskQueue, configuredSchedules(config)));
      if (json) return void process.stdout.write(`${JSON.stringify(changes)}\n`);
      const lines = (['created', 'updated', 'deleted', 'unchanged'] as const).flatMap((what) => changes[what].map((id) => `${what.padEnd(9)} ${id}\n`));
      process.stdout.write(lines.length > 0 ? lines.join('') : 'no schedules configured, none to delete\n');
    });

  schedules
    .command('list')
    .description("this deployment's schedules against the config: applied, differs, not-applied, not-configured; next runs and the last one")
    .option('--json', 'print them as JSON')
    .action(async (options: Record<string, unknown>, command: Command) => {
      const { json } = parseInput(JsonInputSchema, options);
      const { config } = loadCliConfig(command);
      const views = await withClient(config, (client) => describeSchedules(client, config.temporal.taskQueue, configuredSchedules(config)));
      if (json) return void process.stdout.write(`${JSON.stringify(views, null, 2)}\n`);
      process.stdout.write(views.length > 0 ? `${schedulesTable(views)}\n` : 'no schedules\n');
    });
}

function schedulesTable(views: ScheduleView[]): string {
  return table(
    ['SCHEDULE', 'STATE', 'WORKFLOW', 'TIME ZONE', 'NEXT RUN', 'LAST RUN'],
    views.map((v) => [v.scheduleId, v.state, v.workflowType ?? '-', v.spec?.timeZone ?? '-', v.nextRuns[0] ?? '-', v.lastRun ? `${v.lastRun.at} ${v.lastRun.workflowId}` : '-']),
  );
}
