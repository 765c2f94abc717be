// The shipped alerting path end to end, nothing hand-posted: a real Prometheus with the shipped config and rules
// (deploy/prometheus/) scrapes the sandbox audit-app, a real Alertmanager with the shipped config
// (deploy/alertmanager/) posts to the webhook. The backend stopped → APIDown fires in Prometheus → an incident runs the
// api-down runbook, which restarts the backend → the alert resolves in Prometheus and the incident is closed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { dockerClient } from '../src/activities';
import { buildHttpServer } from '../src/http/server';
import { auditAppTargets, breakAuditApp, httpGet, removeAuditApp } from '../src/sandbox/auditApp';
import { freePort } from './harness/util';
import { startAlertmanager } from './support/alertmanager';
import { dropAuditSchema } from './support/audit';
import { suiteCleanups } from './support/cleanups';
import { testConfig, tokenHash } from './support/config';
import type { RunningDaemon } from './support/daemon';
import { requireEnv } from './support/env';
import { everyContactOn, outcomeOf } from './support/incidents';
import { metricValues } from './support/metrics';
import { alertsInPrometheus, instantQuery, startPrometheus } from './support/prometheus';
import { startTestAuditApp } from './support/sandbox';
import { waitFor } from './support/wait';
import { startWorker } from './support/worker';

const TOKEN = randomBytes(12).toString('hex');
/** APIDown's `for` (1m) plus scrapes, evaluation and Alertmanager's group wait, with room for a loaded machine. */
const FIRING_WITHIN_MS = 150_000;

describe('the shipped rules in a real Prometheus, through a real Alertmanager, to an incident', { timeout: 290_000 }, () => {
  const cleanups = suiteCleanups();
  const prefix = `prom-${randomBytes(3).toString('hex')}-`;

  test('the backend stopped fires APIDown in Prometheus; the incident it opens restarts the backend, the alert resolves in Prometheus and the incident is closed', async () => {
    const docker = dockerClient(requireEnv('DOCKER_HOST'));
    cleanups.push(() => removeAuditApp(docker, prefix));
    const sandbox = await startTestAuditApp(docker, prefix);
    const config = testConfig({
      ...auditAppTargets(sandbox),
      tokens: [{ name: 'alertmanager', sha256: tokenHash(TOKEN), scopes: ['alerts'] }],
      contacts: everyContactOn('log'),
    });
    cleanups.push(() => dropAuditSchema(config));
    const worker = await startWorker(config);
    cleanups.push(() => worker.stop());
    const webhook: FastifyInstance = await buildHttpServer({ config, client: worker.client, logger: pino({ level: 'silent' }) });
    cleanups.push(() => webhook.close());
    const webhookPort = await freePort();
    await webhook.listen({ host: '127.0.0.1', port: webhookPort });

    const alertmanager: RunningDaemon = await startAlertmanager({ webhookUrl: `http://127.0.0.1:${webhookPort}/alerts`, token: TOKEN });
    cleanups.push(() => alertmanager.stop());
    // The sandbox runs no postgres_exporter or Pushgateway: their jobs scrape a port nothing listens on.
    const nothingListens = `127.0.0.1:${await freePort()}`;
    const prometheus = await startPrometheus({
      targets: { 'audit-app-backend': `127.0.0.1:${sandbox.ports.backend}`, postgres: nothingListens, pushgateway: nothingListens },
      alertmanager: new URL(alertmanager.url).host,
    });
    cleanups.push(() => prometheus.stop());

    await waitFor('Prometheus to scrape the backend (up 1)', async () => ((await instantQuery(prometheus.url, 'up{job="audit-app-backend"} == 1')).length === 1 ? true : undefined), 30_000);
    assert.deepEqual(await alertsInPrometheus(prometheus.url, 'APIDown'), [], 'no APIDown while the backend answers');

    await breakAuditApp(docker, sandbox, 'backend-stopped');

    const firing = await waitFor(
      'APIDown firing in Prometheus',
      async () => (await alertsInPrometheus(prometheus.url, 'APIDown')).find((alert) => alert.state === 'firing'),
      FIRING_WITHIN_MS,
    );
    assert.deepEqual(firing.labels, { alertname: 'APIDown', severity: 'critical', service: 'audit-app-backend', job: 'audit-app-backend', instance: `127.0.0.1:${sandbox.ports.backend}` });

    const query = `AlertName = 'APIDown' AND TaskQueue = '${config.temporal.taskQueue}'`;
    const started = await waitFor(
      'the incident Alertmanager opens',
      async () => {
        for await (const execution of worker.client.workflow.list({ query })) return execution;
        return undefined;
      },
      60_000,
    );
    assert.match(started.workflowId, /^APIDown-[0-9a-f]{16}$/);

    const outcome = await outcomeOf(worker.client, started.workflowId, { timeoutMs: 120_000 });
    const detected = outcome.timeline.find((e) => e.kind === 'detected');
    assert.equal(detected?.actor, 'alertmanager');
    assert.deepEqual((detected?.data as { labels?: Record<string, string> } | undefined)?.labels, firing.labels, 'the incident carries the labels the rule gave');
    const messages = outcome.timeline.map((e) => e.message);
    assert.ok(messages.includes(`Restarted container ${sandbox.containers.backend}.`), messages.join('\n'));
    // The runbook verifies /health itself; the alert may resolve first and close the incident a moment earlier.
    assert.ok(['remediated', 'alert-resolved'].includes(outcome.resolution), `resolution ${outcome.resolution}`);
    assert.equal((await httpGet(sandbox.urls.health)).status, 200);

    await waitFor('APIDown resolved in Prometheus (no ALERTS series)', async () => ((await alertsInPrometheus(prometheus.url, 'APIDown')).length === 0 ? true : undefined), 60_000);
    const webhookMetrics = async () => metricValues((await webhook.inject({ method: 'GET', url: '/metrics' })).body);
    await waitFor(
      'Alertmanager to post the resolution',
      async () => ((await webhookMetrics())('runbooks_alerts_received_total{alertname="APIDown",status="resolved"}') ?? 0) >= 1 || undefined,
      60_000,
    );
    const runs: string[] = [];
    for await (const execution of worker.client.workflow.list({ query })) runs.push(`${execution.workflowId} ${execution.status.name}`);
    assert.deepEqual(runs, [`${started.workflowId} COMPLETED`], 'one incident, closed: no re-send opened another');
  });
});
