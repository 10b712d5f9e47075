/**
 * The canary comparison over a whole step, anytime-valid: each look adds the interval's counts to
 * evidence that started with the step, and judges everything the step has seen. The evidence is
 * a handful of running log-likelihood ratios (eprocess.ts), small enough to carry in the
 * workflow's state across continue-as-new; a router restart is a gap (nothing added), not a reset.
 *
 * Three tests, each a mixture e-process that fails once it crosses 1/α — one crossing is decisive,
 * since the test already controls its error however often it is looked at:
 * - **error rate**: is the candidate's error rate above max((1 + r)·baseline, baseline + δ)?
 *   (r = maxRelativeErrorRateIncrease, δ = maxErrorRateIncrease). Errors are counted as events;
 *   the absolute margin δ becomes a ratio through an anytime-valid lower bound on the baseline's
 *   rate, which takes a tenth of the test's α (union bound). With `errorAlpha` (promotion-wide
 *   errors, specs/false-rollbacks.ts) this test's evidence runs on across the promotion's steps:
 *   one e-process at one α instead of a fresh one per step at a share of the step's.
 * - **latency order** ("candidate slower"): at each histogram bound b, does the candidate exceed
 *   max(b·(1 + ε), b + floor) more often than the baseline exceeds b? The average of the per-bound
 *   e-processes is the test. Stochastic order within the tolerance is the null, so a 5% slowdown
 *   under a 10% band never fails, while a heavier tail fails even at the same median.
 * - **latency equality** (two-sided): also fails when the candidate is faster or narrower than the
 *   tolerance allows at some bound: a different distribution (same median, another shape) is a
 *   different system, which is what spinnaker/kayenta#780 asks a canary to notice.
 * Latency thresholds between bucket bounds are interpolated (uniform within a bucket, as
 * Prometheus' histogram_quantile assumes).
 */
import {
  emptyCell,
  logMean,
  logMixture,
  meanBoundaryHalfWidth,
  nullShare,
  UPWARD_TILTS,
  updateCell,
  type CellState,
} from './eprocess';
import { normalCdf } from './distributions';
import { addEarlyLook, EARLY_LOOKS, earlyReport, type EarlyLooksState } from './early-looks';
import { checkCounts, checkMargins, paramError } from './compare';
import { quantileOrNull, toBins } from './histogram';
import { round } from './round';
import type { ComparisonVerdict, Result, TestResult, VariantWindow } from './types';

export interface StepCompareParams {
  /** The step's share of the promotion's false-rollback budget (all three tests together). */
  alpha: number;
  /** Allowed absolute increase of the error rate (0.005 = half a percentage point). */
  maxErrorRateIncrease: number;
  /** Allowed relative increase of the error rate (0.2 = 20% more errors than the baseline). */
  maxRelativeErrorRateIncrease: number;
  /** Allowed relative increase of latency (0.1 = 10% slower). */
  maxLatencyIncrease: number;
  /** Latency differences below this many milliseconds never fail. */
  minLatencyIncreaseMs: number;
  /** Requests per variant before a look may pass (a fail needs no minimum: the test is valid). */
  minSamples: number;
  /** Test equality in distribution as well as order (default true). */
  latencyEquality?: boolean;
  /**
   * The error test's α over the whole promotion, its evidence spanning every comparing step
   * (splitFalseRollbackBudget); `alpha` is then the step's latency tests' alone. Absent: the error
   * test takes ALPHA_SHARES.errors of `alpha` and starts afresh with each step (as before 0.3).
   */
  errorAlpha?: number;
  /**
   * The step a look belongs to (with `errorAlpha`): evidence of another step is carried into this
   * one, the error test's whole and the latency tests' started afresh.
   */
  step?: string;
}

/**
 * How a step's α is shared when the error test starts with each step (evidence from before 0.3):
 * errors 60%, latency order and latency equality 20% each.
 */
export const ALPHA_SHARES = Object.freeze({ errors: 0.6, order: 0.2, equality: 0.2 });

/** Requests and errors of one variant. */
interface Counts {
  requests: number;
  errors: number;
}

/** Running totals of one variant over the step. */
interface Totals {
  requests: number;
  errors: number;
  /** Per-bucket (non-cumulative) latency counts on `edges`, +Inf last. */
  bins: number[];
}

/** What a step has seen, carried look to look (JSON-safe: no Infinity, no Map). */
export interface StepEvidence {
  version: 1;
  /** Intervals added, and intervals that were gaps (router restart, missing series). */
  looks: number;
  gaps: number;
  /** Finite latency bucket bounds in seconds, ascending (the +Inf bucket is implied). */
  edges: number[];
  candidate: Totals;
  baseline: Totals;
  errors: CellState;
  order: CellState[];
  /** Downward cells of the equality test (its upward half is `order`). */
  lower: CellState[];
  /** Largest log e-value reached so far per test: once past log(1/α) the test has failed. */
  maxLog: { errors: number; order: number; equality: number };
  /** The first look at which each test crossed, if it did. */
  crossedAt: { errors?: number; order?: number; equality?: number };
  /** The step this evidence is for (promotion-wide errors only). */
  step?: string;
  /**
   * The latency tests' log e-values when their bounds are weighted by a predictable prior
   * (boundPrior); absent in evidence from before it, whose tests average every bound alike.
   */
  latencyMix?: { order: number; equality: number };
  /**
   * Promotion-wide errors: present when `errors`, `maxLog.errors` and `crossedAt.errors` span the
   * promotion's comparing steps so far; these are the error test's totals over all of them.
   */
  promotion?: {
    steps: number;
    looks: number;
    candidate: Counts;
    baseline: Counts;
    /** The error test restarted at each step since the first (RESTART_WEIGHTS), one cell each. */
    restarts?: CellState[];
  };
  /**
   * The promotion's first looks at errors as an exact group-sequential test (early-looks.ts), at
   * EARLY_LOOKS.share of the error test's α; the e-process keeps the rest. Absent in evidence from
   * before it, whose e-process keeps the whole error α: a running promotion never gets more.
   */
  early?: EarlyLooksState;
}

/**
 * How the promotion-wide error test weighs its evidence: the e-process started with the first
 * comparing step gets 0.8; the one started at the second step 0.1, at the third 0.05, and so on
 * (halving: they sum to 1 however many steps come). Each is a test supermartingale started at a
 * stopping time (1 before it), so their fixed-weight average is one too. Why not the first alone:
 * under a healthy candidate its e-value falls step after step (to ~1e-3 by the 25% step at 200
 * rps), and a regression that appears only at a later step (one that shows under load) would
 * first have to climb back from there; a restarted test starts that step at 1.
 */
export const RESTART_WEIGHTS = Object.freeze({ first: 0.8, later: 0.2 });
const restartWeight = (i: number): number => RESTART_WEIGHTS.later * 2 ** -(i + 1);

/** Does the error test of this evidence span steps, at `p.errorAlpha`? */
const spans = (ev: StepEvidence, p: StepCompareParams): boolean =>
  p.errorAlpha !== undefined && ev.promotion !== undefined;

/** The counts the error test judges: the promotion's when it spans steps, else the step's. */
function errorCounts(ev: StepEvidence): { candidate: Counts; baseline: Counts } {
  return ev.promotion ?? { candidate: ev.candidate, baseline: ev.baseline };
}

const pct = (x: number | null, digits = 3): string => (x === null ? 'n/a' : `${(x * 100).toFixed(digits)}%`);
const msOf = (s: number | null): number | null => (s === null ? null : round(s * 1000, 4));

function emptyTotals(edges: number[]): Totals {
  return { requests: 0, errors: 0, bins: new Array<number>(edges.length + 1).fill(0) };
}

/** Finite bucket bounds of a histogram (its +Inf bucket dropped), ascending. */
function edgesOf(w: VariantWindow): number[] {
  return toBins(w.latency)
    .map((b) => b.upper)
    .filter((u) => Number.isFinite(u));
}

export function emptyEvidence(
  edges: number[],
  p?: Pick<StepCompareParams, 'errorAlpha' | 'step'>,
): StepEvidence {
  const promotion =
    p?.errorAlpha !== undefined
      ? {
          step: p.step,
          early: { looks: [] },
          promotion: {
            steps: 1,
            looks: 0,
            candidate: { requests: 0, errors: 0 },
            baseline: { requests: 0, errors: 0 },
          },
        }
      : {};
  return {
    ...promotion,
    version: 1,
    looks: 0,
    gaps: 0,
    edges,
    candidate: emptyTotals(edges),
    baseline: emptyTotals(edges),
    errors: emptyCell(UPWARD_TILTS),
    order: edges.map(() => emptyCell(UPWARD_TILTS)),
    lower: edges.map(() => emptyCell(UPWARD_TILTS)),
    maxLog: { errors: 0, order: 0, equality: 0 },
    crossedAt: {},
    latencyMix: { order: 0, equality: 0 },
  };
}

/**
 * The evidence a new step starts from when errors span steps: the error test's whole (its cell,
 * its largest e-value, its totals), the latency tests' and the step's own counts afresh.
 */
export function startStep(ev: StepEvidence, step: string | undefined, edges: number[]): StepEvidence {
  const fresh = emptyEvidence(edges);
  return {
    ...fresh,
    step,
    errors: ev.errors,
    maxLog: { ...fresh.maxLog, errors: ev.maxLog.errors },
    ...(ev.early ? { early: ev.early } : {}),
    ...(ev.promotion
      ? {
          promotion: {
            ...ev.promotion,
            steps: ev.promotion.steps + 1,
            restarts: [...(ev.promotion.restarts ?? []), emptyCell(UPWARD_TILTS)],
          },
        }
      : {}),
  };
}

/** Per-bucket counts of a window on `edges` (+Inf last); null when its bounds differ. */
function binCounts(w: VariantWindow, edges: number[]): number[] | null {
  const bins = toBins(w.latency);
  if (bins.length === 0) return new Array<number>(edges.length + 1).fill(0);
  if (bins.length !== edges.length + 1) return null;
  for (let i = 0; i < edges.length; i++) if (bins[i]?.upper !== edges[i]) return null;
  return bins.map((b) => b.count);
}

/** Observations above `threshold` seconds, interpolating inside the bucket that holds it. */
export function countAbove(bins: number[], edges: number[], threshold: number): number {
  let above = 0;
  for (let i = 0; i < bins.length; i++) {
    const lower = i === 0 ? 0 : (edges[i - 1] as number);
    const upper = i < edges.length ? (edges[i] as number) : Infinity;
    const c = bins[i] ?? 0;
    if (c === 0 || upper <= threshold) continue;
    if (lower >= threshold || !Number.isFinite(upper)) above += c;
    else above += (c * (upper - threshold)) / (upper - lower);
  }
  return above;
}

/** The candidate's threshold that the baseline's bound b is compared with, upward and downward. */
function slowerThreshold(b: number, p: StepCompareParams): number {
  return Math.max(b * (1 + p.maxLatencyIncrease), b + p.minLatencyIncreaseMs / 1000);
}
function fasterThreshold(b: number, p: StepCompareParams): number {
  return Math.min(b / (1 + p.maxLatencyIncrease), b - p.minLatencyIncreaseMs / 1000);
}

/**
 * Anytime-valid lower bound of a rate from x events in n trials: the smallest p0 that a
 * one-sided mixture e-process of "rate ≤ p0" has not rejected at level a. Cumulative counts are
 * enough because p0 is the same in every interval (the product of likelihood ratios telescopes).
 */
export function rateLowerBound(x: number, n: number, a: number): number {
  if (!(n > 0) || x <= 0) return 0;
  const logE = (p0: number): number => {
    const cell = UPWARD_TILTS.map((t) => x * Math.log(t.ratio) - n * Math.log1p(p0 * (t.ratio - 1)));
    return logMixture(cell, UPWARD_TILTS);
  };
  const target = Math.log(1 / a);
  let lo = 0;
  let hi = x / n;
  if (logE(hi) >= target) return hi;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (logE(mid) >= target) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** The null ratio of the error test at this look: max(1 + r, 1 + δ / lower bound of the baseline's rate). */
function errorNullRatio(
  ev: StepEvidence,
  bWin: { requests: number; errors: number },
  p: StepCompareParams,
): number {
  const relative = 1 + p.maxRelativeErrorRateIncrease;
  if (!(p.maxErrorRateIncrease > 0)) return relative;
  // The bound uses what the baseline showed before this interval (predictable); the step's first
  // look has nothing before it and uses its own interval.
  const seen = errorCounts(ev).baseline;
  const before = seen.requests > 0 ? seen : bWin;
  const lower = rateLowerBound(before.errors, before.requests, marginAlpha(p, ev));
  return lower > 0 ? Math.max(relative, 1 + p.maxErrorRateIncrease / lower) : Infinity;
}

/**
 * A test's α. Per step (before 0.3): the step's α split by ALPHA_SHARES. Errors spanning steps:
 * the promotion-wide `errorAlpha`, and the step's `alpha` shared by the latency tests (all of it
 * to the order test when the equality test is off). With an absolute margin the error test gives
 * a tenth of its α to the baseline rate's lower bound.
 */
function testAlpha(p: StepCompareParams, test: keyof typeof ALPHA_SHARES, ev: StepEvidence): number {
  if (test === 'errors') return errorAlphas(p, ev).eProcess;
  if (!spans(ev, p)) return p.alpha * ALPHA_SHARES[test];
  return p.latencyEquality === false ? p.alpha : p.alpha / 2;
}

/**
 * The error test's α as a whole, and its parts: the early looks' (EARLY_LOOKS.share, when the
 * evidence has them) and the e-process'. Each part fails the test on its own; a union bound.
 */
function errorAlphas(
  p: StepCompareParams,
  ev: StepEvidence,
): { whole: number; early: number; eProcess: number } {
  const margin = p.maxErrorRateIncrease > 0 ? 0.9 : 1;
  const whole = (spans(ev, p) ? (p.errorAlpha as number) : p.alpha * ALPHA_SHARES.errors) * margin;
  const early = spans(ev, p) && ev.early ? whole * EARLY_LOOKS.share : 0;
  return { whole, early, eProcess: whole - early };
}
const marginAlpha = (p: StepCompareParams, ev: StepEvidence): number =>
  spans(ev, p) ? (p.errorAlpha as number) * 0.1 : p.alpha * ALPHA_SHARES.errors * 0.1;

export function validateStepParams(p: StepCompareParams): void {
  if (!(p.alpha > 0 && p.alpha < 0.5)) paramError('alpha', 'in (0, 0.5)', p.alpha);
  if (p.errorAlpha !== undefined && !(p.errorAlpha > 0 && p.errorAlpha < 0.5))
    paramError('errorAlpha', 'in (0, 0.5)', p.errorAlpha);
  checkMargins(p);
  if (!(p.maxRelativeErrorRateIncrease >= 0))
    paramError('maxRelativeErrorRateIncrease', '≥ 0', p.maxRelativeErrorRateIncrease);
  if (!(p.minLatencyIncreaseMs >= 0)) paramError('minLatencyIncreaseMs', '≥ 0', p.minLatencyIncreaseMs);
}

/**
 * Adds one interval (the windows of candidate and baseline since the previous look) to the step's
 * evidence. Pure: returns new evidence. `evidence` undefined starts the step.
 */
export function addInterval(
  evidence: StepEvidence | undefined,
  candidate: VariantWindow,
  baseline: VariantWindow,
  p: StepCompareParams,
): StepEvidence {
  validateStepParams(p);
  checkCounts(candidate, 'candidate');
  checkCounts(baseline, 'baseline');
  const edges = evidence?.edges ?? (edgesOf(baseline).length > 0 ? edgesOf(baseline) : edgesOf(candidate));
  let ev: StepEvidence = structuredClone(evidence ?? emptyEvidence(edges, p));
  // A look of the next step: the error test runs on, the latency tests start with the step. Evidence
  // from before errors spanned steps (no `promotion`) keeps the per-step split: never more α.
  if (spans(ev, p) && p.step !== ev.step) {
    const next = edgesOf(baseline).length > 0 ? edgesOf(baseline) : edgesOf(candidate);
    ev = startStep(ev, p.step, next.length > 0 ? next : ev.edges);
  }
  const cBins = binCounts(candidate, ev.edges);
  const bBins = binCounts(baseline, ev.edges);
  if (!cBins || !bBins) throw new Error('latency histograms changed their bucket bounds within a step');
  ev.looks++;

  // Errors: the candidate's share of this interval's errors against its null share.
  const ratio = errorNullRatio(ev, baseline, p);
  const addErrors = (cell: CellState): CellState =>
    updateCell(
      cell,
      UPWARD_TILTS,
      candidate.errors,
      candidate.errors + baseline.errors,
      nullShare(candidate.requests, baseline.requests, ratio),
    );
  ev.errors = addErrors(ev.errors);
  if (ev.promotion?.restarts) ev.promotion.restarts = ev.promotion.restarts.map(addErrors);
  if (ev.early && spans(ev, p)) {
    ev.early = addEarlyLook(
      ev.early,
      {
        x: candidate.errors,
        t: candidate.errors + baseline.errors,
        theta0: nullShare(candidate.requests, baseline.requests, ratio),
      },
      errorAlphas(p, ev).early,
    );
  }

  // Latency: per bound, the candidate's exceedances of the shifted bound against the baseline's.
  const oldOrder = [...ev.order];
  const oldLower = [...ev.lower];
  const nc = cBins.reduce((s, x) => s + x, 0);
  const nb = bBins.reduce((s, x) => s + x, 0);
  const share = nullShare(nc, nb, 1);
  ev.edges.forEach((b, i) => {
    const bAbove = countAbove(bBins, ev.edges, b);
    const up = slowerThreshold(b, p);
    if (up <= (ev.edges[ev.edges.length - 1] as number)) {
      const cAbove = countAbove(cBins, ev.edges, up);
      ev.order[i] = updateCell(ev.order[i] as CellState, UPWARD_TILTS, cAbove, cAbove + bAbove, share);
    }
    const down = fasterThreshold(b, p);
    if (down > 0) {
      // "Candidate faster": fewer candidate exceedances of the lowered bound than the null allows,
      // i.e. a larger baseline share; tested as upward tilts of the baseline's share.
      const cAbove = countAbove(cBins, ev.edges, down);
      ev.lower[i] = updateCell(ev.lower[i] as CellState, UPWARD_TILTS, bAbove, cAbove + bAbove, 1 - share);
    }
  });
  if (ev.latencyMix) {
    // Weighted by what the baseline showed before this interval (predictable), so each factor
    // still has conditional expectation at most 1 under the null.
    const prior = boundPrior(ev.baseline.bins, ev.edges);
    const half = prior.map((w) => w / 2);
    ev.latencyMix = {
      order: ev.latencyMix.order + logFactor(oldOrder, ev.order, prior),
      equality:
        ev.latencyMix.equality +
        logFactor([...oldOrder, ...oldLower], [...ev.order, ...ev.lower], [...half, ...half]),
    };
  }

  for (const t of [candidate, baseline]) {
    const tot = t === candidate ? ev.candidate : ev.baseline;
    const bins = t === candidate ? cBins : bBins;
    tot.requests += t.requests;
    tot.errors += t.errors;
    tot.bins = tot.bins.map((x, i) => x + (bins[i] ?? 0));
  }
  if (ev.promotion) {
    const pr = ev.promotion;
    pr.looks++;
    pr.candidate = {
      requests: pr.candidate.requests + candidate.requests,
      errors: pr.candidate.errors + candidate.errors,
    };
    pr.baseline = {
      requests: pr.baseline.requests + baseline.requests,
      errors: pr.baseline.errors + baseline.errors,
    };
  }
  const now = currentLogs(ev);
  for (const k of ['errors', 'order', 'equality'] as const) {
    ev.maxLog[k] = Math.max(ev.maxLog[k], now[k]);
    const early = k === 'errors' && ev.early?.crossedAt !== undefined;
    if (ev.crossedAt[k] === undefined && (early || ev.maxLog[k] >= Math.log(1 / testAlpha(p, k, ev))))
      ev.crossedAt[k] = ev.looks;
  }
  return ev;
}

/** A look with missing data: nothing is added, and the step's evidence stands. */
export function addGap(evidence: StepEvidence | undefined, step?: string): StepEvidence | undefined {
  if (!evidence) return evidence;
  // A gap at a new step's first look is that step's (errors spanning steps carry the evidence in).
  const ev =
    evidence.promotion && step !== undefined && step !== evidence.step
      ? startStep(evidence, step, evidence.edges)
      : evidence;
  return { ...ev, gaps: ev.gaps + 1 };
}

/**
 * The prior weight of each latency bound at the next interval, from the baseline's counts so far:
 * the bounds that the baseline's requests exceed between 0.3% and 99.7% of the time (PRIOR_RANGE),
 * where a slowdown or a change of shape can show at a canary's counts, get full weight; the rest
 * (a router histogram has 27 bounds, 0.5 ms to 10 s, most far from any one model's latencies) a
 * twentieth, so that no bound's evidence is ever thrown away. Before the baseline has
 * PRIOR_MIN_REQUESTS requests, every bound alike. Measured against the plain average of all
 * bounds in docs/analysis.md.
 */
export const PRIOR_RANGE = Object.freeze({ above: 0.003, below: 0.997 });
const PRIOR_FLOOR = 0.05;
const PRIOR_MIN_REQUESTS = 200;
export function boundPrior(bins: number[], edges: number[]): number[] {
  const n = bins.reduce((s, x) => s + x, 0);
  if (n < PRIOR_MIN_REQUESTS) return edges.map(() => 1 / edges.length);
  const raw = edges.map((b) => {
    const q = countAbove(bins, edges, b) / n;
    return q >= PRIOR_RANGE.above && q <= PRIOR_RANGE.below ? 1 : PRIOR_FLOOR;
  });
  const sum = raw.reduce((s, x) => s + x, 0);
  return raw.map((x) => x / sum);
}

/**
 * One interval's factor of a mixture over cells with predictable weights `prior`: the average of
 * the cells' factors weighted by prior × evidence so far (the posterior), i.e.
 * log Σ π·E_new − log Σ π·E_old. With a fixed prior the running sum telescopes to the ordinary
 * mixture Σ π·E; with a prior that moves, it is still a product of factors of expectation ≤ 1.
 */
function logFactor(before: CellState[], after: CellState[], prior: number[]): number {
  const sum = (cells: CellState[]): number =>
    logSum(cells.map((c, i) => Math.log(prior[i] as number) + logMixture(c, UPWARD_TILTS)));
  return sum(after) - sum(before);
}

function logSum(logs: number[]): number {
  const max = Math.max(...logs);
  if (!Number.isFinite(max)) return max;
  return max + Math.log(logs.reduce((s, v) => s + Math.exp(v - max), 0));
}

/** log e-value of the error test: with promotion-wide errors, the weighted restarts (RESTART_WEIGHTS). */
function errorLog(ev: StepEvidence): number {
  const first = logMixture(ev.errors, UPWARD_TILTS);
  if (!ev.promotion) return first;
  const restarts = ev.promotion.restarts ?? [];
  // Restarts not yet begun are still at 1: their weights (the halving tail) count as they are.
  const pending = RESTART_WEIGHTS.later * 2 ** -restarts.length;
  return logSum([
    Math.log(RESTART_WEIGHTS.first) + first,
    ...restarts.map((c, i) => Math.log(restartWeight(i)) + logMixture(c, UPWARD_TILTS)),
    Math.log(pending),
  ]);
}

function currentLogs(ev: StepEvidence): { errors: number; order: number; equality: number } {
  if (ev.latencyMix) return { errors: errorLog(ev), ...ev.latencyMix };
  const order = ev.order.map((c) => logMixture(c, UPWARD_TILTS));
  const lower = ev.lower.map((c) => logMixture(c, UPWARD_TILTS));
  return {
    errors: errorLog(ev),
    order: logMean(order),
    // Both directions, each bound once: the average over all of them.
    equality: logMean([...order, ...lower]),
  };
}

/** Always-valid p-value from the largest e-value so far. */
const pFrom = (maxLog: number): number => Math.min(1, Math.exp(-maxLog));

/**
 * Anytime-valid interval for the ratio of error rates (candidate / baseline) from the step's
 * totals: the ratios ρ0 that neither direction's mixture rejects at level a, so each bound is a
 * one-sided bound at the test's own level (and the interval holds with 1 − 2a). From totals (one
 * batch), which is exact while the step's split is fixed, as it is within a step.
 */
export function errorRatioInterval(ev: StepEvidence, a: number): [number, number] {
  const x = ev.candidate.errors;
  const t = x + ev.baseline.errors;
  const logBound = Math.log(1 / a);
  const up = (r: number): number =>
    logMixture(
      updateCell(
        emptyCell(UPWARD_TILTS),
        UPWARD_TILTS,
        x,
        t,
        nullShare(ev.candidate.requests, ev.baseline.requests, r),
      ),
      UPWARD_TILTS,
    );
  const down = (r: number): number =>
    logMixture(
      updateCell(
        emptyCell(UPWARD_TILTS),
        UPWARD_TILTS,
        t - x,
        t,
        1 - nullShare(ev.candidate.requests, ev.baseline.requests, r),
      ),
      UPWARD_TILTS,
    );
  // Bisection in log space between 1/1000 and 1000.
  const solve = (f: (r: number) => number, rejectBelow: boolean): number => {
    let lo = Math.log(1e-3);
    let hi = Math.log(1e3);
    if (rejectBelow ? f(Math.exp(hi)) >= logBound : f(Math.exp(lo)) >= logBound)
      return rejectBelow ? Infinity : 0;
    if (rejectBelow ? f(Math.exp(lo)) < logBound : f(Math.exp(hi)) < logBound)
      return rejectBelow ? 0 : Infinity;
    for (let i = 0; i < 50; i++) {
      const mid = (lo + hi) / 2;
      const rejected = f(Math.exp(mid)) >= logBound;
      if (rejectBelow === rejected) lo = mid;
      else hi = mid;
    }
    return Math.exp((lo + hi) / 2);
  };
  // Small ρ0 are rejected by the upward test (too many candidate errors for them), large by the downward.
  return [solve(up, true), solve(down, false)];
}

/** Anytime-valid interval for a q-quantile of one variant from its step totals, in seconds. */
export function quantileInterval(
  bins: number[],
  edges: number[],
  q: number,
  a: number,
): [number, number] | null {
  const n = bins.reduce((s, x) => s + x, 0);
  if (n === 0) return null;
  const w = meanBoundaryHalfWidth(n, a);
  let cum = 0;
  let lower: number | null = null;
  let upper: number | null = null;
  for (let i = 0; i < bins.length; i++) {
    cum += bins[i] ?? 0;
    const f = cum / n;
    const edge = i < edges.length ? (edges[i] as number) : Infinity;
    const lowEdge = i === 0 ? 0 : (edges[i - 1] as number);
    if (lower === null && f >= q - w) lower = lowEdge;
    if (upper === null && f >= q + w) upper = edge;
  }
  return [lower ?? 0, upper ?? Infinity];
}

/**
 * The error ratio this step would have caught by now about 4 times in 5, at its counts: the
 * smallest true ratio ρ1 for which some tilt's log-LR, normal-approximated with Poisson counts,
 * clears log(1/α) with probability 0.8. An approximation (final look only), said as "about".
 */
export function detectableErrorRatio(
  ev: StepEvidence,
  p: StepCompareParams,
  nullRatio: number,
): number | null {
  const counts = errorCounts(ev);
  const nc = counts.candidate.requests;
  const nb = counts.baseline.requests;
  if (nc === 0 || nb === 0) return null;
  const rate = (counts.baseline.errors + 0.5) / (nb + 1);
  const theta0 = nullShare(nc, nb, nullRatio);
  const target = Math.log(1 / testAlpha(p, 'errors', ev));
  const power = (r1: number): number => {
    const lc = nc * rate * r1;
    const lb = nb * rate;
    let best = 0;
    for (const t of UPWARD_TILTS) {
      const beta = Math.log(t.ratio);
      const l = Math.log1p(theta0 * (t.ratio - 1));
      const mean = lc * (beta - l) - lb * l + Math.log(t.weight);
      const sd = Math.sqrt(lc * (beta - l) ** 2 + lb * l * l);
      if (sd > 0) best = Math.max(best, normalCdf((mean - target) / sd));
    }
    return best;
  };
  let lo = Math.max(1, nullRatio);
  let hi = 1000;
  if (power(hi) < 0.8) return null;
  for (let i = 0; i < 50; i++) {
    const mid = Math.sqrt(lo * hi);
    if (power(mid) >= 0.8) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** The step's verdict from its evidence: every number an auditor needs, in on-call words. */
export function judgeStep(ev: StepEvidence, p: StepCompareParams): ComparisonVerdict {
  const tests = [errorTest(ev, p), orderTest(ev, p)];
  if (p.latencyEquality !== false) tests.push(equalityTest(ev, p));
  const samples = { candidate: ev.candidate.requests, baseline: ev.baseline.requests };
  const failing = tests.filter((t) => t.result === 'fail');
  const inconclusive = tests.filter((t) => t.result === 'inconclusive');
  const gapNote = ev.gaps > 0 ? ` (${ev.gaps} look${ev.gaps > 1 ? 's' : ''} with missing data skipped)` : '';
  let result: Result;
  let reason: string;
  if (failing.length > 0) {
    result = 'fail';
    reason = failing.map((t) => t.explanation).join('; ');
  } else if (inconclusive.length > 0) {
    result = 'inconclusive';
    reason = inconclusive.map((t) => t.explanation).join('; ');
  } else {
    result = 'pass';
    reason = `no regression in ${samples.candidate} candidate vs ${samples.baseline} baseline requests over ${ev.looks} looks of this step${gapNote}: ${tests.map((t) => t.explanation).join('; ')}`;
  }
  return { check: 'comparison', result, tests, samples, reason, sequential: true };
}

function errorTest(ev: StepEvidence, p: StepCompareParams): TestResult {
  const alphas = errorAlphas(p, ev);
  const a = alphas.whole;
  const aE = alphas.eProcess;
  const early = ev.early && spans(ev, p) ? earlyReport(ev.early, alphas.early) : null;
  const counts = errorCounts(ev);
  const nc = counts.candidate.requests;
  const nb = counts.baseline.requests;
  const rc = nc > 0 ? counts.candidate.errors / nc : null;
  const rb = nb > 0 ? counts.baseline.errors / nb : null;
  const steps = spans(ev, p) ? (ev.promotion?.steps ?? 1) : 1;
  const over =
    steps > 1
      ? `over ${steps} steps' ${nc} vs ${nb} requests so far`
      : `over the step's ${nc} vs ${nb} requests`;
  const logE = errorLog(ev);
  // One p-value for the test: each part's, scaled by its share of α (reject iff ≤ α).
  const pValue = Math.min(
    1,
    pFrom(ev.maxLog.errors) * (a / aE),
    early && alphas.early > 0 ? early.pValue * (a / alphas.early) : 1,
  );
  const crossed = ev.crossedAt.errors !== undefined;
  const enough = nc >= p.minSamples && nb >= p.minSamples;
  const result: Result = crossed ? 'fail' : enough ? 'pass' : 'inconclusive';
  const [rlo, rhi] = errorRatioInterval(ev, a);
  const diff: [number, number] | undefined =
    rb !== null ? [round(rb * (rlo - 1), 4) ?? -1, round(rb * (rhi - 1), 4) ?? 1] : undefined;
  const nullRatio = errorNullRatio(ev, ev.baseline, p);
  const detectable = detectableErrorRatio(ev, p, Number.isFinite(nullRatio) ? nullRatio : 1);
  const allowed =
    p.maxErrorRateIncrease > 0
      ? `${pct(p.maxRelativeErrorRateIncrease, 0)} relative or ${pct(p.maxErrorRateIncrease)} absolute, whichever is larger`
      : `${pct(p.maxRelativeErrorRateIncrease, 0)} relative`;
  const interval = `${steps > 1 ? 'in this step ' : ''}the candidate's error rate is ${round(rlo, 3)}× to ${round(rhi, 3)}× the baseline's (anytime-valid ${round(1 - 2 * a, 4)})`;
  const reach =
    detectable !== null && rb !== null
      ? `; at these counts ${round(detectable, 3)}× the baseline's errors (${pct(rb * detectable)}) would be caught by now about 4 times in 5`
      : '';
  const earlyText = early
    ? early.crossedAt !== undefined
      ? `${early.candidateErrors} candidate errors by the promotion's look ${early.crossedAt} of its first ${early.of} reached the early-look bound of ${early.bound} (exact test, p ${fmtP(early.pValue)} at its α ${round(alphas.early, 6)})`
      : early.closed
        ? `early looks (first ${early.of}) passed`
        : `early look ${early.looks} of ${early.of}: ${early.candidateErrors} candidate errors, ${early.bound} or more would fail`
    : null;
  const byEarly = early?.crossedAt !== undefined && !(ev.maxLog.errors >= Math.log(1 / aE));
  const evidence = byEarly
    ? (earlyText as string)
    : `e-value ${fmtE(ev.maxLog.errors)} ≥ 1/α = ${fmtE(Math.log(1 / aE))}, first at look ${ev.crossedAt.errors}`;
  const explanation = crossed
    ? `error rate: candidate ${pct(rc)} vs baseline ${pct(rb)} ${over} is beyond the allowed ${allowed} (${evidence}); ${interval}`
    : enough
      ? `error rate: candidate ${pct(rc)} vs baseline ${pct(rb)} ${over}, no evidence beyond the allowed ${allowed} (e-value ${fmtE(logE)} < ${fmtE(Math.log(1 / aE))}${earlyText ? `; ${earlyText}` : ''}); ${interval}${reach}`
      : `error rate: too few requests to pass yet (candidate ${nc}, baseline ${nb}, ${p.minSamples} each needed; e-value ${fmtE(logE)})`;
  return {
    test: 'sequential-error-rate',
    metric: 'error rate',
    pValue: round(pValue, 4),
    interval: diff,
    candidate: round(rc, 6),
    baseline: round(rb, 6),
    threshold: round(a, 6) as number,
    allowed: p.maxRelativeErrorRateIncrease,
    samples: { candidate: nc, baseline: nb },
    result,
    explanation,
    details: {
      eValue: round(Math.exp(logE), 4),
      maxEValue: round(Math.exp(ev.maxLog.errors), 4),
      nullRatio: round(nullRatio, 4),
      ratioLower: round(rlo, 4),
      ratioUpper: round(rhi, 4),
      detectableRatio: detectable === null ? null : round(detectable, 4),
      detectableErrorRate: detectable !== null && rb !== null ? round(rb * detectable, 4) : null,
      absoluteMargin: p.maxErrorRateIncrease,
      looks: ev.looks,
      gaps: ev.gaps,
      ...(spans(ev, p) ? { steps, promotionLooks: ev.promotion?.looks ?? ev.looks } : {}),
      ...(early
        ? {
            earlyLooks: early.looks,
            earlyLooksOf: early.of,
            earlyCandidateErrors: early.candidateErrors,
            earlyBound: early.bound,
            earlyAlpha: round(alphas.early, 6),
            earlyPValue: round(early.pValue, 6),
            eProcessAlpha: round(aE, 6),
          }
        : {}),
    },
  };
}

function latencySummary(
  ev: StepEvidence,
  a: number,
): { text: string; details: Record<string, number | null> } {
  const c95 = quantileInterval(ev.candidate.bins, ev.edges, 0.95, a);
  const b95 = quantileInterval(ev.baseline.bins, ev.edges, 0.95, a);
  const h = (t: Totals): VariantWindow['latency'] => {
    let cum = 0;
    return {
      buckets: [...ev.edges, Infinity].map((le, i) => ({ le, count: (cum += t.bins[i] ?? 0) })),
      sum: 0,
      count: cum,
    };
  };
  const med = (t: Totals): number | null => msOf(quantileOrNull(h(t), 0.5));
  const p95 = (t: Totals): number | null => msOf(quantileOrNull(h(t), 0.95));
  const iv = (x: [number, number] | null): string =>
    x === null ? '' : ` (${msOf(x[0])}–${Number.isFinite(x[1]) ? msOf(x[1]) : '∞'})`;
  const fmt = (x: number | null): string => (x === null ? 'n/a' : `${Number(x.toPrecision(3))} ms`);
  return {
    text: `median ${fmt(med(ev.candidate))} vs ${fmt(med(ev.baseline))}, p95 ${fmt(p95(ev.candidate))}${iv(c95)} vs ${fmt(p95(ev.baseline))}${iv(b95)}`,
    details: {
      candidateMedianMs: med(ev.candidate),
      baselineMedianMs: med(ev.baseline),
      candidateP95Ms: p95(ev.candidate),
      baselineP95Ms: p95(ev.baseline),
      candidateP95LowerMs: c95 ? msOf(c95[0]) : null,
      candidateP95UpperMs: c95 && Number.isFinite(c95[1]) ? msOf(c95[1]) : null,
      baselineP95LowerMs: b95 ? msOf(b95[0]) : null,
      baselineP95UpperMs: b95 && Number.isFinite(b95[1]) ? msOf(b95[1]) : null,
    },
  };
}

/** The bound whose cell holds the most evidence: where the distributions differ most. */
function strongestBound(ev: StepEvidence, cells: CellState[]): number | null {
  let best = -Infinity;
  let at: number | null = null;
  cells.forEach((c, i) => {
    const v = logMixture(c, UPWARD_TILTS);
    if (v > best) {
      best = v;
      at = ev.edges[i] ?? null;
    }
  });
  return at;
}

function latencyTest(ev: StepEvidence, p: StepCompareParams, kind: 'order' | 'equality'): TestResult {
  const a = testAlpha(p, kind, ev);
  const nc = ev.candidate.bins.reduce((s, x) => s + x, 0);
  const nb = ev.baseline.bins.reduce((s, x) => s + x, 0);
  const logs = currentLogs(ev);
  const logE = kind === 'order' ? logs.order : logs.equality;
  const crossedAt = ev.crossedAt[kind];
  const enough = nc >= p.minSamples && nb >= p.minSamples;
  const result: Result = crossedAt !== undefined ? 'fail' : enough ? 'pass' : 'inconclusive';
  const summary = latencySummary(ev, a);
  const band = `${pct(p.maxLatencyIncrease, 0)} or ${p.minLatencyIncreaseMs} ms, whichever is larger`;
  const upAt = strongestBound(ev, ev.order);
  const downAt = strongestBound(ev, ev.lower);
  const upLog = logMean(ev.order.map((c) => logMixture(c, UPWARD_TILTS)));
  const downLog = logMean(ev.lower.map((c) => logMixture(c, UPWARD_TILTS)));
  const where =
    kind === 'equality' && downLog > upLog
      ? `the candidate is faster or narrower than the baseline near ${msOf(downAt)} ms`
      : `the candidate exceeds latencies near ${msOf(upAt)} ms more often than the baseline`;
  const name = kind === 'order' ? 'latency (candidate slower)' : 'latency distribution (same shape)';
  const explanation =
    crossedAt !== undefined
      ? `${name}: ${where}, beyond ${band} (e-value ${fmtE(ev.maxLog[kind])} ≥ ${fmtE(Math.log(1 / a))}, first at look ${crossedAt}); ${summary.text}`
      : enough
        ? `${name}: no difference beyond ${band} (e-value ${fmtE(logE)} < ${fmtE(Math.log(1 / a))})${kind === 'order' ? `; ${summary.text}` : ''}`
        : `${name}: too few observations to pass yet (candidate ${nc}, baseline ${nb}, ${p.minSamples} each needed)`;
  return {
    test: kind === 'order' ? 'sequential-latency-order' : 'sequential-latency-equality',
    metric: kind === 'order' ? 'latency order' : 'latency distribution',
    pValue: round(pFrom(ev.maxLog[kind]), 4),
    candidate: summary.details.candidateP95Ms ?? null,
    baseline: summary.details.baselineP95Ms ?? null,
    threshold: round(a, 6) as number,
    allowed: p.maxLatencyIncrease,
    samples: { candidate: nc, baseline: nb },
    result,
    explanation,
    details: {
      eValue: round(Math.exp(logE), 4),
      maxEValue: round(Math.exp(ev.maxLog[kind]), 4),
      strongestBoundMs: msOf(kind === 'equality' && downLog > upLog ? downAt : upAt),
      ...summary.details,
    },
  };
}

const orderTest = (ev: StepEvidence, p: StepCompareParams): TestResult => latencyTest(ev, p, 'order');
const equalityTest = (ev: StepEvidence, p: StepCompareParams): TestResult => latencyTest(ev, p, 'equality');

/** A p-value for people: "0.0031", "2.1e-6". */
function fmtP(x: number): string {
  return x < 1e-4 ? x.toExponential(1) : String(Number(x.toPrecision(2)));
}

/** An e-value for people: "3.2", "1.2e+4". */
function fmtE(logE: number): string {
  const e = Math.exp(logE);
  return e >= 1e4 || e < 1e-2 ? e.toExponential(1) : e.toPrecision(3);
}
