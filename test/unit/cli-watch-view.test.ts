/** The compact live view of `runway status --watch` (cli/watch-view.ts). */
import { describe, expect, it } from 'vitest';
import { watchView } from '../../cli/watch-view';
import type { PromotionStatus } from '../../workflows/api';

const at = '2026-12-01T12:00:00.000Z';
function status(over: Partial<PromotionStatus> = {}): PromotionStatus {
  return {
    model: 'fraud-detector-with-a-rather-long-model-name-for-the-terminal',
    version: '7',
    baselineVersion: '6',
    stage: 'canary',
    step: { index: 1, weight: 25, heldMs: 120_000, pauseMs: 300_000 },
    weights: { v6: 75, v7: 25 },
    paused: false,
    approvals: [{ approver: 'alice', at, via: 'update' }],
    approvalsRequired: 1,
    lastVerdicts: [
      {
        check: 'slo',
        result: 'pass',
        reason: 'error rate 0.0012 ≤ 0.02, p99 23.75 ms ≤ 250 ms over 1250 requests in the window',
      },
      {
        check: 'comparison',
        result: 'inconclusive',
        reason:
          'error rate: too few requests to pass yet (candidate 11, baseline 204, 50 each needed; e-value 0.515); latency (candidate slower): too few observations to pass yet',
      },
      {
        check: 'cost',
        result: 'fail',
        reason:
          'candidate costs +3052% per inference at full load, over the limit +50%: candidate v7 0.00318 $/1k at 21% utilisation vs baseline v6 0.000239 $/1k at 90% utilisation',
      },
    ],
    recentTraffic: [
      {
        at,
        stage: 'shadow',
        weights: { v6: 100, v7: 0 },
        mirror: { variant: 'v7', percent: 100 },
        reason: 'shadow',
      },
      { at, stage: 'canary', weights: { v6: 95, v7: 5 }, reason: 'canary step 1: 5%' },
      { at, stage: 'canary', weights: { v6: 75, v7: 25 }, reason: 'canary step 2: 25%' },
    ],
    triggeredBy: 'ci-bot',
    ...over,
  };
}

const widths = (text: string): number[] => text.split('\n').map((l) => [...l].length);

describe('watchView', () => {
  it('never passes 80 columns, however long the names and reasons', () => {
    const text = watchView(
      status({
        paused: true,
        pauseReason: 'analysis inconclusive after 3 extra intervals: comparison: too few requests '.repeat(3),
        pendingAction: 'a human decision: resume to proceed, rollback to abort',
      }),
      {
        hint: 'no traffic to fraud-detector in the last 5s: send requests to http://127.0.0.1:8080/v2/models/x/infer',
      },
      { clock: '12:00:05 every 5s' },
    );
    expect(Math.max(...widths(text))).toBeLessThanOrEqual(80);
    expect(text).toContain('12:00:05 every 5s');
    expect(text.split('\n').length).toBeLessThan(30);
  });

  it('draws the weights as bars in proportion, candidate first', () => {
    const lines = watchView(status()).split('\n');
    const v7 = lines.find((l) => l.startsWith('v7 '))!;
    const v6 = lines.find((l) => l.startsWith('v6 '))!;
    expect(lines.indexOf(v7)).toBeLessThan(lines.indexOf(v6));
    const full = (l: string): number => [...l].filter((c) => c === '█').length;
    const cells = [...v7].filter((c) => c === '█' || c === '·').length;
    // Each bar rounds on its own: together within one cell of the whole.
    expect(Math.abs(full(v7) + full(v6) - cells)).toBeLessThanOrEqual(1);
    expect(full(v7) / cells).toBeCloseTo(0.25, 1);
    expect(v7).toMatch(/ 25%$/);
    expect(v6).toMatch(/ 75%$/);
  });

  it('shows the path traffic took and every verdict, wrapped rather than lost', () => {
    const text = watchView(status());
    expect(text).toContain('path   0%+mirror → 5% → 25%');
    expect(text).toMatch(/^FAIL cost {7}candidate costs \+3052%/m);
    expect(text).toMatch(/^\?\? {2}comparison/m);
    // The cost reason continues on an indented line, and its end is there.
    expect(text.replace(/\n\s+/g, ' ')).toContain('vs baseline v6 0.000239 $/1k at 90% utilisation');
  });

  it('fits a 40-column terminal: the oldest steps of the path give way first', () => {
    const steps = [5, 10, 15, 20, 25, 30, 35, 40].map((w) => ({
      at,
      stage: 'canary' as const,
      weights: { v6: 100 - w, v7: w },
      reason: `linear ${w}%`,
    }));
    const text = watchView(status({ recentTraffic: steps }), {}, { width: 40, clock: '12:00:05' });
    expect(Math.max(...widths(text))).toBeLessThanOrEqual(40);
    expect(text).toMatch(/^path {3}… .*35% → 40%$/m);
    expect(text).not.toContain(' 5% →');
  });

  it("before the promotion routes, shows production's route from the router", () => {
    const text = watchView(status({ weights: {}, stage: 'approve', step: undefined, recentTraffic: [] }), {
      routed: { v6: 100 },
    });
    expect(text).toMatch(/^v6 +█+ 100% \(router\)$/m);
    expect(Math.max(...widths(text))).toBeLessThanOrEqual(80);
  });
});
