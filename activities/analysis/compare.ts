/**
 * Canary against baseline over the same window. Each test asks one one-sided question — "is the
 * candidate worse than the baseline by more than the spec allows?" — and fails only when the data
 * say so at the configured confidence. Too few samples is inconclusive, never a pass.
 *
 * Looks: the workflow asks this every interval on that interval's window, and rolls back only
 * after `failureLimit` consecutive fails. Each look tests at α = 1 − confidence. The tolerance
 * bands put an unchanged candidate well inside the null hypothesis, so its per-look fail chance is
 * far below α, and two consecutive independent fails are rarer still; bench/decisions.ts measures
 * the resulting A/A false-rollback rate instead of trusting the argument.
 */
import { binomialPpf, normalPpf, normalSf } from './distributions';
import { histogramTotal, quantileOrNull, rebin, toBins, type Bin } from './histogram';
import type { ComparisonVerdict, Result, TestResult, VariantWindow } from './types';
import { round } from './round';

export interface CompareParams {
  /** Confidence of each test at each look (Kayenta uses 0.98). */
  confidence: number;
  /** Allowed absolute increase of the error rate (0.005 = half a percentage point). */
  maxErrorRateIncrease: number;
  /** Allowed relative increase of latency (0.1 = 10%). */
  maxLatencyIncrease: number;
  /** Requests each variant needs in the window before a test may judge. */
  minSamples: number;
  /**
   * Absolute slack in milliseconds under which a latency difference never fails, whatever its
   * relative size: at sub-millisecond medians a cold canary is "50% slower" by a few hundred
   * microseconds nobody can feel. Default 0 (pure relative test).
   */
  minLatencyIncreaseMs?: number;
  /** Also compare p99 with distribution-free order-statistic bounds (can only fail, never block). */
  quantileTest?: boolean;
}

const ms = (s: number | null): number | null => (s === null ? null : round(s * 1000));

/** A comparison parameter outside its range: the field, what was expected, what came. */
export function paramError(field: string, expected: string, v: unknown): never {
  throw new Error(`comparison parameter ${field} must be ${expected}, got ${String(v)}`);
}

/** The allowances and sample floor both comparison methods share. */
export function checkMargins(
  p: Pick<CompareParams, 'maxErrorRateIncrease' | 'maxLatencyIncrease' | 'minSamples'>,
): void {
  if (!(p.maxErrorRateIncrease >= 0 && p.maxErrorRateIncrease < 1)) {
    paramError('maxErrorRateIncrease', 'in [0, 1)', p.maxErrorRateIncrease);
  }
  if (!(p.maxLatencyIncrease >= 0)) paramError('maxLatencyIncrease', '≥ 0', p.maxLatencyIncrease);
  if (!(Number.isInteger(p.minSamples) && p.minSamples >= 1))
    paramError('minSamples', 'an integer ≥ 1', p.minSamples);
}

function validate(p: CompareParams): void {
  if (!(p.confidence > 0.5 && p.confidence < 1)) paramError('confidence', 'in (0.5, 1)', p.confidence);
  checkMargins(p);
}

/** Counts a window must have: non-negative requests, errors between 0 and requests. */
export function checkCounts(w: VariantWindow, who: string): void {
  if (!(Number.isFinite(w.requests) && w.requests >= 0)) throw new Error(`${who}.requests must be ≥ 0`);
  if (!(Number.isFinite(w.errors) && w.errors >= 0 && w.errors <= w.requests)) {
    throw new Error(`${who}.errors must be between 0 and ${who}.requests (${w.requests}), got ${w.errors}`);
  }
}

/**
 * The smallest increase of the error rate over `pb` that this test catches about 4 times in 5 with
 * `nc` and `nb` requests: D = margin + (z_α + z_0.8)·se(pb + D, pb). The standard error is taken
 * at the larger rate, because a worse candidate is also a noisier one; a few fixed-point steps
 * settle it. A pass is an absence of evidence, not proof of safety: this says how thin it was.
 */
export function detectableIncrease(
  pb: number,
  nc: number,
  nb: number,
  margin: number,
  zAlpha: number,
): number {
  const zPower = normalPpf(0.8);
  let d = margin;
  for (let i = 0; i < 50; i++) {
    const pc = Math.min(1, pb + d);
    const se = Math.sqrt((pc * (1 - pc)) / nc + (pb * (1 - pb)) / nb);
    const next = Math.min(1 - pb, margin + (zAlpha + zPower) * se);
    if (Math.abs(next - d) < 1e-9) return next;
    d = next;
  }
  return d;
}

/**
 * Error rates, one-sided H0: p_c − p_b ≤ margin, against H1: p_c − p_b > margin. An absolute
 * margin (not relative) because a relative one allows nothing when the baseline has no errors and
 * next to nothing at low rates, while an absolute one reads like an error budget. The statistic is
 * the Agresti–Caffo adjusted Wald z (one success and one failure added to each arm): it stays
 * defined with zero errors and keeps its size at the small counts a 5% canary produces.
 */
export function compareErrorRates(
  candidate: VariantWindow,
  baseline: VariantWindow,
  p: CompareParams,
): TestResult {
  validate(p);
  checkCounts(candidate, 'candidate');
  checkCounts(baseline, 'baseline');
  const alpha = 1 - p.confidence;
  const nc = candidate.requests;
  const nb = baseline.requests;
  const rc = nc > 0 ? candidate.errors / nc : null;
  const rb = nb > 0 ? baseline.errors / nb : null;
  const base = {
    test: 'two-proportion-z' as const,
    metric: 'error rate',
    candidate: round(rc),
    baseline: round(rb),
    threshold: round(alpha) as number,
    allowed: p.maxErrorRateIncrease,
    samples: { candidate: nc, baseline: nb },
  };
  if (nc < p.minSamples || nb < p.minSamples) {
    return {
      ...base,
      pValue: null,
      result: 'inconclusive',
      explanation: `too few requests to compare error rates: candidate ${nc}, baseline ${nb}, ${p.minSamples} each needed`,
    };
  }
  const pc = (candidate.errors + 1) / (nc + 2);
  const pb = (baseline.errors + 1) / (nb + 2);
  const diff = pc - pb;
  const se = Math.sqrt((pc * (1 - pc)) / (nc + 2) + (pb * (1 - pb)) / (nb + 2));
  const z = (diff - p.maxErrorRateIncrease) / se;
  const pValue = normalSf(z);
  const zc = normalPpf(1 - alpha);
  const interval: [number, number] = [round(diff - zc * se) as number, round(diff + zc * se) as number];
  const result: Result = pValue < alpha ? 'fail' : 'pass';
  const detectable = detectableIncrease(pb, nc + 2, nb + 2, p.maxErrorRateIncrease, zc);
  const pct = (x: number | null): string => (x === null ? 'n/a' : `${(x * 100).toFixed(3)}%`);
  const explanation =
    result === 'fail'
      ? `candidate error rate ${pct(rc)} exceeds baseline ${pct(rb)} by more than the allowed ${pct(p.maxErrorRateIncrease)} (p = ${pValue.toPrecision(3)} < ${round(alpha)})`
      : `candidate error rate ${pct(rc)} vs baseline ${pct(rb)}: no evidence of an increase beyond the allowed ${pct(p.maxErrorRateIncrease)} (p = ${pValue.toPrecision(3)} ≥ ${round(alpha)}); at these counts an increase of ${pct(detectable)} or more would be caught about 4 times in 5`;
  return {
    ...base,
    pValue: round(pValue),
    interval,
    result,
    explanation,
    details: {
      z: round(z),
      differenceAdjusted: round(diff),
      standardError: round(se),
      detectableIncrease: round(detectable),
    },
  };
}

/** The U statistic of `x` against `y` over shared bins (ties by midranks), with its tie-corrected variance. */
export function mannWhitneyBinned(
  x: number[],
  y: number[],
): { u: number; mean: number; variance: number; nx: number; ny: number } {
  if (x.length !== y.length) throw new Error('Mann-Whitney: both samples need the same bins');
  let nx = 0;
  let ny = 0;
  let u = 0;
  let ties = 0;
  let yBelow = 0;
  for (let i = 0; i < x.length; i++) {
    const xi = x[i] ?? 0;
    const yi = y[i] ?? 0;
    u += xi * (yBelow + yi / 2);
    yBelow += yi;
    nx += xi;
    ny += yi;
    const t = xi + yi;
    ties += t * t * t - t;
  }
  const n = nx + ny;
  const mean = (nx * ny) / 2;
  const variance = n > 1 ? ((nx * ny) / 12) * (n + 1 - ties / (n * (n - 1))) : 0;
  return { u, mean, variance, nx, ny };
}

/**
 * Latency distributions, Kayenta-style: Mann-Whitney U of the candidate, divided by (1 + allowed
 * increase), against the baseline, one-sided "candidate slower", normal approximation with tie
 * and continuity corrections. Scaling needs values, and a histogram only knows buckets, so the
 * candidate's scaled buckets are spread uniformly and rebinned onto the baseline's bounds.
 */
export function compareLatency(
  candidate: VariantWindow,
  baseline: VariantWindow,
  p: CompareParams,
): TestResult {
  validate(p);
  const alpha = 1 - p.confidence;
  const grid = toBins(baseline.latency);
  const cBins = toBins(candidate.latency);
  const nc = histogramTotal(candidate.latency);
  const nb = histogramTotal(baseline.latency);
  const medC = quantileOrNull(candidate.latency, 0.5);
  const medB = quantileOrNull(baseline.latency, 0.5);
  const base = {
    test: 'mann-whitney-u' as const,
    metric: 'latency (median shown)',
    candidate: ms(medC),
    baseline: ms(medB),
    threshold: round(alpha) as number,
    allowed: p.maxLatencyIncrease,
    samples: { candidate: nc, baseline: nb },
  };
  if (nc < p.minSamples || nb < p.minSamples || grid.length === 0) {
    return {
      ...base,
      pValue: null,
      result: 'inconclusive',
      explanation: `too few latency observations to compare: candidate ${nc}, baseline ${nb}, ${p.minSamples} each needed`,
    };
  }
  const y = grid.map((b) => b.count);
  const raw = mannWhitneyBinned(rebin(cBins, grid, 1), y);
  const shifted = mannWhitneyBinned(rebin(cBins, grid, 1 / (1 + p.maxLatencyIncrease)), y);
  const sd = Math.sqrt(shifted.variance);
  const z = sd > 0 ? (shifted.u - shifted.mean - 0.5) / sd : 0;
  const pValue = sd > 0 ? normalSf(z) : 1;
  const floorMs = p.minLatencyIncreaseMs ?? 0;
  const medianGapMs = medC !== null && medB !== null ? (medC - medB) * 1000 : 0;
  const withinFloor = pValue < alpha && medianGapMs <= floorMs;
  const result: Result = pValue < alpha && !withinFloor ? 'fail' : 'pass';
  const slower = raw.u / (raw.nx * raw.ny);
  const p99c = ms(quantileOrNull(candidate.latency, 0.99));
  const p99b = ms(quantileOrNull(baseline.latency, 0.99));
  const pctAllowed = `${(p.maxLatencyIncrease * 100).toFixed(1)}%`;
  const explanation =
    result === 'fail'
      ? `candidate latency (median ${base.candidate} ms, p99 ${p99c} ms) is slower than baseline (median ${base.baseline} ms, p99 ${p99b} ms) by more than ${pctAllowed} (Mann-Whitney p = ${pValue.toPrecision(3)} < ${round(alpha)})`
      : withinFloor
        ? `candidate latency (median ${base.candidate} ms) is slower than baseline (median ${base.baseline} ms) by ${round(medianGapMs, 3)} ms, within the absolute allowance of ${floorMs} ms (Mann-Whitney p = ${pValue.toPrecision(3)})`
        : `candidate latency (median ${base.candidate} ms, p99 ${p99c} ms) vs baseline (median ${base.baseline} ms, p99 ${p99b} ms): no evidence of a slowdown beyond ${pctAllowed} (p = ${pValue.toPrecision(3)} ≥ ${round(alpha)})`;
  return {
    ...base,
    pValue: round(pValue),
    result,
    explanation,
    details: {
      u: round(shifted.u),
      z: round(z),
      probabilityCandidateSlower: round(slower),
      candidateP99Ms: p99c,
      baselineP99Ms: p99b,
    },
  };
}

/** Bin holding the k-th smallest observation (1-based), or undefined when k is out of range. */
function binOfRank(bins: Bin[], k: number): Bin | undefined {
  let seen = 0;
  for (const b of bins) {
    seen += b.count;
    if (seen >= k) return b;
  }
  return undefined;
}

/**
 * p99 without a bootstrap: distribution-free order-statistic bounds (the k-th smallest of n lies
 * above the q-quantile with a binomial probability). Fails when the candidate's lower bound is
 * above the baseline's upper bound times (1 + allowed), each bound at 1 − α/2, so an unchanged
 * candidate fails with probability at most α. Bucket edges make both bounds conservative. It needs
 * ~460 baseline observations at 98% to have an upper bound at all; below that it is inconclusive.
 */
export function compareP99(
  candidate: VariantWindow,
  baseline: VariantWindow,
  p: CompareParams,
  q = 0.99,
): TestResult {
  validate(p);
  const alpha = 1 - p.confidence;
  const each = alpha / 2;
  const cBins = toBins(candidate.latency);
  const bBins = toBins(baseline.latency);
  const nc = histogramTotal(candidate.latency);
  const nb = histogramTotal(baseline.latency);
  const base = {
    test: 'quantile-order-statistic' as const,
    metric: `latency p${Math.round(q * 100)}`,
    candidate: ms(quantileOrNull(candidate.latency, q)),
    baseline: ms(quantileOrNull(baseline.latency, q)),
    allowed: p.maxLatencyIncrease,
    samples: { candidate: nc, baseline: nb },
    pValue: null,
  };
  // Candidate lower bound: the j-th smallest with P(Binomial(n, q) ≤ j − 1) < α/2.
  const j = nc > 0 ? binomialPpf(each, nc, q) : 0;
  const lower = j >= 1 ? (binOfRank(cBins, j)?.lower ?? 0) : 0;
  // Baseline upper bound: the k-th smallest with P(Binomial(n, q) ≤ k − 1) ≥ 1 − α/2.
  const k = nb > 0 ? binomialPpf(1 - each, nb, q) + 1 : Infinity;
  const upper = k <= nb ? (binOfRank(bBins, k)?.upper ?? Infinity) : Infinity;
  const threshold = Math.max(
    upper * (1 + p.maxLatencyIncrease),
    upper + (p.minLatencyIncreaseMs ?? 0) / 1000,
  );
  const interval: [number, number] = [ms(lower) ?? 0, ms(upper) ?? Infinity];
  if (nc < p.minSamples || !Number.isFinite(upper)) {
    return {
      ...base,
      threshold: Number.isFinite(threshold) ? (ms(threshold) as number) : -1,
      interval,
      result: 'inconclusive',
      explanation: `p99 bounds need more data: candidate ${nc}, baseline ${nb} observations (baseline has no finite upper bound at ${1 - each})`,
    };
  }
  const result: Result = lower > threshold ? 'fail' : 'pass';
  const explanation =
    result === 'fail'
      ? `candidate p99 is at least ${ms(lower)} ms, above the baseline's bound ${ms(upper)} ms + ${(p.maxLatencyIncrease * 100).toFixed(1)}% = ${ms(threshold)} ms (each bound at ${1 - each})`
      : `candidate p99 lower bound ${ms(lower)} ms ≤ ${ms(threshold)} ms (baseline p99 upper bound ${ms(upper)} ms + ${(p.maxLatencyIncrease * 100).toFixed(1)}%)`;
  return { ...base, threshold: ms(threshold) as number, interval, result, explanation };
}

/**
 * All the tests on one window, combined: any fail fails; a primary test (error rate, latency)
 * without enough samples makes the verdict inconclusive; the p99 bound may fail a verdict but its
 * own lack of data never blocks one (it needs far more traffic than the others).
 */
export function compareVariants(
  candidate: VariantWindow,
  baseline: VariantWindow,
  p: CompareParams,
): ComparisonVerdict {
  const primary = [compareErrorRates(candidate, baseline, p), compareLatency(candidate, baseline, p)];
  const tests = p.quantileTest === false ? primary : [...primary, compareP99(candidate, baseline, p)];
  const samples = { candidate: candidate.requests, baseline: baseline.requests };
  const failing = tests.filter((t) => t.result === 'fail');
  let result: Result;
  let reason: string;
  if (failing.length > 0) {
    result = 'fail';
    reason = failing.map((t) => t.explanation).join('; ');
  } else if (primary.some((t) => t.result === 'inconclusive')) {
    result = 'inconclusive';
    reason = primary
      .filter((t) => t.result === 'inconclusive')
      .map((t) => t.explanation)
      .join('; ');
  } else {
    result = 'pass';
    const errorTest = primary.find((t) => t.test === 'two-proportion-z');
    const reach = errorTest?.details?.detectableIncrease;
    reason =
      `no evidence of an increase beyond the allowed degradation (${samples.candidate} vs ${samples.baseline} requests): ${primary.map((t) => `${t.metric} p = ${t.pValue}`).join(', ')}` +
      (typeof reach === 'number'
        ? `; an error-rate increase of ${(reach * 100).toFixed(2)}% would show about 4 times in 5`
        : '');
  }
  return { check: 'comparison', result, tests, samples, reason };
}
