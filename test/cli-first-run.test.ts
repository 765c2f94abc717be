// What a new user meets first, through the `runbooks` CLI in a child process: `token create`, the `--by`
// default, and a worker whose audit database is not there. (cli.test.ts has the incident commands and dev; demo*.test.ts the demo.)
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { actorOrDefault, osUserName } from '../src/cli/context';
import { CliError } from '../src/cli/errors';
import { parseConfig } from '../src/config/load';
import { freePort } from './harness/util';
import { cliEnv, cliWorkspace } from './support/cli';
import { testConfigInput } from './support/config';

const workspace = cliWorkspace('cli-first-run');
const { scratch } = workspace;
after(() => workspace.remove());
const runCli = (args: string[], env?: NodeJS.ProcessEnv) => workspace.run(args, { env });

describe('the --by default', () => {
  const noPasswdEntry = () => {
    throw new Error('uv_os_get_passwd returned ENOENT (no such file or directory)');
  };

  test('is os.userInfo().username, else $USER', () => {
    assert.equal(osUserName({ USER: 'carol' }, () => ({ username: 'alice' })), 'alice');
    assert.equal(osUserName({ USER: 'carol' }, noPasswdEntry), 'carol');
    assert.equal(osUserName({ USER: 'carol' }, () => ({ username: '' })), 'carol');
    assert.equal(osUserName({}, noPasswdEntry), undefined);
    assert.equal(osUserName({ USER: ' ' }, noPasswdEntry), undefined);
  });

  test('an explicit --by wins; without any name it is a usage error that says to pass --by', () => {
    assert.equal(actorOrDefault('bob', () => 'alice'), 'bob');
    assert.equal(actorOrDefault(undefined, () => 'alice'), 'alice');
    assert.throws(
      () => actorOrDefault(undefined, () => undefined),
      (err: unknown) => err instanceof CliError && err.exitCode === 2 && /^--by: not given.*\$USER is unset.*pass --by NAME$/.test(err.message),
    );
  });
});

describe('runbooks token create', () => {
  const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

  test('prints a fresh token and the lines to paste under tokens:, which config check accepts with that sha256', async () => {
    const [result, again] = await Promise.all([
      runCli(['token', 'create', 'alertmanager', '--scopes', 'alerts,incidents']),
      runCli(['token', 'create', 'alertmanager', '--scopes', 'alerts,incidents']),
    ]);
    assert.equal(result.code, 0, result.stderr);
    const token = /^ {2}([0-9a-f]{64})$/m.exec(result.stdout)?.[1];
    assert.ok(token, result.stdout);
    const lines = /^( {2}- name: .*\n {4}sha256: .*\n {4}scopes: .*\n)/m.exec(result.stdout)?.[1];
    assert.ok(lines, result.stdout);
    const file = path.join(scratch, 'token-create.yaml');
    writeFileSync(file, `tokens:\n${lines}`);
    const parsed = parseConfig(parseYaml(`tokens:\n${lines}`));
    assert.deepEqual(parsed.tokens, [{ name: 'alertmanager', sha256: sha256(token), scopes: ['alerts', 'incidents'] }]);
    const checked = await runCli(['config', 'check', file]);
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, /tokens\s+1 \(alertmanager: alerts\+incidents\)/);

    assert.doesNotMatch(again.stdout, new RegExp(token), 'every token is new');
  });

  test('--json prints name, token, sha256 and scopes; a name YAML would read as another type stays a string', async () => {
    const [result, text] = await Promise.all([
      runCli(['token', 'create', 'true', '--scopes', ' incidents , alerts,incidents', '--json']),
      runCli(['token', 'create', 'true', '--scopes', 'alerts']),
    ]);
    assert.equal(result.code, 0, result.stderr);
    const created = JSON.parse(result.stdout) as { name: string; token: string; sha256: string; scopes: string[] };
    assert.deepEqual(Object.keys(created), ['name', 'token', 'sha256', 'scopes']);
    assert.equal(created.name, 'true');
    assert.match(created.token, /^[0-9a-f]{64}$/);
    assert.equal(created.sha256, sha256(created.token));
    assert.deepEqual(created.scopes, ['alerts', 'incidents']);

    const lines = /^( {2}- name: .*\n {4}sha256: .*\n {4}scopes: .*\n)/m.exec(text.stdout)![1]!;
    assert.equal(parseConfig(parseYaml(`tokens:\n${lines}`)).tokens[0]!.name, 'true');
  });

  test('a bad name or scope exits 2 naming the argument or option, and prints no token', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['bad name', '--scopes', 'alerts'], /^error: <name>: letters, digits, _ \. - \(max 63\)/],
      [['x'.repeat(64), '--scopes', 'alerts'], /^error: <name>: /],
      [['-dash', '--scopes', 'alerts'], /error: /],
      [['ok', '--scopes', 'alerts,admin'], /^error: --scopes: unknown scope "admin" \(scopes: alerts, incidents, operations\)/],
      [['ok', '--scopes', ','], /^error: --scopes: at least one of alerts, incidents, operations/],
      [['ok'], /^error: --scopes: required/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(['token', 'create', ...args])));
    cases.forEach(([args, expected], i) => {
      const result = results[i]!;
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, expected, args.join(' '));
      assert.equal(result.stdout, '', args.join(' '));
    });
  });
});

describe('runbooks worker', () => {
  test('without its audit database it exits 1 with one line naming the PostgreSQL URL (password hidden) and how to set it', async () => {
    const configFile = path.join(scratch, 'runbooks.yaml');
    writeFileSync(configFile, toYaml(testConfigInput()));
    const port = await freePort();
    const url = `postgres://runbooks:s3cret-pw@127.0.0.1:${port}/audit`;
    const result = await runCli(['--config', configFile, 'worker'], cliEnv({ DATABASE_URL: url, LOG_LEVEL: 'warn' }));
    assert.equal(result.code, 1, `${result.stdout}\n${result.stderr}`);
    assert.equal(
      result.stderr,
      `error: the audit trail's PostgreSQL at postgres://runbooks:***@127.0.0.1:${port}/audit is unreachable (connect ECONNREFUSED 127.0.0.1:${port}); ` +
        'DATABASE_URL or audit.databaseUrl sets where it is\n',
    );
    assert.doesNotMatch(result.stdout, /s3cret-pw/);
  });
});
