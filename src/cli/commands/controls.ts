/**
 * `runbooks hands-off on|off [--runbook R] [--reason …]`, `runbooks status` and `runbooks dry-run`. The switch is written to the audit
 * trail's Postgres (as `PUT /controls` writes it) and then signalled to the open incidents it concerns; whoever
 * reaches Postgres and Temporal is trusted as an operator, as with the other CLI actions.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { Pool } from 'pg';
import pino from 'pino';
import { z } from 'zod';
import { migrateAuditSchema } from '../../audit/migrate';
import type { Config } from '../../config/schema';
import { signalOpenIncidents, writeHandsOff } from '../../controls/handsOff';
import type { HandsOffSwitch } from '../../controls/model';
import { dryRun, type DryRunPlan } from '../../controls/dryRun';
import { deploymentStatus, type DeploymentStatus } from '../../controls/status';
import { AlertSchema, type Alert } from '../../intake/alertmanager';
import { CliError, ExitCode } from '../errors';
import { runbookNames } from '../../runbooks/catalog';
import { actorOrDefault, ActorNameSchema, loadCliConfig, parseInput, withClient } from '../context';

const HandsOffInputSchema = z.object({
  state: z.enum(['on', 'off'], "'on' or 'off'"),
  runbook: z.enum(runbookNames, `one of ${runbookNames.join(', ')}`).optional(),
  reason: z.string().trim().min(1, 'must not be empty').max(1000, 'at most 1000 characters').optional(),
  by: ActorNameSchema,
});
const StatusInputSchema = z.object({ json: z.boolean().default(false) });
const DryRunInputSchema = z.object({
  file: z.string().min(1).optional(),
  alertname: z.string().trim().min(1, 'must not be empty').max(200, 'at most 200 characters').optional(),
  label: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*=.*$/, 'k=v, a label name then =')).default([]),
  json: z.boolean().default(false),
});

export function registerControlCommands(program: Command): void {
  program
    .command('hands-off')
    .description('turn the hands-off switch on or off: while on, incidents diagnose, notify and escalate, but start no remediation (they record what they would have done)')
    .argument('<state>', 'on or off')
    .option('--runbook <name>', "this runbook's switch only (default: the global switch)")
    .option('--reason <text>', 'why, kept with the change and shown on the incidents')
    .option('--by <who>', 'who changes it (default: your OS user name)')
    .action(async (state: string, options: Record<string, unknown>, command: Command) => {
      const input = parseInput(HandsOffInputSchema, { ...options, state, by: actorOrDefault(options.by) }, ['state']);
      const { config } = loadCliConfig(command);
      const change: HandsOffSwitch = { scope: input.runbook ?? 'global', on: input.state === 'on', by: input.by, at: new Date().toISOString(), ...(input.reason ? { reason: input.reason } : {}) };
      await withAuditPool(config, (pool) => writeHandsOff(pool, config.audit.schema, change));
      const { signalled, failed } = await withClient(config, (client) => signalOpenIncidents(client, config.temporal.taskQueue, change));
      const scope = change.scope === 'global' ? 'global hands-off' : `hands-off for ${change.scope}`;
      process.stdout.write(
        `${scope} ${input.state} (by ${change.by}${change.reason ? `: ${change.reason}` : ''}); ${signalled.length} open incident(s) told` +
          `${failed.length ? `, ${failed.length} not reached (they read the switch before their next step): ${failed.join(', ')}` : ''}\n`,
      );
    });

  program
    .command('status')
    .description('open incidents by phase and severity, pending approvals, the hands-off switches, workers and Temporal')
    .option('--json', 'print JSON instead of text')
    .action(async (options: Record<string, unknown>, command: Command) => {
      const input = parseInput(StatusInputSchema, options);
      const { config } = loadCliConfig(command);
      const status = await withAuditPool(config, (pool) => withClient(config, (client) => deploymentStatus(client, config.temporal.taskQueue, pool, config.audit.schema)));
      process.stdout.write(input.json ? `${JSON.stringify(status, null, 2)}\n` : `${statusText(status, config.temporal.taskQueue)}\n`);
    });
}

/** The alert of `dry-run`: a file holding one Alertmanager alert, or one made of --alertname and --label k=v. */
function syntheticAlert(input: z.infer<typeof DryRunInputSchema>): Alert {
  if (input.file && input.alertname) throw new CliError('give an alert file or --alertname, not both', ExitCode.usage);
  let raw: unknown;
  if (input.file) {
    try {
      raw = JSON.parse(readFileSync(input.file, 'utf8'));
    } catch (err) {
      throw new CliError(`<alert.json>: cannot read ${input.file}: ${(err as Error).message}`, ExitCode.usage);
    }
  } else if (input.alertname) {
    const labels = Object.fromEntries(input.label.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    raw = { status: 'firing', labels: { ...labels, alertname: input.alertname }, startsAt: new Date().toISOString(), fingerprint: randomBytes(8).toString('hex') };
  } else {
    throw new CliError('give an alert file (one Alertmanager alert as JSON) or --alertname A [--label k=v …]', ExitCode.usage);
  }
  const alert = AlertSchema.safeParse(raw);
  if (!alert.success) throw new CliError(`the alert: ${alert.error.issues.map((i) => `${i.path.join('.') || '(alert)'}: ${i.message}`).join('; ')}`, ExitCode.usage);
  return alert.data;
}

function planText(plan: DryRunPlan): string {
  return [
    `Dry run of ${plan.runbook} (${plan.workflowId}; nothing was changed, nobody was paged):`,
    ...plan.timeline.map((e) => `  ${e.kind.padEnd(18)} ${e.message}`),
    plan.pages.length ? 'Would page:' : 'Would page nobody.',
    ...plan.pages.map((p) => `  ${p.contacts.join(', ')}: ${p.text}`),
    plan.phase === 'resolved'
      ? 'It would close without changing anything.'
      : 'It stops at its first change or approval: what follows depends on that step’s result.',
  ].join('\n');
}

export function registerDryRunCommand(program: Command): void {
  program
    .command('dry-run')
    .description("run an alert's runbook without changing anything: real diagnosis, then the first change or approval it would make, and who it would page")
    .argument('[alert.json]', 'one Alertmanager alert as JSON (as in a webhook payload\'s alerts[])')
    .option('--alertname <name>', 'instead of a file: the alert name')
    .option('--label <k=v>', 'a label of the alert (repeat it)', (value: string, all: string[] = []) => [...all, value])
    .option('--json', 'print the plan as JSON')
    .action(async (file: string | undefined, options: Record<string, unknown>, command: Command) => {
      const input = parseInput(DryRunInputSchema, { ...options, ...(file ? { file } : {}) }, ['file']);
      const alert = syntheticAlert(input);
      const { config } = loadCliConfig(command);
      const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' }, pino.destination(2));
      const plan = await withClient(config, (client) => dryRun({ client, config, logger, workflowBundlePath: process.env.RUNBOOKS_WORKFLOW_BUNDLE || undefined }, alert));
      process.stdout.write(input.json ? `${JSON.stringify(plan, null, 2)}\n` : `${planText(plan)}\n`);
    });
}

/** A short-lived pool on the audit database, its schema brought up to date first (the switch's table may be new). */
async function withAuditPool<T>(config: Config, use: (pool: Pool) => Promise<T>): Promise<T> {
  await migrateAuditSchema(config.audit.databaseUrl, config.audit.schema);
  const pool = new Pool({ connectionString: config.audit.databaseUrl, max: 1, connectionTimeoutMillis: 5_000 });
  try {
    return await use(pool);
  } finally {
    await pool.end();
  }
}

function statusText(status: DeploymentStatus, taskQueue: string): string {
  const counts = (byKey: Record<string, number>) => Object.entries(byKey).map(([key, n]) => `${key} ${n}`).join(', ') || 'none';
  const switches = 'error' in status.handsOff ? [] : status.handsOff.switches.filter((s) => s.on);
  return [
    `Temporal: reachable${status.temporal.serverVersion ? ` (server ${status.temporal.serverVersion})` : ''}`,
    `Workers on ${taskQueue}: ${status.workers.length === 0 ? 'none polling — incidents will not progress' : status.workers.map((w) => w.identity).join(', ')}`,
    'error' in status.handsOff
      ? `Hands-off: unknown (${status.handsOff.error})`
      : `Hands-off: ${switches.length === 0 ? 'off' : switches.map((s) => `on for ${s.scope} (by ${s.by} at ${s.at}${s.reason ? `: ${s.reason}` : ''})`).join('; ')}`,
    `Open incidents: ${status.incidents.open}`,
    `  by phase: ${counts(status.incidents.byPhase)}`,
    `  by severity: ${counts(status.incidents.bySeverity)}`,
    `Pending approvals: ${status.pendingApprovals.length === 0 ? 'none' : ''}`,
    ...status.pendingApprovals.map((p) => `  ${p.workflowId} step ${p.step} (${p.approvers.join(', ')}): ${p.question}`),
  ].join('\n');
}
