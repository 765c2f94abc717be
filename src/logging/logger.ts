import pino, { type Logger } from 'pino';

interface LoggerOptions {
  /** Human-readable lines instead of JSON: for `runbooks dev` in a terminal. */
  pretty?: boolean;
}

/**
 * JSON logs to stdout (one object a line, for log shippers); `LOG_LEVEL` sets the level and `LOG_FORMAT=json|pretty`
 * overrides the format. Secrets are never passed to the logger.
 */
export function createLogger(name: string, { pretty = false }: LoggerOptions = {}): Logger {
  const format = process.env.LOG_FORMAT ?? (pretty ? 'pretty' : 'json');
  const level = process.env.LOG_LEVEL ?? 'info';
  if (format !== 'pretty') return pino({ name, level });
  return pino({ name, level }, pino.transport({ target: 'pino-pretty', options: { ignore: 'pid,hostname,name', translateTime: 'SYS:HH:MM:ss' } }));
}

export type { Logger };
