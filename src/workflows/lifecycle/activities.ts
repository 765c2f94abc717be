/** Activities the shared lifecycle uses; runbooks declare their own proxies beside their steps. */
import { proxyActivities } from '@temporalio/workflow';
import type { AuditActivities } from '../../activities/audit';
import type { NotifyActivities } from '../../activities/notify';

export const { notify } = proxyActivities<NotifyActivities>({
  startToCloseTimeout: '30s',
  heartbeatTimeout: '15s',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 8 },
});

/** Unlimited attempts: the audit trail must end up complete, and writes are idempotent. */
export const { recordTimeline } = proxyActivities<AuditActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
});
