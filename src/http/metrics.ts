/** Prometheus metrics of one HTTP server, in a registry of its own so several servers (tests) never clash. */
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export interface HttpMetrics {
  registry: Registry;
  /** Alerts in validated webhook payloads, by alertname and firing/resolved. */
  alertsReceived: Counter<'alertname' | 'status'>;
  /** Incidents (workflows) the webhook started, by runbook. */
  incidentsStarted: Counter<'runbook'>;
  /** What the webhook did with each alert: started, signalled (refired/resolved) or ignored. */
  alertSignals: Counter<'action'>;
  /** Alerts the webhook could not hand to Temporal: unavailable (503), rejected (4xx) or error (500). */
  alertFailures: Counter<'reason'>;
  /** approve/reject/acknowledge/resolve by outcome: ok, a refusal reason, unauthorized, unavailable, error. */
  incidentActions: Counter<'action' | 'outcome'>;
  httpDuration: Histogram<'method' | 'route' | 'status_code'>;
}

export function createHttpMetrics(registry: Registry = new Registry()): HttpMetrics {
  // A registry handed in may already hold them (a second server on the same registry): reuse, never register twice.
  const counter = <L extends string>(name: string, help: string, labelNames: L[]): Counter<L> =>
    (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
  if (!registry.getSingleMetric('process_cpu_user_seconds_total')) collectDefaultMetrics({ register: registry });
  const durationName = 'runbooks_http_request_duration_seconds';
  return {
    registry,
    alertsReceived: counter('runbooks_alerts_received_total', 'Alerts received from Alertmanager', ['alertname', 'status']),
    incidentsStarted: counter('runbooks_incidents_started_total', 'Incident workflows started from alerts', ['runbook']),
    alertSignals: counter('runbooks_alert_signals_total', 'What the webhook did with each alert (started, signalled, ignored)', ['action']),
    alertFailures: counter('runbooks_alert_failures_total', 'Alerts not handed to Temporal (unavailable, rejected, error)', ['reason']),
    incidentActions: counter('runbooks_incident_actions_total', 'Incident actions over HTTP by outcome', ['action', 'outcome']),
    httpDuration:
      (registry.getSingleMetric(durationName) as Histogram<'method' | 'route' | 'status_code'> | undefined) ??
      new Histogram({
        name: durationName,
        help: 'HTTP request duration by route pattern',
        labelNames: ['method', 'route', 'status_code'],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers: [registry],
      }),
  };
}

/** Alertnames come from payloads: cap the label so one odd alert cannot bloat every scrape. */
export function alertnameLabel(alertname: string): string {
  return alertname.length > 100 ? `${alertname.slice(0, 100)}…` : alertname;
}

export function registerMetricsRoute(app: FastifyInstance, metrics: HttpMetrics): void {
  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
}
