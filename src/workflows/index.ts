// One export per runbook of the catalog (src/runbooks/catalog.ts): the export's name is the workflow type.
export { apiDown } from './apiDown';
export { dbConnections } from './dbConnections';
export { redisDown } from './redisDown';
export { slowResponses } from './slowResponses';
export { etlFailures } from './etlFailures';
export { securityIncident } from './securityIncident';
export { rateLimiting } from './rateLimiting';
export { dailyChecklist } from './dailyChecklist';
export { weeklyChecklist } from './weeklyChecklist';
export { monthlyChecklist } from './monthlyChecklist';
export { generic } from './generic';
// One per procedure of the catalog: workflows an operator starts, not incidents.
export { backfill } from './backfill';
export { deploy } from './deploy';
export { rollback } from './rollback';
