import type { Config } from '../config/schema';
import type { EscalationPolicy, HandOverSetup, IncidentInput, IncidentTargets, ProcedureSetups, SecuritySetup, Severity } from '../incidents/model';
import { catalog, handOversOf, policyOf, proceduresOf, settingsOf, type ProcedureName, type RunbookName } from '../runbooks/catalog';
import type { Alert } from './alertmanager';
import { backfillSetup } from './backfill';

export interface RoutedAlert {
  workflowId: string;
  workflowType: string;
  input: IncidentInput;
  /** One line for the Temporal UI's workflow list. */
  summary: string;
}

const severityAliases: Record<string, Severity> = {
  critical: 'critical',
  high: 'high',
  medium: 'medium',
  low: 'low',
  warning: 'medium',
  info: 'low',
};

/** Readable and deterministic: the same alert always maps to the same incident, e.g. `APIDown-a1ebaf6b84df2c5a`. */
export function incidentWorkflowId(alertname: string, fingerprint: string): string {
  const readable = alertname.replace(/[^A-Za-z0-9_.:-]/g, '_').slice(0, 100);
  return `${readable}-${fingerprint}`;
}

export function routeAlert(alert: Alert, config: Config): RoutedAlert {
  const alertname = alert.labels.alertname!;
  // Own properties only: an alertname such as "constructor" must not find Object.prototype.
  const route = Object.hasOwn(config.routing.alerts, alertname) ? config.routing.alerts[alertname]! : config.routing.fallback;
  const label = (alert.labels.severity ?? '').toLowerCase();
  const severity = Object.hasOwn(severityAliases, label) ? severityAliases[label]! : route.defaultSeverity;
  const service = oneLine((alert.labels.service ?? alert.labels.job ?? alert.labels.instance ?? 'unknown').slice(0, 200));
  const input: IncidentInput = {
    ...runbookInput(route.runbook, config),
    trigger: {
      kind: 'alert',
      alert: {
        alertname,
        fingerprint: alert.fingerprint,
        labels: alert.labels,
        annotations: alert.annotations,
        startsAt: alert.startsAt,
        generatorURL: alert.generatorURL,
      },
    },
    service,
    escalation: escalationPolicy(severity, config),
  };
  return {
    workflowId: incidentWorkflowId(alertname, alert.fingerprint),
    workflowType: catalog[route.runbook].workflowType,
    input,
    summary: `${alertname} on ${service} (${severity}) — runbook ${route.runbook}`,
  };
}

/**
 * A label as one line of plain text: it heads every notification and timeline entry, so a newline in it must not start
 * a line of its own (a fake "RESOLVED"). Control characters and line separators show as \uXXXX.
 */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is matched
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * What every run of a runbook takes from the config, whatever started it: approvers, its targets (only those), its
 * policy, and what the procedures it may start need.
 */
export function runbookInput(
  runbook: RunbookName,
  config: Config,
  { withHandOvers = true }: { withHandOvers?: boolean } = {},
): Pick<IncidentInput, 'runbook' | 'approvers' | 'approvals' | 'targets' | 'policy' | 'procedures' | 'security' | 'handOvers'> {
  const procedures = procedureSetups(proceduresOf(runbook), config);
  const handOvers = withHandOvers ? handOversOf(runbook) : [];
  return {
    runbook,
    approvers: config.approvers,
    ...(Object.keys(config.approvals).length ? { approvals: config.approvals } : {}),
    targets: targetFacts(runbook, config),
    policy: policyOf(runbook, config.policies[runbook]),
    ...(procedures ? { procedures } : {}),
    ...(settingsOf(runbook).includes('security') ? { security: securitySetup(config) } : {}),
    ...(handOvers.length ? { handOvers: Object.fromEntries(handOvers.map((alertname) => [alertname, handOverSetup(alertname, config)])) } : {}),
  };
}

/** How the runbook an alert routes to would start for it (the config's route, its default severity's ladder). */
export function handOverSetup(alertname: string, config: Config): HandOverSetup {
  const route = config.routing.alerts[alertname] ?? config.routing.fallback;
  // One level: a hand-over does not hand over again (and a route back to this runbook cannot loop).
  const input = runbookInput(route.runbook, config, { withHandOvers: false });
  return { ...input, workflowType: catalog[route.runbook].workflowType, escalation: escalationPolicy(route.defaultSeverity, config) };
}

/** The security section as a run needs it: names and networks only (the Redis URL stays in the worker). */
export function securitySetup(config: Config): SecuritySetup {
  const { denyList, allowList, ownAddresses, contacts } = config.security;
  const fallback = config.contacts['security-team'] ? ['security-team'] : config.escalation.critical.escalateTo.slice(0, 1);
  return { denyList: `Redis set ${denyList.key}`, allowList, ownAddresses, contacts: contacts ?? fallback };
}

/** How each procedure is set up from the config for a runbook to start it; undefined when the config cannot run it. */
const procedureSetup: { [P in keyof ProcedureSetups]-?: (config: Config) => ProcedureSetups[P] } = { backfill: backfillSetup };

function procedureSetups(names: readonly ProcedureName[], config: Config): ProcedureSetups | undefined {
  if (names.length === 0) return undefined;
  const setups: ProcedureSetups = {};
  for (const name of names) {
    if (!Object.hasOwn(procedureSetup, name)) continue;
    const key = name as keyof ProcedureSetups;
    const setup = procedureSetup[key](config);
    if (setup) setups[key] = setup;
  }
  return setups;
}

/** The escalation matrix row of a severity, copied so a config change never rewrites a running incident. */
export function escalationPolicy(severity: Severity, config: Config): EscalationPolicy {
  const rule = config.escalation[severity];
  return {
    severity,
    responseTimeMs: rule.responseTime,
    escalateTo: rule.escalateTo,
    notify: rule.notify,
    ...(severity === 'low' ? { businessHours: config.escalation.businessHours } : {}),
  };
}

/** Non-secret facts of the targets the runbook's catalog entry names; URLs and passwords stay in the worker. */
function targetFacts(runbook: RunbookName, config: Config): IncidentTargets {
  const facts: IncidentTargets = {};
  for (const name of catalog[runbook].targets) {
    const target = config.targets[name];
    if (target) facts[name] = { container: target.container, healthyWithinMs: target.healthyWithin };
  }
  return facts;
}
