import { describe, expect, it } from 'vitest';
import { parsePrometheusText } from '../../serving/metrics/prom-text';
import { snapshotFromSamples } from '../../serving/metrics/scrape';
import type { Histogram, MetricsSnapshot } from '../../serving/metrics/source';
import { emptyCounters, quantileFromHistogram, windowBetween } from '../../serving/metrics/window';
import { RouterMetrics } from '../../serving/router/metrics';

const hist = (pairs: [number, number][], sum = 0): Histogram => ({
  buckets: pairs.map(([le, count]) => ({ le, count })),
  sum,
  count: pairs[pairs.length - 1]![1],
});

describe('Prometheus text parser', () => {
  it('reads labels with escapes, special values, timestamps and skips comments', () => {
    const samples = parsePrometheusText(
      [
        '# HELP x_total A counter',
        '# TYPE x_total counter',
        'x_total{model="fraud",variant="v1",note="a \\"quoted\\" \\\\ value\\nnext"} 42 1700000000000',
        'y_bucket{le="+Inf"} 7',
        'z NaN',
        'w -Inf',
        'v 1.5e-3',
        '',
      ].join('\n'),
    );
    expect(samples[0]).toEqual({
      name: 'x_total',
      labels: { model: 'fraud', variant: 'v1', note: 'a "quoted" \\ value\nnext' },
      value: 42,
    });
    expect(samples[1]!.labels.le).toBe('+Inf');
    expect(samples[2]!.value).toBeNaN();
    expect(samples[3]!.value).toBe(-Infinity);
    expect(samples[4]!.value).toBe(0.0015);
    expect(() => parsePrometheusText('bad{model="x} 1')).toThrow(/line 1/);
    expect(() => parsePrometheusText('ok 12abc')).toThrow(/bad value/);
  });
});

describe('snapshot from router metrics', () => {
  it('folds the router registry into per-variant counters', async () => {
    const m = new RouterMetrics(1_700_000_000_123);
    m.initVariant('fraud', 'v1');
    m.initShadow('fraud', 'v2');
    const v1Hot = m.instruments('fraud', 'v1');
    v1Hot.requests['2xx'].inc(90);
    v1Hot.requests['5xx'].inc(7);
    v1Hot.requests['4xx'].inc(3);
    m.instruments('other', 'v1').requests['2xx'].inc(1000);
    for (let i = 0; i < 10; i++) v1Hot.duration.observe(0.0012);
    m.mirrored.inc({ model: 'fraud', variant: 'v2' }, 5);
    m.mirrorDropped.inc({ model: 'fraud', variant: 'v2' }, 1);
    m.shadowComparisons.inc({ model: 'fraud', variant: 'v2', result: 'agree' }, 4);
    m.shadowComparisons.inc({ model: 'fraud', variant: 'v2', result: 'error' }, 1);
    m.shadowDuration.observe({ model: 'fraud', variant: 'v2' }, 0.02);
    m.rewards.inc({ model: 'fraud', variant: 'v1' }, 3);
    m.rewardSum.inc({ model: 'fraud', variant: 'v1' }, 2);

    const snap = snapshotFromSamples('fraud', parsePrometheusText(await m.registry.metrics()), 'T');
    expect(snap.epoch).toBe('1700000000123');
    expect(Object.keys(snap.variants).sort()).toEqual(['v1', 'v2']);
    const v1 = snap.variants.v1!;
    expect([v1.requests, v1.errors, v1.clientErrors]).toEqual([100, 7, 3]);
    expect(v1.latency.count).toBe(10);
    expect(v1.latency.sum).toBeCloseTo(0.012);
    expect(v1.latency.buckets.find((b) => b.le === 0.001)!.count).toBe(0);
    expect(v1.latency.buckets.find((b) => b.le === 0.0015)!.count).toBe(10);
    expect(v1.latency.buckets.at(-1)).toEqual({ le: Infinity, count: 10 });
    expect(v1.rewards).toEqual({ count: 3, sum: 2 });
    const v2 = snap.variants.v2!;
    expect([v2.mirrored, v2.mirrorDropped, v2.requests]).toEqual([5, 1, 0]);
    expect(v2.shadow).toMatchObject({ agree: 4, disagree: 0, error: 1 });
    expect(v2.shadow.latency.count).toBe(1);
  });

  it('initialising a variant again (every route change does) keeps what it counted', async () => {
    const m = new RouterMetrics();
    m.initVariant('fraud', 'v1');
    m.initShadow('fraud', 'v2');
    for (let i = 0; i < 5; i++) m.instruments('fraud', 'v1').duration.observe(0.0008);
    m.shadowDuration.observe({ model: 'fraud', variant: 'v2' }, 0.02);
    const before = snapshotFromSamples('fraud', parsePrometheusText(await m.registry.metrics()), 'a');
    m.initVariant('fraud', 'v1');
    m.initVariant('fraud', 'v2');
    m.initShadow('fraud', 'v2');
    m.instruments('fraud', 'v1').duration.observe(0.0008);
    const after = snapshotFromSamples('fraud', parsePrometheusText(await m.registry.metrics()), 'b');
    expect(after.variants.v1!.latency.buckets.find((b) => b.le === 0.001)!.count).toBe(6);
    expect(after.variants.v2!.shadow.latency.count).toBe(1);
    const w = windowBetween(before, after);
    expect(w.gap, w.gapReason).toBe(false);
    expect(w.variants.v1!.latency.count).toBe(1);
  });
});

describe('windows between snapshots', () => {
  const snap = (
    epoch: string,
    requests: number,
    latency: [number, number][],
    extra = {},
  ): MetricsSnapshot => ({
    model: 'fraud',
    takenAt: `t${requests}`,
    epoch,
    variants: { v1: { ...emptyCounters(), requests, latency: hist(latency), ...extra } },
  });

  it('returns per-variant deltas, counting new variants from zero', () => {
    const a = snap('e1', 10, [
      [0.01, 5],
      [Infinity, 10],
    ]);
    const b = snap('e1', 30, [
      [0.01, 20],
      [Infinity, 30],
    ]);
    b.variants.v2 = { ...emptyCounters(), requests: 4, rewards: { count: 2, sum: 1 } };
    const w = windowBetween(a, b);
    expect(w.gap).toBe(false);
    expect(w.variants.v1!.requests).toBe(20);
    expect(w.variants.v1!.latency.buckets).toEqual([
      { le: 0.01, count: 15 },
      { le: Infinity, count: 20 },
    ]);
    expect(w.variants.v2!.requests).toBe(4);
    expect(w.variants.v2!.rewards).toEqual({ count: 2, sum: 1 });
  });

  it('flags a restart or a counter going backwards as a gap, never negative numbers', () => {
    const a = snap('e1', 100, [[Infinity, 100]]);
    expect(windowBetween(a, snap('e2', 5, [[Infinity, 5]]))).toMatchObject({ gap: true, variants: {} });
    const back = windowBetween(a, snap('e1', 5, [[Infinity, 5]]));
    expect(back.gap).toBe(true);
    expect(back.gapReason).toMatch(/v1 requests went from 100 to 5/);
  });
});

describe('quantile from histogram', () => {
  it('interpolates linearly within the bucket, like histogram_quantile', () => {
    const h = hist([
      [0.001, 0],
      [0.002, 50],
      [0.004, 90],
      [0.01, 100],
      [Infinity, 100],
    ]);
    expect(quantileFromHistogram(h, 0.5)).toBeCloseTo(0.002);
    expect(quantileFromHistogram(h, 0.25)).toBeCloseTo(0.0015);
    expect(quantileFromHistogram(h, 0.7)).toBeCloseTo(0.003);
    expect(quantileFromHistogram(h, 0.99)).toBeCloseTo(0.0094);
    // The first bucket starts at zero; a rank in +Inf answers the highest finite bound.
    expect(
      quantileFromHistogram(
        hist([
          [0.01, 10],
          [Infinity, 10],
        ]),
        0.5,
      ),
    ).toBeCloseTo(0.005);
    expect(
      quantileFromHistogram(
        hist([
          [0.01, 5],
          [Infinity, 10],
        ]),
        0.9,
      ),
    ).toBe(0.01);
    expect(
      quantileFromHistogram(
        hist([
          [0.01, 0],
          [Infinity, 0],
        ]),
        0.5,
      ),
    ).toBeNaN();
  });
});
