/**
 * The incident endpoints against a real Temporal and a real worker: list, status, acknowledge, approve and
 * resolve, with the identity taken from the token; plus the refusal mapping (403 and friends) with a stub client.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ApplicationFailure, Client, Connection, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import type { Config } from '../src/config/schema';
import type { IncidentSummary } from '../src/incidents/operations';
import { buildHttpServer } from '../src/http/server';
import type { IntakeResult } from '../src/intake/ingest';
import { UpdateRefusal } from '../src/workflows/lifecycle/definitions';
import { type IncidentStatusView } from '../src/incidents/model';
import { testConfig, tokenHash } from './support/config';
import { readAudit } from './support/audit';
import { alert, fire, outcomeOf, terminateAll } from './support/incidents';
import { metricValues } from './support/metrics';
import { eventually } from './support/wait';
import { startWorker, type RunningWorker } from './support/worker';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'warn' });

const tokens = {
  alertmanager: 'am-token-' + randomBytes(8).toString('hex'),
  alice: 'alice-token-' + randomBytes(8).toString('hex'),
  bob: 'bob-token-' + randomBytes(8).toString('hex'),
};
const configuredTokens = [
  { name: 'alertmanager', sha256: tokenHash(tokens.alertmanager), scopes: ['alerts' as const] },
  { name: 'alice', sha256: tokenHash(tokens.alice), scopes: ['incidents' as const] },
  { name: 'bob', sha256: tokenHash(tokens.bob), scopes: ['incidents' as const, 'alerts' as const] },
];
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** An alert no route names: the generic runbook notifies, then waits for a human. */
function unroutedAlert(fingerprint: string, status: 'firing' | 'resolved' = 'firing') {
  return {
    version: '4',
    status,
    receiver: 'runbooks',
    alerts: [
      {
        status,
        labels: { alertname: 'HttpTestUnrouted', service: 'http-tests', severity: 'warning' },
        annotations: { summary: 'an alert without a runbook' },
        startsAt: new Date().toISOString(),
        fingerprint,
      },
    ],
  };
}

function errorOf(response: LightMyRequestResponse): { error: string; issues?: { path: string; message: string }[] } {
  const body = response.json() as { error: string; issues?: { path: string; message: string }[] };
  assert.equal(typeof body.error, 'string', response.body);
  return body;
}

describe('incident endpoints against a real Temporal', () => {
  let config: Config;
  let worker: RunningWorker;
  let app: FastifyInstance;
  let workflowId: string;

  const act = (action: string, id: string, body?: unknown, headers: Record<string, string> = bearer(tokens.alice)) =>
    app.inject({
      method: 'POST',
      url: `/incidents/${encodeURIComponent(id)}/${action}`,
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
  const get = (url: string, headers: Record<string, string> = bearer(tokens.alice)) => app.inject({ method: 'GET', url, headers });

  before(async () => {
    config = testConfig({ tokens: configuredTokens });
    worker = await startWorker(config);
    app = await buildHttpServer({ config, client: worker.client, logger });
    const fingerprint = randomBytes(8).toString('hex');
    const response = await app.inject({ method: 'POST', url: '/alerts', headers: bearer(tokens.alertmanager), payload: unroutedAlert(fingerprint) });
    assert.equal(response.statusCode, 200, response.body);
    const [result] = (response.json() as { results: IntakeResult[] }).results;
    assert.equal(result!.action, 'started');
    workflowId = result!.workflowId;
  });

  after(async () => {
    await app?.close();
    if (worker) {
      await terminateAll(worker.client, [workflowId]);
      await worker.stop();
    }
  });

  test('the list of open incidents contains the one the webhook started', async () => {
    const incident = await eventually('the incident in GET /incidents', async () => {
      const response = await get('/incidents');
      assert.equal(response.statusCode, 200, response.body);
      return (response.json() as { incidents: IncidentSummary[] }).incidents.find((i) => i.workflowId === workflowId);
    });
    assert.equal(incident.runbook, 'generic');
    assert.equal(incident.alertname, 'HttpTestUnrouted');
    assert.equal(incident.severity, 'medium');
    assert.equal(incident.service, 'http-tests');
    assert.equal(incident.executionStatus, 'RUNNING');

    // The generic runbook has nothing to automate: the incident waits for a human.
    await eventually('the incident under ?status=needs-human', async () => {
      const response = await get('/incidents?status=needs-human&limit=1000');
      assert.equal(response.statusCode, 200, response.body);
      return (response.json() as { incidents: IncidentSummary[] }).incidents.find((i) => i.workflowId === workflowId);
    });
  });

  test("the list includes the incidents of the demo's task queue (<taskQueue>-demo), not those of other task queues", async () => {
    // Started as `runbooks demo` starts them, on its own task queue; no worker needed to be listed.
    const onQueue = (taskQueue: string) => ({ ...config, temporal: { ...config.temporal, taskQueue } });
    const demo = await fire(worker.client, onQueue(`${config.temporal.taskQueue}-demo`), alert('HttpTestDemo', { service: 'demo' }));
    const other = await fire(worker.client, onQueue(`${config.temporal.taskQueue}-other`), alert('HttpTestOther', { service: 'other' }));
    try {
      const listed = await eventually('the demo incident in GET /incidents', async () => {
        const response = await get('/incidents?limit=1000');
        assert.equal(response.statusCode, 200, response.body);
        return (response.json() as { incidents: IncidentSummary[] }).incidents.find((i) => i.workflowId === demo.workflowId);
      });
      assert.equal(listed.alertname, 'HttpTestDemo');
      await eventually('the other incident in the visibility store', async () => {
        for await (const found of worker.client.workflow.list({ query: `WorkflowId = '${other.workflowId}'` })) return found;
        return undefined;
      });
      const all = await get('/incidents?status=all&limit=1000');
      const ids = (all.json() as { incidents: IncidentSummary[] }).incidents.map((i) => i.workflowId);
      assert.ok(ids.includes(demo.workflowId));
      assert.ok(!ids.includes(other.workflowId), 'an incident of another task queue is not listed');
    } finally {
      await terminateAll(worker.client, [demo.workflowId, other.workflowId]);
    }
  });

  test('an unknown status filter or limit is answered 400 naming the field', async () => {
    const bogus = await get('/incidents?status=bogus');
    assert.equal(bogus.statusCode, 400);
    assert.deepEqual(errorOf(bogus).issues?.map((i) => i.path), ['status']);
    assert.match(errorOf(bogus).error, /status/);
    const limit = await get('/incidents?limit=0');
    assert.equal(limit.statusCode, 400);
    assert.deepEqual(errorOf(limit).issues?.map((i) => i.path), ['limit']);
  });

  test('GET /incidents/:id returns the incident status', async () => {
    const response = await get(`/incidents/${workflowId}`);
    assert.equal(response.statusCode, 200, response.body);
    const status = response.json() as IncidentStatusView;
    assert.equal(status.workflowId, workflowId);
    assert.equal(status.runbook, 'generic');
    assert.equal(status.trigger.kind === 'alert' && status.trigger.alert.alertname, 'HttpTestUnrouted');
    assert.ok(status.timeline.some((e) => e.kind === 'detected'));
  });

  test('an unknown incident is answered 404', async () => {
    const response = await get('/incidents/nope');
    assert.equal(response.statusCode, 404);
    assert.match(errorOf(response).error, /nope/);
  });

  test('reading incidents needs an incidents token once one is configured', async () => {
    assert.equal((await get('/incidents', {})).statusCode, 401);
    assert.equal((await get(`/incidents/${workflowId}`, bearer('not-a-token'))).statusCode, 401);
    assert.equal((await get('/incidents', bearer(tokens.alertmanager))).statusCode, 403);
  });

  test('acknowledging records the name of the token, not anything in the body', async () => {
    const response = await act('acknowledge', workflowId, { note: 'looking into it' });
    assert.equal(response.statusCode, 200, response.body);
    const status = response.json() as IncidentStatusView;
    assert.equal(status.acknowledgedBy, 'alice');
    const ack = status.timeline.find((e) => e.kind === 'acknowledged');
    assert.equal(ack?.actor, 'alice');
    assert.equal(ack?.message, 'alice acknowledged the incident: looking into it.', 'the note is on the timeline');
    const audited = await eventually('the acknowledgement in the audit trail', async () =>
      (await readAudit(config, workflowId)).events.find((e) => e.kind === 'acknowledged'),
    );
    assert.equal(audited.message, ack?.message, 'and in the audit trail');

    const impersonation = await act('acknowledge', workflowId, { by: 'mallory' });
    assert.equal(impersonation.statusCode, 400);
    assert.deepEqual(errorOf(impersonation).issues?.map((i) => i.path), ['by']);

    const withoutBody = await act('acknowledge', workflowId, undefined, bearer(tokens.bob));
    assert.equal(withoutBody.statusCode, 200, withoutBody.body);
    assert.equal((withoutBody.json() as IncidentStatusView).acknowledgedBy, 'bob');
  });

  test('approving a step that is not pending is answered 409', async () => {
    const response = await act('approve', workflowId, { step: 'rollback' });
    assert.equal(response.statusCode, 409, response.body);
    assert.match(errorOf(response).error, /rollback/);
    const rejected = await act('reject', workflowId, { step: 'flush-cache', reason: 'no' });
    assert.equal(rejected.statusCode, 409, rejected.body);
  });

  test('approving on an unknown incident is answered 404', async () => {
    const response = await act('approve', `HttpTestUnrouted-${randomBytes(8).toString('hex')}`, { step: 'rollback' });
    assert.equal(response.statusCode, 404, response.body);
  });

  test('an approval without a step is answered 400 naming step', async () => {
    for (const body of [{}, { step: '' }, { step: 7 }, undefined]) {
      const response = await act('approve', workflowId, body);
      assert.equal(response.statusCode, 400, response.body);
      assert.deepEqual(errorOf(response).issues?.map((i) => i.path), ['step']);
    }
    const tooLong = await act('resolve', workflowId, { note: 'x'.repeat(1001) });
    assert.equal(tooLong.statusCode, 400);
    assert.deepEqual(errorOf(tooLong).issues?.map((i) => i.path), ['note']);
    const malformed = await app.inject({
      method: 'POST',
      url: `/incidents/${workflowId}/approve`,
      headers: { ...bearer(tokens.alice), 'content-type': 'application/json' },
      payload: '{"step":',
    });
    assert.equal(malformed.statusCode, 400);
  });

  test('actions without a token are 401, with a wrong token 401, with an alerts-only token 403', async () => {
    const noToken = await act('resolve', workflowId, {}, {});
    assert.equal(noToken.statusCode, 401);
    assert.equal(noToken.headers['www-authenticate'], 'Bearer');
    assert.equal((await act('resolve', workflowId, {}, bearer('guess'))).statusCode, 401);
    assert.equal((await act('resolve', workflowId, {}, { authorization: tokens.alice })).statusCode, 401);
    assert.equal((await act('resolve', workflowId, {}, bearer(tokens.alertmanager))).statusCode, 403);
    const status = await worker.client.workflow.getHandle(workflowId).describe();
    assert.equal(status.status.name, 'RUNNING', 'none of them resolved the incident');
  });

  test('resolving answers 200 and the incident completes; later actions are answered 409', async () => {
    const response = await act('resolve', workflowId, { note: 'fixed by hand' });
    assert.equal(response.statusCode, 200, response.body);
    const outcome = await outcomeOf(worker.client, workflowId);
    assert.equal(outcome.resolution, 'resolved-by-human');
    assert.equal(outcome.resolvedBy, 'alice');

    const late = await act('acknowledge', workflowId);
    assert.equal(late.statusCode, 409, late.body);

    const closed = await get(`/incidents/${workflowId}`);
    assert.equal(closed.statusCode, 200, closed.body);
    assert.equal((closed.json() as IncidentStatusView).phase, 'resolved');
    await eventually('the incident under ?status=closed', async () => {
      const list = await get('/incidents?status=closed&limit=1000');
      return (list.json() as { incidents: IncidentSummary[] }).incidents.find((i) => i.workflowId === workflowId);
    });
  });

  test('/metrics counts incident actions by outcome and times requests by route pattern', async () => {
    const response = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(response.statusCode, 200);
    const text = response.body;
    const value = metricValues(text);
    assert.equal(value('runbooks_alerts_received_total{alertname="HttpTestUnrouted",status="firing"}'), 1);
    assert.equal(value('runbooks_incidents_started_total{runbook="generic"}'), 1);
    assert.equal(value('runbooks_alert_signals_total{action="started"}'), 1);
    assert.equal(value('runbooks_incident_actions_total{action="acknowledge",outcome="ok"}'), 2);
    assert.equal(value('runbooks_incident_actions_total{action="acknowledge",outcome="invalid"}'), 1);
    assert.equal(value('runbooks_incident_actions_total{action="acknowledge",outcome="closed"}'), 1);
    assert.equal(value('runbooks_incident_actions_total{action="approve",outcome="no-such-step"}'), 1);
    assert.equal(value('runbooks_incident_actions_total{action="reject",outcome="no-such-step"}'), 1);
    assert.equal(value('runbooks_incident_actions_total{action="approve",outcome="not-found"}'), 1);
    assert.equal(value('runbooks_incident_actions_total{action="resolve",outcome="unauthorized"}'), 3);
    assert.equal(value('runbooks_incident_actions_total{action="resolve",outcome="forbidden"}'), 1);
    assert.equal(value('runbooks_incident_actions_total{action="resolve",outcome="ok"}'), 1);
    assert.equal(value('runbooks_http_request_duration_seconds_count{method="POST",route="/incidents/:id/acknowledge",status_code="200"}'), 2);
    assert.equal(value('runbooks_http_request_duration_seconds_count{method="GET",route="/incidents/:id",status_code="404"}'), 1);
    assert.ok(!text.includes(workflowId), 'no raw incident ID in any label');
  });
});

describe('incident action refusals map to status codes', () => {
  /** A client whose Updates fail the way the workflow refuses them; no Temporal needed. */
  function refusingClient(refusal: string | Error): Client {
    const failure =
      refusal instanceof Error ? refusal : new WorkflowUpdateFailedError('Workflow Update failed', ApplicationFailure.nonRetryable(`refused: ${refusal}`, refusal));
    return {
      connection: { withDeadline: (_: unknown, fn: () => unknown) => fn(), withAbortSignal: (_: unknown, fn: () => unknown) => fn() },
      workflow: {
        getHandle: () => ({
          executeUpdate: async () => {
            throw failure;
          },
          describe: async () => {
            throw new WorkflowNotFoundError('not found', 'HttpTest-1', undefined);
          },
        }),
      },
    } as unknown as Client;
  }

  const cases: [string, string | Error, number][] = [
    ['not an approver', UpdateRefusal.notAnApprover, 403],
    ['no such pending step', UpdateRefusal.noSuchPendingStep, 409],
    ['incident closed', UpdateRefusal.alreadyClosed, 409],
    ['invalid payload', UpdateRefusal.invalidPayload, 400],
    ['workflow not found', new WorkflowNotFoundError('gone', 'HttpTest-1', undefined), 404],
  ];
  for (const [name, refusal, expected] of cases) {
    test(`a refusal for "${name}" is answered ${expected}`, async () => {
      const config = testConfig({ tokens: configuredTokens });
      const app = await buildHttpServer({ config, client: refusingClient(refusal), logger });
      try {
        const response = await app.inject({
          method: 'POST',
          url: '/incidents/HttpTest-1/approve',
          headers: bearer(tokens.bob),
          payload: { step: 'rollback' },
        });
        assert.equal(response.statusCode, expected, response.body);
        assert.equal(typeof errorOf(response).error, 'string');
        if (expected === 403) {
          const metrics = await app.inject({ method: 'GET', url: '/metrics' });
          assert.match(metrics.body, /runbooks_incident_actions_total\{action="approve",outcome="not-an-approver"\} 1/);
        }
      } finally {
        await app.close();
      }
    });
  }

  test('an unexpected failure is answered 500 without details', async () => {
    const config = testConfig({ tokens: configuredTokens });
    const quiet = pino({ level: 'silent' });
    const app = await buildHttpServer({ config, client: refusingClient(new TypeError('boom')), logger: quiet });
    try {
      const response = await app.inject({ method: 'POST', url: '/incidents/HttpTest-1/acknowledge', headers: bearer(tokens.bob) });
      assert.equal(response.statusCode, 500);
      assert.deepEqual(response.json(), { error: 'internal error' });
    } finally {
      await app.close();
    }
  });

  test('incident actions refuse everyone when no token has the incidents scope', async () => {
    const config = testConfig({ tokens: [] });
    const app = await buildHttpServer({ config, client: refusingClient(UpdateRefusal.notAnApprover), logger: pino({ level: 'silent' }) });
    try {
      const response = await app.inject({ method: 'POST', url: '/incidents/HttpTest-1/acknowledge', headers: bearer('anything') });
      assert.equal(response.statusCode, 401);
    } finally {
      await app.close();
    }
  });
});

describe('the start-up warning about scopes no token has', () => {
  /** The warnings a server logs while it is built, and what the endpoints really do without a token. */
  async function startUp(tokens: Config['tokens']) {
    const lines: Array<{ level: number; scope?: string; msg: string }> = [];
    const capture = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) });
    const config = testConfig({ tokens });
    // Enough of a client for the reads: no incidents, and no incident of that ID.
    const client = {
      connection: { withDeadline: (_: unknown, fn: () => unknown) => fn(), withAbortSignal: (_: unknown, fn: () => unknown) => fn() },
      workflow: {
        list: async function* () {},
        getHandle: (id: string) => ({
          query: async () => {
            throw new WorkflowNotFoundError('not found', id, undefined);
          },
        }),
      },
    } as unknown as Client;
    const app = await buildHttpServer({ config, client, logger: capture });
    return { app, warnings: lines.filter((l) => l.level === 40) };
  }

  test('with no tokens: one line per scope, each true for every endpoint', async () => {
    const { app, warnings } = await startUp([]);
    try {
      assert.deepEqual(
        warnings.map((w) => [w.scope, w.msg]),
        [
          ['alerts', 'no token has the "alerts" scope: POST /alerts is open to anyone who can reach it — create one with `runbooks token create NAME --scopes alerts`'],
          [
            'incidents',
            'no token has the "incidents" scope: GET /{incidents,checklists}, GET /incidents/:id and GET /incidents/:id/{report,report.svg,report.html} are open to anyone who can reach them; ' +
              'POST /incidents/:id/{approve,reject,acknowledge,resolve,complete-task,pause,resume,abort} refuse every request (401) — create one with `runbooks token create NAME --scopes incidents`',
          ],
          [
            'operations',
            'no token has the "operations" scope: GET /backfills/:id, GET /{deployments,blocks,controls} and GET /deployments/current are open to anyone who can reach them; ' +
              'POST /{backfills,deployments}, POST /backfills/:id/{pause,resume,cancel,retry-chunk,skip-chunk}, POST /deployments/rollback, POST /deployments/current/{approve,reject}, DELETE /blocks/:ip and PUT /controls refuse every request (401) — create one with `runbooks token create NAME --scopes operations`',
          ],
        ],
      );
      // What the line says is what happens: reads and the webhook let anyone in (the webhook then checks the
      // payload); actions are refused.
      const list = await app.inject({ method: 'GET', url: '/incidents' });
      assert.equal(list.statusCode, 200, list.body);
      assert.deepEqual(list.json(), { incidents: [] });
      assert.equal((await app.inject({ method: 'GET', url: '/incidents/HttpTest-1' })).statusCode, 404);
      assert.equal((await app.inject({ method: 'POST', url: '/alerts', payload: {} })).statusCode, 400);
      for (const action of ['approve', 'reject', 'acknowledge', 'resolve']) {
        assert.equal((await app.inject({ method: 'POST', url: `/incidents/HttpTest-1/${action}`, payload: {} })).statusCode, 401, action);
      }
    } finally {
      await app.close();
    }
  });

  test('a scope some token has is not mentioned; with every scope there is no warning', async () => {
    const alertsOnly = await startUp([configuredTokens[0]!]);
    await alertsOnly.app.close();
    assert.deepEqual(alertsOnly.warnings.map((w) => w.scope), ['incidents', 'operations']);
    const every = await startUp([...configuredTokens, { name: 'ops', sha256: tokenHash('ops-token'), scopes: ['operations' as const] }]);
    await every.app.close();
    assert.deepEqual(every.warnings, []);
  });
});

describe('incident endpoints when no worker serves the incident', () => {
  test('reading an incident whose worker is down is answered 503, not 500', async () => {
    // A task queue nobody polls: the webhook can start the incident, but nothing can answer its status query.
    const config = testConfig({ tokens: configuredTokens });
    const connection = await Connection.connect({ address: config.temporal.address });
    const client = new Client({ connection, namespace: config.temporal.namespace });
    const app = await buildHttpServer({ config, client, logger: pino({ level: 'silent' }) });
    let workflowId: string | undefined;
    try {
      const started = await app.inject({ method: 'POST', url: '/alerts', headers: bearer(tokens.alertmanager), payload: unroutedAlert(randomBytes(8).toString('hex')) });
      assert.equal(started.statusCode, 200, started.body);
      workflowId = (started.json() as { results: IntakeResult[] }).results[0]!.workflowId;
      const startedAt = Date.now();
      const response = await app.inject({ method: 'GET', url: `/incidents/${workflowId}`, headers: bearer(tokens.alice) });
      assert.equal(response.statusCode, 503, response.body);
      assert.ok(response.headers['retry-after']);
      assert.ok(Date.now() - startedAt < 10_000);
    } finally {
      await app.close();
      if (workflowId) await client.workflow.getHandle(workflowId).terminate('test cleanup').catch(() => undefined);
      await connection.close();
    }
  });
});
