/**
 * Steps 6–8: each canary step routes its weight to the candidate and holds for its pause while
 * the SLO guard and the comparison with the baseline look every interval. 100% is graduation.
 */
import { formatDuration } from '../../specs/duration';
import type { Promotion } from './context';
import { freshWindow, hold } from './watch';

export async function canary(p: Promotion): Promise<'done' | 'promote_full'> {
  const { spec, state } = p;
  let next: 'done' | 'promote_full' = 'done';
  p.enter('canary');
  for (; state.stepIndex < spec.canary.steps.length; state.stepIndex++) {
    const step = spec.canary.steps[state.stepIndex];
    if (!step) break;
    if (step.weight >= 100) break; // 100% is graduation
    if (state.weights[p.candidate] !== step.weight) {
      await p.setTraffic(
        p.split(step.weight),
        `canary step ${state.stepIndex + 1}: ${step.weight}%`,
        undefined,
      );
      state.heldMs = 0;
      state.consecutiveFailures = 0;
      state.inconclusiveStreak = 0;
      await freshWindow(p);
    }
    p.refreshDetails(
      `step ${state.stepIndex + 1}/${spec.canary.steps.length}: ${step.weight}% for ${formatDuration(step.pause)}`,
    );
    if ((await hold(p, 'canary', step.pause)) === 'promote_full') {
      next = 'promote_full';
      break;
    }
  }
  state.stage = spec.experiment.kind === 'none' ? 'graduate' : 'experiment';
  return next;
}
