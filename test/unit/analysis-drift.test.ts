import { describe, expect, it } from 'vitest';
import {
  binIndex,
  binnedKs,
  countsBetween,
  histogram,
  judgeDrift,
  psi,
  quantileEdges,
  type DriftReference,
} from '../../activities/analysis/drift';
import { createRng } from '../../demo/dataset';

const normals = (n: number, seed: number, shift = 0): number[] => {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => rng.normal() + shift);
};

describe('drift statistics', () => {
  it('quantile edges split the reference into equal bins; ties give fewer bins', () => {
    const values = Array.from({ length: 1000 }, (_, i) => i);
    const edges = quantileEdges(values, 10);
    expect(edges).toHaveLength(9);
    expect(histogram(edges, values)).toEqual(new Array(10).fill(100));
    expect(quantileEdges([1, 1, 1, 1, 2], 4)).toEqual([1]);
    expect(binIndex([1, 2], 1)).toBe(0);
    expect(binIndex([1, 2], 1.5)).toBe(1);
    expect(binIndex([1, 2], 9)).toBe(2);
  });

  it('PSI is near 0 for the same distribution and crosses 0.25 for a one-SD shift', () => {
    const ref = normals(5000, 1);
    const edges = quantileEdges(ref, 10);
    const e = histogram(edges, ref);
    const same = psi(e, histogram(edges, normals(2000, 2)));
    const moved = psi(e, histogram(edges, normals(2000, 3, 1)));
    expect(same).toBeLessThan(0.02);
    expect(moved).toBeGreaterThan(0.25);
    expect(() => psi([1, 2], [1, 2, 3])).toThrow(/same bins/);
  });

  it('binned KS: p near 1 for the same distribution, tiny for a shift', () => {
    const ref = normals(5000, 4);
    const edges = quantileEdges(ref, 10);
    const e = histogram(edges, ref);
    expect(binnedKs(e, histogram(edges, normals(1000, 5))).pValue).toBeGreaterThan(0.01);
    const shifted = binnedKs(e, histogram(edges, normals(1000, 6, 0.5)));
    expect(shifted.d).toBeGreaterThan(0.15);
    expect(shifted.pValue).toBeLessThan(1e-6);
  });

  it('judges a window feature by feature and names the one that moved', () => {
    const refs = [normals(3000, 7), normals(3000, 8)];
    const ref: DriftReference = {
      input: 'features',
      output: 'score',
      sampleRate: 1,
      features: refs.map((r, i) => {
        const edges = quantileEdges(r, 10);
        return { name: `f${i}`, column: i, edges, counts: histogram(edges, r) };
      }),
    };
    const t = { notice: 0.1, act: 0.25, ksAlpha: 0.001, minSamples: 500 };
    const windowOf = (shift1: number) => ({
      rows: 1000,
      features: {
        f0: histogram(ref.features[0]!.edges, normals(1000, 9)),
        f1: histogram(ref.features[1]!.edges, normals(1000, 10, shift1)),
      },
    });
    const stable = judgeDrift(ref, windowOf(0), t);
    expect(stable.level).toBe('stable');
    expect(stable.result).toBe('pass');
    const moved = judgeDrift(ref, windowOf(1.5), t);
    expect(moved.level).toBe('act');
    expect(moved.result).toBe('fail');
    expect(moved.features[0]?.feature).toBe('f1');
    expect(moved.reason).toMatch(/^drift: f1 PSI/);
    expect(moved.features.find((f) => f.feature === 'f0')?.level).toBe('stable');
    expect(judgeDrift(ref, { rows: 100, features: {} }, t).result).toBe('inconclusive');
  });

  it('counts between two cumulative reads; a restart (counts going back) is undefined', () => {
    const a = { rows: 10, features: { f0: [5, 5] } };
    const b = { rows: 30, features: { f0: [15, 15] } };
    expect(countsBetween(a, b)).toEqual({ rows: 20, features: { f0: [10, 10] } });
    expect(countsBetween(b, a)).toBeUndefined();
    expect(countsBetween(undefined, a)).toBe(a);
  });
});
