/**
 * The promotion path end to end on real components: Temporal dev server, router process, local
 * fleet of `runway serve` processes on the demo models, file registry, synthetic traffic.
 * Scenarios use distinct model names and run side by side.
 */
import { describe, expect, it } from 'vitest';
import { promotionWorkflowId, type PromotionResult } from '../../workflows/api';
import { recordHistory } from '../helpers/record';
import { testSpec, usePromotionPlatform } from '../helpers/promotion';

const platform = usePromotionPlatform();

function weightsOf(
  result: PromotionResult,
): { stage: string; weights: Record<string, number>; mirror?: unknown }[] {
  return result.trafficChanges.map((c) => ({
    stage: c.stage,
    weights: c.weights,
    ...(c.mirror ? { mirror: c.mirror } : {}),
  }));
}

describe.concurrent('promotion path', () => {
  it('promotes v2 over v1 through every step', { timeout: 240_000 }, async () => {
    const model = 'fd-promote';
    const spec = testSpec(model);
    const { traffic } = await platform.launch(spec, '2');
    const result = await platform.result(model);
    await traffic.stop();
    await recordHistory(platform.client, promotionWorkflowId(model), 'promote-v2');

    expect(result.outcome, result.reason).toBe('promoted');
    expect(result.verdicts.find((v) => v.check === 'evaluation')?.result).toBe('pass');
    expect(result.verdicts.find((v) => v.check === 'integration')?.result).toBe('pass');
    expect(weightsOf(result)).toEqual([
      {
        stage: 'shadow',
        weights: { v1: 100, v2: 0 },
        mirror: { variant: 'v2', percent: 100, tolerance: 0.0001, threshold: 0.5 },
      },
      { stage: 'canary', weights: { v1: 90, v2: 10 } },
      { stage: 'canary', weights: { v1: 75, v2: 25 } },
      { stage: 'canary', weights: { v1: 50, v2: 50 } },
      { stage: 'graduate', weights: { v2: 100 } },
    ]);
    // every interval of every step was judged by the guard, and it passed
    const guards = result.verdicts.filter((v) => v.check === 'slo');
    expect(guards.length).toBeGreaterThanOrEqual(6);
    expect(guards.every((v) => v.result !== 'fail')).toBe(true);

    const aliases = await platform.deps.registry.aliases(model);
    expect(aliases).toMatchObject({ production: '2', previous: '1' });
    expect((await platform.deps.registry.get(model, '2'))?.status).toBe('production');
    expect((await platform.deps.registry.get(model, '1'))?.status).toBe('archived');
    const route = await platform.deps.router.getRoute(model);
    expect(route?.variants.map((v) => [v.name, v.weight])).toEqual([['v2', 100]]);
    expect(route?.mirror).toBeUndefined();
    // after scaleDownDelay the old version is gone; staging was torn down after the tests
    const names = (await platform.deps.fleet.list({ model })).map((d) => d.name);
    expect(names).toEqual([`${model}-v2-production`]);
    // traffic kept flowing: no client saw a server error during the whole promotion
    const stats = traffic.stats();
    expect(stats.byStatus['200']).toBeGreaterThan(100);
    expect(
      Object.keys(stats.byStatus).filter((s) => s !== '200'),
      JSON.stringify(stats),
    ).toEqual([]);
  });

  it('rejects v3 at evaluation without deploying anything', { timeout: 240_000 }, async () => {
    const model = 'fd-evaluation';
    const spec = testSpec(model);
    await platform.bootstrap(model, spec);
    await platform.start(spec, '3');
    const result = await platform.result(model);
    await recordHistory(platform.client, promotionWorkflowId(model), 'evaluation-fails-v3');
    expect(result.outcome).toBe('rejected');
    expect(result.reason).toMatch(/evaluation failed: accuracy 0\.70\d+ is below the minimum 0\.8/);
    const evaluation = result.verdicts.find((v) => v.check === 'evaluation');
    expect(evaluation).toMatchObject({ result: 'fail', baseline: { version: '1', value: 0.8735 } });
    expect((await platform.deps.fleet.list({ model })).map((d) => d.name)).toEqual([
      `${model}-v1-production`,
    ]);
    expect((await platform.deps.registry.get(model, '3'))?.status).toBe('rejected');
  });

  it(
    'rolls v4 back automatically at canary when its p99 latency breaks the SLO',
    { timeout: 240_000 },
    async () => {
      const model = 'fd-latency';
      // staging and shadow tolerate v4; the production SLO does not
      const spec = testSpec(model, {
        slos: { p99LatencyMs: 20 },
        integration: { maxP99LatencyMs: 5000 },
        shadow: { maxP99LatencyMs: 5000 },
      });
      const { traffic } = await platform.launch(spec, '4');
      const result = await platform.result(model);
      await traffic.stop();
      await recordHistory(platform.client, promotionWorkflowId(model), 'latency-rollback-v4');
      expect(result.outcome, result.reason).toBe('rolled_back');
      expect(result.reason).toMatch(/automatic rollback at canary .*p99/);
      const last = result.trafficChanges.at(-1);
      expect(last?.weights).toEqual({ v1: 100 });
      expect((await platform.deps.router.getRoute(model))?.variants.map((v) => [v.name, v.weight])).toEqual([
        ['v1', 100],
      ]);
      expect((await platform.deps.fleet.list({ model })).map((d) => d.name)).toEqual([
        `${model}-v1-production`,
      ]);
      expect((await platform.deps.registry.get(model, '4'))?.status).toBe('rejected');
      expect((await platform.deps.registry.aliases(model)).production).toBe('1');
    },
  );

  it('rolls v5 back on errors, with the error rate behind the decision', { timeout: 240_000 }, async () => {
    const model = 'fd-errors';
    const spec = testSpec(model, { evaluation: { maxRegression: 0.1 } });
    const { traffic } = await platform.launch(spec, '5');
    const result = await platform.result(model);
    await traffic.stop();
    await recordHistory(platform.client, promotionWorkflowId(model), 'error-rollback-v5');
    expect(result.outcome, result.reason).toBe('rolled_back');
    expect(result.reason).toMatch(/error rate/);
    expect((await platform.deps.router.getRoute(model))?.variants.map((v) => [v.name, v.weight])).toEqual([
      ['v1', 100],
    ]);
    expect((await platform.deps.router.getRoute(model))?.mirror).toBeUndefined();
    expect((await platform.deps.registry.get(model, '5'))?.status).toBe('rejected');
    const failing = result.verdicts.filter((v) => v.result === 'fail');
    expect(failing.length).toBeGreaterThanOrEqual(2);
  });
});
