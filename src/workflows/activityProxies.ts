/**
 * Activity stubs for workflows, grouped by the system they touch, each with explicit timeouts and retries.
 * Only activities that heartbeat get a heartbeat timeout (a dead worker is then noticed in seconds).
 */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { AuditActivities } from '../activities/audit';
import type { DeployActivities } from '../activities/deploy';
import type { DockerActivities } from '../activities/docker';
import type { EtlActivities } from '../activities/etl';
import type { HttpActivities } from '../activities/http';
import type { MetricsActivities } from '../activities/metrics';
import type { NotifyActivities } from '../activities/notify';
import type { PostgresActivities } from '../activities/postgres';
import type { RedisActivities } from '../activities/redis';
import { permanentActivityErrors } from '../runbooks/errorTypes';

const quickRetry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '15s', maximumAttempts: 5, nonRetryableErrorTypes: permanentActivityErrors };

export const docker = proxyActivities<DockerActivities>({
  // A restart waits up to 10 s for the process to stop; a rollback stops, creates and starts.
  startToCloseTimeout: '1m',
  retry: quickRetry,
});

// A deployment's switch of the container: stop (up to 10 s), rename, create, start; it heartbeats between them, so a
// dead worker is noticed in seconds and the retry finishes the same replacement.
const { replaceContainer } = proxyActivities<DockerActivities>({ startToCloseTimeout: '2m', heartbeatTimeout: '20s', retry: quickRetry });

// The deployment procedures. A build takes minutes; migrations as long as the data, heartbeating while the one-off
// container runs (a retry waits for that same container); the watch is `deploy.watch` long and heartbeats every 2 s.
const { prepareImage } = proxyActivities<DeployActivities>({ startToCloseTimeout: '30m', retry: { ...quickRetry, maximumAttempts: 3 } });
const { runMigration } = proxyActivities<DeployActivities>({ startToCloseTimeout: '30m', heartbeatTimeout: '20s', retry: { ...quickRetry, maximumAttempts: 3 } });
const { watchDeployment } = proxyActivities<DeployActivities>({ startToCloseTimeout: '2h', heartbeatTimeout: '20s', retry: quickRetry });
const { rollbackPlan } = proxyActivities<DeployActivities>({ startToCloseTimeout: '30s', retry: quickRetry });
// The history must end up complete, and the write is an upsert: unlimited attempts, as recordTimeline.
const { recordDeployment } = proxyActivities<DeployActivities>({ startToCloseTimeout: '30s', retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' } });
export const deployment = { prepareImage, runMigration, replaceContainer, watchDeployment, rollbackPlan, recordDeployment };

const { probeHealth } = proxyActivities<HttpActivities>({ startToCloseTimeout: '10s', retry: quickRetry });
const { waitForHealthy } = proxyActivities<HttpActivities>({
  // Polls for as long as the target's `healthyWithin` allows (bounded by config).
  startToCloseTimeout: '5m',
  heartbeatTimeout: '15s',
  retry: quickRetry,
});
export const http = { probeHealth, waitForHealthy };

const { diagnoseRedis, flushRedisDb, startBackgroundSave } = proxyActivities<RedisActivities>({ startToCloseTimeout: '30s', retry: quickRetry });
const { waitForRedis } = proxyActivities<RedisActivities>({ startToCloseTimeout: '5m', heartbeatTimeout: '15s', retry: quickRetry });
// The deny-list (§7 "Isolate"): one SADD / SREM / SISMEMBER, seconds; a refused source (BlockRefused) is never retried.
const { blockSource, unblockSource, isBlocked } = proxyActivities<RedisActivities>({ startToCloseTimeout: '15s', retry: quickRetry });
// Rate limiting in Redis: a bounded SCAN (5 s at most) and one-script reads and writes, each safe to retry (the raise and
// its undo are compare-and-set scripts keyed by the incident; SADD is idempotent). Retried longer than the others: a
// revert that runs on a timer must not give up on a Redis that restarts.
const { rateLimitStatus, rateLimitSettings, raiseRateLimit, allowClient } = proxyActivities<RedisActivities>({ startToCloseTimeout: '30s', retry: quickRetry });
const { restoreRateLimit } = proxyActivities<RedisActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 20, nonRetryableErrorTypes: permanentActivityErrors },
});
export const redis = {
  diagnoseRedis,
  flushRedisDb,
  startBackgroundSave,
  waitForRedis,
  blockSource,
  unblockSource,
  isBlocked,
  rateLimitStatus,
  rateLimitSettings,
  raiseRateLimit,
  restoreRateLimit,
  allowClient,
};

const { checkDatabase, databaseSize, inspectConnections, terminateIdleSessions, topQueries, inspectTables, dataFreshness, auditLogForSource } = proxyActivities<PostgresActivities>({
  startToCloseTimeout: '30s',
  retry: quickRetry,
});
// VACUUM and CREATE INDEX CONCURRENTLY take as long as the table is big.
const { vacuumAnalyze, createIndex } = proxyActivities<PostgresActivities>({ startToCloseTimeout: '30m', retry: { ...quickRetry, maximumAttempts: 3 } });
const { waitForDatabase } = proxyActivities<PostgresActivities>({ startToCloseTimeout: '5m', heartbeatTimeout: '15s', retry: quickRetry });
// pg_restore of a real dump takes as long as the data: generous, and retried only for transient failures.
const { restoreFromBackup } = proxyActivities<PostgresActivities>({ startToCloseTimeout: '30m', retry: { ...quickRetry, maximumAttempts: 3 } });
// The weekly restore check: a dump, and its restore into a scratch database, each as long as the data takes.
const { dumpForRestoreCheck, restoreIntoScratch } = proxyActivities<PostgresActivities>({ startToCloseTimeout: '30m', retry: { ...quickRetry, maximumAttempts: 3 } });
export const postgres = {
  checkDatabase,
  waitForDatabase,
  databaseSize,
  inspectConnections,
  terminateIdleSessions,
  restoreFromBackup,
  topQueries,
  inspectTables,
  vacuumAnalyze,
  createIndex,
  dataFreshness,
  auditLogForSource,
  dumpForRestoreCheck,
  restoreIntoScratch,
};

// One county-year of the ETL: minutes; a dead worker is noticed by the missed heartbeat, and the retry resumes
// from the last one's cursor. After the attempts, the backfill asks a human (retry-chunk / skip-chunk).
const { loadChunk } = proxyActivities<EtlActivities>({
  startToCloseTimeout: '2h',
  heartbeatTimeout: '10s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 5, nonRetryableErrorTypes: permanentActivityErrors },
});
// The log tail and `<program> status`; `<program> clean-downloads` empties a directory: seconds each.
const { diagnoseEtl, cleanDownloads } = proxyActivities<EtlActivities>({ startToCloseTimeout: '1m', retry: quickRetry });
// A whole run of the pipeline: minutes; every line heartbeats, so a dead worker is noticed in seconds. A failed run is
// a result (the runbook decides by its kind), so retries here are for Docker or the worker failing, not the pipeline.
const { runPipeline } = proxyActivities<EtlActivities>({
  startToCloseTimeout: '1h',
  heartbeatTimeout: '30s',
  retry: { ...quickRetry, maximumAttempts: 3 },
});
export const etl = { loadChunk, diagnoseEtl, runPipeline, cleanDownloads };

// Both sample /metrics over a window (policy, seconds to minutes) and heartbeat while they wait.
export const metrics = proxyActivities<MetricsActivities>({ startToCloseTimeout: '15m', heartbeatTimeout: '15s', retry: quickRetry });

export const { notify } = proxyActivities<NotifyActivities>({
  startToCloseTimeout: '30s',
  heartbeatTimeout: '15s',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 8 },
});

/** Unlimited attempts: the audit trail and the checklist reports must end up complete, and writes are idempotent. */
const auditRetry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' };
export const { recordTimeline, recordChecklistReport } = proxyActivities<AuditActivities>({ startToCloseTimeout: '30s', retry: auditRetry });
// The incident's audit write as a local activity: one marker in the history instead of an activity's three events and
// the workflow task its completion wakes, and no trip through the task queue. A workflow task waits for it (the SDK
// completes the task without it after a few seconds), and retries past 10 s back off on a timer: an unreachable
// database slows the incident's other steps by seconds, never stops them.
export const { recordTimeline: recordTimelineLocally } = proxyLocalActivities<AuditActivities>({
  startToCloseTimeout: '10s',
  localRetryThreshold: '10s',
  retry: auditRetry,
});
