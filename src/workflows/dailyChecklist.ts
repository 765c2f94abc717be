/**
 * Runbook "Monitoring Checklist" — **Daily**, started by a Temporal Schedule (`runbooks schedules apply`):
 *   - Check Sentry for new errors   → error patterns of the backend's log new in the last `errorWindowHours`
 *   - Review Grafana dashboards     → p95 per route from the backend's /metrics over `sampleWindowSeconds`
 *   - Verify ETL jobs succeeded     → the ETL's last run succeeded, its last success under `etlSuccessWithinHours` old
 *   - Check disk space usage        → free space of the ETL's download directory at or above `minFreeDiskRatio`
 * A failed check opens an incident on the runbook its alert routes to (NewErrorPatterns, HighResponseTime,
 * ETLJobFailed, DiskSpaceLow), not waited for; the run stores its report and closes.
 */
import type { EtlDiagnosis } from '../activities/etl';
import type { IncidentInput, IncidentOutcome } from '../incidents/model';
import { policyOf } from '../runbooks/catalog';
import { docker, etl, metrics } from './activityProxies';
import { fail, pass, runChecklist, skipped, type Outcome } from './checklist/checklist';

type Policy = ReturnType<typeof policyOf<'daily-checklist'>>;
const HOUR_MS = 3_600_000;

export async function dailyChecklist(input: IncidentInput): Promise<IncidentOutcome> {
  const policy = policyOf('daily-checklist', input.policy);
  return runChecklist(input, async (rb, checklist) => {
    const { backend, etl: etlTarget } = rb.input.targets;

    await checklist.check('Check for new errors', 'NewErrorPatterns', async () => {
      if (!backend) return skipped('No backend is configured (targets.backend).');
      const found = await rb.step(docker.errorPatterns, { target: 'backend', windowMs: policy.errorWindowHours * HOUR_MS }, {
        title: 'Daily: error patterns of the backend log',
        summary: `docker logs ${backend.container}: error patterns of the last ${policy.errorWindowHours} h`,
      });
      const evidence = { errorLines: found.errorLines, newPatterns: found.patterns.filter((p) => p.isNew), linesRead: found.linesRead, windowStart: found.windowStart };
      if (!found.exists) return fail(`Container ${found.container} does not exist.`, evidence);
      if (found.newPatterns > 0) return fail(`${found.newPatterns} new error pattern(s) since ${found.windowStart}: ${found.patterns.filter((p) => p.isNew).map((p) => `"${p.pattern}" ×${p.count}`).join('; ')}.`, evidence);
      return pass(`${found.errorLines} error line(s) since ${found.windowStart}, no new pattern.`, evidence);
    });

    await checklist.check('Review response times', 'HighResponseTime', async () => {
      if (!backend) return skipped('No backend is configured (targets.backend).');
      const sample = await rb.step(metrics.sampleLatency, { target: 'backend', windowMs: policy.sampleWindowSeconds * 1000 }, {
        title: 'Daily: p95 per route',
        summary: `Sample /metrics of ${backend.container} over ${policy.sampleWindowSeconds}s`,
      });
      const routes = sample.routes.map((r) => ({ route: r.route, p95Ms: r.p95 === undefined ? null : Math.round(r.p95 * 1000), requests: r.requests }));
      if (sample.worstP95Ms === undefined) return skipped(`No requests in ${policy.sampleWindowSeconds}s: no response time to judge.`, { routes });
      const verdict = `worst p95 ${sample.worstP95Ms} ms (threshold ${policy.p95ThresholdMs} ms)`;
      return sample.worstP95Ms > policy.p95ThresholdMs ? fail(`Slow: ${verdict}.`, { worstP95Ms: sample.worstP95Ms, routes }) : pass(`${verdict}.`, { worstP95Ms: sample.worstP95Ms, routes });
    });

    let diagnosis: EtlDiagnosis | undefined;
    await checklist.check('Verify ETL jobs succeeded', 'ETLJobFailed', async () => {
      if (!etlTarget) return skipped('No ETL is configured (targets.etl).');
      diagnosis = await rb.step(etl.diagnoseEtl, { target: 'etl' }, { title: 'Daily: the ETL\'s last runs', summary: `${etlTarget.container}: log tail and status` });
      return etlSucceeded(diagnosis, policy, Date.now());
    });

    await checklist.check('Check disk space usage', 'DiskSpaceLow', async () => (diagnosis ? diskSpace(diagnosis, policy) : skipped('The ETL could not be looked at.')));
  });
}

function etlSucceeded(d: EtlDiagnosis, policy: Policy, nowMs: number): Outcome {
  const evidence = { lastRun: d.lastRun ?? null, lastSuccess: d.lastSuccess ?? null, failure: d.failure ?? null, ...(d.statusError ? { statusError: d.statusError } : {}) };
  if (!d.exists || !d.running) return fail(d.statusError ?? `Container ${d.container} is not running.`, evidence);
  if (d.lastRun && d.lastRun.ok === false) return fail(`The last run ${d.lastRun.id} failed${d.failure ? `: ${d.failure.evidence}` : ''}.`, evidence);
  const finished = d.lastSuccess?.finishedAt ? Date.parse(d.lastSuccess.finishedAt) : NaN;
  if (Number.isNaN(finished)) return fail('No successful run is recorded.', evidence);
  const ageHours = Math.round(((nowMs - finished) / HOUR_MS) * 10) / 10;
  if (ageHours > policy.etlSuccessWithinHours) return fail(`The last success was ${ageHours} h ago (over ${policy.etlSuccessWithinHours} h).`, { ...evidence, ageHours });
  return pass(`The last run succeeded ${ageHours} h ago.`, { ...evidence, ageHours });
}

function diskSpace(d: EtlDiagnosis, policy: Policy): Outcome {
  if (!d.downloads) return skipped(`The download directory's space is unknown${d.statusError ? `: ${d.statusError}` : ''}.`);
  const { dir, freeBytes, totalBytes } = d.downloads;
  const ratio = totalBytes > 0 ? Math.round((freeBytes / totalBytes) * 1000) / 1000 : 0;
  const evidence = { dir, freeBytes, totalBytes, freeRatio: ratio };
  const verdict = `${dir}: ${freeBytes} of ${totalBytes} bytes free (${Math.round(ratio * 100)}%, minimum ${Math.round(policy.minFreeDiskRatio * 100)}%)`;
  return ratio < policy.minFreeDiskRatio ? fail(`Low: ${verdict}.`, evidence) : pass(`${verdict}.`, evidence);
}
