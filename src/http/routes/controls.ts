/**
 * Operator controls over HTTP: `GET /controls` (the hands-off switches and their last changes) and `PUT /controls`
 * (turn hands-off on or off, globally or for one runbook). The identity recorded is the token's name; the scope is
 * `operations`. The switch lives in Postgres (the audit trail's database), so it survives restarts of everything.
 */
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { z } from 'zod';
import type { Config } from '../../config/schema';
import { readHandsOff, readHandsOffChanges, signalOpenIncidents, writeHandsOff } from '../../controls/handsOff';
import type { HandsOffSwitch } from '../../controls/model';
import { runbookNames } from '../../runbooks/catalog';
import type { Authenticator } from '../auth';
import { invalidInput, sendError, sendTemporalFailure } from '../errors';
import { TEMPORAL_CALL_TIMEOUT_MS, withTemporalDeadline } from '../temporal';

interface ControlRouteDeps {
  config: Pick<Config, 'audit' | 'temporal'>;
  client: Client;
  /** The audit trail's pool; closed with the server. */
  pool: Pool;
  logger: Logger;
  auth: Authenticator;
  registry: Registry;
  temporalTimeoutMs?: number;
}

const PutBodySchema = z.strictObject({
  handsOff: z.boolean(),
  /** A runbook's name: its own switch; absent: the global one. */
  runbook: z.enum(runbookNames).optional(),
  reason: z.string().trim().min(1).max(1000).optional(),
});
const GetQuerySchema = z.object({ changes: z.coerce.number().int().min(0).max(1000).default(20) });

export function registerControlRoutes(app: FastifyInstance, deps: ControlRouteDeps): void {
  const { config, client, pool, logger, auth } = deps;
  const schema = config.audit.schema;
  const readAccess = auth.require('operations', { openWhenUnconfigured: true, endpoints: ['GET /controls'] });
  const writeAccess = auth.require('operations', { openWhenUnconfigured: false, endpoints: ['PUT /controls'] });
  registerHandsOffGauge(deps.registry, () => readHandsOff(pool, schema), logger);

  app.get('/controls', { onRequest: readAccess }, async (request, reply) => {
    const query = GetQuerySchema.safeParse(request.query);
    if (!query.success) throw invalidInput('query', query.error);
    try {
      return reply.send({ handsOff: await readHandsOff(pool, schema), changes: await readHandsOffChanges(pool, schema, query.data.changes) });
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'hands-off switch unavailable');
      return sendError(reply, 503, { error: 'the hands-off switch (PostgreSQL) is unavailable' });
    }
  });

  app.put('/controls', { onRequest: writeAccess }, async (request, reply) => {
    const body = PutBodySchema.safeParse(request.body ?? {});
    if (!body.success) throw invalidInput('body', body.error);
    const by = auth.identityOf(request);
    if (!by) return sendError(reply, 401, { error: 'a Bearer token with the "operations" scope is required' });
    const { handsOff, runbook, reason } = body.data;
    const change = { scope: runbook ?? ('global' as const), on: handsOff, by, at: new Date().toISOString(), ...(reason ? { reason } : {}) };
    try {
      await writeHandsOff(pool, schema, change);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'hands-off switch unavailable');
      return sendError(reply, 503, { error: 'the hands-off switch (PostgreSQL) is unavailable: nothing changed' });
    }
    logger.info({ scope: change.scope, on: change.on, by }, 'hands-off switch changed');
    try {
      const timeoutMs = deps.temporalTimeoutMs ?? TEMPORAL_CALL_TIMEOUT_MS;
      const signalled = await withTemporalDeadline(client, timeoutMs, () => signalOpenIncidents(client, config.temporal.taskQueue, change));
      return reply.send({ handsOff: change, ...signalled });
    } catch (err) {
      // The switch is set: incidents read it at their next gate even without the signal.
      return sendTemporalFailure(reply, err, logger, 'signal open incidents of the hands-off change');
    }
  });
}

/** `runbooks_hands_off{scope}`: 1 while that switch is on, read from Postgres at each scrape (a scrape while it is down keeps the last values). */
function registerHandsOffGauge(registry: Registry, read: () => Promise<HandsOffSwitch[]>, logger: Logger): void {
  if (registry.getSingleMetric('runbooks_hands_off')) return;
  new Gauge({
    name: 'runbooks_hands_off',
    help: 'Hands-off switches by scope (global or a runbook): 1 while on, 0 when off',
    labelNames: ['scope'],
    registers: [registry],
    async collect() {
      try {
        for (const s of await read()) this.set({ scope: s.scope }, s.on ? 1 : 0);
      } catch (err) {
        logger.debug({ err: (err as Error).message }, 'hands-off gauge not refreshed');
      }
    },
  });
}
