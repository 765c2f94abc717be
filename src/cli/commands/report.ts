/**
 * `runbooks report <id> [--format markdown|json|svg|html] [--out FILE]`: the post-incident review of an incident,
 * from its audit trail in Postgres (so it works after Temporal has forgotten the workflow).
 */
import { writeFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { z } from 'zod';
import { redactUrl } from '../../logging/redact';
import { buildReview, reviewHtml, reviewMarkdown, timelineSvg } from '../../reports/review';
import { loadCliConfig, parseInput, WorkflowIdSchema } from '../context';
import { CliError, firstLine } from '../errors';
import { loadAuditTrail } from '../lazy';

const formats = ['markdown', 'json', 'svg', 'html'] as const;
const ReportInputSchema = z.object({ id: WorkflowIdSchema, format: z.enum(formats).default('markdown'), out: z.string().min(1).optional() });

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description("the post-incident review of an incident (the runbook's template), from its audit trail")
    .argument('<id>', 'workflow ID of the incident')
    .addOption(new Option('--format <format>', 'markdown, json, svg (the timeline picture) or html (a page with both)').choices(formats).default('markdown'))
    .option('--out <file>', 'write it to this file instead of stdout')
    .action(async (id: string, options: Record<string, unknown>, command: Command) => {
      const input = parseInput(ReportInputSchema, { ...options, id }, ['id']);
      const { config } = loadCliConfig(command);
      const audited = await loadAuditTrail()
        .readAuditedIncidentOnce(config.audit.databaseUrl, config.audit.schema, input.id)
        .catch((err: unknown) => {
          throw new CliError(`cannot read the audit trail at ${redactUrl(config.audit.databaseUrl)} (schema ${config.audit.schema}): ${firstLine(err)}`);
        });
      if (!audited) throw new CliError(`no incident ${input.id} in the audit trail (schema ${config.audit.schema})`);
      const review = buildReview(audited);
      const text = { markdown: () => reviewMarkdown(review), json: () => `${JSON.stringify(review, null, 2)}\n`, svg: () => `${timelineSvg(review)}\n`, html: () => reviewHtml(review) }[input.format]();
      if (input.out) writeFileSync(input.out, text);
      else process.stdout.write(text);
    });
}
