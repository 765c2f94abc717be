// Adding a runbook touches the catalog, one workflow file (and its export line) and its test — proven on a copy of
// src/ with a trivial runbook added: it type-checks, the config accepts its approval kind and routes its alert,
// and the workflow bundle runs it on the time-skipping server.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { incidentSearchAttributes } from '../src/workflows/searchAttributes';
import { requireEnv } from './support/env';

const ROOT = path.resolve(__dirname, '..');
// Inside the checkout, so the copy resolves node_modules like the original.
const COPY = path.join(ROOT, '.tools', `add-runbook-${randomBytes(4).toString('hex')}`);

const CATALOG_ENTRY = `  'disk-full': {
    workflowType: 'diskFull',
    section: 'Monitoring Checklist',
    summary: 'a trivial runbook added by a test.',
    alerts: { DiskFull: 'medium' },
    approvalKinds: ['clean-disk'],
    targets: [],
    policy: { threshold: 0.95 },
  },
`;

const WORKFLOW = `/** A trivial runbook: asks to clean the disk, then says it is done. */
import type { IncidentInput, IncidentOutcome } from '../incidents/model';
import { policyOf } from '../runbooks/catalog';
import { runIncident } from './lifecycle/runIncident';

export async function diskFull(input: IncidentInput): Promise<IncidentOutcome> {
  const { threshold } = policyOf('disk-full', input.policy);
  return runIncident(input, {
    prevention: ['Watch disk usage.'],
    verify: async () => true,
    respond: async (rb) => {
      rb.finding(\`Disk above \${threshold * 100}%.\`);
      return rb.approval('clean-disk', 'Clean the disk?');
    },
  });
}
`;

function changedFiles(dir: string, original: string, relative = ''): string[] {
  return readdirSync(path.join(dir, relative)).flatMap((entry) => {
    const rel = path.join(relative, entry);
    if (statSync(path.join(dir, rel)).isDirectory()) return changedFiles(dir, original, rel);
    const before = path.join(original, rel);
    return existsSync(before) && readFileSync(before, 'utf8') === readFileSync(path.join(dir, rel), 'utf8') ? [] : [rel];
  });
}

describe('adding a runbook', { timeout: 240_000 }, () => {
  before(() => {
    mkdirSync(COPY, { recursive: true });
    cpSync(path.join(ROOT, 'src'), path.join(COPY, 'src'), { recursive: true });
    cpSync(path.join(ROOT, 'package.json'), path.join(COPY, 'package.json'));
    const catalogFile = path.join(COPY, 'src/runbooks/catalog.ts');
    const catalog = readFileSync(catalogFile, 'utf8');
    assert.ok(catalog.includes('  generic: {'), 'the catalog lists generic last');
    writeFileSync(catalogFile, catalog.replace('  generic: {', `${CATALOG_ENTRY}  generic: {`));
    writeFileSync(path.join(COPY, 'src/workflows/diskFull.ts'), WORKFLOW);
    const index = path.join(COPY, 'src/workflows/index.ts');
    writeFileSync(index, `${readFileSync(index, 'utf8')}export { diskFull } from './diskFull';\n`);
  });
  after(() => rmSync(COPY, { recursive: true, force: true }));

  test('changes only the catalog, the workflow file and its export line', () => {
    assert.deepEqual(changedFiles(path.join(COPY, 'src'), path.join(ROOT, 'src')).sort(), [
      'runbooks/catalog.ts',
      'workflows/diskFull.ts',
      'workflows/index.ts',
    ]);
  });

  test('type-checks: its approval kind and policy flow from the catalog into the types', async () => {
    writeFileSync(
      path.join(COPY, 'tsconfig.json'),
      // What a runbook touches: the workflows and everything that reads the catalog (config, intake, HTTP, CLI).
      JSON.stringify({ extends: path.join(ROOT, 'tsconfig.json'), include: ['src/workflows', 'src/intake', 'src/config', 'src/http/server.ts', 'src/cli/program.ts'], compilerOptions: { noEmit: true, rootDir: '.' } }),
    );
    await promisify(execFile)(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', COPY], { cwd: COPY }).catch((err: { stdout?: string }) => {
      assert.fail(`tsc failed on the copy:\n${err.stdout ?? String(err)}`);
    });
  });

  test('the config accepts its approvers and routes its alert, and the bundle runs it to the end', async () => {
    /* eslint-disable @typescript-eslint/no-require-imports */
    const { parseConfig } = require(path.join(COPY, 'src/config/load')) as typeof import('../src/config/load');
    const { routeAlert } = require(path.join(COPY, 'src/intake/route')) as typeof import('../src/intake/route');
    const { approveUpdate } = require(path.join(COPY, 'src/workflows/lifecycle/definitions')) as typeof import('../src/workflows/lifecycle/definitions');
    /* eslint-enable @typescript-eslint/no-require-imports */
    const config = parseConfig({ approvers: { 'clean-disk': ['carol'] } } as never);
    const routed = routeAlert(
      { status: 'firing', labels: { alertname: 'DiskFull', service: 'db' }, annotations: {}, startsAt: new Date().toISOString(), generatorURL: '', fingerprint: 'd15cf011' },
      config,
    );
    assert.equal(routed.workflowType, 'diskFull');
    assert.equal(routed.input.escalation?.severity, 'medium');
    assert.deepEqual(routed.input.policy, { threshold: 0.95 });

    const env = await TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: { type: 'existing-path', path: requireEnv('TEMPORAL_TEST_SERVER_PATH') } },
    });
    try {
      await env.connection.operatorService.addSearchAttributes({
        namespace: env.namespace ?? 'default',
        searchAttributes: Object.fromEntries(incidentSearchAttributes.map((k) => [k.name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
      });
      const worker = await Worker.create({
        connection: env.nativeConnection,
        taskQueue: 'add-runbook',
        workflowsPath: path.join(COPY, 'src/workflows'),
        activities: { notify: async () => ({ delivered: [], unknownContacts: [] }), recordTimeline: async () => undefined },
      });
      await worker.runUntil(async () => {
        const handle = await env.client.workflow.start(routed.workflowType, { taskQueue: 'add-runbook', workflowId: routed.workflowId, args: [routed.input] });
        for (let i = 0; i < 100; i++) {
          const status = (await handle.query('status')) as { pendingApprovals: unknown[] };
          if (status.pendingApprovals.length > 0) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        await handle.executeUpdate(approveUpdate, { args: [{ step: 'clean-disk', by: 'carol' }] });
        const outcome = (await handle.result()) as { resolution: string; timeline: { message: string }[] };
        assert.equal(outcome.resolution, 'remediated');
        assert.ok(outcome.timeline.some((e) => e.message === 'Disk above 95%.'));
      });
    } finally {
      await env.teardown();
    }
  });
});
