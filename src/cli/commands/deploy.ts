/**
 * The runbook's Deployment Procedures on the configured backend: `runbooks deploy <version> [--wait]`, `runbooks
 * rollback [--to VERSION] [--wait]`, `runbooks deployment status | approve | reject --step S` (the running one) and
 * `runbooks deployments [--last N]` (the history, from Postgres).
 */
import { WorkflowFailedError, type Client } from '@temporalio/client';
import type { Command } from 'commander';
import { z } from 'zod';
import type { DeploymentOutcome, DeploymentRecord, DeploymentStatus } from '../../deployments/model';
import { decideDeployment, DeploymentOperationError, getDeployment } from '../../deployments/operations';
import { DeploymentRefused, deploymentWorkflowId, startDeploy, startRollback } from '../../intake/deploy';
import { redactUrl } from '../../logging/redact';
import { deployApprovalKinds } from '../../workflows/deploy/messages';
import { actorOrDefault, ActorNameSchema, loadCliConfig, NoteSchema, parseInput, withClient } from '../context';
import { CliError, firstLine } from '../errors';
import { loadDeploymentHistory } from '../lazy';

const StartInputSchema = z.object({ by: ActorNameSchema, reason: NoteSchema, wait: z.boolean().default(false) });
const DecisionInputSchema = z.object({ step: z.enum(deployApprovalKinds), by: ActorNameSchema, reason: NoteSchema });
const HistoryInputSchema = z.object({ last: z.coerce.number().int().min(1).max(1000).default(20), json: z.boolean().default(false) });

export function registerDeployCommands(program: Command): void {
  program
    .command('deploy')
    .description('deploy a version of the backend: image, migrations, switch, /health, watch; rolled back automatically on failure')
    .argument('<version>', 'the version (image tag) to deploy')
    .option('--by <who>', 'who deploys (default: your OS user name)')
    .option('--reason <text>', 'why, for the history')
    .option('--wait', 'wait for the result (exit 1 unless it succeeded)')
    .action(async (version: string, options: Record<string, unknown>, command: Command) => {
      const input = parseInput(StartInputSchema, { ...options, by: actorOrDefault(options.by) });
      await start(command, input.wait, (client, config) => startDeploy(client, config, { version, by: input.by, ...(input.reason ? { reason: input.reason } : {}) }));
    });

  program
    .command('rollback')
    .description('roll the backend back to the previous image, or --to a version of the deployment history')
    .option('--to <version>', 'the version to go back to (default: the runbooks.previous-image label)')
    .option('--by <who>', 'who rolls back (default: your OS user name)')
    .option('--reason <text>', 'why, for the history')
    .option('--wait', 'wait for the result (exit 1 unless it succeeded)')
    .action(async (options: Record<string, unknown>, command: Command) => {
      const input = parseInput(StartInputSchema, { ...options, by: actorOrDefault(options.by) });
      const to = typeof options.to === 'string' ? { toVersion: options.to } : {};
      await start(command, input.wait, (client, config) => startRollback(client, config, { ...to, by: input.by, ...(input.reason ? { reason: input.reason } : {}) }));
    });

  const running = program.command('deployment').description('the running deployment or rollback of the backend');
  running
    .command('status')
    .option('--json', 'as JSON')
    .action(async (options: Record<string, unknown>, command: Command) => {
      const { config } = loadCliConfig(command);
      const status = await withClient(config, (client) => operation(() => getDeployment(client, deploymentWorkflowId(config))));
      process.stdout.write(options.json ? `${JSON.stringify(status, null, 2)}\n` : describeStatus(status));
    });
  for (const verb of ['approve', 'reject'] as const) {
    running
      .command(verb)
      .description(`${verb} the step the deployment waits for (checked against approvers.<step>)`)
      .requiredOption('--step <step>', deployApprovalKinds.join(' or '))
      .option('--by <who>', 'who decides (default: your OS user name)')
      .option('--reason <text>', 'why')
      .action(async (options: Record<string, unknown>, command: Command) => {
        const input = parseInput(DecisionInputSchema, { ...options, by: actorOrDefault(options.by) });
        const { config } = loadCliConfig(command);
        await withClient(config, (client) =>
          operation(() => decideDeployment(client, deploymentWorkflowId(config), verb, { step: input.step, by: input.by, ...(input.reason ? { reason: input.reason } : {}) })),
        );
        process.stdout.write(`${verb === 'approve' ? 'approved' : 'rejected'} ${input.step} by ${input.by}\n`);
      });
  }

  program
    .command('deployments')
    .description('the deployment history: who, version, from, to, result, duration (newest first)')
    .option('--last <n>', 'how many (default 20)')
    .option('--json', 'as JSON')
    .action(async (options: Record<string, unknown>, command: Command) => {
      const input = parseInput(HistoryInputSchema, options);
      const { config } = loadCliConfig(command);
      const records = await loadDeploymentHistory().readDeploymentsOnce(config.audit.databaseUrl, config.audit.schema, { last: input.last }).catch((err: unknown) => {
        throw new CliError(`cannot read the deployment history at ${redactUrl(config.audit.databaseUrl)} (schema ${config.audit.schema}): ${firstLine(err)}`);
      });
      process.stdout.write(input.json ? `${JSON.stringify(records, null, 2)}\n` : records.map(describeRecord).join('') || 'no deployments yet\n');
    });
}

type Starter = (client: Client, config: ReturnType<typeof loadCliConfig>['config']) => Promise<{ workflowId: string; result(): Promise<unknown> }>;

async function start(command: Command, wait: boolean, begin: Starter): Promise<void> {
  const { config } = loadCliConfig(command);
  await withClient(config, async (client) => {
    const handle = await begin(client, config).catch((err: unknown) => {
      if (err instanceof DeploymentRefused) throw new CliError(err.message, err.reason === 'invalid' ? 2 : 1);
      throw err;
    });
    process.stdout.write(`started ${handle.workflowId}\n`);
    if (!wait) {
      process.stdout.write('  follow it: runbooks deployment status; the history: runbooks deployments\n');
      return;
    }
    const outcome = (await handle.result().catch((err: unknown) => {
      throw new CliError(`${handle.workflowId} failed: ${err instanceof WorkflowFailedError ? firstLine(err.cause) : firstLine(err)}`);
    })) as DeploymentOutcome;
    process.stdout.write(describeRecord(outcome.record) + (outcome.incident ? `  incident opened: ${outcome.incident}\n` : ''));
    if (outcome.record.result !== 'succeeded') throw new CliError(`${outcome.record.kind} ${outcome.record.result}${outcome.record.reason ? `: ${outcome.record.reason}` : ''}`);
  });
}

async function operation<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof DeploymentOperationError || err instanceof DeploymentRefused) throw new CliError(err.message, err instanceof DeploymentRefused && err.reason === 'invalid' ? 2 : 1);
    throw err;
  }
}

function describeRecord(r: DeploymentRecord): string {
  const duration = r.durationMs === undefined ? '' : ` in ${Math.round(r.durationMs / 1000)} s`;
  return `${r.startedAt}  ${r.kind.padEnd(8)} ${(r.toVersion ?? r.version ?? '?').padEnd(12)} ${r.result.padEnd(11)} by ${r.by}: ${r.fromImage ?? '?'} → ${r.toImage ?? '?'}${duration}${r.reason ? ` — ${r.reason}` : ''}\n`;
}

function describeStatus(s: DeploymentStatus): string {
  return [
    `${s.workflowId}: ${s.kind} ${s.phase} — ${s.record.fromImage ?? '?'} → ${s.record.toImage ?? s.record.version ?? '?'} (by ${s.record.by})`,
    ...(s.pendingApproval ? [`  waiting for ${s.pendingApproval.kind}: ${s.pendingApproval.question} — runbooks deployment approve --step ${s.pendingApproval.kind}`] : []),
    ...s.log.slice(-10).map((l) => `  ${l.at} ${l.by}: ${l.message}`),
  ].join('\n') + '\n';
}
