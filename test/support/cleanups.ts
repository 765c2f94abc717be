import { after } from 'node:test';

export interface SuiteCleanups {
  push(cleanup: () => Promise<unknown>): void;
}

/**
 * The cleanups of a suite: each one pushed runs after the suite, the last pushed first (a worker stops before
 * the audit schema it writes to is dropped). Call it in the body of a `describe`: it adds the `after` hook there.
 */
export function suiteCleanups(): SuiteCleanups {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  return { push: (cleanup) => void cleanups.push(cleanup) };
}
