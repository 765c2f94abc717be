import { isGrpcServiceError } from '@temporalio/client';
import { status as GrpcStatus } from '@grpc/grpc-js';

/** Temporal could not be reached (down, restarting, overloaded): the caller should retry later. */
export function isTemporalUnavailable(err: unknown): boolean {
  const code = grpcStatusOf(err);
  return code === GrpcStatus.UNAVAILABLE || code === GrpcStatus.DEADLINE_EXCEEDED || code === GrpcStatus.RESOURCE_EXHAUSTED;
}

/** The gRPC status code of the first error in the cause chain that carries one. */
export function grpcStatusOf(err: unknown): number | undefined {
  for (const e of causeChain(err)) {
    if (isGrpcServiceError(e)) return e.code;
    const maybe = e as { code?: unknown; details?: unknown };
    if (typeof maybe.code === 'number' && maybe.details !== undefined) return maybe.code;
  }
  return undefined;
}

/** `err`, its cause, the cause's cause… (bounded: a cyclic chain must not hang a request). */
export function causeChain(err: unknown): unknown[] {
  const seen: unknown[] = [];
  for (let e: unknown = err; e && seen.length < 10; e = (e as { cause?: unknown }).cause) seen.push(e);
  return seen;
}
