/**
 * A backfill seen and steered from outside (CLI, HTTP API): its status with the running chunk's cursor (read from
 * the activity's last heartbeat, which the workflow itself cannot see), throughput and ETA; and the decisions, sent
 * as Updates so the caller learns at once whether they were taken.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { ChunkCursor } from '../activities/etl';
import { BackfillRefusal, backfillStatusQuery, backfillUpdates, type BackfillDecision, type BackfillVerb } from '../workflows/backfill/messages';
import { asRefusal } from '../temporal/errors';
import type { BackfillStatus } from './model';

export interface BackfillView extends BackfillStatus {
  /** The last record the running chunk's activity reported having written. */
  cursor?: ChunkCursor;
  /** Records written per second since the backfill started (the running chunk's cursor included). */
  recordsPerSecond: number;
  /** Seconds left at that pace, once a chunk has been loaded to measure it by. */
  etaSeconds?: number;
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
  const written = status.recordsWritten + (cursor?.lastRecord ?? 0);
  const seconds = Math.max((now - Date.parse(status.startedAt)) / 1000, 0.001);
  const recordsPerSecond = Math.round((written / seconds) * 10) / 10;
  const perChunk = status.chunksDone > 0 ? status.recordsWritten / status.chunksDone : undefined;
  const remaining = perChunk === undefined ? undefined : (status.chunksTotal - status.chunksDone - status.skipped.length) * perChunk - (cursor?.lastRecord ?? 0);
  return {
    ...status,
    ...(cursor ? { cursor } : {}),
    recordsPerSecond,
    ...(remaining !== undefined && recordsPerSecond > 0 ? { etaSeconds: Math.max(0, Math.round(remaining / recordsPerSecond)) } : {}),
  };
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
