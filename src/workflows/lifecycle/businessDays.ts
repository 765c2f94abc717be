/** Business-day arithmetic for the Low severity clock. Pure and deterministic, so workflows may use it. */
import type { BusinessHours } from '../../incidents/model';

/** The first start of a business day strictly after `fromMs`, e.g. Friday 17:00 → Monday 09:00. */
export function nextBusinessDayStart(fromMs: number, hours: BusinessHours): number {
  const today = localDate(fromMs, hours.timeZone);
  for (let offset = 0; offset <= 14; offset++) {
    const day = new Date(Date.UTC(today.year, today.month - 1, today.day + offset));
    const isoWeekday = day.getUTCDay() === 0 ? 7 : day.getUTCDay();
    if (!hours.days.includes(isoWeekday)) continue;
    const start = zonedTimeToUtc(day.getUTCFullYear(), day.getUTCMonth() + 1, day.getUTCDate(), hours.startHour, hours.timeZone);
    if (start > fromMs) return start;
  }
  throw new Error(`no business day within two weeks of ${new Date(fromMs).toISOString()}`);
}

interface LocalParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
}

export function localDate(ms: number, timeZone: string): LocalParts {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
  }).formatToParts(new Date(ms));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  return { year: get('year'), month: get('month'), day: get('day'), hour: get('hour'), minute: get('minute') };
}

/**
 * UTC instant of a local wall-clock time. A time skipped by a DST change moves forward by the gap (02:30 → 03:30;
 * a whole hour → where the gap ends); a time that happens twice maps to its first occurrence.
 */
export function zonedTimeToUtc(year: number, month: number, day: number, hour: number, timeZone: string, minute = 0): number {
  const wanted = Date.UTC(year, month - 1, day, hour, minute);
  const offsetAt = (ms: number) => {
    const seen = localDate(ms, timeZone);
    return Date.UTC(seen.year, seen.month - 1, seen.day, seen.hour, seen.minute) - ms;
  };
  const candidates = [offsetAt(wanted - 86_400_000), offsetAt(wanted + 86_400_000)].map((offset) => wanted - offset);
  const exact = candidates.filter((utc) => utc + offsetAt(utc) === wanted);
  return exact.length > 0 ? Math.min(...exact) : Math.max(...candidates);
}
