/** `runbooks incidents` and `runbooks show <id>`: what is going on. */
import { Option, type Command } from 'commander';
import { z } from 'zod';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import {
  getIncident,
  IncidentOperationError,
  incidentStatusFilters,
  IncidentStatusFilterSchema,
  listIncidents,
} from '../../incidents/operations';
import type { IncidentOutcome, IncidentStatusView } from '../../incidents/model';
import { incidentListUiUrl, incidentUiUrl, temporalUiBase } from '../../temporal/uiLinks';
import * as attributes from '../../workflows/searchAttributes';
import { loadCliConfig, parseInput, withClient, WorkflowIdSchema } from '../context';
import { closedIncidentReport, incidentReport, incidentsTable, type ClosedIncident } from '../format';

const ListInputSchema = z.object({
  status: IncidentStatusFilterSchema,
  limit: z.coerce.number().int('a whole number').min(1, 'at least 1').max(10_000, 'at most 10000').default(200),
  json: z.boolean().default(false),
});

const ShowInputSchema = z.object({ id: WorkflowIdSchema, json: z.boolean().default(false) });

export function registerIncidentCommands(program: Command): void {
  program
    .command('incidents')
    .description("list incidents of this config's task queue and of its demo's, <queue>-demo (most recent first)")
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
      const shown = await withClient(config, (client) => showIncident(client, input.id));
      if (input.json) process.stdout.write(`${JSON.stringify('open' in shown ? shown.open : shown.closed, null, 2)}\n`);
      else {
        const ui = temporalUiBase(config);
        const links = ui ? { incident: incidentUiUrl(ui, config.temporal.namespace, input.id), openIncidents: incidentListUiUrl(ui, config, 'open') } : undefined;
        process.stdout.write(`${'open' in shown ? incidentReport(shown.open, links) : closedIncidentReport(shown.closed, links)}\n`);
      }
    });
}

/**
 * An open incident answers its status query. A closed one is read from Temporal instead (its result holds the
 * timeline): a query on a closed workflow needs a worker for its task queue, and would hang without one.
 */
async function showIncident(client: Client, workflowId: string): Promise<{ open: IncidentStatusView } | { closed: ClosedIncident }> {
  const handle = client.workflow.getHandle(workflowId);
  let description: Awaited<ReturnType<typeof handle.describe>>;
  try {
    description = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new IncidentOperationError('not-found', `no incident ${workflowId}`);
    throw err;
  }
  if (description.status.name === 'RUNNING') return { open: await getIncident(client, workflowId) };
  const sa = description.typedSearchAttributes;
  const outcome = description.status.name === 'COMPLETED' ? ((await handle.result()) as IncidentOutcome) : undefined;
  return {
    closed: {
      workflowId,
      closed: true,
      executionStatus: description.status.name,
      startTime: description.startTime.toISOString(),
      closeTime: description.closeTime?.toISOString(),
      runbook: sa.get(attributes.RunbookName),
      alertname: sa.get(attributes.AlertName),
      severity: sa.get(attributes.Severity),
      service: sa.get(attributes.Service),
      ...(outcome ? { outcome } : {}),
    },
  };
}
