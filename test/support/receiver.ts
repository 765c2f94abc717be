import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedNotification {
  headers: Record<string, string | string[] | undefined>;
  body: { text: string; workflowId: string; contacts: string[]; severity: string; link?: string };
}

/** A real local HTTP endpoint standing in for a Slack-compatible webhook channel. */
export async function startReceiver(): Promise<{ url: string; received: ReceivedNotification[]; close(): Promise<void> }> {
  const received: ReceivedNotification[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
