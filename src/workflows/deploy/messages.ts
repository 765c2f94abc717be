/**
 * The messages a deployment and a rollback answer to, shared with their clients (CLI, HTTP API, tests). Same rule as
 * the incidents' (lifecycle/definitions.ts): `approve` and `reject` (`{ "step", "by", "reason"? }`) exist as a
 * Signal and as an Update under one name; the query is `status`.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import type { DeploymentStatus } from '../../deployments/model';

export const deployApprovalKinds = ['approve-deploy', 'downgrade-database'] as const;

export const DeploymentDecisionSchema = z.strictObject({
  step: z.enum(deployApprovalKinds),
  by: z.string().trim().min(1).max(100),
  reason: z.string().max(1000).optional(),
});
export type DeploymentDecision = z.infer<typeof DeploymentDecisionSchema>;

export const deploymentVerbs = ['approve', 'reject'] as const;
export type DeploymentVerb = (typeof deploymentVerbs)[number];

export const deploymentSignals = {
  approve: defineSignal<[DeploymentDecision]>('approve'),
  reject: defineSignal<[DeploymentDecision]>('reject'),
};
export const deploymentUpdates = {
  approve: defineUpdate<DeploymentStatus, [DeploymentDecision]>('approve'),
  reject: defineUpdate<DeploymentStatus, [DeploymentDecision]>('reject'),
};
export const deploymentStatusQuery = defineQuery<DeploymentStatus>('status');

/** ApplicationFailure types the Updates fail with; the HTTP API and the CLI map them to status and exit codes. */
export const DeploymentRefusal = {
  invalidPayload: 'InvalidPayload',
  /** No approval of that kind is pending. */
  notNow: 'NoSuchPendingStep',
  notAnApprover: 'NotAnApprover',
} as const;
