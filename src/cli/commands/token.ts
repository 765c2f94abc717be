/**
 * `runbooks token create NAME --scopes alerts,incidents`: a fresh HTTP API token, and the lines that let it in
 * (the config keeps only its sha256). Nothing is written anywhere: the token is shown once, on stdout.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { stringify as yamlScalar } from 'yaml';
import { z } from 'zod';
import { configFilePath } from '../../config/load';
import { tokenScopes } from '../../config/schema';
import { parseInput, type GlobalOptions } from '../context';

export { tokenScopes };

/** The same rule as the config's names (`name` in src/config/schema.ts): the token's name is who it acts as. */
export const TokenNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'letters, digits, _ . - (max 63), starting with a letter or digit');

const ScopesSchema = z
  .string({ error: `required: a comma-separated list of ${tokenScopes.join(', ')}` })
  .transform((list) => list.split(',').map((scope) => scope.trim()).filter(Boolean))
  .pipe(
    z
      .array(z.enum(tokenScopes, { error: (issue) => `unknown scope "${String(issue.input)}" (scopes: ${tokenScopes.join(', ')})` }))
      .min(1, `at least one of ${tokenScopes.join(', ')}`),
  )
  .transform((scopes) => tokenScopes.filter((scope) => scopes.includes(scope)));

const CreateInputSchema = z.object({ name: TokenNameSchema, scopes: ScopesSchema, json: z.boolean().default(false) });

/** 32 random bytes, hex: safe in a shell, a YAML file and an Authorization header. */
export function generateToken(): string {
  return randomBytes(32).toString('hex');
}

/** What the config stores instead of the token (`printf %s "$TOKEN" | sha256sum`). */
export function tokenSha256(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('HTTP API tokens');
  token
    .command('create')
    .description('print a new random token and the config lines (its sha256 and scopes) to paste under `tokens:`')
    .argument('<name>', 'who the token acts as: the identity recorded on incident actions and checked against approvers')
    .option('--scopes <list>', `what it may do, comma-separated: ${tokenScopes.join(', ')} (alerts: POST /alerts; incidents: the incident API)`)
    .option('--json', 'print {name, token, sha256, scopes} as JSON')
    .action((name: string, options: Record<string, unknown>, command: Command) => {
      const input = parseInput(CreateInputSchema, { ...options, name }, ['name']);
      const secret = generateToken();
      const created = { name: input.name, token: secret, sha256: tokenSha256(secret), scopes: input.scopes };
      if (input.json) {
        process.stdout.write(`${JSON.stringify(created, null, 2)}\n`);
        return;
      }
      const file = configFilePath({ file: command.optsWithGlobals<GlobalOptions>().config }) ?? 'runbooks.yaml (see runbooks.example.yaml)';
      process.stdout.write(
        [
          `Token "${created.name}" (scopes: ${created.scopes.join(', ')}). It is shown only now; the config keeps only its sha256:`,
          '',
          `  ${created.token}`,
          '',
          `Paste under \`tokens:\` in ${file}, then restart the server:`,
          '',
          // A name such as `true` or `1e3` must stay a string in YAML.
          `  - name: ${yamlScalar(created.name).trim()}`,
          `    sha256: ${created.sha256}`,
          `    scopes: [${created.scopes.join(', ')}]`,
          '',
          `Use it as: curl -H "authorization: Bearer <token>" …; Alertmanager: http_config: { authorization: { credentials: <token> } }`,
          '',
        ].join('\n'),
      );
    });
}
