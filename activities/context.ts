/**
 * Activity-side helpers: heartbeats and cancellation when running inside Temporal, harmless
 * no-ops when an activity function is called directly (unit tests, the CLI).
 */
import { Context } from '@temporalio/activity';

function current(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

export function heartbeat(details?: unknown): void {
  current()?.heartbeat(details);
}

export function cancellationSignal(): AbortSignal | undefined {
  return current()?.cancellationSignal;
}

/** Who is running this activity: its workflow, the activity id and the time it has left (ms). */
export function activityInfo():
  | { workflow?: { id: string; runId: string }; activityId: string; attempt: number; msLeft?: number }
  | undefined {
  const ctx = current();
  if (!ctx) return undefined;
  const {
    workflowExecution: wf,
    activityId,
    attempt,
    startToCloseTimeoutMs,
    currentAttemptScheduledTimestampMs,
  } = ctx.info;
  // From the attempt's scheduling, not its start: a bound on the safe side.
  const msLeft = startToCloseTimeoutMs
    ? currentAttemptScheduledTimestampMs + startToCloseTimeoutMs - Date.now()
    : undefined;
  return { ...(wf ? { workflow: { id: wf.workflowId, runId: wf.runId } } : {}), activityId, attempt, msLeft };
}
