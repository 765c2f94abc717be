import Redis from 'ioredis';

/**
 * A short-lived Redis connection for one piece of work: a runbook (or an operator command) must not depend on a
 * client that broke with the server. Failures surface through the failing command, never as unhandled events.
 */
export async function withRedis<T>(url: string, use: (redis: Redis) => Promise<T>, { connectTimeoutMs = 2_000 } = {}): Promise<T> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: connectTimeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}
