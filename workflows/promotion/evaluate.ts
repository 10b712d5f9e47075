/** Step 1: the candidate against production on the held-out set, offline. */
import type { PreparedPromotion } from '../../activities/contracts';
import { run, slow } from '../activity-calls';
import type { Promotion } from './context';
import { Ended } from './state';

export async function evaluate(p: Promotion, prep: PreparedPromotion): Promise<void> {
  const { spec, state } = p;
  p.enter('evaluate', 'offline evaluation against production');
  const verdict = await run('evaluate', `evaluate v${p.version} on ${spec.evaluation.metric}`, slow, {
    model: p.model,
    candidate: prep.candidate,
    baseline: prep.baseline,
    evaluation: spec.evaluation,
  });
  state.evaluation = verdict;
  p.judged(verdict);
  if (verdict.result !== 'pass') throw new Ended('rejected', `evaluation failed: ${verdict.reason}`);
  state.stage = 'approve';
}
