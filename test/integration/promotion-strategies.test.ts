/**
 * The blue-green and linear strategies end to end on real components (Temporal dev server, router
 * process, local fleet of `runway serve` processes on the demo models): each promotes a healthy
 * candidate (v2) once and rolls a failing one (v5, errors on ~5% of rows) back once.
 *
 * Blue-green's promise, an instant switch and an instant revert, is measured from the histories'
 * server timestamps (audit/route-timing.ts) and printed; the bench (bench/strategies.ts) records
 * it against the canary's rollback. Nothing here asserts a duration: a shared machine is slow.
 */
import { describe, expect, it } from 'vitest';
import { fetchChain } from '../../audit/fetch';
import { revertTiming, routeChanges } from '../../audit/route-timing';
import { startTraffic } from '../../demo/traffic';
import { promotionWorkflowId, type PromotionResult } from '../../workflows/api';
import { recordHistory } from '../helpers/record';
import { testSpec, usePromotionPlatform, waitForStatus } from '../helpers/promotion';

const platform = usePromotionPlatform();

function changesOf(
  result: PromotionResult,
): { stage: string; weights: Record<string, number>; preview?: unknown }[] {
  return result.trafficChanges.map((c) => ({
    stage: c.stage,
    weights: c.weights,
    ...(c.preview ? { preview: c.preview } : {}),
  }));
}

/** Linear with the sequential comparison on, as canary steps run it; errors judged strictly, latency widely. */
function linearSpec(model: string) {
  return testSpec(model, {
    strategy: 'linear',
    linear: { stepPercent: 25, interval: '6s' },
    // Latency is not under test, and this machine is shared: lax p99 limits, the error SLO as usual.
    slos: { p99LatencyMs: 2000 },
    integration: { maxP99LatencyMs: 5000 },
    evaluation: { maxRegression: 0.1 },
    shadow: { enabled: false },
    canary: {
      analysis: {
        compare: true,
        method: 'sequential',
        minSamples: 30,
        maxRelativeErrorRateIncrease: 0,
        // Two replica processes on a shared 2-core machine differ in their tails for real; errors
        // are under test here, so a wide latency band keeps that out.
        maxLatencyIncrease: 2,
        minLatencyIncreaseMs: 200,
        latencyEquality: false,
      },
    },
  });
}

function blueGreenSpec(model: string, preview: boolean) {
  return testSpec(model, {
    strategy: 'blue-green',
    slos: { p99LatencyMs: 2000 },
    integration: { maxP99LatencyMs: 5000 },
    blueGreen: {
      ...(preview ? { preview: { header: 'x-runway-preview', value: 'qa', duration: '6s' } } : {}),
      watchAfterSwitch: '8s',
    },
    evaluation: { maxRegression: 0.1 },
    shadow: { enabled: false },
  });
}

describe.concurrent('rollout strategies', () => {
  it(
    'linear: promotes v2 through equal steps of 25%, each judged like a canary step',
    { timeout: 300_000 },
    async () => {
      const model = 'lin-promote';
      const spec = linearSpec(model);
      expect(spec.canary.steps.map((s) => s.weight)).toEqual([25, 50, 75, 100]);
      const { traffic } = await platform.launch(spec, '2');
      const result = await platform.result(model);
      await traffic.stop();
      await recordHistory(platform.client, promotionWorkflowId(model), 'linear-promote-v2');

      expect(result.outcome, result.reason).toBe('promoted');
      expect(changesOf(result)).toEqual([
        { stage: 'linear', weights: { v1: 75, v2: 25 } },
        { stage: 'linear', weights: { v1: 50, v2: 50 } },
        { stage: 'linear', weights: { v1: 25, v2: 75 } },
        { stage: 'graduate', weights: { v2: 100 } },
      ]);
      // every step was compared with the baseline, sequentially, and nothing failed
      const comparisons = result.verdicts.filter((v) => v.check === 'comparison');
      expect(comparisons.length).toBeGreaterThanOrEqual(3);
      expect(comparisons.every((v) => v.sequential === true && v.result !== 'fail')).toBe(true);
      expect(result.verdicts.filter((v) => v.check === 'slo').every((v) => v.result !== 'fail')).toBe(true);
      expect(await platform.routeOf(model)).toEqual([['v2', 100]]);
      expect(await platform.deps.registry.aliases(model)).toMatchObject({ production: '2', previous: '1' });
      const audit = (await fetchChain(platform.client, promotionWorkflowId(model)))[0]!;
      expect(audit.events.length).toBeGreaterThan(20);
    },
  );

  it('linear: the analysis rolls v5 back at a linear step', { timeout: 300_000 }, async () => {
    const model = 'lin-errors';
    const { traffic } = await platform.launch(linearSpec(model), '5');
    const result = await platform.result(model);
    await traffic.stop();
    await recordHistory(platform.client, promotionWorkflowId(model), 'linear-rollback-v5');

    const judged = result.verdicts
      .filter((v) => v.check === 'comparison' || v.check === 'slo')
      .map((v) => `${v.check} ${v.result}: ${v.reason}`);
    expect(result.outcome, judged.join('\n')).toBe('rolled_back');
    // the SLO guard (2 failing looks) or the sequential comparison (one crossing), whichever first
    expect(result.reason).toMatch(
      /^automatic rollback at linear step \d(:| after 2 failed intervals —) .*error rate/,
    );
    expect(result.verdicts.some((v) => v.check === 'comparison' && v.sequential === true)).toBe(true);
    expect(result.trafficChanges[0]).toMatchObject({ stage: 'linear', weights: { v1: 75, v5: 25 } });
    expect(result.trafficChanges.at(-1)?.weights).toEqual({ v1: 100 });
    expect(await platform.routeOf(model)).toEqual([['v1', 100]]);
    expect((await platform.deps.registry.get(model, '5'))?.status).toBe('rejected');
    expect((await platform.deps.registry.aliases(model)).production).toBe('1');
  });

  it(
    'blue-green: previews v2 by header, switches 0 → 100% at once, keeps v1 for the revert window',
    { timeout: 300_000 },
    async () => {
      const model = 'bg-promote';
      const spec = blueGreenSpec(model, true);
      const { traffic } = await platform.launch(spec, '2');
      await waitForStatus(platform, model, (s) => s.stage === 'preview' && s.weights.v2 === 0, 120_000);
      // Testers' requests carry the header; everyone else stays on the baseline.
      const base = { baseUrl: platform.router.url, model, rps: 20, feedback: false, maxRequests: 60 };
      const testers = startTraffic({ ...base, headers: { 'x-runway-preview': 'qa' }, seed: 7 });
      const others = startTraffic({ ...base, headers: { 'x-runway-preview': 'someone-else' }, seed: 8 });
      const [t, o] = await Promise.all([testers.done, others.done]);
      const switched = await waitForStatus(platform, model, (s) => s.stage === 'switch', 120_000);
      const result = await platform.result(model);
      await traffic.stop();
      await recordHistory(platform.client, promotionWorkflowId(model), 'blue-green-promote-v2');

      expect(result.outcome, result.reason).toBe('promoted');
      expect(Object.keys(t.byVariant), JSON.stringify(t)).toEqual(['v2']);
      expect(t.byVariant.v2?.ok).toBeGreaterThan(30);
      expect(Object.keys(o.byVariant), JSON.stringify(o)).toEqual(['v1']);
      expect(switched.strategy).toBe('blue-green');
      expect(changesOf(result)).toEqual([
        {
          stage: 'preview',
          weights: { v1: 100, v2: 0 },
          preview: { header: 'x-runway-preview', value: 'qa' },
        },
        { stage: 'switch', weights: { v1: 0, v2: 100 } },
        { stage: 'graduate', weights: { v2: 100 } },
      ]);
      // the guard judged the preview traffic and the candidate at 100%, and passed it
      const guards = result.verdicts.filter((v) => v.check === 'slo');
      expect(guards.filter((v) => v.result === 'pass').length).toBeGreaterThanOrEqual(3);
      expect(result.verdicts.some((v) => v.check === 'comparison')).toBe(false);
      expect(await platform.routeOf(model)).toEqual([['v2', 100]]);
      expect(await platform.deps.registry.aliases(model)).toMatchObject({ production: '2', previous: '1' });
      // after scaleDownDelay the old version is gone
      expect((await platform.deps.fleet.list({ model })).map((d) => d.name)).toEqual([
        `${model}-v2-production`,
      ]);
      const history = (await fetchChain(platform.client, promotionWorkflowId(model))).flatMap(
        (r) => r.events,
      );
      const sw = routeChanges(history).find((c) => c.reason.startsWith('blue-green switch'));
      expect(sw?.weights).toEqual({ v1: 0, v2: 100 });
      console.info(`blue-green: switch to 100% took ${sw?.ms} ms (setTraffic scheduled → completed)`);
    },
  );

  it(
    'blue-green: v5 fails at 100% and is switched back to the full-size v1 at once',
    { timeout: 300_000 },
    async () => {
      const model = 'bg-errors';
      const spec = blueGreenSpec(model, false);
      await platform.bootstrap(model, spec);
      const before = await platform.deps.fleet.get(`${model}-v1-production`);
      const traffic = platform.traffic(model);
      await platform.start(spec, '5');
      await platform.approveWhenAsked(model);
      const result = await platform.result(model);
      await traffic.stop();
      await recordHistory(platform.client, promotionWorkflowId(model), 'blue-green-rollback-v5');

      expect(result.outcome, result.reason).toBe('rolled_back');
      expect(result.reason).toMatch(
        /^automatic rollback at blue-green switch after 2 failed intervals — slo: .*error rate/,
      );
      expect(changesOf(result)).toEqual([
        { stage: 'switch', weights: { v1: 0, v5: 100 } },
        { stage: 'rolling_back', weights: { v1: 100 } },
      ]);
      expect(await platform.routeOf(model)).toEqual([['v1', 100]]);
      // the baseline was never redeployed or restarted: the same replicas took the traffic back
      const after = await platform.deps.fleet.get(`${model}-v1-production`);
      expect(after?.endpoints).toEqual(before?.endpoints);
      expect((await platform.deps.fleet.list({ model })).map((d) => d.name)).toEqual([
        `${model}-v1-production`,
      ]);
      expect((await platform.deps.registry.get(model, '5'))?.status).toBe('rejected');
      expect((await platform.deps.registry.aliases(model)).production).toBe('1');
      const history = (await fetchChain(platform.client, promotionWorkflowId(model))).flatMap(
        (r) => r.events,
      );
      const revert = revertTiming(history);
      expect(revert?.reason).toMatch(/^rollback: automatic rollback at blue-green switch/);
      const sw = routeChanges(history).find((c) => c.reason.startsWith('blue-green switch'));
      console.info(
        `blue-green: switch to 100% took ${sw?.ms} ms; revert (failing look → route back on v1) took ${revert?.ms} ms`,
      );
    },
  );
});
