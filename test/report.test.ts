// The post-incident review (runbook "Post-Incident Review Template"): built from the audit trail of a real incident,
// printed by the CLI, served over HTTP, and rendered by a real headless Chromium.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { chromium, type Browser } from 'playwright-core';
import { buildHttpServer } from '../src/http/server';
import { actOnIncident } from '../src/incidents/operations';
import type { AuditedIncident } from '../src/reports/auditTrail';
import { buildReview, reviewHtml, reviewMarkdown } from '../src/reports/review';
import { dropAuditSchema, readAudit } from './support/audit';
import { findChromium } from './support/chromium';
import { cliWorkspace } from './support/cli';
import { testConfigInput } from './support/config';
import { alert, fire, outcomeOf, waitForStatus } from './support/incidents';
import { parseConfig } from '../src/config/load';
import { eventually } from './support/wait';
import { startWorker, type RunningWorker } from './support/worker';

const trail: AuditedIncident = {
  incident: {
    workflowId: 'APIDown-1',
    runId: 'r1',
    runbook: 'api-down',
    trigger: 'alert',
    triggeredBy: 'f1',
    alertname: 'APIDown',
    severity: 'critical',
    service: 'backend',
    phase: 'resolved',
    openedAt: '2026-11-27T10:00:00.000Z',
    closedAt: '2026-11-27T10:12:30.000Z',
  },
  events: [
    { seq: 1, at: '2026-11-27T10:00:00.000Z', kind: 'detected', actor: 'alertmanager', message: 'APIDown fired for backend (critical).' },
    { seq: 2, at: '2026-11-27T10:00:01.000Z', kind: 'notified', actor: 'runbooks', message: 'oncall is paged' },
    { seq: 3, at: '2026-11-27T10:00:02.000Z', kind: 'finding', actor: 'runbooks', message: 'backend exited with code 137 (OOM killed) <script>alert(1)</script>' },
    { seq: 4, at: '2026-11-27T10:01:00.000Z', kind: 'action', actor: 'runbooks', message: 'Restarted container backend.' },
    { seq: 5, at: '2026-11-27T10:02:00.000Z', kind: 'finding', actor: 'runbooks', message: '/health answers 200.' },
    { seq: 6, at: '2026-11-27T10:02:01.000Z', kind: 'follow-up', actor: 'runbooks', message: 'Raise the memory limit of backend.' },
    { seq: 7, at: '2026-11-27T10:12:30.000Z', kind: 'resolved', actor: 'runbooks', message: 'Remediated and verified healthy.' },
  ],
};

describe('the post-incident review, from the audit trail', () => {
  test("fills the runbook's template: duration, timeline in HH:MM, root cause from the findings before the first action, resolution, action items", () => {
    const review = buildReview(trail);
    assert.equal(review.durationMinutes, 13);
    assert.deepEqual(review.rootCause, ['backend exited with code 137 (OOM killed) <script>alert(1)</script>']);
    assert.deepEqual(review.resolution, ['Restarted container backend.', 'Remediated and verified healthy.']);
    assert.deepEqual(review.actionItems, ['Raise the memory limit of backend.']);
    const markdown = reviewMarkdown(review);
    assert.match(markdown, /^\*\*Duration:\*\* 13 minutes {2}$/m);
    assert.match(markdown, /^\*\*Severity:\*\* Critical$/m);
    assert.match(markdown, /^- 10:01 - action: Restarted container backend\. \(runbooks\)$/m);
    assert.match(markdown, /^1\. Raise the memory limit of backend\.$/m);
    const html = reviewHtml(review);
    assert.ok(!html.includes('<script>'), 'what the trail says is escaped, never markup');
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  });

  test('records the tasks for humans: each added, who completed it with their note, who closed one without completing it and why, and when one was late', () => {
    const security: AuditedIncident = {
      incident: { ...trail.incident, workflowId: 'BruteForceDetected-1', runbook: 'security-incident', alertname: 'BruteForceDetected', service: 'audit-app-backend' },
      events: [
        { seq: 0, at: '2026-11-27T10:00:00.000Z', kind: 'detected', actor: 'alertmanager', message: 'BruteForceDetected fired for audit-app-backend (critical).' },
        { seq: 1, at: '2026-11-27T10:00:01.000Z', kind: 'task-added', actor: 'runbooks', message: 'Task "rotate-credentials" for a human: Rotate exposed credentials, due 2026-11-27T14:00:01.000Z.', data: { task: 'rotate-credentials' } },
        { seq: 2, at: '2026-11-27T10:00:01.000Z', kind: 'task-added', actor: 'runbooks', message: 'Task "patch-vulnerabilities" for a human: Patch the vulnerabilities it used.', data: { task: 'patch-vulnerabilities' } },
        { seq: 3, at: '2026-11-27T10:00:02.000Z', kind: 'action', actor: 'runbooks', message: 'Blocked 203.0.113.66: added to Redis set blocklist:ips (1 entry); the backend answers it 403.' },
        { seq: 4, at: '2026-11-27T10:40:00.000Z', kind: 'task-done', actor: 'sam', message: 'sam completed task "rotate-credentials" (Rotate exposed credentials): rotated admin and root.', data: { task: 'rotate-credentials', note: 'rotated admin and root' } },
        { seq: 5, at: '2026-11-27T14:00:01.000Z', kind: 'task-overdue', actor: 'runbooks', message: 'Task "patch-vulnerabilities" (Patch the vulnerabilities it used) is not done by 2026-11-27T14:00:01.000Z.', data: { task: 'patch-vulnerabilities' } },
        { seq: 6, at: '2026-11-27T14:10:00.000Z', kind: 'task-done', actor: 'kim', message: 'kim closed task "patch-vulnerabilities" (Patch the vulnerabilities it used) without completing it: tracked in SEC-12.', data: { task: 'patch-vulnerabilities', reason: 'tracked in SEC-12' } },
        { seq: 7, at: '2026-11-27T14:10:01.000Z', kind: 'resolved', actor: 'kim', message: 'Resolved by kim.' },
      ],
    };
    const review = buildReview(security);
    assert.deepEqual(
      review.timeline.filter((e) => e.kind.startsWith('task-')).map((e) => [e.time, e.kind, e.actor]),
      [['10:00', 'task-added', 'runbooks'], ['10:00', 'task-added', 'runbooks'], ['10:40', 'task-done', 'sam'], ['14:00', 'task-overdue', 'runbooks'], ['14:10', 'task-done', 'kim']],
    );
    const markdown = reviewMarkdown(review);
    assert.match(markdown, /^- 10:00 - task-added: Task "rotate-credentials" for a human: Rotate exposed credentials, due 2026-11-27T14:00:01\.000Z\. \(runbooks\)$/m);
    assert.match(markdown, /^- 10:40 - task-done: sam completed task "rotate-credentials" \(Rotate exposed credentials\): rotated admin and root\. \(sam\)$/m);
    assert.match(markdown, /^- 14:00 - task-overdue: Task "patch-vulnerabilities" \(Patch the vulnerabilities it used\) is not done by \S+ \(runbooks\)$/m);
    assert.match(markdown, /^- 14:10 - task-done: kim closed task "patch-vulnerabilities" \(Patch the vulnerabilities it used\) without completing it: tracked in SEC-12\. \(kim\)$/m);
    const html = reviewHtml(review);
    assert.ok(html.includes('<text x="10" y="') && html.includes('>task done</text>') && html.includes('>task overdue</text>'), 'a lane of the picture each');
    assert.ok(html.includes('<td>task-done</td><td>sam</td><td>sam completed task &quot;rotate-credentials&quot;'));
  });

  describe('of a real incident', { timeout: 200_000 }, () => {
    const workspace = cliWorkspace('report-test');
    const input = testConfigInput();
    const config = parseConfig(input);
    let worker: RunningWorker;
    let app: FastifyInstance;
    let browser: Browser | undefined;
    let workflowId: string;

    before(async () => {
      worker = await startWorker(config);
      const intake = await fire(worker.client, config, alert('ReportTestAlert', { severity: 'high', service: 'report-test' }));
      workflowId = intake.workflowId;
      await waitForStatus(worker.client, workflowId, 'the generic runbook to hand over', (s) => s.phase === 'needs-human');
      await actOnIncident(worker.client, workflowId, { kind: 'acknowledge', by: 'erin', note: 'looking' });
      await actOnIncident(worker.client, workflowId, { kind: 'resolve', by: 'erin', note: 'restarted the thing by hand' });
      const outcome = await outcomeOf(worker.client, workflowId);
      await eventually('the audit trail to hold every event', async () => ((await readAudit(config, workflowId)).events.length === outcome.timeline.length ? true : undefined));
      app = await buildHttpServer({ config, client: worker.client, logger: pino({ level: 'silent' }) });
      await app.listen({ host: '127.0.0.1', port: 0 });
    });

    after(async () => {
      await browser?.close();
      await app?.close();
      await worker?.stop();
      await dropAuditSchema(config);
      workspace.remove();
    });

    test('runbooks report prints it as Markdown, and --format json as the same review', async () => {
      const configFile = workspace.writeConfig(input);
      const markdown = await workspace.run(['--config', configFile, 'report', workflowId]);
      assert.equal(markdown.code, 0, markdown.stderr);
      assert.match(markdown.stdout, /^# Post-Incident Review: ReportTestAlert on report-test$/m);
      assert.match(markdown.stdout, /^- \d\d:\d\d - detected: ReportTestAlert fired for report-test \(high\)\. \(alertmanager\)$/m);
      assert.match(markdown.stdout, /^- \d\d:\d\d - acknowledged: .*\(erin\)$/m);
      assert.match(markdown.stdout, /^- \d\d:\d\d - note: erin marked the incident resolved: restarted the thing by hand\. \(erin\)$/m);
      assert.match(markdown.stdout, /^- \d\d:\d\d - resolved: Resolved by erin\. \(erin\)$/m);
      const json = await workspace.run(['--config', configFile, 'report', workflowId, '--format', 'json']);
      assert.equal(JSON.parse(json.stdout).workflowId, workflowId);
      const unknown = await workspace.run(['--config', configFile, 'report', 'NoSuchIncident-0']);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /no incident NoSuchIncident-0 in the audit trail/);
    });

    test('GET /incidents/:id/report.html renders in headless Chromium with the timeline picture and table', async () => {
      const executablePath = findChromium();
      browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
      const page = await browser.newPage();
      const address = app.server.address() as { port: number };
      const response = await page.goto(`http://127.0.0.1:${address.port}/incidents/${encodeURIComponent(workflowId)}/report.html`);
      assert.equal(response?.status(), 200);
      assert.equal(await page.locator('h1').textContent(), 'Post-incident review: ReportTestAlert on report-test');
      const marks = await page.locator('svg.incident-timeline circle.event').count();
      const rows = await page.locator('table.timeline tr').count();
      assert.ok(marks >= 4, `timeline marks: ${marks}`);
      assert.equal(rows - 1, marks, 'one mark in the picture per row of the table');
      const box = await page.locator('svg.incident-timeline').boundingBox();
      assert.ok(box && box.width > 500 && box.height > 80, `the picture is laid out: ${JSON.stringify(box)}`);
      assert.equal((await fetch(`http://127.0.0.1:${address.port}/incidents/NoSuch-0/report.html`)).status, 404);
    });
  });
});
