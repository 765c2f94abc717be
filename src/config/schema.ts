import { z } from 'zod';
import { severities } from '../incidents/model';
import { approvalKinds, catalog, FALLBACK_RUNBOOK, isScheduled, runbookNames, type PolicyValue, type RunbookName, type TargetName } from '../runbooks/catalog';
import { parseNetwork } from '../security/address';
import { DEFAULT_RATE_LIMIT, ETL_COUNTIES, EtlPaths, LATEST_BACKUP_FILE, RedisKeys } from '../sandbox/auditApp/contract';

const SeveritySchema = z.enum(severities);
/** Runbooks come from the catalog (src/runbooks/catalog.ts). */
const RunbookNameSchema = z.enum(runbookNames);
/** Kinds of step that need a human's approval, from the catalog; approvers are configured per kind. */
const ApprovalKindSchema = z.enum(approvalKinds);

const durationPattern = /^(\d+)(ms|s|m|h|d)$/;
/** "15m", "1h", "30s" → milliseconds. */
const DurationSchema = z
  .string()
  .regex(durationPattern, 'a duration such as 30s, 15m, 1h or 2d')
  .transform((text) => {
    const [, amount, unit] = durationPattern.exec(text)!;
    const unitMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit as 'ms' | 's' | 'm' | 'h' | 'd'];
    return Number(amount) * unitMs;
  });

const httpUrl = z.url({ protocol: /^https?$/ });
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'letters, digits, _ . - (max 63)');

const BackendTargetSchema = z.strictObject({
  container: name,
  healthUrl: httpUrl,
  /** Its Prometheus metrics, with an `http_request_duration_seconds` histogram labelled by `route` (slow-responses runbook). */
  metricsUrl: httpUrl.optional(),
  /** How long the service may take to answer /health after a restart or rollback. */
  healthyWithin: DurationSchema.prefault('30s'),
});

/** A Redis key of letters, digits and _ . : - (no glob characters, no spaces): the runbooks never build one from alert data. */
const redisKey = z.string().regex(/^[A-Za-z0-9_.:-]{1,200}$/, 'a Redis key of letters, digits, _ . : - (max 200)');

/**
 * Where the backend keeps its rate limiting in this Redis (the rate-limiting runbook reads and changes it). Defaults: the
 * audit-app's keys (`rate_limit:<client ip>` counters, the limit in `config:rate_limit:limit`, absent = 120).
 */
const RateLimitKeysSchema = z.strictObject({
  /** Per-client counters are `<counterPrefix><client ip>`; SCAN matches `<counterPrefix>*`. */
  counterPrefix: redisKey.default(RedisKeys.rateLimit('')),
  /** The limit per window (an integer) the backend reads. */
  limitKey: redisKey.default(RedisKeys.rateLimitConfig),
  /** The backend's limit when `limitKey` is absent (its own default): a raise starts from it, and the undo deletes the key again. */
  defaultLimit: z.number().int().min(1).default(DEFAULT_RATE_LIMIT),
  /** A set of client IPs the backend never limits. */
  allowListKey: redisKey.default(RedisKeys.allowlist),
  /** The runbooks' own record of a temporary raise (JSON: incident, previous, raised value): one raise at a time, undone once. */
  raiseKey: redisKey.default('runbooks:rate_limit:raise'),
});

const RedisTargetSchema = z.strictObject({
  container: name,
  /** May carry a password: stays in the worker, never in workflow history. */
  url: z.url({ protocol: /^rediss?$/ }),
  healthyWithin: DurationSchema.prefault('30s'),
  rateLimit: RateLimitKeysSchema.prefault({}),
});

const PostgresTargetSchema = z.strictObject({
  container: name,
  /** The application database, e.g. postgres://postgres@127.0.0.1:5432/audit_app. May carry a password: stays in the worker. */
  url: z.url({ protocol: /^postgres(ql)?$/ }),
  /** How long the server may take to accept connections again after a restart or a restore. */
  healthyWithin: DurationSchema.prefault('30s'),
  /** The dump `pg_restore` restores from, inside the container (the runbook's /backups/latest.dump). */
  backupFile: z.string().regex(/^\/[A-Za-z0-9_./-]{1,255}$/, 'an absolute path of letters, digits, _ . / -').default(LATEST_BACKUP_FILE),
});

const absolutePath = z.string().regex(/^\/[A-Za-z0-9_./-]{0,255}$/, 'an absolute path of letters, digits, _ . / -');

const EtlTargetSchema = z.strictObject({
  /** The container the ETL job runs in (`docker exec` runs the pipeline there). */
  container: name,
  /** Where the pipeline downloads to, inside the container (the runbook cleans it when the disk is full). */
  downloadsDir: absolutePath.default(EtlPaths.downloadsDir),
  /** The argv prefix the runbooks exec in the container, e.g. ["python", "-m", "etl.kenya_pipeline"]; the sandbox's ["node", "/app/etl.js"]. */
  program: z.array(z.string().min(1)).min(1).default([...EtlPaths.argv]),
  /** How long the container may take to run again after a restart. */
  healthyWithin: DurationSchema.prefault('30s'),
});

/** One schema per target name of the catalog. */
const targetSchemas = {
  backend: BackendTargetSchema,
  redis: RedisTargetSchema,
  postgres: PostgresTargetSchema,
  etl: EtlTargetSchema,
} satisfies Record<TargetName, z.ZodType>;

const RouteSchema = z.strictObject({
  runbook: RunbookNameSchema,
  /** Severity when the alert carries no usable `severity` label. */
  defaultSeverity: SeveritySchema.default('high'),
});

const EscalationRuleSchema = z.strictObject({
  /** Time to acknowledge before the next level is paged (ignored for `low`, which waits for the next business day). */
  responseTime: DurationSchema,
  /** Contacts paged in order: level 0 first, the next one each time the response time runs out. */
  escalateTo: z.array(name).min(1),
  /** Contacts told about the incident without being paged. */
  notify: z.array(name).default([]),
});

const TimeZoneSchema = z.string().refine(isKnownTimeZone, 'an IANA time zone such as Europe/Berlin');

/** Its output is the incident model's BusinessHours (intake copies it into the incident as is). */
const BusinessHoursSchema = z.strictObject({
  timeZone: TimeZoneSchema,
  /** Hour (0-23, local) the business day starts. */
  startHour: z.number().int().min(0).max(23).default(9),
  /** ISO weekdays that are business days: 1 = Monday … 7 = Sunday. */
  days: z.array(z.number().int().min(1).max(7)).min(1).default([1, 2, 3, 4, 5]),
});

/** An instant with its offset, e.g. 2026-12-24T18:00:00+01:00. */
const instant = z.iso.datetime({ offset: true });

const RotationOverrideSchema = z
  .strictObject({
    /** A contact with channels who is on call instead, from `start` (inclusive) to `end`. */
    contact: name,
    start: instant,
    end: instant,
  })
  .refine((o) => Date.parse(o.end) > Date.parse(o.start), { message: 'end must be after start', path: ['end'] });

/** Who is on call when: members take turns of `length`, handing off at `handoff` local time in `timeZone`. */
const RotationSchema = z.strictObject({
  /** Contacts with channels, in turn order. */
  members: z.array(name).min(1),
  timeZone: TimeZoneSchema,
  /** Local wall-clock time of each hand-off, HH:MM. */
  handoff: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a local time HH:MM, e.g. 09:00').default('09:00'),
  length: z.enum(['daily', 'weekly']),
  /** The local date the first member's first turn starts (at `handoff`); weekly turns hand off on that weekday. */
  startsOn: z.iso.date(),
  /** Swaps and holidays; where several cover an instant, the last one listed wins. */
  overrides: z.array(RotationOverrideSchema).default([]),
});

/** A person or group reached on its channels, or a rotation: whoever is on call when it is paged. */
const ContactSchema = z.union([
  z.strictObject({ displayName: z.string().min(1).optional(), channels: z.array(name).min(1) }),
  z.strictObject({ displayName: z.string().min(1).optional(), rotation: RotationSchema }),
]);

/** Where a notification goes. Every URL, key and password here is a secret: resolved in the worker, never logged, never in workflow history. */
const ChannelSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('webhook'),
    /** Treated as a secret (Slack webhook URLs are): never logged, never written to workflow history. */
    url: httpUrl,
  }),
  z.strictObject({ type: z.literal('log') }),
  z.strictObject({
    type: z.literal('slack'),
    /** A Slack incoming-webhook URL: a secret, as `webhook.url`. */
    url: httpUrl,
  }),
  z.strictObject({
    type: z.literal('email'),
    /** The SMTP server; `smtp://user:password@host:587` (STARTTLS when offered) or `smtps://…:465`. The password stays in the worker. */
    smtpUrl: z.url({ protocol: /^smtps?$/ }),
    from: z.email(),
    to: z.array(z.email()).min(1),
  }),
  z.strictObject({
    type: z.literal('pagerduty'),
    /** The service integration's routing key: a secret. */
    routingKey: z.string().regex(/^[A-Za-z0-9]{32}$/, '32 letters or digits (the integration key of a PagerDuty service)'),
    baseUrl: httpUrl.default('https://events.pagerduty.com'),
  }),
  z.strictObject({
    type: z.literal('opsgenie'),
    /** An API integration's key: a secret. */
    apiKey: z.string().min(1),
    /** https://api.eu.opsgenie.com for the EU instance. */
    baseUrl: httpUrl.default('https://api.opsgenie.com'),
  }),
]);

/** An IPv4/IPv6 address or CIDR network (host bits zero), kept in its canonical form. */
const NetworkSchema = z.string().transform((text, ctx) => {
  const parsed = parseNetwork(text);
  if (parsed.ok) return parsed.network.text;
  ctx.addIssue({ code: 'custom', message: parsed.reason });
  return z.NEVER;
});

/** The security-incident runbook: where it blocks, what it never blocks, whom it tells at once. */
const SecuritySchema = z.strictObject({
  /** The deny-list the backend enforces. Only a Redis set of `targets.redis` so far (the audit-app's `blocklist:ips`). */
  denyList: z
    .strictObject({
      target: z.literal('redis').default('redis'),
      key: z.string().regex(/^[A-Za-z0-9_.:-]{1,200}$/, 'a Redis key: letters, digits, _ . : -').default(RedisKeys.blocklist),
    })
    .prefault({}),
  /** Networks that are never blocked (your offices, partners, monitoring), e.g. [10.0.0.0/8, 2001:db8::/32]. */
  allowList: z.array(NetworkSchema).default([]),
  /** The runbooks' own addresses and those of the proxies and services they need: never blocked (loopback never is). */
  ownAddresses: z.array(NetworkSchema).default([]),
  /** Told at once when a security incident opens, besides the severity's ladder. Default: `security-team` when that contact exists, else the critical ladder's first contact. */
  contacts: z.array(name).min(1).optional(),
});

/** What a token lets in: `alerts` the webhook, `incidents` incident actions, `operations` backfills and the deny-list. */
export const tokenScopes = ['alerts', 'incidents', 'operations'] as const;

const TokenSchema = z.strictObject({
  /** The identity recorded when this token approves, acknowledges or resolves. */
  name,
  /** sha256 of the token, hex: `printf %s "$TOKEN" | sha256sum`. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex characters (sha256 of the token)'),
  scopes: z.array(z.enum(tokenScopes)).min(1),
});

/** `policies.<runbook>.<key>`: overrides of the catalog's policy values, only keys the catalog knows. */
const PoliciesSchema = z.strictObject(
  Object.fromEntries(
    runbookNames.map((runbook) => [
      runbook,
      z
        .strictObject(
          Object.fromEntries(
            Object.entries(catalog[runbook].policy as Record<string, PolicyValue>).map(([key, value]) => [
              key,
              (typeof value === 'boolean' ? z.boolean() : z.number().finite().min(0)).optional(),
            ]),
          ),
        )
        .optional(),
    ]),
  ) as Record<RunbookName, z.ZodOptional<z.ZodObject<Record<string, z.ZodOptional<z.ZodNumber | z.ZodBoolean>>>>>,
);

/** Each alert a catalog entry answers, routed to it with the entry's severity. */
function defaultRoutes(): Record<string, { runbook: RunbookName; defaultSeverity: (typeof severities)[number] }> {
  const routes: Record<string, { runbook: RunbookName; defaultSeverity: (typeof severities)[number] }> = {};
  for (const runbook of runbookNames) {
    for (const [alertname, defaultSeverity] of Object.entries(catalog[runbook].alerts)) routes[alertname] = { runbook, defaultSeverity };
  }
  return routes;
}


/** A calendar field: one value, a list of them, or '*' (every). */
const calendarField = <T extends z.ZodType>(value: T) => z.union([value, z.array(value).min(1), z.literal('*')]).optional();
const between = (min: number, max: number) => z.number().int().min(min).max(max);
const months = ['JANUARY', 'FEBRUARY', 'MARCH', 'APRIL', 'MAY', 'JUNE', 'JULY', 'AUGUST', 'SEPTEMBER', 'OCTOBER', 'NOVEMBER', 'DECEMBER'] as const;
const daysOfWeek = ['SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY'] as const;

/** Temporal's calendar spec (a second matches when every field does); left-out fields: 0 for second, minute, hour, else every. */
const CalendarSchema = z.strictObject({
  second: calendarField(between(0, 59)),
  minute: calendarField(between(0, 59)),
  hour: calendarField(between(0, 23)),
  dayOfMonth: calendarField(between(1, 31)),
  month: calendarField(z.enum(months)),
  dayOfWeek: calendarField(z.enum(daysOfWeek)),
  comment: z.string().max(200).optional(),
});

/** Five fields (minute hour day-of-month month day-of-week) or a macro such as @daily, as Temporal reads cron. */
const CronSchema = z
  .string()
  .regex(/^(@(yearly|annually|monthly|weekly|daily|hourly)|[0-9A-Za-z*,/?-]+( [0-9A-Za-z*,/?-]+){4})$/, 'a cron expression of five fields, e.g. "0 7 * * *", or @daily');

/**
 * A Temporal Schedule of a runbook the catalog marks `scheduled` (the monitoring checklists): when (cron or calendar,
 * in a time zone), how far back it catches up after an outage. Overlapping runs are skipped.
 */
const ScheduleSchema = z
  .strictObject({
    runbook: RunbookNameSchema.refine(isScheduled, 'a runbook the catalog marks scheduled (runbooks catalog)'),
    cron: z.union([CronSchema, z.array(CronSchema).min(1)]).optional(),
    calendar: z.union([CalendarSchema, z.array(CalendarSchema).min(1)]).optional(),
    timeZone: TimeZoneSchema.default('UTC'),
    /** After an outage of Temporal, runs missed within this window still start (once: overlaps are skipped). */
    catchupWindow: DurationSchema.prefault('1h'),
    /** With a severity the run has an escalation ladder (its first contact paged at the start; overdue tasks climb it). */
    severity: SeveritySchema.optional(),
    /** What the run is about, for its timeline and notifications. */
    service: name.default('audit-app'),
  })
  .refine((s) => (s.cron === undefined) !== (s.calendar === undefined), { message: 'give either cron or calendar (one of them)', path: ['cron'] });

/** An argv (never a shell string); `{version}`, `{image}` and `{revision}` are replaced in each element. */
const ArgvSchema = z.array(z.string().min(1).max(500)).min(1).max(50);

/** `runbooks deploy` and `runbooks rollback` (the runbook's Deployment Procedures) of `targets.backend`. */
const DeploySchema = z.strictObject({
  /** The image repository a version is tagged in (`<repository>:<version>`); default: that of the backend's current image. */
  repository: z.string().regex(/^[a-z0-9][a-z0-9._/:-]{0,199}$/, 'an image repository: lowercase letters, digits, . _ / : -').optional(),
  /**
   * How an image for a version is made when its tag is not there yet; absent: the tag must exist. `argv`: a build the
   * worker runs (e.g. [docker, build, -t, "{image}", .]); `versionFile`: the sandbox's, the current image committed
   * with this file holding the version.
   */
  build: z.union([z.strictObject({ argv: ArgvSchema }), z.strictObject({ versionFile: absolutePath })]).optional(),
  /**
   * The migrations, run in a one-off container of the new image with the backend container's environment and network;
   * each prints `schema revision <N>` last. `down` reverts to `{revision}`. Absent: no migration step.
   */
  migrate: z.strictObject({ up: ArgvSchema, down: ArgvSchema, current: ArgvSchema }).optional(),
  /** How long the new version is watched (its /health, its log, its error rate) before the deployment counts as good. */
  watch: DurationSchema.prefault('5m'),
  /** Log lines that fail a deployment while it is watched (regular expressions, matched in the worker). */
  errorPatterns: z
    .array(z.string().min(1).max(200).refine(isRegExp, 'a regular expression'))
    .default(['\\bFATAL\\b', '\\bERROR\\b', 'status=5\\d\\d']),
  /** The most error lines tolerated in the window. */
  maxErrorLines: z.number().int().min(0).default(0),
  /** The most 5xx share of requests (from `targets.backend.metricsUrl`) tolerated in the window, 0..1. */
  maxErrorRate: z.number().min(0).max(1).default(0.05),
  /** Ask `approve-deploy` before going out. */
  requireApproval: z.boolean().default(false),
  /** How long an approval (`approve-deploy`, `downgrade-database`) is waited for before the answer counts as no. */
  approveWithin: DurationSchema.prefault('1h'),
  /** The alert a failed deployment opens an incident as (routed by `routing`, else the fallback). */
  incidentAlert: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,99}$/, 'an alert name').default('DeploymentFailed'),
});

export const ConfigSchema = z.strictObject({
  temporal: z
    .strictObject({
      address: z.string().min(1).default('127.0.0.1:7233'),
      namespace: z.string().min(1).default('default'),
      taskQueue: z.string().regex(/^[A-Za-z0-9_.:-]{1,200}$/, 'letters, digits, _ . : -').default('runbooks'),
      /** Where `runbooks dev` keeps the dev server's state so a restart loses nothing. */
      devDbFile: z.string().min(1).default('.runbooks/temporal.db'),
      devUiPort: z.number().int().min(1).max(65535).default(8233),
      /**
       * Incidents the worker keeps in memory between their tasks. Open incidents mostly wait (timers, approvals), and each
       * cached one costs megabytes; one that was evicted replays its history on its next task (milliseconds).
       */
      maxCachedWorkflows: z.number().int().min(0).default(100),
      /**
       * On SIGTERM the worker stops taking work and lets the activities it runs finish this long; any still running
       * then are cancelled and retried by another worker. Give the container at least this long to stop.
       */
      shutdownGraceTime: DurationSchema.prefault('30s'),
      /** `host:port` where `runbooks worker` serves the Temporal SDK's metrics for Prometheus (off when absent). */
      workerMetricsAddress: z
        .string()
        .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'host:port, e.g. 0.0.0.0:9464')
        .optional(),
    })
    .prefault({}),
  http: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(3000),
      bodyLimitBytes: z.number().int().min(1024).default(1_048_576),
      /** Public base URL used in notifications to link to the Temporal UI. */
      temporalUiUrl: httpUrl.optional(),
    })
    .prefault({}),
  audit: z
    .strictObject({
      databaseUrl: z.url({ protocol: /^postgres(ql)?$/ }).default('postgres://postgres@127.0.0.1:5432/postgres'),
      schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lowercase SQL identifier').default('runbooks_audit'),
    })
    .prefault({}),
  docker: z.strictObject({ host: z.string().min(1).optional() }).prefault({}),
  targets: z
    .strictObject({
      backend: targetSchemas.backend.optional(),
      redis: targetSchemas.redis.optional(),
      postgres: targetSchemas.postgres.optional(),
      etl: targetSchemas.etl.optional(),
    })
    .prefault({}),
  routing: z
    .strictObject({
      alerts: z.record(z.string().min(1), RouteSchema).default(defaultRoutes),
      /** Alerts no route names still become incidents: notified and escalated, never dropped. */
      fallback: RouteSchema.prefault({ runbook: FALLBACK_RUNBOOK, defaultSeverity: 'medium' }),
    })
    .prefault({}),
  escalation: z
    .strictObject({
      critical: EscalationRuleSchema.prefault({
        responseTime: '15m',
        escalateTo: ['oncall', 'devops-lead'],
        notify: ['management', 'status-page'],
      }),
      high: EscalationRuleSchema.prefault({ responseTime: '1h', escalateTo: ['oncall'], notify: ['team-lead'] }),
      medium: EscalationRuleSchema.prefault({ responseTime: '4h', escalateTo: ['team-member'], notify: ['team'] }),
      low: EscalationRuleSchema.prefault({ responseTime: '1d', escalateTo: ['team-member'], notify: [] }),
      businessHours: BusinessHoursSchema.prefault({ timeZone: 'UTC', startHour: 9, days: [1, 2, 3, 4, 5] }),
    })
    .prefault({}),
  contacts: z.record(name, ContactSchema).default({
    oncall: { channels: ['log'] },
    'devops-lead': { channels: ['log'] },
    management: { channels: ['log'] },
    'status-page': { channels: ['log'] },
    'team-lead': { channels: ['log'] },
    'team-member': { channels: ['log'] },
    team: { channels: ['log'] },
    'security-team': { channels: ['log'] },
  }),
  channels: z.record(name, ChannelSchema).default({ log: { type: 'log' } }),
  /** Who may approve each kind of dangerous step (token names for the HTTP API, `--by` for the CLI). */
  approvers: z.partialRecord(ApprovalKindSchema, z.array(name).min(1)).default({}),
  /**
   * How each kind of approval is decided, when not by one approver with no time limit: `quorum` distinct approvers
   * (any one rejection rejects), and `expiresAfter` unanswered it escalates, then counts as rejected (`onExpiry:
   * reject`) or keeps waiting (`escalate`, the default).
   */
  approvals: z
    .partialRecord(
      ApprovalKindSchema,
      z.strictObject({
        quorum: z.number().int().min(1).max(10).default(1),
        expiresAfter: DurationSchema.optional(),
        onExpiry: z.enum(['reject', 'escalate']).default('escalate'),
      }),
    )
    .default({}),
  tokens: z.array(TokenSchema).default([]),
  policies: PoliciesSchema.prefault({}),
  security: SecuritySchema.prefault({}),
  /** `runbooks backfill` (runbook §3): what "every county" means, and how a backfill runs. */
  backfill: z
    .strictObject({
      /** Default: the counties of the sandbox's ETL source. */
      counties: z.array(z.string().regex(/^[A-Za-z][A-Za-z .'-]{0,62}$/, 'a county name: letters, spaces, . \' -')).min(1).default([...ETL_COUNTIES]),
      /** The pipeline's pause between records (its politeness to the source; raise it when rate limited). */
      delay: DurationSchema.prefault('20ms'),
      /** Chunks (county-years) per workflow run before it continues as new. */
      chunksPerRun: z.number().int().min(1).max(10_000).default(500),
      /** How long a chunk that failed for good waits for an answer before the next contact of `escalation.high` is told. */
      answerWithin: DurationSchema.prefault('1h'),
      /** Who may retry or skip a failed chunk, besides whoever started the backfill. */
      deciders: z.array(name).default([]),
    })
    .prefault({}),
  /** Temporal Schedules by name (`runbooks schedules apply` creates, updates and deletes them; the schedule ID is `<taskQueue>-<name>`). */
  schedules: z.record(name, ScheduleSchema).default({}),
  deploy: DeploySchema.prefault({}),
});

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
export type Channel = z.infer<typeof ChannelSchema>;
export type Contact = z.infer<typeof ContactSchema>;
export type Rotation = z.infer<typeof RotationSchema>;
export type ScheduleConfig = z.infer<typeof ScheduleSchema>;

function isRegExp(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}

function isKnownTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}
