// The shipped alerting path end to end, nothing hand-posted: a real Prometheus with the shipped config and rules
// (deploy/prometheus/) scrapes the sandbox audit-app and a Pushgateway its ETL pushes to; a real Alertmanager with the
// shipped config (deploy/alertmanager/) posts to the webhook. Something breaks for real → the rule fires in Prometheus →
// an incident runs the runbook, which repairs it → the alert resolves in Prometheus and the incident is closed, once.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, test } from 'node:test';
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { dockerClient } from '../src/activities';
import type { Config } from '../src/config/schema';
import { buildHttpServer } from '../src/http/server';
import type { IncidentOutcome } from '../src/incidents/model';
import { auditAppTargets, breakAuditApp, httpGet, removeAuditApp, type AuditApp } from '../src/sandbox/auditApp';
import { freePort } from './harness/util';
import { startAlertmanager } from './support/alertmanager';
import { dropAuditSchema } from './support/audit';
import { suiteCleanups } from './support/cleanups';
import { testConfig, tokenHash } from './support/config';
import { requireEnv } from './support/env';
import { everyContactOn, outcomeOf } from './support/incidents';
import { metricValues } from './support/metrics';
import { cliWorkspace } from './support/cli';
import { alertsInPrometheus, instantQuery, startPrometheus, startPushgateway, type PrometheusAlert } from './support/prometheus';
import { freeAuditAppPorts, sandboxPlaceArgs } from './support/sandbox';
import { waitFor } from './support/wait';
import { startWorker, type RunningWorker } from './support/worker';

const TOKEN = randomBytes(12).toString('hex');
/** A rule's `for` (APIDown: 1m) plus scrapes, evaluation and Alertmanager's group wait, with room for a loaded machine. */
const FIRING_WITHIN_MS = 150_000;

describe('the shipped rules in a real Prometheus, through a real Alertmanager, to an incident', { timeout: 290_000 }, () => {
  const cleanups = suiteCleanups();
  const prefix = `prom-${randomBytes(3).toString('hex')}-`;
  let sandbox: AuditApp;
  let config: Config;
  let worker: RunningWorker;
  let webhook: FastifyInstance;
  let prometheusUrl: string;

  before(async () => {
    const docker = dockerClient(requireEnv('DOCKER_HOST'));
    const pushgateway = await startPushgateway();
    cleanups.push(() => pushgateway.stop());
    cleanups.push(() => removeAuditApp(docker, prefix));
    // Started as a person would, so the ETL pushes to the Pushgateway through `sandbox up`'s own option.
    const cli = cliWorkspace('prometheus-alerts');
    cleanups.push(async () => cli.remove());
    const up = await cli.run(['sandbox', 'up', ...sandboxPlaceArgs(prefix, await freeAuditAppPorts()), '--etl-pushgateway', pushgateway.url, '--json'], { timeoutMs: 150_000 });
    assert.equal(up.code, 0, up.stderr);
    sandbox = (JSON.parse(up.stdout) as { app: AuditApp }).app;
    config = testConfig({
      ...auditAppTargets(sandbox),
      tokens: [{ name: 'alertmanager', sha256: tokenHash(TOKEN), scopes: ['alerts'] }],
      contacts: everyContactOn('log'),
    });
    cleanups.push(() => dropAuditSchema(config));
    worker = await startWorker(config);
    cleanups.push(() => worker.stop());
    webhook = await buildHttpServer({ config, client: worker.client, logger: pino({ level: 'silent' }) });
    cleanups.push(() => webhook.close());
    const webhookPort = await freePort();
    await webhook.listen({ host: '127.0.0.1', port: webhookPort });

    const alertmanager = await startAlertmanager({ webhookUrl: `http://127.0.0.1:${webhookPort}/alerts`, token: TOKEN });
    cleanups.push(() => alertmanager.stop());
    // The sandbox runs no postgres_exporter and this test no worker metrics: those jobs scrape ports nothing listens on.
    const prometheus = await startPrometheus({
      targets: {
        'audit-app-backend': `127.0.0.1:${sandbox.ports.backend}`,
        postgres: `127.0.0.1:${await freePort()}`,
        pushgateway: new URL(pushgateway.url).host,
        'runbooks-worker': `127.0.0.1:${await freePort()}`,
      },
      alertmanager: new URL(alertmanager.url).host,
    });
    cleanups.push(() => prometheus.stop());
    prometheusUrl = prometheus.url;
    await waitFor('Prometheus to scrape the backend (up 1)', async () => ((await instantQuery(prometheusUrl, 'up{job="audit-app-backend"} == 1')).length === 1 ? true : undefined), 30_000);
  });

  const firingInPrometheus = (alertname: string): Promise<PrometheusAlert> =>
    waitFor(`${alertname} firing in Prometheus`, async () => (await alertsInPrometheus(prometheusUrl, alertname)).find((alert) => alert.state === 'firing'), FIRING_WITHIN_MS);

  const incidentQuery = (alertname: string) => `AlertName = '${alertname}' AND TaskQueue = '${config.temporal.taskQueue}'`;

  /** The incident Alertmanager opened for `alertname`, once it has closed. */
  async function closedIncident(client: Client, alertname: string): Promise<{ workflowId: string; outcome: IncidentOutcome }> {
    const started = await waitFor(
      `the ${alertname} incident Alertmanager opens`,
      async () => {
        for await (const execution of client.workflow.list({ query: incidentQuery(alertname) })) return execution;
        return undefined;
      },
      60_000,
    );
    assert.match(started.workflowId, new RegExp(`^${alertname}-[0-9a-f]{16}$`));
    return { workflowId: started.workflowId, outcome: await outcomeOf(client, started.workflowId, { timeoutMs: 120_000 }) };
  }

  /** The alert gone from Prometheus, its resolution posted to the webhook, and one run of its incident: closed. */
  async function resolvedOnce(alertname: string, workflowId: string): Promise<void> {
    await waitFor(`${alertname} resolved in Prometheus (no ALERTS series)`, async () => ((await alertsInPrometheus(prometheusUrl, alertname)).length === 0 ? true : undefined), 60_000);
    const received = async () => metricValues((await webhook.inject({ method: 'GET', url: '/metrics' })).body)(`runbooks_alerts_received_total{alertname="${alertname}",status="resolved"}`) ?? 0;
    await waitFor(`Alertmanager to post ${alertname}'s resolution`, async () => ((await received()) >= 1 ? true : undefined), 60_000);
    const runs: string[] = [];
    for await (const execution of worker.client.workflow.list({ query: incidentQuery(alertname) })) runs.push(`${execution.workflowId} ${execution.status.name}`);
    assert.deepEqual(runs, [`${workflowId} COMPLETED`], 'one incident, closed: no re-send opened another');
  }

  /** What the `detected` entry says the alert carried: the labels the rule gave, from Alertmanager. */
  function detectedLabels(outcome: IncidentOutcome): Record<string, string> | undefined {
    const detected = outcome.timeline.find((e) => e.kind === 'detected');
    assert.equal(detected?.actor, 'alertmanager');
    return (detected?.data as { labels?: Record<string, string> } | undefined)?.labels;
  }

  test('the backend stopped fires APIDown in Prometheus; the incident it opens restarts the backend, the alert resolves in Prometheus and the incident is closed', async () => {
    assert.deepEqual(await alertsInPrometheus(prometheusUrl, 'APIDown'), [], 'no APIDown while the backend answers');
    await breakAuditApp(dockerClient(requireEnv('DOCKER_HOST')), sandbox, 'backend-stopped');

    const firing = await firingInPrometheus('APIDown');
    assert.deepEqual(firing.labels, { alertname: 'APIDown', severity: 'critical', service: 'audit-app-backend', job: 'audit-app-backend', instance: `127.0.0.1:${sandbox.ports.backend}` });

    const { workflowId, outcome } = await closedIncident(worker.client, 'APIDown');
    assert.deepEqual(detectedLabels(outcome), firing.labels);
    const messages = outcome.timeline.map((e) => e.message);
    assert.ok(messages.includes(`Restarted container ${sandbox.containers.backend}.`), messages.join('\n'));
    // The runbook verifies /health itself; the alert may resolve first and close the incident a moment earlier.
    assert.ok(['remediated', 'alert-resolved'].includes(outcome.resolution), `resolution ${outcome.resolution}`);
    assert.equal((await httpGet(sandbox.urls.health)).status, 200);
    await resolvedOnce('APIDown', workflowId);
  });

  test("a crashed ETL run, pushed to the Pushgateway, fires ETLJobFailed; the incident's retry succeeds, its push resolves the alert and the incident is closed", async () => {
    assert.deepEqual(await alertsInPrometheus(prometheusUrl, 'ETLJobFailed'), []);
    await breakAuditApp(dockerClient(requireEnv('DOCKER_HOST')), sandbox, 'etl-crash');

    const firing = await firingInPrometheus('ETLJobFailed');
    assert.deepEqual(firing.labels, { alertname: 'ETLJobFailed', severity: 'high', service: 'audit-app-etl', job: 'audit-app-etl' });

    const { workflowId, outcome } = await closedIncident(worker.client, 'ETLJobFailed');
    assert.deepEqual(detectedLabels(outcome), firing.labels);
    const messages = outcome.timeline.map((e) => e.message);
    assert.ok(messages.some((m) => /^Retry 1: the pipeline ran \(run \S+\) and wrote \d+ record\(s\)\.$/.test(m)), messages.join('\n'));
    assert.ok(['remediated', 'alert-resolved'].includes(outcome.resolution), `resolution ${outcome.resolution}`);
    await resolvedOnce('ETLJobFailed', workflowId);
    const [lastRun, lastSuccess] = await Promise.all(
      ['etl_last_run_timestamp_seconds', 'etl_last_success_timestamp_seconds'].map(async (name) => (await instantQuery(prometheusUrl, name))[0]?.value),
    );
    assert.ok(lastRun !== undefined && lastRun === lastSuccess, `the last run (${lastRun}) is the last success (${lastSuccess})`);
  });
});
