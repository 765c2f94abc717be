import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import type { Channel, Config } from '../config/schema';
import { ActivityErrorType } from '../runbooks/errorTypes';
import { incidentUiUrl } from '../temporal/uiLinks';

export interface Notification {
  workflowId: string;
  /** Contact names from the config; resolved to channels here so channel URLs (secrets) never enter history. */
  contacts: string[];
  /** Absent for runs no severity applies to. */
  severity?: string;
  /** One line, Slack-compatible. */
  text: string;
}

/** What a channel receives: the notification plus, when `http.temporalUiUrl` is set, a link to the incident. */
interface DeliveredNotification extends Notification {
  link?: string;
}

export interface NotifyResult {
  delivered: string[];
  unknownContacts: string[];
}

const WEBHOOK_TIMEOUT_MS = 5_000;

export function createNotifyActivities(config: Pick<Config, 'contacts' | 'channels' | 'http' | 'temporal'>, logger: Logger) {
  const linkTo = (workflowId: string) =>
    config.http.temporalUiUrl ? incidentUiUrl(config.http.temporalUiUrl, config.temporal.namespace, workflowId) : undefined;
  return {
    /**
     * Sends to every channel of the contacts. A retry skips channels an earlier attempt reached (kept in
     * heartbeat details); each POST carries an Idempotency-Key so a receiver can drop a rare duplicate.
     */
    async notify(notification: Notification): Promise<NotifyResult> {
      const context = Context.current();
      const alreadyDelivered = new Set<string>((context.info.heartbeatDetails as string[] | undefined) ?? []);
      const unknownContacts = notification.contacts.filter((name) => !config.contacts[name]);
      const channelNames = [...new Set(notification.contacts.flatMap((name) => config.contacts[name]?.channels ?? []))];
      const link = linkTo(notification.workflowId);
      const message: DeliveredNotification = link ? { ...notification, text: `${notification.text} ${link}`, link } : notification;
      const failures: string[] = [];
      for (const channelName of channelNames) {
        if (alreadyDelivered.has(channelName)) continue;
        const channel = config.channels[channelName];
        if (!channel) continue;
        try {
          await deliver(channel, message, `${notification.workflowId}/${context.info.activityId}/${channelName}`, logger);
          alreadyDelivered.add(channelName);
          context.heartbeat([...alreadyDelivered]);
        } catch (err) {
          failures.push(`${channelName}: ${(err as Error).message}`);
        }
      }
      if (failures.length > 0) throw ApplicationFailure.retryable(`notification not delivered to ${failures.join('; ')}`, ActivityErrorType.notifyFailed);
      return { delivered: [...alreadyDelivered], unknownContacts };
    },
  };
}

export type NotifyActivities = ReturnType<typeof createNotifyActivities>;

async function deliver(channel: Channel, notification: DeliveredNotification, idempotencyKey: string, logger: Logger): Promise<void> {
  if (channel.type === 'log') {
    logger.info({ workflowId: notification.workflowId, contacts: notification.contacts }, notification.text);
    return;
  }
  const response = await fetch(channel.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
    body: JSON.stringify(notification),
    signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
  });
  await response.body?.cancel();
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
}
