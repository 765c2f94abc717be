/** `runbooks oncall [--at TIME]`: who each rotation has on call, as the escalation ladder would page them. */
import type { Command } from 'commander';
import { z } from 'zod';
import type { Config } from '../../config/schema';
import { onCallAt } from '../../workflows/lifecycle/rotation';
import { loadCliConfig, parseInput } from '../context';
import { table } from '../format';

const OnCallInputSchema = z.object({
  at: z.iso
    .datetime({ offset: true, message: 'an instant with its offset, e.g. 2026-12-24T18:00:00+01:00 or 2026-12-24T17:00:00Z' })
    .transform((text) => Date.parse(text))
    .optional(),
  json: z.boolean().default(false),
});

export function registerOnCallCommand(program: Command): void {
  program
    .command('oncall')
    .description('show who each rotation (a contact with `rotation`) has on call now, or at --at')
    .option('--at <time>', 'the instant to look at (ISO 8601 with offset); default: now')
    .option('--json', 'print JSON')
    .action((options: Record<string, unknown>, command: Command) => {
      const input = parseInput(OnCallInputSchema, options);
      const rows = onCallRows(loadCliConfig(command).config, input.at ?? Date.now());
      if (input.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      else if (rows.length === 0) process.stdout.write('no rotations are configured (a contact with `rotation:` is one)\n');
      else
        process.stdout.write(
          `${table(
            ['ROTATION', 'ON CALL', 'SINCE', 'UNTIL', 'WHY'],
            rows.map((r) => [r.rotation, r.contact, r.since, r.until, r.override ? 'override' : 'turn']),
          )}\n`,
        );
    });
}

function onCallRows(config: Config, at: number) {
  return Object.entries(config.contacts).flatMap(([name, contact]) => {
    if (!('rotation' in contact)) return [];
    const onCall = onCallAt(contact.rotation, at);
    return [{ rotation: name, contact: onCall.contact, since: new Date(onCall.since).toISOString(), until: new Date(onCall.until).toISOString(), override: onCall.override }];
  });
}
