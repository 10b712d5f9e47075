import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import reference from '../fixtures/analysis/reference.json';
import type { Verdict } from '../../workflows/api';
import { latencyBuckets } from '../../serving/router/route';
import {
  checkSlo,
  compareErrorRates,
  compareLatency,
  compareP99,
  compareVariants,
  DEFAULT_COMPARE,
  mannWhitneyBinned,
  mergeWindows,
  type VariantWindow,
} from '../../activities/analysis';
import { toBins } from '../../activities/analysis/histogram';
import { normalCdf as normalCdfOf, normalSf as normalSfOf } from '../../activities/analysis/distributions';

/** A window whose latency histogram has `counts[i]` observations in bucket i (last = +Inf). */
function windowOf(
  counts: number[],
  errors = 0,
  bounds: number[] = latencyBuckets.slice(0, counts.length - 1),
): VariantWindow {
  let cum = 0;
  const buckets = counts.map((c, i) => {
    cum += c;
    return { le: i < bounds.length ? (bounds[i] as number) : Infinity, count: cum };
  });
  return { requests: cum, errors, latency: { buckets, sum: 0, count: cum }, rewards: { count: 0, sum: 0 } };
}

const close = (a: number, b: number, rel = 1e-9): void => {
  expect(Math.abs(a - b)).toBeLessThanOrEqual(rel * Math.max(1e-300, Math.abs(b)));
};

describe('SLO guard', () => {
  const limits = { maxP99Ms: 100, maxErrorRate: 0.01, minRequests: 20 };
  // Buckets 0.0005 … : put everything at ≤ 20 ms (bucket index 11 is le=0.02).
  const fast = (n: number, errors = 0): VariantWindow => {
    const counts = new Array(latencyBuckets.length + 1).fill(0) as number[];
    counts[11] = n;
    return windowOf(counts, errors, latencyBuckets);
  };

  it('passes a healthy window and shows its numbers', () => {
    const v = checkSlo(fast(1000, 3), limits);
    expect(v.result).toBe('pass');
    expect(v.samples).toBe(1000);
    expect(v.metrics.find((m) => m.name === 'error rate')?.value).toBe(0.003);
    const p99 = v.metrics.find((m) => m.name === 'p99 latency')?.value as number;
    expect(p99).toBeGreaterThan(15);
    expect(p99).toBeLessThanOrEqual(20);
    const asVerdict: Verdict = v; // the history type accepts it as is
    expect(asVerdict.check).toBe('slo');
  });

  it('fails on error rate and on p99 with the limit in the reason', () => {
    expect(checkSlo(fast(1000, 30), limits).result).toBe('fail');
    const counts = new Array(latencyBuckets.length + 1).fill(0) as number[];
    counts[11] = 950;
    counts[18] = 50; // le 0.15
    const slow = checkSlo(windowOf(counts, 0, latencyBuckets), limits);
    expect(slow.result).toBe('fail');
    expect(slow.reason).toContain('p99 latency');
    expect(slow.reason).toContain('100');
  });

  it('is inconclusive, never a pass, with too few requests', () => {
    const v = checkSlo(fast(5), limits);
    expect(v.result).toBe('inconclusive');
    expect(v.reason).toContain('20 needed');
    expect(checkSlo(windowOf([0, 0]), limits).result).toBe('inconclusive');
  });

  it('fails a starved window whose errors already break the limit', () => {
    expect(checkSlo(fast(5, 3), limits).result).toBe('fail');
  });

  it('rejects nonsense limits by name', () => {
    expect(() => checkSlo(fast(10), { ...limits, maxP99Ms: -1 })).toThrow(/maxP99Ms/);
  });
});

describe('what a passing error-rate look could have caught', () => {
  it('names the increase it catches about 4 times in 5, and simulation agrees', () => {
    // mulberry32: a fixed stream, so this check is the same on every run
    let state = 20261122;
    const rand = (): number => {
      state = (state + 0x6d2b79f5) | 0;
      let t = Math.imul(state ^ (state >>> 15), 1 | state);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const draw = (n: number, rate: number): number => {
      let k = 0;
      for (let i = 0; i < n; i++) if (rand() < rate) k++;
      return k;
    };
    for (const [n, base] of [
      [120, 0.0],
      [300, 0.01],
      [2000, 0.02],
    ] as const) {
      const look = compareErrorRates(
        { ...windowOf([n]), errors: Math.round(n * base) },
        { ...windowOf([n]), errors: Math.round(n * base) },
        DEFAULT_COMPARE,
      );
      expect(look.result).toBe('pass');
      const d = look.details?.detectableIncrease as number;
      expect(look.explanation).toContain(
        `an increase of ${(d * 100).toFixed(3)}% or more would be caught about 4 times in 5`,
      );
      let caught = 0;
      const trials = 2000;
      for (let i = 0; i < trials; i++) {
        const t = compareErrorRates(
          { ...windowOf([n]), errors: draw(n, base + d) },
          { ...windowOf([n]), errors: draw(n, base) },
          DEFAULT_COMPARE,
        );
        if (t.result === 'fail') caught++;
      }
      expect(caught / trials, `n=${n} base=${base} d=${d}`).toBeGreaterThan(0.7);
      expect(caught / trials, `n=${n} base=${base} d=${d}`).toBeLessThan(0.95);
    }
    // more requests, a finer look
    const thin = compareErrorRates(windowOf([100]), windowOf([100]), DEFAULT_COMPARE);
    const wide = compareErrorRates(windowOf([10_000]), windowOf([10_000]), DEFAULT_COMPARE);
    expect(wide.details?.detectableIncrease as number).toBeLessThan(
      thin.details?.detectableIncrease as number,
    );
  });
});

describe('two-proportion test against statsmodels (Agresti–Caffo)', () => {
  it('matches z and p for every reference case', () => {
    for (const c of reference.twoProportion) {
      const [xc, nc] = c.candidate as [number, number];
      const [xb, nb] = c.baseline as [number, number];
      const t = compareErrorRates(
        { ...windowOf([nc]), errors: xc },
        { ...windowOf([nb]), errors: xb },
        { ...DEFAULT_COMPARE, maxErrorRateIncrease: c.margin, minSamples: 1 },
      );
      close(t.details?.z as number, c.z, 1e-5);
      close(t.pValue as number, c.p, 1e-5);
      expect(t.result).toBe(c.p < 0.02 ? 'fail' : 'pass');
    }
  });

  it('is inconclusive below minSamples and says so', () => {
    const t = compareErrorRates({ ...windowOf([10]), errors: 5 }, windowOf([1000]), DEFAULT_COMPARE);
    expect(t.result).toBe('inconclusive');
    expect(t.pValue).toBeNull();
    expect(t.explanation).toContain('50 each needed');
  });

  it('rejects errors above requests with the field name', () => {
    expect(() =>
      compareErrorRates({ ...windowOf([10]), errors: 11 }, windowOf([10]), DEFAULT_COMPARE),
    ).toThrow(/candidate\.errors/);
  });
});

describe('Mann-Whitney U on binned data against SciPy', () => {
  it('matches U and the tie-corrected one-sided p-value', () => {
    for (const c of reference.mannWhitney) {
      const r = mannWhitneyBinned(c.candidate, c.baseline);
      close(r.u, c.u, 1e-12);
      const p = r.variance > 0 ? normalSfOf((r.u - r.mean - 0.5) / Math.sqrt(r.variance)) : 1;
      close(p, c.p, 1e-9);
    }
  });

  it('compareLatency with no tolerance gives SciPy’s p-value on a histogram', () => {
    for (const c of reference.mannWhitney) {
      const cand = windowOf(c.candidate);
      const base = windowOf(c.baseline);
      const t = compareLatency(cand, base, { ...DEFAULT_COMPARE, maxLatencyIncrease: 0, minSamples: 1 });
      if (c.p === 1 || Number.isNaN(c.p)) continue;
      close(t.pValue as number, c.p, 1e-5);
    }
  });
});

describe('latency comparison with a tolerance band', () => {
  const lognormalCounts = (n: number, median: number, sigma: number): number[] => {
    // Deterministic expected counts per router bucket (rounded) for a lognormal latency.
    const bounds = [...latencyBuckets, Infinity];
    let prev = 0;
    return bounds.map((le) => {
      const cdf = le === Infinity ? 1 : normalCdfOf(Math.log(le / median) / sigma);
      const c = Math.round(n * (cdf - prev));
      prev = cdf;
      return c;
    });
  };

  it('fails a candidate 30% slower and passes one 5% slower, at 10% tolerance', () => {
    const base = windowOf(lognormalCounts(5000, 0.02, 0.5), 0, latencyBuckets);
    const slow = windowOf(lognormalCounts(600, 0.026, 0.5), 0, latencyBuckets);
    const bit = windowOf(lognormalCounts(600, 0.021, 0.5), 0, latencyBuckets);
    const fail = compareLatency(slow, base, DEFAULT_COMPARE);
    expect(fail.result).toBe('fail');
    expect(fail.explanation).toContain('slower');
    expect(compareLatency(bit, base, DEFAULT_COMPARE).result).toBe('pass');
    // Without tolerance the 5% shift is visible with enough data.
    const big = windowOf(lognormalCounts(20000, 0.021, 0.5), 0, latencyBuckets);
    expect(compareLatency(big, base, { ...DEFAULT_COMPARE, maxLatencyIncrease: 0 }).result).toBe('fail');
  });

  it('p99 order-statistic bound fails a clearly slower tail and is inconclusive when starved', () => {
    const base = windowOf(lognormalCounts(6000, 0.02, 0.5), 0, latencyBuckets);
    const tail = lognormalCounts(3000, 0.02, 0.5);
    tail[23] = (tail[23] ?? 0) + 120; // le 1 s: 4% of requests now take up to a second
    const t = compareP99(windowOf(tail, 0, latencyBuckets), base, DEFAULT_COMPARE);
    expect(t.result).toBe('fail');
    expect(
      compareP99(base, windowOf(lognormalCounts(100, 0.02, 0.5), 0, latencyBuckets), DEFAULT_COMPARE).result,
    ).toBe('inconclusive');
  });

  it('combines into one verdict with every test’s numbers', () => {
    const base = windowOf(lognormalCounts(5000, 0.02, 0.5), 50, latencyBuckets);
    const same = windowOf(lognormalCounts(600, 0.02, 0.5), 6, latencyBuckets);
    const v = compareVariants(same, base, DEFAULT_COMPARE);
    expect(v.result).toBe('pass');
    expect(v.tests.map((t) => t.test)).toEqual([
      'two-proportion-z',
      'mann-whitney-u',
      'quantile-order-statistic',
    ]);
    const asVerdict: Verdict = v;
    expect(asVerdict.reason).toContain('no evidence of an increase');
    const starved = compareVariants(windowOf([3, 4]), base, DEFAULT_COMPARE);
    expect(starved.result).toBe('inconclusive');
    const broken = compareVariants({ ...same, errors: 60 }, base, DEFAULT_COMPARE);
    expect(broken.result).toBe('fail');
    expect(broken.reason).toContain('error rate');
  });
});

describe('properties', () => {
  const bucketCounts = fc.array(fc.nat({ max: 200 }), { minLength: 6, maxLength: 6 });

  it('p-values stay in [0, 1] and identical windows never fail', () => {
    fc.assert(
      fc.property(bucketCounts, bucketCounts, fc.nat({ max: 50 }), (a, b, e) => {
        const wa = windowOf(a);
        const wb = windowOf(b);
        const errA = Math.min(e, wa.requests);
        const v = compareVariants(
          { ...wa, errors: errA },
          { ...wb, errors: Math.min(e, wb.requests) },
          DEFAULT_COMPARE,
        );
        for (const t of v.tests) {
          if (t.pValue !== null) {
            expect(t.pValue).toBeGreaterThanOrEqual(0);
            expect(t.pValue).toBeLessThanOrEqual(1);
          }
        }
        // A/A: the same window against itself is never a fail.
        expect(
          compareVariants({ ...wa, errors: errA }, { ...wa, errors: errA }, DEFAULT_COMPARE).result,
        ).not.toBe('fail');
      }),
      { numRuns: 300 },
    );
  });

  it('rebinning keeps the mass and merging adds windows', () => {
    fc.assert(
      fc.property(bucketCounts, bucketCounts, (a, b) => {
        const merged = mergeWindows(windowOf(a), windowOf(b));
        expect(merged.requests).toBe(a.reduce((s, x) => s + x, 0) + b.reduce((s, x) => s + x, 0));
        const bins = toBins(merged.latency);
        expect(bins.map((x) => x.count)).toEqual(a.map((x, i) => x + (b[i] ?? 0)));
      }),
    );
  });
});
