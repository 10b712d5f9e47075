/**
 * Evaluation metrics against scikit-learn's values on the same data (test/python/evaluation_reference.py
 * wrote test/fixtures/evaluation/reference.json), and the paired bootstrap's judgement of real
 * regressions and noise.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  metricValue,
  pairedBootstrap,
  seededRandom,
  type MetricName,
} from '../../activities/evaluation-metrics';
import { judgeGate } from '../../activities/evaluation';

const ref = JSON.parse(
  fs.readFileSync(path.join(__dirname, '../fixtures/evaluation/reference.json'), 'utf8'),
) as {
  binary: Record<string, number> & { labels: number[]; scores: number[] };
  multiclass: Record<string, number> & { labels: number[]; scores: number[][] };
  regression: Record<string, number> & { labels: number[]; predictions: number[] };
};
const all = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);
const opts = { threshold: 0.5, k: 1, classes: 2 };

describe('evaluation metrics match scikit-learn', () => {
  it('binary: accuracy, auc, precision, recall, f1, logloss', () => {
    const { labels, scores } = ref.binary;
    const preds = scores.map((s) => [s]);
    for (const m of ['accuracy', 'auc', 'precision', 'recall', 'f1', 'logloss'] as MetricName[]) {
      expect(metricValue(m, preds, labels, all(labels.length), opts), m).toBeCloseTo(ref.binary[m]!, 9);
    }
  });

  it('multiclass: top1, top-k, macro F1', () => {
    const { labels, scores } = ref.multiclass;
    const o = { threshold: 0.5, k: 2, classes: 4 };
    expect(metricValue('top1', scores, labels, all(labels.length), o)).toBeCloseTo(ref.multiclass.top1!, 9);
    expect(metricValue('accuracy', scores, labels, all(labels.length), o)).toBeCloseTo(
      ref.multiclass.top1!,
      9,
    );
    expect(metricValue('topk', scores, labels, all(labels.length), o)).toBeCloseTo(ref.multiclass.top2!, 9);
    expect(metricValue('macro_f1', scores, labels, all(labels.length), o)).toBeCloseTo(
      ref.multiclass.macro_f1!,
      9,
    );
  });

  it('regression: rmse, mae, r2', () => {
    const { labels, predictions } = ref.regression;
    const preds = predictions.map((p) => [p]);
    for (const m of ['rmse', 'mae', 'r2'] as MetricName[]) {
      expect(metricValue(m, preds, labels, all(labels.length), opts), m).toBeCloseTo(ref.regression[m]!, 6);
    }
  });

  it('a failed row counts as wrong, and makes regression metrics incomputable', () => {
    const labels = [1, 0, 1, 0];
    const preds = [[0.9], [], [0.8], [0.1]];
    expect(metricValue('accuracy', preds, labels, all(4), opts)).toBe(0.75);
    expect(metricValue('precision', preds, labels, all(4), opts)).toBeCloseTo(2 / 3, 12);
    expect(metricValue('logloss', preds, labels, all(4), opts)).toBeGreaterThan(8);
    expect(Number.isNaN(metricValue('rmse', [[1], []], [1, 2], all(2), opts))).toBe(true);
  });
});

describe('paired bootstrap', () => {
  /** Two binary models on the same n rows: the candidate is right with probability pc, production pb. */
  function pair(n: number, pb: number, pc: number, seed: number) {
    const random = seededRandom(seed);
    const labels: number[] = [];
    const base: number[][] = [];
    const cand: number[][] = [];
    for (let i = 0; i < n; i++) {
      const y = random() < 0.5 ? 1 : 0;
      labels.push(y);
      // Independent mistakes: the models disagree both ways, as two real models do.
      base.push([random() < pb ? y : 1 - y]);
      cand.push([random() < pc ? y : 1 - y]);
    }
    return { labels, base, cand };
  }
  const gate = { metric: 'accuracy' as const, maxRegression: 0.01 };
  const boot = { resamples: 1000, confidence: 0.95, seed: 3 };

  it('calls a large regression on many rows real, and fails the gate', () => {
    const d = pair(4000, 0.9, 0.85, 1);
    const r = judgeGate(gate, all(4000), d.labels, d.cand, { version: '1', preds: d.base }, opts, boot);
    expect(r.result).toBe('fail');
    expect(r.bootstrap?.real).toBe(true);
    expect(r.bootstrap!.lowerBound).toBeGreaterThan(0.01);
    expect(r.reason).toMatch(
      /accuracy .* worse than production v1 .* a real regression \(paired bootstrap, 1000 resamples: 95% lower bound/,
    );
  });

  it('calls the same small regression on a few rows noise, and passes saying so', () => {
    const d = pair(40, 0.9, 0.87, 7);
    const r = judgeGate(gate, all(40), d.labels, d.cand, { version: '1', preds: d.base }, opts, boot);
    expect(r.regression!).toBeGreaterThan(0.01);
    expect(r.result).toBe('pass');
    expect(r.bootstrap?.real).toBe(false);
    expect(r.reason).toMatch(/within noise at 40 rows/);
  });

  it('is deterministic for a seed and bounds the observed regression', () => {
    const d = pair(500, 0.9, 0.88, 4);
    const stat = (idx: Int32Array) =>
      metricValue('accuracy', d.base, d.labels, idx, opts) -
      metricValue('accuracy', d.cand, d.labels, idx, opts);
    const a = pairedBootstrap(all(500), stat, { ...boot, allowance: 0.01 });
    const b = pairedBootstrap(all(500), stat, { ...boot, allowance: 0.01 });
    expect(a).toEqual(b);
    const observed = stat(all(500));
    expect(a.lowerBound).toBeLessThanOrEqual(observed);
    expect(a.upperBound).toBeGreaterThanOrEqual(observed);
  });

  it('with resamples 0 judges the point values only; lower-is-better metrics gate on max', () => {
    const d = pair(40, 0.9, 0.87, 7);
    const r = judgeGate(gate, all(40), d.labels, d.cand, { version: '1', preds: d.base }, opts, {
      ...boot,
      resamples: 0,
    });
    expect(r.result).toBe('fail');
    const rmse = judgeGate(
      { metric: 'rmse', max: 0.5, maxRegression: 0 },
      all(2),
      [1, 2],
      [[1], [3]],
      undefined,
      opts,
      boot,
    );
    expect(rmse).toMatchObject({ result: 'fail', reason: 'rmse 0.707107 is above the maximum 0.5' });
  });
});
