/**
 * The hands-off switch's store (Postgres, the audit trail's database: it outlives every process) and its fan-out:
 * a change is written first (switch row and audit row in one transaction), then signalled to every open incident it
 * concerns. A missed signal is harmless: each incident reads the switch again at every gate (`act`, `approval`).
 */
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { inTransaction } from '../audit/transaction';
import { listIncidents } from '../incidents/operations';
import type { RunbookName } from '../runbooks/catalog';
import { handsOffSignal } from '../workflows/lifecycle/definitions';
import { type HandsOffScope, type HandsOffSwitch } from './model';

interface SwitchRow {
  scope: HandsOffScope;
  is_on: boolean;
  changed_by: string;
  changed_at: Date;
  reason: string | null;
}

/** Every switch that was ever set (off ones too: who turned it off, and when); `runbook` narrows to the global one and its own. */
export async function readHandsOff(pool: Pool, schema: string, runbook?: RunbookName): Promise<HandsOffSwitch[]> {
  // `schema` is the configured one, validated as a lowercase SQL identifier by the config schema.
  const { rows } = runbook
    ? await pool.query<SwitchRow>(`SELECT * FROM "${schema}".hands_off WHERE scope IN ('global', $1) ORDER BY scope`, [runbook])
    : await pool.query<SwitchRow>(`SELECT * FROM "${schema}".hands_off ORDER BY scope`);
  return rows.map(asSwitch);
}

/** The last `limit` changes, newest first: the switch's audit trail. */
export async function readHandsOffChanges(pool: Pool, schema: string, limit: number): Promise<HandsOffSwitch[]> {
  const { rows } = await pool.query<SwitchRow>(`SELECT * FROM "${schema}".hands_off_changes ORDER BY changed_at DESC, id DESC LIMIT $1`, [limit]);
  return rows.map(asSwitch);
}

/** Sets one switch and keeps the change, in one transaction. */
export async function writeHandsOff(pool: Pool, schema: string, change: HandsOffSwitch): Promise<void> {
  const values = [change.scope, change.on, change.by, change.at, change.reason ?? null];
  await inTransaction(pool, async (client) => {
    await client.query(
      `INSERT INTO "${schema}".hands_off (scope, is_on, changed_by, changed_at, reason) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (scope) DO UPDATE SET is_on = EXCLUDED.is_on, changed_by = EXCLUDED.changed_by, changed_at = EXCLUDED.changed_at, reason = EXCLUDED.reason`,
      values,
    );
    await client.query(`INSERT INTO "${schema}".hands_off_changes (scope, is_on, changed_by, changed_at, reason) VALUES ($1, $2, $3, $4, $5)`, values);
  });
}

export interface SignalledIncidents {
  signalled: string[];
  /** Incidents that could not be signalled (closed meanwhile, Temporal hiccup): they read the switch at their next gate anyway. */
  failed: string[];
}

/** Tells every open incident of this deployment that the change concerns (all for `global`, else that runbook's). */
export async function signalOpenIncidents(client: Client, taskQueue: string, change: HandsOffSwitch): Promise<SignalledIncidents> {
  const open = await listIncidents(client, taskQueue, 'open', 10_000);
  const concerned = open.filter((i) => change.scope === 'global' || i.runbook === change.scope);
  const results = await Promise.allSettled(concerned.map((i) => client.workflow.getHandle(i.workflowId).signal(handsOffSignal, change)));
  return {
    signalled: concerned.filter((_, n) => results[n]!.status === 'fulfilled').map((i) => i.workflowId),
    failed: concerned.filter((_, n) => results[n]!.status === 'rejected').map((i) => i.workflowId),
  };
}

function asSwitch(row: SwitchRow): HandsOffSwitch {
  return { scope: row.scope, on: row.is_on, by: row.changed_by, at: row.changed_at.toISOString(), ...(row.reason ? { reason: row.reason } : {}) };
}
