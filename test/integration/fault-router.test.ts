/**
 * The router SIGKILLed mid-canary and started again on the same port and state: the routes come
 * back from its routes file, the analysis reads the counter reset as missing data (inconclusive,
 * never a pass or a fail), and the promotion goes on to the same outcome. Restarted during a
 * bandit, the experiment keeps the rewards it had counted and counts on. Real router process,
 * real model servers, real Temporal.
 */
import { describe, expect, it } from 'vitest';
import { promotionWorkflowId, type Verdict } from '../../workflows/api';
import { BANDIT, experimentSpec, testSpec, usePromotionPlatform, waitForStatus } from '../helpers/promotion';
import { recordHistory } from '../helpers/record';

const platform = usePromotionPlatform();

describe('router restarted mid-canary', () => {
  it(
    'keeps its routes, treats the gap as missing data, and the promotion completes',
    {
      timeout: 240_000,
    },
    async () => {
      const model = 'fd-router-restart';
      const spec = testSpec(model, {
        shadow: { duration: '2s' },
        canary: {
          interval: '2s',
          failureLimit: 2,
          steps: [
            { weight: 25, pause: '10s' },
            { weight: 50, pause: '4s' },
            { weight: 100, pause: '0s' },
          ],
        },
      });
      const { traffic } = await platform.launch(spec, '2', { rps: 40 });
      await waitForStatus(
        platform,
        model,
        (s) => s.stage === 'canary' && s.weights.v2 === 25 && (s.step?.heldMs ?? 0) >= 2_000,
        120_000,
      );
      const before = await platform.deps.router.getRoute(model);
      const beforeKill = traffic.stats();

      await platform.restartRouter(3_000);
      // The routes are back before any workflow step could have re-applied them.
      expect(await platform.deps.router.getRoute(model)).toEqual(before);
      const afterRestart = traffic.stats();

      const result = await platform.result(model);
      await traffic.stop();
      expect(result.outcome, result.reason).toBe('promoted');
      // Each traffic step applied once, in order: the restart did not replay or skip one.
      expect(result.trafficChanges.map((c) => [c.stage, c.weights.v2])).toEqual([
        ['shadow', 0],
        ['canary', 25],
        ['canary', 50],
        ['graduate', 100],
      ]);
      const gaps = result.verdicts.filter((v) => /missing data: .*restarted/.test(v.reason));
      expect(gaps.length, JSON.stringify(result.verdicts.map((v) => v.reason))).toBeGreaterThanOrEqual(1);
      for (const g of gaps) expect(g.result).toBe('inconclusive');
      expect(result.verdicts.filter((v) => v.result === 'fail')).toEqual([]);

      // Requests the router accepted were all answered; only connection attempts while it was down
      // failed (transport errors, never an accepted request answered badly).
      const stats = traffic.stats();
      const statuses = Object.keys(stats.byStatus).filter((s) => s !== '200' && s !== 'error');
      expect(statuses, JSON.stringify(stats.byStatus)).toEqual([]);
      expect(beforeKill.byStatus.error ?? 0).toBe(0);
      const refused = (afterRestart.byStatus.error ?? 0) - (beforeKill.byStatus.error ?? 0);
      expect(stats.byStatus.error ?? 0).toBe((beforeKill.byStatus.error ?? 0) + refused);
      console.info(
        `router restart: down 3 s; ${refused} requests refused while down; ${stats.completed} answered; ${gaps.length} gap window(s)`,
      );
    },
  );

  it(
    'restarted during a bandit: the rewards counted so far are kept and the experiment decides',
    { timeout: 240_000 },
    async () => {
      const model = 'fd-router-bandit';
      // 100 rewards per arm at 40 rps: the first looks (~40 per arm) cannot decide before the restart
      const spec = experimentSpec(model, { ...BANDIT, minRewards: 100 });
      type BanditVerdict = Verdict & { rewards?: Record<string, { count: number }> };
      const counted = (v: BanditVerdict | undefined): number =>
        Object.values(v?.rewards ?? {}).reduce((n, r) => n + r.count, 0);
      const banditOf = (vs: Verdict[]) => vs.find((v) => v.check === 'bandit') as BanditVerdict | undefined;
      const { traffic } = await platform.launch(spec, '2', { rps: 40 });
      const ready = await waitForStatus(
        platform,
        model,
        (s) => s.stage === 'experiment' && counted(banditOf(s.lastVerdicts)) >= 20,
        120_000,
      );
      const before = counted(banditOf(ready.lastVerdicts));
      await platform.restartRouter(2_000);
      const result = await platform.result(model);
      await traffic.stop();
      await recordHistory(platform.client, promotionWorkflowId(model), 'bandit-router-restart');
      expect(result.outcome, result.reason).toBe('promoted');
      const bandit = result.verdicts.filter((v) => v.check === 'bandit') as BanditVerdict[];
      const gap = bandit.findIndex((v) => /missing data since the experiment began/.test(v.reason));
      expect(gap, JSON.stringify(bandit.map((v) => v.reason))).toBeGreaterThan(0);
      expect(bandit[gap]!.result).toBe('inconclusive');
      // the looks after the gap count on from what was counted before it, never from zero
      const beforeGap = counted(bandit[gap - 1]);
      expect(beforeGap).toBeGreaterThanOrEqual(before);
      const after = bandit.slice(gap + 1);
      expect(after.length).toBeGreaterThanOrEqual(1);
      for (const v of after) expect(counted(v)).toBeGreaterThanOrEqual(beforeGap);
      expect(bandit.at(-1)).toMatchObject({ decision: 'stop', best: 'v2' });
      console.info(
        `router restart in a bandit: ${beforeGap} rewards before the gap, kept; ${counted(bandit.at(-1))} at the decision, ${after.length} looks after the gap`,
      );
    },
  );
});
