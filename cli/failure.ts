/**
 * What a failed command prints: its own words, then the root cause, then the chain that led there.
 * A workflow failure's message is "Workflow execution failed"; what happened sits in its `cause`s
 * (an activity's failure, then the error that activity threw).
 */
import { ActivityFailure, ChildWorkflowFailure, WorkflowFailedError } from '@temporalio/client';

function label(err: unknown): string {
  if (err instanceof WorkflowFailedError) return 'workflow failed';
  if (err instanceof ActivityFailure) return `activity ${err.activityType ?? ''} failed`.replace('  ', ' ');
  if (err instanceof ChildWorkflowFailure) return `child workflow ${err.execution.workflowId} failed`;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The messages from the outermost error to its root cause, without repeats. */
export function causeChain(err: unknown): string[] {
  const chain: string[] = [];
  const seen = new Set<unknown>();
  for (let e: unknown = err; e !== undefined && e !== null && !seen.has(e);) {
    seen.add(e);
    const text = label(e).trim();
    if (text && chain.at(-1) !== text) chain.push(text);
    e = e instanceof Error ? e.cause : undefined;
  }
  return chain;
}

/** `rollback of m failed: <root cause>` and, when there were steps between, the chain on a second line. */
export function failureMessage(err: unknown): string {
  const chain = causeChain(err);
  if (chain.length <= 1) return chain[0] ?? String(err);
  const [first, root] = [chain[0]!, chain.at(-1)!];
  const head = /^(workflow|activity|child workflow) /.test(first) ? root : `${first}: ${root}`;
  return chain.length > 2 ? `${head}\n  cause chain: ${chain.join(' ← ')}` : head;
}
