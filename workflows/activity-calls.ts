/**
 * How workflows call activities: one typed proxy, the two option sets the runbook uses, and
 * `run`, which adds the one-line summary the Temporal UI shows beside each call.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/common';
import type { Activities } from '../activities';

/** Registry, routing, analysis: short calls, retried briskly. */
export const quick: ActivityOptions = {
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '10s', maximumAttempts: 10 },
};
/** Rollouts, evaluation, integration tests: long, heartbeating while they wait. */
export const slow: ActivityOptions = {
  startToCloseTimeout: '10m',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '2s', maximumInterval: '30s', maximumAttempts: 5 },
};

const acts = proxyActivities<Activities>(quick);

export type ActivityName = keyof Activities;
export type ActivityResult<K extends ActivityName> = Awaited<ReturnType<Activities[K]>>;

/** Runs an activity with a one-line summary the Temporal UI shows beside it. */
export function run<K extends ActivityName>(
  name: K,
  summary: string,
  options: ActivityOptions,
  ...args: Parameters<Activities[K]>
): Promise<ActivityResult<K>> {
  // The proxy's mapped type loses executeWithOptions on a generic key; the call itself is typed above.
  const fn = acts[name] as unknown as {
    executeWithOptions(o: ActivityOptions, a: unknown[]): Promise<unknown>;
  };
  return fn.executeWithOptions({ ...options, summary }, args) as Promise<ActivityResult<K>>;
}
