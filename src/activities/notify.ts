import { ApplicationFailure, Context } from '@temporalio/activity';
import { createTransport, type Transporter } from 'nodemailer';
import type { Logger } from 'pino';
import type { Channel, Config } from '../config/schema';
import { ActivityErrorType } from '../runbooks/errorTypes';
import { incidentUiUrl } from '../temporal/uiLinks';
import { onCallAt } from '../workflows/lifecycle/rotation';

/** What a notification does to the incident's alert in a paging service (PagerDuty, Opsgenie), keyed by the workflow ID. */
export type PageEvent = 'trigger' | 'acknowledge' | 'resolve';

/** A one-click action a channel can show as a button or link (acknowledge, resolve…). */
export interface NotificationLink {
  label: string;
  url: string;
}

export interface Notification {
  workflowId: string;
  /** Contact names from the config; resolved to channels here so channel URLs (secrets) never enter history. */
  contacts: string[];
  /** Absent for runs no severity applies to. */
  severity?: string;
  /** The service the incident is about: the `source` paging services show. */
  service?: string;
  /** One line, Slack-compatible. */
  text: string;
  /** Absent: information only, which paging-service channels skip. */
  event?: PageEvent;
  /** The workflow's clock when it sent this (epoch ms): rotations resolve at this instant, so a retry pages the same person. */
  at?: number;
  links?: NotificationLink[];
}

/** What a channel receives: the notification plus, when `http.temporalUiUrl` is set, a link to the incident. */
interface DeliveredNotification extends Notification {
  link?: string;
}

export interface NotifyResult {
  /** Channel names that took the notification. */
  delivered: string[];
  unknownContacts: string[];
  /** Rotation → whoever it had on call at `at` (and was notified). Absent in results from before rotations. */
  onCall?: Record<string, string>;
  /** Paging-service channels that had nothing to do: the notification was information only. */
  skipped?: string[];
}

/** The details of a NotifyFailed failure: which of the notification's contacts no channel reached. */
export interface NotifyFailureDetails {
  unreachedContacts: string[];
}

const HTTP_TIMEOUT_MS = 5_000;
const PAGERDUTY_SEVERITY: Record<string, string> = { critical: 'critical', high: 'error', medium: 'warning', low: 'info' };
const OPSGENIE_PRIORITY: Record<string, string> = { critical: 'P1', high: 'P2', medium: 'P3', low: 'P4' };

type NotifyConfig = Pick<Config, 'contacts' | 'channels' | 'http' | 'temporal'>;

export function createNotifyActivities(config: NotifyConfig, logger: Logger) {
  const linkTo = (workflowId: string) =>
    config.http.temporalUiUrl ? incidentUiUrl(config.http.temporalUiUrl, config.temporal.namespace, workflowId) : undefined;
  const mailers = new Map<string, Transporter>();
  const mailerFor = (channelName: string, smtpUrl: string) => {
    if (!mailers.has(channelName)) mailers.set(channelName, createTransport(smtpUrl));
    return mailers.get(channelName)!;
  };
  return {
    /**
     * Sends to every channel of the contacts (a rotation's: whoever is on call at `notification.at`). A retry skips
     * channels an earlier attempt reached (kept in heartbeat details); each delivery carries a key derived from the
     * activity (Idempotency-Key header, e-mail Message-ID) or the workflow ID (paging services' dedup key), so a
     * receiver can drop a rare duplicate. Fails retryable, naming the contacts no channel reached.
     */
    async notify(notification: Notification): Promise<NotifyResult> {
      const context = Context.current();
      const alreadyDelivered = new Set<string>((context.info.heartbeatDetails as string[] | undefined) ?? []);
      const { targets, unknownContacts, onCall } = resolveContacts(config, notification.contacts, notification.at ?? Date.now());
      const link = linkTo(notification.workflowId);
      const message: DeliveredNotification = link ? { ...notification, text: `${notification.text} ${link}`, link } : notification;
      const failures: string[] = [];
      const failedChannels = new Set<string>();
      const skipped: string[] = [];
      for (const channelName of new Set(targets.flatMap((t) => t.channels))) {
        const channel = config.channels[channelName];
        if (alreadyDelivered.has(channelName) || !channel) continue;
        if (!message.event && isPagingService(channel)) {
          skipped.push(channelName);
          continue;
        }
        try {
          const key = `${notification.workflowId}/${context.info.activityId}/${channelName}`;
          await deliver({ channel, notification: message, idempotencyKey: key, logger, mailer: (smtpUrl) => mailerFor(channelName, smtpUrl) });
          alreadyDelivered.add(channelName);
          context.heartbeat([...alreadyDelivered]);
        } catch (err) {
          failedChannels.add(channelName);
          failures.push(`${channelName}: ${(err as Error).message}`);
        }
      }
      if (failures.length > 0) {
        const unreached = targets.filter((t) => t.channels.some((c) => failedChannels.has(c)) && !t.channels.some((c) => alreadyDelivered.has(c)));
        const details: NotifyFailureDetails = { unreachedContacts: unreached.map((t) => t.contact) };
        throw ApplicationFailure.create({
          message: `notification not delivered to ${failures.join('; ')}`,
          type: ActivityErrorType.notifyFailed,
          details: [details],
        });
      }
      return { delivered: [...alreadyDelivered], unknownContacts, onCall, skipped };
    },
  };
}

export type NotifyActivities = ReturnType<typeof createNotifyActivities>;

interface ContactTarget {
  /** The name the notification used (a rotation's name, not its member's). */
  contact: string;
  channels: string[];
}

/** Contact names → channels; a rotation becomes whoever it has on call at `at`. */
function resolveContacts(config: NotifyConfig, names: string[], at: number) {
  const targets: ContactTarget[] = [];
  const unknownContacts: string[] = [];
  const onCall: Record<string, string> = {};
  for (const name of names) {
    const contact = config.contacts[name];
    if (!contact) {
      unknownContacts.push(name);
      continue;
    }
    if ('channels' in contact) {
      targets.push({ contact: name, channels: contact.channels });
      continue;
    }
    const member = onCallAt(contact.rotation, at).contact;
    onCall[name] = member;
    // The config check makes members contacts with channels.
    const memberContact = config.contacts[member];
    targets.push({ contact: name, channels: memberContact && 'channels' in memberContact ? memberContact.channels : [] });
  }
  return { targets, unknownContacts, onCall };
}

function isPagingService(channel: Channel): boolean {
  return channel.type === 'pagerduty' || channel.type === 'opsgenie';
}

interface Delivery {
  channel: Channel;
  notification: DeliveredNotification;
  idempotencyKey: string;
  logger: Logger;
  /** One SMTP transport per channel, kept between notifications. */
  mailer: (smtpUrl: string) => Transporter;
}

async function deliver({ channel, notification, idempotencyKey, logger, mailer }: Delivery): Promise<void> {
  switch (channel.type) {
    case 'log':
      logger.info({ workflowId: notification.workflowId, contacts: notification.contacts }, notification.text);
      return;
    case 'webhook':
      return postJson(channel.url, notification, { 'idempotency-key': idempotencyKey });
    case 'slack':
      return postJson(channel.url, slackMessage(notification), { 'idempotency-key': idempotencyKey });
    case 'email':
      await mailer(channel.smtpUrl).sendMail({
        from: channel.from,
        to: channel.to,
        subject: notification.text.split('\n')[0]!.slice(0, 200),
        text: [notification.text, ...(notification.links ?? []).map((l) => `${l.label}: ${l.url}`)].join('\n'),
        messageId: `<${idempotencyKey.replace(/[^A-Za-z0-9._-]/g, '.')}@temporal-runbooks>`,
      });
      return;
    case 'pagerduty':
      return postJson(`${channel.baseUrl.replace(/\/$/, '')}/v2/enqueue`, pagerDutyEvent(channel.routingKey, notification), {});
    case 'opsgenie':
      return postOpsgenie(channel.baseUrl.replace(/\/$/, ''), channel.apiKey, notification);
  }
}

/** Slack's incoming-webhook payload: the text, and the links as buttons. */
function slackMessage(notification: DeliveredNotification) {
  const links = notification.links ?? [];
  return {
    text: notification.text,
    ...(links.length > 0
      ? {
          blocks: [
            { type: 'section', text: { type: 'mrkdwn', text: notification.text } },
            { type: 'actions', elements: links.map((l) => ({ type: 'button', text: { type: 'plain_text', text: l.label }, url: l.url })) },
          ],
        }
      : {}),
  };
}

/** An Events API v2 event (https://developer.pagerduty.com/docs/events-api-v2/overview/); the dedup key is the workflow ID. */
function pagerDutyEvent(routingKey: string, notification: DeliveredNotification) {
  const event = { routing_key: routingKey, event_action: notification.event!, dedup_key: notification.workflowId };
  if (notification.event !== 'trigger') return event;
  const links = [...(notification.link ? [{ href: notification.link, text: 'Temporal UI' }] : []), ...(notification.links ?? []).map((l) => ({ href: l.url, text: l.label }))];
  return {
    ...event,
    payload: {
      summary: notification.text.slice(0, 1024),
      source: notification.service ?? 'temporal-runbooks',
      severity: PAGERDUTY_SEVERITY[notification.severity ?? ''] ?? 'info',
    },
    ...(links.length > 0 ? { links } : {}),
  };
}

/** Opsgenie's Alert API: create with the workflow ID as alias, then acknowledge or close by that alias. */
async function postOpsgenie(baseUrl: string, apiKey: string, notification: DeliveredNotification): Promise<void> {
  const headers = { authorization: `GenieKey ${apiKey}` };
  const alias = notification.workflowId;
  if (notification.event === 'trigger') {
    return postJson(
      `${baseUrl}/v2/alerts`,
      {
        message: notification.text.split('\n')[0]!.slice(0, 130),
        alias,
        description: notification.text.slice(0, 15_000),
        priority: OPSGENIE_PRIORITY[notification.severity ?? ''] ?? 'P5',
        source: notification.service ?? 'temporal-runbooks',
      },
      headers,
    );
  }
  const action = notification.event === 'acknowledge' ? 'acknowledge' : 'close';
  return postJson(`${baseUrl}/v2/alerts/${encodeURIComponent(alias)}/${action}?identifierType=alias`, { source: 'temporal-runbooks', note: notification.text.slice(0, 25_000) }, headers);
}

/** The URL may be a secret: errors name the status only. */
async function postJson(url: string, body: unknown, headers: Record<string, string>): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  await response.body?.cancel();
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
}
