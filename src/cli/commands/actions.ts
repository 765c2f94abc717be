/**
 * `runbooks approve|reject|acknowledge|resolve|complete-task|pause|resume|abort <id>`: operator decisions, sent as Temporal Updates so the answer
 * (accepted, or refused and why) comes back at once. Whoever reaches Temporal is trusted as an operator,
 * as with `temporal workflow signal`; the workflow still checks approvers against its config. `--by` defaults to
 * the OS user name (os.userInfo(), else $USER).
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { actOnIncident, type IncidentAction } from '../../incidents/operations';
import type { IncidentStatusView } from '../../incidents/model';
import { actorOrDefault, ActorNameSchema, loadCliConfig, NoteSchema, osUserName, parseInput, withClient, WorkflowIdSchema } from '../context';

const StepSchema = z.string().trim().min(1, 'must not be empty').max(100, 'at most 100 characters');
const DecisionInputSchema = z.object({ id: WorkflowIdSchema, step: StepSchema, by: ActorNameSchema, reason: NoteSchema });
const ActorInputSchema = z.object({ id: WorkflowIdSchema, by: ActorNameSchema, note: NoteSchema, reason: NoteSchema });
const AbortInputSchema = z.object({ id: WorkflowIdSchema, by: ActorNameSchema, reason: z.string().trim().min(1, 'must not be empty').max(1000, 'at most 1000 characters') });
const TaskInputSchema = z.object({ id: WorkflowIdSchema, task: StepSchema, by: ActorNameSchema, note: NoteSchema });

export function registerActionCommands(program: Command): void {
  const me = osUserName();
  const byDefault = `default: your OS user name${me ? `, "${me}"` : ' (os.userInfo(), else $USER)'}`;
  for (const kind of ['approve', 'reject'] as const) {
    program
      .command(kind)
      .description(`${kind} a step that waits for approval (the workflow checks --by against the configured approvers)`)
      .argument('<id>', 'workflow ID of the incident')
      .requiredOption('--step <step>', 'the pending step, as `runbooks show` lists it')
      .option('--by <who>', `who decides, an approver name from the config (${byDefault})`)
      .option('--reason <text>', 'why, for the timeline and the audit trail')
      .action(async (id: string, options: Record<string, unknown>, command: Command) => {
        const input = parseInput(DecisionInputSchema, { ...options, by: actorOrDefault(options.by), id }, ['id']);
        const action: IncidentAction = { kind, step: input.step, by: input.by, ...(input.reason ? { reason: input.reason } : {}) };
        await act(command, input.id, action, `${kind === 'approve' ? 'approved' : 'rejected'} step ${input.step}`, kind === 'approve' ? ' (the runbook goes on)' : ' (the runbook skips it)');
      });
  }

  const actorCommands = [
    { kind: 'acknowledge', alias: 'ack', description: 'acknowledge an incident: the escalation ladder stops paging the next level', done: 'acknowledged', after: '' },
    { kind: 'resolve', alias: undefined, description: 'resolve an incident by hand: it winds down and closes', done: 'resolved', after: ' (it closes once its running steps finish)' },
  ] as const;
  for (const { kind, alias, description, done, after } of actorCommands) {
    const command = program.command(kind);
    if (alias) command.alias(alias);
    command
      .description(description)
      .argument('<id>', 'workflow ID of the incident')
      .option('--by <who>', `who acts (${byDefault})`)
      .option('--note <text>', 'a note for the timeline');
    if (kind === 'resolve') command.option('--reason <text>', 'why it may close with tasks still open (closes them; needed only then)');
    command.action(async (id: string, options: Record<string, unknown>, command: Command) => {
      const input = parseInput(ActorInputSchema, { ...options, by: actorOrDefault(options.by), id }, ['id']);
      const action: IncidentAction =
        kind === 'resolve'
          ? { kind, by: input.by, ...(input.note ? { note: input.note } : {}), ...(input.reason ? { reason: input.reason } : {}) }
          : { kind, by: input.by, ...(input.note ? { note: input.note } : {}) };
      await act(command, input.id, action, done, after);
    });
  }

  program
    .command('complete-task')
    .description('complete an open task of an incident (rotate credentials…): the incident resolves once none is open')
    .argument('<id>', 'workflow ID of the incident')
    .requiredOption('--task <task>', 'the task, as `runbooks show` lists it')
    .option('--by <who>', `who did it (${byDefault})`)
    .option('--note <text>', 'what was done, for the timeline and the incident report')
    .action(async (id: string, options: Record<string, unknown>, command: Command) => {
      const input = parseInput(TaskInputSchema, { ...options, by: actorOrDefault(options.by), id }, ['id']);
      await act(command, input.id, { kind: 'complete-task', task: input.task, by: input.by, ...(input.note ? { note: input.note } : {}) }, `completed task ${input.task}`);
    });

  for (const kind of ['pause', 'resume'] as const) {
    program
      .command(kind)
      .description(
        kind === 'pause'
          ? "pause an incident's remediation before its next step (diagnosis and the escalation ladder go on)"
          : "resume an incident's paused remediation",
      )
      .argument('<id>', 'workflow ID of the incident')
      .option('--by <who>', `who acts (${byDefault})`)
      .option('--note <text>', 'a note for the timeline')
      .action(async (id: string, options: Record<string, unknown>, command: Command) => {
        const input = parseInput(ActorInputSchema, { ...options, by: actorOrDefault(options.by), id }, ['id']);
        await act(command, input.id, { kind, by: input.by, ...(input.note ? { note: input.note } : {}) }, kind === 'pause' ? 'paused' : 'resumed');
      });
  }

  program
    .command('abort')
    .description("abort an incident's remediation: it stops before its next step, its undo steps run, and the next level is paged")
    .argument('<id>', 'workflow ID of the incident')
    .requiredOption('--reason <text>', 'why, for the timeline and the page')
    .option('--by <who>', `who acts (${byDefault})`)
    .action(async (id: string, options: Record<string, unknown>, command: Command) => {
      const input = parseInput(AbortInputSchema, { ...options, by: actorOrDefault(options.by), id }, ['id']);
      await act(command, input.id, { kind: 'abort', by: input.by, reason: input.reason }, 'aborted', ' (its undo steps run; it waits for a human)');
    });
}

async function act(command: Command, id: string, action: IncidentAction, done: string, after = ''): Promise<void> {
  const { config } = loadCliConfig(command);
  const view = await withClient(config, (client) => actOnIncident(client, id, action));
  process.stdout.write(`${id}: ${done} by ${action.by}${after}\n${outcome(view, action)}\n`);
}

function outcome(view: IncidentStatusView, action: IncidentAction): string {
  // The view is taken as the Update is accepted, before the runbook reacts: a decided step still shows as
  // pending and the phase is the one before the decision, so show neither for decisions and resolve.
  const decided = action.kind === 'approve' || action.kind === 'reject' ? action.step : undefined;
  const pending = view.pendingApprovals.map((p) => p.step).filter((step) => step !== decided);
  return [
    ...(action.kind === 'acknowledge' ? [`  phase ${view.phase}${view.phase === 'resolved' ? '' : ` — ${view.currentStep}`}`] : []),
    ...(view.tasks.some((t) => t.state === 'open') ? [`  open tasks: ${view.tasks.filter((t) => t.state === 'open').map((t) => t.id).join(', ')}`] : []),
    `  escalation ${view.escalatedTo ? `level ${view.escalationLevel} (${view.escalatedTo})` : 'none'}${view.acknowledgedBy ? `, acknowledged by ${view.acknowledgedBy}` : ''}`,
    ...(pending.length ? [`  still waiting for approval: ${pending.join(', ')}`] : []),
  ].join('\n');
}
