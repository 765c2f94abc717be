/** How the HTTP API turns failures into status codes and one JSON error shape: `{ error, issues? }`. */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { PayloadConverterError, ValueError } from '@temporalio/common';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { causeChain, grpcStatusOf, isTemporalUnavailable } from '../temporal/errors';

export interface Issue {
  path: string;
  message: string;
}

interface ErrorBody {
  error: string;
  issues?: Issue[];
}

/** Seconds a client (Alertmanager, an operator's script) should wait before retrying a 503. */
const RETRY_AFTER_SECONDS = 10;

const MAX_ISSUES = 20;
const MAX_MESSAGE = 300;

/** A refusal the handler decided on: status, message and, for bad input, the offending fields. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly issues?: Issue[],
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Zod issues as `{ path: 'alerts.0.fingerprint', message }`, capped so a huge bad payload cannot produce a huge answer. */
function zodIssues(error: z.ZodError, prefix: (string | number)[] = []): Issue[] {
  const path = (parts: PropertyKey[]) => [...prefix, ...parts].map(String).join('.') || '(root)';
  return error.issues
    .flatMap((issue) =>
      // Name each unknown field itself (`by`), not the object that carries it.
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => ({ path: truncate(path([...issue.path, key])), message: 'unknown field' }))
        : [{ path: path(issue.path), message: truncate(issue.message) }],
    )
    .slice(0, MAX_ISSUES);
}

/** `invalid query: status` — the error line names the fields so a human reading only `error` knows what to fix. */
export function invalidInput(what: string, error: z.ZodError, prefix: (string | number)[] = []): HttpError {
  const issues = zodIssues(error, prefix);
  const fields = [...new Set(issues.map((i) => i.path))].join(', ');
  return new HttpError(400, `invalid ${what}: ${fields}`, issues);
}

/** Sends `{ error, issues? }` (plus any context such as `results`) with the headers the status calls for. */
export function sendError(reply: FastifyReply, statusCode: number, body: ErrorBody & Record<string, unknown>): FastifyReply {
  if (statusCode === 503) reply.header('retry-after', String(RETRY_AFTER_SECONDS));
  if (statusCode === 401) reply.header('www-authenticate', 'Bearer');
  return reply.code(statusCode).type('application/json; charset=utf-8').send(body);
}

/** Raised by `withTemporalDeadline` when Temporal did not answer in time, whatever the gRPC layer was doing. */
export class TemporalTimeoutError extends Error {
  constructor(ms: number) {
    super(`Temporal did not answer within ${ms} ms`);
    this.name = 'TemporalTimeoutError';
  }
}

/**
 * What a failed Temporal call means for the caller:
 * - `unavailable`: Temporal is down, unreachable, overloaded or too slow — retry later (503);
 * - `rejected`: Temporal refused what this request carried (e.g. a payload over the blob size limit) — a retry
 *   would fail the same way, so 4xx (Alertmanager retries 5xx forever);
 * - `bug`: anything else, a genuine server-side problem (500).
 */
type TemporalFailure = 'unavailable' | 'rejected' | 'bug';

export function classifyTemporalError(err: unknown): TemporalFailure {
  if (err instanceof TemporalTimeoutError || err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) return 'unavailable';
  if (isTemporalUnavailable(err)) return 'unavailable';
  const code = grpcStatusOf(err);
  // CANCELLED: our own deadline's abort signal fired.
  if (code === GrpcStatus.CANCELLED) return 'unavailable';
  // A query while no worker polls the incident's task queue: the worker is down, Temporal is fine; retry later.
  if (code === GrpcStatus.FAILED_PRECONDITION && causeChain(err).some((e) => e instanceof Error && /no poller seen/i.test(e.message))) {
    return 'unavailable';
  }
  if (code === GrpcStatus.INVALID_ARGUMENT || code === GrpcStatus.OUT_OF_RANGE) return 'rejected';
  if (causeChain(err).some((e) => e instanceof ValueError || e instanceof PayloadConverterError)) return 'rejected';
  if (causeChain(err).some((e) => e instanceof Error && connectionTrouble.test(e.message))) return 'unavailable';
  return 'bug';
}

/**
 * The answer to a failed Temporal call that no route-specific refusal explains: 503 when Temporal or the worker is
 * unavailable (logged with `what`), 400 when Temporal refused the request; anything else is rethrown (a 500).
 */
export function sendTemporalFailure(reply: FastifyReply, err: unknown, logger: Pick<Logger, 'warn'>, what: string): FastifyReply {
  const failure = classifyTemporalError(err);
  if (failure === 'unavailable') {
    const reason = describeTemporalError(err);
    logger.warn({ what, reason }, 'Temporal or the worker unavailable');
    const noWorker = /no poller seen/i.test(reason);
    return sendError(reply, 503, { error: noWorker ? `no worker is serving this workflow: ${reason}` : `Temporal is unavailable: ${reason}` });
  }
  if (failure === 'rejected') return sendError(reply, 400, { error: `Temporal refused the request: ${describeTemporalError(err)}` });
  throw err;
}

/** The message of the innermost cause worth showing (gRPC `details` rather than "Failed to start Workflow"). */
export function describeTemporalError(err: unknown): string {
  for (const e of causeChain(err).reverse()) {
    const details = (e as { details?: unknown }).details;
    if (typeof details === 'string' && details) return truncate(details);
  }
  return truncate(err instanceof Error ? err.message : String(err));
}

const connectionTrouble =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|Failed to connect|No connection established|connection (closed|refused|reset)/i;

function truncate(text: string): string {
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text;
}
