/**
 * A worker killed (SIGKILL) mid-promotion and restarted: the promotion finishes with the same
 * outcome, every traffic step applied once, in order, and no model server twins. The worker is a
 * real `runway worker` process configured only by environment, as operators run it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runwayBin } from '../../common/paths';
import { approveUpdate, promotionWorkflowId } from '../../workflows/api';
import { BANDIT, testSpec, usePromotionPlatform, waitForStatus } from '../helpers/promotion';
import { testTemporal } from '../helpers/temporal';

const platform = usePromotionPlatform({ worker: false });
const workers: ChildProcess[] = [];
afterAll(() => {
  for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
});

async function startWorker(): Promise<ChildProcess> {
  const endpoint = await testTemporal();
  const child = spawn(process.execPath, [runwayBin, 'worker'], {
    env: {
      ...process.env,
      RUNWAY_HOME: platform.home,
      TEMPORAL_ADDRESS: endpoint.address,
      RUNWAY_TASK_QUEUE: platform.taskQueue,
      RUNWAY_ROUTER_ADMIN_URL: platform.router.url,
      RUNWAY_ROUTER_TOKEN: platform.router.token,
      RUNWAY_REGISTRY_DIR: path.join(platform.home, 'registry'),
      RUNWAY_FLEET_STATE_DIR: path.join(platform.home, 'fleet'),
      RUNWAY_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  workers.push(child);
  return child;
}

function kill9(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe('worker killed mid-promotion', () => {
  it(
    'finishes the promotion after restarts, each step applied once, no twins',
    { timeout: 300_000 },
    async () => {
      const model = 'fd-worker-kill';
      const spec = testSpec(model, {
        shadow: { duration: '4s' },
        canary: {
          interval: '2s',
          steps: [
            { weight: 10, pause: '6s' },
            { weight: 25, pause: '6s' },
            { weight: 50, pause: '4s' },
            { weight: 100, pause: '0s' },
          ],
        },
        experiment: BANDIT,
      });
      await platform.bootstrap(model, spec);
      const traffic = platform.traffic(model, 80);
      let worker = await startWorker();
      const handle = await platform.start(spec, '2');

      type S = { stage: string; weights: Record<string, number> };
      // Kill while it waits for a human, during the shadow, in two canary steps and in the bandit.
      const killsAt: [string, (s: S) => boolean][] = [
        ['approve', (s) => s.stage === 'approve'],
        ['shadow', (s) => s.stage === 'shadow' && s.weights.v2 === 0],
        ['canary 10%', (s) => s.stage === 'canary' && s.weights.v2 === 10],
        ['canary 25%', (s) => s.stage === 'canary' && s.weights.v2 === 25],
        ['experiment', (s) => s.stage === 'experiment'],
      ];
      for (const [where, at] of killsAt) {
        await waitForStatus(platform, model, at, 120_000);
        await kill9(worker);
        await new Promise((r) => setTimeout(r, 2_000));
        worker = await startWorker();
        if (where === 'approve') await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
      }
      const result = await platform.result(model);
      await traffic.stop();
      expect(result.outcome, result.reason).toBe('promoted');
      const changes = result.trafficChanges.map((c) => [c.stage, c.weights.v2]);
      expect(changes.slice(0, 4)).toEqual([
        ['shadow', 0],
        ['canary', 10],
        ['canary', 25],
        ['canary', 50],
      ]);
      expect(changes.at(-1)).toEqual(['graduate', 100]);
      expect(changes.slice(4, -1).every(([stage]) => stage === 'experiment')).toBe(true);
      expect(changes.length).toBeGreaterThan(5);
      const deployments = await platform.deps.fleet.list({ model });
      expect(deployments.map((d) => [d.name, d.replicas, d.endpoints.length])).toEqual([
        [`${model}-v2-production`, 1, 1],
      ]);
      const history = await platform.client.workflow.getHandle(promotionWorkflowId(model)).fetchHistory();
      const setTraffic = (history.events ?? []).filter(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'setTraffic',
      );
      // every route change recorded was scheduled exactly once: no retried twin moved traffic
      expect(setTraffic.length).toBe(result.trafficChanges.length);
      // no client request failed while workers died: traffic never depends on the worker
      const stats = traffic.stats();
      expect(
        Object.keys(stats.byStatus).filter((s) => s !== '200'),
        JSON.stringify(stats.byStatus),
      ).toEqual([]);
      console.info(
        `worker kills: ${killsAt.length} SIGKILLs (${killsAt.map(([w]) => w).join(', ')}); ${stats.completed} requests, ${JSON.stringify(stats.byStatus)}; ${setTraffic.length} route changes, each scheduled once`,
      );
      await kill9(worker);
    },
  );
});
