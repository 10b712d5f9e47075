/**
 * The analysis' public face: pure functions (no I/O) that activities and the decision harness
 * call, and their defaults. The defaults are the ModelSpec's (specs/schema.ts) where the spec has
 * the field; the rest are fixed here and measured by `npm run bench:decisions`.
 */
import type { BanditParams } from './bandit';
import type { CompareParams } from './compare';
import type { SequentialParams } from './sequential';

export type {
  VariantWindow,
  Histogram,
  SloVerdict,
  ComparisonVerdict,
  TestResult,
  MetricCheck,
  Result,
} from './types';
export { checkSlo, type SloLimits } from './slo';
export {
  compareVariants,
  compareErrorRates,
  compareLatency,
  compareP99,
  mannWhitneyBinned,
  type CompareParams,
} from './compare';
export {
  abTest,
  type SequentialParams,
  type SequentialState,
  type SequentialVerdict,
  type Decision,
} from './sequential';
export {
  thompsonWeights,
  weightsFromShares,
  type BanditParams,
  type BanditVerdict,
  type ArmPosterior,
} from './bandit';
export {
  addInterval,
  addGap,
  judgeStep,
  emptyEvidence,
  startStep,
  boundPrior,
  rateLowerBound,
  errorRatioInterval,
  ALPHA_SHARES,
  type StepEvidence,
  type StepCompareParams,
} from './step-evidence';
export {
  splitFalseRollbackRate,
  splitFalseRollbackBudget,
  ERROR_SHARE,
  type AlphaSplit,
  type BudgetSplit,
} from '../../specs/false-rollbacks';
export { mergeWindows, quantileFromHistogram, toBins, rebin } from './histogram';
export {
  Rng,
  normalCdf,
  normalPpf,
  normalSf,
  betaCdf,
  betaPpf,
  binomialCdf,
  binomialPpf,
} from './distributions';

/**
 * The per-interval comparison's defaults (`canary.analysis.method: interval`) as they were before
 * 0.2, kept for the decision harness's "today" rows; the spec's defaults now serve the sequential
 * comparison (relative error allowance, no absolute margin, 5 ms latency floor):
 * - confidence 0.98: each test at each look fails only below p = 0.02 (Kayenta's level).
 * - maxErrorRateIncrease 0.005: half a percentage point of extra server errors is tolerated
 *   (absolute margin, see compareErrorRates).
 * - maxLatencyIncrease 0.1: the candidate may be up to 10% slower (Mann-Whitney tolerance band).
 * - minSamples 50: requests per variant per window before a test may judge.
 * - quantileTest true: the p99 order-statistic bound may fail a window too.
 */
export const DEFAULT_COMPARE: Readonly<CompareParams> = Object.freeze({
  confidence: 0.98,
  maxErrorRateIncrease: 0.005,
  maxLatencyIncrease: 0.1,
  minSamples: 50,
  quantileTest: true,
});

/**
 * A/B defaults (spec `experiment`): alpha 0.05 however often one looks; minimumEffect 0;
 * minRewards 100 per arm; mixtureSd 0.02 — the mSPRT is most sensitive around lifts of about
 * two percentage points (not a spec field yet; bench/decisions.ts reports power with it).
 */
export const DEFAULT_AB: Readonly<SequentialParams> = Object.freeze({
  alpha: 0.05,
  mixtureSd: 0.02,
  minimumEffect: 0,
  minRewards: 100,
});

/**
 * Bandit defaults (spec `experiment`): stop at 0.95 probability of best with ≥ 100 rewards per
 * arm; 5% exploration floor per arm; uniform Beta(1, 1) prior; 10 000 Monte Carlo draws (the
 * probability of best is then within ±0.01 with 95% confidence).
 */
export const DEFAULT_BANDIT: Readonly<BanditParams> = Object.freeze({
  confidence: 0.95,
  explorationFloor: 5,
  minRewards: 100,
  prior: Object.freeze({ alpha: 1, beta: 1 }),
  draws: 10_000,
});
