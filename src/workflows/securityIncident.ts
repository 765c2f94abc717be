/**
 * Runbook §7 "Security Incidents" (alerts SuspiciousActivity, BruteForceDetected; the source in the alert's `ip` label,
 * or `ip_address` as the runbook's query names it).
 * The source is checked first, in code: one IPv4/IPv6 address or CIDR network, nothing wider than the policy's
 * prefixes, never loopback, the allow-list or the runbooks' own addresses. A label that is anything else (a
 * hostname, a quote, `; rm -rf /`, a newline…) is refused as it is, and nothing is blocked or queried with it.
 * Immediate actions:
 *   1. Isolate — "block suspicious IP": the deny-list the backend enforces (`iptables -A INPUT -s … -j DROP` in the
 *      runbook; a Redis set the audit-app answers 403 here), at once with `blockImmediately`, else only with approval.
 *      It stays until a human lifts it (`runbooks unblock`), or for `blockMinutes` when set: the incident stays open
 *      until that timer lifts it, as the rate limit's raise does (a human resolving it earlier lifts it at close).
 *   2. Investigate — `docker logs backend | grep <ip>` and `SELECT * FROM audit_log WHERE ip_address = <ip>`, each
 *      summarised (requests, users touched, actions, first and last seen).
 *   3. Notify — "alert security team": the configured security contacts, at once, beside isolating (not before it:
 *      a notification retried for minutes must not hold the block back).
 *   4. Mitigate — rotate exposed credentials, patch vulnerabilities, update security rules: tasks for humans on the
 *      incident, escalated when late; the incident does not resolve while one is open.
 * "Document incident, prepare incident report": the timeline keeps the evidence and the tasks.
 */
import { ActivityFailure, patched } from '@temporalio/workflow';
import type { AuditLogEvidence } from '../activities/postgres';
import { alertOf, type IncidentInput, type IncidentOutcome, type SecuritySetup } from '../incidents/model';
import { policyOf } from '../runbooks/catalog';
import { checkBlockTarget, shown, type BlockRules } from '../security/address';
import type { BackendLogEvidence } from '../security/evidence';
import { docker, postgres, redis } from './activityProxies';
import type { RunbookContext } from './lifecycle/runbookContext';
import { runIncident } from './lifecycle/runIncident';

type Policy = ReturnType<typeof policyOf<'security-incident'>>;

/** The labels that may carry the source: `ip`, or the runbook's `ip_address`. */
const SOURCE_LABELS = ['ip', 'ip_address'] as const;

/** §7 "Mitigate", each a task for a human. */
const MITIGATION_TASKS = [
  { id: 'rotate-credentials', title: 'Rotate exposed credentials (of the users the source touched)' },
  { id: 'patch-vulnerabilities', title: 'Patch the vulnerabilities it used' },
  { id: 'update-security-rules', title: 'Update security rules (firewall, WAF, rate limits)' },
] as const;

const NO_SETUP: SecuritySetup = { denyList: 'the deny-list', allowList: [], ownAddresses: [], contacts: [] };

export async function securityIncident(input: IncidentInput): Promise<IncidentOutcome> {
  const policy = policyOf('security-incident', input.policy);
  const setup = input.security ?? NO_SETUP;
  const source = sourceOf(input, { minPrefix: { 4: policy.minPrefixV4, 6: policy.minPrefixV6 }, allowList: setup.allowList, ownAddresses: setup.ownAddresses });
  return runIncident(input, {
    prevention: ['Document the incident and prepare the incident report: the evidence and the tasks are on this incident\'s timeline.'],
    verify: async (rb) => {
      if (!source.ok || !rb.input.targets.redis) return false;
      const now = await rb.step(redis.isBlocked, { target: 'redis', source: source.source }, {
        title: `Verify: ${source.source} is still blocked`,
        summary: `SISMEMBER ${setup.denyList} ${source.source}`,
        record: (b) => `${b.source} is ${b.blocked ? '' : 'not '}on ${b.denyList}.`,
      });
      return now.blocked;
    },
    respond: async (rb) => {
      // The source, checked before anything acts on it.
      if (source.ok) rb.finding(`Source: ${source.source} (label ${source.label}).`, { source: source.source });
      else rb.finding(`The alert's source is refused: ${source.reason}. Nothing is blocked or queried with it.`);
      // 3. Notify the security team at once, beside containment: its retries can take minutes, the block must not wait.
      const notice = source.ok ? `security incident from ${source.source}; isolating it` : `security incident, but its source is unusable: ${source.reason}`;
      if (!patched('security-isolate-beside-notify')) {
        // Incidents started before this change notified first and did not hold a timed block open; they replay so.
        await rb.notify(setup.contacts, notice);
        return contain(rb, source, setup, policy, { holdTimedBlock: false });
      }
      const [, contained] = await Promise.all([rb.notify(setup.contacts, notice), contain(rb, source, setup, policy, { holdTimedBlock: true })]);
      return contained;
    },
  });
}

/** 4. the tasks for humans, listed from the start; 1. isolate; 2. investigate; then hold while a timed block lasts. */
async function contain(rb: RunbookContext, source: Source, setup: SecuritySetup, policy: Policy, { holdTimedBlock }: { holdTimedBlock: boolean }): Promise<boolean> {
  for (const task of MITIGATION_TASKS) rb.task(task.id, task.title, { dueInMs: policy.taskDueMinutes * 60_000 });
  if (!source.ok) {
    await rb.escalate(`No source to isolate (${source.reason})`);
    return false;
  }
  const isolated = await isolate(rb, source.source, setup, policy);
  await investigate(rb, source.source);
  // A timed block keeps the incident open until its timer lifts it (or a human resolves it: lifted at close).
  if (isolated && holdTimedBlock) await rb.untilUndone();
  return isolated;
}

type Source = { ok: true; source: string; label: string } | { ok: false; reason: string };

/** The one source the labels name, checked against the rules; both labels set must agree. */
function sourceOf(input: IncidentInput, rules: BlockRules): Source {
  const labels = alertOf(input.trigger)?.labels ?? {};
  const given = SOURCE_LABELS.filter((label) => Object.hasOwn(labels, label));
  if (given.length === 0) return { ok: false, reason: `the alert has no ${SOURCE_LABELS.join(' or ')} label` };
  const values = given.map((label) => labels[label]!);
  if (values.some((value) => value !== values[0])) return { ok: false, reason: `the labels disagree: ${given.map((label, i) => `${label}=${shown(values[i]!)}`).join(', ')}` };
  const checked = checkBlockTarget(values[0]!, rules);
  return checked.ok ? { ok: true, source: checked.network.text, label: given.join(', ') } : { ok: false, reason: `label ${given[0]}: ${checked.reason}` };
}

/** 1. Isolate: on the deny-list, at once or once approved; lifted after `blockMinutes` when set, else by a human. */
async function isolate(rb: RunbookContext, source: string, setup: SecuritySetup, policy: Policy): Promise<boolean> {
  if (!rb.input.targets.redis) {
    rb.note(`No Redis is configured (targets.redis), so ${setup.denyList} cannot be reached: block ${source} by hand.`);
    rb.followUp(`Block ${source} by hand: the runbooks could not reach the deny-list.`);
    return false;
  }
  const lifted = policy.blockMinutes > 0 ? `for ${policy.blockMinutes} min` : 'until a human lifts it (runbooks unblock)';
  if (policy.blockImmediately) rb.note(`Blocking ${source} at once (policy blockImmediately), ${lifted}.`);
  else if (!(await rb.approval('block-ip', `Block ${source} on ${setup.denyList} (the backend answers it 403), ${lifted}?`))) {
    rb.note(`Blocking ${source} was not approved: it is not blocked.`);
    return false;
  }
  const block = await rb.act(redis.blockSource, { target: 'redis', source }, {
    title: `Isolate: block ${source}`,
    summary: `SADD ${setup.denyList} ${source}`,
    record: (b) =>
      b.added
        ? `Blocked ${b.source}: added to ${b.denyList} (${b.size} entr${b.size === 1 ? 'y' : 'ies'}); the backend answers it 403.`
        : `${b.source} was already on ${b.denyList}: nothing added (blocking twice is one block).`,
  });
  if (!block.added) return true; // someone else's block: not ours to lift
  if (policy.blockMinutes > 0) {
    rb.onClose(redis.unblockSource, { target: 'redis', source: block.source }, {
      title: `lift the block of ${block.source}`,
      summary: `SREM ${setup.denyList} ${block.source}`,
      after: policy.blockMinutes * 60_000,
      record: (u) => (u.removed ? `Lifted the block of ${u.source} (${u.denyList}).` : `${u.source} was no longer on ${u.denyList} (lifted by hand).`),
    });
  } else rb.note(`The block of ${block.source} stays until a human lifts it: runbooks unblock ${block.source}`);
  return true;
}

/** 2. Investigate: the backend's log lines of the source and its audit_log rows, then one summary. */
async function investigate(rb: RunbookContext, source: string): Promise<void> {
  const { backend, postgres: database } = rb.input.targets;
  const log = backend
    ? await lookInto(rb, () =>
        rb.step(docker.backendLogForSource, { target: 'backend', source }, {
          title: `Investigate: the backend's log lines of ${source}`,
          summary: `docker logs ${backend.container}: lines of ${source}`,
          record: describeLog,
        }),
      )
    : undefined;
  const audit = database
    ? await lookInto(rb, () =>
        rb.step(postgres.auditLogForSource, { target: 'postgres', source }, {
          title: `Investigate: audit_log rows of ${source}`,
          summary: `SELECT … FROM audit_log WHERE ip <<= ${source}`,
          record: describeAudit,
        }),
      )
    : undefined;
  const seen = [log?.firstSeen, log?.lastSeen, audit?.firstSeen, audit?.lastSeen].filter((t): t is string => t !== undefined).sort();
  const users = [...new Set([...(audit?.users.map((u) => u.user ?? '(none)') ?? []), ...(log?.users ?? [])])];
  const actions = audit?.actions.map((a) => `${a.action} ×${a.count}`) ?? [];
  rb.finding(
    `Investigation of ${source}: ${log ? `${log.requests} request(s) in the backend's log` : 'no backend log'}, ${audit?.found ? `${audit.rows} audit_log row(s)` : 'no audit_log'}; users touched: ${users.join(', ') || 'none'}; actions: ${actions.join(', ') || 'none'}; first seen ${seen[0] ?? '-'}, last seen ${seen.at(-1) ?? '-'}.`,
    { source, requests: log?.requests ?? 0, auditLogRows: audit?.rows ?? 0, users, actions: audit?.actions ?? [], firstSeen: seen[0] ?? null, lastSeen: seen.at(-1) ?? null },
  );
}

/** A look that fails is noted; the investigation goes on with what it has. */
async function lookInto<T>(rb: RunbookContext, look: () => Promise<T>): Promise<T | undefined> {
  try {
    return await look();
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    rb.note(`Could not look: ${err.cause?.message ?? err.message}`);
    return undefined;
  }
}

function describeLog(l: BackendLogEvidence): string {
  if (!l.exists) return `Container ${l.container} does not exist: no log to read.`;
  const statuses = Object.entries(l.statuses).map(([status, n]) => `${status} ×${n}`).join(', ');
  return `${l.matched} of ${l.linesRead} log line(s) of ${l.container} are this source's: ${l.requests} request(s)${statuses ? ` (${statuses})` : ''}, ${l.blocked} blocked, ${l.rateLimited} rate limited${l.paths.length ? `; paths ${l.paths.map((p) => `${p.path} ×${p.count}`).join(', ')}` : ''}.`;
}

function describeAudit(a: AuditLogEvidence): string {
  if (!a.found) return `No audit_log to read: ${a.error ?? 'not found'}.`;
  if (a.rows === 0) return `No audit_log rows of ${a.source}.`;
  return `${a.rows} audit_log row(s) of ${a.source}: users ${a.users.map((u) => `${u.user ?? '(none)'} ×${u.count}`).join(', ')}; actions ${a.actions.map((x) => `${x.action} ×${x.count}`).join(', ')}; from ${a.firstSeen} to ${a.lastSeen}.`;
}
