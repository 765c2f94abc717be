import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BusinessHours } from '../src/incidents/model';
import { nextBusinessDayStart } from '../src/workflows/lifecycle/businessDays';

const weekdays = [1, 2, 3, 4, 5];
const hours = (timeZone: string, overrides: Partial<BusinessHours> = {}): BusinessHours => ({ timeZone, startHour: 9, days: weekdays, ...overrides });

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Wall clock in `timeZone` with its UTC offset, e.g. "Mon 2026-11-30 09:00 UTC+01:00", so a failure reads as local time. */
function wallClock(ms: number, timeZone: string): string {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      weekday: 'short',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, format);
  }
  const p = Object.fromEntries(format.formatToParts(new Date(ms)).map((part) => [part.type, part.value]));
  const localAsUtc = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute));
  const offsetMinutes = Math.round((localAsUtc - Math.floor(ms / 60_000) * 60_000) / 60_000);
  const abs = Math.abs(offsetMinutes);
  const offset = `UTC${offsetMinutes < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return `${p.weekday} ${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${offset}`;
}

/** Asserts the exact instant, comparing wall clocks so a mismatch reads as local times. */
function assertNext(fromIso: string, businessHours: BusinessHours, expectedIso: string, expectedWallClock: string): void {
  const next = nextBusinessDayStart(Date.parse(fromIso), businessHours);
  assert.equal(wallClock(next, businessHours.timeZone), expectedWallClock, `from ${wallClock(Date.parse(fromIso), businessHours.timeZone)}`);
  assert.equal(new Date(next).toISOString(), new Date(expectedIso).toISOString());
}

describe('nextBusinessDayStart', () => {
  describe('in UTC', () => {
    test('Friday 17:00 moves to Monday 09:00', () => {
      assertNext('2026-11-27T17:00:00Z', hours('UTC'), '2026-11-30T09:00:00Z', 'Mon 2026-11-30 09:00 UTC+00:00');
    });

    test('before the start hour it is the same day at the start hour', () => {
      assertNext('2026-11-24T08:59:00Z', hours('UTC'), '2026-11-24T09:00:00Z', 'Tue 2026-11-24 09:00 UTC+00:00');
      assertNext('2026-11-24T00:00:00Z', hours('UTC'), '2026-11-24T09:00:00Z', 'Tue 2026-11-24 09:00 UTC+00:00');
    });

    test('exactly at the start hour it is the next business day, since the result is strictly later', () => {
      assertNext('2026-11-24T09:00:00Z', hours('UTC'), '2026-11-25T09:00:00Z', 'Wed 2026-11-25 09:00 UTC+00:00');
      assertNext('2026-11-24T09:00:00.001Z', hours('UTC'), '2026-11-25T09:00:00Z', 'Wed 2026-11-25 09:00 UTC+00:00');
      assertNext('2026-11-24T08:59:59.999Z', hours('UTC'), '2026-11-24T09:00:00Z', 'Tue 2026-11-24 09:00 UTC+00:00');
    });

    test('Saturday and Sunday at any hour move to Monday', () => {
      for (const from of ['2026-11-28T00:00:00Z', '2026-11-28T10:00:00Z', '2026-11-29T08:00:00Z', '2026-11-29T23:59:00Z']) {
        assertNext(from, hours('UTC'), '2026-11-30T09:00:00Z', 'Mon 2026-11-30 09:00 UTC+00:00');
      }
    });

    test('a Friday before a long weekend still lands on Monday (no holidays are known)', () => {
      assertNext('2026-12-25T12:00:00Z', hours('UTC'), '2026-12-28T09:00:00Z', 'Mon 2026-12-28 09:00 UTC+00:00');
    });

    test('the year boundary is crossed', () => {
      assertNext('2026-12-31T18:00:00Z', hours('UTC'), '2027-01-01T09:00:00Z', 'Fri 2027-01-01 09:00 UTC+00:00');
    });

    test('a custom start hour is used', () => {
      assertNext('2026-11-24T07:00:00Z', hours('UTC', { startHour: 7 }), '2026-11-25T07:00:00Z', 'Wed 2026-11-25 07:00 UTC+00:00');
      assertNext('2026-11-24T07:00:00Z', hours('UTC', { startHour: 0 }), '2026-11-25T00:00:00Z', 'Wed 2026-11-25 00:00 UTC+00:00');
      assertNext('2026-11-24T07:00:00Z', hours('UTC', { startHour: 23 }), '2026-11-24T23:00:00Z', 'Tue 2026-11-24 23:00 UTC+00:00');
    });
  });

  describe('custom business days', () => {
    test('Monday, Wednesday and Friday: Tuesday moves to Wednesday, Friday evening to Monday', () => {
      const mwf = hours('UTC', { days: [1, 3, 5] });
      assertNext('2026-11-24T10:00:00Z', mwf, '2026-11-25T09:00:00Z', 'Wed 2026-11-25 09:00 UTC+00:00');
      assertNext('2026-11-27T10:00:00Z', mwf, '2026-11-30T09:00:00Z', 'Mon 2026-11-30 09:00 UTC+00:00');
    });

    test('Sunday (ISO day 7) as the only business day', () => {
      assertNext('2026-11-24T10:00:00Z', hours('UTC', { days: [7] }), '2026-11-29T09:00:00Z', 'Sun 2026-11-29 09:00 UTC+00:00');
      // Sunday after the start hour: a whole week later.
      assertNext('2026-11-29T10:00:00Z', hours('UTC', { days: [7] }), '2026-12-06T09:00:00Z', 'Sun 2026-12-06 09:00 UTC+00:00');
    });

    test('a Sunday-to-Thursday week makes Friday evening move to Sunday', () => {
      assertNext('2026-11-27T17:00:00Z', hours('Asia/Jerusalem', { days: [7, 1, 2, 3, 4] }), '2026-11-29T07:00:00Z', 'Sun 2026-11-29 09:00 UTC+02:00');
    });

    test('every day a business day: after the start hour it is tomorrow', () => {
      assertNext('2026-11-28T10:00:00Z', hours('UTC', { days: [1, 2, 3, 4, 5, 6, 7] }), '2026-11-29T09:00:00Z', 'Sun 2026-11-29 09:00 UTC+00:00');
    });

    test('the order of the days does not matter', () => {
      assertNext('2026-11-24T10:00:00Z', hours('UTC', { days: [5, 3, 1] }), '2026-11-25T09:00:00Z', 'Wed 2026-11-25 09:00 UTC+00:00');
    });

    test('no business days at all is an error, not an endless loop', () => {
      assert.throws(() => nextBusinessDayStart(Date.parse('2026-11-24T10:00:00Z'), hours('UTC', { days: [] })), /no business day within two weeks/);
    });
  });

  describe('local time, not UTC', () => {
    test('Friday 17:00 in Berlin moves to Monday 09:00 in Berlin (08:00 UTC in winter)', () => {
      assertNext('2026-11-27T16:00:00Z', hours('Europe/Berlin'), '2026-11-30T08:00:00Z', 'Mon 2026-11-30 09:00 UTC+01:00');
    });

    test('the local date decides when UTC is still on the previous day (Berlin, just after local midnight)', () => {
      // Monday 00:30 in Berlin is Sunday 23:30 UTC: the next start is Monday 09:00 Berlin, not Monday 09:00 UTC's day after.
      assertNext('2026-11-29T23:30:00Z', hours('Europe/Berlin'), '2026-11-30T08:00:00Z', 'Mon 2026-11-30 09:00 UTC+01:00');
    });

    test('Friday 20:00 in New York is Saturday in UTC, and still moves to Monday 09:00 New York', () => {
      assertNext('2026-11-28T01:00:00Z', hours('America/New_York'), '2026-11-30T14:00:00Z', 'Mon 2026-11-30 09:00 UTC-05:00');
    });

    test('Thursday 20:00 in New York (Friday in UTC) moves to Friday 09:00 New York', () => {
      assertNext('2026-11-27T01:00:00Z', hours('America/New_York'), '2026-11-27T14:00:00Z', 'Fri 2026-11-27 09:00 UTC-05:00');
    });
  });

  describe('daylight saving time', () => {
    test('Europe/Berlin, March: Friday 17:00 CET → Monday 09:00 CEST (07:00 UTC, not 08:00)', () => {
      assertNext('2026-03-27T16:00:00Z', hours('Europe/Berlin'), '2026-03-30T07:00:00Z', 'Mon 2026-03-30 09:00 UTC+02:00');
    });

    test('Europe/Berlin, October: Friday 17:00 CEST → Monday 09:00 CET (08:00 UTC, not 07:00)', () => {
      assertNext('2026-10-23T15:00:00Z', hours('Europe/Berlin'), '2026-10-26T08:00:00Z', 'Mon 2026-10-26 09:00 UTC+01:00');
    });

    test('Europe/Berlin: a business day on the very day of the change starts at 09:00 local', () => {
      const sundays = hours('Europe/Berlin', { days: [7] });
      assertNext('2026-03-28T12:00:00Z', sundays, '2026-03-29T07:00:00Z', 'Sun 2026-03-29 09:00 UTC+02:00');
      assertNext('2026-10-24T12:00:00Z', sundays, '2026-10-25T08:00:00Z', 'Sun 2026-10-25 09:00 UTC+01:00');
    });

    test('Europe/Berlin: earlier the same day as the change, before the clocks move', () => {
      // Sunday 01:30 CET, before 02:00 CET becomes 03:00 CEST: the start that day is 09:00 CEST.
      assertNext('2026-03-29T00:30:00Z', hours('Europe/Berlin', { days: [7] }), '2026-03-29T07:00:00Z', 'Sun 2026-03-29 09:00 UTC+02:00');
    });

    test('America/New_York, March: Friday 17:00 EST → Monday 09:00 EDT (13:00 UTC)', () => {
      assertNext('2026-03-06T22:00:00Z', hours('America/New_York'), '2026-03-09T13:00:00Z', 'Mon 2026-03-09 09:00 UTC-04:00');
    });

    test('America/New_York, November: Friday 17:00 EDT → Monday 09:00 EST (14:00 UTC)', () => {
      assertNext('2026-10-30T21:00:00Z', hours('America/New_York'), '2026-11-02T14:00:00Z', 'Mon 2026-11-02 09:00 UTC-05:00');
    });

    test('America/New_York: a business day on the very day of the change starts at 09:00 local', () => {
      const sundays = hours('America/New_York', { days: [7] });
      assertNext('2026-03-07T12:00:00Z', sundays, '2026-03-08T13:00:00Z', 'Sun 2026-03-08 09:00 UTC-04:00');
      assertNext('2026-10-31T12:00:00Z', sundays, '2026-11-01T14:00:00Z', 'Sun 2026-11-01 09:00 UTC-05:00');
    });

    test('Europe/Berlin: a start hour inside the spring-forward gap (02:00) lands where the gap ends, 03:00 CEST', () => {
      assertNext('2026-03-28T12:00:00Z', hours('Europe/Berlin', { startHour: 2, days: [7] }), '2026-03-29T01:00:00Z', 'Sun 2026-03-29 03:00 UTC+02:00');
    });

    test(
      'America/New_York: a start hour inside the spring-forward gap (02:00) lands where the gap ends, 03:00 EDT, never earlier',
      () => {
        assertNext('2026-03-07T12:00:00Z', hours('America/New_York', { startHour: 2, days: [7] }), '2026-03-08T07:00:00Z', 'Sun 2026-03-08 03:00 UTC-04:00');
      },
    );

    test(
      'America/Santiago: a midnight start on the day DST begins stays on that business day (never Saturday 23:00)',
      () => {
        assertNext('2026-09-04T12:00:00Z', hours('America/Santiago', { startHour: 0, days: [7] }), '2026-09-06T04:00:00Z', 'Sun 2026-09-06 01:00 UTC-03:00');
      },
    );
  });

  describe('time zones with a fractional offset', () => {
    test('Asia/Kolkata (UTC+5:30): Friday 17:00 IST → Monday 09:00 IST (03:30 UTC)', () => {
      assertNext('2026-11-27T11:30:00Z', hours('Asia/Kolkata'), '2026-11-30T03:30:00Z', 'Mon 2026-11-30 09:00 UTC+05:30');
    });

    test('Asia/Kolkata: Monday 02:00 IST (Sunday in UTC) → Monday 09:00 IST the same day', () => {
      assertNext('2026-11-29T20:30:00Z', hours('Asia/Kolkata'), '2026-11-30T03:30:00Z', 'Mon 2026-11-30 09:00 UTC+05:30');
    });

    test('Asia/Kolkata: one minute before 09:00 IST is the same day; exactly 09:00 IST is the next day', () => {
      assertNext('2026-11-30T03:29:00Z', hours('Asia/Kolkata'), '2026-11-30T03:30:00Z', 'Mon 2026-11-30 09:00 UTC+05:30');
      assertNext('2026-11-30T03:30:00Z', hours('Asia/Kolkata'), '2026-12-01T03:30:00Z', 'Tue 2026-12-01 09:00 UTC+05:30');
    });

    test('Asia/Kathmandu (UTC+5:45) and America/St_Johns (UTC−3:30) land on 09:00 local', () => {
      assertNext('2026-11-27T11:30:00Z', hours('Asia/Kathmandu'), '2026-11-30T03:15:00Z', 'Mon 2026-11-30 09:00 UTC+05:45');
      assertNext('2026-11-27T20:30:00Z', hours('America/St_Johns'), '2026-11-30T12:30:00Z', 'Mon 2026-11-30 09:00 UTC-03:30');
    });
  });

  test('whatever the zone and instant, the result is a business day at the start hour, local time', () => {
    const zones = ['Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Australia/Sydney'];
    const weekdayNumber: Record<string, number> = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };
    // Every 11 h 17 min through 2026: every weekday at many hours, and the weekends of both DST changes of each zone.
    for (const timeZone of zones) {
      const businessHours = hours(timeZone);
      for (let from = Date.parse('2026-01-01T00:00:00Z'); from < Date.parse('2027-01-01T00:00:00Z'); from += (11 * 60 + 17) * 60_000) {
        const next = nextBusinessDayStart(from, businessHours);
        const shown = wallClock(next, timeZone);
        assert.ok(next > from, `${timeZone}: ${shown} is not after ${new Date(from).toISOString()}`);
        assert.ok(next - from <= 4 * 86_400_000, `${timeZone}: ${shown} is more than four days after ${new Date(from).toISOString()}`);
        assert.match(shown, / 09:00 /, `${timeZone}: from ${new Date(from).toISOString()}`);
        assert.ok(weekdays.includes(weekdayNumber[shown.slice(0, 3)]!), `${timeZone}: ${shown} is not a business day`);
        // Nothing earlier qualifies: the day before the result, at 09:00, is either not a business day or not after `from`.
        const dayBefore = nextBusinessDayStart(from - 1, businessHours);
        assert.ok(dayBefore <= from || dayBefore === next, `${timeZone}: skipped ${wallClock(dayBefore, timeZone)} from ${new Date(from).toISOString()}`);
      }
    }
  });
});
