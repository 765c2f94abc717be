/**
 * The HTTP API: the Alertmanager webhook, incident operations, health and metrics. `buildHttpServer` wires the
 * routes and does not listen; the caller does `.listen({ host: config.http.host, port: config.http.port })`.
 */
import type { Client } from '@temporalio/client';
import type { IncomingHttpHeaders } from 'node:http';
import { Pool } from 'pg';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema';
import { createAuthenticator } from './auth';
import { HttpError, sendError } from './errors';
import { createHttpMetrics, registerMetricsRoute } from './metrics';
import { registerAlertRoutes } from './routes/alerts';
import { registerBackfillRoutes } from './routes/backfills';
import { registerDeploymentRoutes } from './routes/deployments';
import { registerReportRoutes } from './routes/reports';
import { registerBlockRoutes } from './routes/blocks';
import { registerControlRoutes } from './routes/controls';
import { registerHealthRoutes } from './routes/health';
import { incidentActionOf, registerIncidentRoutes } from './routes/incidents';

export interface HttpServerOptions {
  config: Config;
  client: Client;
  logger: Logger;
  /** Where metrics go; a fresh registry per server by default, so servers (and tests) never share counters. */
  metrics?: Registry;
  /** How long a request waits for Temporal before answering 503 (default 6 s; `/readyz` 2 s). */
  timeouts?: { temporalMs?: number; readinessMs?: number };
}

export async function buildHttpServer(options: HttpServerOptions): Promise<FastifyInstance> {
  const { config, client } = options;
  const logger = options.logger.child({ component: 'http' });
  const metrics = createHttpMetrics(options.metrics);

  const app = Fastify({
    // Our own request log below: it never includes headers (Authorization) or bodies.
    logger: false,
    bodyLimit: config.http.bodyLimitBytes,
    // Incident IDs are `<alertname up to 100>-<fingerprint up to 64>`; the default limit of 100 is too short.
    routerOptions: { maxParamLength: 1024 },
    return503OnClosing: true,
  });

  // JSON bodies as usual, except that an empty body is no body (e.g. `curl -X POST -H 'content-type: application/json'` on
  // /acknowledge), and a body we would misread — another charset, a content coding — is refused (415), not guessed at.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const unreadable = unreadableBody(request.headers);
    if (unreadable) return done(new HttpError(415, unreadable), undefined);
    let text: string;
    try {
      // Bytes that are not UTF-8 (a Latin-1 body, say) would otherwise become U+FFFD and be accepted, mangled.
      text = strictUtf8.decode(typeof body === 'string' ? Buffer.from(body) : body);
    } catch {
      return done(new HttpError(400, 'malformed request body: not UTF-8 (JSON is sent as UTF-8)'), undefined);
    }
    if (text.trim() === '') return done(null, undefined);
    return parseJson(request, text, done);
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000;
    metrics.httpDuration.observe({ method: request.method, route, status_code: String(reply.statusCode) }, seconds);
    const quiet = route === '/metrics' || route === '/healthz' || route === '/readyz';
    const level = reply.statusCode >= 500 ? 'warn' : quiet ? 'debug' : 'info';
    logger[level]({ reqId: request.id, method: request.method, route, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  app.setErrorHandler((error: FastifyError | HttpError | Error, request, reply) => {
    if (error instanceof HttpError) {
      return sendError(reply, error.statusCode, { error: error.message, ...(error.issues ? { issues: error.issues } : {}) });
    }
    const statusCode = (error as FastifyError).statusCode;
    if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
      return sendError(reply, statusCode, { error: clientErrorMessage(error as FastifyError, config.http.bodyLimitBytes) });
    }
    logger.error({ reqId: request.id, route: request.routeOptions.url, err: error }, 'request failed');
    return sendError(reply, 500, { error: 'internal error' });
  });

  app.setNotFoundHandler((request, reply) => sendError(reply, 404, { error: `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}` }));

  const auth = createAuthenticator(config, logger, (request, refusal) => {
    const action = incidentActionOf(request);
    if (action) metrics.incidentActions.inc({ action, outcome: refusal });
  });
  const temporalTimeoutMs = options.timeouts?.temporalMs;

  registerHealthRoutes(app, { client, readinessTimeoutMs: options.timeouts?.readinessMs });
  registerMetricsRoute(app, metrics);
  registerAlertRoutes(app, { config, client, logger, metrics, auth, temporalTimeoutMs });
  registerIncidentRoutes(app, { client, taskQueue: config.temporal.taskQueue, logger, metrics, auth, temporalTimeoutMs });
  registerBackfillRoutes(app, { config, client, logger, auth, temporalTimeoutMs });
  // The audit trail's pool connects on first use: a server whose Postgres is down still takes alerts.
  const auditPool = new Pool({ connectionString: config.audit.databaseUrl, max: 2, connectionTimeoutMillis: 5_000 });
  auditPool.on('error', (err) => logger.warn({ err: err.message }, 'audit trail connection lost'));
  app.addHook('onClose', () => auditPool.end());
  registerReportRoutes(app, { config, pool: auditPool, logger, auth });
  registerDeploymentRoutes(app, { config, client, logger, auth, pool: auditPool, temporalTimeoutMs });
  registerBlockRoutes(app, { config, logger, auth });
  registerControlRoutes(app, { config, client, pool: auditPool, logger, auth, registry: metrics.registry, temporalTimeoutMs });
  auth.warnAboutUnconfiguredScopes();

  await app.ready();
  return app;
}

/** Fastify's own 4xx errors (bad JSON, body too large, wrong content type) in words for the caller. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Why a JSON body with these headers cannot be read as UTF-8 text, or undefined when it can. */
function unreadableBody(headers: IncomingHttpHeaders): string | undefined {
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(headers['content-type'] ?? '')?.[1];
  if (charset && !/^utf-?8$/i.test(charset)) return `charset ${charset.slice(0, 40)} is not supported: send UTF-8 JSON`;
  const coding = headers['content-encoding'];
  if (coding && coding.trim().toLowerCase() !== 'identity') return `content-encoding ${coding.slice(0, 40)} is not supported: send the body uncompressed`;
  return undefined;
}

function clientErrorMessage(error: FastifyError, bodyLimitBytes: number): string {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return `malformed request body: ${error.message}`;
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return `request body larger than ${bodyLimitBytes} bytes`;
    default:
      return error.message;
  }
}
