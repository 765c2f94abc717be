import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../src/config/load';
import type { ConfigInput } from '../src/config/schema';
import type { Alert } from '../src/intake/alertmanager';
import { incidentWorkflowId, routeAlert } from '../src/intake/route';

function alert(labels: Record<string, string>, overrides: Partial<Alert> = {}): Alert {
  return {
    status: 'firing',
    labels: { alertname: 'APIDown', ...labels },
    annotations: { summary: 'backend /health failing' },
    startsAt: '2026-11-27T13:00:00Z',
    generatorURL: 'http://prometheus:9090/graph?g0.expr=up%3D%3D0',
    fingerprint: 'a1ebaf6b84df2c5a',
    ...overrides,
  };
}

const defaults = parseConfig({});

describe('routeAlert', () => {
  describe('choosing the runbook', () => {
    test('APIDown goes to the api-down runbook, critical when the alert has no severity label', () => {
      const routed = routeAlert(alert({ alertname: 'APIDown' }), defaults);
      assert.equal(routed.input.runbook, 'api-down');
      assert.equal(routed.workflowType, 'apiDown');
      assert.equal(routed.input.escalation?.severity, 'critical');
    });

    test('RedisDown goes to the redis-down runbook, high by default', () => {
      const routed = routeAlert(alert({ alertname: 'RedisDown' }), defaults);
      assert.equal(routed.input.runbook, 'redis-down');
      assert.equal(routed.workflowType, 'redisDown');
      assert.equal(routed.input.escalation?.severity, 'high');
    });

    test('an alertname no route names goes to the generic runbook with the fallback severity (medium)', () => {
      const routed = routeAlert(alert({ alertname: 'DiskAlmostFull' }), defaults);
      assert.equal(routed.input.runbook, 'generic');
      assert.equal(routed.workflowType, 'generic');
      assert.equal(routed.input.escalation?.severity, 'medium');
    });

    test('alertnames are matched exactly: apidown is not APIDown', () => {
      assert.equal(routeAlert(alert({ alertname: 'apidown' }), defaults).input.runbook, 'generic');
    });

    test('configured routes and fallback replace the defaults', () => {
      const config = parseConfig({
        routing: {
          alerts: { BackendDown: { runbook: 'api-down', defaultSeverity: 'high' } },
          fallback: { runbook: 'generic', defaultSeverity: 'low' },
        },
      });
      assert.equal(routeAlert(alert({ alertname: 'BackendDown' }), config).input.runbook, 'api-down');
      assert.equal(routeAlert(alert({ alertname: 'BackendDown' }), config).input.escalation?.severity, 'high');
      const unrouted = routeAlert(alert({ alertname: 'APIDown' }), config);
      assert.equal(unrouted.input.runbook, 'generic', 'APIDown is not routed once routing.alerts is replaced');
      assert.equal(unrouted.input.escalation?.severity, 'low');
    });

    test(
      'alertnames that are Object.prototype member names (constructor, toString, __proto__) go to the fallback route',
      () => {
        for (const alertname of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
          const routed = routeAlert(alert({ alertname }), defaults);
          assert.equal(routed.input.runbook, 'generic', alertname);
          assert.equal(routed.input.escalation?.severity, 'medium', alertname);
        }
      },
    );
  });

  describe('mapping the severity label', () => {
    const cases: Array<[label: string, severity: string]> = [
      ['critical', 'critical'],
      ['high', 'high'],
      ['medium', 'medium'],
      ['low', 'low'],
      ['warning', 'medium'],
      ['info', 'low'],
      ['CRITICAL', 'critical'],
      ['Warning', 'medium'],
    ];
    for (const [label, severity] of cases) {
      test(`severity="${label}" becomes ${severity}, whatever the route's default`, () => {
        assert.equal(routeAlert(alert({ alertname: 'APIDown', severity: label }), defaults).input.escalation?.severity, severity);
        assert.equal(routeAlert(alert({ alertname: 'DiskAlmostFull', severity: label }), defaults).input.escalation?.severity, severity);
      });
    }

    test('an unknown or empty severity label falls back to the route default', () => {
      for (const label of ['page', 'sev1', 'p1', '', ' critical', 'toString', 'valueOf']) {
        assert.equal(routeAlert(alert({ alertname: 'APIDown', severity: label }), defaults).input.escalation?.severity, 'critical', `"${label}" on APIDown`);
        assert.equal(routeAlert(alert({ alertname: 'RedisDown', severity: label }), defaults).input.escalation?.severity, 'high', `"${label}" on RedisDown`);
        assert.equal(routeAlert(alert({ alertname: 'Other', severity: label }), defaults).input.escalation?.severity, 'medium', `"${label}" on Other`);
      }
    });

    test(
      'a severity label that is an Object.prototype member name (constructor, __proto__) falls back to the route default',
      () => {
        for (const label of ['constructor', '__proto__', 'hasOwnProperty']) {
          assert.equal(routeAlert(alert({ alertname: 'APIDown', severity: label }), defaults).input.escalation?.severity, 'critical', label);
        }
      },
    );

    test('the escalation policy copied into the input is the one for the mapped severity', () => {
      const critical = routeAlert(alert({ alertname: 'APIDown', severity: 'critical' }), defaults).input.escalation;
      assert.deepEqual(critical, { severity: 'critical', responseTimeMs: 15 * 60_000, escalateTo: ['oncall', 'devops-lead'], notify: ['management', 'status-page'] });
      const high = routeAlert(alert({ alertname: 'APIDown', severity: 'high' }), defaults).input.escalation;
      assert.deepEqual(high, { severity: 'high', responseTimeMs: 60 * 60_000, escalateTo: ['oncall'], notify: ['team-lead'] });
      const medium = routeAlert(alert({ alertname: 'APIDown', severity: 'warning' }), defaults).input.escalation;
      assert.deepEqual(medium, { severity: 'medium', responseTimeMs: 4 * 60 * 60_000, escalateTo: ['team-member'], notify: ['team'] });
    });

    test('low severity carries the business hours; the other severities do not', () => {
      const config = parseConfig({ escalation: { businessHours: { timeZone: 'Europe/Berlin', startHour: 8, days: [1, 2, 3, 4] } } });
      for (const label of ['low', 'info']) {
        const { escalation } = routeAlert(alert({ alertname: 'Other', severity: label }), config).input;
        assert.deepEqual(escalation?.businessHours, { timeZone: 'Europe/Berlin', startHour: 8, days: [1, 2, 3, 4] }, label);
      }
      for (const label of ['critical', 'high', 'medium', 'warning']) {
        const { escalation } = routeAlert(alert({ alertname: 'Other', severity: label }), config).input;
        assert.equal(escalation !== undefined && 'businessHours' in escalation, false, label);
      }
      // Without configured business hours, low still gets the defaults (UTC, 09:00, Monday to Friday).
      assert.deepEqual(routeAlert(alert({ alertname: 'Other', severity: 'low' }), defaults).input.escalation?.businessHours, {
        timeZone: 'UTC',
        startHour: 9,
        days: [1, 2, 3, 4, 5],
      });
    });
  });

  describe('the incident input', () => {
    test('carries the alert facts as its trigger, the service and a one-line summary', () => {
      const routed = routeAlert(alert({ alertname: 'APIDown', service: 'backend', instance: 'backend:8080' }), defaults);
      assert.equal(routed.input.trigger.kind, 'alert');
      assert.deepEqual(routed.input.trigger.kind === 'alert' && routed.input.trigger.alert, {
        alertname: 'APIDown',
        fingerprint: 'a1ebaf6b84df2c5a',
        labels: { alertname: 'APIDown', service: 'backend', instance: 'backend:8080' },
        annotations: { summary: 'backend /health failing' },
        startsAt: '2026-11-27T13:00:00Z',
        generatorURL: 'http://prometheus:9090/graph?g0.expr=up%3D%3D0',
      });
      assert.equal(routed.input.service, 'backend');
      assert.equal(routed.summary, 'APIDown on backend (critical) — runbook api-down');
    });

    test('the service comes from service, else job, else instance, else "unknown"', () => {
      assert.equal(routeAlert(alert({ service: 's', job: 'j', instance: 'i' }), defaults).input.service, 's');
      assert.equal(routeAlert(alert({ job: 'j', instance: 'i' }), defaults).input.service, 'j');
      assert.equal(routeAlert(alert({ instance: 'i' }), defaults).input.service, 'i');
      assert.equal(routeAlert(alert({}), defaults).input.service, 'unknown');
    });

    test('carries no secrets: no Redis URL, channel URL, token hash or database URL', () => {
      const secrets = {
        redisPassword: 'redis-pass-c0ffee',
        redisUrl: 'redis://:redis-pass-c0ffee@redis.internal:6379/0',
        webhookUrl: 'https://hooks.slack.example/services/T000/B000/webhook-secret-9f8e7d',
        tokenHash: 'f'.repeat(16) + '0123456789abcdef'.repeat(3),
        databaseUrl: 'postgres://audit:db-pass-5e5e5e@db.internal:5432/audit',
        healthUrl: 'http://backend:8080/health-private-path',
      };
      const input: ConfigInput = {
        audit: { databaseUrl: secrets.databaseUrl },
        targets: {
          backend: { container: 'backend', healthUrl: secrets.healthUrl, healthyWithin: '45s' },
          redis: { container: 'redis', url: secrets.redisUrl, healthyWithin: '20s' },
        },
        channels: { slack: { type: 'webhook', url: secrets.webhookUrl }, log: { type: 'log' } },
        contacts: Object.fromEntries(
          ['oncall', 'devops-lead', 'management', 'status-page', 'team-lead', 'team-member', 'team'].map((name) => [name, { channels: ['slack', 'log'] }]),
        ),
        tokens: [{ name: 'alice', sha256: secrets.tokenHash, scopes: ['incidents'] }],
        approvers: { rollback: ['alice'], 'flush-cache': ['alice'] },
      };
      const config = parseConfig(input);
      for (const alertname of ['APIDown', 'RedisDown', 'Other']) {
        for (const severity of ['critical', 'low']) {
          const routed = routeAlert(alert({ alertname, severity }), config);
          const serialized = JSON.stringify(routed);
          for (const [name, secret] of Object.entries(secrets)) {
            assert.equal(serialized.includes(secret), false, `${alertname}/${severity}: the routed alert contains ${name}`);
          }
          assert.equal(serialized.includes('redis-pass'), false);
          assert.equal(serialized.includes('webhook-secret'), false);
          assert.equal(serialized.includes('db-pass'), false);
        }
      }
      // What the runbooks do need is there: the containers of their own targets, and how long to wait.
      const { targets, approvers } = routeAlert(alert({ alertname: 'APIDown' }), config).input;
      assert.deepEqual(targets, { backend: { container: 'backend', healthyWithinMs: 45_000 } });
      assert.deepEqual(approvers, { rollback: ['alice'], 'flush-cache': ['alice'] });
    });

    test('copies only the targets its runbook needs (catalog), none for the generic runbook', () => {
      const config = parseConfig({
        targets: {
          backend: { container: 'backend', healthUrl: 'http://backend:8080/health' },
          redis: { container: 'redis', url: 'redis://redis:6379' },
        },
      });
      assert.deepEqual(Object.keys(routeAlert(alert({ alertname: 'APIDown' }), config).input.targets), ['backend']);
      assert.deepEqual(Object.keys(routeAlert(alert({ alertname: 'RedisDown' }), config).input.targets), ['redis']);
      assert.deepEqual(routeAlert(alert({ alertname: 'Other' }), config).input.targets, {});
    });

    test("carries the runbook's catalog policy, with the config's overrides", () => {
      assert.deepEqual(routeAlert(alert({ alertname: 'RedisDown' }), defaults).input.policy, { memoryPressure: 0.9 });
      const config = parseConfig({ policies: { 'redis-down': { memoryPressure: 0.75 } } });
      assert.deepEqual(routeAlert(alert({ alertname: 'RedisDown' }), config).input.policy, { memoryPressure: 0.75 });
      assert.deepEqual(routeAlert(alert({ alertname: 'APIDown' }), config).input.policy, {});
    });

    test('without configured targets the input has none', () => {
      assert.deepEqual(routeAlert(alert({}), defaults).input.targets, {});
    });
  });
});

describe('incidentWorkflowId', () => {
  test('is <alertname>-<fingerprint>', () => {
    assert.equal(incidentWorkflowId('APIDown', 'a1ebaf6b84df2c5a'), 'APIDown-a1ebaf6b84df2c5a');
    assert.equal(routeAlert(alert({ alertname: 'RedisDown' }, { fingerprint: '0123abcd' }), defaults).workflowId, 'RedisDown-0123abcd');
  });

  test('keeps letters, digits, _ . : and -', () => {
    assert.equal(incidentWorkflowId('Disk_Full.v2:node-1', 'ff'), 'Disk_Full.v2:node-1-ff');
  });

  test('makes odd alertnames safe: spaces, slashes, quotes, control characters and non-ASCII become _', () => {
    assert.equal(incidentWorkflowId('API Down', 'ab'), 'API_Down-ab');
    assert.equal(incidentWorkflowId('a/b\\c', 'ab'), 'a_b_c-ab');
    assert.equal(incidentWorkflowId('"quoted" <tag>', 'ab'), '_quoted___tag_-ab');
    assert.equal(incidentWorkflowId('line\nbreak\ttab', 'ab'), 'line_break_tab-ab');
    assert.equal(incidentWorkflowId('Überlast', 'ab'), '_berlast-ab');
    assert.equal(incidentWorkflowId('../../etc/passwd', 'ab'), '.._.._etc_passwd-ab');
    for (const name of ['API Down', 'a/b', 'Überlast 🔥', '💥'.repeat(300), 'x'.repeat(1000)]) {
      assert.match(incidentWorkflowId(name, 'a1ebaf6b84df2c5a'), /^[A-Za-z0-9_.:-]{1,100}-a1ebaf6b84df2c5a$/, JSON.stringify(name.slice(0, 20)));
    }
  });

  test('truncates the readable part to 100 characters but keeps the whole fingerprint', () => {
    const id = incidentWorkflowId('A'.repeat(250), 'a1ebaf6b84df2c5a');
    assert.equal(id, `${'A'.repeat(100)}-a1ebaf6b84df2c5a`);
  });

  test('is deterministic: the same alert always maps to the same incident', () => {
    const a = routeAlert(alert({ alertname: 'Odd name/with slash' }), defaults);
    const b = routeAlert(alert({ alertname: 'Odd name/with slash', severity: 'low' }), defaults);
    assert.equal(a.workflowId, 'Odd_name_with_slash-a1ebaf6b84df2c5a');
    assert.equal(b.workflowId, a.workflowId);
  });
});
