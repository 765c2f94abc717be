/** Prometheus Alertmanager webhook payload, version 4, validated strictly enough to form workflow IDs from it. */
import { z } from 'zod';

const MAX_LABEL_VALUE = 2048;
/** Postgres text and jsonb refuse NUL and lone surrogates; refuse them here rather than wedge the audit trail. */
const storableText = (max: number) =>
  z
    .string()
    .max(max)
    .refine((text) => !text.includes('\u0000') && text.isWellFormed(), 'text without NUL characters or broken Unicode');
/**
 * An RFC 3339 date-time as Go's time.Time marshals it: seconds always, up to nanosecond fractions, `Z` or a
 * `±hh:mm` offset (e.g. 2026-11-27T18:00:00.123456789+01:00). Alertmanager sends 0001-01-01T00:00:00Z, Go's
 * zero time, as the `endsAt` of an alert with no end yet: a valid date-time, so accepted.
 */
const rfc3339 = storableText(64).pipe(z.iso.datetime({ offset: true, message: 'an RFC 3339 date-time, e.g. 2026-11-27T13:24:01.312Z' }));
const labelSet = z
  .record(storableText(256).pipe(z.string().min(1)), storableText(MAX_LABEL_VALUE))
  .refine((labels) => Object.keys(labels).length <= 64, 'at most 64 labels');

export const AlertSchema = z.object({
  status: z.enum(['firing', 'resolved']),
  labels: labelSet.refine((labels) => typeof labels.alertname === 'string' && /^\S.{0,199}$/u.test(labels.alertname), {
    message: 'an alertname label of 1 to 200 characters is required',
    path: ['alertname'],
  }),
  annotations: labelSet.default({}),
  startsAt: rfc3339,
  endsAt: rfc3339.optional(),
  generatorURL: storableText(MAX_LABEL_VALUE).default(''),
  /** Alertmanager's fingerprint: 16 hex digits; it keys the incident. */
  fingerprint: z.string().regex(/^[0-9a-f]{1,64}$/, 'hex digits (Alertmanager fingerprint)'),
});

export const AlertmanagerPayloadSchema = z.object({
  version: z.literal('4', { message: 'only Alertmanager webhook payload version "4" is supported' }),
  status: z.enum(['firing', 'resolved']),
  receiver: z.string().max(1024).optional(),
  groupKey: z.string().max(MAX_LABEL_VALUE * 4).optional(),
  truncatedAlerts: z.number().int().min(0).optional(),
  groupLabels: labelSet.optional(),
  commonLabels: labelSet.optional(),
  commonAnnotations: labelSet.optional(),
  externalURL: z.string().max(MAX_LABEL_VALUE).optional(),
  alerts: z.array(AlertSchema).min(1).max(1000),
});

export type Alert = z.infer<typeof AlertSchema>;
export type AlertmanagerPayload = z.infer<typeof AlertmanagerPayloadSchema>;
