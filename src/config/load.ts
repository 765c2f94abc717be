import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigSchema, type Config } from './schema';

/** Start-up stops on this, naming every bad key. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration in ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

interface LoadOptions {
  /** `--config`; else RUNBOOKS_CONFIG; else ./runbooks.yaml if present; else embedded defaults. */
  file?: string;
  env?: NodeJS.ProcessEnv;
}

export function configFilePath({ file, env = process.env }: LoadOptions): string | undefined {
  if (file) return file;
  if (env.RUNBOOKS_CONFIG) return env.RUNBOOKS_CONFIG;
  return existsSync('runbooks.yaml') ? 'runbooks.yaml' : undefined;
}

export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const file = configFilePath({ ...options, env });
  const raw = file ? readYaml(file) : {};
  return parseConfig(applyEnvOverrides(raw, env), file ?? 'embedded defaults');
}

export function parseConfig(raw: unknown, source = 'configuration'): Config {
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(source, describeIssues(result.error));
  const dangling = danglingReferences(result.data);
  if (dangling.length > 0) throw new ConfigError(source, dangling);
  return result.data;
}

function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
}

function readYaml(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as Error).message}`]);
  }
  try {
    return parseYaml(text) ?? {};
  } catch (err) {
    throw new ConfigError(file, [`not valid YAML: ${(err as Error).message}`]);
  }
}

/** Connection settings (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, WORKER_METRICS_ADDRESS, DATABASE_URL, DOCKER_HOST, HOST, PORT, REDIS_URL) come from the environment in containers; they win over the file. */
function applyEnvOverrides(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const config = structuredClone(raw) as Record<string, Record<string, unknown> | undefined>;
  const set = (section: string, key: string, value: unknown) => {
    if (value === undefined || value === '') return;
    config[section] = { ...(config[section] ?? {}), [key]: value };
  };
  set('temporal', 'address', env.TEMPORAL_ADDRESS);
  set('temporal', 'namespace', env.TEMPORAL_NAMESPACE);
  set('temporal', 'workerMetricsAddress', env.WORKER_METRICS_ADDRESS);
  set('audit', 'databaseUrl', env.DATABASE_URL);
  set('docker', 'host', env.DOCKER_HOST);
  set('http', 'host', env.HOST);
  set('http', 'port', env.PORT === undefined ? undefined : Number(env.PORT));
  const targets = config.targets as Record<string, Record<string, unknown> | undefined> | undefined;
  if (env.REDIS_URL && targets?.redis) targets.redis = { ...targets.redis, url: env.REDIS_URL };
  return config;
}

/** Names that point nowhere would only show up as a silent page at 3 a.m.; refuse them at start-up. */
function danglingReferences(config: Config): string[] {
  const problems: string[] = [];
  for (const severity of ['critical', 'high', 'medium', 'low'] as const) {
    const rule = config.escalation[severity];
    for (const [field, names] of [['escalateTo', rule.escalateTo], ['notify', rule.notify]] as const) {
      names.forEach((contact, i) => {
        if (!config.contacts[contact]) problems.push(`escalation.${severity}.${field}.${i}: no contact named "${contact}"`);
      });
    }
  }
  for (const [contactName, contact] of Object.entries(config.contacts)) {
    if ('channels' in contact) {
      contact.channels.forEach((channel, i) => {
        if (!config.channels[channel]) problems.push(`contacts.${contactName}.channels.${i}: no channel named "${channel}"`);
      });
      continue;
    }
    // A rotation pages its members on their channels: each must be a contact that has some.
    const { members, overrides } = contact.rotation;
    const people = [...members.map((m, i) => [`members.${i}`, m] as const), ...overrides.map((o, i) => [`overrides.${i}.contact`, o.contact] as const)];
    for (const [field, person] of people) {
      const target = config.contacts[person];
      if (!target) problems.push(`contacts.${contactName}.rotation.${field}: no contact named "${person}"`);
      else if (!('channels' in target)) problems.push(`contacts.${contactName}.rotation.${field}: "${person}" is a rotation, not a contact with channels`);
    }
  }
  config.security.contacts?.forEach((contact, i) => {
    if (!config.contacts[contact]) problems.push(`security.contacts.${i}: no contact named "${contact}"`);
  });
  for (const [kind, approval] of Object.entries(config.approvals)) {
    const approvers = config.approvers[kind as keyof Config['approvers']]?.length ?? 0;
    if (approval && approval.quorum > approvers) problems.push(`approvals.${kind}.quorum: ${approval.quorum} approvers needed, approvers.${kind} names ${approvers}`);
  }
  const tokenNames = config.tokens.map((t) => t.name);
  tokenNames.forEach((tokenName, i) => {
    if (tokenNames.indexOf(tokenName) !== i) problems.push(`tokens.${i}.name: "${tokenName}" is used twice`);
  });
  return problems;
}
