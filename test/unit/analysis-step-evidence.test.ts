import { describe, expect, it } from 'vitest';
import {
  compareVariants,
  DEFAULT_COMPARE,
  type ComparisonVerdict,
  addGap,
  addInterval,
  boundPrior,
  emptyEvidence,
  judgeStep,
  rateLowerBound,
  errorRatioInterval,
  Rng,
  splitFalseRollbackRate,
  splitFalseRollbackBudget,
  type StepCompareParams,
  type StepEvidence,
  type VariantWindow,
} from '../../activities/analysis';
import { bucketProbabilities, lognormalCdf, simulateWindow } from '../../bench/traffic-model';

/** Lognormal latency, optionally with a share of requests `slowFactor` slower. */
const probs = (medianS: number, sigma: number, slowShare = 0, slowFactor = 1): number[] =>
  bucketProbabilities(
    (s) =>
      (1 - slowShare) * lognormalCdf(medianS, sigma)(s) +
      slowShare * lognormalCdf(medianS * slowFactor, sigma)(s),
  );
const window = simulateWindow;

const strict: StepCompareParams = {
  alpha: 0.05,
  maxErrorRateIncrease: 0,
  maxRelativeErrorRateIncrease: 0,
  maxLatencyIncrease: 0,
  minLatencyIncreaseMs: 0,
  minSamples: 50,
};
const defaults: StepCompareParams = {
  ...strict,
  alpha: 0.005,
  maxRelativeErrorRateIncrease: 0.2,
  maxLatencyIncrease: 0.1,
  minLatencyIncreaseMs: 5,
};

interface Scenario {
  perInterval: number;
  weight: number;
  baseError: number;
  errorFactor?: number;
  candidate?: number[];
  looks: number;
}

/** Runs one step; returns the look that failed (1-based) or null, and the final evidence. */
function step(rng: Rng, s: Scenario, p: StepCompareParams) {
  const pb = probs(0.02, 0.5);
  const pc = s.candidate ?? pb;
  let ev: StepEvidence | undefined;
  for (let i = 1; i <= s.looks; i++) {
    const nc = rng.binomial(s.perInterval, s.weight);
    ev = addInterval(
      ev,
      window(rng, nc, s.baseError * (s.errorFactor ?? 1), pc),
      window(rng, s.perInterval - nc, s.baseError, pb),
      p,
    );
    const v = judgeStep(ev, p);
    if (v.result === 'fail') return { failedAt: i, ev, verdict: v };
  }
  return { failedAt: null, ev: ev as StepEvidence, verdict: judgeStep(ev as StepEvidence, p) };
}

describe('sequential step comparison', () => {
  it('an unchanged candidate crosses no more often than α, however many looks (strict nulls, 30 looks)', () => {
    const rng = new Rng(11);
    const runs = 250;
    let fails = 0;
    for (let r = 0; r < runs; r++) {
      const o = step(rng, { perInterval: 2000, weight: 0.1, baseError: 0.02, looks: 30 }, strict);
      if (o.failedAt !== null) fails++;
    }
    // α = 0.05 for the three tests together; binomial 99.9% upper tail at 250 runs is about 0.095.
    expect(fails / runs).toBeLessThan(0.1);
  });

  it('catches a doubled error rate at a 5% canary far more often than judging each interval alone', () => {
    const rng = new Rng(5);
    const pb = probs(0.02, 0.5);
    let caught = 0;
    let legacyCaught = 0;
    let last: ComparisonVerdict | undefined;
    for (let r = 0; r < 100; r++) {
      let ev: StepEvidence | undefined;
      let streak = 0;
      let legacyDone = false;
      let done = false;
      for (let i = 1; i <= 5; i++) {
        const nc = rng.binomial(12000, 0.05);
        const c = window(rng, nc, 0.02, pb);
        const b = window(rng, 12000 - nc, 0.01, pb);
        ev = addInterval(ev, c, b, defaults);
        const v = judgeStep(ev, defaults);
        if (!done && v.result === 'fail') {
          done = true;
          caught++;
          last = v;
        }
        // Today's analysis on the same windows: each interval alone, two fails in a row.
        streak = compareVariants(c, b, DEFAULT_COMPARE).result === 'fail' ? streak + 1 : 0;
        if (!legacyDone && streak >= 2) {
          legacyDone = true;
          legacyCaught++;
        }
      }
    }
    expect(caught).toBeGreaterThan(35);
    expect(caught).toBeGreaterThan(3 * legacyCaught);
    const t = last?.tests.find((x) => x.test === 'sequential-error-rate');
    expect(t?.result).toBe('fail');
    expect(t?.explanation).toMatch(/e-value .* ≥ 1\/α/);
    expect(t?.explanation).toMatch(/× to .*× the baseline's/);
    expect(t?.details?.ratioUpper).toBeGreaterThan(1.2);
  });

  it('a healthy step passes with its reach stated in words', () => {
    const o = step(new Rng(3), { perInterval: 12000, weight: 0.25, baseError: 0.01, looks: 5 }, defaults);
    expect(o.verdict.result).toBe('pass');
    const t = o.verdict.tests.find((x) => x.test === 'sequential-error-rate');
    expect(t?.explanation).toContain('would be caught by now about 4 times in 5');
    expect(t?.details?.detectableRatio).toBeGreaterThan(1.2);
    expect(t?.details?.detectableRatio).toBeLessThan(3);
    expect(o.verdict.samples.candidate).toBeGreaterThan(12000);
  });

  it('too few requests is inconclusive, never a pass', () => {
    const o = step(new Rng(1), { perInterval: 300, weight: 0.05, baseError: 0.01, looks: 1 }, defaults);
    expect(o.verdict.result).toBe('inconclusive');
  });

  it('a bimodal latency with the same median fails the latency tests; a 5% slowdown under a 10% band does not', () => {
    const bimodal = probs(0.02, 0.5, 0.1, 3);
    let caught = 0;
    const rng = new Rng(9);
    for (let r = 0; r < 50; r++) {
      const o = step(
        rng,
        { perInterval: 12000, weight: 0.25, baseError: 0.01, candidate: bimodal, looks: 3 },
        defaults,
      );
      if (o.failedAt !== null) caught++;
    }
    expect(caught).toBeGreaterThanOrEqual(45);
    const slower = probs(0.021, 0.5);
    let falseFails = 0;
    for (let r = 0; r < 50; r++) {
      const o = step(
        rng,
        { perInterval: 12000, weight: 0.25, baseError: 0.01, candidate: slower, looks: 5 },
        defaults,
      );
      if (o.verdict.tests.some((t) => t.test === 'sequential-latency-order' && t.result === 'fail'))
        falseFails++;
    }
    expect(falseFails).toBeLessThanOrEqual(2);
  });

  it('a gap adds nothing and loses nothing; the evidence survives a JSON round trip', () => {
    const a = step(new Rng(2), { perInterval: 4000, weight: 0.1, baseError: 0.01, looks: 2 }, defaults).ev;
    const g = addGap(a) as StepEvidence;
    expect(g.gaps).toBe(1);
    expect(g.candidate).toEqual(a.candidate);
    const round = JSON.parse(JSON.stringify(g)) as StepEvidence;
    expect(judgeStep(round, defaults)).toEqual(judgeStep(g, defaults));
  });

  it('refuses histograms whose bounds change within a step', () => {
    const rng = new Rng(4);
    const ev = addInterval(
      undefined,
      window(rng, 100, 0, probs(0.02, 0.5)),
      window(rng, 100, 0, probs(0.02, 0.5)),
      defaults,
    );
    const odd: VariantWindow = {
      requests: 1,
      errors: 0,
      latency: {
        buckets: [
          { le: 1, count: 1 },
          { le: Infinity, count: 1 },
        ],
        sum: 0,
        count: 1,
      },
      rewards: { count: 0, sum: 0 },
    };
    expect(() => addInterval(ev, odd, odd, defaults)).toThrow(/bucket bounds/);
  });
});

describe('anytime-valid intervals', () => {
  it('the rate lower bound stays below the true rate at every look in at least 1 − a of runs', () => {
    const rng = new Rng(8);
    let violated = 0;
    for (let r = 0; r < 300; r++) {
      let x = 0;
      let n = 0;
      for (let k = 0; k < 30; k++) {
        n += 1000;
        x += rng.binomial(1000, 0.01);
        if (rateLowerBound(x, n, 0.05) > 0.01) {
          violated++;
          break;
        }
      }
    }
    expect(violated / 300).toBeLessThan(0.08);
  });

  it('the error-ratio interval covers the true ratio', () => {
    const rng = new Rng(6);
    let covered = 0;
    for (let r = 0; r < 100; r++) {
      const o = step(
        rng,
        { perInterval: 10000, weight: 0.25, baseError: 0.02, errorFactor: 1.5, looks: 4 },
        { ...defaults, maxRelativeErrorRateIncrease: 1 },
      );
      const [lo, hi] = errorRatioInterval(o.ev, 0.025);
      if (lo <= 1.5 && hi >= 1.5) covered++;
    }
    expect(covered).toBeGreaterThanOrEqual(92);
  });
});

describe('false-rollback budget', () => {
  it('splits the rate across comparing steps, the first step half', () => {
    const s = splitFalseRollbackRate(0.01, [5, 25, 50, 100], false);
    expect(s.steps).toEqual([0.005, 0.0025, 0.0025, null]);
    const e = splitFalseRollbackRate(0.01, [10, 100], true);
    expect(e.steps[0]).toBe(0.005);
    expect(e.experiment).toBe(0.005);
    expect(splitFalseRollbackRate(0.01, [100], false).steps).toEqual([null]);
    const sum = (x: AlphaLike): number =>
      x.steps.reduce<number>((a, b) => a + (b ?? 0), 0) + (x.experiment ?? 0);
    expect(sum(splitFalseRollbackRate(0.02, [1, 2, 3, 4, 5, 100], true))).toBeCloseTo(0.02, 12);
  });
});
type AlphaLike = ReturnType<typeof splitFalseRollbackRate>;

describe('errors spanning the promotion', () => {
  it('gives the error test one promotion-wide α and the steps the latency rest', () => {
    const b = splitFalseRollbackBudget(0.01, [5, 25, 50, 100], false);
    expect(b.errors).toBeCloseTo(0.006, 12);
    expect(b.steps.map((x) => (x === null ? null : Number(x.toPrecision(6))))).toEqual([
      0.002,
      0.001,
      0.001,
      null,
    ]);
    const w = splitFalseRollbackBudget(0.02, [1, 2, 3, 100], true, true);
    const total = (w.errors ?? 0) + w.steps.reduce<number>((a, x) => a + (x ?? 0), 0) + (w.experiment ?? 0);
    expect(total + (w.shadow ?? 0)).toBeCloseTo(0.02, 12);
    expect(splitFalseRollbackBudget(0.01, [100], false).errors).toBeNull();
  });

  const spanning = (alpha: number, errorAlpha: number, step: string): StepCompareParams => ({
    ...strict,
    alpha,
    errorAlpha,
    step,
  });

  it('carries the error test into the next step and starts the latency tests afresh', () => {
    const rng = new Rng(21);
    const pb = probs(0.02, 0.5);
    let ev: StepEvidence | undefined;
    for (let i = 0; i < 3; i++)
      ev = addInterval(
        ev,
        window(rng, 500, 0.02, pb),
        window(rng, 9500, 0.01, pb),
        spanning(0.002, 0.006, 'canary:0'),
      );
    const before = ev as StepEvidence;
    const c2 = window(rng, 2500, 0.02, pb);
    const b2 = window(rng, 7500, 0.01, pb);
    const next = addInterval(before, c2, b2, spanning(0.001, 0.006, 'canary:1'));
    expect(next.step).toBe('canary:1');
    expect(next.looks).toBe(1);
    expect(next.candidate.requests).toBe(2500);
    expect(next.promotion?.steps).toBe(2);
    expect(next.promotion?.looks).toBe(4);
    expect(next.promotion?.candidate.requests).toBe(4000);
    // The error cell ran on: one more interval's factors on top of the first step's.
    expect(next.errors.every((v, i) => v !== before.errors[i])).toBe(true);
    expect(next.maxLog.errors).toBeGreaterThanOrEqual(before.maxLog.errors);
    // The latency cells hold the new step's interval only: as a fresh step given that interval.
    const fresh = addInterval(undefined, c2, b2, spanning(0.001, 0.006, 'canary:1'));
    expect(next.order).toEqual(fresh.order);
    expect(next.lower).toEqual(fresh.lower);
    expect(next.maxLog.order).toBe(fresh.maxLog.order);
    expect(next.errors).not.toEqual(fresh.errors);
    const t = judgeStep(next, spanning(0.001, 0.006, 'canary:1')).tests.find(
      (x) => x.test === 'sequential-error-rate',
    );
    expect(t?.samples).toEqual({ candidate: 4000, baseline: 36000 });
    expect(t?.threshold).toBe(0.006);
    expect(t?.explanation).toMatch(/over 2 steps' 4000 vs 36000 requests/);
    expect(t?.details?.steps).toBe(2);
  });

  it("a gap at a new step's first look is that step's: the error test carried, the step's looks afresh", () => {
    const rng = new Rng(81);
    const pb = probs(0.02, 0.5);
    const first = addInterval(
      undefined,
      window(rng, 500, 0.01, pb),
      window(rng, 9500, 0.01, pb),
      spanning(0.002, 0.006, 'canary:0'),
    );
    const gap = addGap(first, 'canary:1') as StepEvidence;
    expect(gap.step).toBe('canary:1');
    expect(gap.gaps).toBe(1);
    expect(gap.looks).toBe(0);
    expect(gap.errors).toEqual(first.errors);
    const next = addInterval(
      gap,
      window(rng, 2500, 0.01, pb),
      window(rng, 7500, 0.01, pb),
      spanning(0.001, 0.006, 'canary:1'),
    );
    expect(next.gaps).toBe(1);
    expect(next.promotion?.steps).toBe(2);
  });

  it('crosses no more often than the promotion-wide α over 5/25/50% steps (strict nulls)', () => {
    const rng = new Rng(31);
    const pb = probs(0.02, 0.5);
    const runs = 300;
    let errorFails = 0;
    for (let r = 0; r < runs; r++) {
      let ev: StepEvidence | undefined;
      let failed = false;
      for (const [k, w] of [0.05, 0.25, 0.5].entries()) {
        for (let i = 0; i < 8 && !failed; i++) {
          const nc = rng.binomial(4000, w);
          ev = addInterval(
            ev,
            window(rng, nc, 0.02, pb),
            window(rng, 4000 - nc, 0.02, pb),
            spanning(0.01, 0.05, `canary:${k}`),
          );
          if (ev.crossedAt.errors !== undefined) failed = true;
        }
      }
      if (failed) errorFails++;
    }
    // α = 0.05 for the error test over all 24 looks; the binomial 99.9% upper tail at 300 runs is ~0.09.
    expect(errorFails / runs).toBeLessThan(0.09);
  });

  it('at the first step tests errors at the promotion-wide α: never later than the per-step split on the same data', () => {
    const rng = new Rng(41);
    const pb = probs(0.02, 0.5);
    let perStep = 0;
    let span = 0;
    for (let r = 0; r < 60; r++) {
      let a: StepEvidence | undefined;
      let b: StepEvidence | undefined;
      let aAt: number | null = null;
      let bAt: number | null = null;
      for (let i = 1; i <= 3; i++) {
        const nc = rng.binomial(12000, 0.05);
        const c = window(rng, nc, 0.02, pb);
        const base = window(rng, 12000 - nc, 0.01, pb);
        a = addInterval(a, c, base, { ...strict, alpha: 0.005 });
        b = addInterval(b, c, base, spanning(0.002, 0.006, 'canary:0'));
        if (aAt === null && a.crossedAt.errors !== undefined) aAt = i;
        if (bAt === null && b.crossedAt.errors !== undefined) bAt = i;
      }
      if (aAt !== null) {
        perStep++;
        expect(bAt).not.toBeNull();
        expect(bAt as number).toBeLessThanOrEqual(aAt);
      }
      if (bAt !== null) span++;
    }
    expect(span).toBeGreaterThan(perStep);
  });

  it('a regression that appears only at a later step starts from a restart, not from the healthy evidence before it', () => {
    const pb = probs(0.02, 0.5);
    let caught = 0;
    const rng = new Rng(71);
    for (let r = 0; r < 40; r++) {
      let ev: StepEvidence | undefined;
      for (let i = 0; i < 10; i++) {
        const nc = rng.binomial(12000, 0.05);
        ev = addInterval(
          ev,
          window(rng, nc, 0.01, pb),
          window(rng, 12000 - nc, 0.01, pb),
          spanning(0.002, 0.006, 'canary:0'),
        );
      }
      const healthy = ev as StepEvidence;
      // The first step's own e-process has fallen far below 1; the weighted whole has not.
      const p1 = spanning(0.001, 0.006, 'canary:1');
      for (let i = 1; i <= 3; i++) {
        const nc = rng.binomial(12000, 0.25);
        ev = addInterval(ev, window(rng, nc, 0.02, pb), window(rng, 12000 - nc, 0.01, pb), p1);
        if (i === 1) expect(ev.promotion?.restarts).toHaveLength(1);
      }
      if ((ev as StepEvidence).crossedAt.errors !== undefined) caught++;
      if (r === 0) {
        const e = judgeStep(healthy, spanning(0.002, 0.006, 'canary:0')).tests[0]?.details?.eValue as number;
        expect(e).toBeGreaterThanOrEqual(0.2);
      }
    }
    // 2× errors at 25% of 200 rps: three intervals are plenty for a fresh test at 0.006 × 0.1.
    expect(caught).toBeGreaterThanOrEqual(36);
  });

  it('evidence from before errors spanned steps keeps the per-step split (never more α)', () => {
    const rng = new Rng(51);
    const pb = probs(0.02, 0.5);
    const old = addInterval(undefined, window(rng, 500, 0.01, pb), window(rng, 9500, 0.01, pb), {
      ...strict,
      alpha: 0.005,
    });
    expect(old.promotion).toBeUndefined();
    const p = spanning(0.002, 0.006, 'canary:0');
    const next = addInterval(old, window(rng, 500, 0.01, pb), window(rng, 9500, 0.01, pb), p);
    expect(next.promotion).toBeUndefined();
    expect(next.looks).toBe(2);
    const t = judgeStep(next, p).tests.find((x) => x.test === 'sequential-error-rate');
    expect(t?.threshold).toBeCloseTo(0.002 * 0.6, 10);
  });

  it('refuses an error α outside (0, 0.5) with the field named', () => {
    const rng = new Rng(61);
    const pb = probs(0.02, 0.5);
    expect(() =>
      addInterval(undefined, window(rng, 10, 0, pb), window(rng, 10, 0, pb), spanning(0.002, 0.7, 'x')),
    ).toThrow(/errorAlpha/);
  });
});

describe('latency bounds weighted by a predictable prior', () => {
  const pb = probs(0.02, 0.5);
  const edges = addInterval(
    undefined,
    window(new Rng(1), 10, 0, pb),
    window(new Rng(2), 10, 0, pb),
    strict,
  ).edges;

  it('weighs every bound alike until the baseline has 200 requests, then the ones inside its range', () => {
    const few = window(new Rng(3), 150, 0, pb).latency;
    const bins = (w: VariantWindow['latency']): number[] => {
      let prev = 0;
      return w.buckets.map((b) => {
        const c = b.count - prev;
        prev = b.count;
        return c;
      });
    };
    const flat = boundPrior(bins(few), edges);
    expect(new Set(flat)).toEqual(new Set([1 / edges.length]));
    const many = boundPrior(bins(window(new Rng(4), 20000, 0, pb).latency), edges);
    expect(many.reduce((a, x) => a + x, 0)).toBeCloseTo(1, 12);
    const at = (ms: number): number => many[edges.indexOf(ms / 1000)] as number;
    // A 20 ms median: 20 ms and 50 ms are inside the baseline's range, 0.5 ms and 10 s far outside.
    expect(at(20)).toBeCloseTo(at(50), 12);
    expect(at(20)).toBeCloseTo(20 * at(0.5), 12);
    expect(at(10_000)).toBe(at(0.5));
  });

  it('catches a 10% slowdown (strict) at least as often as averaging every bound alike, on the same draws', () => {
    const slower = probs(0.022, 0.5);
    let mean = 0;
    let prior = 0;
    const p: StepCompareParams = { ...strict, alpha: 0.002 };
    for (let r = 0; r < 80; r++) {
      const rng = new Rng(100 + r);
      let a: StepEvidence | undefined = emptyEvidence(edges);
      delete a.latencyMix; // evidence from before the prior: the plain average
      let b: StepEvidence | undefined;
      for (let i = 0; i < 3; i++) {
        const nc = rng.binomial(12000, 0.05);
        const c = window(rng, nc, 0.01, slower);
        const base = window(rng, 12000 - nc, 0.01, pb);
        a = addInterval(a, c, base, p);
        b = addInterval(b, c, base, p);
      }
      expect(a?.latencyMix).toBeUndefined();
      if (a?.crossedAt.order !== undefined) mean++;
      if (b?.crossedAt.order !== undefined) prior++;
    }
    expect(prior).toBeGreaterThanOrEqual(mean);
    expect(prior).toBeGreaterThan(20);
  });
});
