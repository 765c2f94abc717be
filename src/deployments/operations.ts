/** A running deployment seen and steered from outside (CLI, HTTP API): its status, and approve / reject as Updates. */
import type { Client } from '@temporalio/client';
import { DeploymentRefusal, deploymentStatusQuery, deploymentUpdates, type DeploymentDecision, type DeploymentVerb } from '../workflows/deploy/messages';
import { asRefusal } from '../temporal/errors';
import type { DeploymentStatus } from './model';

export type DeploymentOperationReason = 'not-found' | 'not-now' | 'not-an-approver' | 'invalid';

export class DeploymentOperationError extends Error {
  override readonly name = 'DeploymentOperationError';
  constructor(
    readonly reason: DeploymentOperationReason,
    message: string,
  ) {
    super(message);
  }
}

const reasons: Record<string, DeploymentOperationReason> = {
  [DeploymentRefusal.notNow]: 'not-now',
  [DeploymentRefusal.notAnApprover]: 'not-an-approver',
  [DeploymentRefusal.invalidPayload]: 'invalid',
};

export async function getDeployment(client: Client, workflowId: string): Promise<DeploymentStatus> {
  try {
    return await client.workflow.getHandle(workflowId).query(deploymentStatusQuery);
  } catch (err) {
    throw translate(err, workflowId);
  }
}

export async function decideDeployment(client: Client, workflowId: string, verb: DeploymentVerb, decision: DeploymentDecision): Promise<DeploymentStatus> {
  try {
    return await client.workflow.getHandle(workflowId).executeUpdate(deploymentUpdates[verb], { args: [decision] });
  } catch (err) {
    throw translate(err, workflowId);
  }
}

function translate(err: unknown, workflowId: string): unknown {
  return asRefusal(err, reasons, (reason, message) => new DeploymentOperationError(reason, message), `no deployment is running (${workflowId})`);
}
