// A real SMTP server (smtp-server, from the nodemailer project) on a free local port, with a login, keeping what it
// receives. No STARTTLS: the test exercises SMTP and AUTH, not certificates.
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  mailFrom: string;
  rcptTo: string[];
  /** The message as sent (headers and body). */
  raw: string;
}

export interface LocalSmtp {
  /** smtp://user:password@127.0.0.1:<port>, as an email channel's `smtpUrl`. */
  url: string;
  mails: ReceivedMail[];
  /** Logins refused, by user name. */
  refusedLogins: string[];
  close(): Promise<void>;
}

export async function startSmtpServer(user: string, password: string): Promise<LocalSmtp> {
  const mails: ReceivedMail[] = [];
  const refusedLogins: string[] = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === user && auth.password === password) return callback(null, { user });
      refusedLogins.push(auth.username ?? '');
      callback(new Error('Invalid username or password'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const mailFrom = session.envelope.mailFrom;
        mails.push({
          mailFrom: mailFrom ? mailFrom.address : '',
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}`,
    mails,
    refusedLogins,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
