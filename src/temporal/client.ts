import { Client, Connection } from '@temporalio/client';
import type { Config } from '../config/schema';

/**
 * A client whose connection is made on first use, so the HTTP server starts (and answers 503) while
 * Temporal is down, and recovers by itself when it comes back.
 */
export function createLazyClient(config: Config): { client: Client; connection: Connection } {
  const connection = Connection.lazy({ address: config.temporal.address, connectTimeout: '5s' });
  return { connection, client: new Client({ connection, namespace: config.temporal.namespace }) };
}

export async function connectClient(config: Config): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({ address: config.temporal.address, connectTimeout: '5s' });
  return { connection, client: new Client({ connection, namespace: config.temporal.namespace }) };
}
