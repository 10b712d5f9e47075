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
