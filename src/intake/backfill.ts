/**
 * Starting a backfill (runbook §3): from the CLI, the HTTP API or a runbook. One backfill per ETL target at a time —
 * its workflow ID is the target's — so two overlapping ranges cannot run at once; a second start is refused with
 * the running one named.
 */
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { z } from 'zod';
import { chunksOf, type BackfillInput, type BackfillRequest, type BackfillStatus } from '../backfills/model';
import type { Config } from '../config/schema';
import type { ProcedureSetups } from '../incidents/model';
import { procedures } from '../runbooks/catalog';
import { backfillStatusQuery } from '../workflows/backfill/messages';

const year = z.number().int('a whole year').min(1900, 'from 1900').max(2200, 'up to 2200');
export const BackfillRequestSchema = z
  .strictObject({
    from: year,
    to: year,
    counties: z.array(z.string().regex(/^[A-Za-z][A-Za-z .'-]{0,62}$/, "a county name: letters, spaces, . ' -")).min(1).optional(),
    by: z.string().trim().min(1).max(100),
  })
  .refine((r) => r.from <= r.to, { message: '`from` must not be after `to`', path: ['to'] });

/** Why a backfill cannot start: the request or the config is wrong, or one is running already. */
export class BackfillRefused extends Error {
  override readonly name = 'BackfillRefused';
  constructor(
    message: string,
    readonly reason: 'invalid' | 'not-configured' | 'running',
    readonly running?: BackfillStatus,
  ) {
    super(message);
  }
}

/** The one backfill of the configured ETL target. */
export function backfillWorkflowId(config: Pick<Config, 'targets'>): string {
  const etl = config.targets.etl;
  if (!etl) throw new BackfillRefused('no ETL target is configured (targets.etl): there is nothing to backfill', 'not-configured');
  return `backfill-${etl.container}`;
}

export function backfillInput(request: BackfillRequest, config: Config): BackfillInput {
  const { backfill } = config;
  const known = new Set(backfill.counties);
  const unknown = (request.counties ?? []).filter((county) => !known.has(county));
  if (unknown.length) throw new BackfillRefused(`unknown county: ${unknown.join(', ')} (backfill.counties: ${backfill.counties.join(', ')})`, 'invalid');
  return { ...backfillDefaults(config), request, counties: request.counties ?? backfill.counties };
}

/** Everything of a backfill's input the config decides: every configured county, the policy, who is told. */
function backfillDefaults(config: Config): Omit<BackfillInput, 'request' | 'progress'> {
  const { backfill } = config;
  return {
    counties: backfill.counties,
    policy: { delayMs: backfill.delay, chunksPerRun: backfill.chunksPerRun, answerWithinMs: backfill.answerWithin },
    escalateTo: config.escalation.high.escalateTo,
    deciders: backfill.deciders,
  };
}

/** What a runbook needs to start the backfill as its child (the runbook adds the range); none without an ETL target. */
export function backfillSetup(config: Config): ProcedureSetups['backfill'] {
  return config.targets.etl ? { workflowId: backfillWorkflowId(config), input: backfillDefaults(config) } : undefined;
}

/** Starts the backfill, or refuses naming the one that runs. */
export async function startBackfill(client: Client, config: Config, raw: unknown): Promise<{ handle: WorkflowHandleWithFirstExecutionRunId; input: BackfillInput }> {
  const parsed = BackfillRequestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BackfillRefused(`${issue.path.join('.') || 'request'}: ${issue.message}`, 'invalid');
  }
  const request = parsed.data;
  const workflowId = backfillWorkflowId(config);
  const input = backfillInput(request, config);
  const range = request.from === request.to ? `${request.from}` : `${request.from}–${request.to}`;
  try {
    const handle = await client.workflow.start(procedures.backfill.workflowType, {
      workflowId,
      taskQueue: config.temporal.taskQueue,
      args: [input],
      workflowIdConflictPolicy: 'FAIL',
      staticSummary: `Backfill ${range} (${chunksOf(input).length} county-years) on ${config.targets.etl!.container}, started by ${request.by}`,
    });
    return { handle, input };
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const running = await client.workflow.getHandle(workflowId).query(backfillStatusQuery).catch(() => undefined);
    const what = running
      ? `${running.request.from}–${running.request.to}, ${running.chunksDone} of ${running.chunksTotal} chunk(s) done, ${running.phase}, started by ${running.request.by}`
      : 'its status does not answer';
    throw new BackfillRefused(`a backfill is already running on ${config.targets.etl!.container}: ${workflowId} (${what}) — cancel it or wait for it to finish`, 'running', running);
  }
}
