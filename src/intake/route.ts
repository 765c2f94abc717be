import type { Config, Severity } from '../config/schema';
import type { IncidentInput } from '../workflows/lifecycle/definitions';
import { workflowTypeByRunbook } from '../workflows/registry';
import type { Alert } from './alertmanager';

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
  const service = (alert.labels.service ?? alert.labels.job ?? alert.labels.instance ?? 'unknown').slice(0, 200);
  const rule = config.escalation[severity];
  const { backend, redis } = config.targets;
  const input: IncidentInput = {
    runbook: route.runbook,
    alert: {
      alertname,
      fingerprint: alert.fingerprint,
      labels: alert.labels,
      annotations: alert.annotations,
      startsAt: alert.startsAt,
      generatorURL: alert.generatorURL,
    },
    severity,
    service,
    escalation: {
      responseTimeMs: rule.responseTime,
      escalateTo: rule.escalateTo,
      notify: rule.notify,
      ...(severity === 'low' ? { businessHours: config.escalation.businessHours } : {}),
    },
    approvers: config.approvers,
    targets: {
      ...(backend ? { backend: { container: backend.container, healthUrl: backend.healthUrl, healthyWithinMs: backend.healthyWithin } } : {}),
      ...(redis ? { redis: { container: redis.container, healthyWithinMs: redis.healthyWithin } } : {}),
    },
  };
  return {
    workflowId: incidentWorkflowId(alertname, alert.fingerprint),
    workflowType: workflowTypeByRunbook[route.runbook],
    input,
    summary: `${alertname} on ${service} (${severity}) — runbook ${route.runbook}`,
  };
}
