/** The evaluation block of the ModelSpec: several gates, tasks, slices, and what is refused. */
import { describe, expect, it } from 'vitest';
import { parseSpec } from '../../specs/load';

const spec = (evaluation: Record<string, unknown>) =>
  parseSpec(
    {
      name: 'm',
      owner: 't',
      model: {
        signature: {
          inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 8] }],
          outputs: [{ name: 'score', datatype: 'FP32', shape: [-1, 1] }],
        },
      },
      slos: { p99LatencyMs: 100, errorRate: 0.01 },
      evaluation: { dataset: '/data/eval.csv', ...evaluation },
    },
    'spec.yaml',
  );

describe('ModelSpec evaluation', () => {
  it('keeps the one-metric form and takes several gates, slices and a bootstrap', () => {
    expect(spec({ min: 0.8 }).evaluation).toMatchObject({
      metric: 'accuracy',
      min: 0.8,
      task: 'binary',
      bootstrap: { resamples: 1000, confidence: 0.95, seed: 1 },
    });
    const e = spec({
      task: 'multiclass',
      metrics: [
        { metric: 'top1', min: 0.7, maxRegression: 0.01 },
        { metric: 'topk', k: 5, min: 0.9 },
        { metric: 'macro_f1' },
      ],
      slices: { column: 'country' },
    }).evaluation;
    expect(e.metrics?.map((g) => g.metric)).toEqual(['top1', 'topk', 'macro_f1']);
    expect(e.slices).toEqual({ column: 'country', minRows: 30 });
  });

  it('names the field for a gate that does not fit the task or the metric', () => {
    expect(() => spec({ task: 'regression', metrics: [{ metric: 'auc', min: 0.8 }] })).toThrow(
      /evaluation\.metrics\[0\]\.metric: auc does not apply to a regression model; expected one of rmse, mae, r2/,
    );
    expect(() => spec({ task: 'multiclass', metrics: [{ metric: 'topk', min: 0.8 }] })).toThrow(
      /evaluation\.metrics\[0\]\.k: topk needs k/,
    );
    expect(() => spec({ task: 'regression', metrics: [{ metric: 'rmse', min: 1 }] })).toThrow(
      /evaluation\.metrics\[0\]\.min: rmse: smaller is better, use max/,
    );
    expect(() => spec({ min: 0.8, metrics: [{ metric: 'auc', min: 0.8 }] })).toThrow(/not both/);
    expect(() => spec({})).toThrow(/evaluation\.min: expected min \(with metric\), or a metrics list/);
    expect(() => spec({ task: 'regression', min: 0.5 })).toThrow(/task regression needs a metrics list/);
    expect(() => spec({ dataset: '/d/x.npy', min: 0.5 })).toThrow(
      /evaluation\.labelsFile: a \.npy dataset needs labelsFile/,
    );
  });
});
