/** `runbooks catalog`: the runbooks this build automates, from the catalog (src/runbooks/catalog.ts). */
import type { Command } from 'commander';
import { z } from 'zod';
import { catalog, FALLBACK_RUNBOOK, runbookNames } from '../../runbooks/catalog';
import { parseInput } from '../context';
import { table } from '../format';

const CatalogInputSchema = z.object({ json: z.boolean().default(false), markdown: z.boolean().default(false) });

export function registerCatalogCommand(program: Command): void {
  program
    .command('catalog')
    .description('list the runbooks: the alerts they answer, the approvals they may ask for, the targets they need, their policy')
    .option('--json', 'print the catalog as JSON')
    .option('--markdown', "print README's runbook table")
    .action((options: Record<string, unknown>) => {
      const input = parseInput(CatalogInputSchema, options);
      if (input.json) process.stdout.write(`${JSON.stringify(catalog, null, 2)}\n`);
      else if (input.markdown) process.stdout.write(`${catalogMarkdown()}\n`);
      else process.stdout.write(`${catalogTable()}\n`);
    });
}

function catalogTable(): string {
  return table(
    ['RUNBOOK', 'SECTION', 'ALERTS', 'APPROVALS', 'TARGETS', 'POLICY'],
    runbookNames.map((name) => {
      const entry = catalog[name];
      return [
        name,
        entry.section,
        Object.entries(entry.alerts).map(([alert, severity]) => `${alert} (${severity})`).join(', ') || '-',
        entry.approvalKinds.join(', ') || '-',
        entry.targets.join(', ') || '-',
        Object.entries(entry.policy).map(([key, value]) => `${key}=${value}`).join(', ') || '-',
      ];
    }),
  );
}

/** README's runbook table, generated: a test keeps README in step with the catalog. */
export function catalogMarkdown(): string {
  const rows = runbookNames.map((name) => {
    const entry = catalog[name];
    const alerts = Object.keys(entry.alerts).map((alert) => `\`${alert}\``).join(', ') || (name === FALLBACK_RUNBOOK ? 'anything unrouted' : '— (a schedule)');
    const approvals = entry.approvalKinds.map((kind) => `\`${kind}\``).join(', ') || '—';
    return `| ${alerts} | \`${name}\` (§${entry.section}) | ${approvals} | ${entry.summary} |`;
  });
  return ['| Alert (default route) | Runbook | Approvals | What it does |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
