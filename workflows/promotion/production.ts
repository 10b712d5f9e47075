/**
 * Before live traffic: the candidate joins the baseline in production (redeployed if a continued
 * run finds it gone), and the baseline is made sure to run without restarting what serves.
 */
import type { PreparedPromotion } from '../../activities/contracts';
import { run, slow } from '../activity-calls';
import { deployInput } from '../deployments';
import type { Promotion } from './context';

export async function deployToProduction(p: Promotion, prep: PreparedPromotion): Promise<void> {
  const { spec, model } = p;
  await run('deploy', `deploy v${p.version} to production`, slow, {
    // Blue-green: the candidate comes up at full size beside the baseline (that is the strategy).
    ...deployInput(model, prep.candidate, 'production', spec.serving, {
      fullSize: p.strategy === 'blue-green',
    }),
    // Only a field of the activity's input: the servers keep drift histograms for the watch.
    ...(spec.watch?.drift.enabled && spec.watch.duration > 0
      ? { drift: { evaluation: spec.evaluation, settings: spec.watch.drift } }
      : {}),
  });
  const base = prep.baseline;
  if (base) {
    await run(
      'deploy',
      `ensure baseline v${base.version} runs in production`,
      slow,
      deployInput(model, base, 'production', spec.serving, { ifMissing: true }),
    );
  }
}
