// Passwords in URLs never reach a log or workflow history: a migration's output and a deployment's log lines pass
// through redactUrlsIn before they are returned by an activity.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { redactUrlsIn } from '../src/logging/redact';

describe('redactUrlsIn', () => {
  test('redacts the password of every URL in a text and leaves the rest of it as it was', () => {
    assert.equal(
      redactUrlsIn('ERROR connect postgres://app:s3cret@db:5432/audit?sslmode=require failed; redis://:hunter2@cache:6379/0 too'),
      'ERROR connect postgres://app:***@db:5432/audit?sslmode=require failed; redis://:***@cache:6379/0 too',
    );
    assert.equal(redactUrlsIn('GET http://127.0.0.1:18180/health status=200'), 'GET http://127.0.0.1:18180/health status=200');
    assert.equal(redactUrlsIn('postgres://u@h/db?password=s3cret'), 'postgres://u@h/db?password=***');
  });
});
