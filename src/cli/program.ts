/** The `runbooks` command line: one command group per file in ./commands. */
import { Command } from 'commander';
import { version } from '../../package.json';
import { registerActionCommands } from './commands/actions';
import { registerBundleCommand } from './commands/bundle';
import { registerBackfillCommands } from './commands/backfill';
import { registerDeployCommands } from './commands/deploy';
import { registerBlockCommands } from './commands/blocks';
import { registerCatalogCommand } from './commands/catalog';
import { registerChecklistsCommand } from './commands/checklists';
import { registerConfigCommands } from './commands/config';
import { registerControlCommands, registerDryRunCommand } from './commands/controls';
import { registerDemoCommand } from './commands/demo';
import { registerDiagCommands } from './commands/diag';
import { registerDevCommand } from './commands/dev';
import { registerIncidentCommands } from './commands/incidents';
import { registerOnCallCommand } from './commands/oncall';
import { registerReportCommand } from './commands/report';
import { registerSandboxCommands } from './commands/sandbox';
import { registerScheduleCommands } from './commands/schedules';
import { registerServerCommand } from './commands/server';
import { registerTokenCommands } from './commands/token';
import { registerWorkerCommand } from './commands/worker';
import { ExitCode, reportError } from './errors';

export function buildProgram(): Command {
  const program = new Command('runbooks')
    .description('Incident response runbooks as durable Temporal workflows')
    .option('--config <file>', 'configuration file (default: RUNBOOKS_CONFIG, else ./runbooks.yaml if present, else embedded defaults)')
    .version(version)
    .exitOverride()
    .showSuggestionAfterError()
    .addHelpText(
      'after',
      [
        '',
        'Exit codes: 0 done; 1 failed or refused (not found, closed, not an approver, no such step); 2 bad usage or configuration.',
        'Start locally with `npm start` (runbooks dev); try it with `npx runbooks demo` in a second terminal.',
      ].join('\n'),
    );
  registerConfigCommands(program);
  registerCatalogCommand(program);
  registerDevCommand(program);
  registerWorkerCommand(program);
  registerServerCommand(program);
  registerBundleCommand(program);
  registerDemoCommand(program);
  registerDiagCommands(program);
  registerSandboxCommands(program);
  registerIncidentCommands(program);
  registerOnCallCommand(program);
  registerActionCommands(program);
  registerControlCommands(program);
  registerDryRunCommand(program);
  registerBackfillCommands(program);
  registerDeployCommands(program);
  registerReportCommand(program);
  registerBlockCommands(program);
  registerTokenCommands(program);
  registerScheduleCommands(program);
  registerChecklistsCommand(program);
  // Subcommands inherit exitOverride only when added after it; make sure every level throws instead of exiting.
  const everyCommand = (command: Command): Command[] => [command, ...command.commands.flatMap(everyCommand)];
  for (const command of everyCommand(program)) command.exitOverride();
  return program;
}

/** Parses `argv`, runs the command, and returns the exit code; every failure is reported on stderr. */
export async function run(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return ExitCode.ok;
  } catch (err) {
    return reportError(err);
  }
}
