/**
 * A real promotion whose bandit is attacked: while honest traffic rewards correct decisions, a
 * client that can reach the router sends requests of its own and, for each one the worse arm
 * (v3, accuracy 0.70 against v1's 0.87) answers, posts a reward of 1 forty times. Counted as the
 * router used to count them, those rewards make the bandit pick v3; now the repeats are refused
 * (409), and the refusals make every bandit verdict inconclusive, saying why, until the
 * experiment times out and keeps the baseline. Real Temporal, router, local fleet, onnxruntime.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Pool } from 'undici';
import { DEFAULT_BANDIT, thompsonWeights } from '../../activities/analysis';
import type { Verdict } from '../../workflows/api';
import { BANDIT, experimentSpec, usePromotionPlatform, waitForStatus } from '../helpers/promotion';
import { inferBody } from '../helpers/router';

const platform = usePromotionPlatform();

interface Attack {
  requests: number;
  byStatus: Record<number, number>;
  /** Units the worse arm answered (each may earn one reward). */
  unitsOnTarget: number;
  stop(): Promise<void>;
}

/** Requests with fresh units, then `repeats` rewards of 1 for each one `target` answered. */
function attack(baseUrl: string, model: string, target: string, repeats: number): Attack {
  const pool = new Pool(baseUrl, { connections: 8 });
  const state: Attack = { requests: 0, byStatus: {}, unitsOnTarget: 0, stop: async () => {} };
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const unit = `mallory-${i}`;
      try {
        const res = await pool.request({
          path: `/v2/models/${model}/infer`,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-runway-unit': unit },
          body: inferBody(),
        });
        await res.body.dump();
        state.requests++;
        if (res.statusCode === 200 && res.headers['x-runway-variant'] === target) {
          state.unitsOnTarget++;
          await Promise.all(
            Array.from({ length: repeats }, async () => {
              const fb = await pool.request({
                path: '/v1/feedback',
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({ model, unit, reward: 1 }),
              });
              await fb.body.dump();
              state.byStatus[fb.statusCode] = (state.byStatus[fb.statusCode] ?? 0) + 1;
            }),
          );
        }
      } catch {
        // the route may be changing; keep going
      }
      await sleep(200);
    }
  })();
  state.stop = async () => {
    running = false;
    await loop;
    await pool.close();
  };
  return state;
}

type BanditVerdict = Verdict & {
  decision?: string;
  best?: string;
  weights?: Record<string, number>;
  rewards?: Record<string, { count: number; sum: number }>;
  withheld?: { decision: string; best?: string };
};

describe('experiment under stuffed feedback', () => {
  it(
    'a bandit fed stuffed rewards for the worse arm does not pick it, and its verdicts say why',
    { timeout: 300_000 },
    async () => {
      const model = 'fd-stuffed';
      const spec = experimentSpec(
        model,
        { ...BANDIT, maxDuration: '40s' },
        { evaluation: { min: 0.5, maxRegression: 0.5 } },
      );
      const { traffic } = await platform.launch(spec, '3', { rps: 40 });
      // The attacker starts in the canary, so it is at full speed when the experiment begins.
      await waitForStatus(platform, model, (s) => s.stage === 'canary', 120_000);
      const mallory = attack(platform.router.url, model, 'v3', 40);
      const result = await platform.result(model);
      await mallory.stop();
      await traffic.stop();

      const bandit = result.verdicts.filter((v) => v.check === 'bandit') as BanditVerdict[];
      expect(bandit.length, result.reason).toBeGreaterThanOrEqual(3);
      // Each repeat was refused: at most one reward per attacking unit was accepted.
      const accepted = mallory.byStatus[200] ?? 0;
      const refused = mallory.byStatus[409] ?? 0;
      expect(accepted).toBeLessThanOrEqual(mallory.unitsOnTarget);
      expect(refused).toBeGreaterThanOrEqual(mallory.unitsOnTarget * 39 - accepted);
      console.info(
        `stuffing: ${mallory.requests} attacker requests, ${mallory.unitsOnTarget} on v3, feedback ${JSON.stringify(mallory.byStatus)}; outcome ${result.outcome}: ${result.reason}`,
      );

      // Control: counted as before (every attempt a reward), the bandit would have picked v3.
      const last = bandit.at(-1)!;
      const counts = last.rewards!;
      const stuffedV3 = { count: counts.v3!.count + refused, sum: counts.v3!.sum + refused };
      const naive = thompsonWeights(
        { v1: counts.v1!, v3: stuffedV3 },
        {
          ...DEFAULT_BANDIT,
          confidence: spec.experiment.confidence,
          explorationFloor: spec.experiment.explorationFloor,
          minRewards: spec.experiment.minRewards,
        },
        1,
        'v3',
      );
      expect(naive.best, naive.reason).toBe('v3');
      expect(naive.decision, naive.reason).toBe('stop');

      // Now: no verdict ever stopped on v3, the experiment kept the baseline, and said why.
      expect(result.outcome, result.reason).not.toBe('promoted');
      expect(bandit.some((v) => v.decision === 'stop' && v.best === 'v3')).toBe(false);
      const distrusted = bandit.filter((v) => /^feedback not trusted/.test(v.reason));
      expect(distrusted.length, JSON.stringify(bandit.map((v) => v.reason))).toBeGreaterThanOrEqual(
        bandit.length - 1,
      );
      for (const v of distrusted) {
        expect(v.result).toBe('inconclusive');
        expect(v.weights).toBeUndefined();
        expect(v.reason).toMatch(/v3: the router refused \d+(\.\d+)?% of its feedback/);
      }
      expect(result.outcome).toBe('rejected');
      expect(result.reason).toMatch(
        /experiment kept the baseline: no decision within 40s: feedback not trusted/,
      );
      expect(await platform.routeOf(model)).toEqual([['v1', 100]]);
    },
  );
});
