import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import reference from '../fixtures/analysis/reference.json';
import { DEFAULT_BANDIT, thompsonWeights, weightsFromShares } from '../../activities/analysis';

describe('Thompson sampling', () => {
  it('is deterministic for the same rewards and seed', () => {
    const arms = { v6: { count: 400, sum: 40 }, v7: { count: 400, sum: 52 } };
    const a = thompsonWeights(arms, DEFAULT_BANDIT, 12345);
    const b = thompsonWeights({ v7: arms.v7, v6: arms.v6 }, DEFAULT_BANDIT, 12345);
    expect(a).toEqual(b);
    expect(a.seed).toBe(12345);
    const c = thompsonWeights(arms, DEFAULT_BANDIT, 54321);
    expect(c.posteriors[0]?.probabilityBest).not.toBe(a.posteriors[0]?.probabilityBest);
  });

  it('estimates the probability of best close to quadrature', () => {
    for (const c of reference.probabilityBest) {
      const [[a1, b1], [a2, b2]] = c.arms as [[number, number], [number, number]];
      // Posterior Beta(a, b) from a Beta(1, 1) prior: successes a − 1, failures b − 1.
      const v = thompsonWeights(
        { a: { count: a1 + b1 - 2, sum: a1 - 1 }, b: { count: a2 + b2 - 2, sum: a2 - 1 } },
        { ...DEFAULT_BANDIT, draws: 40_000 },
        7,
      );
      const p = v.posteriors[0]?.probabilityBest as number;
      const sd = Math.sqrt((c.probabilityFirstBest * (1 - c.probabilityFirstBest)) / 40_000);
      expect(Math.abs(p - c.probabilityFirstBest)).toBeLessThan(4 * sd + 1e-9);
    }
  });

  it('shows the posteriors behind the weights and stops on a clear winner', () => {
    const v = thompsonWeights(
      { v6: { count: 3000, sum: 300 }, v7: { count: 3000, sum: 390 } },
      DEFAULT_BANDIT,
      1,
      'v7',
    );
    expect(v.decision).toBe('stop');
    expect(v.result).toBe('pass');
    expect(v.best).toBe('v7');
    expect(v.weights).toEqual({ v6: 5, v7: 95 });
    const v7 = v.posteriors.find((p) => p.arm === 'v7');
    expect(v7).toMatchObject({ alpha: 391, beta: 2611, successes: 390, failures: 2610 });
    expect(v7?.credible95[0]).toBeLessThan(0.13);
    expect(v7?.credible95[1]).toBeGreaterThan(0.13);
    expect(v.reason).toContain('v7 is best');
    const lost = thompsonWeights(
      { v6: { count: 3000, sum: 390 }, v7: { count: 3000, sum: 300 } },
      DEFAULT_BANDIT,
      1,
      'v7',
    );
    expect(lost.result).toBe('fail');
  });

  it('does not stop before minRewards', () => {
    const v = thompsonWeights({ a: { count: 50, sum: 50 }, b: { count: 50, sum: 0 } }, DEFAULT_BANDIT, 3);
    expect(v.decision).toBe('continue');
    expect(v.reason).toContain('collecting');
  });

  it('validates its inputs by name', () => {
    expect(() => thompsonWeights({ a: { count: 1, sum: 0 } }, DEFAULT_BANDIT, 1)).toThrow(/two arms/);
    expect(() =>
      thompsonWeights({ a: { count: 1, sum: 2 }, b: { count: 1, sum: 0 } }, DEFAULT_BANDIT, 1),
    ).toThrow(/arm a/);
    expect(() => weightsFromShares([0.5, 0.5, 0.5], 40)).toThrow(/explorationFloor/);
  });

  it('weights always sum to 100 and respect the floor', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 2, maxLength: 6 }),
        fc.integer({ min: 0, max: 16 }),
        (shares, floor) => {
          const w = weightsFromShares(shares, floor);
          expect(w.reduce((s, x) => s + x, 0)).toBe(100);
          for (const x of w) {
            expect(Number.isInteger(x)).toBe(true);
            expect(x).toBeGreaterThanOrEqual(floor);
          }
        },
      ),
    );
    fc.assert(
      fc.property(fc.nat({ max: 500 }), fc.nat({ max: 500 }), fc.nat({ max: 1000 }), (s1, s2, seed) => {
        const v = thompsonWeights(
          { a: { count: 500, sum: s1 }, b: { count: 500, sum: s2 } },
          { ...DEFAULT_BANDIT, draws: 200 },
          seed,
        );
        const w = Object.values(v.weights);
        expect(w.reduce((s, x) => s + x, 0)).toBe(100);
        expect(Math.min(...w)).toBeGreaterThanOrEqual(5);
      }),
      { numRuns: 50 },
    );
  });
});
