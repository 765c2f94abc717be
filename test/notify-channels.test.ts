// The notify activity against real local receivers: an SMTP server (smtp-server) for e-mail, and HTTP stand-ins for
// PagerDuty's Events API v2, Opsgenie and Slack that check every request against the documented schema.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import pino from 'pino';
import { createNotifyActivities, type Notification, type NotifyFailureDetails, type NotifyResult } from '../src/activities/notify';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { startPagingServices, type PagingServices } from './support/pagingServices';
import { startSmtpServer, type LocalSmtp } from './support/smtp';

const ROUTING_KEY = 'R0UT1NGKEY0123456789abcdefABCDEF';
const GENIE_KEY = 'genie-key-for-the-test';
const SMTP_PASSWORD = 's3cret-smtp-password';

let smtp: LocalSmtp;
let services: PagingServices;
let config: Config;
let notify: ReturnType<typeof createNotifyActivities>['notify'];

function notification(fields: Partial<Notification> = {}): Notification {
  return { workflowId: 'alert-DiskAlmostFull-0123abcd', contacts: ['alice'], severity: 'critical', service: 'db', text: '[CRITICAL] DiskAlmostFull on db: oncall is paged', ...fields };
}

/** The failures these tests provoke on purpose are not worth a warning. */
const quietSdk = { logger: new DefaultLogger('ERROR') };

/** One attempt of the activity; `heartbeats` collects what it heartbeats, `heartbeatDetails` is what an earlier attempt left. */
async function attempt(n: Notification, heartbeatDetails?: unknown, heartbeats: unknown[] = []): Promise<NotifyResult> {
  const env = new MockActivityEnvironment({ heartbeatDetails, activityId: '7' }, quietSdk);
  env.on('heartbeat', (details: unknown) => heartbeats.push(details));
  return env.run(notify, n);
}

async function failureOf(run: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await run.then(
    () => assert.fail('the notification should have failed'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApplicationFailure, `an ApplicationFailure, not ${String(err)}`);
  return err;
}

describe('notify channels (real SMTP server, local PagerDuty / Opsgenie / Slack receivers)', () => {
  before(async () => {
    smtp = await startSmtpServer('runbooks', SMTP_PASSWORD);
    services = await startPagingServices();
    const broken = services.slackUrl.replace(/XXXX$/, 'BROKEN');
    config = parseConfig({
      channels: {
        'alice-mail': { type: 'email', smtpUrl: smtp.url, from: 'runbooks@example.com', to: ['alice@example.com', 'ops@example.com'] },
        'alice-slack': { type: 'slack', url: services.slackUrl },
        'bob-pagerduty': { type: 'pagerduty', routingKey: ROUTING_KEY, baseUrl: services.pagerDutyUrl },
        'bob-opsgenie': { type: 'opsgenie', apiKey: GENIE_KEY, baseUrl: services.opsgenieUrl },
        'broken-slack': { type: 'slack', url: broken },
      },
      contacts: {
        alice: { channels: ['alice-mail', 'alice-slack'] },
        bob: { channels: ['bob-pagerduty', 'bob-opsgenie'] },
        carol: { channels: ['broken-slack', 'alice-mail'] },
        dave: { channels: ['broken-slack'] },
        oncall: { rotation: { members: ['alice', 'bob'], timeZone: 'UTC', handoff: '09:00', length: 'daily', startsOn: '2026-11-01' } },
      },
      escalation: { critical: { responseTime: '15m', escalateTo: ['oncall'] }, high: { responseTime: '1h', escalateTo: ['oncall'] }, medium: { responseTime: '4h', escalateTo: ['oncall'] }, low: { responseTime: '1d', escalateTo: ['oncall'] } },
    });
    notify = createNotifyActivities(config, pino({ level: 'silent' })).notify;
  });
  after(async () => {
    await services?.close();
    await smtp?.close();
  });
  beforeEach(() => {
    for (const list of [smtp.mails, services.pagerDuty, services.opsgenie, services.slack, services.rejected]) list.length = 0;
    services.failing.clear();
  });

  test('an e-mail goes over SMTP with the login from the channel URL to every address, and Slack gets the text', async () => {
    const result = await attempt(notification({ text: 'DiskAlmostFull on db: oncall is paged' }));
    assert.deepEqual(result.delivered.sort(), ['alice-mail', 'alice-slack']);
    assert.deepEqual(smtp.refusedLogins, []);
    assert.equal(smtp.mails.length, 1);
    const [mail] = smtp.mails;
    assert.equal(mail!.mailFrom, 'runbooks@example.com');
    assert.deepEqual(mail!.rcptTo, ['alice@example.com', 'ops@example.com']);
    assert.match(mail!.raw, /^Subject: DiskAlmostFull on db: oncall is paged\r?$/m);
    assert.match(mail!.raw, /^Message-ID: <alert-DiskAlmostFull-0123abcd\.7\.alice-mail@temporal-runbooks>\r?$/im);
    assert.deepEqual(services.slack.map((s) => s.message), [{ text: 'DiskAlmostFull on db: oncall is paged' }]);
    assert.deepEqual(services.rejected, []);
  });

  test('PagerDuty and Opsgenie get trigger, acknowledge and resolve keyed by the workflow ID, each valid per the documented schema', async () => {
    for (const event of ['trigger', 'acknowledge', 'resolve'] as const) await attempt(notification({ contacts: ['bob'], event }));
    assert.deepEqual(services.rejected, []);
    assert.deepEqual(services.pagerDuty, [
      {
        routing_key: ROUTING_KEY,
        event_action: 'trigger',
        dedup_key: 'alert-DiskAlmostFull-0123abcd',
        payload: { summary: '[CRITICAL] DiskAlmostFull on db: oncall is paged', source: 'db', severity: 'critical' },
      },
      { routing_key: ROUTING_KEY, event_action: 'acknowledge', dedup_key: 'alert-DiskAlmostFull-0123abcd' },
      { routing_key: ROUTING_KEY, event_action: 'resolve', dedup_key: 'alert-DiskAlmostFull-0123abcd' },
    ]);
    assert.deepEqual(
      services.opsgenie.map((r) => [r.action, r.alias, r.apiKey]),
      [
        ['create', 'alert-DiskAlmostFull-0123abcd', GENIE_KEY],
        ['acknowledge', 'alert-DiskAlmostFull-0123abcd', GENIE_KEY],
        ['close', 'alert-DiskAlmostFull-0123abcd', GENIE_KEY],
      ],
    );
    assert.equal((services.opsgenie[0]!.body as { priority: string }).priority, 'P1');
  });

  test('paging services skip a notification that is information only; the others still get it', async () => {
    const result = await attempt(notification({ contacts: ['alice', 'bob'] }));
    assert.deepEqual(result.skipped?.sort(), ['bob-opsgenie', 'bob-pagerduty']);
    assert.deepEqual(result.delivered.sort(), ['alice-mail', 'alice-slack']);
    assert.deepEqual([services.pagerDuty.length, services.opsgenie.length], [0, 0]);
  });

  test('Slack shows the links as buttons (a place for one-click actions)', async () => {
    await attempt(notification({ contacts: ['alice'], links: [{ label: 'Acknowledge', url: 'https://runbooks.example.com/ack/abc' }] }));
    assert.deepEqual(services.rejected, []);
    assert.deepEqual(services.slack[0]?.message.blocks?.[1], {
      type: 'actions',
      elements: [{ type: 'button', text: { type: 'plain_text', text: 'Acknowledge' }, url: 'https://runbooks.example.com/ack/abc' }],
    });
    assert.match(smtp.mails[0]!.raw, /Acknowledge: https:\/\/runbooks\.example\.com\/ack\/abc/);
  });

  test("a rotation is paged on the channels of whoever it has on call at the notification's instant", async () => {
    const beforeHandoff = await attempt(notification({ contacts: ['oncall'], event: 'trigger', at: Date.parse('2026-11-02T08:59:00Z') }));
    assert.deepEqual(beforeHandoff.onCall, { oncall: 'alice' });
    assert.deepEqual(beforeHandoff.delivered.sort(), ['alice-mail', 'alice-slack']);
    const afterHandoff = await attempt(notification({ contacts: ['oncall'], event: 'trigger', at: Date.parse('2026-11-02T09:00:00Z') }));
    assert.deepEqual(afterHandoff.onCall, { oncall: 'bob' });
    assert.deepEqual(afterHandoff.delivered.sort(), ['bob-opsgenie', 'bob-pagerduty']);
    assert.equal(services.pagerDuty.length, 1);
  });

  test('a failing channel fails the attempt (retryable), naming only contacts no channel reached; the retry sends only what is missing', async () => {
    services.failing.add('/slack/T000/B000/BROKEN');
    const heartbeats: unknown[] = [];
    const failure = await failureOf(attempt(notification({ contacts: ['carol', 'dave'] }), undefined, heartbeats));
    assert.equal(failure.type, 'NotifyFailed');
    assert.equal(failure.nonRetryable, false);
    assert.deepEqual(failure.details, [{ unreachedContacts: ['dave'] } satisfies NotifyFailureDetails]);
    assert.match(failure.message, /broken-slack: HTTP 500/);
    assert.doesNotMatch(failure.message, /BROKEN|127\.0\.0\.1/, 'the channel URL (a secret) is not in the failure');
    assert.equal(smtp.mails.length, 1, 'carol was reached by e-mail');

    services.failing.clear();
    const retried = await attempt(notification({ contacts: ['carol', 'dave'] }), heartbeats.at(-1));
    assert.deepEqual(retried.delivered.sort(), ['alice-mail', 'broken-slack']);
    assert.equal(smtp.mails.length, 1, 'the retry did not send the e-mail again');
    assert.equal(services.slack.length, 1);
  });

  test('a refused SMTP login fails the delivery without the password in the failure', async () => {
    const wrongLogin = parseConfig({
      channels: { mail: { type: 'email', smtpUrl: smtp.url.replace(encodeURIComponent(SMTP_PASSWORD), 'wrong-password'), from: 'runbooks@example.com', to: ['alice@example.com'] } },
      contacts: { alice: { channels: ['mail'] } },
      escalation: { critical: { responseTime: '15m', escalateTo: ['alice'] }, high: { responseTime: '1h', escalateTo: ['alice'] }, medium: { responseTime: '4h', escalateTo: ['alice'] }, low: { responseTime: '1d', escalateTo: ['alice'] } },
    });
    const env = new MockActivityEnvironment({}, quietSdk);
    const failure = await failureOf(env.run(createNotifyActivities(wrongLogin, pino({ level: 'silent' })).notify, notification()));
    assert.deepEqual(failure.details, [{ unreachedContacts: ['alice'] }]);
    assert.deepEqual(smtp.refusedLogins, ['runbooks']);
    assert.doesNotMatch(failure.message, /wrong-password|s3cret/);
    assert.equal(smtp.mails.length, 0);
  });
});
