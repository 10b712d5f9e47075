/**
 * A/B on rewards with a test that may be looked at every interval: the mixture sequential
 * probability ratio test (mSPRT) of Johari, Pekelis and Walsh, "Always valid inference" (2017/2022),
 * with a normal mixing prior N(0, τ²) on the difference of reward rates and the normal
 * approximation of the difference of two Bernoulli means. Rewards in [0, 1] count as successes of
 * their trials (sum / count). Bounded rewards arrive scaled to [0, 1] by the router; a [0, 1]
 * variable with mean p has variance at most p(1 − p), so for them the test is conservative.
 *
 * With θ̂ the observed lift and v its variance, the mixture likelihood ratio against θ = θ₀ is
 *   Λ(θ₀) = √(v / (v + τ²)) · exp(τ² (θ̂ − θ₀)² / (2 v (v + τ²))).
 * Stopping the first time Λ(0) ≥ 1/α keeps the type-I error ≤ α however often one looks; the
 * always-valid p-value is the running minimum of min(1, 1/Λ(0)), the always-valid confidence
 * sequence is {θ₀ : Λ(θ₀) < 1/α} intersected over looks. v uses the pooled rate for the test
 * (its null is "no difference") and the separate rates for the interval.
 */
import type { VariantWindow } from './types';
import { round } from './round';

export interface SequentialParams {
  /** Type-I error however often the test is looked at. */
  alpha: number;
  /** Mixing prior's standard deviation τ on the lift (absolute reward-rate difference): the effect sizes the test is most sensitive to. */
  mixtureSd: number;
  /** Smallest lift worth shipping; the candidate wins only with a lift at least this large. */
  minimumEffect: number;
  /** Rewards each arm needs before any decision (the normal approximation needs data). */
  minRewards: number;
}

export interface SequentialState {
  /** Always-valid p-value so far (running minimum). */
  pValue: number;
  /** Always-valid confidence sequence so far (running intersection). */
  ci: [number, number];
}

export type Decision = 'candidate_wins' | 'baseline_wins' | 'continue';

export type SequentialVerdict = {
  check: 'ab';
  test: 'msprt';
  result: 'pass' | 'fail' | 'inconclusive';
  decision: Decision;
  /** Candidate reward rate minus baseline reward rate. */
  lift: number | null;
  /** Lift relative to the baseline's rate (0.1 = +10%), when the baseline's rate is positive. */
  relativeLift: number | null;
  ci: [number, number];
  pValue: number;
  alpha: number;
  mixtureSd: number;
  minimumEffect: number;
  rates: { candidate: number | null; baseline: number | null };
  samples: { candidate: number; baseline: number };
  reason: string;
};

function validate(p: SequentialParams): void {
  const bad = (f: string, e: string, v: unknown): never => {
    throw new Error(`A/B parameter ${f} must be ${e}, got ${String(v)}`);
  };
  if (!(p.alpha > 0 && p.alpha < 0.5)) bad('alpha', 'in (0, 0.5)', p.alpha);
  if (!(p.mixtureSd > 0)) bad('mixtureSd', '> 0', p.mixtureSd);
  if (!(p.minimumEffect >= 0)) bad('minimumEffect', '≥ 0', p.minimumEffect);
  if (!(p.minRewards >= 0)) bad('minRewards', '≥ 0', p.minRewards);
}

function checkRewards(w: VariantWindow['rewards'], who: string): void {
  if (!(w.count >= 0 && Number.isFinite(w.count))) throw new Error(`${who}.rewards.count must be ≥ 0`);
  if (!(w.sum >= 0 && w.sum <= w.count + 1e-9)) {
    throw new Error(
      `${who}.rewards.sum must be between 0 and count (${w.count}), got ${w.sum}: rewards are in [0, 1]`,
    );
  }
}

/** log Λ(θ₀) of the mixture SPRT for an estimate with variance v. */
export function logMixtureRatio(estimate: number, theta0: number, variance: number, tau: number): number {
  const t2 = tau * tau;
  const d = estimate - theta0;
  return 0.5 * Math.log(variance / (variance + t2)) + (t2 * d * d) / (2 * variance * (variance + t2));
}

/** Half-width of {θ₀ : Λ(θ₀) < 1/α} around the estimate. */
export function confidenceHalfWidth(variance: number, tau: number, alpha: number): number {
  const t2 = tau * tau;
  return Math.sqrt(
    ((2 * variance * (variance + t2)) / t2) *
      (Math.log(1 / alpha) + 0.5 * Math.log((variance + t2) / variance)),
  );
}

/**
 * One look at cumulative rewards since the experiment began. Pass the previous look's
 * `{pValue, ci}` to keep the running minimum / intersection (the always-valid reporting).
 */
export function abTest(
  candidate: VariantWindow['rewards'],
  baseline: VariantWindow['rewards'],
  p: SequentialParams,
  previous?: SequentialState,
): SequentialVerdict {
  validate(p);
  checkRewards(candidate, 'candidate');
  checkRewards(baseline, 'baseline');
  const nc = candidate.count;
  const nb = baseline.count;
  const rc = nc > 0 ? candidate.sum / nc : null;
  const rb = nb > 0 ? baseline.sum / nb : null;
  const common = {
    check: 'ab' as const,
    test: 'msprt' as const,
    alpha: p.alpha,
    mixtureSd: p.mixtureSd,
    minimumEffect: p.minimumEffect,
    rates: { candidate: rc === null ? null : round(rc), baseline: rb === null ? null : round(rb) },
    samples: { candidate: nc, baseline: nb },
  };
  const prevP = previous?.pValue ?? 1;
  const prevCi: [number, number] = previous?.ci ?? [-1, 1];
  if (rc === null || rb === null || nc < p.minRewards || nb < p.minRewards) {
    return {
      ...common,
      result: 'inconclusive',
      decision: 'continue',
      lift: rc !== null && rb !== null ? round(rc - rb) : null,
      relativeLift: null,
      ci: prevCi,
      pValue: prevP,
      reason: `collecting rewards: candidate ${nc}, baseline ${nb}, ${p.minRewards} each needed before deciding`,
    };
  }
  const lift = rc - rb;
  const pooled = (candidate.sum + baseline.sum) / (nc + nb);
  // A rate of exactly 0 or 1 has no variance; a floor of one pseudo-observation keeps Λ finite.
  const floorVar = (r: number, n: number): number => Math.max(r * (1 - r), 1 / (n + 1)) / n;
  const vTest = Math.max(pooled * (1 - pooled), 1 / (nc + nb + 1)) * (1 / nc + 1 / nb);
  const vCi = floorVar(rc, nc) + floorVar(rb, nb);
  const logL = logMixtureRatio(lift, 0, vTest, p.mixtureSd);
  const pNow = Math.min(1, Math.exp(-logL));
  const pValue = Math.min(prevP, pNow);
  const half = confidenceHalfWidth(vCi, p.mixtureSd, p.alpha);
  const ci: [number, number] = [
    round(Math.max(prevCi[0], lift - half)),
    round(Math.min(prevCi[1], lift + half)),
  ];
  const significant = pValue <= p.alpha;
  let decision: Decision = 'continue';
  let reason: string;
  const pct = (x: number): string => `${(x * 100).toFixed(2)} pp`;
  if (significant && lift > 0 && lift >= p.minimumEffect) {
    decision = 'candidate_wins';
    reason = `candidate earns more: lift ${pct(lift)} (always-valid ${1 - p.alpha} interval ${pct(ci[0])} … ${pct(ci[1])}), p = ${round(pValue, 3)} ≤ α = ${p.alpha}`;
  } else if (significant && lift < 0) {
    decision = 'baseline_wins';
    reason = `candidate earns less: lift ${pct(lift)} (interval ${pct(ci[0])} … ${pct(ci[1])}), p = ${round(pValue, 3)} ≤ α = ${p.alpha}`;
  } else if (p.minimumEffect > 0 && ci[1] < p.minimumEffect) {
    decision = 'baseline_wins';
    reason = `candidate cannot reach the minimum effect ${pct(p.minimumEffect)}: the always-valid interval ends at ${pct(ci[1])}`;
  } else {
    reason = `no decision yet: lift ${pct(lift)} (interval ${pct(ci[0])} … ${pct(ci[1])}), p = ${round(pValue, 3)} > α = ${p.alpha}${significant ? ` or lift below the minimum effect ${pct(p.minimumEffect)}` : ''}`;
  }
  return {
    ...common,
    result: decision === 'candidate_wins' ? 'pass' : decision === 'baseline_wins' ? 'fail' : 'inconclusive',
    decision,
    lift: round(lift),
    relativeLift: rb > 0 ? round(lift / rb) : null,
    ci,
    pValue: round(pValue),
    reason,
  };
}
