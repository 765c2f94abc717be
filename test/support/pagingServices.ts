// Local stand-ins for PagerDuty's Events API v2, Opsgenie's Alert API and Slack's incoming webhooks: real HTTP
// servers that check each request against the documented schema (zod) and answer as the service does. A request
// that breaks the schema is answered 400 and kept in `rejected`, so a test sees what was wrong.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';

/** https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ and …/acknowledge-events/, …/resolve-events/ */
const routingKey = z.string().regex(/^[A-Za-z0-9]{32}$/);
const dedupKey = z.string().min(1).max(255);
export const PagerDutyEventSchema = z.discriminatedUnion('event_action', [
  z.strictObject({
    routing_key: routingKey,
    event_action: z.literal('trigger'),
    dedup_key: dedupKey.optional(),
    payload: z.strictObject({
      summary: z.string().min(1).max(1024),
      source: z.string().min(1),
      severity: z.enum(['critical', 'error', 'warning', 'info']),
      timestamp: z.iso.datetime({ offset: true }).optional(),
      component: z.string().optional(),
      group: z.string().optional(),
      class: z.string().optional(),
      custom_details: z.record(z.string(), z.unknown()).optional(),
    }),
    images: z.array(z.strictObject({ src: z.url(), href: z.url().optional(), alt: z.string().optional() })).optional(),
    links: z.array(z.strictObject({ href: z.url(), text: z.string().optional() })).optional(),
    client: z.string().optional(),
    client_url: z.url().optional(),
  }),
  z.strictObject({ routing_key: routingKey, event_action: z.literal('acknowledge'), dedup_key: dedupKey }),
  z.strictObject({ routing_key: routingKey, event_action: z.literal('resolve'), dedup_key: dedupKey }),
]);
export type PagerDutyEvent = z.infer<typeof PagerDutyEventSchema>;

/** https://docs.opsgenie.com/docs/alert-api#create-alert */
export const OpsgenieCreateSchema = z.strictObject({
  message: z.string().min(1).max(130),
  alias: z.string().max(512).optional(),
  description: z.string().max(15_000).optional(),
  responders: z.array(z.record(z.string(), z.string())).optional(),
  tags: z.array(z.string()).optional(),
  details: z.record(z.string(), z.string()).optional(),
  entity: z.string().max(512).optional(),
  source: z.string().max(100).optional(),
  priority: z.enum(['P1', 'P2', 'P3', 'P4', 'P5']).optional(),
  user: z.string().max(100).optional(),
  note: z.string().max(25_000).optional(),
});
/** https://docs.opsgenie.com/docs/alert-api#acknowledge-alert and #close-alert */
export const OpsgenieActionSchema = z.strictObject({
  user: z.string().max(100).optional(),
  source: z.string().max(100).optional(),
  note: z.string().max(25_000).optional(),
});

/** https://api.slack.com/messaging/webhooks: text, and optionally Block Kit blocks. */
export const SlackMessageSchema = z.strictObject({
  text: z.string().min(1),
  blocks: z
    .array(
      z.union([
        z.strictObject({ type: z.literal('section'), text: z.strictObject({ type: z.enum(['mrkdwn', 'plain_text']), text: z.string().min(1).max(3000) }) }),
        z.strictObject({
          type: z.literal('actions'),
          elements: z.array(z.strictObject({ type: z.literal('button'), text: z.strictObject({ type: z.literal('plain_text'), text: z.string().min(1).max(75) }), url: z.url().max(3000) })).min(1).max(25),
        }),
      ]),
    )
    .optional(),
});

export interface OpsgenieRequest {
  /** `create`, `acknowledge` or `close`. */
  action: string;
  alias: string;
  apiKey: string;
  body: unknown;
}

export interface PagingServices {
  /** Base URLs to put in the channels' `baseUrl` (PagerDuty, Opsgenie) and `url` (Slack). */
  pagerDutyUrl: string;
  opsgenieUrl: string;
  slackUrl: string;
  pagerDuty: PagerDutyEvent[];
  opsgenie: OpsgenieRequest[];
  /** Slack messages by webhook path (one per channel). */
  slack: Array<{ path: string; message: z.infer<typeof SlackMessageSchema> }>;
  /** Requests that broke the schema: path and what was wrong. */
  rejected: string[];
  /** Paths starting with one of these are answered 500 (a service that is down). */
  failing: Set<string>;
  close(): Promise<void>;
}

export async function startPagingServices(): Promise<PagingServices> {
  const services: Omit<PagingServices, 'pagerDutyUrl' | 'opsgenieUrl' | 'slackUrl' | 'close'> = {
    pagerDuty: [],
    opsgenie: [],
    slack: [],
    rejected: [],
    failing: new Set(),
  };
  const server: Server = createServer((req, res) => {
    void readJson(req).then((body) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const answer = (status: number, reply: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
      const reject = (issues: string) => {
        services.rejected.push(`${req.method} ${url.pathname}: ${issues}`);
        answer(400, { status: 'invalid event', errors: [issues] });
      };
      if ([...services.failing].some((prefix) => url.pathname.startsWith(prefix))) return answer(500, { message: 'down for the test' });
      if (req.method !== 'POST' || req.headers['content-type'] !== 'application/json') return reject('not a JSON POST');

      if (url.pathname === '/pagerduty/v2/enqueue') {
        const event = PagerDutyEventSchema.safeParse(body);
        if (!event.success) return reject(z.prettifyError(event.error));
        services.pagerDuty.push(event.data);
        return answer(202, { status: 'success', message: 'Event processed', dedup_key: event.data.dedup_key });
      }

      const opsgenie = /^\/opsgenie\/v2\/alerts(?:\/([^/]+)\/(acknowledge|close))?$/.exec(url.pathname);
      if (opsgenie) {
        const apiKey = /^GenieKey (.+)$/.exec(req.headers.authorization ?? '')?.[1];
        if (!apiKey) return answer(401, { message: 'Could not authenticate' });
        const [, alias, action] = opsgenie;
        if (action && url.searchParams.get('identifierType') !== 'alias') return reject('identifierType=alias expected');
        const parsed = (action ? OpsgenieActionSchema : OpsgenieCreateSchema).safeParse(body);
        if (!parsed.success) return reject(z.prettifyError(parsed.error));
        const created = parsed.data as z.infer<typeof OpsgenieCreateSchema>;
        services.opsgenie.push({ action: action ?? 'create', alias: action ? decodeURIComponent(alias!) : (created.alias ?? ''), apiKey, body: parsed.data });
        return answer(202, { result: 'Request will be processed', took: 0.01, requestId: `${services.opsgenie.length}` });
      }

      if (url.pathname.startsWith('/slack/')) {
        const message = SlackMessageSchema.safeParse(body);
        if (!message.success) return reject(z.prettifyError(message.error));
        services.slack.push({ path: url.pathname, message: message.data });
        return res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      }
      answer(404, { message: 'no such endpoint' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(services, {
    pagerDutyUrl: `${base}/pagerduty`,
    opsgenieUrl: `${base}/opsgenie`,
    slackUrl: `${base}/slack/T000/B000/XXXX`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}
