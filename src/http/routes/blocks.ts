/**
 * The deny-list over HTTP (runbook §7 "Isolate"): `GET /blocks` lists it, `DELETE /blocks/:ip` lifts a block (a CIDR
 * network's `/` as `%2F`). Scope `operations`; the token's name is who lifted it (logged). One SREM, idempotent.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../../config/schema';
import { BlockRefusedError, checkedUnblockTarget, denyListOf } from '../../security/denyList';
import type { Authenticator } from '../auth';
import { invalidInput, sendError } from '../errors';

const ParamsSchema = z.object({ ip: z.string().min(1).max(100) });

export function registerBlockRoutes(app: FastifyInstance, deps: { config: Config; logger: Logger; auth: Authenticator }): void {
  const { config, logger, auth } = deps;
  const readAccess = auth.require('operations', { openWhenUnconfigured: true, endpoints: ['GET /blocks'] });
  const writeAccess = auth.require('operations', { openWhenUnconfigured: false, endpoints: ['DELETE /blocks/:ip'] });
  const list = denyListOf(config);

  app.get('/blocks', { onRequest: readAccess }, async (_request, reply) => {
    try {
      return reply.send({ denyList: list.name, members: (await list.members()).sort() });
    } catch (err) {
      return sendError(reply, 503, { error: `cannot reach ${list.name}: ${(err as Error).message}` });
    }
  });

  app.delete('/blocks/:ip', { onRequest: writeAccess }, async (request, reply) => {
    const params = ParamsSchema.safeParse(request.params);
    if (!params.success) throw invalidInput('path', params.error);
    let entry: string;
    try {
      entry = checkedUnblockTarget(params.data.ip).text;
    } catch (err) {
      if (err instanceof BlockRefusedError) return sendError(reply, 400, { error: err.message });
      throw err;
    }
    const by = auth.identityOf(request)!;
    try {
      const { removed, size } = await list.remove(entry);
      logger.info({ source: entry, removed, by }, 'deny-list entry lifted');
      return reply.send({ source: entry, denyList: list.name, removed, size, by });
    } catch (err) {
      return sendError(reply, 503, { error: `cannot reach ${list.name}: ${(err as Error).message}` });
    }
  });
}
