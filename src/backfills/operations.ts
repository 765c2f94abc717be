/**
 * A backfill seen and steered from outside (CLI, HTTP API): its status with the running chunk's cursor (read from
 * the activity's last heartbeat, which the workflow itself cannot see), throughput and ETA; and the decisions, sent
 * as Updates so the caller learns at once whether they were taken.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { BackfillRefusal, backfillStatusQuery, backfillUpdates, type BackfillDecision, type BackfillVerb } from '../workflows/backfill/messages';
import { asRefusal } from '../temporal/errors';
import { paceOf, type BackfillPace, type BackfillStatus, type ChunkCursor } from './model';

export interface BackfillView extends BackfillStatus, BackfillPace {
  /** The last record the running chunk's activity reported having written. */
  cursor?: ChunkCursor;
}

export type BackfillRefusalReason = 'not-found' | 'not-now' | 'not-a-decider' | 'finished' | 'invalid';

export class BackfillOperationError extends Error {
  override readonly name = 'BackfillOperationError';
  constructor(
    readonly reason: BackfillRefusalReason,
    message: string,
  ) {
    super(message);
  }
}

export async function getBackfill(client: Client, workflowId: string, now = Date.now()): Promise<BackfillView> {
  const handle = client.workflow.getHandle(workflowId);
  let status: BackfillStatus;
  try {
    status = await handle.query(backfillStatusQuery);
  } catch (err) {
    throw translate(err, workflowId);
  }
  const description = status.phase === 'done' || status.phase === 'cancelled' ? undefined : await handle.describe().catch(() => undefined);
  const details = description?.raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
  const cursor = details ? defaultPayloadConverter.fromPayload<ChunkCursor>(details) : undefined;
  return { ...status, ...(cursor ? { cursor } : {}), ...paceOf(status, now, cursor) };
}

export async function actOnBackfill(client: Client, workflowId: string, verb: BackfillVerb, decision: BackfillDecision): Promise<BackfillStatus> {
  try {
    return await client.workflow.getHandle(workflowId).executeUpdate(backfillUpdates[verb], { args: [decision] });
  } catch (err) {
    if (err instanceof WorkflowNotFoundError && (await client.workflow.getHandle(workflowId).describe().then(() => true, () => false))) {
      throw new BackfillOperationError('finished', `backfill ${workflowId} has finished`);
    }
    throw translate(err, workflowId);
  }
}

function translate(err: unknown, workflowId: string): unknown {
  return asRefusal(err, refusalReasons, (reason, message) => new BackfillOperationError(reason, message), `no backfill ${workflowId}`);
}

const refusalReasons: Record<string, BackfillRefusalReason> = {
  [BackfillRefusal.invalidPayload]: 'invalid',
  [BackfillRefusal.notNow]: 'not-now',
  [BackfillRefusal.notADecider]: 'not-a-decider',
  [BackfillRefusal.finished]: 'finished',
};
