import pino, { type Logger } from 'pino';

/** JSON logs to stdout; `LOG_LEVEL` sets the level. Secrets are never passed to the logger. */
export function createLogger(name: string): Logger {
  return pino({ name, level: process.env.LOG_LEVEL ?? 'info' });
}

export type { Logger };
