import { describe, expect, it } from 'vitest';
import { compareLatency, compareVariants } from '../../activities/analysis/compare';
import type { VariantWindow } from '../../activities/analysis/types';
import { latencyBuckets } from '../../serving/router/route';

/** A window whose n requests all took about `ms` milliseconds (spread over neighbouring buckets). */
function window(n: number, ms: number): VariantWindow {
  const values = Array.from({ length: n }, (_, i) => (ms * (0.8 + (0.4 * i) / n)) / 1000);
  const buckets = [...latencyBuckets, Infinity].map((le) => ({
    le,
    count: values.filter((v) => v <= le).length,
  }));
  return {
    requests: n,
    errors: 0,
    latency: { buckets, sum: values.reduce((a, b) => a + b, 0), count: n },
    rewards: { count: 0, sum: 0 },
  };
}

const params = { confidence: 0.98, maxErrorRateIncrease: 0.005, maxLatencyIncrease: 0.1, minSamples: 30 };

describe('latency comparison with an absolute floor', () => {
  it('a sub-millisecond gap fails a purely relative test but passes with a 5 ms floor', () => {
    const c = window(300, 1.8);
    const b = window(3000, 0.9);
    expect(compareLatency(c, b, params).result).toBe('fail');
    const floored = compareLatency(c, b, { ...params, minLatencyIncreaseMs: 5 });
    expect(floored.result).toBe('pass');
    expect(floored.explanation).toMatch(/within the absolute allowance of 5 ms/);
  });

  it('a real slowdown fails despite the floor, with the numbers in the explanation', () => {
    const verdict = compareVariants(window(300, 40), window(3000, 2), { ...params, minLatencyIncreaseMs: 5 });
    expect(verdict.result).toBe('fail');
    expect(verdict.reason).toMatch(/slower than baseline/);
  });
});
