/** What integration tests need from the harness (test/harness/run.ts); missing pieces fail loudly. */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the tests with \`npm test\`, which starts Temporal, Docker and the rest (test/harness/run.ts)`);
  }
  return value;
}
