import { isGrpcServiceError } from '@temporalio/client';
import { status as GrpcStatus } from '@grpc/grpc-js';

/** Temporal could not be reached (down, restarting, overloaded): the caller should retry later. */
export function isTemporalUnavailable(err: unknown): boolean {
  const code = grpcCode(err);
  return code === GrpcStatus.UNAVAILABLE || code === GrpcStatus.DEADLINE_EXCEEDED || code === GrpcStatus.RESOURCE_EXHAUSTED;
}

function grpcCode(err: unknown): number | undefined {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    if (isGrpcServiceError(e)) return e.code;
    if (typeof (e as { code?: unknown }).code === 'number' && (e as { details?: unknown }).details !== undefined) return (e as { code: number }).code;
  }
  return undefined;
}
