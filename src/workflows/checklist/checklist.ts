/**
 * What the three monitoring checklists share (runbook "Monitoring Checklist"): each item is checked, recorded on the
 * run's timeline with its evidence, and a failed automated check hands over to the runbook its alert routes to (a
 * child incident, not waited for, labelled with the checklist and the check); at the end the report — every check's
 * result and evidence — is stored in Postgres (`runbooks checklists`).
 */
import { ActivityFailure, ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import type { CheckReport, CheckResult, ChecklistReport } from '../../checklists/model';
import type { IncidentInput, IncidentOutcome } from '../../incidents/model';
import { ActivityErrorType } from '../../runbooks/errorTypes';
import { recordChecklistReport } from '../activityProxies';
import type { RunbookContext } from '../lifecycle/runbookContext';
import { runIncident } from '../lifecycle/runIncident';
import { handOver } from '../steps/handOver';

/**
 * A checklist run on the shared lifecycle: `items` checks each item of the list, then the report is stored and the run
 * closes (a failed check's incident carries on by itself). Nothing to verify when an alert resolves: no alert started it.
 */
export function runChecklist(input: IncidentInput, items: (rb: RunbookContext, checklist: Checklist) => Promise<void>): Promise<IncidentOutcome> {
  return runIncident(input, {
    prevention: [],
    doneMessage: 'Checklist done; its report is stored (runbooks checklists).',
    verify: async () => true,
    respond: async (rb) => {
      const checklist = new Checklist(rb);
      await items(rb, checklist);
      await checklist.finish();
      return true;
    },
  });
}

/** What one check found. */
export interface Outcome {
  result: Exclude<CheckResult, 'signed-off'>;
  summary: string;
  evidence?: Record<string, unknown>;
}

export const pass = (summary: string, evidence: Record<string, unknown> = {}): Outcome => ({ result: 'pass', summary, evidence });
export const fail = (summary: string, evidence: Record<string, unknown> = {}): Outcome => ({ result: 'fail', summary, evidence });
export const skipped = (summary: string, evidence: Record<string, unknown> = {}): Outcome => ({ result: 'skipped', summary, evidence });

const MARK: Record<CheckResult, string> = { pass: 'Pass', fail: 'FAIL', skipped: 'Skipped', 'signed-off': 'Signed off' };

export class Checklist {
  private readonly checks: CheckReport[] = [];
  private readonly startedAt = new Date().toISOString();

  constructor(private readonly rb: RunbookContext) {}

  /**
   * Runs one item. A step that fails for good fails the check with the error as evidence (a target that is not
   * configured skips it instead); a failed check opens an incident by `alertname` when one is given.
   */
  async check(name: string, alertname: string | undefined, run: () => Promise<Outcome>): Promise<void> {
    const outcome = await run().catch((err: unknown) => {
      if (!(err instanceof ActivityFailure)) throw err;
      const cause = err.cause;
      const reason = cause?.message ?? err.message;
      if (cause instanceof ApplicationFailure && cause.type === ActivityErrorType.targetNotConfigured) return skipped(`Not checked: ${reason}.`);
      return fail(`Could not check: ${reason}.`, { error: reason, activity: err.activityType });
    });
    const check: CheckReport = { name, result: outcome.result, summary: outcome.summary, evidence: outcome.evidence ?? {} };
    this.rb.finding(`${MARK[check.result]}: ${name} — ${check.summary}`, { check: name, result: check.result, ...check.evidence });
    if (check.result === 'fail' && alertname) {
      const incident = await handOver(this.rb, this.rb.input, {
        alertname,
        labels: { checklist: this.rb.input.runbook, check: name },
        summary: `${name}: ${check.summary}`,
      });
      if (incident) check.incident = incident;
    }
    this.checks.push(check);
  }

  /** An item a person signed off (or that was closed without it), as the report keeps it. */
  recordSignOff(name: string, result: 'signed-off' | 'skipped', summary: string, evidence: Record<string, unknown>): void {
    this.checks.push({ name, result, summary, evidence });
  }

  /** Stores the report; true when no check failed. */
  async finish(): Promise<boolean> {
    const { workflowId, runId } = workflowInfo();
    const report: ChecklistReport = {
      workflowId,
      runId,
      checklist: this.rb.input.runbook,
      startedAt: this.startedAt,
      finishedAt: new Date().toISOString(),
      checks: this.checks,
    };
    const count = (result: CheckResult) => this.checks.filter((c) => c.result === result).length;
    const failed = count('fail');
    await this.rb.step(recordChecklistReport, report, {
      title: 'Report: store the checklist report',
      summary: `Store the report of ${this.checks.length} check(s)`,
      record: () => ({
        message: `Checklist report stored: ${count('pass')} passed, ${failed} failed, ${count('skipped')} skipped, ${count('signed-off')} signed off (runbooks checklists).`,
        data: { passed: count('pass'), failed, skipped: count('skipped'), signedOff: count('signed-off') },
      }),
    });
    return failed === 0;
  }
}
