import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../src/config/load';
import type { Rotation } from '../src/config/schema';
import { onCallAt } from '../src/workflows/lifecycle/rotation';

/** A rotation as the config check makes it (defaults filled in). */
function rotation(fields: Record<string, unknown>): Rotation {
  const config = parseConfig({
    contacts: {
      alice: { channels: ['log'] },
      bob: { channels: ['log'] },
      carol: { channels: ['log'] },
      dave: { channels: ['log'] },
      oncall: { rotation: { members: ['alice', 'bob', 'carol'], timeZone: 'Europe/Berlin', length: 'weekly', startsOn: '2026-11-02', ...fields } },
    },
    escalation: { critical: { responseTime: '15m', escalateTo: ['oncall'] }, high: { responseTime: '1h', escalateTo: ['oncall'] }, medium: { responseTime: '4h', escalateTo: ['oncall'] }, low: { responseTime: '1d', escalateTo: ['oncall'] } },
  });
  const contact = config.contacts.oncall!;
  assert.ok('rotation' in contact);
  return contact.rotation;
}

const at = (iso: string) => Date.parse(iso);

describe('onCallAt', () => {
  test('a weekly rotation hands off on the start weekday at the hand-off time, local', () => {
    const weekly = rotation({});
    // 2026-11-02 is a Monday; Berlin is UTC+1 in November: the 09:00 hand-off is 08:00 UTC.
    assert.equal(onCallAt(weekly, at('2026-11-02T08:00:00Z')).contact, 'alice');
    assert.equal(onCallAt(weekly, at('2026-11-09T07:59:59Z')).contact, 'alice');
    assert.equal(onCallAt(weekly, at('2026-11-09T08:00:00Z')).contact, 'bob');
    assert.equal(onCallAt(weekly, at('2026-11-16T08:00:00Z')).contact, 'carol');
    assert.equal(onCallAt(weekly, at('2026-11-23T08:00:00Z')).contact, 'alice', 'the turn order wraps');
    const bob = onCallAt(weekly, at('2026-11-12T12:00:00Z'));
    assert.deepEqual(bob, { contact: 'bob', since: at('2026-11-09T08:00:00Z'), until: at('2026-11-16T08:00:00Z'), override: false });
  });

  test('before the first turn the order runs backwards, so any instant has someone on call', () => {
    assert.equal(onCallAt(rotation({}), at('2026-11-01T12:00:00Z')).contact, 'carol');
  });

  test('a daily rotation hands off every day at the hand-off time, including the same local time across a DST change', () => {
    // Berlin leaves summer time on 2026-10-25: 09:00 local is 07:00 UTC before, 08:00 UTC after.
    const daily = rotation({ length: 'daily', startsOn: '2026-10-23', handoff: '09:00', members: ['alice', 'bob'] });
    assert.equal(onCallAt(daily, at('2026-10-24T06:59:00Z')).contact, 'alice', 'Oct 24 before 09:00 CEST: the Oct 23 turn');
    assert.equal(onCallAt(daily, at('2026-10-24T07:00:00Z')).contact, 'bob');
    const overDst = onCallAt(daily, at('2026-10-25T12:00:00Z'));
    assert.deepEqual(overDst, { contact: 'alice', since: at('2026-10-25T08:00:00Z'), until: at('2026-10-26T08:00:00Z'), override: false });
    assert.equal(onCallAt(daily, at('2026-10-25T07:30:00Z')).contact, 'bob', '08:30 CET on Oct 25: bob still, until 09:00 local');
  });

  test('a hand-off time skipped by the change to summer time moves forward by the gap', () => {
    // Berlin skips 02:00-03:00 on 2026-03-29: a 02:30 hand-off happens at 03:30 CEST (01:30 UTC).
    const daily = rotation({ length: 'daily', startsOn: '2026-03-28', handoff: '02:30', members: ['alice', 'bob'] });
    assert.equal(onCallAt(daily, at('2026-03-29T01:29:59Z')).contact, 'alice');
    assert.equal(onCallAt(daily, at('2026-03-29T01:30:00Z')).contact, 'bob');
    assert.equal(onCallAt(daily, at('2026-03-30T00:29:59Z')).contact, 'bob', 'the next day it is 02:30 CEST again');
    assert.equal(onCallAt(daily, at('2026-03-30T00:30:00Z')).contact, 'alice');
  });

  test('an override covers its window, the last listed wins, and the turn ends early when one starts', () => {
    const withOverrides = rotation({
      overrides: [
        { contact: 'dave', start: '2026-11-10T18:00:00+01:00', end: '2026-11-11T09:00:00+01:00' },
        { contact: 'carol', start: '2026-11-11T00:00:00+01:00', end: '2026-11-11T06:00:00+01:00' },
      ],
    });
    assert.deepEqual(onCallAt(withOverrides, at('2026-11-10T12:00:00Z')), {
      contact: 'bob',
      since: at('2026-11-09T08:00:00Z'),
      until: at('2026-11-10T17:00:00Z'),
      override: false,
    });
    assert.equal(onCallAt(withOverrides, at('2026-11-10T17:00:00Z')).contact, 'dave');
    assert.equal(onCallAt(withOverrides, at('2026-11-11T02:00:00Z')).contact, 'carol', 'the later override wins where both apply');
    assert.equal(onCallAt(withOverrides, at('2026-11-11T07:00:00Z')).contact, 'dave');
    assert.equal(onCallAt(withOverrides, at('2026-11-11T08:00:00Z')).contact, 'bob', 'back to the turn order when the override ends');
  });

  test('the config check refuses a rotation whose member or override is not a contact with channels', () => {
    assert.throws(
      () =>
        parseConfig({
          contacts: {
            alice: { channels: ['log'] },
            oncall: { rotation: { members: ['alice', 'nobody'], timeZone: 'UTC', length: 'daily', startsOn: '2026-11-02', overrides: [{ contact: 'oncall', start: '2026-11-02T00:00:00Z', end: '2026-11-03T00:00:00Z' }] } },
          },
          escalation: { critical: { responseTime: '15m', escalateTo: ['oncall'] }, high: { responseTime: '1h', escalateTo: ['oncall'] }, medium: { responseTime: '4h', escalateTo: ['oncall'] }, low: { responseTime: '1d', escalateTo: ['oncall'] } },
        }),
      (err: Error) =>
        /contacts\.oncall\.rotation\.members\.1: no contact named "nobody"/.test(err.message) &&
        /contacts\.oncall\.rotation\.overrides\.0\.contact: "oncall" is a rotation, not a contact with channels/.test(err.message),
    );
  });
});
