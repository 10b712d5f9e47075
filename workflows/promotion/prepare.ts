/** Step 0, every run: verify the artifacts of the candidate and of production, learn the baseline. */
import type { PreparedPromotion } from '../../activities/contracts';
import { quick, run } from '../activity-calls';
import type { Promotion } from './context';
import { Ended } from './state';

export async function prepare(p: Promotion): Promise<PreparedPromotion> {
  const prep = await run('prepareCandidate', `verify artifacts of v${p.version} and production`, quick, {
    model: p.model,
    version: p.version,
    // What the spec needs of the router is checked against the configured one before anything deploys.
    spec: {
      shadow: p.spec.shadow,
      experiment: p.spec.experiment,
      // Only for the strategies that need more of the router (a blue-green preview by header).
      ...(p.strategy === 'canary' ? {} : { strategy: p.spec.strategy, blueGreen: p.spec.blueGreen }),
    },
  });
  p.prepared = prep;
  if (prep.baseline?.version === p.version) {
    throw new Ended('rejected', `v${p.version} is already the production version`);
  }
  p.state.baselineVersion = prep.baseline?.version;
  return prep;
}
