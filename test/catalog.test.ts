// The catalog is the one place a runbook is declared: README's table, the workflow bundle and the config follow it,
// and the shared plumbing never names a runbook (so adding one touches the catalog, its workflow file and its tests).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { catalogMarkdown } from '../src/cli/commands/catalog';
import { loadConfig, parseConfig } from '../src/config/load';
import { approvalKinds, catalog, procedureNames, procedures, runbookNames, workflowTypes } from '../src/runbooks/catalog';
import * as workflows from '../src/workflows';

const ROOT = path.resolve(__dirname, '..');
const camelCase = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    return statSync(full).isDirectory() ? sourceFiles(full) : full.endsWith('.ts') ? [full] : [];
  });
}

describe('the runbook catalog', () => {
  test("README's runbook table is the catalog's (regenerate it with `runbooks catalog --markdown`)", () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    assert.ok(readme.includes(catalogMarkdown()), `README.md should contain:\n${catalogMarkdown()}`);
  });

  test('each runbook and procedure has one name: its workflow type is its camelCase name and the name of its file in src/workflows', () => {
    for (const name of [...runbookNames, ...procedureNames]) {
      const { workflowType } = name in catalog ? catalog[name as keyof typeof catalog] : procedures[name as keyof typeof procedures];
      assert.equal(workflowType, camelCase(name), name);
      assert.ok(existsSync(path.join(ROOT, 'src/workflows', `${workflowType}.ts`)), `src/workflows/${workflowType}.ts`);
    }
  });

  test('the workflow bundle exports every workflow type of the catalog (runbooks and procedures), and nothing else', () => {
    const exported = Object.entries(workflows).filter(([, value]) => typeof value === 'function').map(([key]) => key).sort();
    assert.deepEqual(exported, workflowTypes().sort());
  });

  test('the config takes its runbook names, approval kinds and default routes from the catalog', () => {
    const config = parseConfig({});
    for (const name of runbookNames) {
      for (const [alertname, severity] of Object.entries(catalog[name].alerts)) {
        assert.deepEqual(config.routing.alerts[alertname], { runbook: name, defaultSeverity: severity });
      }
    }
    const every = parseConfig({ approvers: Object.fromEntries(approvalKinds.map((kind) => [kind, ['x']])) });
    const kinds = new Set([...runbookNames.flatMap((name) => catalog[name].approvalKinds), ...procedureNames.flatMap((name) => procedures[name].approvalKinds)]);
    assert.deepEqual(Object.keys(every.approvers).sort(), [...kinds].sort());
    assert.throws(() => parseConfig({ approvers: { 'launch-missiles': ['x'] } }), /approvers.*launch-missiles/);
    assert.throws(() => parseConfig({ routing: { alerts: { X: { runbook: 'nope' } } } }), /routing\.alerts\.X\.runbook/);
    assert.throws(() => parseConfig({ policies: { 'redis-down': { memoryPresure: 0.5 } } }), /policies\.redis-down.*memoryPresure/);
  });

  test("runbooks.example.yaml routes every alert of the catalog to its runbook and names approvers for every approval kind", () => {
    const example = loadConfig({ file: path.join(ROOT, 'runbooks.example.yaml'), env: {} });
    for (const name of runbookNames) {
      for (const alertname of Object.keys(catalog[name].alerts)) assert.equal(example.routing.alerts[alertname]?.runbook, name, alertname);
    }
    for (const kind of approvalKinds) assert.ok(example.approvers[kind]?.length, `approvers.${kind}`);
  });

  test('the shared plumbing names no runbook: config, intake, HTTP, incidents, worker, Temporal, activities, lifecycle and steps', () => {
    const shared = ['config', 'intake', 'http', 'incidents', 'worker', 'temporal', 'activities', 'audit', 'workflows/lifecycle', 'workflows/steps'];
    const names = runbookNames.flatMap((name) => [`'${name}'`, `"${name}"`, catalog[name].workflowType]);
    for (const file of shared.flatMap((dir) => sourceFiles(path.join(ROOT, 'src', dir)))) {
      const text = readFileSync(file, 'utf8');
      for (const name of names) {
        assert.ok(!new RegExp(`\\b${name.replace(/[-']/g, (c) => (c === '-' ? '\\-' : c))}\\b`).test(text), `${path.relative(ROOT, file)} names ${name}`);
      }
    }
  });
});
