import { describe, expect, it } from 'vitest';
import {
  budgetLeft,
  burnRate,
  evaluateBurn,
  slowRequests,
  windowsOf,
  type BurnSettings,
  type WindowCounts,
} from '../../activities/analysis/burn-rate';

const H = 3_600_000;
const M = 60_000;
const SRE: BurnSettings = {
  errorBudget: 0.001, // a 99.9% SLO, the Workbook's example
  latencyBudget: 0.01,
  page: [
    { factor: 14.4, long: H, short: 5 * M },
    { factor: 6, long: 6 * H, short: 30 * M },
  ],
  ticket: [{ factor: 3, long: 24 * H, short: 2 * H }],
  minRequests: 20,
};

/** Every window at the same error share (a steady burn). */
function steady(share: number, perWindow = 10_000): WindowCounts[] {
  return windowsOf(SRE).map((ms) => ({
    windowMs: ms,
    requests: perWindow,
    errors: Math.round(share * perWindow),
    slow: 0,
  }));
}

describe('burn rate', () => {
  it('is the error share over the budget, capped, 0 without requests', () => {
    expect(burnRate(10, 1000, 0.001)).toBeCloseTo(10);
    expect(burnRate(0, 1000, 0.001)).toBe(0);
    expect(burnRate(5, 0, 0.001)).toBe(0);
    expect(burnRate(1, 10, 0)).toBe(1e6);
  });

  it('windows are the distinct lengths the alerts name, ascending', () => {
    expect(windowsOf(SRE)).toEqual([5 * M, 30 * M, H, 2 * H, 6 * H, 24 * H]);
  });

  it('pages at 14.4× only when both the long and the short window burn that fast', () => {
    const fast = evaluateBurn(steady(0.0144 * 1.01), SRE, { requests: 1e5, errors: 100, slow: 0 });
    const page = fast.firing.find((a) => a.severity === 'page' && a.factor === 14.4);
    expect(page?.sli).toBe('errors');
    expect(page?.reason).toMatch(/over 1h and .* over 5m/);
    expect(page?.long.errorBurn).toBeGreaterThanOrEqual(14.4);
    // The long window burns but the short one has recovered: no page (the alert resets).
    const recovered = steady(0.0144 * 1.01).map((w) => (w.windowMs === 5 * M ? { ...w, errors: 0 } : w));
    const r = evaluateBurn(recovered, SRE, { requests: 1e5, errors: 100, slow: 0 });
    expect(r.firing.find((a) => a.factor === 14.4)).toBeUndefined();
    // Just under the factor: nothing at 14.4×, but 6× and the 3× ticket fire.
    const under = evaluateBurn(steady(0.0144 * 0.98), SRE, { requests: 1e5, errors: 100, slow: 0 });
    expect(under.firing.map((a) => `${a.severity}${a.factor}`)).toEqual(['page6', 'ticket3']);
  });

  it('says nothing below every factor, and nothing on too few requests', () => {
    expect(evaluateBurn(steady(0.002), SRE, { requests: 1e5, errors: 0, slow: 0 }).firing).toEqual([]);
    const few = steady(0.5, 10);
    expect(evaluateBurn(few, SRE, { requests: 10, errors: 5, slow: 0 }).firing).toEqual([]);
  });

  it('judges latency on its own budget: the share slower than the SLO beyond 1 - target', () => {
    const slowWindows = windowsOf(SRE).map((ms) => ({ windowMs: ms, requests: 1000, errors: 0, slow: 200 }));
    const e = evaluateBurn(slowWindows, SRE, { requests: 1000, errors: 0, slow: 200 });
    expect(e.firing[0]?.sli).toBe('latency');
    expect(e.firing[0]?.long.latencyBurn).toBeCloseTo(20);
    expect(e.budgetLeft.latency).toBeCloseTo(1 - 200 / 10);
  });

  it('budget left is 1 - spent / allowed over the whole watch', () => {
    expect(budgetLeft(0, 0, 0.01)).toBe(1);
    expect(budgetLeft(5, 1000, 0.01)).toBeCloseTo(0.5);
    expect(budgetLeft(20, 1000, 0.01)).toBeCloseTo(-1);
  });

  it('counts slow requests by interpolating within the bucket that holds the limit', () => {
    const h = {
      buckets: [
        { le: 0.1, count: 50 },
        { le: 0.3, count: 90 },
        { le: Infinity, count: 100 },
      ],
      sum: 0,
      count: 100,
    };
    // 40 requests in (0.1, 0.3]: the half above 0.2 s is slow, plus the 10 beyond 0.3 s.
    expect(slowRequests(h, 200)).toBeCloseTo(30);
    expect(slowRequests(h, 300)).toBeCloseTo(10);
    expect(slowRequests(h, 50)).toBeCloseTo(75);
  });
});
