import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Connection } from '@temporalio/client';
import { ensureSearchAttributes } from '../src/temporal/searchAttributes';
import { incidentSearchAttributes } from '../src/workflows/searchAttributes';
import { startDevServer, type DevServer } from './harness/temporal';

describe('search attribute registration on a server that has none of them', () => {
  let server: DevServer;
  let connection: Connection;
  before(async () => {
    server = await startDevServer({ searchAttributes: [] });
    connection = await Connection.connect({ address: server.address });
  });
  after(async () => {
    await connection?.close();
    await server?.stop();
  });

  test('registers every incident attribute as a Keyword, then finds nothing left to do', async () => {
    const added = await ensureSearchAttributes(connection, 'default');
    assert.deepEqual(added.sort(), incidentSearchAttributes.map((key) => key.name).sort());
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
    for (const key of incidentSearchAttributes) assert.ok(customAttributes?.[key.name] !== undefined, `${key.name} registered`);
    assert.deepEqual(await ensureSearchAttributes(connection, 'default'), []);
  });
});
