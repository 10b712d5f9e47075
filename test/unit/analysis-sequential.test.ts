import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import reference from '../fixtures/analysis/reference.json';
import { abTest, DEFAULT_AB, Rng } from '../../activities/analysis';
import { confidenceHalfWidth, logMixtureRatio } from '../../activities/analysis/sequential';

describe('mSPRT', () => {
  it('closed-form mixture ratio matches numerical integration over the prior', () => {
    for (const c of reference.msprt) {
      const got = logMixtureRatio(c.estimate, 0, c.variance, c.tau);
      expect(Math.abs(got - c.logRatio)).toBeLessThan(1e-6 * Math.max(1, Math.abs(c.logRatio)));
    }
  });

  it('the interval edge is exactly where the ratio reaches 1/α', () => {
    const v = 4e-5;
    const tau = 0.02;
    const h = confidenceHalfWidth(v, tau, 0.05);
    expect(Math.abs(logMixtureRatio(0.01 + h, 0.01, v, tau) - Math.log(20))).toBeLessThan(1e-9);
  });

  it('a clear winner wins, a clear loser loses, and the numbers explain it', () => {
    const win = abTest({ count: 20000, sum: 2400 }, { count: 20000, sum: 2000 }, DEFAULT_AB);
    expect(win.decision).toBe('candidate_wins');
    expect(win.result).toBe('pass');
    expect(win.lift).toBeCloseTo(0.02, 10);
    expect(win.relativeLift).toBeCloseTo(0.2, 10);
    expect(win.ci[0]).toBeGreaterThan(0);
    expect(win.pValue).toBeLessThanOrEqual(0.05);
    const lose = abTest({ count: 20000, sum: 1600 }, { count: 20000, sum: 2000 }, DEFAULT_AB);
    expect(lose.decision).toBe('baseline_wins');
    expect(lose.result).toBe('fail');
    expect(lose.reason).toContain('earns less');
  });

  it('waits for minRewards and for evidence', () => {
    expect(abTest({ count: 50, sum: 50 }, { count: 50, sum: 0 }, DEFAULT_AB).decision).toBe('continue');
    const close = abTest({ count: 5000, sum: 505 }, { count: 5000, sum: 500 }, DEFAULT_AB);
    expect(close.decision).toBe('continue');
    expect(close.ci[0]).toBeLessThan(0);
    expect(close.ci[1]).toBeGreaterThan(0);
  });

  it('a minimum effect the interval rules out ends the test for the baseline', () => {
    const flat = abTest(
      { count: 200000, sum: 20100 },
      { count: 200000, sum: 20000 },
      { ...DEFAULT_AB, minimumEffect: 0.01 },
    );
    expect(flat.decision).toBe('baseline_wins');
    expect(flat.reason).toContain('minimum effect');
  });

  it('keeps the running minimum p-value and interval intersection across looks', () => {
    const first = abTest({ count: 4000, sum: 470 }, { count: 4000, sum: 400 }, DEFAULT_AB);
    const second = abTest({ count: 8000, sum: 840 }, { count: 8000, sum: 800 }, DEFAULT_AB, first);
    expect(second.pValue).toBeLessThanOrEqual(first.pValue);
    expect(second.ci[0]).toBeGreaterThanOrEqual(first.ci[0]);
    expect(second.ci[1]).toBeLessThanOrEqual(first.ci[1]);
  });

  it('rejects rewards outside [0, 1] by field', () => {
    expect(() => abTest({ count: 10, sum: 11 }, { count: 10, sum: 1 }, DEFAULT_AB)).toThrow(
      /candidate\.rewards\.sum/,
    );
  });

  it('p-values stay in [0, 1] and A/A symmetric data never decides', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100000 }), fc.double({ min: 0, max: 1, noNaN: true }), (n, r) => {
        const w = { count: n, sum: Math.round(n * r) };
        const v = abTest(w, w, DEFAULT_AB);
        expect(v.pValue).toBeGreaterThanOrEqual(0);
        expect(v.pValue).toBeLessThanOrEqual(1);
        expect(v.decision).toBe('continue');
      }),
    );
  });

  it('keeps type-I error under α while peeking every interval (small simulation)', () => {
    const rng = new Rng(99);
    let falseWins = 0;
    const runs = 300;
    for (let run = 0; run < runs; run++) {
      const c = { count: 0, sum: 0 };
      const b = { count: 0, sum: 0 };
      let state: { pValue: number; ci: [number, number] } | undefined;
      for (let look = 0; look < 40; look++) {
        c.count += 300;
        c.sum += rng.binomial(300, 0.1);
        b.count += 300;
        b.sum += rng.binomial(300, 0.1);
        const v = abTest(c, b, DEFAULT_AB, state);
        state = v;
        if (v.decision !== 'continue') {
          falseWins++;
          break;
        }
      }
    }
    // α = 0.05; 300 runs: allow sampling noise (binomial sd ≈ 0.0126).
    expect(falseWins / runs).toBeLessThanOrEqual(0.08);
  });
});
