/**
 * The router SIGKILLed mid-canary and started again on the same port and state: the routes come
 * back from its routes file, the analysis reads the counter reset as missing data (inconclusive,
 * never a pass or a fail), and the promotion goes on to the same outcome. Real router process,
 * real model servers, real Temporal.
 */
import { describe, expect, it } from 'vitest';
import { testSpec, usePromotionPlatform, waitForStatus } from '../helpers/promotion';

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
});
