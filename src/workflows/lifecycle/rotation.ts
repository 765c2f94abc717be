/**
 * Who a rotation has on call at an instant. Pure and deterministic (wall-clock arithmetic through Intl, so hand-offs
 * stay at the same local time across DST changes): the notify activity, `runbooks oncall` and tests share it.
 */
import type { Rotation } from '../../config/schema';
import { localDate, zonedTimeToUtc } from './businessDays';

export interface OnCall {
  /** The member (or override's contact) on call. */
  contact: string;
  /** When this turn (or override) started, and when it ends or an override takes over, epoch ms. */
  since: number;
  until: number;
  /** True when an override, not the turn order, put `contact` there. */
  override: boolean;
}

const DAY_MS = 86_400_000;

export function onCallAt(rotation: Rotation, at: number): OnCall {
  const override = rotation.overrides.findLast((o) => Date.parse(o.start) <= at && at < Date.parse(o.end));
  if (override) return { contact: override.contact, since: Date.parse(override.start), until: Date.parse(override.end), override: true };

  const turnDays = rotation.length === 'weekly' ? 7 : 1;
  const [hour, minute] = rotation.handoff.split(':').map(Number) as [number, number];
  const firstDay = Date.parse(`${rotation.startsOn}T00:00:00Z`);
  const handoffOn = (day: number) => {
    const date = new Date(firstDay + day * DAY_MS);
    return zonedTimeToUtc(date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), hour, rotation.timeZone, minute);
  };
  // Days since `startsOn` in local calendar days; before today's hand-off, yesterday's turn still runs.
  const local = localDate(at, rotation.timeZone);
  let day = Math.round((Date.UTC(local.year, local.month - 1, local.day) - firstDay) / DAY_MS);
  if (at < handoffOn(day)) day -= 1;
  const turn = Math.floor(day / turnDays);
  const members = rotation.members;
  const nextOverride = Math.min(...rotation.overrides.map((o) => Date.parse(o.start)).filter((start) => start > at));
  return {
    contact: members[((turn % members.length) + members.length) % members.length]!,
    since: handoffOn(turn * turnDays),
    until: Math.min(handoffOn((turn + 1) * turnDays), nextOverride),
    override: false,
  };
}
