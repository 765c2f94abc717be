import { Runtime, type Logger as SdkLogger, type LogLevel, type LogMetadata } from '@temporalio/worker';
import type { Logger } from 'pino';

const pinoLevel: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** The Temporal SDK's logs (worker, workflows, activities) through our pino logger, at its level. */
export function sdkLoggerFor(logger: Logger): SdkLogger {
  const at = (level: LogLevel) => (message: string, meta?: LogMetadata) => logger[pinoLevel[level]](meta ?? {}, message);
  return {
    log: (level, message, meta) => at(level)(message, meta),
    trace: at('TRACE'),
    debug: at('DEBUG'),
    info: at('INFO'),
    warn: at('WARN'),
    error: at('ERROR'),
  };
}

let installed = false;

/**
 * Installs the SDK runtime with our logger once per process; later calls keep the first. `metricsAddress`
 * (host:port): the SDK's own metrics (pollers, task latencies, cache, activity failures) served there for Prometheus.
 */
export function routeSdkLogsTo(logger: Logger, metricsAddress?: string): void {
  if (installed) return;
  installed = true;
  try {
    // Core (Rust) logs are forwarded too, so everything the worker says obeys one logger and one level.
    Runtime.install({
      logger: sdkLoggerFor(logger),
      telemetryOptions: {
        logging: { forward: {}, filter: { core: 'WARN', other: 'ERROR' } },
        ...(metricsAddress ? { metrics: { prometheus: { bindAddress: metricsAddress } } } : {}),
      },
    });
  } catch {
    // A runtime already exists in this process (e.g. created by an earlier worker): keep it.
  }
}
