/**
 * A real promotion whose bandit is attacked: while honest traffic rewards correct decisions, a
 * client that can reach the router sends requests of its own and, for each one the worse arm
 * (v3, accuracy 0.70 against v1's 0.87) answers, posts a reward of 1 forty times. Counted as the
 * router used to count them, those rewards make the bandit pick v3; now the repeats are refused
 * (409), and the refusals make every bandit verdict inconclusive, saying why, until the
 * experiment times out and keeps the baseline. Real Temporal, router, local fleet, onnxruntime.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Pool } from 'undici';
import { DEFAULT_BANDIT, thompsonWeights } from '../../activities/analysis';
import { promotionWorkflowId, type Verdict } from '../../workflows/api';
import { BANDIT, experimentSpec, usePromotionPlatform, waitForStatus } from '../helpers/promotion';
import { inferBody } from '../helpers/router';

// The guarded model's feedback token, in a file the platform config names, as an operator sets it.
const token = randomBytes(32).toString('hex');
const platform = usePromotionPlatform({
  platformConfig: (home) => {
    const file = path.join(home, 'fd-guarded.token');
    fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
    return { router: { feedbackTokenFiles: { 'fd-guarded': file } } };
  },
});

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

/** A history as text with every payload decoded (payload data travels base64-encoded). */
function readable(history: unknown): string {
  const out: string[] = [];
  const walk = (node: unknown): void => {
    if (node instanceof Uint8Array) out.push(Buffer.from(node).toString('utf8'));
    else if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === 'data' && typeof v === 'string') out.push(Buffer.from(v, 'base64').toString('utf8'));
        else walk(v);
      }
    } else if (typeof node === 'string') out.push(node);
  };
  walk(history);
  return out.join('\n');
}

/** Until the promotion reaches the canary (or ends early: the result then says why). */
async function pastIntegration(model: string): Promise<void> {
  const before = new Set(['evaluate', 'approve', 'stage', 'integration']);
  await waitForStatus(platform, model, (s) => !before.has(s.stage), 120_000);
}

type BanditVerdict = Verdict & {
  decision?: string;
  best?: string;
  weights?: Record<string, number>;
  rewards?: Record<string, { count: number; sum: number }>;
  withheld?: { decision: string; best?: string };
};

describe.concurrent('experiment under stuffed feedback', () => {
  it(
    'a bandit fed stuffed rewards for the worse arm does not pick it, and its verdicts say why',
    { timeout: 300_000 },
    async () => {
      const model = 'fd-stuffed';
      const spec = experimentSpec(
        model,
        { ...BANDIT, maxDuration: '40s' },
        // Latency is not what this tests: a loaded CI machine must not fail the staging check.
        { evaluation: { min: 0.5, maxRegression: 0.5 }, slos: { p99LatencyMs: 1500 } },
      );
      const { traffic } = await platform.launch(spec, '3', { rps: 40 });
      // The attacker starts in the canary, so it is at full speed when the experiment begins.
      await pastIntegration(model);
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

  it(
    'with a feedback token only the application is heard: the attacker gets 401 and the bandit decides on honest rewards',
    { timeout: 300_000 },
    async () => {
      const model = 'fd-guarded';
      const spec = experimentSpec(
        model,
        { ...BANDIT, maxDuration: '60s' },
        // Latency is not what this tests: a loaded CI machine must not fail the staging check.
        { evaluation: { min: 0.5, maxRegression: 0.5 }, slos: { p99LatencyMs: 1500 } },
      );
      const { traffic } = await platform.launch(spec, '3', { rps: 40 });
      await pastIntegration(model);
      const mallory = attack(platform.router.url, model, 'v3', 40);
      const result = await platform.result(model);
      await mallory.stop();
      const stats = await traffic.stop();
      console.info(
        `guarded: attacker feedback ${JSON.stringify(mallory.byStatus)}; application feedback ${JSON.stringify(stats.feedback)}; outcome ${result.outcome}: ${result.reason}`,
      );
      expect(mallory.unitsOnTarget).toBeGreaterThan(0);
      expect(Object.keys(mallory.byStatus)).toEqual(['401']);
      expect(stats.feedback.sent).toBeGreaterThan(0);
      expect(result.outcome, result.reason).toBe('rejected');
      expect(result.reason).toMatch(/the bandit chose the baseline: v1 is best/);
      const bandit = result.verdicts.filter((v) => v.check === 'bandit');
      expect(bandit.some((v) => /feedback not trusted/.test(v.reason))).toBe(false);
      // The route holds the digest; neither it nor the token is in the workflow history.
      const route = await platform.deps.router.getRoute(model);
      expect(route?.feedback?.tokenSha256).toMatch(/^[0-9a-f]{64}$/);
      const history = readable(
        await platform.client.workflow.getHandle(promotionWorkflowId(model)).fetchHistory(),
      );
      expect(history).not.toContain(token);
      expect(history).not.toContain(route!.feedback!.tokenSha256);
      expect(history).toContain('feedbackTokenRequired');
    },
  );
});
