// The monthly checklist on the time-skipping test server (its own server: time moves a week here, which the
// hand-over incidents of test/checklists-branches.test.ts must not see): the runbook's human items as tasks, signed
// off with the completeTask Update, escalated up the schedule's ladder when late, the report saying who signed off.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import type { ChecklistReport } from '../src/checklists/model';
import { parseConfig } from '../src/config/load';
import type { IncidentInput, IncidentOutcome } from '../src/incidents/model';
import { configuredSchedules } from '../src/intake/schedules';
import { completeTaskUpdate } from '../src/workflows/lifecycle/definitions';
import { timeSkippingIncidents } from './support/timeSkipping';

type Run = WorkflowHandle<(input: IncidentInput) => Promise<IncidentOutcome>>;

const monthlySuite = timeSkippingIncidents({ taskQueuePrefix: 'checklists-monthly', labels: { alertname: 'Unused' } });

describe('the monthly checklist, on the time-skipping test server', () => {
  before(() => monthlySuite.start());
  after(() => monthlySuite.stop());

  test('the monthly tasks wait for people: late ones escalate up the ladder, each is signed off with the completeTask Update, and the report says by whom', async () => {
    const reports: ChecklistReport[] = [];
    const config = parseConfig({
      escalation: { high: { responseTime: '30d', escalateTo: ['oncall', 'team-lead'] } },
      schedules: { monthly: { runbook: 'monthly-checklist', calendar: { dayOfMonth: 1, hour: 9 }, severity: 'high' } },
    });
    const input = configuredSchedules(config)[0]!.input;
    const run: Run = await monthlySuite.startWorkflow('monthlyChecklist', input, { recordChecklistReport: async (report) => void reports.push(report) });
    const open = await monthlySuite.observe(run);
    assert.deepEqual(open.tasks.map((t) => t.id), ['review-runbook', 'incident-drill', 'capacity-planning', 'update-documentation', 'rotate-credentials', 'review-access']);
    assert.equal(open.phase, 'investigating');

    await run.executeUpdate(completeTaskUpdate, { args: [{ task: 'review-runbook', by: 'alice', note: 'updated §4' }] });
    await monthlySuite.env.sleep('7d');
    await monthlySuite.env.sleep('1m');
    const late = await monthlySuite.observe(run);
    assert.deepEqual(late.tasks.filter((t) => t.overdue).map((t) => t.id), ['incident-drill', 'capacity-planning', 'update-documentation', 'rotate-credentials', 'review-access']);
    assert.equal(late.escalatedTo, 'team-lead');
    assert.ok(monthlySuite.pages.some((p) => p.workflowId === run.workflowId && p.contacts.includes('team-lead') && /5 task\(s\) overdue/.test(p.text)), JSON.stringify(monthlySuite.pages.filter((p) => p.workflowId === run.workflowId)));
    assert.equal(reports.length, 0, 'no report while tasks are open');

    for (const task of ['incident-drill', 'capacity-planning', 'update-documentation', 'rotate-credentials', 'review-access']) {
      await run.executeUpdate(completeTaskUpdate, { args: [{ task, by: 'bob' }] });
    }
    const outcome = await run.result();
    assert.equal(outcome.resolution, 'remediated');
    const report = reports[0]!;
    assert.ok(report.checks.every((c) => c.result === 'signed-off'), JSON.stringify(report.checks));
    assert.equal(report.checks[0]!.summary, 'Signed off by alice: updated §4.');
    assert.equal(report.checks[1]!.summary, 'Signed off by bob (late).');
    assert.equal(report.checks[1]!.evidence.by, 'bob');
  });
});
