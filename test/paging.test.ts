// Paging end to end: an alert through a real worker on the Temporal dev server pages a rotation (an override puts
// alice on call) by e-mail (a real SMTP server) and Slack, and triggers PagerDuty and Opsgenie (local receivers that
// check the documented schemas); a Slack failure is retried and the retry is on the timeline; the acknowledgement
// and the close reach the paging services under the workflow ID.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { actOnIncident } from '../src/incidents/operations';
import { dropAuditSchema } from './support/audit';
import { testConfig } from './support/config';
import { alert, fire, outcomeOf, waitForStatus } from './support/incidents';
import { startPagingServices, type PagingServices } from './support/pagingServices';
import { startSmtpServer, type LocalSmtp } from './support/smtp';
import { waitFor } from './support/wait';
import { startWorker, type RunningWorker } from './support/worker';

const ROUTING_KEY = 'INTEGRATIONROUTINGKEY0123456789a';
const HOUR = 3_600_000;

describe('paging through a real worker (Temporal dev server, SMTP server, PagerDuty / Opsgenie / Slack receivers)', { timeout: 120_000 }, () => {
  let smtp: LocalSmtp;
  let services: PagingServices;
  let worker: RunningWorker;
  let config: ReturnType<typeof testConfig>;

  before(async () => {
    smtp = await startSmtpServer('runbooks', 'smtp-password');
    services = await startPagingServices();
    const now = Date.now();
    config = testConfig({
      channels: {
        'alice-mail': { type: 'email', smtpUrl: smtp.url, from: 'runbooks@example.com', to: ['alice@example.com'] },
        'alice-slack': { type: 'slack', url: services.slackUrl.replace(/XXXX$/, 'alice') },
        'bob-slack': { type: 'slack', url: services.slackUrl.replace(/XXXX$/, 'bob') },
        pagerduty: { type: 'pagerduty', routingKey: ROUTING_KEY, baseUrl: services.pagerDutyUrl },
        opsgenie: { type: 'opsgenie', apiKey: 'integration-genie-key', baseUrl: services.opsgenieUrl },
        log: { type: 'log' },
      },
      contacts: {
        alice: { channels: ['alice-mail', 'alice-slack'] },
        bob: { channels: ['bob-slack'] },
        oncall: {
          rotation: {
            members: ['bob'],
            timeZone: 'Europe/Berlin',
            length: 'weekly',
            startsOn: '2026-01-05',
            overrides: [{ contact: 'alice', start: new Date(now - HOUR).toISOString(), end: new Date(now + HOUR).toISOString() }],
          },
        },
        'devops-lead': { channels: ['log'] },
        'service-pager': { channels: ['pagerduty', 'opsgenie'] },
      },
      escalation: {
        critical: { responseTime: '15m', escalateTo: ['oncall', 'devops-lead'], notify: ['service-pager'] },
        high: { responseTime: '1h', escalateTo: ['oncall'] },
        medium: { responseTime: '4h', escalateTo: ['oncall'] },
        low: { responseTime: '1d', escalateTo: ['oncall'] },
      },
    });
    worker = await startWorker(config, { logLevel: 'error' });
  });

  after(async () => {
    await worker?.stop();
    if (config) await dropAuditSchema(config);
    await services?.close();
    await smtp?.close();
  });

  test('the rotation is paged by e-mail and Slack, the paging services are triggered, acknowledged and resolved under the workflow ID', async () => {
    services.failing.add('/slack/T000/B000/alice');
    const intake = await fire(worker.client, config, alert('DiskAlmostFull'));
    const { workflowId } = intake;

    // The Slack webhook answers 500: the notify activity retries, and the worker puts the retry on the timeline.
    await waitForStatus(worker.client, workflowId, 'the retried page on the timeline', (s) =>
      s.timeline.some((e) => e.kind === 'activity-retried' && e.data?.activityType === 'notify'),
    );
    services.failing.clear();
    const paged = await waitForStatus(worker.client, workflowId, 'the page delivered', (s) => s.timeline.some((e) => e.kind === 'notified'));
    const page = paged.timeline.find((e) => e.kind === 'notified')!;
    assert.deepEqual((page.data?.delivered as string[]).sort(), ['alice-mail', 'alice-slack', 'opsgenie', 'pagerduty']);
    assert.deepEqual(page.data?.onCall, { oncall: 'alice' });

    assert.equal(smtp.mails.length, 1, 'one e-mail, though the notification was retried');
    assert.deepEqual(smtp.mails[0]!.rcptTo, ['alice@example.com']);
    assert.ok(smtp.mails[0]!.raw.includes(workflowId));
    assert.deepEqual(services.slack.map((s) => s.path), ['/slack/T000/B000/alice']);
    assert.deepEqual(
      services.pagerDuty.map((e) => [e.event_action, e.dedup_key]),
      [['trigger', workflowId]],
      'triggered once: the retry skipped the channels the first attempt reached',
    );

    await actOnIncident(worker.client, workflowId, { kind: 'acknowledge', by: 'alice' });
    await waitFor('PagerDuty acknowledged', async () => (services.pagerDuty.length >= 2 ? true : undefined));
    await actOnIncident(worker.client, workflowId, { kind: 'resolve', by: 'alice', note: 'logs rotated' });
    const outcome = await outcomeOf(worker.client, workflowId);
    assert.equal(outcome.resolution, 'resolved-by-human');

    assert.deepEqual(services.rejected, []);
    assert.deepEqual(
      services.pagerDuty.map((e) => [e.event_action, e.dedup_key]),
      [
        ['trigger', workflowId],
        ['acknowledge', workflowId],
        ['resolve', workflowId],
      ],
    );
    assert.deepEqual(
      services.opsgenie.map((r) => [r.action, r.alias]),
      [
        ['create', workflowId],
        ['acknowledge', workflowId],
        ['close', workflowId],
      ],
    );
    // Every byte field of the history (the payloads: JSON) as text, so a secret in any input or result would show.
    const history = (await worker.client.workflow.getHandle(workflowId).fetchHistory()).events;
    const historyText = bytesAsText(history).join('\n');
    assert.ok(historyText.includes('"contacts":["oncall","service-pager"]'), 'the notify input is readable here');
    for (const secret of [ROUTING_KEY, 'integration-genie-key', 'smtp-password', '/slack/T000/B000/alice']) {
      assert.ok(!historyText.includes(secret), `no channel secret (${secret}) in workflow history`);
    }
  });
});

function bytesAsText(value: unknown, found: string[] = []): string[] {
  if (value instanceof Uint8Array) found.push(Buffer.from(value).toString('utf8'));
  else if (value !== null && typeof value === 'object') for (const field of Object.values(value)) bytesAsText(field, found);
  return found;
}
