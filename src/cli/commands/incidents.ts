/** `runbooks incidents` and `runbooks show <id>`: what is going on. */
import { Option, type Command } from 'commander';
import { z } from 'zod';
import { getIncident, incidentStatusFilters, IncidentStatusFilterSchema, listIncidents } from '../../incidents/operations';
import { loadCliConfig, parseInput, withClient, WorkflowIdSchema } from '../context';
import { incidentReport, incidentsTable } from '../format';

const ListInputSchema = z.object({
  status: IncidentStatusFilterSchema,
  limit: z.coerce.number().int('a whole number').min(1, 'at least 1').max(10_000, 'at most 10000').default(200),
  json: z.boolean().default(false),
});

const ShowInputSchema = z.object({ id: WorkflowIdSchema, json: z.boolean().default(false) });

export function registerIncidentCommands(program: Command): void {
  program
    .command('incidents')
    .description('list incidents (most recent first)')
    .addOption(new Option('--status <status>', `which incidents: ${incidentStatusFilters.join(', ')}`).default('open'))
    .option('--limit <n>', 'list at most this many', '200')
    .option('--json', 'print JSON instead of a table')
    .action(async (options: Record<string, unknown>, command: Command) => {
      const input = parseInput(ListInputSchema, options);
      const { config } = loadCliConfig(command);
      const incidents = await withClient(config, (client) => listIncidents(client, config.temporal.taskQueue, input.status, input.limit));
      if (input.json) process.stdout.write(`${JSON.stringify(incidents, null, 2)}\n`);
      else if (incidents.length === 0) process.stdout.write(`no ${input.status === 'all' ? '' : `${input.status} `}incidents\n`);
      else process.stdout.write(`${incidentsTable(incidents)}\n`);
    });

  program
    .command('show')
    .description("an incident's status, pending approvals and timeline")
    .argument('<id>', 'workflow ID of the incident, e.g. APIDown-a1ebaf6b84df2c5a')
    .option('--json', 'print the status view as JSON')
    .action(async (id: string, options: Record<string, unknown>, command: Command) => {
      const input = parseInput(ShowInputSchema, { ...options, id }, ['id']);
      const { config } = loadCliConfig(command);
      const view = await withClient(config, (client) => getIncident(client, input.id));
      process.stdout.write(input.json ? `${JSON.stringify(view, null, 2)}\n` : `${incidentReport(view)}\n`);
    });
}
