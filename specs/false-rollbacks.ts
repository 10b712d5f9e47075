/**
 * The false-rollback budget of a promotion, split across the phases that compare the candidate
 * with the baseline: every canary step below 100%, and the experiment when there is one. Each
 * phase's tests together get its share, so by the union bound a candidate as good as the baseline
 * is rolled back by the comparison with probability at most `falseRollbackRate` over the whole
 * promotion, however long each step runs and however often it is looked at.
 *
 * The shadow, when it runs, gets a tenth for its output-shift test. Of the rest, the first step
 * gets half (with one step, all of it), the rest share the other half. The first
 * step is the smallest canary, where evidence is scarcest and a regression does the least harm to
 * catch; later steps see five to ten times the traffic, and evidence grows with traffic while the
 * cost of a smaller α grows only with its logarithm.
 *
 * This is the split of promotions that began before errors spanned steps; newer ones use
 * `splitFalseRollbackBudget` below, which splits the latency tests' share this way.
 */
export interface AlphaSplit {
  /** Per canary step (same order as spec steps); null for steps that do not compare (100%). */
  steps: (number | null)[];
  experiment: number | null;
  /** The shadow's output-shift test, when the shadow runs. */
  shadow: number | null;
}

/** The shadow's share: its shift test sees every mirrored request, so a tenth is plenty. */
const SHADOW_SHARE = 0.1;

export function splitFalseRollbackRate(
  rate: number,
  stepWeights: number[],
  experiment: boolean,
  shadow = false,
): AlphaSplit {
  if (!(rate > 0 && rate < 0.5)) throw new Error(`falseRollbackRate must be in (0, 0.5), got ${rate}`);
  const shadowAlpha = shadow ? rate * SHADOW_SHARE : null;
  rate -= shadowAlpha ?? 0;
  const comparing = stepWeights.map((w) => w < 100);
  const k = comparing.filter(Boolean).length + (experiment ? 1 : 0);
  const shares: number[] = [];
  for (let i = 0; i < k; i++) shares.push(k === 1 ? rate : i === 0 ? rate / 2 : rate / 2 / (k - 1));
  let next = 0;
  const steps = comparing.map((c) => (c ? (shares[next++] as number) : null));
  return { steps, experiment: experiment ? (shares[next] as number) : null, shadow: shadowAlpha };
}

/**
 * The split since errors span steps (`patched('errors-span-steps')`): the error test is one
 * e-process over every comparing phase of the promotion (the product of per-interval conditional
 * likelihood ratios stays a test supermartingale when the canary's share changes between steps,
 * since each factor is conditional on its own interval's total and share; docs/analysis.md), so it
 * takes one promotion-wide α instead of a share per step. The latency tests still start with
 * each step (a step's latency is judged at its own load) and share the rest as phases share it in
 * `splitFalseRollbackRate`.
 */
export interface BudgetSplit {
  /** The promotion-wide error test's α; null when no phase compares. */
  errors: number | null;
  /** Per canary step, the latency tests' α (both together); null for steps that do not compare. */
  steps: (number | null)[];
  /** The experiment phase's latency tests. */
  experiment: number | null;
  shadow: number | null;
}

/** The error test's share of the comparisons' budget (after the shadow's). */
export const ERROR_SHARE = 0.6;

export function splitFalseRollbackBudget(
  rate: number,
  stepWeights: number[],
  experiment: boolean,
  shadow = false,
): BudgetSplit {
  const phases = splitFalseRollbackRate(rate, stepWeights, experiment, shadow);
  const comparing = rate - (phases.shadow ?? 0);
  const any = phases.steps.some((s) => s !== null) || phases.experiment !== null;
  const latency = (a: number | null): number | null => (a === null ? null : a * (1 - ERROR_SHARE));
  return {
    errors: any ? comparing * ERROR_SHARE : null,
    steps: phases.steps.map(latency),
    experiment: latency(phases.experiment),
    shadow: phases.shadow,
  };
}
