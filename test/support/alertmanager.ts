/** A real Prometheus Alertmanager 0.25 running the shipped config (deploy/alertmanager/alertmanager.yml), its receiver our webhook. */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { startDaemon, type RunningDaemon } from './daemon';
import { requireEnv } from './env';

export const SHIPPED_ALERTMANAGER_CONFIG = path.resolve(__dirname, '../../deploy/alertmanager/alertmanager.yml');

interface AlertmanagerConfig {
  route: { receiver: string; group_wait?: string; group_interval?: string };
  receivers: { name: string; webhook_configs?: { url: string; http_config?: { authorization?: { credentials_file?: string } } }[] }[];
}

/**
 * The shipped config with only the test's addresses and intervals: the receiver's URL, its token file, and groups sent
 * after 1 s (changes every 2 s) instead of 30 s (5 min).
 */
function testAlertmanagerConfig(webhookUrl: string, tokenFile: string): AlertmanagerConfig {
  const config = parse(readFileSync(SHIPPED_ALERTMANAGER_CONFIG, 'utf8')) as AlertmanagerConfig;
  const webhook = config.receivers.find((r) => r.name === config.route.receiver)?.webhook_configs?.[0];
  const authorization = webhook?.http_config?.authorization;
  if (!webhook || authorization?.credentials_file === undefined) {
    throw new Error(`${SHIPPED_ALERTMANAGER_CONFIG}: the route's receiver has no webhook with http_config.authorization.credentials_file`);
  }
  webhook.url = webhookUrl;
  authorization.credentials_file = tokenFile;
  config.route.group_wait = '1s';
  config.route.group_interval = '2s';
  return config;
}

export function startAlertmanager({ webhookUrl, token }: { webhookUrl: string; token: string }): Promise<RunningDaemon> {
  return startDaemon({
    name: 'Alertmanager',
    bin: requireEnv('ALERTMANAGER_BIN'),
    prepare(dir) {
      const tokenFile = path.join(dir, 'runbooks-token');
      writeFileSync(tokenFile, token, { mode: 0o600 });
      writeFileSync(path.join(dir, 'alertmanager.yml'), stringify(testAlertmanagerConfig(webhookUrl, tokenFile)));
    },
    // An empty cluster address: no gossip to settle before the first notification.
    args: (dir, listen) => [`--config.file=${path.join(dir, 'alertmanager.yml')}`, `--storage.path=${dir}`, `--web.listen-address=${listen}`, '--cluster.listen-address=', '--log.level=warn'],
    readyPath: '/-/ready',
  });
}

/** amtool (Debian `prometheus-alertmanager`) with `args`: its stdout; a non-zero exit rejects, with what it said. */
export async function amtool(args: string[]): Promise<string> {
  return (await promisify(execFile)(requireEnv('AMTOOL_BIN'), args)).stdout;
}
