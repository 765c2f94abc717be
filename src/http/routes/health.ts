/** `/healthz`: the process is alive. `/readyz`: Temporal answers, so alerts can be taken in. */
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { describeTemporalError, sendError } from '../errors';
import { READINESS_TIMEOUT_MS, withTemporalDeadline } from '../temporal';

export function registerHealthRoutes(app: FastifyInstance, deps: { client: Client; readinessTimeoutMs?: number }): void {
  const { client } = deps;
  const timeoutMs = deps.readinessTimeoutMs ?? READINESS_TIMEOUT_MS;

  app.get('/healthz', async () => ({ ok: true }));

  app.get('/readyz', async (_request, reply) => {
    try {
      await withTemporalDeadline(client, timeoutMs, () => client.workflowService.getSystemInfo({}));
      return reply.send({ ok: true, temporal: 'reachable' });
    } catch (err) {
      return sendError(reply, 503, { error: `Temporal is not reachable: ${describeTemporalError(err)}` });
    }
  });
}
