/**
 * The Alertmanager payload schema on its own: `startsAt` and `endsAt` are RFC 3339 date-times as Go's
 * time.Time marshals them, and anything else is refused with the field named. (The webhook test checks that such
 * a payload is answered 400 and starts nothing.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AlertmanagerPayloadSchema } from '../src/intake/alertmanager';
import { capturedBody } from './support/alertmanagerCapture';

const capturedAlert = capturedBody.alerts[0]!;

function payload(alert: Record<string, unknown>) {
  return { version: '4', status: 'firing', receiver: 'runbooks', alerts: [alert] };
}

function issuesOf(input: unknown): { path: string; message: string }[] {
  const parsed = AlertmanagerPayloadSchema.safeParse(input);
  return parsed.success ? [] : parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
}

describe('Alertmanager timestamps', () => {
  test('the captured payload passes: nanosecond startsAt, and Go\'s zero time as the endsAt of an alert with no end', () => {
    const parsed = AlertmanagerPayloadSchema.parse(capturedBody);
    assert.equal(parsed.alerts[0]!.startsAt, '2026-11-27T13:24:01.312443012Z');
    assert.equal(parsed.alerts[0]!.endsAt, '0001-01-01T00:00:00Z');
  });

  test('what Go marshals is accepted: 0 to 9 fractional digits, Z or a ±hh:mm offset; endsAt may be absent', () => {
    for (const at of [
      '2026-11-27T18:00:00Z',
      '2026-11-27T18:00:00.1Z',
      '2026-11-27T18:00:00.123Z',
      '2026-11-27T18:00:00.123456789Z',
      '2026-11-27T18:00:00+01:00',
      '2026-11-27T18:00:00.123456789+01:00',
      '2026-11-27T18:00:00.5-07:00',
      '2024-02-29T00:00:00Z',
      '0001-01-01T00:00:00Z',
    ]) {
      assert.deepEqual(issuesOf(payload({ ...capturedAlert, startsAt: at, endsAt: at })), [], at);
    }
    const noEnd: Record<string, unknown> = { ...capturedAlert };
    delete noEnd.endsAt;
    assert.deepEqual(issuesOf(payload(noEnd)), []);
  });

  test('anything else in startsAt is refused, naming alerts.0.startsAt', () => {
    for (const at of [
      'yesterday',
      '',
      '2026-13-01T00:00:00Z', // month 13
      '2026-11-27', // a date without a time
      '2026-02-30T00:00:00Z',
      '2026-11-27T18:00:00', // no offset: which instant?
      '2026-11-27 18:00:00Z',
      '2026-11-27T18:00Z',
      '2026-11-27T18:00:00+0100',
      '1764250000',
      '2026-11-27T18:00:00Z\u0000',
      `2026-11-27T18:00:00.${'1'.repeat(80)}Z`,
    ]) {
      const issues = issuesOf(payload({ ...capturedAlert, startsAt: at }));
      assert.deepEqual(issues.map((i) => i.path), ['alerts.0.startsAt'], `${JSON.stringify(at)}: ${JSON.stringify(issues)}`);
    }
  });

  test('a bad endsAt is refused naming alerts.N.endsAt, in whichever alert it is', () => {
    const good = { ...capturedAlert, fingerprint: '0123456789abcdef' };
    for (const at of ['never', '2026-11-27', '0000-00-00T00:00:00Z']) {
      const issues = issuesOf({ ...payload(good), alerts: [good, { ...capturedAlert, endsAt: at }] });
      assert.deepEqual(issues.map((i) => i.path), ['alerts.1.endsAt'], `${JSON.stringify(at)}: ${JSON.stringify(issues)}`);
    }
  });

  test('a timestamp that is not a string is refused naming the field', () => {
    for (const at of [1764250000, null, { seconds: 1 }]) {
      assert.deepEqual(issuesOf(payload({ ...capturedAlert, startsAt: at })).map((i) => i.path), ['alerts.0.startsAt']);
    }
    const missing: Record<string, unknown> = { ...capturedAlert };
    delete missing.startsAt;
    assert.deepEqual(issuesOf(payload(missing)).map((i) => i.path), ['alerts.0.startsAt']);
  });
});
