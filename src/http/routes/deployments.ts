/**
 * Deployments over HTTP (runbook "Deployment Procedures"): start a deployment or a rollback, look at the running one,
 * approve or reject its pending step, read the history. Starting and deciding need a token with the `operations`
 * scope, whose name is recorded as who did it; reading is open when no token has that scope.
 */
import { QueryNotRegisteredError, type Client } from '@temporalio/client';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../../config/schema';
import { readDeployments } from '../../deployments/history';
import { decideDeployment, DeploymentOperationError, getDeployment, type DeploymentOperationReason } from '../../deployments/operations';
import { DeploymentRefused, deploymentWorkflowId, startDeploy, startRollback } from '../../intake/deploy';
import { deployApprovalKinds } from '../../workflows/deploy/messages';
import type { Authenticator } from '../auth';
import { invalidInput, sendError, sendTemporalFailure } from '../errors';
import { TEMPORAL_CALL_TIMEOUT_MS, withTemporalDeadline } from '../temporal';

interface DeploymentRouteDeps {
  config: Config;
  client: Client;
  logger: Logger;
  auth: Authenticator;
  /** The audit database, where the history is. */
  pool: Pick<Pool, 'query'>;
  temporalTimeoutMs?: number;
}

const DeployBodySchema = z.strictObject({ version: z.string(), reason: z.string().max(1000).optional() });
const RollbackBodySchema = z.strictObject({ to: z.string().optional(), reason: z.string().max(1000).optional() });
const DecisionBodySchema = z.strictObject({ step: z.enum(deployApprovalKinds), reason: z.string().max(1000).optional() });
const HistoryQuerySchema = z.strictObject({ last: z.coerce.number().int().min(1).max(1000).default(20) });

const refusalStatus: Record<DeploymentOperationReason, number> = { 'not-found': 404, 'not-now': 409, 'not-an-approver': 403, invalid: 400 };

export function registerDeploymentRoutes(app: FastifyInstance, deps: DeploymentRouteDeps): void {
  const { config, client, logger, auth, pool } = deps;
  const timeoutMs = deps.temporalTimeoutMs ?? TEMPORAL_CALL_TIMEOUT_MS;
  const temporal = <T>(fn: () => Promise<T>) => withTemporalDeadline(client, timeoutMs, fn);
  const readAccess = auth.require('operations', { openWhenUnconfigured: true, endpoints: ['GET /deployments', 'GET /deployments/current'] });
  const writeAccess = auth.require('operations', {
    openWhenUnconfigured: false,
    endpoints: ['POST /deployments', 'POST /deployments/rollback', 'POST /deployments/current/approve', 'POST /deployments/current/reject'],
  });

  const started = async (reply: FastifyReply, what: string, begin: () => Promise<{ workflowId: string }>) => {
    try {
      const handle = await temporal(begin);
      logger.info({ workflowId: handle.workflowId }, `${what} started`);
      return reply.code(201).send({ workflowId: handle.workflowId, status: await temporal(() => getDeployment(client, handle.workflowId)) });
    } catch (err) {
      if (err instanceof DeploymentRefused) return sendError(reply, err.reason === 'invalid' ? 400 : 409, { error: err.message });
      return sendFailure(reply, err, logger, `start a ${what}`);
    }
  };

  app.post('/deployments', { onRequest: writeAccess }, async (request, reply) => {
    const body = DeployBodySchema.safeParse(request.body ?? {});
    if (!body.success) throw invalidInput('body', body.error);
    const by = auth.identityOf(request)!;
    return started(reply, 'deployment', () => startDeploy(client, config, { ...body.data, by }));
  });

  app.post('/deployments/rollback', { onRequest: writeAccess }, async (request, reply) => {
    const body = RollbackBodySchema.safeParse(request.body ?? {});
    if (!body.success) throw invalidInput('body', body.error);
    const by = auth.identityOf(request)!;
    const { to, reason } = body.data;
    return started(reply, 'rollback', () => startRollback(client, config, { by, ...(to ? { toVersion: to } : {}), ...(reason ? { reason } : {}) }));
  });

  app.get('/deployments', { onRequest: readAccess }, async (request, reply) => {
    const query = HistoryQuerySchema.safeParse(request.query ?? {});
    if (!query.success) throw invalidInput('query', query.error);
    return reply.send({ deployments: await readDeployments(pool, config.audit.schema, { last: query.data.last }) });
  });

  app.get('/deployments/current', { onRequest: readAccess }, async (_request, reply) => {
    try {
      return reply.send(await temporal(() => getDeployment(client, deploymentWorkflowId(config))));
    } catch (err) {
      return sendFailure(reply, err, logger, 'get the running deployment');
    }
  });

  for (const verb of ['approve', 'reject'] as const) {
    app.post(`/deployments/current/${verb}`, { onRequest: writeAccess }, async (request, reply) => {
      const body = DecisionBodySchema.safeParse(request.body ?? {});
      if (!body.success) throw invalidInput('body', body.error);
      const by = auth.identityOf(request)!;
      try {
        const status = await temporal(() => decideDeployment(client, deploymentWorkflowId(config), verb, { ...body.data, by }));
        logger.info({ workflowId: status.workflowId, action: verb, step: body.data.step, by }, 'deployment decision accepted');
        return reply.send(status);
      } catch (err) {
        return sendFailure(reply, err, logger, `${verb} the running deployment`);
      }
    });
  }
}

function sendFailure(reply: FastifyReply, err: unknown, logger: Logger, what: string): FastifyReply {
  if (err instanceof DeploymentOperationError) return sendError(reply, refusalStatus[err.reason], { error: err.message });
  if (err instanceof DeploymentRefused) return sendError(reply, err.reason === 'invalid' ? 400 : 409, { error: err.message });
  if (err instanceof QueryNotRegisteredError) return sendError(reply, 404, { error: 'no such deployment' });
  return sendTemporalFailure(reply, err, logger, what);
}
