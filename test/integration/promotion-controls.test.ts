/**
 * Human controls on running promotions, on real components: manual rollback mid-canary,
 * pause/resume (the guard keeps watching, the clock stops), cancellation from the UI cleans up,
 * promote-full, and `runway rollback` after graduation restoring the previous version.
 */
import { describe, expect, it } from 'vitest';
import {
  pauseSignal,
  promoteFullSignal,
  promotionWorkflowId,
  resumeSignal,
  rollbackSignal,
  type RollbackWorkflowResult,
} from '../../workflows/api';
import { listPromotions } from '../../audit/fetch';
import { startRollback } from '../../cli/client';
import { recordHistory } from '../helpers/record';
import { testSpec, usePromotionPlatform, waitForStatus } from '../helpers/promotion';

const platform = usePromotionPlatform();

describe.concurrent('controls', () => {
  it('rolls back mid-canary on request, in seconds, with who and why', { timeout: 240_000 }, async () => {
    const model = 'fd-manual-rollback';
    const spec = testSpec(model, {
      canary: {
        steps: [
          { weight: 10, pause: '60s' },
          { weight: 100, pause: '0s' },
        ],
      },
    });
    const { traffic, handle } = await platform.launch(spec, '2');
    await waitForStatus(platform, model, (s) => s.stage === 'canary' && s.weights.v2 === 10, 120_000);
    const asked = Date.now();
    await handle.signal(rollbackSignal, { by: 'carol', reason: 'pager: fraud spike' });
    const result = await platform.result(model);
    const tookMs = Date.now() - asked;
    await traffic.stop();
    await recordHistory(platform.client, promotionWorkflowId(model), 'manual-rollback-mid-canary');
    expect(result.outcome).toBe('rolled_back');
    expect(result.reason).toBe('manual rollback by carol: pager: fraud spike');
    expect(tookMs).toBeLessThan(15_000);
    expect(await platform.routeOf(model)).toEqual([['v1', 100]]);
    expect((await platform.deps.fleet.list({ model })).map((d) => d.name)).toEqual([
      `${model}-v1-production`,
    ]);
    expect((await platform.deps.registry.get(model, '2'))?.status).toBe('rejected');
    expect((await platform.deps.registry.aliases(model)).production).toBe('1');
  });

  it(
    'pause holds the step while the guard keeps looking; resume continues to graduation',
    { timeout: 240_000 },
    async () => {
      const model = 'fd-pause';
      const spec = testSpec(model, { shadow: { enabled: false } });
      const { traffic, handle } = await platform.launch(spec, '2');
      await waitForStatus(platform, model, (s) => s.stage === 'canary' && s.weights.v2 === 10, 120_000);
      await handle.signal(pauseSignal, { by: 'dave', reason: 'checking dashboards' });
      const paused = await waitForStatus(platform, model, (s) => s.paused, 10_000);
      expect(paused.pauseReason).toBe('paused by dave: checking dashboards');
      // well past the step's 4 s: the step does not advance while paused, the guard still judges
      await new Promise((r) => setTimeout(r, 9_000));
      const during = await platform.status(model);
      expect(during.weights).toEqual({ v1: 90, v2: 10 });
      expect(during.step?.index).toBe(0);
      expect(during.lastVerdicts.some((v) => v.check === 'slo')).toBe(true);
      await handle.signal(resumeSignal, { by: 'dave' });
      const result = await platform.result(model);
      await traffic.stop();
      await recordHistory(platform.client, promotionWorkflowId(model), 'pause-resume');
      expect(result.outcome, result.reason).toBe('promoted');
      expect(result.trafficChanges.map((c) => c.weights.v2)).toEqual([10, 25, 50, 100]);
    },
  );

  it(
    'cancellation from the UI runs the cleanup: traffic back on the baseline, candidate gone',
    { timeout: 240_000 },
    async () => {
      const model = 'fd-cancel';
      const spec = testSpec(model, {
        canary: {
          steps: [
            { weight: 25, pause: '60s' },
            { weight: 100, pause: '0s' },
          ],
        },
      });
      const { traffic, handle } = await platform.launch(spec, '2');
      await waitForStatus(platform, model, (s) => s.stage === 'canary' && s.weights.v2 === 25, 120_000);
      await handle.cancel();
      const result = await platform.result(model);
      await traffic.stop();
      await recordHistory(platform.client, promotionWorkflowId(model), 'cancelled-mid-canary');
      expect(result.outcome).toBe('cancelled');
      expect(await platform.routeOf(model)).toEqual([['v1', 100]]);
      expect((await platform.deps.fleet.list({ model })).map((d) => d.name)).toEqual([
        `${model}-v1-production`,
      ]);
      const stats = traffic.stats();
      expect(
        Object.keys(stats.byStatus).filter((s) => s !== '200'),
        JSON.stringify(stats.byStatus),
      ).toEqual([]);
    },
  );

  it(
    'promote-full graduates at once; `runway rollback` afterwards restores the previous version',
    { timeout: 240_000 },
    async () => {
      const model = 'fd-full-then-back';
      // erin is on call: an operator, who may skip the analysis without being an approver
      const spec = testSpec(model, {
        shadow: { enabled: false },
        rollback: { scaleDownDelay: '1s' },
        approval: { operators: ['erin'] },
      });
      const { traffic, handle } = await platform.launch(spec, '2');
      await waitForStatus(platform, model, (s) => s.stage === 'canary', 120_000);
      await handle.signal(promoteFullSignal, { by: 'erin' });
      const result = await platform.result(model);
      await recordHistory(platform.client, promotionWorkflowId(model), 'promote-full');
      expect(result).toMatchObject({ outcome: 'promoted', reason: 'promoted fully by erin' });
      expect(await platform.routeOf(model)).toEqual([['v2', 100]]);
      // the previous version was scaled down after scaleDownDelay: the rollback must redeploy it
      expect((await platform.deps.fleet.list({ model })).map((d) => d.name)).toEqual([
        `${model}-v2-production`,
      ]);

      const rollback = await startRollback(platform.client, platform.taskQueue, {
        model,
        by: 'frank',
        reason: 'conversion dropped',
        serving: spec.serving,
      });
      const back = (await rollback.result()) as RollbackWorkflowResult;
      await traffic.stop();
      expect(back).toMatchObject({ from: '2', to: '1' });
      expect(await platform.routeOf(model)).toEqual([['v1', 100]]);
      expect(await platform.deps.registry.aliases(model)).toMatchObject({ production: '1' });
      expect((await platform.deps.registry.get(model, '2'))?.status).toBe('rejected');
      expect((await platform.deps.fleet.list({ model })).map((d) => d.name)).toEqual([
        `${model}-v1-production`,
      ]);
      // the audit list shows the rollback beside the promotion it undid, newest first
      const listed = await listPromotions(platform.client, model);
      expect(listed.map((p) => [p.kind, p.outcome])).toEqual([
        ['rollback', 'rolled_back'],
        ['promotion', 'promoted'],
      ]);
    },
  );

  it('a long phase continues as new and finishes with its state intact', { timeout: 240_000 }, async () => {
    const model = 'fd-continue-as-new';
    const spec = testSpec(model, {
      shadow: { enabled: false },
      canary: {
        interval: '1s',
        steps: [
          { weight: 10, pause: '12s' },
          { weight: 50, pause: '3s' },
          { weight: 100, pause: '0s' },
        ],
      },
    });
    const { traffic, handle } = await platform.launch(spec, '2', { extra: { historyLimit: 80 } });
    const result = await platform.result(model);
    await traffic.stop();
    expect(result.outcome, result.reason).toBe('promoted');
    // the traffic record spans the runs: every step once, in order
    expect(result.trafficChanges.map((c) => c.weights.v2)).toEqual([10, 50, 100]);
    expect(result.approvals.map((a) => a.approver)).toEqual(['alice']);
    // the finished run is not the first one: it was continued from an earlier run
    const history = await platform.client.workflow.getHandle(handle.workflowId).fetchHistory();
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    expect(started?.continuedExecutionRunId).toBeTruthy();
  });
});
