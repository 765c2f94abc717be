/**
 * Backfills over HTTP (runbook §3): start one, look at it, steer it. Starting and steering need a token with the
 * `operations` scope, whose name is recorded as who did it; reading is open when no token has that scope.
 */
import { QueryNotRegisteredError, type Client } from '@temporalio/client';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { actOnBackfill, BackfillOperationError, getBackfill, type BackfillRefusalReason } from '../../backfills/operations';
import type { Config } from '../../config/schema';
import { BackfillRefused, startBackfill } from '../../intake/backfill';
import type { BackfillVerb } from '../../workflows/backfill/messages';
import type { Authenticator } from '../auth';
import { invalidInput, sendError, sendTemporalFailure } from '../errors';
import { TEMPORAL_CALL_TIMEOUT_MS, withTemporalDeadline } from '../temporal';

interface BackfillRouteDeps {
  config: Config;
  client: Client;
  logger: Logger;
  auth: Authenticator;
  temporalTimeoutMs?: number;
}

const StartBodySchema = z.strictObject({
  from: z.number().int(),
  to: z.number().int().optional(),
  counties: z.array(z.string()).min(1).optional(),
});
const DecisionBodySchema = z.strictObject({ reason: z.string().max(1000).optional() });
const ParamsSchema = z.object({ id: z.string().min(1).max(1000) });

/** URL path segment → the workflow's message. */
const verbs: Record<string, BackfillVerb> = { pause: 'pause', resume: 'resume', cancel: 'cancel', 'retry-chunk': 'retryChunk', 'skip-chunk': 'skipChunk' };

const refusalStatus: Record<BackfillRefusalReason, number> = { 'not-found': 404, 'not-now': 409, 'not-a-decider': 403, finished: 409, invalid: 400 };

export function registerBackfillRoutes(app: FastifyInstance, deps: BackfillRouteDeps): void {
  const { config, client, logger, auth } = deps;
  const timeoutMs = deps.temporalTimeoutMs ?? TEMPORAL_CALL_TIMEOUT_MS;
  const temporal = <T>(fn: () => Promise<T>) => withTemporalDeadline(client, timeoutMs, fn);
  const readAccess = auth.require('operations', { openWhenUnconfigured: true, endpoints: ['GET /backfills/:id'] });
  const writeAccess = auth.require('operations', {
    openWhenUnconfigured: false,
    endpoints: ['POST /backfills', ...Object.keys(verbs).map((path) => `POST /backfills/:id/${path}`)],
  });

  app.post('/backfills', { onRequest: writeAccess }, async (request, reply) => {
    const body = StartBodySchema.safeParse(request.body ?? {});
    if (!body.success) throw invalidInput('body', body.error);
    const by = auth.identityOf(request)!;
    try {
      const { from, to, counties } = body.data;
      const { handle } = await temporal(() => startBackfill(client, config, { from, to: to ?? from, by, ...(counties ? { counties } : {}) }));
      logger.info({ workflowId: handle.workflowId, from, to: to ?? from, by }, 'backfill started');
      return reply.code(201).send({ workflowId: handle.workflowId, status: await temporal(() => getBackfill(client, handle.workflowId)) });
    } catch (err) {
      if (err instanceof BackfillRefused) {
        const status = err.reason === 'invalid' ? 400 : 409;
        return sendError(reply, status, { error: err.message, ...(err.running ? { running: err.running } : {}) });
      }
      return sendFailure(reply, err, logger, 'start a backfill');
    }
  });

  app.get('/backfills/:id', { onRequest: readAccess }, async (request, reply) => {
    const { id } = parseParams(request.params);
    try {
      return reply.send(await temporal(() => getBackfill(client, id)));
    } catch (err) {
      return sendFailure(reply, err, logger, `get backfill ${id}`);
    }
  });

  for (const [path, verb] of Object.entries(verbs)) {
    app.post(`/backfills/:id/${path}`, { onRequest: writeAccess }, async (request, reply) => {
      const { id } = parseParams(request.params);
      const body = DecisionBodySchema.safeParse(request.body ?? {});
      if (!body.success) throw invalidInput('body', body.error);
      const by = auth.identityOf(request)!;
      try {
        const status = await temporal(() => actOnBackfill(client, id, verb, { by, ...(body.data.reason ? { reason: body.data.reason } : {}) }));
        logger.info({ workflowId: id, action: verb, by }, 'backfill decision accepted');
        return reply.send(status);
      } catch (err) {
        return sendFailure(reply, err, logger, `${path} backfill ${id}`);
      }
    });
  }
}

function parseParams(raw: unknown): { id: string } {
  const params = ParamsSchema.safeParse(raw);
  if (!params.success) throw invalidInput('path', params.error);
  return params.data;
}

function sendFailure(reply: FastifyReply, err: unknown, logger: Logger, what: string): FastifyReply {
  if (err instanceof BackfillOperationError) return sendError(reply, refusalStatus[err.reason], { error: err.message });
  if (err instanceof QueryNotRegisteredError) return sendError(reply, 404, { error: 'no such backfill (the workflow is not a backfill)' });
  return sendTemporalFailure(reply, err, logger, what);
}
