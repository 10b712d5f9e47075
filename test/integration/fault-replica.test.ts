/**
 * A candidate replica SIGKILLed during the canary: the router answers its share from the baseline
 * (the dead replica never got those requests), charges each failed attempt to the candidate, and
 * the SLO guard rolls back. Real `runway serve` processes, real router, real Temporal.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pidAlive } from '../../common/process';
import type { DeploymentState } from '../../serving/fleet/local-state';
import { deploymentName } from '../../serving/fleet/driver';
import { testSpec, usePromotionPlatform, waitForStatus } from '../helpers/promotion';

const platform = usePromotionPlatform();

function replicas(model: string, version: string): { pid: number; endpoint: string }[] {
  const file = path.join(platform.home, 'fleet', `${deploymentName(model, version, 'production')}.json`);
  const state = JSON.parse(fs.readFileSync(file, 'utf8')) as DeploymentState;
  return state.instances.map((r) => ({ pid: r.pid, endpoint: r.endpoint }));
}

describe('candidate replica killed during the canary', () => {
  it(
    'rolls back on the SLO guard, no client request lost, no traffic left on the dead endpoint',
    {
      timeout: 240_000,
    },
    async () => {
      const model = 'fd-replica-kill';
      const spec = testSpec(model, {
        shadow: { duration: '2s' },
        canary: {
          interval: '2s',
          failureLimit: 2,
          steps: [
            { weight: 25, pause: '30s' },
            { weight: 100, pause: '0s' },
          ],
        },
      });
      const { traffic } = await platform.launch(spec, '2', { rps: 40 });
      await waitForStatus(platform, model, (s) => s.stage === 'canary' && s.weights.v2 === 25, 120_000);

      const [victim] = replicas(model, '2');
      if (!victim) throw new Error('no candidate replica recorded');
      process.kill(victim.pid, 'SIGKILL');
      const killedAt = Date.now();

      const result = await platform.result(model);
      const detectMs = Date.now() - killedAt;
      await traffic.stop();

      expect(result.outcome, result.reason).toBe('rolled_back');
      expect(result.reason).toMatch(/error rate/);
      // failureLimit × interval plus the route change, with slack for a busy machine
      expect(detectMs).toBeLessThan(30_000);
      expect(result.trafficChanges.at(-1)?.weights).toEqual({ v1: 100 });
      expect(await platform.routeOf(model)).toEqual([['v1', 100]]);
      // the route holds only live endpoints: v1's replica answers, the dead one is gone from it
      const route = await platform.deps.router.getRoute(model);
      const endpoints = route?.variants.flatMap((v) => v.endpoints) ?? [];
      expect(endpoints.length).toBeGreaterThan(0);
      expect(endpoints.map((e) => e.replace(/\/+$/, ''))).not.toContain(victim.endpoint.replace(/\/+$/, ''));
      for (const r of replicas(model, '1')) expect(pidAlive(r.pid)).toBe(true);
      expect(pidAlive(victim.pid)).toBe(false);

      const stats = traffic.stats();
      expect(stats.completed).toBeGreaterThan(100);
      // Every client request was answered: the dead replica's share went to the baseline.
      expect(
        Object.keys(stats.byStatus).filter((s) => s !== '200'),
        JSON.stringify(stats.byStatus),
      ).toEqual([]);
      console.info(
        `replica kill: rolled back ${detectMs} ms after SIGKILL; ${stats.completed} requests, ${JSON.stringify(stats.byStatus)}`,
      );
    },
  );
});
