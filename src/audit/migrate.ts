import path from 'node:path';
import type { Logger } from 'pino';
import { redactUrl } from '../logging/redact';

const MIGRATIONS_DIR = path.resolve(__dirname, '../../migrations');

/** How long connecting to the audit database may take before start-up gives up (a firewalled host never answers). */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * The audit trail's PostgreSQL cannot be used: nobody answers at its URL, or it refused us (unknown role, wrong
 * password, no such database). The message names the URL (password redacted) and the settings that change it.
 */
export class AuditDatabaseError extends Error {
  constructor(
    readonly problem: 'unreachable' | 'refused',
    readonly url: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    const what = problem === 'unreachable' ? 'is unreachable' : 'refused the connection';
    super(`the audit trail's PostgreSQL at ${redactUrl(url)} ${what} (${reason}); DATABASE_URL or audit.databaseUrl sets where it is`, options);
    this.name = 'AuditDatabaseError';
  }
}

/** Brings the audit schema up to date (node-pg-migrate, SQL files in migrations/). Safe to run on every start. */
export async function migrateAuditSchema(databaseUrl: string, schema: string, logger?: Logger): Promise<void> {
  const { runner } = await import('node-pg-migrate');
  try {
    await runner({
      databaseUrl: { connectionString: databaseUrl, connectionTimeoutMillis: CONNECT_TIMEOUT_MS },
      dir: MIGRATIONS_DIR,
      direction: 'up',
      schema,
      createSchema: true,
      migrationsTable: 'pgmigrations',
      log: (message: string) => logger?.debug(message),
      singleTransaction: true,
      // Workers starting together (a rollout, a scaled deployment, tests side by side) take turns instead of failing.
      advisoryLockMode: 'wait',
    });
  } catch (err) {
    throw asAuditDatabaseError(err, databaseUrl) ?? err;
  }
}

/** Errors of the network (nobody answers) and PostgreSQL's refusals of the connection itself, in words; undefined for any other failure. */
export function asAuditDatabaseError(err: unknown, databaseUrl: string): AuditDatabaseError | undefined {
  const e = err as { code?: unknown; message?: unknown; errors?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  // `localhost` resolves to two addresses: Node reports both failures as one AggregateError.
  const first = Array.isArray(e?.errors) ? (e.errors[0] as { message?: unknown } | undefined) : undefined;
  const reason = message || (typeof first?.message === 'string' ? first.message : code ?? 'unknown error');
  if ((code && networkCodes.has(code)) || /connection timeout|timeout expired|Connection terminated unexpectedly/i.test(message)) {
    return new AuditDatabaseError('unreachable', databaseUrl, reason, { cause: err });
  }
  // SQLSTATE class 28 (invalid authorization: unknown role, wrong password) and 3D000 (no such database).
  if (code && (code.startsWith('28') || code === '3D000')) return new AuditDatabaseError('refused', databaseUrl, reason, { cause: err });
  return undefined;
}

const networkCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
