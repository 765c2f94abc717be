/**
 * The Alertmanager webhook against a real Temporal and a real worker: one incident per fingerprint however
 * often Alertmanager re-sends, 4xx for every bad payload with nothing started, 503 when Temporal is away.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Client, Connection, WorkflowNotFoundError, type WorkflowExecutionInfo } from '@temporalio/client';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import type { Config } from '../src/config/schema';
import { buildHttpServer } from '../src/http/server';
import type { IntakeResult } from '../src/intake/ingest';
import { statusQuery } from '../src/workflows/lifecycle/definitions';
import { capturedBody, capturedHeaders } from './support/alertmanagerCapture';
import { testConfig, tokenHash } from './support/config';
import { outcomeOf, terminateAll } from './support/incidents';
import { metricValues } from './support/metrics';
import { eventually } from './support/wait';
import { startWorker, type RunningWorker } from './support/worker';

type Payload = typeof capturedBody;
type AlertPayload = Payload['alerts'][number];

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'warn' });

function newFingerprint(): string {
  return randomBytes(8).toString('hex');
}

/** The captured payload for a fingerprint of our own, optionally resolved or with its alert changed. */
function apiDownPayload(fingerprint: string, changes: { status?: 'firing' | 'resolved'; alert?: Partial<AlertPayload> } = {}): Payload {
  const body = structuredClone(capturedBody);
  const status = changes.status ?? 'firing';
  body.status = status;
  body.alerts = body.alerts.map((alert) => ({
    ...alert,
    status,
    ...(status === 'resolved' ? { endsAt: new Date().toISOString() } : {}),
    fingerprint,
    ...changes.alert,
  }));
  return body;
}

function withoutAuthorization(): Record<string, string> {
  const headers: Record<string, string> = { ...capturedHeaders };
  delete headers.authorization;
  return headers;
}

function postAlerts(app: FastifyInstance, payload: unknown, headers: Record<string, string> = capturedHeaders): Promise<LightMyRequestResponse> {
  const options: InjectOptions = {
    method: 'POST',
    url: '/alerts',
    headers,
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
  };
  return app.inject(options);
}

async function listWorkflows(client: Client, query: string): Promise<WorkflowExecutionInfo[]> {
  const found: WorkflowExecutionInfo[] = [];
  for await (const execution of client.workflow.list({ query })) found.push(execution);
  return found;
}

async function assertNeverStarted(client: Client, workflowId: string): Promise<void> {
  await assert.rejects(client.workflow.getHandle(workflowId).describe(), WorkflowNotFoundError, `${workflowId} must not exist`);
}

describe('POST /alerts against a real Temporal', () => {
  let config: Config;
  let worker: RunningWorker;
  let app: FastifyInstance;
  const started = new Set<string>();

  before(async () => {
    // No targets.backend: the API-down runbook records a note and waits for a human, no Docker involved.
    config = testConfig({
      tokens: [
        { name: 'alertmanager', sha256: tokenHash('s3cret'), scopes: ['alerts'] },
        { name: 'alice', sha256: tokenHash('alice-token'), scopes: ['incidents'] },
      ],
    });
    worker = await startWorker(config);
    app = await buildHttpServer({ config, client: worker.client, logger });
  });

  after(async () => {
    await app?.close();
    if (worker) {
      await terminateAll(worker.client, started);
      await worker.stop();
    }
  });

  test('the captured Alertmanager payload starts exactly one API-down incident', async () => {
    const fingerprint = newFingerprint();
    const workflowId = `APIDown-${fingerprint}`;
    started.add(workflowId);

    const response = await postAlerts(app, apiDownPayload(fingerprint));

    assert.equal(response.statusCode, 200, response.body);
    const { results } = response.json() as { results: IntakeResult[] };
    assert.deepEqual(results, [{ fingerprint, alertname: 'APIDown', workflowId, action: 'started' }]);
    const query = `AlertName = 'APIDown' AND WorkflowId = '${workflowId}'`;
    const executions = await eventually('the incident in visibility', async () => {
      const found = await listWorkflows(worker.client, query);
      return found.length > 0 ? found : undefined;
    });
    assert.equal(executions.length, 1);
    assert.equal(executions[0]!.type, 'apiDown');
    assert.equal(executions[0]!.taskQueue, config.temporal.taskQueue);
    const status = await worker.client.workflow.getHandle(workflowId).query(statusQuery);
    assert.equal(status.runbook, 'api-down');
    assert.equal(status.severity, 'critical');
    assert.equal(status.service, 'audit-app-backend');
  });

  test('re-sent alerts signal the open incident, resolution closes it, and a new firing reopens it', async () => {
    const fingerprint = newFingerprint();
    const workflowId = `APIDown-${fingerprint}`;
    started.add(workflowId);
    const handle = worker.client.workflow.getHandle(workflowId);

    const burst = await Promise.all(Array.from({ length: 10 }, () => postAlerts(app, apiDownPayload(fingerprint))));
    for (const response of burst) assert.equal(response.statusCode, 200, response.body);
    const actions = burst.map((r) => (r.json() as { results: IntakeResult[] }).results[0]!.action);
    assert.equal(actions.filter((a) => a === 'started').length, 1, `actions: ${actions.join(', ')}`);
    assert.equal(actions.filter((a) => a === 'signalled').length, 9, `actions: ${actions.join(', ')}`);

    const later = await postAlerts(app, apiDownPayload(fingerprint));
    assert.equal(later.statusCode, 200, later.body);
    assert.equal((later.json() as { results: IntakeResult[] }).results[0]!.action, 'signalled');

    const firstRun = await handle.describe();
    assert.equal(firstRun.status.name, 'RUNNING');
    const runs = await eventually('the incident in visibility', async () => {
      const found = await listWorkflows(worker.client, `WorkflowId = '${workflowId}'`);
      return found.length > 0 ? found : undefined;
    });
    assert.equal(runs.length, 1, 'one workflow run for the fingerprint');
    assert.equal(runs[0]!.runId, firstRun.runId);

    const refired = await eventually('ten alert-refired events', async () => {
      const status = await handle.query(statusQuery);
      const events = status.timeline.filter((e) => e.kind === 'alert-refired');
      return events.length >= 10 ? events : undefined;
    });
    assert.equal(refired.length, 10);
    assert.ok(refired.every((e) => e.actor === 'alertmanager'));

    const resolved = await postAlerts(app, apiDownPayload(fingerprint, { status: 'resolved' }));
    assert.equal(resolved.statusCode, 200, resolved.body);
    assert.equal((resolved.json() as { results: IntakeResult[] }).results[0]!.action, 'signalled');
    const outcome = await outcomeOf(worker.client, workflowId, { timeoutMs: 30_000 });
    assert.equal(outcome.resolution, 'alert-resolved');

    const again = await postAlerts(app, apiDownPayload(fingerprint, { status: 'resolved' }));
    assert.equal(again.statusCode, 200, again.body);
    assert.equal((again.json() as { results: IntakeResult[] }).results[0]!.action, 'ignored');

    const reopened = await postAlerts(app, apiDownPayload(fingerprint));
    assert.equal(reopened.statusCode, 200, reopened.body);
    assert.deepEqual((reopened.json() as { results: IntakeResult[] }).results, [{ fingerprint, alertname: 'APIDown', workflowId, action: 'started' }]);
    const secondRun = await handle.describe();
    assert.equal(secondRun.status.name, 'RUNNING');
    assert.notEqual(secondRun.runId, firstRun.runId);
  });

  describe('bad input is refused with 4xx and starts nothing', () => {
    const bad = async (
      payload: unknown,
      expected: { status: number; path?: string; headers?: Record<string, string> },
    ): Promise<{ error: string; issues?: { path: string; message: string }[] }> => {
      const response = await postAlerts(app, payload, expected.headers ?? capturedHeaders);
      assert.equal(response.statusCode, expected.status, response.body);
      assert.match(String(response.headers['content-type']), /application\/json/);
      const body = response.json() as { error: string; issues?: { path: string; message: string }[] };
      assert.equal(typeof body.error, 'string');
      if (expected.path) {
        assert.ok(
          body.issues?.some((i) => i.path === expected.path || i.path.startsWith(`${expected.path}.`)),
          `an issue at ${expected.path}: ${JSON.stringify(body.issues)}`,
        );
      }
      return body;
    };

    test('malformed JSON is answered 400', async () => {
      const fingerprint = newFingerprint();
      const text = JSON.stringify(apiDownPayload(fingerprint));
      await bad(text.slice(0, text.length - 5), { status: 400 });
      await assertNeverStarted(worker.client, `APIDown-${fingerprint}`);
    });

    test('a payload of version 3 is answered 400 naming version', async () => {
      const fingerprint = newFingerprint();
      const body = await bad({ ...apiDownPayload(fingerprint), version: '3' }, { status: 400, path: 'version' });
      assert.equal(body.error, 'invalid Alertmanager payload');
      await assertNeverStarted(worker.client, `APIDown-${fingerprint}`);
    });

    test('an alert without a fingerprint is answered 400 naming alerts.0.fingerprint', async () => {
      const payload = apiDownPayload('unused');
      delete (payload.alerts[0] as Partial<AlertPayload>).fingerprint;
      const body = await bad(payload, { status: 400, path: 'alerts.0.fingerprint' });
      assert.deepEqual(body.issues?.map((i) => i.path), ['alerts.0.fingerprint']);
      const executions = await listWorkflows(worker.client, `WorkflowId = 'APIDown-unused' OR WorkflowId = 'APIDown-undefined'`);
      assert.equal(executions.length, 0);
    });

    test('a fingerprint of 10 000 characters is answered 400', async () => {
      const fingerprint = 'a'.repeat(10_000);
      const body = await bad(apiDownPayload(fingerprint), { status: 400, path: 'alerts.0.fingerprint' });
      assert.ok(JSON.stringify(body).length < 2_000, 'the answer does not echo the fingerprint');
    });

    test('a label value of 100 kB is answered 400 naming the label', async () => {
      const fingerprint = newFingerprint();
      const payload = apiDownPayload(fingerprint);
      (payload.alerts[0]!.labels as Record<string, string>).huge = 'x'.repeat(100_000);
      await bad(payload, { status: 400, path: 'alerts.0.labels' });
      await assertNeverStarted(worker.client, `APIDown-${fingerprint}`);
    });

    test('NUL characters and broken Unicode, which the audit trail cannot store, are answered 400 naming the label', async () => {
      const fingerprint = newFingerprint();
      const withNul = apiDownPayload(fingerprint);
      (withNul.alerts[0]!.labels as Record<string, string>).service = 'api\u0000backend';
      await bad(withNul, { status: 400, path: 'alerts.0.labels.service' });
      const withLoneSurrogate = apiDownPayload(fingerprint);
      (withLoneSurrogate.alerts[0]!.annotations as Record<string, string>).summary = 'broken \ud800';
      await bad(withLoneSurrogate, { status: 400, path: 'alerts.0.annotations.summary' });
      await assertNeverStarted(worker.client, `APIDown-${fingerprint}`);
    });

    test('a body over the configured limit is answered 413', async () => {
      const fingerprint = newFingerprint();
      const payload = apiDownPayload(fingerprint);
      (payload.alerts[0]!.labels as Record<string, string>).huge = 'x'.repeat(config.http.bodyLimitBytes + 1);
      await bad(payload, { status: 413 });
      await assertNeverStarted(worker.client, `APIDown-${fingerprint}`);
    });

    test('a request without a token is answered 401', async () => {
      const fingerprint = newFingerprint();
      const headers = withoutAuthorization();
      await bad(apiDownPayload(fingerprint), { status: 401, headers });
      await assertNeverStarted(worker.client, `APIDown-${fingerprint}`);
    });

    test('a request with a wrong token is answered 401', async () => {
      const fingerprint = newFingerprint();
      for (const authorization of ['Bearer s3cret2', 'Bearer ', 'Basic czNjcmV0', 's3cret']) {
        await bad(apiDownPayload(fingerprint), { status: 401, headers: { ...capturedHeaders, authorization } });
      }
      await assertNeverStarted(worker.client, `APIDown-${fingerprint}`);
    });

    test('a token without the alerts scope is answered 403', async () => {
      const fingerprint = newFingerprint();
      await bad(apiDownPayload(fingerprint), { status: 403, headers: { ...capturedHeaders, authorization: 'Bearer alice-token' } });
      await assertNeverStarted(worker.client, `APIDown-${fingerprint}`);
    });

    test('a firing alert whose startsAt is not an RFC 3339 date-time is answered 400 naming alerts.0.startsAt', async () => {
      for (const startsAt of ['yesterday', '', '2026-13-01T00:00:00Z', '2026-11-27']) {
        const fingerprint = newFingerprint();
        const body = await bad(apiDownPayload(fingerprint, { alert: { startsAt } }), { status: 400, path: 'alerts.0.startsAt' });
        assert.deepEqual(body.issues?.map((i) => i.path), ['alerts.0.startsAt'], `startsAt ${JSON.stringify(startsAt)}`);
        await assertNeverStarted(worker.client, `APIDown-${fingerprint}`);
      }
    });

    test('a resolved alert whose endsAt is not a date-time is answered 400 naming alerts.0.endsAt', async () => {
      const fingerprint = newFingerprint();
      const body = await bad(apiDownPayload(fingerprint, { status: 'resolved', alert: { endsAt: 'now' } }), { status: 400, path: 'alerts.0.endsAt' });
      assert.deepEqual(body.issues?.map((i) => i.path), ['alerts.0.endsAt']);
      await assertNeverStarted(worker.client, `APIDown-${fingerprint}`);
    });

    test('a payload with an empty alerts array is answered 400 naming alerts', async () => {
      await bad({ ...apiDownPayload(newFingerprint()), alerts: [] }, { status: 400, path: 'alerts' });
    });

    test('one bad alert among good ones refuses the whole payload', async () => {
      const good = newFingerprint();
      const payload = apiDownPayload(good);
      payload.alerts.push({ ...payload.alerts[0]!, fingerprint: 'not hex' });
      await bad(payload, { status: 400, path: 'alerts.1.fingerprint' });
      await assertNeverStarted(worker.client, `APIDown-${good}`);
    });
  });

  test('alerts with control characters and unusual Unicode in their labels are taken in, not answered 5xx', async () => {
    const fingerprint = newFingerprint();
    // NUL and lone surrogates are refused by the schema (Postgres cannot store them); everything else is taken.
    const alertname = 'Odd\u0001Name/\u007f 😀 \u202e';
    const payload = apiDownPayload(fingerprint, {
      alert: { labels: { alertname, service: 'svc\u0001', instance: 'ẞ\u200b', severity: 'CRITICAL' } as AlertPayload['labels'] },
    });
    const response = await postAlerts(app, payload);
    assert.equal(response.statusCode, 200, response.body);
    const [result] = (response.json() as { results: IntakeResult[] }).results;
    assert.equal(result!.action, 'started');
    assert.match(result!.workflowId, /^[A-Za-z0-9_.:-]+$/);
    started.add(result!.workflowId);
  });

  test('an alert at the schema\'s size limits still fits in Temporal and starts an incident', async () => {
    // 64 labels and 64 annotations of 2048 three-byte characters: the largest alert the schema accepts.
    const bigConfig = testConfig({ http: { bodyLimitBytes: 8 * 1_048_576 }, tokens: config.tokens, temporal: { taskQueue: config.temporal.taskQueue } });
    const bigApp = await buildHttpServer({ config: bigConfig, client: worker.client, logger });
    try {
      const fingerprint = newFingerprint();
      const wide = (prefix: string, count: number) =>
        Object.fromEntries(Array.from({ length: count }, (_, i) => [`${prefix}${i}`, '€'.repeat(2048)]));
      const payload = apiDownPayload(fingerprint, {
        alert: {
          labels: { ...capturedBody.alerts[0]!.labels, ...wide('l', 60) } as AlertPayload['labels'],
          annotations: wide('a', 64) as AlertPayload['annotations'],
        },
      });
      const response = await postAlerts(bigApp, payload);
      assert.equal(response.statusCode, 200, response.body);
      const [result] = (response.json() as { results: { workflowId: string; action: string }[] }).results;
      assert.equal(result!.action, 'started');
      started.add(result!.workflowId);
    } finally {
      await bigApp.close();
    }
  });

  test('the webhook is open, with a warning, when no token has the alerts scope', async () => {
    const openConfig = testConfig({ tokens: [{ name: 'alice', sha256: tokenHash('alice-token'), scopes: ['incidents'] }] });
    const warnings: string[] = [];
    const capture = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const openApp = await buildHttpServer({ config: openConfig, client: worker.client, logger: capture });
    try {
      assert.ok(warnings.some((w) => /no token has the \\"alerts\\" scope: POST \/alerts is open to anyone who can reach it/.test(w)), warnings.join('\n'));
      const fingerprint = newFingerprint();
      const headers = withoutAuthorization();
      const response = await postAlerts(openApp, apiDownPayload(fingerprint, { status: 'resolved' }), headers);
      assert.equal(response.statusCode, 200, response.body);
      assert.equal((response.json() as { results: IntakeResult[] }).results[0]!.action, 'ignored');
      assert.ok(!warnings.some((w) => w.includes('s3cret') || w.includes('alice-token')));
    } finally {
      await openApp.close();
    }
  });

  test('over a real socket, the captured request is answered and an oversized body is answered 413', async () => {
    const served = await buildHttpServer({ config, client: worker.client, logger });
    try {
      await served.listen({ host: '127.0.0.1', port: 0 });
      const address = served.server.address();
      assert.ok(address && typeof address === 'object');
      const url = `http://127.0.0.1:${address.port}/alerts`;
      // Resolved, for an incident that does not exist: answered without starting anything.
      const fingerprint = newFingerprint();
      const ok = await fetch(url, { method: 'POST', headers: capturedHeaders, body: JSON.stringify(apiDownPayload(fingerprint, { status: 'resolved' })) });
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { results: [{ fingerprint, alertname: 'APIDown', workflowId: `APIDown-${fingerprint}`, action: 'ignored' }] });
      const big = await fetch(url, { method: 'POST', headers: capturedHeaders, body: 'x'.repeat(config.http.bodyLimitBytes + 10) });
      assert.equal(big.status, 413);
      assert.match((await big.json() as { error: string }).error, /larger than/);
    } finally {
      await served.close();
    }
  });

  test('/metrics counts the alerts received, incidents started and what was done with each alert', async () => {
    const response = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^text\/plain/);
    const text = response.body;
    const value = metricValues(text);
    // Test 1 (1), the burst (10 + 1 + new firing), and the odd-labels alert.
    assert.equal(value('runbooks_alerts_received_total{alertname="APIDown",status="firing"}'), 13);
    assert.equal(value('runbooks_alerts_received_total{alertname="APIDown",status="resolved"}'), 2);
    assert.equal(value('runbooks_incidents_started_total{runbook="api-down"}'), 3);
    assert.equal(value('runbooks_incidents_started_total{runbook="generic"}'), 1);
    assert.equal(value('runbooks_alert_signals_total{action="started"}'), 4);
    assert.equal(value('runbooks_alert_signals_total{action="signalled"}'), 11);
    assert.equal(value('runbooks_alert_signals_total{action="ignored"}'), 1);
    assert.equal(value('runbooks_http_request_duration_seconds_count{method="POST",route="/alerts",status_code="200"}'), 16);
    assert.ok((value('runbooks_http_request_duration_seconds_count{method="POST",route="/alerts",status_code="400"}') ?? 0) >= 6);
    assert.equal(value('runbooks_http_request_duration_seconds_count{method="POST",route="/alerts",status_code="413"}'), 1);
    assert.equal(value('runbooks_http_request_duration_seconds_count{method="POST",route="/alerts",status_code="401"}'), 5);
    assert.equal(value('runbooks_http_request_duration_seconds_count{method="POST",route="/alerts",status_code="403"}'), 1);
  });
});

describe('the HTTP API when Temporal is unreachable', () => {
  let app: FastifyInstance;
  let connection: Connection;

  before(async () => {
    const config = testConfig({
      temporal: { address: '127.0.0.1:1' },
      tokens: [
        { name: 'alertmanager', sha256: tokenHash('s3cret'), scopes: ['alerts'] },
        { name: 'alice', sha256: tokenHash('alice-token'), scopes: ['incidents'] },
      ],
    });
    // As in production (createLazyClient): a lazy connection with the client's default gRPC retries.
    connection = Connection.lazy({ address: config.temporal.address, connectTimeout: '5s' });
    const client = new Client({ connection, namespace: config.temporal.namespace });
    app = await buildHttpServer({ config, client, logger });
  });

  after(async () => {
    await app?.close();
    // The client's retry interceptor may still have a retry scheduled (up to 5 s of backoff) for calls we gave up
    // on; closing the channel under it makes that retry throw. Let them run out first.
    await new Promise((resolve) => setTimeout(resolve, 5_500));
    await connection?.close();
  });

  test('a valid payload is answered 503 with Retry-After in under ten seconds, /readyz 503, /healthz 200, incidents 503', async () => {
    const auth = { authorization: 'Bearer alice-token' };
    const timed = async (request: Promise<LightMyRequestResponse>) => {
      const startedAt = Date.now();
      const response = await request;
      return { response, ms: Date.now() - startedAt };
    };
    const [webhook, ready, healthy, list, ack] = await Promise.all([
      timed(postAlerts(app, apiDownPayload(newFingerprint()))),
      timed(app.inject({ method: 'GET', url: '/readyz' })),
      timed(app.inject({ method: 'GET', url: '/healthz' })),
      timed(app.inject({ method: 'GET', url: '/incidents', headers: auth })),
      timed(app.inject({ method: 'POST', url: '/incidents/APIDown-0123/acknowledge', headers: auth })),
    ]);

    assert.equal(webhook.response.statusCode, 503, webhook.response.body);
    assert.ok(Number(webhook.response.headers['retry-after']) > 0, 'Retry-After');
    assert.match((webhook.response.json() as { error: string }).error, /Temporal is unavailable/);
    assert.ok(webhook.ms < 10_000, `webhook answered after ${webhook.ms} ms`);

    assert.equal(ready.response.statusCode, 503, ready.response.body);
    assert.ok(ready.ms < 5_000, `readyz answered after ${ready.ms} ms`);
    assert.equal(healthy.response.statusCode, 200);
    assert.deepEqual(healthy.response.json(), { ok: true });
    assert.ok(healthy.ms < 1_000);

    assert.equal(list.response.statusCode, 503, list.response.body);
    assert.equal(ack.response.statusCode, 503, ack.response.body);
    console.log(`# unreachable Temporal: webhook 503 after ${webhook.ms} ms, readyz after ${ready.ms} ms, list after ${list.ms} ms, ack after ${ack.ms} ms`);
  });

  test('bad input is still answered 400 at once, without waiting for Temporal', async () => {
    const startedAt = Date.now();
    const invalid = await postAlerts(app, { ...apiDownPayload(newFingerprint()), version: '3' });
    assert.equal(invalid.statusCode, 400);
    assert.ok(Date.now() - startedAt < 1_000);
  });
});
