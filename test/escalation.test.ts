// The escalation ladder with the real response times (15 min, 1 h, 4 h, next business day) on the
// time-skipping test server. The lifecycle activities `notify` and `recordTimeline` are fakes: the page log
// (`pages`) is what the ladder sent, and nothing is written anywhere.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ConfigInput } from '../src/config/schema';
import { nextBusinessDayStart } from '../src/workflows/lifecycle/businessDays';
import { acknowledgeSignal, resolveSignal } from '../src/workflows/lifecycle/definitions';
import { type IncidentStatusView, type TimelineEvent, type TimelineKind } from '../src/incidents/model';
import * as attributes from '../src/workflows/searchAttributes';
import { timeSkippingIncidents, type Incident, type Page } from './support/timeSkipping';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
/** How far around a deadline the tests look: enough for the worker's round trips, far below any response time. */
const SLACK = 5 * SECOND;

const incidents = timeSkippingIncidents({
  taskQueuePrefix: 'escalation',
  runbook: 'generic',
  labels: { alertname: 'DiskAlmostFull', service: 'db' },
  annotations: { summary: 'disk 95% full' },
});
const { pages, observe, outcomeOf, withIncident } = incidents;

/** Moves the test server's clock to `instant` (it never goes back). */
async function advanceTo(instant: number): Promise<void> {
  const testEnv = incidents.env;
  const now = await testEnv.currentTimeMs();
  assert.ok(instant > now, `cannot go back in time: ${new Date(instant).toISOString()} is before ${new Date(now).toISOString()}`);
  await testEnv.sleep(instant - now);
}

function eventsOf(status: IncidentStatusView, kind: TimelineKind): TimelineEvent[] {
  return status.timeline.filter((e) => e.kind === kind);
}

function only(status: IncidentStatusView, kind: TimelineKind): TimelineEvent {
  const events = eventsOf(status, kind);
  assert.equal(events.length, 1, `one "${kind}" event expected: ${JSON.stringify(status.timeline, null, 1)}`);
  return events[0]!;
}

function pagesOf(handle: Incident): Page[] {
  return pages.filter((p) => p.workflowId === handle.workflowId);
}

/** The moment the level-0 page went out: the ladder's clock starts there. */
async function pagedAt(handle: Incident): Promise<number> {
  const status = await observe(handle);
  const page = eventsOf(status, 'notified')[0];
  assert.ok(page, `no level-0 page yet: ${JSON.stringify(status.timeline, null, 1)}`);
  return Date.parse(page.at);
}

async function assertLevel(handle: Incident, level: number, when: string): Promise<IncidentStatusView> {
  const status = await observe(handle);
  assert.equal(status.escalationLevel, level, `escalation level ${when}`);
  assert.equal(eventsOf(status, 'escalated').length, level, `"escalated" events ${when}`);
  return status;
}

describe('escalation ladder (time-skipping test server, real durations)', { timeout: 120_000 }, () => {
  before(() => incidents.start());
  after(() => incidents.stop());

  test('critical: oncall, management and the status page are paged at once, devops-lead after 15 minutes without an ack', async () => {
    await withIncident({ severity: 'critical' }, {}, async (incident) => {
      const t0 = await pagedAt(incident);
      let status = await assertLevel(incident, 0, 'at the start');
      assert.equal(status.escalatedTo, 'oncall');
      assert.deepEqual(
        pagesOf(incident).map((p) => p.contacts),
        [['oncall', 'management', 'status-page']],
      );
      assert.match(pagesOf(incident)[0]!.text, /^\[CRITICAL\] DiskAlmostFull on db: disk 95% full — oncall is paged/);

      await advanceTo(t0 + 14 * MINUTE);
      await assertLevel(incident, 0, 'at 14 min');
      await advanceTo(t0 + 15 * MINUTE - SLACK);
      await assertLevel(incident, 0, 'just before 15 min');
      assert.equal(pagesOf(incident).length, 1, 'nobody else paged before 15 min');

      await advanceTo(t0 + 15 * MINUTE + SLACK);
      status = await assertLevel(incident, 1, 'just after 15 min');
      assert.equal(status.escalatedTo, 'devops-lead');
      const escalated = only(status, 'escalated');
      assert.deepEqual(escalated.data, { level: 1, contact: 'devops-lead' });
      const escalatedAt = Date.parse(escalated.at);
      assert.ok(escalatedAt >= t0 + 15 * MINUTE && escalatedAt < t0 + 15 * MINUTE + SLACK, `escalated at ${escalated.at}, 15 min after ${new Date(t0).toISOString()}`);
      const [, second, ...rest] = pagesOf(incident);
      assert.deepEqual(second?.contacts, ['devops-lead']);
      assert.match(second!.text, /escalated to you \(level 1,/);
      assert.deepEqual(rest, []);

      // The incident shows in the UI by its search attributes (registered on the test server in `before`).
      const { typedSearchAttributes } = await incident.describe();
      assert.equal(typedSearchAttributes.get(attributes.RunbookName), 'generic');
      assert.equal(typedSearchAttributes.get(attributes.AlertName), 'DiskAlmostFull');
      assert.equal(typedSearchAttributes.get(attributes.Severity), 'critical');
      assert.equal(typedSearchAttributes.get(attributes.Service), 'db');
      assert.equal(typedSearchAttributes.get(attributes.IncidentStatus), 'needs-human');
      assert.equal(typedSearchAttributes.get(attributes.EscalationLevel), '1');
    });
  });

  test('an ack at 10 min stops the clock; still unresolved 15 min after the ack, the ack is stale and the ladder climbs', async () => {
    await withIncident({ severity: 'critical' }, {}, async (incident) => {
      const t0 = await pagedAt(incident);
      await advanceTo(t0 + 10 * MINUTE);
      await incident.signal(acknowledgeSignal, { by: 'alice' });
      let status = await observe(incident);
      assert.equal(status.acknowledgedBy, 'alice');
      const ackedAt = Date.parse(only(status, 'acknowledged').at);
      assert.ok(ackedAt >= t0 + 10 * MINUTE && ackedAt < t0 + 10 * MINUTE + SLACK, `acknowledged at ${new Date(ackedAt).toISOString()}`);

      await advanceTo(t0 + 15 * MINUTE + SLACK);
      await assertLevel(incident, 0, 'past the first 15 min, acknowledged');
      await advanceTo(t0 + 20 * MINUTE);
      await assertLevel(incident, 0, 'at 20 min, acknowledged at 10 min');
      await advanceTo(ackedAt + 15 * MINUTE - SLACK);
      status = await assertLevel(incident, 0, 'just before 15 min after the ack');
      assert.equal(status.acknowledgedBy, 'alice');
      assert.deepEqual(
        pagesOf(incident).map((p) => [p.contacts, p.event]),
        [
          [['oncall', 'management', 'status-page'], 'trigger'],
          [['oncall', 'management', 'status-page'], 'acknowledge'],
        ],
        'nobody else paged while the ack is fresh; whoever was told of the page hears of the ack',
      );
      assert.match(pagesOf(incident)[1]!.text, /: acknowledged by alice \(/);

      await advanceTo(ackedAt + 15 * MINUTE + SLACK);
      status = await assertLevel(incident, 1, 'just after 15 min after the ack (25 min)');
      const stale = only(status, 'ack-stale');
      const escalated = only(status, 'escalated');
      assert.ok(stale.seq < escalated.seq, 'the stale ack is recorded before the escalation');
      assert.match(stale.message, /Acknowledged by alice but still unresolved/);
      assert.ok(Date.parse(stale.at) >= ackedAt + 15 * MINUTE, `ack-stale at ${stale.at}`);
      assert.equal(status.acknowledgedBy, undefined, 'a stale ack no longer counts');
      assert.equal(status.escalatedTo, 'devops-lead');
      assert.deepEqual(
        pagesOf(incident).map((p) => p.contacts),
        [['oncall', 'management', 'status-page'], ['oncall', 'management', 'status-page'], ['devops-lead']],
      );
    });
  });

  for (const { severity, responseTime, label, levelZero } of [
    { severity: 'high', responseTime: HOUR, label: '1 h', levelZero: ['oncall', 'team-lead'] },
    { severity: 'medium', responseTime: 4 * HOUR, label: '4 h', levelZero: ['team-member', 'team'] },
  ]) {
    test(`${severity}: the ladder climbs after ${label} without an ack, not before`, async () => {
      await withIncident({ severity }, {}, async (incident) => {
        const t0 = await pagedAt(incident);
        assert.deepEqual(pagesOf(incident)[0]?.contacts, levelZero);
        await advanceTo(t0 + responseTime - SLACK);
        await assertLevel(incident, 0, `just before ${label}`);
        await advanceTo(t0 + responseTime + SLACK);
        const status = await assertLevel(incident, 1, `just after ${label}`);
        assert.equal(pagesOf(incident).length, 2);
        // Both ladders have one rung: level 1 pages the last contact again.
        assert.deepEqual(pagesOf(incident)[1]?.contacts, [status.escalatedTo]);
      });
    });
  }

  test('low: the clock runs to the start of the next business day (Friday 17:00 → Monday 09:00 in Berlin)', async () => {
    const businessHours = { timeZone: 'Europe/Berlin', startHour: 9, days: [1, 2, 3, 4, 5] };
    // Start on a Friday at 17:00 Berlin time, so the weekend is always crossed.
    await advanceTo(nextBusinessDayStart(await incidents.env.currentTimeMs(), { ...businessHours, startHour: 17, days: [5] }));
    // A 2-minute response time: if the ladder ignored the business hours it would climb long before Monday.
    const config: ConfigInput = { escalation: { low: { responseTime: '2m', escalateTo: ['team-member'] }, businessHours } };
    await withIncident({ severity: 'low' }, config, async (incident) => {
      const status = await observe(incident);
      const startedAt = Date.parse(only(status, 'detected').at);
      const expected = nextBusinessDayStart(startedAt, businessHours);
      const local = new Intl.DateTimeFormat('en-US', { timeZone: 'Europe/Berlin', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
      assert.equal(local.format(startedAt), 'Fri 17:00');
      assert.equal(local.format(expected), 'Mon 09:00');
      assert.ok(expected - startedAt >= 63 * HOUR, `Friday 17:00 to Monday 09:00 is 63 to 65 h, not ${(expected - startedAt) / HOUR} h`);

      await advanceTo(startedAt + 10 * MINUTE);
      await assertLevel(incident, 0, '10 min in (the 2 min response time does not apply to low)');
      await advanceTo(expected - MINUTE);
      await assertLevel(incident, 0, 'at Monday 08:59');
      assert.equal(pagesOf(incident).length, 1);
      await advanceTo(expected + MINUTE);
      const escalated = only(await assertLevel(incident, 1, 'at Monday 09:01'), 'escalated');
      assert.ok(Date.parse(escalated.at) >= expected, `escalated at ${escalated.at}, before ${new Date(expected).toISOString()}`);
      assert.deepEqual(
        pagesOf(incident).map((p) => p.contacts),
        [['team-member'], ['team-member']],
      );
    });
  });

  test('resolve ends the ladder: resolved-by-human, a [RESOLVED] notice to everyone involved, and no pages after it', async () => {
    await withIncident({ severity: 'critical' }, {}, async (incident) => {
      const t0 = await pagedAt(incident);
      await advanceTo(t0 + 15 * MINUTE + SLACK);
      await assertLevel(incident, 1, 'before the resolve');
      const pagesBefore = pagesOf(incident).length;

      await incident.signal(resolveSignal, { by: 'bob', note: 'cleaned up /var/log' });
      const outcome = await outcomeOf(incident);
      assert.equal(outcome.resolution, 'resolved-by-human');
      assert.equal(outcome.resolvedBy, 'bob');
      assert.equal(outcome.escalationLevel, 1);
      const last = outcome.timeline.at(-1)!;
      assert.equal(last.kind, 'resolved');
      assert.equal(last.actor, 'bob');
      assert.equal(last.message, 'Resolved by bob.');

      const afterResolve = pagesOf(incident).slice(pagesBefore);
      assert.equal(afterResolve.length, 1, `one notice after the resolve: ${JSON.stringify(afterResolve)}`);
      assert.match(afterResolve[0]!.text, /^\[RESOLVED\] DiskAlmostFull on db: Resolved by bob\./);
      assert.deepEqual(afterResolve[0]!.contacts, ['oncall', 'devops-lead', 'management', 'status-page']);

      // Past the next 15-minute deadline nothing more is paged: the ladder is over.
      await advanceTo(t0 + 45 * MINUTE);
      assert.equal(pagesOf(incident).length, pagesBefore + 1);
      assert.equal((await incident.describe()).status.name, 'COMPLETED');
    });
  });
});
