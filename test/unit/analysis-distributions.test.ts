import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import reference from '../fixtures/analysis/reference.json';
import {
  betaCdf,
  betaPpf,
  binomialCdf,
  binomialPpf,
  normalCdf,
  normalPpf,
  normalSf,
  Rng,
} from '../../activities/analysis/distributions';

const close = (actual: number, expected: number, rel = 1e-9, abs = 1e-15): void => {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(Math.max(abs, rel * Math.abs(expected)));
};

describe('distributions against SciPy', () => {
  it('normal cdf, survival and quantile', () => {
    for (const [z, v] of reference.normal.cdf as [number, number][]) close(normalCdf(z), v, 1e-12, 1e-300);
    for (const [z, v] of reference.normal.sf as [number, number][]) close(normalSf(z), v, 1e-12, 1e-300);
    for (const [p, v] of reference.normal.ppf as [number, number][]) close(normalPpf(p), v, 1e-10);
  });

  it('beta cdf and quantile', () => {
    for (const [a, b, x, v] of reference.beta.cdf as [number, number, number, number][])
      close(betaCdf(x, a, b), v, 1e-10);
    for (const [a, b, p, v] of reference.beta.ppf as [number, number, number, number][])
      close(betaPpf(p, a, b), v, 1e-9);
  });

  it('binomial cdf and quantile', () => {
    for (const [k, n, p, v] of reference.binomial.cdf as [number, number, number, number][]) {
      close(binomialCdf(k, n, p), v, 1e-10, 1e-14);
    }
    for (const [q, n, p, v] of reference.binomial.ppf as [number, number, number, number][]) {
      expect(binomialPpf(q, n, p)).toBe(v);
    }
  });

  it('quantile inverts the cdf everywhere', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-12, max: 1 - 1e-12, noNaN: true }), (p) => {
        close(normalCdf(normalPpf(p)), p, 1e-9);
      }),
    );
  });
});

describe('seeded generator', () => {
  it('repeats itself for a seed and differs across seeds', () => {
    const draw = (seed: number): number[] => {
      const r = new Rng(seed);
      return Array.from({ length: 5 }, () => r.uniform());
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
  });

  it('has the right moments for uniform, normal, beta and binomial draws', () => {
    const r = new Rng(7);
    const n = 40_000;
    const mean = (f: () => number): [number, number] => {
      let s = 0;
      let s2 = 0;
      for (let i = 0; i < n; i++) {
        const x = f();
        s += x;
        s2 += x * x;
      }
      return [s / n, s2 / n - (s / n) ** 2];
    };
    const [mu, vu] = mean(() => r.uniform());
    expect(Math.abs(mu - 0.5)).toBeLessThan(0.01);
    expect(Math.abs(vu - 1 / 12)).toBeLessThan(0.003);
    const [mn, vn] = mean(() => r.normal());
    expect(Math.abs(mn)).toBeLessThan(0.03);
    expect(Math.abs(vn - 1)).toBeLessThan(0.03);
    const [mb, vb] = mean(() => r.beta(2, 5));
    expect(Math.abs(mb - 2 / 7)).toBeLessThan(0.005);
    expect(Math.abs(vb - (2 * 5) / (49 * 8))).toBeLessThan(0.002);
    const [ms] = mean(() => r.beta(0.5, 0.5));
    expect(Math.abs(ms - 0.5)).toBeLessThan(0.01);
    const [mk, vk] = mean(() => r.binomial(150, 0.02));
    expect(Math.abs(mk - 3)).toBeLessThan(0.05);
    expect(Math.abs(vk - 2.94)).toBeLessThan(0.1);
  });
});
