/** `runbooks checklists [--last N]`: the monitoring checklists' reports (check, result, evidence) from Postgres, latest first. */
import type { Command } from 'commander';
import { z } from 'zod';
import type { ChecklistReport } from '../../checklists/model';
import { redactUrl } from '../../logging/redact';
import { loadCliConfig, parseInput } from '../context';
import { CliError, firstLine } from '../errors';
import { loadChecklistReports } from '../lazy';

const ChecklistsInputSchema = z.object({
  last: z.coerce.number().int('a whole number').min(1, 'at least 1').max(1000, 'at most 1000').default(10),
  json: z.boolean().default(false),
});

export function registerChecklistsCommand(program: Command): void {
  program
    .command('checklists')
    .description('the reports of the last monitoring checklist runs: each check, its result and evidence')
    .option('--last <n>', 'this many runs, latest first', '10')
    .option('--json', 'print them as JSON (with the evidence)')
    .action(async (options: Record<string, unknown>, command: Command) => {
      const input = parseInput(ChecklistsInputSchema, options);
      const { config } = loadCliConfig(command);
      const reports = await loadChecklistReports()
        .readChecklistReportsOnce(config.audit.databaseUrl, config.audit.schema, input.last)
        .catch((err: unknown) => {
          throw new CliError(`cannot read the checklist reports at ${redactUrl(config.audit.databaseUrl)} (schema ${config.audit.schema}): ${firstLine(err)}`);
        });
      if (input.json) process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
      else process.stdout.write(reports.length > 0 ? reports.map(reportText).join('\n') : 'no checklist runs recorded\n');
    });
}

function reportText(report: ChecklistReport): string {
  const header = `${report.checklist}  ${report.workflowId}  started ${report.startedAt}${report.finishedAt ? `, finished ${report.finishedAt}` : ''}\n`;
  const checks = report.checks.map((c) => `  ${c.result.padEnd(10)} ${c.name}: ${c.summary}${c.incident ? ` → incident ${c.incident}` : ''}\n`);
  return header + checks.join('');
}
