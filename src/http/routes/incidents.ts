/**
 * Incidents for operators: list, look at one, and act on one (approve/reject a step, acknowledge, resolve, complete a
 * task, pause/resume/abort its remediation).
 * Actions always need a token with the `incidents` scope; the identity recorded is the token's name, never
 * anything from the request body.
 */
import { QueryNotRegisteredError, type Client } from '@temporalio/client';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  actOnIncident,
  getIncident,
  IncidentOperationError,
  IncidentStatusFilterSchema,
  listIncidents,
  type IncidentAction,
  type RefusalReason,
} from '../../incidents/operations';
import type { Authenticator } from '../auth';
import { classifyTemporalError, invalidInput, sendError, sendTemporalFailure } from '../errors';
import type { HttpMetrics } from '../metrics';
import { TEMPORAL_CALL_TIMEOUT_MS, withTemporalDeadline } from '../temporal';

interface IncidentRouteDeps {
  client: Client;
  /** Lists only this deployment's incidents: this task queue's and its demo's (`<taskQueue>-demo`). */
  taskQueue: string;
  logger: Logger;
  metrics: HttpMetrics;
  auth: Authenticator;
  temporalTimeoutMs?: number;
}

const refusalStatus: Record<RefusalReason, number> = {
  'not-found': 404,
  'not-an-approver': 403,
  'no-such-step': 409,
  'no-such-task': 409,
  'tasks-open': 409,
  closed: 409,
  invalid: 400,
  already: 409,
  'remediation-over': 409,
};

const ListQuerySchema = z.object({
  status: IncidentStatusFilterSchema,
  limit: z.coerce.number().int().min(1).max(1000).default(200),
});
/** Temporal's default limit on workflow ID length. */
const ParamsSchema = z.object({ id: z.string().min(1).max(1000) });
// Lengths as the workflow validates them, so a bad request is a 400 here rather than a refused Update.
const DecisionBodySchema = z.strictObject({ step: z.string().min(1).max(100), reason: z.string().max(1000).optional() });
const NoteBodySchema = z.strictObject({ note: z.string().max(1000).optional() });
const ResolveBodySchema = z.strictObject({ note: z.string().max(1000).optional(), reason: z.string().trim().min(1).max(1000).optional() });
const TaskBodySchema = z.strictObject({ task: z.string().min(1).max(100), note: z.string().max(1000).optional() });
const AbortBodySchema = z.strictObject({ reason: z.string().trim().min(1).max(1000) });

const actionKinds = ['approve', 'reject', 'acknowledge', 'resolve', 'complete-task', 'pause', 'resume', 'abort'] as const;
type ActionKind = (typeof actionKinds)[number];

export function registerIncidentRoutes(app: FastifyInstance, deps: IncidentRouteDeps): void {
  const { client, taskQueue, logger, metrics, auth } = deps;
  const timeoutMs = deps.temporalTimeoutMs ?? TEMPORAL_CALL_TIMEOUT_MS;
  // Without any incidents token, reading stays open (as on a fresh `npm start`) but nobody can act: actions are
  // recorded under the token's name, and there is none.
  const readAccess = auth.require('incidents', { openWhenUnconfigured: true, endpoints: ['GET /incidents', 'GET /incidents/:id'] });
  const actionAccess = auth.require('incidents', { openWhenUnconfigured: false, endpoints: actionKinds.map((kind) => `POST /incidents/:id/${kind}`) });
  const temporal = <T>(fn: () => Promise<T>) => withTemporalDeadline(client, timeoutMs, fn);

  app.get('/incidents', { onRequest: readAccess }, async (request, reply) => {
    const query = ListQuerySchema.safeParse(request.query);
    if (!query.success) throw invalidInput('query', query.error);
    try {
      const incidents = await temporal(() => listIncidents(client, taskQueue, query.data.status, query.data.limit));
      return reply.send({ incidents });
    } catch (err) {
      return sendFailure(reply, err, logger, 'list incidents');
    }
  });

  app.get('/incidents/:id', { onRequest: readAccess }, async (request, reply) => {
    const { id } = parseParams(request);
    try {
      return reply.send(await temporal(() => getIncident(client, id)));
    } catch (err) {
      return sendFailure(reply, err, logger, `get incident ${id}`);
    }
  });

  for (const kind of actionKinds) {
    app.post(
      `/incidents/:id/${kind}`,
      { onRequest: actionAccess, config: { incidentAction: kind } },
      async (request, reply) => {
        const { id } = parseParams(request);
        const by = auth.identityOf(request);
        if (!by) {
          // Unreachable: the onRequest hook refuses requests without an incidents token.
          metrics.incidentActions.inc({ action: kind, outcome: 'unauthorized' });
          return sendError(reply, 401, { error: 'a Bearer token with the "incidents" scope is required' });
        }
        let action: IncidentAction;
        try {
          action = parseAction(kind, by, request.body);
        } catch (err) {
          metrics.incidentActions.inc({ action: kind, outcome: 'invalid' });
          throw err;
        }
        try {
          const view = await temporal(() => actOnIncident(client, id, action));
          metrics.incidentActions.inc({ action: kind, outcome: 'ok' });
          logger.info({ workflowId: id, action: kind, by }, 'incident action accepted');
          return reply.send(view);
        } catch (err) {
          metrics.incidentActions.inc({ action: kind, outcome: outcomeOf(err) });
          return sendFailure(reply, err, logger, `${kind} incident ${id}`);
        }
      },
    );
  }
}

/** The incident action a route config names, for counting requests refused before the handler runs. */
export function incidentActionOf(request: FastifyRequest): ActionKind | undefined {
  return (request.routeOptions.config as { incidentAction?: ActionKind } | undefined)?.incidentAction;
}

function parseParams(request: FastifyRequest): { id: string } {
  const params = ParamsSchema.safeParse(request.params);
  if (!params.success) throw invalidInput('path', params.error);
  return params.data;
}

function parseAction(kind: ActionKind, by: string, rawBody: unknown): IncidentAction {
  // A POST without a body (no content-type) is an empty object: `/acknowledge` and `/resolve` need nothing.
  const body = rawBody === undefined ? {} : rawBody;
  if (kind === 'approve' || kind === 'reject') {
    const parsed = DecisionBodySchema.safeParse(body);
    if (!parsed.success) throw invalidInput('body', parsed.error);
    return { kind, by, step: parsed.data.step, ...(parsed.data.reason ? { reason: parsed.data.reason } : {}) };
  }
  if (kind === 'complete-task') {
    const parsed = TaskBodySchema.safeParse(body);
    if (!parsed.success) throw invalidInput('body', parsed.error);
    return { kind, by, task: parsed.data.task, ...(parsed.data.note ? { note: parsed.data.note } : {}) };
  }
  if (kind === 'resolve') {
    const parsed = ResolveBodySchema.safeParse(body);
    if (!parsed.success) throw invalidInput('body', parsed.error);
    return { kind, by, ...(parsed.data.note ? { note: parsed.data.note } : {}), ...(parsed.data.reason ? { reason: parsed.data.reason } : {}) };
  }
  if (kind === 'abort') {
    const parsed = AbortBodySchema.safeParse(body);
    if (!parsed.success) throw invalidInput('body', parsed.error);
    return { kind, by, reason: parsed.data.reason };
  }
  const parsed = NoteBodySchema.safeParse(body);
  if (!parsed.success) throw invalidInput('body', parsed.error);
  return { kind, by, ...(parsed.data.note ? { note: parsed.data.note } : {}) };
}

function outcomeOf(err: unknown): string {
  if (err instanceof IncidentOperationError) return err.reason;
  if (err instanceof QueryNotRegisteredError) return 'not-found';
  const failure = classifyTemporalError(err);
  return failure === 'bug' ? 'error' : failure;
}

function sendFailure(reply: FastifyReply, err: unknown, logger: Logger, what: string): FastifyReply {
  if (err instanceof IncidentOperationError) return sendError(reply, refusalStatus[err.reason], { error: err.message });
  // A workflow that is not an incident (no status query): as far as this API goes, there is no such incident.
  if (err instanceof QueryNotRegisteredError) return sendError(reply, 404, { error: 'no such incident (the workflow is not an incident)' });
  return sendTemporalFailure(reply, err, logger, what);
}
