import { describe, expect, it } from 'vitest';
import {
  addEarlyLook,
  EARLY_LOOKS,
  earlyBounds,
  earlyReport,
  spendingAt,
  type EarlyLooksState,
} from '../../activities/analysis/early-looks';
import {
  addInterval,
  judgeStep,
  Rng,
  type StepCompareParams,
  type StepEvidence,
} from '../../activities/analysis';
import { bucketProbabilities, lognormalCdf, simulateWindow } from '../../bench/traffic-model';

/** P(S_1 ≥ b1 or S_2 ≥ b2 …) by brute force over every outcome: the DP's exact answer. */
function bruteCross(looks: { t: number; theta0: number }[], bounds: number[]): number {
  const choose = (n: number, k: number): number => {
    let c = 1;
    for (let i = 0; i < k; i++) c = (c * (n - i)) / (i + 1);
    return c;
  };
  const pmf = (n: number, p: number, k: number): number => choose(n, k) * p ** k * (1 - p) ** (n - k);
  const walk = (i: number, s: number, prob: number): number => {
    if (i === looks.length) return 0;
    const { t, theta0 } = looks[i] as { t: number; theta0: number };
    let crossed = 0;
    for (let x = 0; x <= t; x++) {
      const q = prob * pmf(t, theta0, x);
      if (s + x >= (bounds[i] as number)) crossed += q;
      else crossed += walk(i + 1, s + x, q);
    }
    return crossed;
  };
  return walk(0, 0, 1);
}

describe('early looks: the exact group-sequential error test of the first looks', () => {
  it('spends no more than its spending function, exactly as the outcomes add up', () => {
    const looks = [
      { t: 9, theta0: 0.2 },
      { t: 7, theta0: 0.3 },
      { t: 11, theta0: 0.25 },
    ];
    const alpha = 0.05;
    const { bounds, spent } = earlyBounds(looks, alpha);
    expect(bounds).toHaveLength(3);
    spent.forEach((s, i) => expect(s).toBeLessThanOrEqual(spendingAt(i + 1, alpha) + 1e-15));
    // The DP's spent α is the true crossing probability of the bounds it chose.
    expect(bruteCross(looks, bounds)).toBeCloseTo(spent[2] as number, 12);
    // And the bounds are the smallest that fit: one lower at the last look would spend too much.
    const lower = [...bounds.slice(0, 2), (bounds[2] as number) - 1];
    expect(bruteCross(looks, lower)).toBeGreaterThan(spendingAt(3, alpha));
  });

  it('crosses no more often than α when the candidate is no worse (simulated, varying totals)', () => {
    const rng = new Rng(7);
    const alpha = 0.05;
    const runs = 4000;
    let crossed = 0;
    for (let r = 0; r < runs; r++) {
      let st: EarlyLooksState = { looks: [] };
      for (let k = 0; k < EARLY_LOOKS.looks + 2; k++) {
        const theta0 = [0.05, 0.05, 0.25, 0.25, 0.5][k] as number;
        const t = rng.binomial(200, 0.2);
        st = addEarlyLook(st, { x: rng.binomial(t, theta0 * 0.999), t, theta0 }, alpha);
      }
      expect(st.looks).toHaveLength(st.crossedAt ?? EARLY_LOOKS.looks);
      if (st.crossedAt !== undefined) crossed++;
    }
    const rate = crossed / runs;
    const se = Math.sqrt((alpha * (1 - alpha)) / runs);
    expect(rate).toBeLessThanOrEqual(alpha + 3 * se);
    // Not needlessly conservative: a discrete exact test still spends most of what it may.
    expect(rate).toBeGreaterThan(alpha * 0.6);
  });

  it('reports where it stands, and a p-value that is small exactly when it crossed', () => {
    const alpha = 0.0045;
    let st: EarlyLooksState = { looks: [] };
    st = addEarlyLook(st, { x: 12, t: 120, theta0: 0.05 }, alpha);
    const r1 = earlyReport(st, alpha);
    expect(r1?.looks).toBe(1);
    expect(r1?.closed).toBe(false);
    expect(r1?.pValue).toBeGreaterThan(alpha);
    st = addEarlyLook(st, { x: 30, t: 140, theta0: 0.05 }, alpha);
    const r2 = earlyReport(st, alpha);
    expect(st.crossedAt).toBe(2);
    expect(r2?.crossedAt).toBe(2);
    expect(r2?.candidateErrors).toBe(42);
    expect(r2?.candidateErrors).toBeGreaterThanOrEqual(r2?.bound ?? Infinity);
    expect(r2?.pValue).toBeLessThanOrEqual(alpha);
    // Closed once crossed: later looks change nothing.
    expect(addEarlyLook(st, { x: 0, t: 100, theta0: 0.05 }, alpha)).toBe(st);
    // JSON-safe, as workflow state must be (continue-as-new carries it).
    expect(JSON.parse(JSON.stringify(st))).toEqual(st);
  });
});

describe('early looks inside the step evidence', () => {
  const pb = bucketProbabilities(lognormalCdf(0.02, 0.5));
  const strict: StepCompareParams = {
    alpha: 0.002,
    errorAlpha: 0.006,
    step: 'canary:0',
    maxErrorRateIncrease: 0,
    maxRelativeErrorRateIncrease: 0,
    maxLatencyIncrease: 0.1,
    minLatencyIncreaseMs: 5,
    minSamples: 50,
  };

  /** A 2× error regression at a 5% canary, 200 rps, 1% base: the look it fails at, or null. */
  function run(rng: Rng, withEarly: boolean): { failedAt: number | null; ev: StepEvidence } {
    let ev: StepEvidence | undefined;
    for (let k = 1; k <= 3; k++) {
      const c = simulateWindow(rng, 600, 0.02, pb);
      const b = simulateWindow(rng, 11400, 0.01, pb);
      ev = addInterval(ev, c, b, strict);
      if (!withEarly && k === 1) delete ev.early;
      if (ev.crossedAt.errors !== undefined) return { failedAt: k, ev };
    }
    return { failedAt: null, ev: ev as StepEvidence };
  }

  it('catches a doubled error rate at a 5% canary within 3 looks far more often than the e-process alone', () => {
    const runs = 400;
    let early = 0;
    let eOnly = 0;
    for (let r = 0; r < runs; r++) {
      if (run(new Rng(100 + r), true).failedAt !== null) early++;
      if (run(new Rng(100 + r), false).failedAt !== null) eOnly++;
    }
    // Fixed-horizon optimum at α 1%: 90%; the e-process at the whole 0.6%: about 60%.
    expect(early / runs).toBeGreaterThan(0.7);
    expect(early).toBeGreaterThan(eOnly + runs * 0.08);
  });

  it('explains an early-look failure with its counts, bound and p-value', () => {
    let found: StepEvidence | null = null;
    for (let r = 0; r < 50 && !found; r++) {
      const { failedAt, ev } = run(new Rng(500 + r), true);
      if (failedAt !== null && ev.early?.crossedAt !== undefined) found = ev;
    }
    expect(found).not.toBeNull();
    const v = judgeStep(found as StepEvidence, strict);
    const test = v.tests.find((t) => t.test === 'sequential-error-rate');
    expect(v.result).toBe('fail');
    expect(test?.explanation).toMatch(/early-look bound of \d+ \(exact test, p [\d.e-]+ at its α 0\.0045\)/);
    expect(test?.details?.earlyAlpha).toBeCloseTo(0.0045, 6);
    expect(test?.details?.eProcessAlpha).toBeCloseTo(0.0015, 6);
    expect(test?.pValue ?? 1).toBeLessThanOrEqual(0.006);
  });

  it('leaves evidence from before the early looks with the whole error α on its e-process', () => {
    const { ev } = run(new Rng(3), false);
    expect(ev.early).toBeUndefined();
    const test = judgeStep(ev, strict).tests.find((t) => t.test === 'sequential-error-rate');
    expect(test?.details?.earlyAlpha).toBeUndefined();
    expect(test?.threshold).toBeCloseTo(0.006, 6);
  });
});
