/**
 * The payload Alertmanager 0.25 sent for APIDown (../shared/fixtures/alertmanager/api-down-firing.json),
 * copied verbatim so the tests do not depend on a file outside the repository. Tests that start incidents swap in
 * a fingerprint of their own so they never meet another test's incident.
 */
export const capturedHeaders = {
  'user-agent': 'Alertmanager/0.25.0',
  authorization: 'Bearer s3cret',
  'content-type': 'application/json',
};
export const capturedBody = {
  receiver: 'runbooks',
  status: 'firing',
  alerts: [
    {
      status: 'firing',
      labels: { alertname: 'APIDown', instance: 'backend:8000', service: 'audit-app-backend', severity: 'critical' },
      annotations: { runbook_url: 'https://example/runbook#api-down', summary: 'Health check returning 503' },
      startsAt: '2026-11-27T13:24:01.312443012Z',
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: '',
      fingerprint: 'a1ebaf6b84df2c5a',
    },
  ],
  groupLabels: { alertname: 'APIDown', service: 'audit-app-backend' },
  commonLabels: { alertname: 'APIDown', instance: 'backend:8000', service: 'audit-app-backend', severity: 'critical' },
  commonAnnotations: { runbook_url: 'https://example/runbook#api-down', summary: 'Health check returning 503' },
  externalURL: 'http://vm:19093',
  version: '4',
  groupKey: '{}:{alertname="APIDown", service="audit-app-backend"}',
  truncatedAlerts: 0,
};
