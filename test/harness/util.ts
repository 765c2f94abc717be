// Small helpers shared by the test harness modules.
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import * as path from 'node:path';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
export const TOOLS_DIR = path.join(PROJECT_ROOT, '.tools');
export const LOG_DIR = path.join(TOOLS_DIR, 'logs');
export const ENSURE_TOOLS = 'bash scripts/ensure-tools.sh';

// Process helpers the product's dev server module already has; the harness uses the same ones.
export { whichSync } from '../../src/temporal/devServer';

/** An infrastructure problem; its message is one line: what is missing — how to get it. */
export class InfraError extends Error {
  override name = 'InfraError';
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function seconds(sinceMs: number): string {
  return `${((Date.now() - sinceMs) / 1000).toFixed(1)}s`;
}

/** Short stable id for this checkout, for paths that must not collide between checkouts. */
export function checkoutId(): string {
  return createHash('sha256').update(PROJECT_ROOT).digest('hex').slice(0, 8);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A TCP port that was free a moment ago on 127.0.0.1, held back from other processes' bind(0) for a minute the way
 * the temporal CLI holds its own: a connection that the listening side closes leaves the port in TIME_WAIT, which
 * bind(0) skips but an explicit bind with SO_REUSEADDR (Node, Go, Docker) does not. Without it a port given to a
 * test could also go to a dev server's internal service, which then panics at start-up.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer((accepted) => accepted.destroy());
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      if (!port) return srv.close(() => reject(new Error('no free port')));
      const client = net.connect(port, '127.0.0.1');
      client.on('error', (err) => srv.close(() => reject(err)));
      client.on('close', () => srv.close(() => resolve(port)));
      client.resume();
    });
  });
}

/** Several distinct free ports (distinct even if the kernel hands the same one out twice). */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}
