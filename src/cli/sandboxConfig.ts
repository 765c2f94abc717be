/**
 * The configuration `runbooks demo` and `runbooks dev --sandbox` run with: the loaded one, pointed at the audit-app
 * sandbox (its targets, and its Docker engine when that is not the default one), with one more approver for the
 * kinds that need one, and any policy overrides.
 */
import { ConfigSchema, type Config, type ConfigInput } from '../config/schema';
import type { ApprovalKind, PolicyValue, RunbookName } from '../runbooks/catalog';
import { SANDBOX_DEPLOY } from '../sandbox/auditApp/contract';

export interface SandboxConfigInput {
  /** What `auditAppTargets` returns: `targets`, and `docker.host` for a private engine. */
  sandbox: Pick<ConfigInput, 'targets' | 'docker'>;
  approver: string;
  kinds: readonly ApprovalKind[];
  policies?: Partial<Record<RunbookName, Record<string, PolicyValue>>>;
}

export function pointAtSandbox(config: Config, { sandbox, approver, kinds, policies = {} }: SandboxConfigInput): Config {
  const approvers = { ...config.approvers };
  for (const kind of kinds) approvers[kind] = [...new Set([...(approvers[kind] ?? []), approver])];
  const merged: Record<string, unknown> = { ...config.policies };
  for (const [runbook, values] of Object.entries(policies)) merged[runbook] = { ...config.policies[runbook as RunbookName], ...values };
  return {
    ...config,
    docker: { ...config.docker, ...(sandbox.docker?.host ? { host: sandbox.docker.host } : {}) },
    targets: ConfigSchema.shape.targets.parse(sandbox.targets),
    approvers,
    policies: ConfigSchema.shape.policies.parse(merged),
    // Deployments of the sandbox's backend: its own build and migrations, unless the config names others.
    deploy: { ...config.deploy, build: config.deploy.build ?? SANDBOX_DEPLOY.build, migrate: config.deploy.migrate ?? SANDBOX_DEPLOY.migrate },
  };
}
