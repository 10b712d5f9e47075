/**
 * Statistical decisions inside real promotions: a candidate within the absolute SLOs but worse
 * than the baseline is rolled back by the comparison; a starved canary is inconclusive and
 * pauses for a human; an A/B the candidate loses ends rejected; a bandit converges on the
 * better arm. Rewards come from the synthetic traffic's label rule.
 */
import { describe, expect, it } from 'vitest';
import { promotionWorkflowId, resumeSignal } from '../../workflows/api';
import { recordHistory } from '../helpers/record';
import { BANDIT, experimentSpec, testSpec, usePromotionPlatform, waitForStatus } from '../helpers/promotion';

const platform = usePromotionPlatform();

describe.concurrent('analysis in promotions', () => {
  it(
    'rolls back a candidate that passes the SLO guard but fails the per-interval comparison with the baseline (method interval)',
    { timeout: 240_000 },
    async () => {
      const model = 'fd-compare';
      // v5 fails ~6% of requests: inside this lax SLO (20%), far outside the comparison's 0.5 pp
      // margin. Each look judges one interval, so power comes from requests per interval: at 120
      // rps, 50% and 5 s each arm gets ~300 and one look fails with probability ~0.99; two
      // consecutive fails within 8 looks miss < 0.1% of the time even at two thirds of that
      // traffic (simulated with compareErrorRates). At 80 rps and 3 s it missed ~16%.
      const spec = testSpec(model, {
        slos: { errorRate: 0.2 },
        evaluation: { maxRegression: 0.1 },
        shadow: { enabled: false },
        canary: {
          interval: '5s',
          steps: [
            { weight: 50, pause: '40s' },
            { weight: 100, pause: '0s' },
          ],
          analysis: { compare: true, method: 'interval', minSamples: 40, maxErrorRateIncrease: 0.005 },
        },
      });
      const { traffic } = await platform.launch(spec, '5', { rps: 120 });
      const result = await platform.result(model);
      await traffic.stop();
      await recordHistory(platform.client, promotionWorkflowId(model), 'comparison-rollback-v5');
      expect(result.outcome, result.reason).toBe('rolled_back');
      expect(result.reason).toMatch(/comparison: .*error rate/);
      const guards = result.verdicts.filter((v) => v.check === 'slo');
      expect(
        guards.every((v) => v.result !== 'fail'),
        'the SLO guard itself never failed',
      ).toBe(true);
      const failed = result.verdicts.filter((v) => v.check === 'comparison' && v.result === 'fail');
      expect(failed.length).toBeGreaterThanOrEqual(2);
      // the verdict carries its numbers: test, p-value, both rates, threshold, samples
      expect(failed[0]).toMatchObject({
        tests: expect.arrayContaining([
          expect.objectContaining({
            test: 'two-proportion-z',
            result: 'fail',
            pValue: expect.any(Number),
            threshold: 0.02,
          }),
        ]),
      });
      expect(await platform.routeOf(model)).toEqual([['v1', 100]]);
    },
  );

  it(
    'pauses a starved canary for a human with the reason, and proceeds on resume',
    { timeout: 240_000 },
    async () => {
      const model = 'fd-starved';
      const spec = testSpec(model, {
        shadow: { enabled: false },
        canary: {
          interval: '2s',
          steps: [
            { weight: 10, pause: '4s' },
            { weight: 100, pause: '0s' },
          ],
          analysis: { compare: true, minSamples: 500, maxInconclusive: 1 },
        },
        rollback: { onInconclusive: 'pause' },
        // proceeding past an inconclusive analysis is a decision: on call is an operator
        approval: { operators: ['oncall'] },
      });
      const { traffic, handle } = await platform.launch(spec, '2', { rps: 20 });
      const paused = await waitForStatus(platform, model, (s) => s.paused, 120_000);
      expect(paused.pauseReason).toMatch(/analysis inconclusive after 1 extra intervals: .*500 each needed/);
      expect(paused.pendingAction).toMatch(/resume to proceed, rollback to abort/);
      expect(paused.weights).toEqual({ v1: 90, v2: 10 });
      await handle.signal(resumeSignal, { by: 'oncall', reason: 'dashboards look fine' });
      const result = await platform.result(model);
      await traffic.stop();
      await recordHistory(platform.client, promotionWorkflowId(model), 'inconclusive-pause');
      expect(result.outcome, result.reason).toBe('promoted');
    },
  );

  it('rejects a candidate that loses the A/B on rewards', { timeout: 240_000 }, async () => {
    const model = 'fd-ab-loses';
    // v3 is worse (accuracy 0.70 vs 0.87): evaluation is opened up so the experiment decides
    const spec = experimentSpec(
      model,
      { kind: 'ab', split: 50, interval: '2s', maxDuration: '2m', minRewards: 50, alpha: 0.05 },
      { evaluation: { min: 0.5, maxRegression: 0.5 } },
    );
    const { traffic } = await platform.launch(spec, '3', { rps: 80 });
    const result = await platform.result(model);
    await traffic.stop();
    await recordHistory(platform.client, promotionWorkflowId(model), 'ab-candidate-loses-v3');
    expect(result.outcome, result.reason).toBe('rejected');
    expect(result.reason).toMatch(/the candidate lost the A\/B: candidate earns less/);
    const ab = result.verdicts.filter((v) => v.check === 'ab').at(-1);
    expect(ab).toMatchObject({ decision: 'baseline_wins', test: 'msprt' });
    expect((ab?.lift as number) < 0).toBe(true);
    expect(result.trafficChanges.some((c) => c.stage === 'experiment' && c.weights.v3 === 50)).toBe(true);
    expect(await platform.routeOf(model)).toEqual([['v1', 100]]);
  });

  it(
    'a bandit converges on the better arm and graduates it, each weight change with its posterior',
    { timeout: 240_000 },
    async () => {
      const model = 'fd-bandit';
      const spec = experimentSpec(model, BANDIT);
      const { traffic } = await platform.launch(spec, '2', { rps: 80 });
      const result = await platform.result(model);
      await traffic.stop();
      await recordHistory(platform.client, promotionWorkflowId(model), 'bandit-converges-v2');
      expect(result.outcome, result.reason).toBe('promoted');
      const bandit = result.verdicts.filter((v) => v.check === 'bandit');
      expect(bandit.length).toBeGreaterThanOrEqual(1);
      const last = bandit.at(-1) as unknown as {
        decision: string;
        best: string;
        posteriors: { arm: string; probabilityBest: number }[];
      };
      expect(last.decision).toBe('stop');
      expect(last.best).toBe('v2');
      expect(last.posteriors.find((p) => p.arm === 'v2')?.probabilityBest).toBeGreaterThanOrEqual(0.99);
      // the variant that earned more rewards in the traffic generator's own accounting is the winner
      const stats = traffic.stats();
      const rate = (v: string) =>
        (stats.byVariant[v]?.correct ?? 0) / Math.max(1, stats.byVariant[v]?.ok ?? 0);
      expect(rate('v2')).toBeGreaterThan(rate('v1'));
    },
  );
});
