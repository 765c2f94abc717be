/**
 * The runbook catalog: what each automated runbook is, as data. Config enums and default routes, intake, the
 * HTTP API, the CLI, the workflows and README's runbook table all read it; nothing here runs anything.
 * Adding a runbook = one entry here + `src/workflows/<workflowType>.ts` (exported from src/workflows/index.ts)
 * + its activities + its tests.
 */
import type { Severity } from '../incidents/model';

/** What runbooks act on; connection details live in the worker's config under `targets.<name>`. */
export type TargetName = 'backend' | 'redis' | 'postgres' | 'etl';

export type PolicyValue = number | boolean;

interface RunbookEntry {
  /** The workflow type, which is also the name of its file in src/workflows/ (the runbook name in camelCase). */
  workflowType: string;
  /** The heading it automates in the team's runbook (../shared/seeds/000_97330e1db4c661ec.txt). */
  section: string;
  /** One sentence for README's table and `runbooks catalog`. */
  summary: string;
  /** Alerts routed to it by default, with the severity used when the alert carries none. */
  alerts: Readonly<Record<string, Severity>>;
  /** Kinds of dangerous step it may ask a human to approve; approvers are configured per kind. */
  approvalKinds: readonly string[];
  /** The targets it acts on: intake copies these (and only these) into the incident. */
  targets: readonly TargetName[];
  /** Tunable thresholds and switches, overridable per deployment under `policies.<runbook>` in the config. */
  policy: Readonly<Record<string, PolicyValue>>;
  /** Procedures it may start: intake adds what each needs from the config to the incident's input (`procedures`). */
  procedures?: readonly ProcedureName[];
  /** Config sections it reads beyond its policy: intake copies what it needs of each into the input (`security`). */
  settings?: readonly 'security'[];
  /**
   * Alerts it may raise itself to hand an incident over to another runbook (as a child incident): intake routes each
   * like a real alert and adds the routed runbook's input (`handOvers`).
   */
  handOvers?: readonly string[];
  /** Started by a Temporal Schedule (config `schedules`), not by an alert: a checklist of the runbook. */
  scheduled?: true;
}

export const catalog = {
  'api-down': {
    workflowType: 'apiDown',
    section: '1. API Service Down',
    summary:
      'inspect the backend container (state, exit code, OOM, restarts), last 100 log lines, health probe → `docker restart` → wait for `/health` 200 → if still down, **ask approval** and roll back to the image in the container\'s `runbooks.previous-image` label → verify.',
    alerts: { APIDown: 'critical' },
    approvalKinds: ['rollback'],
    targets: ['backend'],
    policy: {},
  },
  'db-connections': {
    workflowType: 'dbConnections',
    section: '2. Database Connection Issues',
    summary:
      '`SELECT 1`, the database size, connections against `max_connections`, sessions idle in a transaction for over `idleInTransactionMinutes` (10), queries active for over `longQuerySeconds` (30), lock waits → **down**: restart the postgres container → verify `SELECT 1` and `/health` → still down: `pg_restore` of the latest backup **only with approval** → verify; **pool exhausted**: terminate the idle-in-transaction sessions (**with approval**, or at once with `autoTerminate`) → restart the backend to reset its pool → verify connections below `connectionsHighRatio` (0.8) and `/health` 200. Never terminates its own or replication sessions.',
    alerts: { DatabaseDown: 'critical', DatabaseConnectionsHigh: 'high', DatabaseConnectionPoolExhausted: 'high' },
    approvalKinds: ['restore-database', 'terminate-sessions'],
    targets: ['postgres', 'backend'],
    policy: { idleInTransactionMinutes: 10, longQuerySeconds: 30, connectionsHighRatio: 0.8, autoTerminate: false },
  },
  'etl-failures': {
    workflowType: 'etlFailures',
    section: '3. ETL Job Failures',
    summary:
      'the last 200 log lines of the etl container classified (rate limited, source changed, disk full, crashed, other) with the evidence line, the last (successful) run and the free space of the download directory from `<program> status`, freshness (`MAX(updated_at)` of `documents`) → **rate limited**: wait `rateLimitWaitSeconds` (60), retry with `--delay-ms` `retryDelayMs` (250); **disk full**: `<program> clean-downloads` **only with approval**, retry; **crashed** or anything else: retry; **source changed**: no retry, escalate with the evidence (a human fixes the selectors). Retries run `<program> run` by `docker exec` with an argv array, at most `maxRetries` (2) → verify `MAX(updated_at)` advanced past the runbook\'s start. Labels `from_year`/`to_year` on the alert start a backfill of that range (not waited for).',
    alerts: { ETLJobFailed: 'high', ETLJobNotRunning: 'high', ETLDataStale: 'medium' },
    approvalKinds: ['clean-downloads'],
    targets: ['etl', 'postgres'],
    policy: { rateLimitWaitSeconds: 60, retryDelayMs: 250, maxRetries: 2, freshWithinMinutes: 1440 },
    procedures: ['backfill'],
  },
  'slow-responses': {
    workflowType: 'slowResponses',
    section: '4. High Response Times',
    summary:
      'p95 per route from the backend\'s `/metrics` histogram, the slowest statements of `pg_stat_statements`, tables read by sequential scans, `docker stats`, Redis `PING` → `VACUUM ANALYZE` of the hot tables → `CREATE INDEX CONCURRENTLY` of a suggested index **only with approval** → if still slow, restart the backend **only with approval** → verify p95 under `p95ThresholdMs` (2000) over a window.',
    alerts: { HighResponseTime: 'high', SlowAPIResponses: 'high', SlowDatabaseQueries: 'medium' },
    approvalKinds: ['create-index', 'scale-backend'],
    targets: ['backend', 'postgres', 'redis'],
    policy: { p95ThresholdMs: 2000, sampleWindowSeconds: 15, recoverWithinSeconds: 120, minSeqScans: 50 },
  },
  'rate-limiting': {
    workflowType: 'rateLimiting',
    section: '5. Rate Limiting Issues',
    summary:
      '`rate_limit:*` keys by a bounded SCAN (never KEYS) with each client\'s counter, the backend log\'s "Rate limit exceeded" lines counted per client, the top client\'s share of all requests, the limit in force, 429s per minute from `/metrics` → **one client** at or over `topShare` (0.5) of the traffic: allow-list it **only with approval** (`allow-client`), else hand it over to security (§7: a child `SuspiciousActivity` incident for its IP, routed by the config, linked both ways; escalated); **a legitimate spike**: raise the limit × `raiseFactor` (2) **only with approval** (`raise-rate-limit`), put back after `raiseMinutes` (60) on a durable timer (at once if the incident is closed early; an absent limit is deleted again) → verify 429s under `max429PerMinute` (10) over `sampleWindowSeconds` (15) windows. One raise at a time, recorded in Redis: a retry or a second incident never raises twice.',
    alerts: { HighRequestRate: 'medium', RateLimitExceeded: 'high' },
    approvalKinds: ['raise-rate-limit', 'allow-client'],
    targets: ['redis', 'backend'],
    handOvers: ['SuspiciousActivity'],
    policy: { raiseFactor: 2, raiseMinutes: 60, topShare: 0.5, max429PerMinute: 10, sampleWindowSeconds: 15, recoverWithinSeconds: 120 },
  },
  'redis-down': {
    workflowType: 'redisDown',
    section: '6. Redis Connection Failures',
    summary:
      '`PING`, `INFO memory`, clients → restart the container if Redis does not answer → verify `PING` → `BGSAVE` on persistence errors → `FLUSHDB` **only with approval** when memory is at or above `memoryPressure` (0.9) of `maxmemory` → follow-up to set `maxmemory-policy allkeys-lru`.',
    alerts: { RedisDown: 'high' },
    approvalKinds: ['flush-cache'],
    targets: ['redis'],
    policy: { memoryPressure: 0.9 },
  },
  'security-incident': {
    workflowType: 'securityIncident',
    section: '7. Security Incidents',
    summary:
      'the source IP or CIDR from the alert\'s `ip` (or `ip_address`) label, validated in code (no hostnames, nothing wider than `minPrefixV4` /16 or `minPrefixV6` /48, never loopback, the allow-list or the runbooks\' own addresses) → the security contacts told at once, beside isolating (never holding it back) → **isolate**: added to the deny-list the backend enforces (a Redis set, `SADD`), at once with `blockImmediately`, else **only with approval**; lifted by `runbooks unblock`, or after `blockMinutes` on a durable timer (the incident stays open until then; lifted at close if a human resolves it first) → **investigate**: the backend\'s log lines of that client (matched in code) and its `audit_log` rows (`ip <<= $1::inet`), summarised → the mitigation tasks (rotate credentials, patch, update security rules) wait on the incident for a human (`complete-task`), escalated when not done within `taskDueMinutes` (240); it does not resolve while one is open.',
    alerts: { SuspiciousActivity: 'high', BruteForceDetected: 'critical' },
    approvalKinds: ['block-ip'],
    targets: ['redis', 'backend', 'postgres'],
    policy: { blockImmediately: false, blockMinutes: 0, taskDueMinutes: 240, minPrefixV4: 16, minPrefixV6: 48 },
    settings: ['security'],
  },
  'daily-checklist': {
    workflowType: 'dailyChecklist',
    section: 'Monitoring Checklist',
    summary:
      'the daily items on a schedule (`runbooks schedules`): the ETL\'s last run succeeded and the last success is under `etlSuccessWithinHours` (26) old; free space of its download directory at or above `minFreeDiskRatio` (0.1); error patterns in the backend\'s log new in the last `errorWindowHours` (24); p95 per route under `p95ThresholdMs` (2000) over `sampleWindowSeconds` (15). A failed check hands over to the runbook its alert routes to (`ETLJobFailed`, `DiskSpaceLow`, `NewErrorPatterns`, `HighResponseTime`), not waited for; the report goes to Postgres (`runbooks checklists`).',
    alerts: {},
    approvalKinds: [],
    targets: ['etl', 'backend'],
    policy: { etlSuccessWithinHours: 26, minFreeDiskRatio: 0.1, errorWindowHours: 24, p95ThresholdMs: 2000, sampleWindowSeconds: 15 },
    handOvers: ['ETLJobFailed', 'DiskSpaceLow', 'NewErrorPatterns', 'HighResponseTime'],
    scheduled: true,
  },
  'weekly-checklist': {
    workflowType: 'weeklyChecklist',
    section: 'Monitoring Checklist',
    summary:
      'the weekly items on a schedule: the slowest statements of `pg_stat_statements` under `slowQueryMs` (500) mean; traffic over `sampleWindowSeconds` (15): requests and 429s per minute under `max429PerMinute` (10); **backup restoration tested for real**: `pg_dump -Fc` of the application database (row counts taken in the dump\'s own snapshot) → `pg_restore` into a scratch database → row counts per table compared → the scratch dropped (a leftover one first). A failed check hands over (`SlowDatabaseQueries`, `HighRequestRate`, `BackupRestoreFailed`); security updates are a human\'s (skipped).',
    alerts: {},
    approvalKinds: [],
    targets: ['postgres', 'backend'],
    policy: { slowQueryMs: 500, sampleWindowSeconds: 15, max429PerMinute: 10 },
    handOvers: ['SlowDatabaseQueries', 'HighRequestRate', 'BackupRestoreFailed'],
    scheduled: true,
  },
  'monthly-checklist': {
    workflowType: 'monthlyChecklist',
    section: 'Monitoring Checklist',
    summary:
      'the monthly items, each a task a person signs off (`runbooks complete-task`, the `completeTask` Update): review and update the runbook, incident response drill, capacity planning, update documentation, rotate credentials, review access; escalated when not all signed off within `signOffDays` (7); the report lists who signed off what.',
    alerts: {},
    approvalKinds: [],
    targets: [],
    policy: { signOffDays: 7 },
    scheduled: true,
  },
  generic: {
    workflowType: 'generic',
    section: 'Escalation Matrix',
    summary: 'any alert no route names: records, notifies and escalates until a human resolves it or the alert resolves. No alert is dropped.',
    alerts: {},
    approvalKinds: [],
    targets: [],
    policy: {},
  },
} as const satisfies Record<string, RunbookEntry>;

/**
 * Procedures: workflows of the runbook that an operator (or a runbook) starts, not incidents — no alert routes to
 * them and they have their own messages. Their workflow type is their file name in src/workflows/ too.
 */
export const procedures = {
  backfill: {
    workflowType: 'backfill',
    section: '3. ETL Job Failures',
    summary:
      'loads years `from`..`to` for every configured county (or the named ones) through the ETL pipeline, one county-year per chunk; each chunk heartbeats its cursor and resumes from it after a crash; pause / resume / cancel; a chunk that fails for good waits for retry-chunk / skip-chunk and tells the next contact when nobody answers; continues as new on long ranges.',
    approvalKinds: [],
  },
  deploy: {
    workflowType: 'deploy',
    section: 'Standard Deployment',
    summary:
      'a saga on `targets.backend`, each step recorded with its compensation registered before it runs: the image of the version (an existing tag, or `deploy.build`) → **approval** (`approve-deploy`) when `deploy.requireApproval` → the migrations in a one-off container of the new image → the container recreated on it (the old image in `runbooks.previous-image`) → `/health` → its log and 5xx rate watched for `deploy.watch` (5m). Any failure: compensations in reverse (the previous image back; the schema downgrade **only with approval**, `downgrade-database`) and an incident opened (`deploy.incidentAlert`). One deployment per target; each recorded in the deployment history.',
    approvalKinds: ['approve-deploy', 'downgrade-database'],
  },
  rollback: {
    workflowType: 'rollback',
    section: 'Rollback Procedure',
    summary:
      'the backend back to the previous image (its `runbooks.previous-image` label) or `--to VERSION` from the deployment history → the schema downgrade **only with approval** (`downgrade-database`) → the container recreated → `/health` → recorded in the deployment history. Each step resumes after a worker crash; one container of the target version at the end.',
    approvalKinds: ['downgrade-database'],
  },
} as const satisfies Record<string, { workflowType: string; section: string; summary: string; approvalKinds: readonly string[] }>;
export type ProcedureName = keyof typeof procedures;
export const procedureNames = Object.keys(procedures) as [ProcedureName, ...ProcedureName[]];

export type RunbookName = keyof typeof catalog;
export const runbookNames = Object.keys(catalog) as [RunbookName, ...RunbookName[]];

/** The procedures a runbook may start (its catalog entry's `procedures`). */
export function proceduresOf(name: RunbookName): readonly ProcedureName[] {
  const entry: RunbookEntry = catalog[name];
  return entry.procedures ?? [];
}

/** The config sections a runbook reads beyond its policy (its catalog entry's `settings`). */
/** The alerts a runbook may raise to hand over to another one (its catalog entry's `handOvers`). */
export function handOversOf(name: RunbookName): readonly string[] {
  const entry: RunbookEntry = catalog[name];
  return entry.handOvers ?? [];
}

/** Runbooks a schedule may start (catalog `scheduled`). */
export function isScheduled(name: RunbookName): boolean {
  const entry: RunbookEntry = catalog[name];
  return entry.scheduled === true;
}

export function settingsOf(name: RunbookName): readonly 'security'[] {
  const entry: RunbookEntry = catalog[name];
  return entry.settings ?? [];
}

/** The runbook alerts fall back to when no route names them. */
export const FALLBACK_RUNBOOK: RunbookName = 'generic';

export type ApprovalKind = (typeof catalog)[RunbookName]['approvalKinds'][number] | (typeof procedures)[ProcedureName]['approvalKinds'][number];
export const approvalKinds = [
  ...new Set<ApprovalKind>([...runbookNames.flatMap((name) => catalog[name].approvalKinds), ...procedureNames.flatMap((name) => procedures[name].approvalKinds)]),
] as [ApprovalKind, ...ApprovalKind[]];

type Widen<T> = T extends number ? number : T extends boolean ? boolean : T;
type Policy<N extends RunbookName> = { -readonly [K in keyof (typeof catalog)[N]['policy']]: Widen<(typeof catalog)[N]['policy'][K]> };

/** A runbook's policy: the catalog's values under the deployment's overrides (`policies.<runbook>` in the config). */
export function policyOf<N extends RunbookName>(name: N, overrides: Readonly<Record<string, PolicyValue | undefined>> = {}): Policy<N> {
  const policy: Record<string, PolicyValue> = { ...catalog[name].policy };
  for (const [key, value] of Object.entries(overrides)) if (value !== undefined) policy[key] = value;
  return policy as Policy<N>;
}

/** Every workflow type the worker runs: the runbooks' and the procedures'. */
export function workflowTypes(): string[] {
  return [...runbookNames.map((name) => catalog[name].workflowType), ...procedureNames.map((name) => procedures[name].workflowType)];
}
