import { AsyncLocalStorage } from 'node:async_hooks';
import type { Client, WorkflowSignalWithStartOptions } from '@temporalio/client';
import type { SignalDefinition } from '@temporalio/common';

/**
 * Signal-with-start that also says whether it started the workflow. The server answers that (`started` in
 * SignalWithStartWorkflowExecutionResponse, server 1.25+), but the SDK's `signalWithStart` returns only a handle. So
 * the connection's one service method is watched, and the answer of the call made inside `run` is handed back to it
 * through async-local storage: the SDK still builds the request (payloads, search attributes, summary, interceptors).
 */
const answerOfThisCall = new AsyncLocalStorage<{ started?: boolean }>();
const watched = new WeakSet<object>();

export async function signalWithStartSayingIfStarted<SignalArgs extends unknown[]>(
  client: Client,
  workflowType: string,
  options: WorkflowSignalWithStartOptions<SignalArgs> & { signal: SignalDefinition<SignalArgs> },
): Promise<{ started: boolean }> {
  watchSignalWithStart(client);
  const answer: { started?: boolean } = {};
  await answerOfThisCall.run(answer, () => client.workflow.signalWithStart(workflowType, options));
  // Absent only if the call never reached the watched method: a changed SDK, which this must not hide.
  if (answer.started === undefined) throw new Error('signal-with-start returned without the server answer being seen');
  return { started: answer.started };
}

function watchSignalWithStart(client: Client): void {
  const service = client.workflowService;
  if (watched.has(service)) return;
  const call = service.signalWithStartWorkflowExecution.bind(service);
  service.signalWithStartWorkflowExecution = (async (request: Parameters<typeof call>[0]) => {
    const response = await call(request);
    const answer = answerOfThisCall.getStore();
    if (answer) answer.started = response.started === true;
    return response;
  }) as typeof service.signalWithStartWorkflowExecution;
  watched.add(service);
}
