import { describe, expect, it } from 'vitest';
import { DriftHistograms, parseDriftReference } from '../../serving/server/drift';
import { Registry } from 'prom-client';
import { testSpec } from '../helpers/promotion';

describe('watch settings in the ModelSpec', () => {
  it('defaults to a 24h watch with the SRE Workbook windows', () => {
    const w = testSpec('wt-defaults').watch;
    expect(w.duration).toBe(86_400_000);
    expect(w.page).toEqual([
      { factor: 14.4, long: 3_600_000, short: 300_000 },
      { factor: 6, long: 21_600_000, short: 1_800_000 },
    ]);
    expect(w.ticket).toEqual([{ factor: 3, long: 86_400_000, short: 7_200_000 }]);
    expect(w.drift).toMatchObject({ notice: 0.1, act: 0.25, action: 'notify', bins: 10, minSamples: 500 });
  });

  it('names the field of a bad watch setting', () => {
    expect(() => testSpec('wt-bad', { watch: { drift: { action: 'retrain' } } })).toThrow(
      /watch\.drift\.webhook: action retrain needs a webhook URL/,
    );
    expect(() => testSpec('wt-bad', { watch: { drift: { act: 0.05 } } })).toThrow(
      /watch\.drift\.act: expected act ≥ notice \(0\.1\)/,
    );
    expect(() =>
      testSpec('wt-bad', { watch: { page: [{ factor: 14.4, long: 'soon', short: '5m' }] } }),
    ).toThrow(/watch\.page\[0\]\.long: expected a duration/);
    expect(() => testSpec('wt-bad', { watch: { drift: { edges: { f0: [1, 0.5] } } } })).toThrow(
      /watch\.drift\.edges\.f0\[1\]: expected increasing edges/,
    );
  });
});

describe('the model server drift histograms', () => {
  const sig = {
    inputs: [{ name: 'features', datatype: 'FP32' as const, shape: [-1, 2] }],
    outputs: [{ name: 'score', datatype: 'FP32' as const, shape: [-1, 1] }],
    batched: true,
  };
  const ref = {
    input: 'features',
    output: 'score',
    sampleRate: 1,
    features: [
      { name: 'a', column: 0, edges: [0], counts: [5, 5] },
      { name: 'b', column: 1, edges: [0, 1], counts: [3, 3, 4] },
    ],
    prediction: { name: 'prediction', edges: [0.5], counts: [5, 5] },
  };

  it('refuses a reference it cannot use, naming what is wrong', () => {
    expect(() => parseDriftReference('{not json')).toThrow(/--drift-reference: not JSON/);
    expect(() =>
      parseDriftReference(
        JSON.stringify({ ...ref, features: [{ name: 'a', column: 0, edges: [0], counts: [1] }] }),
      ),
    ).toThrow(/--drift-reference: features\.0: expected one count more than edges/);
    expect(() => new DriftHistograms({ ...ref, input: 'x' }, sig as never, 'm', '1', new Registry())).toThrow(
      /no input "x"/,
    );
  });

  it('counts sampled rows per bin and exposes PSI per feature', async () => {
    const registry = new Registry();
    const h = new DriftHistograms(parseDriftReference(JSON.stringify(ref)), sig as never, 'm', '1', registry);
    const inputs = [{ type: 'float32' as const, dims: [2, 2], data: Float32Array.from([-1, 0.5, 2, 3]) }];
    expect(h.sample(inputs as never)).toBe(true);
    h.predicted(
      new Map([
        [
          'score',
          { name: 'score', tensor: { type: 'float32', dims: [2, 1], data: Float32Array.from([0.2, 0.9]) } },
        ],
      ]) as never,
      2,
    );
    const r = h.report();
    expect(r.counts).toEqual({ rows: 2, features: { a: [1, 1], b: [0, 1, 1], prediction: [1, 1] } });
    const text = await registry.metrics();
    expect(text).toMatch(/runway_drift_psi\{model="m",version="1",feature="a"\} [\d.]+/);
    expect(text).toMatch(/runway_drift_observations_total\{model="m",version="1",feature="b",bin="2"\} 1/);
    // Not sampled: nothing counted.
    const never = new DriftHistograms({ ...ref, sampleRate: 0 }, sig as never, 'm', '1', new Registry());
    expect(never.sample(inputs as never)).toBe(false);
    expect(never.report().counts.rows).toBe(0);
  });
});
