/**
 * What a deployment and a rollback are — the runbook's "Deployment Procedures" — shared by their workflows, their
 * activities and their clients (CLI, HTTP API, tests). Pure types only: safe in workflows.
 */
import type { HandOverSetup } from '../incidents/model';

export type DeploymentKind = 'deploy' | 'rollback';
export type DeploymentResult = 'running' | 'succeeded' | 'rolled-back' | 'failed' | 'refused';
export type DeployApprovalKind = 'approve-deploy' | 'downgrade-database';

/** What the config decides about every deployment of the backend, resolved at intake (a workflow cannot read the config). */
export interface DeploymentSetup {
  /** The backend's container, for messages; the worker acts on `targets.backend` by name. */
  container: string;
  /** How long /health may take to answer 200 after the container is recreated. */
  healthyWithinMs: number;
  /** A migration step is configured (`deploy.migrate`). */
  migrations: boolean;
  watchMs: number;
  requireApproval: boolean;
  approveWithinMs: number;
  approvers: Partial<Record<DeployApprovalKind, string[]>>;
  /** How the incident a failed deployment opens starts (the config's route of `deploy.incidentAlert`). */
  incident: HandOverSetup & { alertname: string };
}

export interface DeployRequest {
  version: string;
  by: string;
  reason?: string;
}

export interface RollbackRequest {
  /** A version from the deployment history (or an existing tag); absent: the image in `runbooks.previous-image`. */
  toVersion?: string;
  by: string;
  reason?: string;
}

export interface DeployInput extends DeploymentSetup {
  request: DeployRequest;
}

export interface RollbackInput extends DeploymentSetup {
  request: RollbackRequest;
}

/** One row of the deployment history (Postgres `deployments`), keyed by the workflow ID. */
export interface DeploymentRecord {
  id: string;
  kind: DeploymentKind;
  target: string;
  by: string;
  /** The version asked for (a deploy's version, a rollback's --to). */
  version?: string;
  fromImage?: string;
  fromVersion?: string;
  toImage?: string;
  toVersion?: string;
  /** Schema revisions before and after (when migrations are configured). */
  fromRevision?: number;
  toRevision?: number;
  result: DeploymentResult;
  reason?: string;
  startedAt: string;
  finishedAt?: string;
  durationMs?: number;
}

export type DeploymentPhase = 'preparing' | 'awaiting-approval' | 'migrating' | 'switching' | 'verifying' | 'watching' | 'compensating' | 'done';

/** Answer of the `status` query, and what the Updates return. */
export interface DeploymentStatus {
  workflowId: string;
  kind: DeploymentKind;
  phase: DeploymentPhase;
  record: DeploymentRecord;
  /** The approval the deployment waits for, if any. */
  pendingApproval?: { kind: DeployApprovalKind; question: string };
  /** What happened, one line each (also on the history's `reason` when it failed). */
  log: { at: string; by: string; message: string }[];
  /** The incident a failed deployment opened. */
  incident?: string;
}

export type DeploymentOutcome = Pick<DeploymentStatus, 'record' | 'incident'>;

/** `<repository>:<version>` of a version; the tag of an image. */
export function versionOf(image: string | undefined): string | undefined {
  if (!image) return undefined;
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > slash ? image.slice(colon + 1) : undefined;
}

export function repositoryOf(image: string): string {
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > slash ? image.slice(0, colon) : image;
}
