/**
 * Step 0, every run: verify the artifacts of the candidate and of production, learn the baseline.
 * The first run also has the worker check the spec against the platform policy, before anything
 * deploys; the policy in force is kept in the carried state.
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import type { PreparedPromotion } from '../../activities/contracts';
import { quick, run } from '../activity-calls';
import type { Promotion } from './context';
import { Ended } from './state';

export async function prepare(p: Promotion): Promise<PreparedPromotion> {
  let prep: PreparedPromotion;
  try {
    prep = await run('prepareCandidate', `verify artifacts of v${p.version} and production`, quick, {
      model: p.model,
      version: p.version,
      // What the spec needs of the router is checked against the configured one before anything deploys.
      spec: {
        shadow: p.spec.shadow,
        experiment: p.spec.experiment,
        // Only for the strategies that need more of the router (a blue-green preview by header).
        ...(p.strategy === 'canary' ? {} : { strategy: p.spec.strategy, blueGreen: p.spec.blueGreen }),
      },
      // Only a field of the activity's input: no new command, so recorded runs replay as before.
      ...(p.input.resume ? {} : { checkPolicy: p.spec }),
    });
  } catch (err) {
    // A spec that weakens the platform policy is the starter's to fix: rejected, with the rule and field.
    if (
      err instanceof ActivityFailure &&
      err.cause instanceof ApplicationFailure &&
      err.cause.type === 'PolicyRefused'
    )
      throw new Ended('rejected', err.cause.message);
    throw err;
  }
  p.prepared = prep;
  if (prep.policy) p.state.policy = prep.policy;
  if (prep.baseline?.version === p.version) {
    throw new Ended('rejected', `v${p.version} is already the production version`);
  }
  p.state.baselineVersion = prep.baseline?.version;
  return prep;
}
