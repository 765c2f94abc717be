// The monitoring checklists' Temporal Schedules on the real dev server (the time-skipping test server has no
// Schedules), applied and listed by the CLI as an operator runs it, fired for real, with a real worker and the real
// report store: created twice it exists once; its next runs follow the cron in its time zone; a change updates it, a
// removal deletes it; one set a few seconds ahead fires at its time and its report shows in `runbooks checklists`;
// the monthly one is signed off task by task (Update and CLI).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { parseConfig } from '../src/config/load';
import { buildHttpServer } from '../src/http/server';
import type { ConfigInput } from '../src/config/schema';
import type { ChecklistReport } from '../src/checklists/model';
import { configuredSchedules } from '../src/intake/schedules';
import { ensureSchedules, type ScheduleView } from '../src/temporal/schedules';
import { completeTaskUpdate } from '../src/workflows/lifecycle/definitions';
import { dropAuditSchema } from './support/audit';
import { cliWorkspace } from './support/cli';
import { testConfigInput } from './support/config';
import { recordHistoryIfAsked } from './support/histories';
import { outcomeOf, waitForStatus } from './support/incidents';
import { waitFor } from './support/wait';
import { startWorker, type RunningWorker } from './support/worker';

describe('checklist schedules on the real dev server, through the CLI', { timeout: 280_000 }, () => {
  const cli = cliWorkspace('schedules');
  const base = testConfigInput();
  const config = parseConfig(base);
  const taskQueue = config.temporal.taskQueue;
  let worker: RunningWorker;

  const withSchedules = (schedules: ConfigInput['schedules']) => cli.writeConfig({ ...base, schedules });
  async function runCli(args: string[]): Promise<string> {
    const result = await cli.run(args);
    assert.equal(result.code, 0, `runbooks ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  }
  const apply = async (file: string) => JSON.parse(await runCli(['--config', file, 'schedules', 'apply', '--json'])) as Record<string, string[]>;
  const list = async (file: string) => JSON.parse(await runCli(['--config', file, 'schedules', 'list', '--json'])) as ScheduleView[];
  const inBerlin = (iso: string) =>
    new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso));

  before(async () => {
    worker = await startWorker(config);
  });
  after(async () => {
    await ensureSchedules(worker.client, taskQueue, []).catch(() => undefined);
    await worker?.stop();
    await dropAuditSchema(config);
    cli.remove();
  });

  test('applied twice, a schedule exists once; its next runs follow its cron in its time zone; a change updates it and a removal deletes it', async () => {
    const id = `${taskQueue}-daily`;
    const daily = withSchedules({ daily: { runbook: 'daily-checklist', cron: '30 7 * * *', timeZone: 'Europe/Berlin' } });
    assert.deepEqual(await apply(daily), { created: [id], updated: [], deleted: [], unchanged: [] });
    assert.deepEqual(await apply(daily), { created: [], updated: [], deleted: [], unchanged: [id] });
    const listed = async () => {
      const ids: string[] = [];
      for await (const s of worker.client.schedule.list()) if (s.scheduleId === id) ids.push(s.scheduleId);
      return ids;
    };
    // The list goes through visibility, which lags a little behind.
    assert.deepEqual(await waitFor('the schedule in the list', async () => ((await listed()).length > 0 ? listed() : undefined)), [id]);

    const [view] = await list(daily);
    assert.equal(view!.state, 'applied');
    assert.equal(view!.workflowType, 'dailyChecklist');
    assert.equal(view!.spec?.timeZone, 'Europe/Berlin');
    assert.ok(view!.nextRuns.length > 0);
    for (const next of view!.nextRuns) assert.match(inBerlin(next), /^\w{3} 07:30$/, next);

    const weekly = withSchedules({ daily: { runbook: 'daily-checklist', cron: '0 6 * * 1', timeZone: 'Europe/Berlin' } });
    assert.equal((await list(weekly))[0]!.state, 'differs', 'the config changed, the schedule not yet');
    assert.deepEqual(await apply(weekly), { created: [], updated: [id], deleted: [], unchanged: [] });
    const [changed] = await list(weekly);
    assert.equal(changed!.state, 'applied');
    for (const next of changed!.nextRuns) assert.equal(inBerlin(next), 'Mon 06:00', next);

    const none = withSchedules({});
    await waitFor('the schedule in the list', async () => ((await listed()).length > 0 ? true : undefined));
    assert.equal((await list(none))[0]?.state, 'not-configured');
    assert.deepEqual(await apply(none), { created: [], updated: [], deleted: [id], unchanged: [] });
    await assert.rejects(worker.client.schedule.getHandle(id).describe(), /not found/i);
  });

  test('two applies at once create a schedule once: the one that loses the race finds it made, and neither fails', async () => {
    const racing = parseConfig({ ...base, schedules: { racing: { runbook: 'weekly-checklist', cron: '0 6 * * 1' } } });
    const desired = configuredSchedules(racing);
    const [one, other] = await Promise.all([ensureSchedules(worker.client, taskQueue, desired), ensureSchedules(worker.client, taskQueue, desired)]);
    assert.deepEqual([...one!.created, ...other!.created], [`${taskQueue}-racing`]);
    assert.deepEqual([...one!.unchanged, ...other!.unchanged], [`${taskQueue}-racing`]);
    assert.deepEqual(await apply(withSchedules({})), { created: [], updated: [], deleted: [`${taskQueue}-racing`], unchanged: [] });
  });

  test('a schedule fires at its time: the daily checklist runs, stores its report, and runbooks checklists and GET /checklists show it', async () => {
    const at = new Date(Math.ceil((Date.now() + 20_000) / 1000) * 1000);
    const calendar = { second: at.getUTCSeconds(), minute: at.getUTCMinutes(), hour: at.getUTCHours() };
    const file = withSchedules({ soon: { runbook: 'daily-checklist', calendar, timeZone: 'UTC' } });
    assert.deepEqual((await apply(file)).created, [`${taskQueue}-soon`]);
    const handle = worker.client.schedule.getHandle(`${taskQueue}-soon`);
    assert.equal((await handle.describe()).info.nextActionTimes[0]?.toISOString(), at.toISOString());

    const action = await waitFor('the schedule to fire', async () => (await handle.describe()).info.recentActions[0], 60_000);
    assert.equal(action.scheduledAt.toISOString(), at.toISOString());
    const workflowId = action.action.workflow.workflowId;
    assert.ok(workflowId.startsWith(`${taskQueue}-soon-`), workflowId);
    const outcome = await outcomeOf(worker.client, workflowId);
    assert.equal(outcome.resolution, 'remediated');
    assert.equal(outcome.timeline[0]!.message, `daily-checklist for audit-app, schedule ${taskQueue}-soon.`);

    const [report] = JSON.parse(await runCli(['--config', file, 'checklists', '--last', '1', '--json'])) as ChecklistReport[];
    assert.equal(report!.workflowId, workflowId);
    assert.equal(report!.checklist, 'daily-checklist');
    // No targets in this config: each check says it was not checked, and why.
    assert.deepEqual(report!.checks.map((c) => [c.name, c.result]), [
      ['Check for new errors', 'skipped'],
      ['Review response times', 'skipped'],
      ['Verify ETL jobs succeeded', 'skipped'],
      ['Check disk space usage', 'skipped'],
    ]);
    const text = await runCli(['--config', file, 'checklists']);
    assert.match(text, new RegExp(`^daily-checklist  ${workflowId}  started \\S+, finished \\S+\\n  skipped    Check for new errors: No backend is configured \\(targets\\.backend\\)\\.\\n`));
    const http = await buildHttpServer({ config, client: worker.client, logger: pino({ level: 'silent' }) });
    try {
      const answer = await http.inject({ method: 'GET', url: '/checklists?last=1' });
      assert.equal(answer.statusCode, 200, answer.body);
      assert.deepEqual(answer.json(), [report]);
      assert.equal((await http.inject({ method: 'GET', url: '/checklists?last=0' })).statusCode, 400);
    } finally {
      await http.close();
    }
    await recordHistoryIfAsked(workflowId, 'daily-checklist-scheduled');
    await apply(withSchedules({}));
  });

  test('the monthly checklist, triggered now, waits for each task to be signed off (Update and runbooks complete-task) and reports who did', async () => {
    const file = withSchedules({ monthly: { runbook: 'monthly-checklist', calendar: { dayOfMonth: 1, hour: 9 }, timeZone: 'Europe/Berlin' } });
    await apply(file);
    const handle = worker.client.schedule.getHandle(`${taskQueue}-monthly`);
    await handle.trigger();
    const action = await waitFor('the triggered run', async () => (await handle.describe()).info.recentActions[0], 30_000);
    const workflowId = action.action.workflow.workflowId;
    const open = await waitForStatus(worker.client, workflowId, 'the monthly tasks', (s) => s.tasks.length === 6);
    assert.equal(open.phase, 'investigating');
    const run = worker.client.workflow.getHandle(workflowId);
    for (const task of open.tasks.slice(1)) await run.executeUpdate(completeTaskUpdate, { args: [{ task: task.id, by: 'alice' }] });
    await runCli(['--config', file, 'complete-task', workflowId, '--task', 'review-runbook', '--by', 'bob', '--note', 'runbook §4 updated']);
    assert.equal((await outcomeOf(worker.client, workflowId)).resolution, 'remediated');

    const [report] = JSON.parse(await runCli(['--config', file, 'checklists', '--last', '1', '--json'])) as ChecklistReport[];
    assert.equal(report!.workflowId, workflowId);
    assert.deepEqual(report!.checks.map((c) => [c.name, c.result, c.evidence.by]), [
      ['Review and update the runbook', 'signed-off', 'bob'],
      ['Conduct an incident response drill', 'signed-off', 'alice'],
      ['Review capacity planning', 'signed-off', 'alice'],
      ['Update documentation', 'signed-off', 'alice'],
      ['Rotate credentials', 'signed-off', 'alice'],
      ['Review access', 'signed-off', 'alice'],
    ]);
    assert.equal(report!.checks[0]!.summary, 'Signed off by bob: runbook §4 updated.');
    await recordHistoryIfAsked(workflowId, 'monthly-checklist-signed-off');
  });
});
