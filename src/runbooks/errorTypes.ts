/**
 * ApplicationFailure types that activities throw and workflows and clients react to, named once. A permanent
 * failure is thrown non-retryable with one of these, and the activity proxies list them as non-retryable too.
 */
export const ActivityErrorType = {
  /** The configured container does not exist on the Docker engine. */
  containerNotFound: 'ContainerNotFound',
  /** The image to roll back to is not on the Docker engine. */
  imageNotFound: 'ImageNotFound',
  /** The runbook names a target (`targets.<name>`) the worker's config does not have. */
  targetNotConfigured: 'TargetNotConfigured',
  /** A table or column a runbook named is not in the database. */
  unknownIdentifier: 'UnknownIdentifier',
  /** pg_restore exited non-zero: the dump or the database needs a human. */
  restoreFailed: 'RestoreFailed',
  /** At least one channel did not take a notification; retried. */
  notifyFailed: 'NotifyFailed',
  /** An argument no retry can make valid (a county name with characters the pipeline does not take). */
  invalidInput: 'InvalidInput',
  /** The ETL source answered 429; retried (the runbook retries with a longer delay). */
  etlRateLimited: 'EtlRateLimited',
  /** The ETL source's format changed (a selector matched nothing): a human must fix the pipeline. */
  etlSourceChanged: 'EtlSourceChanged',
  /** The ETL's download directory is full: retrying before it is cleaned changes nothing. */
  etlDiskFull: 'EtlDiskFull',
  /** The ETL pipeline failed otherwise (crashed…); retried. */
  etlFailed: 'EtlFailed',
  /** An IP or network the deny-list must not take (malformed, too wide, loopback, allow-listed, the runbooks' own). */
  blockRefused: 'BlockRefused',
} as const;

/** Failures no retry can fix. */
export const permanentActivityErrors: string[] = [
  ActivityErrorType.containerNotFound,
  ActivityErrorType.imageNotFound,
  ActivityErrorType.targetNotConfigured,
  ActivityErrorType.restoreFailed,
  ActivityErrorType.unknownIdentifier,
  ActivityErrorType.invalidInput,
  ActivityErrorType.etlSourceChanged,
  ActivityErrorType.etlDiskFull,
  ActivityErrorType.blockRefused,
];
