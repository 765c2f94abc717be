import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type Docker from 'dockerode';
import type { Pool } from 'pg';
import pino from 'pino';
import { createActivities, mergeActivities } from '../src/activities';
import { parseConfig } from '../src/config/load';

describe('the activity index', () => {
  test('refuses two activities with one name, naming both groups', () => {
    assert.throws(
      () => mergeActivities({ docker: { restartContainer: async () => undefined }, redis: { restartContainer: async () => undefined } }),
      /activity "restartContainer" is defined by both docker and redis/,
    );
  });

  test('registers every activity of every system once, without connecting to anything', () => {
    const activities = createActivities({ config: parseConfig({}), logger: pino({ level: 'silent' }), pool: {} as Pool, docker: {} as Docker });
    const names = Object.keys(activities);
    assert.ok(names.includes('rollbackContainer') && names.includes('flushRedisDb') && names.includes('recordTimeline'), names.join(', '));
    for (const [name, activity] of Object.entries(activities)) assert.equal(activity.length <= 1, true, `${name} takes one object argument`);
  });
});
