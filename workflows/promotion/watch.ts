/**
 * The SLO guard and the analysis, one interval at a time, for every phase that watches live
 * traffic (shadow, canary, experiment): look, judge, hold a step, and continue as new before the
 * history grows large.
 */
import { allHandlersFinished, condition, continueAsNew, patched, workflowInfo } from '@temporalio/workflow';
import type { AnalysisPhase, IntervalAnalysis } from '../../activities/contracts';
import type { MetricsSnapshot } from '../../serving/metrics/source';
import type { PromotionInput, PromotionResult, Verdict } from '../api';
import { splitFalseRollbackBudget, splitFalseRollbackRate } from '../../specs/false-rollbacks';
import { comparingWeights } from '../../specs/strategy';
import { notifyLater, quick, run } from '../activity-calls';
import { variantName } from '../deployments';
import type { Promotion } from './context';
import { Ended, pauseForHuman, throwIfRollbackRequested } from './state';

/** What a sequential look is given: its α, and with errors spanning steps the error test's α and the step. */
interface SequentialBudget {
  alpha: number;
  errorAlpha?: number;
  step?: string;
}

/** Evidence whose error test spans the promotion's steps (the activity's `promotion` totals). */
const spansSteps = (evidence: unknown): boolean =>
  typeof evidence === 'object' && evidence !== null && 'promotion' in evidence;

/**
 * The sequential comparison's share of the false-rollback budget at this look, or undefined when
 * the spec judges each interval alone (`method: interval`, or a spec from before the method).
 */
function sequentialAlpha(p: Promotion, phase: AnalysisPhase, compare: boolean): SequentialBudget | undefined {
  const { spec, state } = p;
  const a = spec.canary.analysis;
  const shift = spec.shadow.enabled && (spec.shadow.maxShift ?? 0.5) < 0.5;
  if (a.method !== 'sequential' || (phase === 'shadow' ? !shift : !(a.compare && compare))) return undefined;
  // Promotions started before the sequential analysis keep judging each interval alone.
  if (!patched('sequential-canary')) return undefined;
  const weights = comparingWeights(spec);
  const experiment = spec.experiment.kind !== 'none';
  const rate = a.falseRollbackRate ?? 0.01;
  if (phase === 'shadow')
    return { alpha: splitFalseRollbackRate(rate, weights, experiment, shift).shadow ?? 0 };
  // One error test over every comparing step (one α for the promotion) when the promotion's first
  // comparing look ran this code; a promotion already comparing per step at the upgrade goes on so.
  const first = weights.findIndex((w) => w < 100);
  const firstLook =
    state.evidence === undefined && (phase === 'experiment' ? first < 0 : state.stepIndex === first);
  if (state.errorsSpanSteps || spansSteps(state.evidence) || (firstLook && patched('errors-span-steps'))) {
    // Kept in the state: one budget split for the whole promotion, whatever a look returns.
    state.errorsSpanSteps = true;
    const budget = splitFalseRollbackBudget(rate, weights, experiment, shift);
    const alpha = phase === 'experiment' ? budget.experiment : budget.steps[state.stepIndex];
    if (alpha === null || alpha === undefined || budget.errors === null) return undefined;
    return {
      alpha,
      errorAlpha: budget.errors,
      step: phase === 'experiment' ? 'experiment' : `canary:${state.stepIndex}`,
    };
  }
  const split = splitFalseRollbackRate(rate, weights, experiment, shift);
  const alpha = phase === 'experiment' ? split.experiment : split.steps[state.stepIndex];
  return alpha === null || alpha === undefined ? undefined : { alpha };
}

/**
 * One look: the activity reads the window since the last snapshot and returns its verdicts.
 * `compare: false` (a blue-green preview or switch): the SLO guard alone judges.
 */
export async function look(p: Promotion, phase: AnalysisPhase, compare = true): Promise<IntervalAnalysis> {
  const { spec, state } = p;
  const base = p.baseline;
  const budget = sequentialAlpha(p, phase, compare);
  const result = await run('analyzeInterval', `${phase} analysis of ${p.candidate}`, quick, {
    model: p.model,
    phase,
    candidate: p.candidate,
    baseline: base ? variantName(base.version) : undefined,
    previous: state.lastSnapshot as MetricsSnapshot | undefined,
    slos: spec.slos,
    analysis: compare ? spec.canary.analysis : { ...spec.canary.analysis, compare: false },
    shadow: phase === 'shadow' ? { ...spec.shadow, threshold: spec.evaluation.threshold } : spec.shadow,
    experiment: phase === 'experiment' ? spec.experiment : undefined,
    seed: (state.seed = (state.seed ?? 0) + 1),
    experimentStart:
      phase === 'experiment' ? (state.experiment?.start as MetricsSnapshot | undefined) : undefined,
    abState: phase === 'experiment' ? state.experiment?.ab : undefined,
    ...(phase === 'experiment' && state.experiment?.carry ? { experimentCarry: state.experiment.carry } : {}),
    ...(budget !== undefined
      ? { sequential: { ...budget, evidence: state.evidence as IntervalAnalysis['evidence'] } }
      : {}),
    // Only a field of the activity's input (what each replica costs): no new command.
    serving: {
      resources: spec.serving.resources,
      device: spec.serving.device,
      instances: spec.serving.instances,
    },
  });
  state.lastSnapshot = result.snapshot;
  if (budget !== undefined) state.evidence = result.evidence;
  // A look that carries a cost verdict (the platform has prices) decides with it: a gated cost
  // can fail the look or leave it inconclusive like any verdict. Runs whose looks had no cost
  // never reach the patch, so their histories replay as they were.
  if (result.cost && !patched('cost-per-1k')) delete result.cost;
  p.judged(
    ...[result.guard, result.comparison, result.experiment, result.cost].filter((v): v is Verdict => !!v),
  );
  return result;
}

/**
 * Windows start at a traffic change: what the old weights did is not the new step's business, and
 * the step's sequential evidence starts afresh, except an error test that spans the promotion's
 * steps (the activity starts the new step's latency evidence when it sees the new step's name).
 */
export async function freshWindow(p: Promotion): Promise<void> {
  if (!spansSteps(p.state.evidence)) p.state.evidence = undefined;
  p.state.lastSnapshot = await run('snapshotMetrics', 'read router counters at the traffic change', quick, {
    model: p.model,
  });
}

/**
 * Consecutive guard failures roll back; shared by every phase that watches live traffic. A
 * sequential comparison that crossed rolls back at once: its test already controls its error over
 * every look, so waiting for a second failing look would only delay the rollback.
 */
export function judge(p: Promotion, result: IntervalAnalysis, phase: string): void {
  const { state } = p;
  const c = result.comparison;
  if (c?.result === 'fail' && c.sequential === true) {
    throw new Ended('rolled_back', `automatic rollback at ${phase}: comparison: ${c.reason}`);
  }
  const failing = [result.guard, result.comparison, result.cost].filter(
    (v): v is Verdict => v?.result === 'fail',
  );
  if (failing.length === 0) {
    state.consecutiveFailures = 0;
    return;
  }
  state.consecutiveFailures++;
  if (state.consecutiveFailures >= p.spec.canary.failureLimit) {
    const why = failing.map((v) => `${v.check}: ${v.reason}`).join('; ');
    throw new Ended(
      'rolled_back',
      `automatic rollback at ${phase} after ${state.consecutiveFailures} failed intervals — ${why}`,
    );
  }
}

/** Waits one interval, or less when a person asks for a rollback or to promote fully. */
export async function waitInterval(p: Promotion, interval: number): Promise<'look' | 'promote_full'> {
  const { controls } = p;
  await condition(() => !!controls.rollbackRequest || !!controls.promoteFull, interval);
  throwIfRollbackRequested(controls);
  return controls.promoteFull ? 'promote_full' : 'look';
}

/**
 * Holds the current traffic for `durationMs`, looking every interval. Returns when the hold is
 * over; throws Ended on rollback (manual or automatic). Pausing stops the clock, not the guard.
 */
export async function hold(
  p: Promotion,
  phase: 'shadow' | 'canary',
  durationMs: number,
  /** compare: whether the comparison judges too; where: the step's name in a rollback's reason. */
  opts: { compare?: boolean; where?: string } = {},
): Promise<'done' | 'promote_full'> {
  const { spec, state, controls } = p;
  const interval = spec.canary.interval;
  for (;;) {
    // A request handled during the look that ends the step acts now (before this patch the next
    // step's weights were set first, and only then was the rollback or promote-full seen).
    if ((controls.rollbackRequest || controls.promoteFull) && patched('controls-before-next-step')) {
      throwIfRollbackRequested(controls);
      return 'promote_full';
    }
    if (state.heldMs >= durationMs && !state.paused) {
      // Inconclusive is never a pass: extend up to the bound, then ask a human.
      const unresolved = state.lastVerdicts.some((v) => v.result === 'inconclusive');
      if (!unresolved || durationMs === 0 || controls.humanProceed) {
        controls.humanProceed = false;
        return 'done';
      }
      if (state.inconclusiveStreak >= spec.canary.analysis.maxInconclusive) {
        const why = state.lastVerdicts
          .filter((v) => v.result === 'inconclusive')
          .map((v) => `${v.check}: ${v.reason}`)
          .join('; ');
        if (spec.rollback.onInconclusive === 'rollback')
          throw new Ended('rolled_back', `inconclusive: ${why}`);
        if (spec.rollback.onInconclusive === 'proceed') return 'done';
        pauseForHuman(state, controls, why);
        p.refreshDetails();
        const paused = {
          model: p.model,
          version: p.version,
          event: 'paused_inconclusive',
          message: state.pauseReason ?? why,
          ...p.notifyRoute,
        };
        // The guard's next look no longer waits on the webhooks (before this patch it did).
        if (patched('notify-without-waiting'))
          notifyLater('analysis inconclusive: paused for a human', paused);
        else await run('notify', 'analysis inconclusive: paused for a human', quick, paused);
      }
    }
    if ((await waitInterval(p, interval)) === 'promote_full') return 'promote_full';
    const result = await look(p, phase, opts.compare ?? true);
    judge(p, result, opts.where ?? phase);
    const inconclusive = [result.guard, result.comparison, result.cost].some(
      (v) => v?.result === 'inconclusive',
    );
    if (!state.paused) {
      if (state.heldMs >= durationMs && inconclusive) state.inconclusiveStreak++;
      state.heldMs += interval;
    }
    if (!inconclusive) state.inconclusiveStreak = 0;
    p.refreshDetails();
    await rollOverIfLong(p);
  }
}

/** Long phases start a fresh run with the same state before the history grows large. */
export async function rollOverIfLong(p: Promotion): Promise<void> {
  const info = workflowInfo();
  if (!info.continueAsNewSuggested && info.historyLength <= (p.input.historyLimit ?? 10_000)) return;
  await condition(allHandlersFinished);
  // Before this patch the control flags were locals: a rollback, promote-full or human "proceed"
  // handled during the run's last look did not reach the next run and was silently lost.
  const resume = patched('carry-control-flags') ? p.state : { ...p.state, controls: undefined };
  await continueAsNew<(input: PromotionInput) => Promise<PromotionResult>>({ ...p.input, resume });
}
