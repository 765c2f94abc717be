/**
 * The demo's scenarios: each breaks the audit-app sandbox for real, the way one section of the runbook starts, and
 * names the alert Alertmanager would send for it (the catalog routes the alert to its runbook); or, for §3's
 * backfill, runs one through a worker crash.
 *
 * `policies` shrink the runbook's thresholds from minutes to seconds (a session idle in a transaction for 10 min,
 * latency windows of 15 s), so a demo takes a minute. The demo prints them; production keeps the catalog's values.
 */
import type { PolicyValue, RunbookName } from '../runbooks/catalog';
import { BRUTE_FORCE } from './auditApp/contract';
import type { AuditAppFault, BackendImageSpec, FaultOptions, TrafficOptions } from './auditApp';

/** A fault, and the alert Alertmanager would send for it. */
export interface AlertScenario {
  /** What breaks and what fixes it, one line for --help and the demo's output. */
  summary: string;
  alertname: string;
  /** A backend version deployed instead of a fault (its image is built when missing), and the version before it. */
  deploy?: BackendImageSpec & { previousVersion: string };
  fault?: { name: AuditAppFault; options?: FaultOptions };
  /** Labels of the alert besides alertname, severity and service (the security scenario's `ip`). */
  labels?: Record<string, string>;
  /** How long the fault lasts before the alert fires (as Prometheus waits out a rule's `for:`). */
  firesAfterSeconds?: number;
  /** Requests to the API while the incident runs (latency is measured from them); with options, a flood from many clients. */
  traffic?: boolean | TrafficOptions;
  policies?: Partial<Record<RunbookName, Record<string, PolicyValue>>>;
}

/** A backfill of the last `years` years, whose worker process the demo kills half-way and replaces. */
export interface BackfillScenario {
  summary: string;
  backfill: { years: number; delay: string };
}

/** A good version deployed (built, migrated, watched), then a bad one that the deployment rolls back by itself. */
export interface DeployScenario {
  summary: string;
  deployment: { good: string; bad: BackendImageSpec; watch: string };
}

export type DemoScenario = AlertScenario | BackfillScenario | DeployScenario;

export const demoScenarios = {
  'api-down': {
    summary: 'the backend container is stopped; a restart fixes it',
    alertname: 'APIDown',
    fault: { name: 'backend-stopped' },
  },
  'bad-deploy': {
    summary: 'backend 1.0.1-bad is deployed and answers /health 500; a restart does not help, an approved rollback to 1.0.0 does',
    alertname: 'APIDown',
    deploy: { version: '1.0.1-bad', env: { FAULT_HEALTH_STATUS: '500' }, previousVersion: '1.0.0' },
  },
  'db-down': {
    summary: 'the postgres container is stopped; a restart fixes it, verified by SELECT 1 and /health',
    alertname: 'DatabaseDown',
    fault: { name: 'db-stopped' },
  },
  'db-restore': {
    summary: 'a backup is taken, the documents table is lost and postgres stopped; a restart brings the server back but not the data: an approved pg_restore of the backup does',
    alertname: 'DatabaseDown',
    fault: { name: 'db-corrupted' },
  },
  'db-connections': {
    summary: 'three backend sessions sit idle in a transaction; terminating them (approved) and restarting the backend fixes it',
    alertname: 'DatabaseConnectionsHigh',
    fault: { name: 'idle-in-transaction', options: { sessions: 3 } },
    firesAfterSeconds: 2,
    policies: { 'db-connections': { idleInTransactionMinutes: 0.02 } },
  },
  'etl-failure': {
    summary: "the ETL's download directory fills up and a run fails with ENOSPC; an approved clean-downloads and a retry of the pipeline fix it, verified by MAX(updated_at)",
    alertname: 'ETLJobFailed',
    fault: { name: 'etl-disk-full' },
  },
  'slow-responses': {
    summary: '/api/v1/documents answers 2.5 s slower under steady traffic; an approved backend restart brings p95 back under 1 s',
    alertname: 'HighResponseTime',
    fault: { name: 'slow-route', options: { route: '/api/v1/documents', ms: 2_500 } },
    // Paced under the backend's rate limit (120 a minute): once the restart made the route fast, unpaced traffic drew
    // 429s, answered at once, and the next incident's latency sample read them as a fast route (found by npm run chaos).
    traffic: { perSecond: 0.5 },
    policies: { 'slow-responses': { p95ThresholdMs: 1_000, sampleWindowSeconds: 5, recoverWithinSeconds: 60 } },
  },
  'rate-limit': {
    summary:
      'four clients (X-Forwarded-For) send 5 requests/s each, over the limit of 120 a minute: 429s; an approved raise (×3 for 20 s) lets them through, verified from /metrics, and is put back by its timer',
    alertname: 'RateLimitExceeded',
    traffic: { clients: ['198.51.100.11', '198.51.100.12', '198.51.100.13', '198.51.100.14'], perSecond: 5, path: '/api/v1/counties' },
    firesAfterSeconds: 27,
    policies: { 'rate-limiting': { raiseFactor: 3, raiseMinutes: 0.34, sampleWindowSeconds: 5, recoverWithinSeconds: 30 } },
  },
  'redis-down': {
    summary: 'the redis container is stopped; a restart fixes it, verified by PING',
    alertname: 'RedisDown',
    fault: { name: 'redis-stopped' },
  },
  security: {
    summary: `${BRUTE_FORCE.attempts} failed logins from ${BRUTE_FORCE.ip}; the runbook blocks it once approved (the backend answers it 403), finds its audit_log rows, and waits for the mitigation tasks (--approve completes them as demo)`,
    alertname: 'BruteForceDetected',
    fault: { name: 'brute-force' },
    labels: { ip: BRUTE_FORCE.ip },
  },
  backfill: {
    summary:
      'loads the last two years for every county through the sandbox ETL; half-way the demo SIGKILLs the worker process and starts a new one, which resumes the chunk from its last heartbeat',
    backfill: { years: 2, delay: '50ms' },
  },
  deploy: {
    summary:
      'deploys backend 1.1.0 (built from the running image, migrated to schema revision 1, watched 5 s): it goes out; then 1.9.0-bad, whose /health answers 500: the deployment puts 1.1.0 back by itself and opens an incident',
    deployment: { good: '1.1.0', bad: { version: '1.9.0-bad', env: { FAULT_HEALTH_STATUS: '500' } }, watch: '5s' },
  },
} as const satisfies Record<string, DemoScenario>;

export type DemoScenarioName = keyof typeof demoScenarios;
export const demoScenarioNames = Object.keys(demoScenarios) as [DemoScenarioName, ...DemoScenarioName[]];
