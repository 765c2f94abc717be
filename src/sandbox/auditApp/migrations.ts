/**
 * The backend's schema migrations (bundled into /app/server.js): `migrate up` applies what is pending, `migrate down
 * --to N` reverts down to revision N, `migrate current` prints the revision. The revision is the highest row of
 * `schema_migrations`; init.sql's schema is revision 0. Each migration runs in its own transaction with its row, so a
 * failed one leaves the schema at the revision before it. Two runs at once queue on an advisory lock.
 */
import { Client } from 'pg';
import { BackendEnv } from './contract';

interface Migration {
  revision: number;
  name: string;
  up: string;
  down: string;
}

const MIGRATIONS: readonly Migration[] = [
  {
    revision: 1,
    name: 'documents.source_url',
    up: 'ALTER TABLE documents ADD COLUMN source_url text',
    down: 'ALTER TABLE documents DROP COLUMN IF EXISTS source_url',
  },
];

/** The bad deploy's migration (FAULT_MIGRATION=fail): every seeded year is before 2100, so the check fails. */
const FAILING_MIGRATION: Migration = {
  revision: 2,
  name: 'documents.year_after_2100 (fails)',
  up: 'ALTER TABLE documents ADD CONSTRAINT documents_year_after_2100 CHECK (year > 2100)',
  down: 'ALTER TABLE documents DROP CONSTRAINT IF EXISTS documents_year_after_2100',
};

const LOCK_KEY = 727_001;

function log(message: string): void {
  process.stdout.write(`${new Date().toISOString()} INFO migrate: ${message}\n`);
}

async function currentRevision(db: Client): Promise<number> {
  const { rows } = await db.query<{ revision: number | null }>('SELECT max(revision) AS revision FROM schema_migrations');
  return rows[0]?.revision ?? 0;
}

async function apply(db: Client, migration: Migration, direction: 'up' | 'down'): Promise<void> {
  await db.query('BEGIN');
  try {
    await db.query(direction === 'up' ? migration.up : migration.down);
    if (direction === 'up') await db.query('INSERT INTO schema_migrations (revision, name) VALUES ($1, $2)', [migration.revision, migration.name]);
    else await db.query('DELETE FROM schema_migrations WHERE revision = $1', [migration.revision]);
    await db.query('COMMIT');
    log(`${direction} ${migration.revision} ${migration.name}: done`);
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw new Error(`${direction} ${migration.revision} ${migration.name} failed (rolled back): ${(err as Error).message}`, { cause: err });
  }
}

/** `migrate up | down --to N | current`; returns the exit code. */
export async function migrateCommand(args: readonly string[]): Promise<number> {
  const [command, flag, to] = args;
  const migrations = process.env[BackendEnv.faultMigration] === 'fail' ? [...MIGRATIONS, FAILING_MIGRATION] : MIGRATIONS;
  const target = command === 'down' && flag === '--to' && /^\d+$/.test(to ?? '') ? Number(to) : undefined;
  if (!(command === 'up' || command === 'current' || (command === 'down' && target !== undefined))) {
    process.stderr.write('usage: server.js migrate up | down --to N | current\n');
    return 2;
  }
  const db = new Client({ connectionString: process.env[BackendEnv.databaseUrl] || 'postgres://postgres@127.0.0.1:5432/audit_app', application_name: 'audit-app-migrate' });
  await db.connect();
  try {
    await db.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    await db.query('CREATE TABLE IF NOT EXISTS schema_migrations (revision int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
    const from = await currentRevision(db);
    if (command === 'up') {
      for (const migration of migrations.filter((m) => m.revision > from)) await apply(db, migration, 'up');
    } else if (command === 'down') {
      // Down migrations of revisions this image does not know cannot run: the image that made them must revert them.
      const unknown = from > Math.max(0, ...migrations.map((m) => m.revision));
      if (unknown && from > target!) throw new Error(`revision ${from} is newer than this image's migrations: revert it with the image that applied it`);
      for (const migration of migrations.filter((m) => m.revision <= from && m.revision > target!).reverse()) await apply(db, migration, 'down');
    }
    process.stdout.write(`schema revision ${await currentRevision(db)}\n`);
    return 0;
  } catch (err) {
    process.stdout.write(`${new Date().toISOString()} ERROR migrate: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await db.end().catch(() => undefined);
  }
}
