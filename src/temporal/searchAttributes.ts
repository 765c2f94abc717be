import type { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { incidentSearchAttributes } from '../workflows/searchAttributes';

/**
 * Registers the incident search attributes on the namespace if they are missing. Idempotent: safe on every
 * start-up, against the dev server or an existing cluster.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = incidentSearchAttributes.filter((key) => !customAttributes?.[key.name]);
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(
      missing.map((key) => [key.name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD]),
    ),
  });
  return missing.map((key) => key.name);
}
