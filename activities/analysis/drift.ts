/**
 * Drift of inputs and predictions against the evaluation data, from binned counts only (the model
 * server never keeps a raw row): bin edges at the reference's quantiles, the Population
 * Stability Index per feature and for the prediction, and a Kolmogorov-Smirnov test on the binned
 * cumulative distributions. Pure: the model server bins with the same functions.
 *
 * PSI = Σ (a_i - e_i) ln(a_i / e_i) over bins, with shares smoothed by half a count so an empty
 * bin does not make it infinite. Convention: < 0.1 stable, 0.1–0.25 a notice, ≥ 0.25 act.
 */

/** The reference a model server bins against, taken at deploy time. */
export interface DriftReference {
  /** Model input whose columns are the features (the evaluation's `input`). */
  input: string;
  /** Model output whose first value per row is the prediction (the evaluation's `output`). */
  output: string;
  /** Share of requests the server counts. */
  sampleRate: number;
  features: DriftFeatureReference[];
  prediction?: DriftFeatureReference;
}

export interface DriftFeatureReference {
  name: string;
  /** Column of the input tensor (absent for the prediction). */
  column?: number;
  /** Increasing inner edges; bin i holds edges[i-1] < x ≤ edges[i] (first and last are open). */
  edges: number[];
  /** Reference rows per bin (edges.length + 1 of them). */
  counts: number[];
}

/** What a server has counted since it started: counts per bin, by feature name. */
export interface DriftCounts {
  /** Rows counted (sampled). */
  rows: number;
  features: Record<string, number[]>;
}

export interface FeatureDrift {
  feature: string;
  psi: number;
  ks: { d: number; pValue: number };
  samples: number;
  level: 'stable' | 'notice' | 'act';
}

export interface DriftVerdict {
  check: 'drift';
  result: 'pass' | 'fail' | 'inconclusive';
  level: 'stable' | 'notice' | 'act';
  reason: string;
  samples: number;
  features: FeatureDrift[];
  thresholds: { notice: number; act: number; ksAlpha: number; minSamples: number };
}

/** Inner edges at the `bins`-quantiles of `values`; repeated values give fewer, never empty-width, bins. */
export function quantileEdges(values: readonly number[], bins: number): number[] {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return [];
  const edges: number[] = [];
  for (let k = 1; k < bins; k++) {
    const e = sorted[Math.max(0, Math.ceil((k * sorted.length) / bins) - 1)]!;
    if (edges.length === 0 || e > edges[edges.length - 1]!) edges.push(e);
  }
  // The largest value needs a bin of its own above the last edge, or it shares the top bin.
  if (edges.length > 0 && edges[edges.length - 1]! >= sorted[sorted.length - 1]!) edges.pop();
  return edges;
}

/** The bin of x: the first i with x ≤ edges[i], else the last bin. */
export function binIndex(edges: readonly number[], x: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (x <= edges[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export function histogram(edges: readonly number[], values: Iterable<number>): number[] {
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (const v of values) if (Number.isFinite(v)) counts[binIndex(edges, v)]!++;
  return counts;
}

function shares(counts: readonly number[]): number[] {
  const n = counts.reduce((s, c) => s + c, 0);
  const k = counts.length;
  return counts.map((c) => (c + 0.5) / (n + 0.5 * k));
}

export function psi(expected: readonly number[], actual: readonly number[]): number {
  if (expected.length !== actual.length)
    throw new Error(`PSI needs the same bins: ${expected.length} reference vs ${actual.length} observed`);
  const e = shares(expected);
  const a = shares(actual);
  let sum = 0;
  for (let i = 0; i < e.length; i++) sum += (a[i]! - e[i]!) * Math.log(a[i]! / e[i]!);
  return sum;
}

/** Kolmogorov's limiting distribution: P(K > λ). */
function kolmogorovTail(lambda: number): number {
  if (lambda <= 0) return 1;
  let sum = 0;
  for (let k = 1; k <= 100; k++) {
    const term = 2 * (k % 2 === 1 ? 1 : -1) * Math.exp(-2 * k * k * lambda * lambda);
    sum += term;
    if (Math.abs(term) < 1e-12) break;
  }
  return Math.min(1, Math.max(0, sum));
}

/**
 * Two-sample KS on binned data: D is the largest gap between the cumulative shares at the bin
 * edges (never more than the unbinned D, so the test is conservative), p from Kolmogorov's
 * distribution with Stephens' small-sample correction.
 */
export function binnedKs(
  expected: readonly number[],
  actual: readonly number[],
): { d: number; pValue: number } {
  const n = expected.reduce((s, c) => s + c, 0);
  const m = actual.reduce((s, c) => s + c, 0);
  if (n === 0 || m === 0) return { d: 0, pValue: 1 };
  let fe = 0;
  let fa = 0;
  let d = 0;
  for (let i = 0; i < expected.length; i++) {
    fe += expected[i]! / n;
    fa += actual[i]! / m;
    d = Math.max(d, Math.abs(fe - fa));
  }
  const ne = (n * m) / (n + m);
  const sq = Math.sqrt(ne);
  return { d, pValue: kolmogorovTail((sq + 0.12 + 0.11 / sq) * d) };
}

/** Counts in `now` beyond `since` (cumulative counters), bin by bin; a reset gives undefined. */
export function countsBetween(since: DriftCounts | undefined, now: DriftCounts): DriftCounts | undefined {
  if (!since) return now;
  if (now.rows < since.rows) return undefined;
  const features: Record<string, number[]> = {};
  for (const [name, counts] of Object.entries(now.features)) {
    const before = since.features[name];
    const diff = counts.map((c, i) => c - (before?.[i] ?? 0));
    if (diff.some((d) => d < 0)) return undefined;
    features[name] = diff;
  }
  return { rows: now.rows - since.rows, features };
}

export interface DriftThresholds {
  notice: number;
  act: number;
  ksAlpha: number;
  minSamples: number;
}

/** Judges one window's counts against the reference, feature by feature and for the prediction. */
export function judgeDrift(ref: DriftReference, window: DriftCounts, t: DriftThresholds): DriftVerdict {
  const refs = [...ref.features, ...(ref.prediction ? [{ ...ref.prediction, name: 'prediction' }] : [])];
  const thresholds = { notice: t.notice, act: t.act, ksAlpha: t.ksAlpha, minSamples: t.minSamples };
  if (window.rows < t.minSamples) {
    return {
      check: 'drift',
      result: 'inconclusive',
      level: 'stable',
      reason: `${window.rows} sampled rows in the window, ${t.minSamples} needed to judge drift`,
      samples: window.rows,
      features: [],
      thresholds,
    };
  }
  const features: FeatureDrift[] = [];
  for (const r of refs) {
    const counts = window.features[r.name];
    if (!counts || counts.length !== r.counts.length) continue;
    const value = round(psi(r.counts, counts));
    const ks = binnedKs(r.counts, counts);
    const samples = counts.reduce((s, c) => s + c, 0);
    // PSI alone flags large-sample noise as readily as a real move; acting also needs the KS test.
    const level = value >= t.act && ks.pValue < t.ksAlpha ? 'act' : value >= t.notice ? 'notice' : 'stable';
    features.push({ feature: r.name, psi: value, ks: { d: round(ks.d), pValue: ks.pValue }, samples, level });
  }
  features.sort((a, b) => b.psi - a.psi);
  const acted = features.filter((f) => f.level === 'act');
  const noticed = features.filter((f) => f.level === 'notice');
  const level = acted.length > 0 ? 'act' : noticed.length > 0 ? 'notice' : 'stable';
  const top = features[0];
  const named = (fs: FeatureDrift[]): string =>
    fs.map((f) => `${f.feature} PSI ${f.psi} (KS D ${f.ks.d}, p ${f.ks.pValue.toExponential(1)})`).join(', ');
  const reason =
    level === 'act'
      ? `drift: ${named(acted)} at or over ${t.act} over ${window.rows} sampled rows`
      : level === 'notice'
        ? `drift notice: ${named(noticed)} at or over ${t.notice} over ${window.rows} sampled rows`
        : `no drift: largest PSI ${top ? `${top.psi} (${top.feature})` : 'n/a'} below ${t.notice} over ${window.rows} sampled rows`;
  return {
    check: 'drift',
    result: level === 'act' ? 'fail' : 'pass',
    level,
    reason,
    samples: window.rows,
    features,
    thresholds,
  };
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
