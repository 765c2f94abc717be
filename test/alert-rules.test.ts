// The shipped alert rules (deploy/prometheus/rules.yml) against the catalog and promtool: one rule per alert the catalog
// routes, labelled as the label contract says, valid, and each covered by the promtool unit tests beside it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { catalog, runbookNames, type RunbookName } from '../src/runbooks/catalog';
import { amtool, SHIPPED_ALERTMANAGER_CONFIG } from './support/alertmanager';
import { promtool, SHIPPED_PROMETHEUS_DIR } from './support/prometheus';

const RULES_FILE = path.join(SHIPPED_PROMETHEUS_DIR, 'rules.yml');
const RULES_TEST_FILE = path.join(SHIPPED_PROMETHEUS_DIR, 'rules.test.yml');

interface Rule {
  alert: string;
  labels: Record<string, string>;
}

function shippedRules(): Rule[] {
  const file = parse(readFileSync(RULES_FILE, 'utf8')) as { groups: { rules: Rule[] }[] };
  return file.groups.flatMap((group) => group.rules);
}

/** Every alert the catalog routes, with its severity and the runbook it routes to. */
function routedAlerts(): { alertname: string; severity: string; runbook: RunbookName }[] {
  return runbookNames.flatMap((runbook) => Object.entries(catalog[runbook].alerts).map(([alertname, severity]) => ({ alertname, severity, runbook })));
}

/** Per alert, whether the unit tests expect it to fire somewhere and to stay quiet somewhere. */
function unitTestCoverage(): Map<string, { fires: boolean; quiet: boolean }> {
  const file = parse(readFileSync(RULES_TEST_FILE, 'utf8')) as { tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[] };
  const coverage = new Map<string, { fires: boolean; quiet: boolean }>();
  for (const check of file.tests.flatMap((t) => t.alert_rule_test ?? [])) {
    const seen = coverage.get(check.alertname) ?? { fires: false, quiet: false };
    if ((check.exp_alerts ?? []).length > 0) seen.fires = true;
    else seen.quiet = true;
    coverage.set(check.alertname, seen);
  }
  return coverage;
}

describe('the shipped alert rules', () => {
  test('promtool finds the rules and the Prometheus config that loads them valid', async () => {
    const rules = await promtool(['check', 'rules', RULES_FILE]);
    assert.equal(rules.exitCode, 0, rules.problems.join('\n'));
    const config = await promtool(['check', 'config', path.join(SHIPPED_PROMETHEUS_DIR, 'prometheus.yml')]);
    assert.equal(config.exitCode, 0, config.problems.join('\n'));
  });

  test("promtool's unit tests of the rules pass", async () => {
    const verdict = await promtool(['test', 'rules', RULES_TEST_FILE]);
    assert.equal(verdict.exitCode, 0, verdict.problems.join('\n'));
  });

  test('every alert the catalog routes has one rule, and every rule is such an alert', () => {
    const ruleNames = shippedRules().map((rule) => rule.alert);
    assert.deepEqual([...ruleNames].sort(), routedAlerts().map((a) => a.alertname).sort());
  });

  test("each rule's severity is the catalog's for its alert, and its service one of its runbook's targets", () => {
    const rules = new Map(shippedRules().map((rule) => [rule.alert, rule]));
    for (const { alertname, severity, runbook } of routedAlerts()) {
      const labels = rules.get(alertname)?.labels ?? {};
      assert.equal(labels.severity, severity, `${alertname}: severity`);
      const services = catalog[runbook].targets.map((target) => `audit-app-${target}`);
      assert.ok(services.includes(labels.service ?? ''), `${alertname}: service "${labels.service}" is none of ${services.join(', ')} (runbook ${runbook})`);
    }
  });

  test('the unit tests show every rule firing and every rule quiet', () => {
    const coverage = unitTestCoverage();
    const uncovered = shippedRules()
      .map((rule) => ({ alert: rule.alert, ...(coverage.get(rule.alert) ?? { fires: false, quiet: false }) }))
      .filter((c) => !c.fires || !c.quiet)
      .map((c) => `${c.alert}${c.fires ? '' : ' (never fires)'}${c.quiet ? '' : ' (never quiet)'}`);
    assert.deepEqual(uncovered, []);
  });

  test('amtool finds the shipped Alertmanager config valid, and its inhibit rules name shipped alerts', async () => {
    await amtool(['check-config', SHIPPED_ALERTMANAGER_CONFIG]);
    const config = parse(readFileSync(SHIPPED_ALERTMANAGER_CONFIG, 'utf8')) as { inhibit_rules: { source_matchers: string[]; target_matchers: string[] }[] };
    const ruleNames = new Set(shippedRules().map((rule) => rule.alert));
    for (const matcher of config.inhibit_rules.flatMap((r) => [...r.source_matchers, ...r.target_matchers])) {
      const alertname = /^alertname\s*=\s*(\w+)$/.exec(matcher)?.[1];
      assert.ok(alertname && ruleNames.has(alertname), `inhibit matcher "${matcher}" names no shipped alert`);
    }
  });
});
