/**
 * The saga that undoes a promotion that did not graduate, in order, each step on its own so one
 * failure does not stop the rest: route all traffic to the baseline (dropping the mirror), scale
 * the candidate down, tear down staging, mark the version rejected. Runs non-cancellable.
 */
import { log, patched } from '@temporalio/workflow';
import { quick, run, slow } from '../activity-calls';
import { deploymentName, variantName } from '../deployments';
import type { Promotion } from './context';

export async function cleanup(p: Promotion, reason: string): Promise<void> {
  const { state, model, version } = p;
  // A continued run learns the baseline from prepareCandidate; ending before that (cancelled, or
  // the artifacts fail their check again) it still knows the version serving production from
  // state, and must route back to it rather than remove the model's route.
  const base =
    p.baseline ??
    (state.baselineVersion && patched('cleanup-baseline-from-state')
      ? { version: state.baselineVersion }
      : undefined);
  const routed = Object.keys(state.weights).length > 0;
  const steps: [string, () => Promise<unknown>][] = [];
  if (base && routed) {
    steps.push([
      'route all traffic to the baseline',
      () =>
        p.setTraffic(
          [
            {
              name: variantName(base.version),
              deployment: deploymentName(model, base.version, 'production'),
              weight: 100,
            },
          ],
          `rollback: ${reason}`,
          undefined,
        ),
    ]);
  } else if (!base && routed) {
    steps.push([
      'remove the route',
      () => run('removeRoute', 'remove the candidate route', quick, { model }),
    ]);
  }
  steps.push([
    'scale the candidate down',
    () =>
      run('teardown', `tear down ${p.candidate} in production`, slow, {
        name: deploymentName(model, version, 'production'),
      }),
  ]);
  steps.push([
    'tear down staging',
    () =>
      run('teardown', `tear down ${p.candidate} in staging`, slow, {
        name: deploymentName(model, version, 'staging'),
      }),
  ]);
  steps.push([
    'mark the version rejected',
    () =>
      run('updateRegistry', `mark v${version} rejected`, quick, {
        model,
        status: { version, status: 'rejected', reason },
      }),
  ]);
  for (const [what, step] of steps) {
    try {
      await step();
    } catch (err) {
      log.error(`cleanup step failed: ${what}`, { error: String(err) });
    }
  }
}
