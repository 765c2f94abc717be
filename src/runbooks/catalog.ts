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
      '`SELECT 1`, connections against `max_connections`, sessions idle in a transaction for over `idleInTransactionMinutes` (10), queries active for over `longQuerySeconds` (30), lock waits → **down**: restart the postgres container → verify `SELECT 1` and `/health` → still down: `pg_restore` of the latest backup **only with approval** → verify; **pool exhausted**: terminate the idle-in-transaction sessions (**with approval**, or at once with `autoTerminate`) → restart the backend to reset its pool → verify connections below `connectionsHighRatio` (0.8) and `/health` 200. Never terminates its own sessions.',
    alerts: { DatabaseDown: 'critical', DatabaseConnectionsHigh: 'high', DatabaseConnectionPoolExhausted: 'high' },
    approvalKinds: ['restore-database', 'terminate-sessions'],
    targets: ['postgres', 'backend'],
    policy: { idleInTransactionMinutes: 10, longQuerySeconds: 30, connectionsHighRatio: 0.8, autoTerminate: false },
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

export type RunbookName = keyof typeof catalog;
export const runbookNames = Object.keys(catalog) as [RunbookName, ...RunbookName[]];

/** The runbook alerts fall back to when no route names them. */
export const FALLBACK_RUNBOOK: RunbookName = 'generic';

export type ApprovalKind = (typeof catalog)[RunbookName]['approvalKinds'][number];
export const approvalKinds = [...new Set(runbookNames.flatMap((name) => catalog[name].approvalKinds))] as [ApprovalKind, ...ApprovalKind[]];

type Widen<T> = T extends number ? number : T extends boolean ? boolean : T;
type Policy<N extends RunbookName> = { -readonly [K in keyof (typeof catalog)[N]['policy']]: Widen<(typeof catalog)[N]['policy'][K]> };

/** A runbook's policy: the catalog's values under the deployment's overrides (`policies.<runbook>` in the config). */
export function policyOf<N extends RunbookName>(name: N, overrides: Readonly<Record<string, PolicyValue | undefined>> = {}): Policy<N> {
  const policy: Record<string, PolicyValue> = { ...catalog[name].policy };
  for (const [key, value] of Object.entries(overrides)) if (value !== undefined) policy[key] = value;
  return policy as Policy<N>;
}
