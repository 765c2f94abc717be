/**
 * Starting a deployment or a rollback of the backend (runbook "Deployment Procedures"): from the CLI or the HTTP API.
 * One at a time per target — both run under the target's workflow ID, `deploy-<container>`, with a conflict policy
 * that refuses a second while one runs, naming it.
 */
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { z } from 'zod';
import type { Config } from '../config/schema';
import type { DeployInput, DeploymentSetup, RollbackInput } from '../deployments/model';
import { procedures } from '../runbooks/catalog';
import { deployApprovalKinds, deploymentStatusQuery } from '../workflows/deploy/messages';
import { escalationPolicy, handOverSetup } from './route';

const version = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, 'an image tag: letters, digits, _ . - (max 128)');
const by = z.string().trim().min(1).max(100);
const reason = z.string().max(1000).optional();
export const DeployRequestSchema = z.strictObject({ version, by, reason });
export const RollbackRequestSchema = z.strictObject({ toVersion: version.optional(), by, reason });

/** Why a deployment cannot start: the request or the config is wrong, or one is running on that target already. */
export class DeploymentRefused extends Error {
  override readonly name = 'DeploymentRefused';
  constructor(
    message: string,
    readonly reason: 'invalid' | 'not-configured' | 'running',
  ) {
    super(message);
  }
}

/** The one deployment (or rollback) of the configured backend. */
export function deploymentWorkflowId(config: Pick<Config, 'targets'>): string {
  const backend = config.targets.backend;
  if (!backend) throw new DeploymentRefused('no backend target is configured (targets.backend): there is nothing to deploy to', 'not-configured');
  return `deploy-${backend.container}`;
}

/** Everything of a deployment's input the config decides. */
export function deploymentSetup(config: Config): DeploymentSetup {
  const backend = config.targets.backend;
  if (!backend) throw new DeploymentRefused('no backend target is configured (targets.backend)', 'not-configured');
  const { deploy } = config;
  const alertname = deploy.incidentAlert;
  const route = config.routing.alerts[alertname] ?? config.routing.fallback;
  return {
    container: backend.container,
    healthyWithinMs: backend.healthyWithin,
    migrations: deploy.migrate !== undefined,
    watchMs: deploy.watch,
    requireApproval: deploy.requireApproval,
    approveWithinMs: deploy.approveWithin,
    approvers: Object.fromEntries(deployApprovalKinds.map((kind) => [kind, config.approvers[kind] ?? []])),
    incident: { ...handOverSetup(alertname, config), escalation: escalationPolicy(route.defaultSeverity, config), alertname },
  };
}

function parse<T>(schema: z.ZodType<T>, raw: unknown): T {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new DeploymentRefused(`${issue.path.join('.') || 'request'}: ${issue.message}`, 'invalid');
}

export async function startDeploy(client: Client, config: Config, raw: unknown): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const request = parse(DeployRequestSchema, raw);
  const input: DeployInput = { ...deploymentSetup(config), request };
  return start(client, config, procedures.deploy.workflowType, input, `Deploy ${request.version} to ${input.container}, requested by ${request.by}`);
}

export async function startRollback(client: Client, config: Config, raw: unknown): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const request = parse(RollbackRequestSchema, raw);
  const input: RollbackInput = { ...deploymentSetup(config), request };
  const to = request.toVersion ?? 'the previous image';
  return start(client, config, procedures.rollback.workflowType, input, `Roll ${input.container} back to ${to}, requested by ${request.by}`);
}

async function start(client: Client, config: Config, workflowType: string, input: DeployInput | RollbackInput, summary: string) {
  const workflowId = deploymentWorkflowId(config);
  try {
    return await client.workflow.start(workflowType, {
      workflowId,
      taskQueue: config.temporal.taskQueue,
      args: [input],
      workflowIdConflictPolicy: 'FAIL',
      staticSummary: summary,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const running = await client.workflow.getHandle(workflowId).query(deploymentStatusQuery).catch(() => undefined);
    const what = running ? `${running.kind} of ${running.record.toVersion ?? running.record.version ?? '?'} by ${running.record.by}, ${running.phase}` : 'its status does not answer';
    throw new DeploymentRefused(`a deployment is already running on ${input.container}: ${workflowId} (${what}) — wait for it to finish`, 'running');
  }
}
