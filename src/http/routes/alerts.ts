/**
 * `POST /alerts`: the Alertmanager webhook (payload version 4). Every alert becomes an incident or a signal
 * to one. Status codes are chosen for Alertmanager, which retries 5xx (and connection errors) and drops 4xx:
 * 503 only when Temporal is unavailable, so the notification comes back later; 4xx whenever the payload
 * itself is the problem, so a bad payload is not retried forever.
 */
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema';
import { AlertmanagerPayloadSchema, type Alert } from '../../intake/alertmanager';
import { ingestAlert, type IntakeResult } from '../../intake/ingest';
import { routeAlert } from '../../intake/route';
import type { Authenticator } from '../auth';
import { classifyTemporalError, describeTemporalError, invalidInput, sendError, type Issue } from '../errors';
import { alertnameLabel, type HttpMetrics } from '../metrics';
import { TEMPORAL_CALL_TIMEOUT_MS, withTemporalDeadline } from '../temporal';

interface AlertRouteDeps {
  config: Config;
  client: Client;
  logger: Logger;
  metrics: HttpMetrics;
  auth: Authenticator;
  temporalTimeoutMs?: number;
}

/** Alerts handed to Temporal at once; a payload carries at most 1000. */
const CONCURRENCY = 4;

type Outcome =
  | { kind: 'done'; result: IntakeResult }
  | { kind: 'failed'; failure: 'unavailable' | 'rejected' | 'bug'; message: string }
  | { kind: 'skipped' };

export function registerAlertRoutes(app: FastifyInstance, deps: AlertRouteDeps): void {
  const { config, client, logger, metrics, auth } = deps;
  const timeoutMs = deps.temporalTimeoutMs ?? TEMPORAL_CALL_TIMEOUT_MS;

  app.post('/alerts', { onRequest: auth.require('alerts', { openWhenUnconfigured: true, endpoints: ['POST /alerts'] }) }, async (request, reply) => {
    const parsed = AlertmanagerPayloadSchema.safeParse(request.body);
    if (!parsed.success) {
      const bad = invalidInput('Alertmanager payload', parsed.error);
      return sendError(reply, 400, { error: 'invalid Alertmanager payload', issues: bad.issues });
    }
    const { alerts } = parsed.data;
    for (const alert of alerts) metrics.alertsReceived.inc({ alertname: alertnameLabel(alert.labels.alertname!), status: alert.status });

    const outcomes = await ingestAll(alerts, async (alert) => {
      const result = await withTemporalDeadline(client, timeoutMs, () => ingestAlert(client, config, alert));
      metrics.alertSignals.inc({ action: result.action });
      if (result.action === 'started') metrics.incidentsStarted.inc({ runbook: routeAlert(alert, config).input.runbook });
      return result;
    });

    const results = outcomes.flatMap((o) => (o.kind === 'done' ? [o.result] : []));
    const failures = outcomes.flatMap((o, i) => (o.kind === 'failed' ? [{ index: i, ...o }] : []));
    for (const f of failures) metrics.alertFailures.inc({ reason: f.failure === 'bug' ? 'error' : f.failure });
    const issues = (kind: string): Issue[] =>
      failures.filter((f) => f.failure === kind).map((f) => ({ path: `alerts.${f.index}`, message: f.message }));
    const skipped = outcomes.filter((o) => o.kind === 'skipped').length;

    const unavailable = issues('unavailable');
    if (unavailable.length > 0) {
      // Alertmanager will send the whole group again: those already handled are then signalled, not duplicated.
      logger.warn({ alerts: alerts.length, handled: results.length, skipped, reason: unavailable[0]!.message }, 'Temporal unavailable: answering 503 to the webhook');
      return sendError(reply, 503, { error: `Temporal is unavailable: ${unavailable[0]!.message}`, issues: unavailable, results });
    }
    const bugs = issues('bug');
    if (bugs.length > 0) {
      throw new Error(`ingesting alerts failed: ${bugs.map((b) => `${b.path}: ${b.message}`).join('; ')}`);
    }
    const rejected = issues('rejected');
    if (rejected.length > 0) {
      logger.warn({ rejected }, 'Temporal refused alerts from a webhook payload');
      return sendError(reply, 422, { error: 'Temporal refused some alerts', issues: rejected, results });
    }
    return reply.code(200).send({ results });
  });
}

/** Runs `ingest` over the alerts with a little concurrency; once Temporal is found unavailable, the rest are skipped. */
async function ingestAll(alerts: Alert[], ingest: (alert: Alert) => Promise<IntakeResult>): Promise<Outcome[]> {
  const outcomes: Outcome[] = alerts.map(() => ({ kind: 'skipped' }));
  let next = 0;
  let giveUp = false;
  const lane = async () => {
    while (!giveUp && next < alerts.length) {
      const index = next++;
      try {
        outcomes[index] = { kind: 'done', result: await ingest(alerts[index]!) };
      } catch (err) {
        const failure = classifyTemporalError(err);
        if (failure === 'unavailable') giveUp = true;
        outcomes[index] = { kind: 'failed', failure, message: failure === 'bug' ? String((err as Error)?.message ?? err) : describeTemporalError(err) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, alerts.length) }, lane));
  return outcomes;
}
