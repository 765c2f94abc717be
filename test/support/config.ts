import { createHash, randomBytes } from 'node:crypto';
import { parseConfig } from '../../src/config/load';
import type { Config, ConfigInput } from '../../src/config/schema';
import { requireEnv } from './env';

/** A config of our own per test: its own task queue and audit schema, so tests never see each other's incidents. */
export function testConfig(overrides: Partial<ConfigInput> = {}): Config {
  return parseConfig(testConfigInput(overrides));
}

/** The same, unparsed: what a test writes to a YAML file for a worker or CLI process. */
export function testConfigInput(overrides: Partial<ConfigInput> = {}): ConfigInput {
  const id = randomBytes(4).toString('hex');
  return {
    ...overrides,
    temporal: { address: requireEnv('TEMPORAL_ADDRESS'), namespace: process.env.TEMPORAL_NAMESPACE ?? 'default', taskQueue: `test-${id}`, ...overrides.temporal },
    audit: { databaseUrl: requireEnv('DATABASE_URL'), schema: `audit_test_${id}`, ...overrides.audit },
    docker: { host: process.env.DOCKER_HOST, ...overrides.docker },
  };
}

/** sha256 hex of a token, as the config stores it. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
