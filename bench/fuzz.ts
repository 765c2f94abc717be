/**
 * Fuzzed input for the HTTP API (issue 10 §4): fast-check generates requests to `POST /alerts` and to the incident
 * actions — valid payloads, near-valid ones (one thing wrong) and hostile ones (deep nesting, huge arrays, wrong types,
 * duplicate keys, odd encodings, header games) — and checks each answer against what the request deserved:
 *   - never a 5xx, except the documented 503 (Temporal or the worker unavailable);
 *   - a valid payload with the right token is answered 200 with one result per alert;
 *   - a payload the schema refuses, or a request without the right token or content type, is answered 4xx;
 *   - afterwards, nothing was started that no 200 reported (an invalid body starts nothing), and the server still answers.
 * Seeded and reproducible; a failing request is shrunk by fast-check to a minimal one and printed.
 * `test/fuzz-http.test.ts` runs a few hundred requests; `npm run chaos` runs 10,000.
 */
import type { Client } from '@temporalio/client';
import fc from 'fast-check';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { AlertmanagerPayloadSchema } from '../src/intake/alertmanager';

export interface FuzzTarget {
  app: FastifyInstance;
  client: Client;
  /** The task queue the incidents start on: every workflow on it must have been reported by a 200. */
  taskQueue: string;
  /** Bearer tokens with the `alerts` and the `incidents` scope. */
  alertsToken: string;
  incidentsToken: string;
  /** Incidents that exist, for the actions to aim at (besides made-up IDs). */
  incidentIds: readonly string[];
}

export interface FuzzOptions {
  runs: number;
  seed: number;
}

export interface FuzzReport {
  seed: number;
  runs: number;
  /** Answers by status code. */
  statuses: Record<string, number>;
  /** Requests by kind of generated input. */
  kinds: Record<string, number>;
  /** Incidents the 200s reported (started or signalled). */
  incidentsReported: number;
  /** What went wrong: the shrunk failing request, workflows nobody reported, a server that stopped answering. */
  failures: string[];
}

interface FuzzRequest {
  kind: string;
  method: 'POST';
  url: string;
  headers: Record<string, string>;
  body: string | Buffer;
}

// ---- generators ------------------------------------------------------------------------------------------------

const ALERTNAMES = ['APIDown', 'DatabaseDown', 'RedisDown', 'HighResponseTime', 'SomethingUnrouted'];
const fingerprint = fc.stringMatching(/^[0-9a-f]{16}$/);
const isoDate = fc.date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2030-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString());
const labelName = fc.stringMatching(/^[a-z_][a-z0-9_]{0,15}$/);
const labelValue = fc.string({ maxLength: 40, unit: 'grapheme' });

const validAlert = fc.record({
  status: fc.constantFrom('firing', 'resolved'),
  labels: fc.tuple(fc.constantFrom(...ALERTNAMES), fc.dictionary(labelName, labelValue, { maxKeys: 4 })).map(([alertname, extra]) => ({ ...extra, alertname })),
  annotations: fc.dictionary(labelName, labelValue, { maxKeys: 3 }),
  startsAt: isoDate,
  endsAt: fc.constant('0001-01-01T00:00:00Z'),
  generatorURL: fc.constant('http://prometheus:9090/graph'),
  fingerprint,
});

const validPayload = fc.record({
  version: fc.constant('4'),
  status: fc.constantFrom('firing', 'resolved'),
  receiver: fc.constant('runbooks'),
  groupKey: fc.string({ maxLength: 30 }),
  truncatedAlerts: fc.constant(0),
  groupLabels: fc.constant({}),
  commonLabels: fc.constant({}),
  commonAnnotations: fc.constant({}),
  externalURL: fc.constant('http://alertmanager:9093'),
  alerts: fc.array(validAlert, { minLength: 1, maxLength: 4 }),
});

type Payload = Record<string, unknown> & { alerts: Array<Record<string, unknown>> };

/** One thing wrong with an otherwise valid payload. */
const mutations: Array<fc.Arbitrary<(p: Payload) => Payload>> = [
  fc.constantFrom('version', 'status', 'alerts').map((key) => (p) => withoutKey(p, key)),
  fc.constantFrom('status', 'labels', 'startsAt', 'fingerprint').map((key) => (p) => ({ ...p, alerts: p.alerts.map((a, i) => (i === 0 ? withoutKey(a, key) : a)) })),
  fc.constantFrom<unknown>('3', 4, null, '').map((version) => (p) => ({ ...p, version })),
  fc.constantFrom<unknown>('pending', '', 1, null).map((status) => (p) => ({ ...p, status })),
  fc.constantFrom<unknown>([], 'alerts', {}, null, [null], [1]).map((alerts) => (p) => ({ ...p, alerts }) as Payload),
  fc.constantFrom('XYZ', '', 'g'.repeat(17), '0x12', 'ABCDEF').map((fp) => (p) => firstAlert(p, { fingerprint: fp })),
  fc.constantFrom('yesterday', '2026-13-01T00:00:00Z', '2026-11-27', '').map((startsAt) => (p) => firstAlert(p, { startsAt })),
  fc.constantFrom('', ' leading-space', 'x'.repeat(201), 'nul\u0000name', 'lone\ud800surrogate').map((alertname) => (p) => firstAlertLabels(p, { alertname })),
  fc.constantFrom<unknown>(1, true, null, ['a'], { nested: 'x' }).map((value) => (p) => firstAlertLabels(p, { team: value })),
  fc.integer({ min: 1001, max: 1200 }).map((n) => (p) => ({ ...p, alerts: Array.from({ length: n }, () => p.alerts[0]!) })),
];

const nearValid = fc.tuple(validPayload, fc.oneof(...mutations)).map(([payload, mutate]) => mutate(payload as Payload));

/** Arrays or objects nested `depth` deep, as text (JSON.parse of very deep input is where parsers break). */
const deepNesting = fc.tuple(fc.integer({ min: 100, max: 200_000 }), fc.boolean()).map(([depth, arrays]) => (arrays ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)));

const hostileText: fc.Arbitrary<{ kind: string; text: string }> = fc.oneof(
  deepNesting.map((text) => ({ kind: 'deep nesting', text })),
  fc.integer({ min: 10_000, max: 300_000 }).map((n) => ({ kind: 'huge array', text: JSON.stringify({ version: '4', status: 'firing', alerts: new Array(n).fill(0) }) })),
  fc.jsonValue({ maxDepth: 4 }).map((value) => ({ kind: 'wrong types', text: JSON.stringify(value) ?? 'null' })),
  fc.tuple(validPayload, fc.constantFrom('"3"', '"4"', '[]', 'null')).map(([payload, version]) => ({ kind: 'duplicate keys', text: `{"version":"4",${JSON.stringify(payload).slice(1, -1)},"version":${version}}` })),
  fc.string({ maxLength: 200, unit: 'binary' }).map((text) => ({ kind: 'random text', text })),
  fc.constantFrom('', ' ', 'null', '"4"', '{', '{"version":"4"', '\ufeff{}', '[]', '{"__proto__":{"polluted":true},"version":"4"}', '{"constructor":{"prototype":{"x":1}}}').map((text) => ({ kind: 'malformed', text })),
);

/** Bytes that are not the UTF-8 JSON the webhook reads. */
const oddEncoding = fc.tuple(validPayload, fc.constantFrom('utf16le', 'latin1', 'bom', 'invalid-utf8')).map(([payload, encoding]) => {
  const text = JSON.stringify(payload);
  const bytes =
    encoding === 'utf16le'
      ? Buffer.from(text, 'utf16le')
      : encoding === 'latin1'
        ? Buffer.from(text.replace(/"runbooks"/, '"r\u00e9sum\u00e9"'), 'latin1')
        : encoding === 'bom'
          ? Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])
          : Buffer.concat([Buffer.from(text.slice(0, -2)), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from(text.slice(-2))]);
  return { kind: `encoding ${encoding}`, bytes };
});

/** Headers that should not get a body in: wrong or missing token, wrong content type, odd header values. */
const headerGame = fc.constantFrom<(h: Record<string, string>) => Record<string, string>>(
  (h) => withoutKey(h, 'authorization'),
  (h) => ({ ...h, authorization: 'Bearer wrong-token' }),
  (h) => ({ ...h, authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }),
  (h) => ({ ...h, authorization: 'Bearer ' }),
  (h) => ({ ...h, authorization: `Bearer ${'x'.repeat(8000)}` }),
  (h) => ({ ...h, 'content-type': 'text/plain' }),
  (h) => ({ ...h, 'content-type': 'application/x-www-form-urlencoded' }),
  (h) => withoutKey(h, 'content-type'),
  (h) => ({ ...h, 'content-type': 'application/json; charset=utf-16' }),
  (h) => ({ ...h, 'content-encoding': 'gzip' }),
  (h) => ({ ...h, 'x-forwarded-for': '127.0.0.1, 10.0.0.1' }),
);

function alertRequests(target: FuzzTarget): fc.Arbitrary<FuzzRequest> {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${target.alertsToken}` };
  const post = (kind: string, body: string | Buffer, h: Record<string, string> = headers): FuzzRequest => ({ kind, method: 'POST', url: '/alerts', headers: h, body });
  return fc.oneof(
    { weight: 3, arbitrary: validPayload.map((p) => post('valid', JSON.stringify(p))) },
    { weight: 3, arbitrary: nearValid.map((p) => post('near-valid', JSON.stringify(p))) },
    { weight: 2, arbitrary: hostileText.map(({ kind, text }) => post(kind, text)) },
    { weight: 1, arbitrary: oddEncoding.map(({ kind, bytes }) => post(kind, bytes)) },
    { weight: 1, arbitrary: fc.tuple(validPayload, headerGame).map(([p, game]) => post('header games', JSON.stringify(p), game(headers))) },
  );
}

function actionRequests(target: FuzzTarget): fc.Arbitrary<FuzzRequest> {
  const id = fc.oneof(
    fc.constantFrom(...(target.incidentIds.length ? target.incidentIds : ['APIDown-0'])),
    fc.string({ minLength: 1, maxLength: 60 }).map(encodeURIComponent),
    fc.constantFrom('..%2F..%2Fetc%2Fpasswd', '%00', 'x'.repeat(1100), '%E2%80%AE', 'a%2Fb'),
  );
  const body = fc.oneof(
    fc.record({ step: fc.constantFrom('rollback', 'restart', ''), reason: fc.string({ maxLength: 30 }) }, { requiredKeys: [] }),
    fc.record({ task: fc.string({ maxLength: 120 }), note: fc.string({ maxLength: 30 }) }, { requiredKeys: [] }),
    fc.record({ note: fc.string({ maxLength: 1200 }), reason: fc.string({ maxLength: 20 }) }, { requiredKeys: [] }),
    fc.jsonValue({ maxDepth: 3 }),
  );
  const token = fc.constantFrom(target.incidentsToken, target.incidentsToken, target.alertsToken, 'nobody');
  return fc
    .tuple(fc.constantFrom('approve', 'reject', 'acknowledge', 'resolve', 'complete-task', 'pause', 'resume', 'abort'), id, body, token)
    .map(([action, incident, payload, bearer]) => ({
      kind: `action ${action}`,
      method: 'POST' as const,
      url: `/incidents/${incident}/${action}`,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
      body: JSON.stringify(payload) ?? 'null',
    }));
}

// ---- the oracle ------------------------------------------------------------------------------------------------

/** The body as the server reads it: UTF-8 (a BOM dropped, as JSON allows), parsed; undefined when it is not JSON. */
function parsedBody(request: FuzzRequest): { text: string; value: unknown } | undefined {
  const bytes = typeof request.body === 'string' ? Buffer.from(request.body) : request.body;
  try {
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
    return { text, value: JSON.parse(text) };
  } catch {
    return undefined;
  }
}

/** What the webhook must answer: 200 for a schema-valid UTF-8 JSON payload with the right token and content type. */
function deservesAcceptance(request: FuzzRequest, target: FuzzTarget): boolean {
  if (request.url !== '/alerts') return false;
  const { headers } = request;
  if (headers.authorization !== `Bearer ${target.alertsToken}`) return false;
  if (headers['content-type'] !== 'application/json' || headers['content-encoding']) return false;
  const body = parsedBody(request);
  if (!body) return false;
  // The JSON parser refuses prototype poisoning (`__proto__`, `constructor.prototype`) outright.
  if (/"__proto__"\s*:|"constructor"\s*:\s*\{[^}]*"prototype"\s*:/.test(body.text)) return false;
  return AlertmanagerPayloadSchema.safeParse(body.value).success;
}

/** Fingerprints a request's body names, so a workflow nobody reported can be traced to the request that started it. */
function fingerprintsIn(request: FuzzRequest): string[] {
  const text = typeof request.body === 'string' ? request.body : request.body.toString('utf8');
  return [...text.matchAll(/"fingerprint":"([0-9a-f]{16})"/g)].map((m) => m[1]!);
}

// ---- the run ---------------------------------------------------------------------------------------------------

export async function fuzzHttp(target: FuzzTarget, { runs, seed }: FuzzOptions): Promise<FuzzReport> {
  const report: FuzzReport = { seed, runs, statuses: {}, kinds: {}, incidentsReported: 0, failures: [] };
  const reported = new Set<string>();
  const sentBy = new Map<string, FuzzRequest>();
  const requests = fc.oneof({ weight: 4, arbitrary: alertRequests(target) }, { weight: 1, arbitrary: actionRequests(target) });

  const property = fc.asyncProperty(requests, async (request) => {
    const response = await target.app.inject({ method: request.method, url: request.url, headers: request.headers, payload: request.body } as InjectOptions);
    const status = response.statusCode;
    report.statuses[status] = (report.statuses[status] ?? 0) + 1;
    report.kinds[request.kind] = (report.kinds[request.kind] ?? 0) + 1;
    for (const fp of fingerprintsIn(request)) sentBy.set(fp, request);
    const documented503 = status === 503 && /unavailable|no worker/i.test(response.body);
    if (status >= 500 && !documented503) throw new Error(`answered ${status}: ${response.body.slice(0, 300)}`);
    let body: unknown;
    try {
      body = response.json();
    } catch {
      throw new Error(`answered ${status} with a body that is not JSON: ${response.body.slice(0, 200)}`);
    }
    if (request.url !== '/alerts') return;
    // What a 200 says it did counts as reported before it is judged, so the final sweep flags only silent starts.
    const results = status === 200 ? (body as { results: Array<{ workflowId: string; action: string }> }).results : [];
    for (const r of results) if (r.action !== 'ignored') reported.add(r.workflowId);
    const accept = deservesAcceptance(request, target);
    if (accept && status !== 200 && !documented503) throw new Error(`a valid payload was answered ${status}: ${response.body.slice(0, 300)}`);
    if (!accept && status < 400) throw new Error(`an invalid request was answered ${status}: ${response.body.slice(0, 300)}`);
    if (status === 200) {
      const alerts = (parsedBody(request)!.value as Payload).alerts;
      if (results.length !== alerts.length) throw new Error(`${alerts.length} alert(s) answered with ${results.length} result(s)`);
    }
  });

  const details = await fc.check(property, { numRuns: runs, seed, endOnFailure: false });
  if (details.failed) {
    const [request] = details.counterexample ?? [];
    const shown = request ? { ...request, body: request.body.toString().slice(0, 500) } : undefined;
    report.failures.push(`seed ${seed}, path ${details.counterexamplePath}: ${String(details.errorInstance)}\n  minimal request: ${JSON.stringify(shown)}`);
  }

  report.incidentsReported = reported.size;
  for await (const execution of target.client.workflow.list({ query: `TaskQueue = '${target.taskQueue}'` })) {
    if (reported.has(execution.workflowId) || target.incidentIds.includes(execution.workflowId)) continue;
    const fp = execution.workflowId.split('-').pop() ?? '';
    const culprit = sentBy.get(fp);
    report.failures.push(`${execution.workflowId} was started but no 200 reported it${culprit ? ` (request kind ${culprit.kind})` : ''}`);
  }
  const health = await target.app.inject({ method: 'GET', url: '/healthz' });
  if (health.statusCode !== 200) report.failures.push(`/healthz answered ${health.statusCode} after the run`);
  return report;
}

/** The report as a few lines for a terminal. */
export function formatFuzzReport(report: FuzzReport): string {
  const byCount = (record: Record<string, number>) =>
    Object.entries(record)
      .sort((a, b) => b[1] - a[1])
      .map(([key, n]) => `${key}: ${n}`)
      .join(', ');
  return [
    `fuzz: ${report.runs} requests, seed ${report.seed}`,
    `  kinds: ${byCount(report.kinds)}`,
    `  answers: ${byCount(report.statuses)}`,
    `  incidents reported by 200s: ${report.incidentsReported}`,
    report.failures.length ? `  FAILED:\n    ${report.failures.join('\n    ')}` : '  no failures',
  ].join('\n');
}

function withoutKey<T extends Record<string, unknown>>(record: T, key: string): T {
  const copy = { ...record };
  delete copy[key];
  return copy;
}

function firstAlert(payload: Payload, changes: Record<string, unknown>): Payload {
  return { ...payload, alerts: payload.alerts.map((alert, i) => (i === 0 ? { ...alert, ...changes } : alert)) };
}

function firstAlertLabels(payload: Payload, changes: Record<string, unknown>): Payload {
  return firstAlert(payload, { labels: { ...(payload.alerts[0]!.labels as Record<string, unknown>), ...changes } });
}
