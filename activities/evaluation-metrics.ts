/**
 * Offline evaluation metrics (pure): binary, multiclass and regression, computed over a subset of
 * rows so that slices and bootstrap resamples reuse them, and a seeded paired bootstrap that says
 * whether the candidate's regression against production is real or noise at this dataset size.
 *
 * Predictions are per-row vectors: binary takes the last element as the positive-class score,
 * multiclass the class scores, regression the first element. A row the model failed on is an
 * empty vector and counts as wrong (the worst score for AUC, the largest loss for log loss);
 * regression metrics cannot score it and are NaN, which fails their gate.
 */

import { METRIC_NAMES } from '../specs/schema';
export type Task = 'binary' | 'multiclass' | 'regression';
export { METRIC_NAMES };
export type MetricName = (typeof METRIC_NAMES)[number];

export interface MetricInfo {
  tasks: readonly Task[];
  /** Larger is better (accuracy); otherwise smaller is (log loss, RMSE). */
  higherIsBetter: boolean;
}

export const METRICS: Record<MetricName, MetricInfo> = {
  accuracy: { tasks: ['binary', 'multiclass'], higherIsBetter: true },
  auc: { tasks: ['binary'], higherIsBetter: true },
  precision: { tasks: ['binary'], higherIsBetter: true },
  recall: { tasks: ['binary'], higherIsBetter: true },
  f1: { tasks: ['binary'], higherIsBetter: true },
  logloss: { tasks: ['binary'], higherIsBetter: false },
  top1: { tasks: ['multiclass'], higherIsBetter: true },
  topk: { tasks: ['multiclass'], higherIsBetter: true },
  macro_f1: { tasks: ['multiclass'], higherIsBetter: true },
  rmse: { tasks: ['regression'], higherIsBetter: false },
  mae: { tasks: ['regression'], higherIsBetter: false },
  r2: { tasks: ['regression'], higherIsBetter: true },
};

export interface MetricOptions {
  threshold: number;
  k: number;
  classes: number;
}

type Rows = ArrayLike<number>;
const EPS = 1e-15;

const positive = (p: number[]): number => (p.length === 0 ? Number.NaN : (p[p.length - 1] as number));

/** Index of the largest score; -1 for a failed row. */
function argmax(p: number[]): number {
  let best = -1;
  for (let i = 0; i < p.length; i++) if (best < 0 || (p[i] as number) > (p[best] as number)) best = i;
  return best;
}

/** Rank of the true class among the scores (0 = top); Infinity for a failed row. */
function rankOf(p: number[], label: number): number {
  if (p.length === 0) return Infinity;
  const own = p[label] as number;
  let above = 0;
  for (let c = 0; c < p.length; c++) if (c !== label && (p[c] as number) > own) above++;
  return above;
}

export function metricValue(
  name: MetricName,
  preds: number[][],
  labels: number[],
  idx: Rows,
  opts: MetricOptions,
): number {
  const n = idx.length;
  if (n === 0) return Number.NaN;
  switch (name) {
    case 'accuracy':
    case 'top1':
    case 'topk': {
      const k = name === 'topk' ? opts.k : 1;
      let right = 0;
      for (let j = 0; j < n; j++) {
        const i = idx[j] as number;
        const p = preds[i] as number[];
        const y = labels[i] as number;
        if (opts.classes <= 2 && name === 'accuracy') {
          const s = positive(p);
          if (!Number.isNaN(s) && (s >= opts.threshold ? 1 : 0) === y) right++;
        } else if (rankOf(p, y) < k) right++;
      }
      return right / n;
    }
    case 'precision':
    case 'recall':
    case 'f1': {
      let tp = 0;
      let fp = 0;
      let fn = 0;
      for (let j = 0; j < n; j++) {
        const i = idx[j] as number;
        const s = positive(preds[i] as number[]);
        const y = labels[i] as number;
        // A failed row predicts the wrong class.
        const predicted = Number.isNaN(s) ? 1 - y : s >= opts.threshold ? 1 : 0;
        if (predicted === 1 && y === 1) tp++;
        else if (predicted === 1) fp++;
        else if (y === 1) fn++;
      }
      const precision = tp + fp === 0 ? 0 : tp / (tp + fp);
      const recall = tp + fn === 0 ? 0 : tp / (tp + fn);
      if (name === 'precision') return precision;
      if (name === 'recall') return recall;
      return precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    }
    case 'logloss': {
      let sum = 0;
      for (let j = 0; j < n; j++) {
        const i = idx[j] as number;
        const s = positive(preds[i] as number[]);
        const y = labels[i] as number;
        const p = Number.isNaN(s) ? (y === 1 ? 0 : 1) : s;
        const q = Math.min(1 - EPS, Math.max(EPS, y === 1 ? p : 1 - p));
        sum -= Math.log(q);
      }
      return sum / n;
    }
    case 'auc':
      return aucOf(preds, labels, idx);
    case 'macro_f1': {
      const tp = new Float64Array(opts.classes);
      const fp = new Float64Array(opts.classes);
      const fn = new Float64Array(opts.classes);
      const seen = new Uint8Array(opts.classes);
      for (let j = 0; j < n; j++) {
        const i = idx[j] as number;
        const y = labels[i] as number;
        const c = argmax(preds[i] as number[]);
        seen[y] = 1;
        if (c === y) tp[y]!++;
        else {
          fn[y]!++;
          if (c >= 0) {
            fp[c]!++;
            seen[c] = 1;
          }
        }
      }
      // Over the classes present in these rows (as true labels or predictions), like sklearn.
      let sum = 0;
      let count = 0;
      for (let c = 0; c < opts.classes; c++) {
        if (!seen[c]) continue;
        const denom = 2 * tp[c]! + fp[c]! + fn[c]!;
        sum += denom === 0 ? 0 : (2 * tp[c]!) / denom;
        count++;
      }
      return count === 0 ? Number.NaN : sum / count;
    }
    case 'rmse':
    case 'mae':
    case 'r2': {
      let se = 0;
      let ae = 0;
      let mean = 0;
      for (let j = 0; j < n; j++) mean += labels[idx[j] as number] as number;
      mean /= n;
      let ss = 0;
      for (let j = 0; j < n; j++) {
        const i = idx[j] as number;
        const p = preds[i] as number[];
        if (p.length === 0) return Number.NaN;
        const e = (p[0] as number) - (labels[i] as number);
        se += e * e;
        ae += Math.abs(e);
        const d = (labels[i] as number) - mean;
        ss += d * d;
      }
      if (name === 'rmse') return Math.sqrt(se / n);
      if (name === 'mae') return ae / n;
      return ss === 0 ? Number.NaN : 1 - se / ss;
    }
  }
}

/** Area under the ROC curve by the rank-sum identity, ties at their mid-rank; failed rows lowest. */
function aucOf(preds: number[][], labels: number[], idx: Rows): number {
  const n = idx.length;
  const pairs: { s: number; y: number }[] = new Array(n);
  for (let j = 0; j < n; j++) {
    const i = idx[j] as number;
    const s = positive(preds[i] as number[]);
    pairs[j] = { s: Number.isNaN(s) ? -Infinity : s, y: labels[i] as number };
  }
  pairs.sort((a, b) => a.s - b.s);
  let rankSum = 0;
  let positives = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j < n && pairs[j]!.s === pairs[i]!.s) j++;
    const midrank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) {
      if (pairs[k]!.y === 1) {
        rankSum += midrank;
        positives++;
      }
    }
    i = j;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** mulberry32: a small, seeded PRNG, so the same dataset and seed give the same verdict. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface BootstrapResult {
  resamples: number;
  confidence: number;
  seed: number;
  /** One-sided lower confidence bound of the regression (baseline − candidate, in the bad direction). */
  lowerBound: number;
  upperBound: number;
  /** Share of resamples in which the regression stayed within the allowance. */
  withinAllowance: number;
}

/**
 * Paired bootstrap of the regression: both models are scored on the same resampled rows, so the
 * rows' difficulty cancels out. `regressionOn(idx)` returns baseline − candidate oriented so
 * that a positive value is worse; NaN resamples (a slice with one class, say) are dropped.
 */
export function pairedBootstrap(
  rows: ArrayLike<number>,
  regressionOn: (idx: Int32Array) => number,
  opts: { resamples: number; confidence: number; seed: number; allowance: number },
  /** Called every 50 resamples: the activity heartbeats, so a long bootstrap is not taken for a hang. */
  tick: (done: number) => void = () => {},
): BootstrapResult {
  const random = seededRandom(opts.seed);
  const n = rows.length;
  const idx = new Int32Array(n);
  const values: number[] = [];
  for (let b = 0; b < opts.resamples; b++) {
    for (let j = 0; j < n; j++) idx[j] = rows[Math.floor(random() * n)] as number;
    const r = regressionOn(idx);
    if (!Number.isNaN(r)) values.push(r);
    if (b % 50 === 49) tick(b + 1);
  }
  values.sort((a, b) => a - b);
  const q = (p: number): number =>
    values.length === 0
      ? Number.NaN
      : (values[Math.min(values.length - 1, Math.max(0, Math.floor(p * values.length)))] as number);
  const alpha = 1 - opts.confidence;
  return {
    resamples: opts.resamples,
    confidence: opts.confidence,
    seed: opts.seed,
    lowerBound: q(alpha),
    upperBound: q(1 - alpha),
    withinAllowance: values.length
      ? values.filter((v) => v <= opts.allowance).length / values.length
      : Number.NaN,
  };
}
