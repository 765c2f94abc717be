import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

// Keyword attributes so the Temporal UI and `GET /incidents` can filter incidents by what matters at 3 a.m.
export const RunbookName = defineSearchAttributeKey('RunbookName', SearchAttributeType.KEYWORD);
export const AlertName = defineSearchAttributeKey('AlertName', SearchAttributeType.KEYWORD);
export const Severity = defineSearchAttributeKey('Severity', SearchAttributeType.KEYWORD);
export const Service = defineSearchAttributeKey('Service', SearchAttributeType.KEYWORD);
export const IncidentStatus = defineSearchAttributeKey('IncidentStatus', SearchAttributeType.KEYWORD);
export const EscalationLevel = defineSearchAttributeKey('EscalationLevel', SearchAttributeType.KEYWORD);

export const incidentSearchAttributes = [RunbookName, AlertName, Severity, Service, IncidentStatus, EscalationLevel];
