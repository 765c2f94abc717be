/**
 * `runbooks unblock <ip>` and `runbooks blocks`: an operator lifts a block the security runbook set (§7 "Isolate"),
 * or lists the deny-list. They act on the configured deny-list (`security.denyList` of `targets.redis`) directly,
 * as `runbooks diag` acts on its targets: one SREM, idempotent (a source that is not blocked is said so, exit 0).
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { BlockRefusedError, checkedUnblockTarget, denyListOf } from '../../security/denyList';
import { actorOrDefault, ActorNameSchema, loadCliConfig, parseInput } from '../context';
import { CliError, firstLine } from '../errors';

const UnblockInputSchema = z.object({ source: z.string().max(100, 'at most 100 characters'), by: ActorNameSchema, json: z.boolean().default(false) });

export function registerBlockCommands(program: Command): void {
  program
    .command('unblock')
    .description('lift a block of the security runbook: remove an IP address or CIDR network from the deny-list (security.denyList)')
    .argument('<ip>', 'the address or network, as the incident names it')
    .option('--by <who>', 'who lifts it (default: your OS user name), for the log line')
    .option('--json', 'print the result as JSON')
    .action(async (source: string, options: Record<string, unknown>, command: Command) => {
      const input = parseInput(UnblockInputSchema, { ...options, by: actorOrDefault(options.by), source }, ['source']);
      const { config } = loadCliConfig(command);
      let entry: string;
      try {
        entry = checkedUnblockTarget(input.source).text;
      } catch (err) {
        if (err instanceof BlockRefusedError) throw new CliError(err.message);
        throw err;
      }
      const list = denyListOf(config);
      const { removed, size } = await list.remove(entry).catch((err: unknown) => {
        throw new CliError(`cannot reach ${list.name}: ${firstLine(err)}`);
      });
      if (input.json) process.stdout.write(`${JSON.stringify({ source: entry, denyList: list.name, removed, size, by: input.by })}\n`);
      else process.stdout.write(removed ? `unblocked ${entry} (removed from ${list.name} by ${input.by}; ${size} left)\n` : `${entry} was not blocked (${list.name}; ${size} entries)\n`);
    });

  program
    .command('blocks')
    .description('list the deny-list (security.denyList)')
    .option('--json', 'print it as JSON')
    .action(async (options: Record<string, unknown>, command: Command) => {
      const { json } = parseInput(z.object({ json: z.boolean().default(false) }), options);
      const { config } = loadCliConfig(command);
      const list = denyListOf(config);
      const members = (await list.members().catch((err: unknown) => {
        throw new CliError(`cannot reach ${list.name}: ${firstLine(err)}`);
      })).sort();
      process.stdout.write(json ? `${JSON.stringify({ denyList: list.name, members })}\n` : `${list.name}: ${members.length} entr${members.length === 1 ? 'y' : 'ies'}\n${members.map((m) => `  ${m}\n`).join('')}`);
    });
}
