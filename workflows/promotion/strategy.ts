/**
 * Steps 6–8, whatever the strategy: the spec's strategy is a choice of traffic steps
 * (specs/strategy.ts), and this walks them. Each step routes its weight to the candidate (and, in
 * a blue-green preview, requests with the preview header) and holds for its pause while the SLO
 * guard, and where the baseline shares the traffic the comparison, look every interval.
 *
 * - canary / linear: 5 → 25 → 50% (or equal steps); 100% is graduation.
 * - blue-green: the candidate already runs at full size; an optional preview at 0%, then the
 *   switch to 100% at once, watched by the guard while the full-size baseline stands by: a breach
 *   switches back in one route change (the cleanup's first step).
 */
import { formatDuration } from '../../specs/duration';
import { trafficSteps, type TrafficStep } from '../../specs/strategy';
import type { Stage } from '../api';
import type { Promotion } from './context';
import { freshWindow, hold } from './watch';

/** The stage a step is walked in: the strategy's name, or blue-green's two phases. */
function stageOf(p: Promotion, step: TrafficStep): Stage {
  if (p.strategy === 'blue-green') return step.weight >= 100 ? 'switch' : 'preview';
  return p.strategy === 'linear' ? 'linear' : 'canary';
}

const samePreview = (a: TrafficStep['preview'], b: TrafficStep['preview']): boolean =>
  a?.header === b?.header && a?.value === b?.value;

export async function walkSteps(p: Promotion): Promise<'done' | 'promote_full'> {
  const { spec, state } = p;
  const steps = trafficSteps(spec);
  let next: 'done' | 'promote_full' = 'done';
  // Canary and linear enter their stage once, as the canary always has; blue-green per phase.
  if (p.strategy !== 'blue-green') p.enter(p.strategy === 'linear' ? 'linear' : 'canary');
  for (; state.stepIndex < steps.length; state.stepIndex++) {
    const step = steps[state.stepIndex];
    if (!step) break;
    if (step.weight >= 100 && !step.held) break; // 100% is graduation
    const stage = stageOf(p, step);
    if (p.strategy === 'blue-green' && state.stage !== stage) p.enter(stage, step.label);
    // A canary step's weight always differs from the last one's (mirror and preview are never
    // set on a canary's route); a blue-green preview at 0% follows a shadow at 0%.
    const routed =
      state.weights[p.candidate] === step.weight &&
      state.mirror === undefined &&
      samePreview(state.preview, step.preview);
    if (!routed) {
      await p.setTraffic(p.split(step.weight), step.label, undefined, step.preview);
      state.heldMs = 0;
      state.consecutiveFailures = 0;
      state.inconclusiveStreak = 0;
      await freshWindow(p);
    }
    p.refreshDetails(
      `step ${state.stepIndex + 1}/${steps.length}: ${step.weight}% for ${formatDuration(step.pause)}`,
    );
    const where = p.strategy === 'canary' ? undefined : step.label.split(':')[0];
    if ((await hold(p, 'canary', step.pause, { compare: step.compare, where })) === 'promote_full') {
      next = 'promote_full';
      break;
    }
  }
  state.stage = spec.experiment.kind === 'none' ? 'graduate' : 'experiment';
  return next;
}
