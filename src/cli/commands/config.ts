/** `runbooks config check [FILE]`: validate a configuration and summarise it. */
import type { Command } from 'commander';
import { configFilePath, loadConfig } from '../../config/load';
import type { Config } from '../../config/schema';
import { redactUrl } from '../../logging/redact';
import type { GlobalOptions } from '../context';

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('work with the configuration file');
  config
    .command('check')
    .description('validate a configuration file (env overrides applied) and print a summary, or every problem (exit 2)')
    .argument('[file]', 'the file to check (default: --config, RUNBOOKS_CONFIG, ./runbooks.yaml, else the embedded defaults)')
    .action((file: string | undefined, _options: unknown, command: Command) => {
      const chosen = file ?? command.optsWithGlobals<GlobalOptions>().config;
      const loaded = loadConfig({ file: chosen });
      const source = configFilePath({ file: chosen }) ?? 'embedded defaults';
      process.stdout.write(`ok: ${source}\n${summarize(loaded)}\n`);
    });
}

export function summarize(config: Config): string {
  const routes = Object.entries(config.routing.alerts).map(([alert, route]) => `${alert} → ${route.runbook}`);
  const targets = Object.entries(config.targets)
    .filter(([, target]) => target !== undefined)
    .map(([name, target]) => `${name} (${(target as { container?: string }).container ?? '-'})`);
  const rotations = Object.entries(config.contacts).flatMap(([name, contact]) => ('rotation' in contact ? [name] : []));
  const approvers = Object.entries(config.approvers).map(([kind, names]) => `${kind}: ${names?.join(', ')}`);
  const rows: Array<[string, string]> = [
    ['temporal', `${config.temporal.address}, namespace ${config.temporal.namespace}, task queue ${config.temporal.taskQueue}`],
    ['http', `${config.http.host}:${config.http.port}`],
    ['audit', `${redactUrl(config.audit.databaseUrl)} (schema ${config.audit.schema})`],
    ['docker', config.docker.host ?? 'default socket'],
    ['routes', `${routes.length}${routes.length ? ` (${routes.join(', ')})` : ''}; fallback ${config.routing.fallback.runbook}`],
    ['targets', `${targets.length}${targets.length ? ` (${targets.join(', ')})` : ''}`],
    ['contacts', `${Object.keys(config.contacts).length}${rotations.length ? ` (rotations: ${rotations.join(', ')})` : ''}, channels ${Object.keys(config.channels).length}`],
    ['approvers', approvers.length ? approvers.join('; ') : 'none (no dangerous step can be approved)'],
    ['schedules', `${Object.keys(config.schedules).length}${Object.keys(config.schedules).length ? ` (${Object.entries(config.schedules).map(([name, s]) => `${name} → ${s.runbook}`).join(', ')})` : ''}`],
    ['tokens', `${config.tokens.length}${config.tokens.length ? ` (${config.tokens.map((t) => `${t.name}: ${t.scopes.join('+')}`).join(', ')})` : ''}`],
  ];
  return rows.map(([key, value]) => `  ${key.padEnd(10)} ${value}`).join('\n');
}
