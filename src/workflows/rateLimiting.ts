/**
 * Runbook §5 "Rate Limiting Issues" (alerts HighRequestRate, RateLimitExceeded: users get 429 Too Many Requests).
 * Diagnosis: "Check Redis rate limit keys" — `--scan --pattern "rate_limit:*"`, a SCAN bounded in keys and time (never
 * KEYS), with each client's counter; "Check rate limit logs" and "Identify top requesters" — the backend's "Rate limit
 * exceeded <client>" lines counted per client (in code, as `awk '{print $NF}' | sort | uniq -c | sort -rn` would);
 * the top client's share of all requests of the current windows; the limit in force; 429s per minute from /metrics.
 * Resolution: one client is most of the traffic → "Whitelist specific IPs" for a legitimate high-volume client, only with
 * approval; not approved, it is handed over to the security runbook (§7 starts with "HighRequestRate from single
 * IP"). Otherwise, a legitimate spike → "Temporarily increase limits", only with approval: the limit × `raiseFactor`,
 * put back after `raiseMinutes` on a durable timer (at once if a human closes the incident first).
 * Verify: 429s back under `max429PerMinute` (from /metrics).
 * Prevention: monitor rate limit metrics, different limits for authenticated users, API keys for known clients, a CDN.
 */
import { workflowInfo } from '@temporalio/workflow';
import type { RateLimitLog } from '../activities/docker';
import type { RateLimitedSample } from '../activities/metrics';
import type { RateLimitSettings, RateLimitStatus, RestoreResult } from '../activities/redis';
import { alertOf, type IncidentInput, type IncidentOutcome, type TargetFacts } from '../incidents/model';
import { policyOf } from '../runbooks/catalog';
import { docker, metrics, redis } from './activityProxies';
import type { RunbookContext, VerifyContext } from './lifecycle/runbookContext';
import { runIncident } from './lifecycle/runIncident';
import { handOver } from './steps/handOver';

type Policy = ReturnType<typeof policyOf<'rate-limiting'>>;

/** The runbook's SCAN: at most this many keys and this long, 500 keys a step. */
const SCAN_MAX_KEYS = 100_000;
const SCAN_MAX_MS = 5_000;
/** The alert label that may name the client (as a security alert would); only ever reported, never acted on. */
const CLIENT_LABEL = 'ip';
/** How long the raise's own record in Redis outlives the raise, should nothing undo it. */
const RAISE_RECORD_MARGIN_MS = 3_600_000;

/** The top requester: from the Redis counters (all requests of its window), else from the log's 429 lines. */
interface TopRequester {
  client: string;
  count: number;
  /** Of all requests counted (Redis), or of all rate-limited lines (log); 0..1. */
  share: number;
  from: 'redis counters' | 'backend log';
}

export async function rateLimiting(input: IncidentInput): Promise<IncidentOutcome> {
  const { redis: cache, backend } = input.targets;
  const policy = policyOf('rate-limiting', input.policy);
  return runIncident(input, {
    prevention: ['Monitor rate limit metrics.', 'Use different limits for authenticated users.', 'Implement API keys for known clients.', 'Use a CDN for static content.'],
    verify: async (rb) => backend !== undefined && (await sample429(rb, backend, policy, 'Verify: 429s after the alert resolved')).perMinute <= policy.max429PerMinute,
    respond: async (rb) => {
      if (!cache || !backend) {
        rb.note(`No ${cache ? 'backend' : 'redis'} target is configured (targets.${cache ? 'backend' : 'redis'}): nothing to look at or change.`);
        return false;
      }
      // Diagnosis
      reportLabelledClient(rb);
      const counters = await scanCounters(rb, cache);
      const log = await rateLimitedLines(rb, backend);
      const settings = await limitInForce(rb, cache);
      const limited = await sample429(rb, backend, policy, 'Diagnose: 429s per minute from /metrics');
      const top = topRequester(counters, log);
      if (top) rb.finding(`Top requester: ${literal(top.client)}, ${top.count} request(s), ${percent(top.share)} of ${top.from === 'redis counters' ? 'all requests in the current windows' : 'the rate-limited requests in the log'}.`, { ...top });
      if (limited.perMinute <= policy.max429PerMinute) {
        rb.finding(`${limited.perMinute} 429(s) per minute is under ${policy.max429PerMinute}: legitimate traffic is not being blocked, nothing to change.`);
        return true;
      }

      // Resolution: one client is most of the traffic, or a legitimate spike.
      if (top && top.share >= policy.topShare) return oneClient(rb, input, backend, top, policy);
      return temporarilyRaiseLimit(rb, cache, backend, settings, limited, policy);
    },
  });
}

/** The client an alert label names, if any: reported when it is one plain IP address, refused (as a literal) otherwise. */
function reportLabelledClient(rb: RunbookContext): void {
  const labelled = alertOf(rb.input.trigger)?.labels[CLIENT_LABEL];
  if (labelled === undefined) return;
  if (isClientAddress(labelled)) rb.finding(`The alert names client ${labelled} (label ${CLIENT_LABEL}).`, { client: labelled });
  else rb.note(`Ignored the alert's label ${CLIENT_LABEL}: it is not one client's IP address (${literal(labelled)}); the runbook goes by what Redis and the log show.`);
}

/** `redis-cli --scan --pattern "rate_limit:*" | wc -l`, with the counters of the busiest clients. */
function scanCounters(rb: RunbookContext, cache: TargetFacts): Promise<RateLimitStatus> {
  return rb.step(redis.rateLimitStatus, { target: 'redis', maxKeys: SCAN_MAX_KEYS, maxMs: SCAN_MAX_MS, top: 10 }, {
    title: 'Diagnose: rate_limit:* keys in Redis (SCAN)',
    summary: `SCAN MATCH rate_limit:* COUNT 500 on ${cache.container}`,
    record: (s) => ({
      message: `${s.keys} rate_limit:* key(s)${s.truncated ? ' (the scan stopped at its bound)' : ''}, ${s.total} request(s) in the current windows; busiest: ${s.top.slice(0, 5).map((t) => `${literal(t.client)} ${t.count}`).join(', ') || 'none'}.`,
      data: { keys: s.keys, total: s.total, truncated: s.truncated, top: s.top.map((t) => ({ client: t.client, count: t.count })) },
    }),
  });
}

/** `docker logs backend | grep "Rate limit exceeded"`, counted per client. */
function rateLimitedLines(rb: RunbookContext, backend: TargetFacts): Promise<RateLimitLog> {
  return rb.step(docker.rateLimitLog, { target: 'backend' }, {
    title: 'Diagnose: "Rate limit exceeded" lines of the backend log',
    summary: `docker logs ${backend.container} | grep "Rate limit exceeded"`,
    record: (l) => `${l.rateLimited} "Rate limit exceeded" line(s) in the last ${l.linesRead} of ${l.container}; top: ${l.top.slice(0, 5).map((t) => `${literal(t.client)} ${t.count} (${percent(t.share)})`).join(', ') || 'none'}.`,
  });
}

function limitInForce(rb: RunbookContext, cache: TargetFacts): Promise<RateLimitSettings> {
  return rb.step(redis.rateLimitSettings, { target: 'redis' }, {
    title: 'Diagnose: the limit in force',
    summary: `GET the rate limit on ${cache.container}`,
    record: (s) =>
      `The limit is ${s.limit} request(s) per client and window (${s.source === 'redis' ? 'set in Redis' : "the backend's default: no limit set in Redis"}); ${s.allowListed} client(s) allow-listed.${s.raise ? ` Raised from ${s.raise.previous ?? 'the default'} to ${s.raise.value} by ${s.raise.incident} at ${s.raise.at}.` : ''}`,
  });
}

function sample429(rb: VerifyContext, backend: TargetFacts, policy: Policy, title: string): Promise<RateLimitedSample> {
  return rb.step(metrics.sampleRateLimited, { target: 'backend', windowMs: policy.sampleWindowSeconds * 1_000 }, {
    title,
    summary: `GET /metrics of ${backend.container} twice, ${policy.sampleWindowSeconds} s apart`,
    record: (s) => `${s.perMinute} 429(s) per minute: ${s.rateLimited} of ${s.requests} /api request(s) over ${s.windowMs / 1_000} s were rate limited.`,
  });
}

/** The busiest client by the Redis counters (its share of every request counted), else by the log's 429 lines. */
function topRequester(counters: RateLimitStatus, log: RateLimitLog): TopRequester | undefined {
  const first = counters.top[0];
  if (first && counters.total > 0) return { client: first.client, count: first.count, share: first.count / counters.total, from: 'redis counters' };
  const logged = log.top[0];
  return logged ? { client: logged.client, count: logged.count, share: logged.share, from: 'backend log' } : undefined;
}

/**
 * "Whitelist specific IPs": one client is most of the traffic. A legitimate high-volume client is allow-listed, only
 * with approval; not approved, it may be an attack, and the security runbook takes it over.
 */
async function oneClient(rb: RunbookContext, input: IncidentInput, backend: TargetFacts, top: TopRequester, policy: Policy): Promise<boolean> {
  if (!isClientAddress(top.client)) {
    await rb.escalate(`The top requester is not one client's IP address (${literal(top.client)}): nothing is allow-listed or blocked automatically`);
    return false;
  }
  const question = `${top.client} is ${percent(top.share)} of the traffic (${top.count} request(s), from the ${top.from}). Allow-list it as a legitimate high-volume client (never rate limited)? Reject to hand it over to security as a possible attack.`;
  if (!(await rb.approval('allow-client', question))) {
    await handOverToSecurity(rb, input, top);
    return false;
  }
  await rb.act(redis.allowClient, { target: 'redis', client: top.client }, {
    title: `Allow-list ${top.client}`,
    summary: `SADD allowlist ${top.client}`,
    record: (r) => `${r.added ? 'Allow-listed' : 'Already allow-listed:'} ${top.client} (${r.allowListed} client(s) allow-listed).`,
  });
  rb.followUp(`Review the allow-list entry of ${top.client}: give that client an API key (runbook prevention) and take it off the allow-list.`);
  return fewer429s(rb, backend, policy);
}

/**
 * The hand-over to runbook §7 "Security Incidents", whose first symptom is "HighRequestRate from single IP": a
 * SuspiciousActivity incident for the client, started as a child (linked both ways; it outlives this one). Without a
 * route for it in the config, the timeline says which alert to fire. Either way this incident waits for a human.
 */
async function handOverToSecurity(rb: RunbookContext, input: IncidentInput, top: TopRequester): Promise<void> {
  const alert = { alertname: 'SuspiciousActivity', labels: { ip: top.client } };
  const child = await handOver(rb, input, { ...alert, summary: `${top.client} is ${percent(top.share)} of the traffic and was not allow-listed` });
  if (!child) {
    rb.note(`Handed over to security: ${top.client} was not allow-listed and may be an attack. Open a security incident for it: alert SuspiciousActivity with label ip=${top.client} (runbook §7: block it, investigate its requests and audit_log rows).`, {
      client: top.client,
      share: top.share,
      securityAlert: alert,
    });
  }
  rb.followUp(`Security incident for ${top.client} (SuspiciousActivity, ip=${top.client})${child ? `: ${child}` : ''}: block, investigate, notify.`);
  await rb.escalate(`Possible attack from ${top.client} (${percent(top.share)} of the traffic): handed over to security`);
}

/**
 * "Temporarily increase limits", only with approval: the limit × raiseFactor, put back after raiseMinutes on a durable
 * timer — or at once when a human closes the incident early. The incident stays open while the raise lasts.
 */
async function temporarilyRaiseLimit(rb: RunbookContext, cache: TargetFacts, backend: TargetFacts, settings: RateLimitSettings, limited: RateLimitedSample, policy: Policy): Promise<boolean> {
  const incident = workflowInfo().workflowId;
  if (settings.raise) {
    await rb.escalate(`The limit is already raised to ${settings.raise.value} by ${settings.raise.incident} (at ${settings.raise.at}) and 429s go on (${limited.perMinute}/min): not raised again`);
    return false;
  }
  const previous = settings.source === 'redis' ? settings.limit : null;
  const value = Math.ceil(settings.limit * policy.raiseFactor);
  const durationMs = Math.round(policy.raiseMinutes * 60_000);
  const question = `${limited.perMinute} 429(s) per minute, no single client is most of the traffic: a legitimate spike. Raise the rate limit from ${settings.limit} to ${value} per client and window for ${minutes(durationMs)}, then put it back?`;
  if (!(await rb.approval('raise-rate-limit', question))) {
    rb.note(`Raising the rate limit was not approved: it stays at ${settings.limit}.`);
    return false;
  }
  const raised = await rb.act(redis.raiseRateLimit, { target: 'redis', incident, expected: previous, value, recordTtlMs: durationMs + RAISE_RECORD_MARGIN_MS }, {
    title: `Raise the rate limit to ${value}`,
    summary: `SET the rate limit ${value} on ${cache.container} (if it is still ${previous ?? 'unset'})`,
    record: (r) => {
      switch (r.outcome) {
        case 'raised':
          return `Raised the rate limit from ${settings.limit} to ${value}.`;
        case 'already-raised':
          return `The rate limit was raised to ${value} already by this incident: not raised twice.`;
        case 'held':
          return `Not raised: ${r.raise?.incident ?? 'another incident'} raised it to ${r.raise?.value ?? r.limit} already.`;
        case 'changed':
          return `Not raised: the limit changed since the diagnosis (now ${r.limit ?? 'unset'}, was ${previous ?? 'unset'}).`;
      }
    },
  });
  if (raised.outcome === 'held' || raised.outcome === 'changed') {
    await rb.escalate('The rate limit could not be raised: someone else changed it meanwhile');
    return false;
  }
  const back = previous === null ? `unset (the backend's default, ${settings.limit})` : String(previous);
  rb.onClose(redis.restoreRateLimit, { target: 'redis', incident, previous, raised: value }, {
    title: `put the rate limit back to ${back}`,
    summary: `${previous === null ? 'DEL' : `SET ${previous}`} the rate limit on ${cache.container} (if it is still ${value})`,
    after: durationMs,
    record: (r: RestoreResult) => describeRestore(r, back, value),
  });
  rb.note(`The rate limit goes back to ${back} at ${new Date(Date.now() + durationMs).toISOString()} (in ${minutes(durationMs)}, on a durable timer), or when the incident is closed before that.`, {
    revertAt: new Date(Date.now() + durationMs).toISOString(),
    previous,
    raised: value,
  });
  const verified = await fewer429s(rb, backend, policy);
  if (verified) await rb.untilUndone();
  return verified;
}

function describeRestore(r: RestoreResult, back: string, value: number): string {
  switch (r.outcome) {
    case 'restored':
      return `Put the rate limit back to ${back}.`;
    case 'already-restored':
      return `The rate limit was back to ${back} already.`;
    case 'changed':
      return `Left the rate limit at ${r.limit ?? 'unset'}: someone changed it after the raise to ${value}.`;
    case 'not-ours':
      return `Left the rate limit at ${r.limit ?? 'unset'}: another incident's raise is in place.`;
  }
}

/** Verify: 429s back under max429PerMinute, sampled over windows until recoverWithinSeconds. */
async function fewer429s(rb: RunbookContext, backend: TargetFacts, policy: Policy): Promise<boolean> {
  const wait = await rb.step(
    metrics.waitForRateLimited,
    { target: 'backend', windowMs: policy.sampleWindowSeconds * 1_000, maxPerMinute: policy.max429PerMinute, withinMs: policy.recoverWithinSeconds * 1_000 },
    {
      title: 'Verify: 429s per minute from /metrics',
      summary: `GET /metrics of ${backend.container} until 429s are under ${policy.max429PerMinute}/min`,
      record: (w) =>
        w.belowThreshold
          ? `429s are back under ${policy.max429PerMinute} per minute: ${w.perMinute}/min (${w.rateLimited} of ${w.requests} request(s) over ${w.windowMs / 1_000} s).`
          : `Still ${w.perMinute} 429(s) per minute after ${w.samples} window(s) of ${w.windowMs / 1_000} s (over ${policy.max429PerMinute}).`,
    },
  );
  if (!wait.belowThreshold) await rb.escalate(`429s are still at ${wait.perMinute} per minute after the change`);
  return wait.belowThreshold;
}

/** One plain IPv4 or IPv6 address (not a network such as 0.0.0.0/0 or ::/0, not a hostname, not the unspecified address). */
export function isClientAddress(text: string): boolean {
  if (text.length > 45) return false;
  const v4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
  if (v4.test(text)) return text !== '0.0.0.0';
  if (!/^[0-9A-Fa-f:.]+$/.test(text) || !text.includes(':') || /^[0:]+$/.test(text)) return false;
  const [head, tail, ...more] = text.split('::');
  if (more.length > 0) return false;
  const groups = (part: string | undefined) => (part ? part.split(':') : []);
  const all = [...groups(head), ...groups(tail)];
  const last = all.at(-1) ?? '';
  const ipv4Tail = v4.test(last);
  const hex = ipv4Tail ? all.slice(0, -1) : all;
  if (!hex.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return false;
  const count = hex.length + (ipv4Tail ? 2 : 0);
  return tail === undefined ? count === 8 : count < 8;
}

/** A value from outside as a harmless literal for the timeline: quoted, control characters escaped, cut at 80 characters. */
function literal(text: string): string {
  if (isClientAddress(text)) return text;
  const cut = text.length > 80 ? `${text.slice(0, 80)}…` : text;
  return JSON.stringify(cut);
}

function percent(share: number): string {
  return `${Math.round(share * 100)}%`;
}

function minutes(ms: number): string {
  return ms < 120_000 ? `${Math.round(ms / 1_000)} s` : `${Math.round(ms / 60_000)} min`;
}
