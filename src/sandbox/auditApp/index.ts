/**
 * The audit-app sandbox: a real PostgreSQL 15, a Node backend, Redis and an ETL job in containers built without a registry,
 * for people (`runbooks sandbox up|status|down|break`), the demo, the tests and the runbooks that act on it.
 *
 *   await ensureAuditAppImages(docker)                         build what is missing (idempotent)
 *   const app = await startAuditApp(docker, { prefix, ports })  up, PostgreSQL answering, /health 200
 *   auditAppTargets(app, dockerHost) / auditAppTargetsYaml(…)    the runbooks config that points at it
 *   await breakAuditApp(docker, app, 'db-stopped')              one of AUDIT_APP_FAULTS, observable on return
 *   const traffic = startTraffic(app); …; await traffic.stop()   steady GETs to the API (for /metrics), until stopped
 *   await auditAppStatus(docker, app); await removeAuditApp(docker, app.prefix)
 */
export * from './contract';
export { activityCount, backendFaults, breakAuditApp, postFaultKnob, resetBackendFaults } from './faults';
export type { FaultOptions, FaultResult } from './faults';
export {
  BACKEND_REPOSITORY,
  DEFAULT_BACKEND_VERSION,
  ETL_IMAGE,
  POSTGRES_DATA_DIR,
  POSTGRES_IMAGE,
  REDIS_IMAGE,
  backendImage,
  ensureAuditAppImages,
} from './images';
export type { AuditAppImageOptions, BackendImageSpec, BuiltImage } from './images';
export {
  AUDIT_APP_ROLES,
  AuditAppLabels,
  auditAppStatus,
  auditAppTargets,
  auditAppTargetsYaml,
  containerLogTail,
  databaseAnswers,
  describeAuditApp,
  etlLog,
  etlWrites,
  findAuditApp,
  httpGet,
  removeAuditApp,
  startAuditApp,
} from './stack';
export type { AuditApp, AuditAppOptions, AuditAppPorts, AuditAppRole, AuditAppStatus, ContainerState, StartedAuditApp } from './stack';
export { DEFAULT_TRAFFIC_PATH, startTraffic } from './traffic';
export type { Traffic, TrafficOptions } from './traffic';
