// Paging on the time-skipping test server with the real notify activity: the ladder pages whoever a rotation has on
// call at each page (across a hand-off), acknowledges and resolves in a paging service (a local receiver that
// checks PagerDuty's Events API v2 schema), and climbs at once past a contact no channel reaches.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import pino from 'pino';
import { createNotifyActivities } from '../src/activities/notify';
import { parseConfig } from '../src/config/load';
import type { ConfigInput } from '../src/config/schema';
import type { IncidentStatusView, TimelineEvent } from '../src/incidents/model';
import { acknowledgeSignal, resolveSignal } from '../src/workflows/lifecycle/definitions';
import { recordHistoryIfAsked } from './support/histories';
import { startPagingServices, type PagingServices } from './support/pagingServices';
import { timeSkippingIncidents, type ActivityStubs } from './support/timeSkipping';

const MINUTE = 60_000;
const ROUTING_KEY = 'PAGERDUTYROUTINGKEY0123456789abc';

const incidents = timeSkippingIncidents({
  taskQueuePrefix: 'paging',
  runbook: 'generic',
  labels: { alertname: 'DiskAlmostFull', service: 'db', severity: 'critical' },
  annotations: { summary: 'disk 95% full' },
});
const { observe, outcomeOf, withIncident } = incidents;

let services: PagingServices;

/** The worker's real notify activity for this config (channels, rotations), as the incident's stub. */
function realNotify(config: ConfigInput): ActivityStubs {
  return { notify: createNotifyActivities(parseConfig(config), pino({ level: 'silent' })).notify };
}

async function advance(ms: number): Promise<void> {
  await incidents.env.sleep(ms);
}

function events(status: IncidentStatusView, kind: TimelineEvent['kind']): TimelineEvent[] {
  return status.timeline.filter((e) => e.kind === kind);
}

const slackTo = (who: string) => `${services.slackUrl.replace(/\/slack\/.*$/, '')}/slack/${who}`;
const slackPaths = () => services.slack.map((s) => s.path.replace('/slack/', ''));

describe('paging: rotations, paging services, unreachable contacts (time-skipping test server, real notify)', { timeout: 180_000 }, () => {
  before(async () => {
    services = await startPagingServices();
    await incidents.start();
  });
  after(async () => {
    await incidents.stop();
    await services?.close();
  });
  beforeEach(() => {
    for (const list of [services.pagerDuty, services.slack, services.rejected]) list.length = 0;
    services.failing.clear();
  });

  test('the ladder pages whoever the rotation has on call: alice before the hand-off, bob after; the paging service is triggered, acknowledged and resolved', async () => {
    // The hand-off is 10 minutes from now (UTC), the ladder's response time 15 minutes: level 0 pages alice, level 1 bob.
    const handoffAt = Math.ceil(((await incidents.env.currentTimeMs()) + 10 * MINUTE) / MINUTE) * MINUTE;
    const handoff = new Date(handoffAt).toISOString();
    const config: ConfigInput = {
      channels: {
        'alice-slack': { type: 'slack', url: slackTo('alice') },
        'bob-slack': { type: 'slack', url: slackTo('bob') },
        pagerduty: { type: 'pagerduty', routingKey: ROUTING_KEY, baseUrl: services.pagerDutyUrl },
      },
      contacts: {
        alice: { channels: ['alice-slack'] },
        bob: { channels: ['bob-slack'] },
        oncall: {
          rotation: {
            members: ['alice', 'bob'],
            timeZone: 'UTC',
            handoff: handoff.slice(11, 16),
            length: 'daily',
            startsOn: new Date(handoffAt - 24 * 60 * MINUTE).toISOString().slice(0, 10),
          },
        },
        'db-service': { channels: ['pagerduty'] },
      },
      escalation: {
        critical: { responseTime: '15m', escalateTo: ['oncall', 'oncall'], notify: ['db-service'] },
        high: { responseTime: '1h', escalateTo: ['oncall'] },
        medium: { responseTime: '4h', escalateTo: ['oncall'] },
        low: { responseTime: '1d', escalateTo: ['oncall'] },
      },
    };
    await withIncident(
      {},
      config,
      async (incident) => {
        let status = await observe(incident);
        const [page] = events(status, 'notified');
        assert.deepEqual(page?.data, { contacts: ['oncall', 'db-service'], delivered: ['alice-slack', 'pagerduty'], onCall: { oncall: 'alice' } });
        assert.ok(Date.parse(page!.at) < handoffAt, `paged at ${page!.at}, before the hand-off at ${handoff}`);
        assert.deepEqual(slackPaths(), ['alice']);

        await advance(16 * MINUTE);
        status = await observe(incident);
        assert.equal(status.escalationLevel, 1);
        const escalationPage = events(status, 'notified')[1];
        assert.ok(Date.parse(escalationPage!.at) >= handoffAt, `escalated at ${escalationPage!.at}, after the hand-off at ${handoff}`);
        assert.deepEqual(escalationPage?.data, { contacts: ['oncall'], delivered: ['bob-slack'], onCall: { oncall: 'bob' } });
        assert.deepEqual(slackPaths(), ['alice', 'bob']);

        await incident.signal(acknowledgeSignal, { by: 'bob' });
        status = await observe(incident);
        const ackNotice = events(status, 'notified')[2];
        assert.match(ackNotice!.message, /acknowledged by bob/);
        assert.deepEqual(ackNotice?.data, { contacts: ['oncall', 'db-service'], delivered: ['bob-slack', 'pagerduty'], onCall: { oncall: 'bob' } });

        await incident.signal(resolveSignal, { by: 'bob', note: 'cleaned up' });
        const outcome = await outcomeOf(incident);
        assert.equal(outcome.resolution, 'resolved-by-human');
        assert.deepEqual(
          services.pagerDuty.map((e) => [e.event_action, e.dedup_key]),
          [
            ['trigger', incident.workflowId],
            ['acknowledge', incident.workflowId],
            ['resolve', incident.workflowId],
          ],
          'one trigger at the first page (the escalation page goes to the rotation only), then acknowledge and resolve',
        );
        assert.deepEqual(services.rejected, []);
        await recordHistoryIfAsked(incident.workflowId, 'generic-rotation-paged-acknowledged', { address: incidents.env.address });
      },
      realNotify(config),
    );
  });

  test('a page no channel delivers (after its retries) climbs to the next contact at once, not after the response time', async () => {
    const config: ConfigInput = {
      channels: { 'primary-slack': { type: 'slack', url: slackTo('primary') }, 'lead-slack': { type: 'slack', url: slackTo('lead') } },
      contacts: { primary: { channels: ['primary-slack'] }, lead: { channels: ['lead-slack'] } },
      escalation: {
        critical: { responseTime: '15m', escalateTo: ['primary', 'lead'] },
        high: { responseTime: '1h', escalateTo: ['primary'] },
        medium: { responseTime: '4h', escalateTo: ['primary'] },
        low: { responseTime: '1d', escalateTo: ['primary'] },
      },
    };
    services.failing.add('/slack/primary');
    const startedAt = await incidents.env.currentTimeMs();
    await withIncident(
      {},
      config,
      async (incident) => {
        // The notify activity's retries (8 attempts, backing off to a minute) take about 3 minutes.
        await advance(5 * MINUTE);
        const status = await observe(incident);
        const [failed] = events(status, 'notification-failed');
        assert.ok(failed, `the page to primary failed: ${JSON.stringify(status.timeline, null, 1)}`);
        assert.deepEqual(failed.data, { contacts: ['primary'], unreached: ['primary'] });
        assert.match(failed.message, /primary-slack: HTTP 500/);
        const [escalated] = events(status, 'escalated');
        assert.match(escalated?.message ?? '', /^Could not page primary: escalated to lead \(level 1\)/);
        assert.ok(Date.parse(escalated!.at) < startedAt + 15 * MINUTE, `escalated at ${escalated!.at}, before the 15-minute response time`);
        assert.equal(status.escalatedTo, 'lead');
        assert.deepEqual(slackPaths(), ['lead']);
        // Still open (the ladder waits on lead): the history so far holds the new path.
        await recordHistoryIfAsked(incident.workflowId, 'generic-unreachable-contact-skipped', { address: incidents.env.address });
      },
      realNotify(config),
    );
  });
});
