import type { Pool } from 'pg';
import { readHandsOff } from '../controls/handsOff';
import type { HandsOffSwitch } from '../controls/model';
import type { RunbookName } from '../runbooks/catalog';

export function createControlActivities(pool: Pool, schema: string) {
  return {
    /** The hands-off switches that concern an incident of this runbook (global and its own). A read: safe to retry. */
    async handsOffSwitches({ runbook }: { runbook: RunbookName }): Promise<HandsOffSwitch[]> {
      return readHandsOff(pool, schema, runbook);
    },
  };
}

export type ControlActivities = ReturnType<typeof createControlActivities>;
