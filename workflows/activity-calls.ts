/**
 * How workflows call activities: one typed proxy, the two option sets the runbook uses, and
 * `run`, which adds the one-line summary the Temporal UI shows beside each call.
 */
import { log, proxyActivities } from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/common';
import type { Activities } from '../activities';
import type { NotifyInput } from '../activities/contracts';

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

/**
 * Sends a notification without waiting for it: the step carries on (the SLO guard keeps looking,
 * a rollback acts at once) while the webhooks are tried. The activity never fails on a dead
 * endpoint; a cancellation (the promotion ended first) is only logged.
 */
export function notifyLater(summary: string, input: NotifyInput): void {
  run('notify', summary, quick, input).catch((err: unknown) =>
    log.warn(`notification ${input.event} not sent: ${err instanceof Error ? err.message : String(err)}`),
  );
}
