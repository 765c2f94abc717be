import { isGrpcServiceError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
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

/**
 * A failed call on one workflow as the caller's own refusal: an unknown workflow is `notFound`, an Update its
 * validator refused with an error type in `reasons` is that reason; anything else comes back unchanged.
 */
export function asRefusal<Reason extends string>(
  err: unknown,
  reasons: Readonly<Record<string, Reason>>,
  refuse: (reason: Reason | 'not-found', message: string) => Error,
  notFound: string,
): unknown {
  if (err instanceof WorkflowNotFoundError) return refuse('not-found', notFound);
  if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
    const reason = reasons[err.cause.type ?? ''];
    if (reason) return refuse(reason, err.cause.message);
  }
  return err;
}
