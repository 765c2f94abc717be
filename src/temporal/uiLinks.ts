/** Direct links into the Temporal Web UI: an incident's page, and the incident list with a ready visibility query. */
import type { Config } from '../config/schema';
import { visibilityQuery, type IncidentStatusFilter } from '../incidents/operations';

type UiConfig = Pick<Config, 'http' | 'temporal'>;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * The Temporal UI's base URL: `http.temporalUiUrl`, else the UI `runbooks dev` serves (`temporal.devUiPort`) when
 * Temporal is on this machine; undefined when neither applies.
 */
export function temporalUiBase(config: UiConfig): string | undefined {
  if (config.http.temporalUiUrl) return config.http.temporalUiUrl;
  const host = config.temporal.address.replace(/:\d+$/, '');
  return LOOPBACK_HOSTS.has(host) ? `http://127.0.0.1:${config.temporal.devUiPort}` : undefined;
}

/** The incident's page: summary, current details, timeline, and the update forms. */
export function incidentUiUrl(base: string, namespace: string, workflowId: string): string {
  return `${withoutSlash(base)}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** The workflow list filtered to this deployment's incidents of `status` (the query `runbooks incidents` runs). */
export function incidentListUiUrl(base: string, config: UiConfig, status: IncidentStatusFilter): string {
  const query = visibilityQuery(status, config.temporal.taskQueue);
  return `${withoutSlash(base)}/namespaces/${encodeURIComponent(config.temporal.namespace)}/workflows?query=${encodeURIComponent(query)}`;
}

function withoutSlash(base: string): string {
  return base.replace(/\/$/, '');
}
