/**
 * The post-incident review over HTTP, from the audit trail in Postgres (it outlives Temporal's retention):
 * `GET /incidents/:id/report` (JSON, or `?format=markdown`), `/report.svg` (the timeline picture), `/report.html`
 * (a page with both); and the monitoring checklists' reports, `GET /checklists?last=N`. Read access as for incidents.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';
import { readChecklistReports } from '../../checklists/reports';
import type { Config } from '../../config/schema';
import { readAuditedIncident } from '../../reports/auditTrail';
import { buildReview, reviewHtml, reviewMarkdown, timelineSvg, type Review } from '../../reports/review';
import type { Authenticator } from '../auth';
import { invalidInput, sendError } from '../errors';

interface ReportRouteDeps {
  config: Pick<Config, 'audit'>;
  /** The audit trail's pool; closed with the server. */
  pool: Pool;
  logger: Logger;
  auth: Authenticator;
}

const ParamsSchema = z.object({ id: z.string().min(1).max(1000) });
const QuerySchema = z.object({ format: z.enum(['json', 'markdown']).default('json') });
const ChecklistsQuerySchema = z.object({ last: z.coerce.number().int().min(1).max(1000).default(10) });

export function registerReportRoutes(app: FastifyInstance, { config, pool, logger, auth }: ReportRouteDeps): void {
  const readAccess = auth.require('incidents', {
    openWhenUnconfigured: true,
    endpoints: ['GET /incidents/:id/report', 'GET /incidents/:id/report.svg', 'GET /incidents/:id/report.html', 'GET /checklists'],
  });

  /** The review, or an answer already sent (404, 503). */
  async function reviewOf(raw: unknown, reply: FastifyReply): Promise<Review | undefined> {
    const params = ParamsSchema.safeParse(raw);
    if (!params.success) throw invalidInput('path', params.error);
    try {
      const audited = await readAuditedIncident(pool, config.audit.schema, params.data.id);
      if (!audited) {
        sendError(reply, 404, { error: `no incident ${params.data.id} in the audit trail` });
        return undefined;
      }
      return buildReview(audited);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'audit trail unavailable');
      sendError(reply, 503, { error: 'the audit trail (PostgreSQL) is unavailable' });
      return undefined;
    }
  }

  app.get('/incidents/:id/report', { onRequest: readAccess }, async (request, reply) => {
    const query = QuerySchema.safeParse(request.query);
    if (!query.success) throw invalidInput('query', query.error);
    const review = await reviewOf(request.params, reply);
    if (!review) return reply;
    if (query.data.format === 'markdown') return reply.type('text/markdown; charset=utf-8').send(reviewMarkdown(review));
    return reply.send(review);
  });

  app.get('/incidents/:id/report.svg', { onRequest: readAccess }, async (request, reply) => {
    const review = await reviewOf(request.params, reply);
    return review ? reply.type('image/svg+xml').send(timelineSvg(review)) : reply;
  });

  app.get('/incidents/:id/report.html', { onRequest: readAccess }, async (request, reply) => {
    const review = await reviewOf(request.params, reply);
    return review ? reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'").send(reviewHtml(review)) : reply;
  });

  app.get('/checklists', { onRequest: readAccess }, async (request, reply) => {
    const query = ChecklistsQuerySchema.safeParse(request.query);
    if (!query.success) throw invalidInput('query', query.error);
    try {
      return reply.send(await readChecklistReports(pool, config.audit.schema, query.data.last));
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'checklist reports unavailable');
      return sendError(reply, 503, { error: 'the checklist reports (PostgreSQL) are unavailable' });
    }
  });
}
