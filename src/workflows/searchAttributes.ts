import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';
import { alertOf, type IncidentInput } from '../incidents/model';

// Keyword attributes so the Temporal UI and `GET /incidents` can filter incidents by what matters at 3 a.m.
export const RunbookName = defineSearchAttributeKey('RunbookName', SearchAttributeType.KEYWORD);
export const AlertName = defineSearchAttributeKey('AlertName', SearchAttributeType.KEYWORD);
export const Severity = defineSearchAttributeKey('Severity', SearchAttributeType.KEYWORD);
export const Service = defineSearchAttributeKey('Service', SearchAttributeType.KEYWORD);
export const IncidentStatus = defineSearchAttributeKey('IncidentStatus', SearchAttributeType.KEYWORD);
export const EscalationLevel = defineSearchAttributeKey('EscalationLevel', SearchAttributeType.KEYWORD);

export const incidentSearchAttributes = [RunbookName, AlertName, Severity, Service, IncidentStatus, EscalationLevel];

/** What a new run is filed under in the UI before its first workflow task runs; AlertName and Severity only when they apply. */
export function initialSearchAttributes(input: IncidentInput): SearchAttributePair[] {
  const alert = alertOf(input.trigger);
  return [
    { key: RunbookName, value: input.runbook },
    ...(alert ? [{ key: AlertName, value: alert.alertname }] : []),
    ...(input.escalation ? [{ key: Severity, value: input.escalation.severity }] : []),
    { key: Service, value: input.service },
    { key: IncidentStatus, value: 'investigating' },
    { key: EscalationLevel, value: '0' },
  ];
}
