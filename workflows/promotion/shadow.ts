/**
 * Step 5: the candidate at 0% with a share of live requests mirrored to it; agreement, shadow
 * errors and latency are judged every interval for `shadow.duration`.
 */
import { patched } from '@temporalio/workflow';
import { formatDuration } from '../../specs/duration';
import type { Promotion } from './context';
import { freshWindow, hold } from './watch';

export async function shadow(p: Promotion): Promise<'done' | 'promote_full'> {
  const { spec, state } = p;
  let next: 'done' | 'promote_full' = 'done';
  if (spec.shadow.enabled) {
    p.enter('shadow', `mirror ${spec.shadow.mirrorPercent}% for ${formatDuration(spec.shadow.duration)}`);
    // A run continued-as-new mid-shadow keeps its route and clock (before this patch it
    // restarted the shadow, so a short history limit could keep it there forever).
    const resumed = state.mirror?.variant === p.candidate && patched('shadow-resume-keeps-clock');
    if (!resumed) {
      state.heldMs = 0;
      await p.setTraffic(p.split(0), 'shadow: candidate at 0% with mirrored traffic', {
        variant: p.candidate,
        percent: spec.shadow.mirrorPercent,
        tolerance: spec.shadow.tolerance,
        threshold: spec.evaluation.threshold,
      });
      await freshWindow(p);
    }
    next = await hold(p, 'shadow', spec.shadow.duration);
  }
  state.stage = 'canary';
  state.stepIndex = 0;
  state.heldMs = 0;
  return next;
}
