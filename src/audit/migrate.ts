import path from 'node:path';
import type { Logger } from 'pino';

const MIGRATIONS_DIR = path.resolve(__dirname, '../../migrations');

/** Brings the audit schema up to date (node-pg-migrate, SQL files in migrations/). Safe to run on every start. */
export async function migrateAuditSchema(databaseUrl: string, schema: string, logger?: Logger): Promise<void> {
  const { runner } = await import('node-pg-migrate');
  await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    schema,
    createSchema: true,
    migrationsTable: 'pgmigrations',
    log: (message: string) => logger?.debug(message),
    singleTransaction: true,
  });
}
