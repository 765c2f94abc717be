// `runbooks config check`, run as users run it: the real CLI in a child process.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';

const ROOT = path.resolve(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'runbooks.js');
const EXAMPLE = path.join(ROOT, 'runbooks.example.yaml');
/** Variables that override the config file; cleared so the harness's own settings do not leak into these tests. */
const OVERRIDES = ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'DATABASE_URL', 'DOCKER_HOST', 'PORT', 'REDIS_URL', 'RUNBOOKS_CONFIG'];

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], { env = {}, cwd = scratch }: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliResult> {
  const baseEnv = { ...process.env };
  for (const name of OVERRIDES) delete baseEnv[name];
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { ...baseEnv, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const scratch = mkdtempSync(path.join(tmpdir(), 'runbooks-config-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function writeConfig(name: string, yaml: string): string {
  const file = path.join(scratch, name);
  writeFileSync(file, yaml);
  return file;
}

describe('runbooks config check', () => {
  test('the example configuration passes and is summarised', async () => {
    const result = await runCli(['config', 'check', EXAMPLE]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.match(result.stdout, /^ok: .*runbooks\.example\.yaml\n/);
    assert.match(result.stdout, /routes\s+16 \(APIDown → api-down, DatabaseDown → db-connections, .*, DiskAlmostFull → generic\); fallback generic/);
    for (const route of ['HighRequestRate → rate-limiting', 'RateLimitExceeded → rate-limiting', 'ETLDataStale → etl-failures', 'SuspiciousActivity → security-incident', 'BruteForceDetected → security-incident']) {
      assert.ok(result.stdout.includes(route), route);
    }
    assert.match(result.stdout, /targets\s+4 \(backend \(backend\), redis \(redis\), postgres \(postgres\), etl \(etl\)\)/);
    assert.match(result.stdout, /contacts\s+10 \(rotations: oncall\), channels 9/);
    assert.match(result.stdout, /approvers\s+rollback: alice, bob; flush-cache: alice/);
    assert.match(result.stdout, /tokens\s+2 /);
  });

  test('a file with several bad keys fails with exit code 2 and names every key path', async () => {
    const file = writeConfig(
      'several-bad.yaml',
      [
        'http:',
        '  port: 99999',
        'escalation:',
        '  critical:',
        '    responseTime: soon',
        '    escalateTo: ["not a name!"]',
        'tokens:',
        '  - name: ci',
        '    sha256: not-hex',
        '    scopes: [alerts]',
      ].join('\n'),
    );
    const result = await runCli(['config', 'check', file]);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^invalid configuration in .*several-bad\.yaml:/);
    for (const key of ['http.port', 'escalation.critical.responseTime', 'escalation.critical.escalateTo.0', 'tokens.0.sha256']) {
      assert.match(result.stderr, new RegExp(`^  - ${key.replace(/\./g, '\\.')}: `, 'm'), `${key} is not named in:\n${result.stderr}`);
    }
  });

  test('a contact or channel that points nowhere is named with its key path', async () => {
    const file = writeConfig(
      'dangling.yaml',
      ['escalation:', '  critical:', '    responseTime: 15m', '    escalateTo: [nobody]', 'contacts:', '  oncall:', '    channels: [pager]'].join('\n'),
    );
    const result = await runCli(['config', 'check', file]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /escalation\.critical\.escalateTo\.0: no contact named "nobody"/);
    assert.match(result.stderr, /contacts\.oncall\.channels\.0: no channel named "pager"/);
  });

  test('an approval quorum larger than its list of approvers is refused, naming both keys', async () => {
    const file = writeConfig('quorum.yaml', ['approvers:', '  rollback: [carol]', 'approvals:', '  rollback: { quorum: 2, expiresAfter: 30m }'].join('\n'));
    const result = await runCli(['config', 'check', file]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /approvals\.rollback\.quorum: 2 approvers needed, approvers\.rollback names 1/);
  });

  test('an unknown top-level key is refused', async () => {
    const file = writeConfig('unknown-key.yaml', 'temporal:\n  address: 127.0.0.1:7233\nescalations: {}\n');
    const result = await runCli(['config', 'check', file]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Unrecognized key: "escalations"/);
  });

  test('TEMPORAL_ADDRESS, DATABASE_URL and PORT win over the file', async () => {
    const result = await runCli(['config', 'check', EXAMPLE], {
      env: { TEMPORAL_ADDRESS: 'temporal.internal:7233', DATABASE_URL: 'postgres://runbooks:s3cret@db.internal:5432/ops', PORT: '8088' },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /temporal\s+temporal\.internal:7233,/);
    assert.match(result.stdout, /http\s+127\.0\.0\.1:8088\n/);
    assert.match(result.stdout, /audit\s+postgres:\/\/runbooks:\*\*\*@db\.internal:5432\/ops /, 'the password is redacted');
    assert.doesNotMatch(result.stdout, /s3cret/);
  });

  test('an environment override is validated like the file', async () => {
    const result = await runCli(['config', 'check', EXAMPLE], { env: { PORT: 'eighty' } });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /http\.port: /);
  });

  test('without a file argument it checks --config, then RUNBOOKS_CONFIG, then the embedded defaults', async () => {
    const file = writeConfig('chosen.yaml', 'http:\n  port: 4100\n');
    const viaOption = await runCli(['--config', file, 'config', 'check']);
    assert.equal(viaOption.code, 0, viaOption.stderr);
    assert.match(viaOption.stdout, /^ok: .*chosen\.yaml\n/);
    assert.match(viaOption.stdout, /http\s+127\.0\.0\.1:4100/);

    const viaEnv = await runCli(['config', 'check'], { env: { RUNBOOKS_CONFIG: file } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.match(viaEnv.stdout, /^ok: .*chosen\.yaml\n/);

    const defaults = await runCli(['config', 'check']);
    assert.equal(defaults.code, 0, defaults.stderr);
    assert.match(defaults.stdout, /^ok: embedded defaults\n/);
    assert.match(defaults.stdout, /http\s+127\.0\.0\.1:3000/);
  });

  test('a missing file and a file that is not YAML fail with one clear line each', async () => {
    const missing = await runCli(['config', 'check', path.join(scratch, 'absent.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read the file: ENOENT/);

    const broken = await runCli(['config', 'check', writeConfig('broken.yaml', 'http: [unclosed\n')]);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /not valid YAML/);
  });

  test('a command that needs the configuration refuses a bad one with exit code 2 before doing anything', async () => {
    const file = writeConfig('bad-for-incidents.yaml', 'http:\n  port: -1\n');
    const result = await runCli(['--config', file, 'incidents']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /http\.port: /);
  });
});

describe('runbooks oncall', () => {
  test('shows who each rotation has on call at --at: the turn order, or an override', async () => {
    const turn = await runCli(['--config', EXAMPLE, 'oncall', '--at', '2026-11-10T12:00:00+01:00']);
    assert.equal(turn.code, 0, turn.stderr);
    assert.match(turn.stdout, /^ROTATION\s+ON CALL\s+SINCE\s+UNTIL\s+WHY\noncall\s+bob\s+2026-11-09T08:00:00\.000Z\s+2026-11-16T08:00:00\.000Z\s+turn\n$/);
    const holiday = await runCli(['--config', EXAMPLE, 'oncall', '--at', '2026-12-25T12:00:00+01:00', '--json']);
    assert.equal(holiday.code, 0, holiday.stderr);
    assert.deepEqual(JSON.parse(holiday.stdout), [
      { rotation: 'oncall', contact: 'bob', since: '2026-12-24T17:00:00.000Z', until: '2026-12-27T08:00:00.000Z', override: true },
    ]);
  });

  test('an --at that is no instant with an offset is refused with exit code 2, naming --at', async () => {
    const result = await runCli(['--config', EXAMPLE, 'oncall', '--at', '2026-12-25 12:00']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--at: an instant with its offset/);
  });
});
