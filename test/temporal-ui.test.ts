// The Temporal Web UI of the dev server, driven by a real headless Chromium: what an operator sees of an incident and
// what they can do there. The links are the ones `runbooks dev` and `runbooks show` print (src/temporal/uiLinks.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { BACKEND_BROKEN_IMAGE, BACKEND_HEALTHY_IMAGE } from '../src/sandbox/images';
import { incidentListUiUrl, incidentUiUrl } from '../src/temporal/uiLinks';
import { dropAuditSchema, readAudit } from './support/audit';
import { findChromium } from './support/chromium';
import { suiteCleanups } from './support/cleanups';
import { testConfig } from './support/config';
import { requireEnv } from './support/env';
import { recordHistoryIfAsked } from './support/histories';
import { alert, fire, outcomeOf, terminateAll, waitForStatus } from './support/incidents';
import { startBackend, testDocker } from './support/sandbox';
import { startWorker } from './support/worker';

/** How long the UI may take to show something (it polls the server; a 2-core machine is slow to render). */
const UI_WAIT_MS = 30_000;

describe('the Temporal UI shows incidents and takes an approval', () => {
  const cleanups = suiteCleanups();
  let browser: Browser;
  let ui: string;

  before(async () => {
    ui = requireEnv('TEMPORAL_UI_URL');
    browser = await chromium.launch({ executablePath: findChromium(), headless: true, args: ['--no-sandbox'] });
  });
  after(() => browser?.close());

  async function visit(url: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.setDefaultTimeout(UI_WAIT_MS);
    await page.goto(url);
    return page;
  }

  test('lists incidents by IncidentStatus, shows the summary and current details, and an approval sent from the update form rolls the backend back', async () => {
    const docker = testDocker();
    const backend = await startBackend(docker, BACKEND_BROKEN_IMAGE, BACKEND_HEALTHY_IMAGE);
    cleanups.push(() => backend.remove());
    const config = testConfig({
      targets: { backend: { container: backend.name, healthUrl: `http://127.0.0.1:${backend.port}/health`, healthyWithin: '4s' } },
      approvers: { rollback: ['carol'] },
      http: { temporalUiUrl: ui },
    });
    const worker = await startWorker(config);
    cleanups.push(() => dropAuditSchema(config));
    cleanups.push(() => worker.stop());

    const apiDown = await fire(worker.client, config, alert('APIDown'));
    // An alert no runbook automates: the generic runbook hands it to a human at once (needs-human).
    const unrouted = await fire(worker.client, config, alert('UnroutedInATest', { severity: 'warning' }));
    cleanups.push(() => terminateAll(worker.client, [unrouted.workflowId]));
    await waitForStatus(worker.client, apiDown.workflowId, 'a rollback approval', (s) => s.pendingApprovals.length > 0);
    await waitForStatus(worker.client, unrouted.workflowId, 'the unrouted alert to need a human', (s) => s.phase === 'needs-human');

    const awaiting = await visit(incidentListUiUrl(ui, config, 'awaiting-approval'));
    await awaiting.getByRole('link', { name: apiDown.workflowId }).waitFor();
    assert.equal(await awaiting.getByRole('link', { name: unrouted.workflowId }).count(), 0, 'only incidents awaiting approval are listed');
    const needsHuman = await visit(incidentListUiUrl(ui, config, 'needs-human'));
    await needsHuman.getByRole('link', { name: unrouted.workflowId }).waitFor();
    assert.equal(await needsHuman.getByRole('link', { name: apiDown.workflowId }).count(), 0, 'only incidents that need a human are listed');

    const incident = await visit(incidentUiUrl(ui, config.temporal.namespace, apiDown.workflowId));
    // The timeline shows the runbook's steps by their summaries; the audit writes are local activities, no longer an
    // "Audit: N event(s)" activity between each step, and the UI's filter takes them off the timeline in one click.
    await incident.getByText(`docker restart ${backend.name}`).first().waitFor();
    await incident.getByText(`Wait for 200 from /health of ${backend.name}`).first().waitFor();
    await incident.getByText('recordTimeline').first().waitFor();
    assert.equal(await incident.getByText(/Audit: \d+ event/).count(), 0, 'no audit write is an activity');
    await incident.getByRole('button', { name: 'Filter' }).click();
    await incident.getByRole('checkbox', { name: 'Local Activity' }).click({ force: true });
    await incident.keyboard.press('Escape');
    await incident.getByText('recordTimeline').first().waitFor({ state: 'detached' });
    await incident.getByText(`docker restart ${backend.name}`).first().waitFor();
    await incident.getByRole('tab', { name: 'User Metadata' }).click();
    // The UI renders the summary and the current details (markdown) each in a frame of its own.
    const summary = incident.frameLocator('iframe#user-metadata-summary');
    await summary.getByText('APIDown on audit-app-backend (critical) — runbook api-down').waitFor();
    const details = incident.frameLocator('iframe#user-metadata-current-details');
    await details.getByText('awaiting-approval', { exact: true }).waitFor();
    await details.getByText(/Approve “rollback”: Restart did not help\. Roll .* back from .*broken to .*healthy\?/).waitFor();
    await details.getByText(/Waiting for approval:\s*rollback\s*\(carol\)/).waitFor();

    await incident.getByRole('button', { name: 'More Actions' }).click();
    await incident.getByRole('menuitem', { name: 'Send an Update' }).click();
    const form = incident.getByRole('dialog', { name: 'Send an Update' });
    await form.getByTestId('update-select-button').click();
    await form.getByRole('option', { name: /^approve/ }).click();
    // Laid out as the editor formats it when it loses focus, so the buttons stay where they are.
    await form.getByRole('textbox', { name: 'Data' }).fill(JSON.stringify({ step: 'rollback', by: 'carol', reason: 'from the UI' }, null, 2));
    await form.getByRole('button', { name: 'Submit' }).click();
    await form.waitFor({ state: 'hidden' });

    const outcome = await outcomeOf(worker.client, apiDown.workflowId);
    assert.equal(outcome.resolution, 'remediated');
    const approved = outcome.timeline.find((e) => e.kind === 'approved');
    assert.equal(approved?.message, 'carol approved "rollback": from the UI.');
    assert.ok(outcome.timeline.some((e) => e.kind === 'action' && e.message.startsWith(`Rolled ${backend.name} back`)));
    const after = outcome.timeline.slice(outcome.timeline.indexOf(approved!));
    assert.ok(after.some((e) => e.message.startsWith('/health answers 200 after the rollback')), 'the incident moved on from the approval');
    const audit = await readAudit(config, apiDown.workflowId);
    assert.deepEqual(audit.events.map((e) => [e.seq, e.kind]), outcome.timeline.map((e) => [e.seq, e.kind]), 'the audit trail has every event, once');

    await incident.reload();
    await incident.getByText('COMPLETED').first().waitFor();
    await recordHistoryIfAsked(apiDown.workflowId, 'api-down-approved-from-ui-audit-local');
  });
});
