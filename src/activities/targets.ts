import { ApplicationFailure } from '@temporalio/activity';
import type { Config } from '../config/schema';
import { ActivityErrorType } from '../runbooks/errorTypes';
import type { TargetName } from '../runbooks/catalog';

/** Every activity that acts on a target takes its name; how to reach it (URLs, passwords) stays in the worker. */
export interface TargetRef<T extends TargetName = TargetName> {
  target: T;
}

/** The worker's config of a target, or a permanent failure naming the missing key. */
export function targetConfig<T extends TargetName>(config: Pick<Config, 'targets'>, target: T): NonNullable<Config['targets'][T]> {
  const found = config.targets[target];
  if (!found) {
    throw ApplicationFailure.nonRetryable(`no target "${target}" is configured (targets.${target})`, ActivityErrorType.targetNotConfigured);
  }
  return found as NonNullable<Config['targets'][T]>;
}
