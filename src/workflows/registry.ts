import type { RunbookName } from '../config/schema';

/** Workflow type per runbook, for clients that must not load workflow code. */
export const workflowTypeByRunbook: Record<RunbookName, string> = {
  'api-down': 'apiDownIncident',
  'redis-down': 'redisIncident',
  generic: 'genericIncident',
};
