/**
 * The Temporal dev server SIGKILLed twice mid-promotion — while it waits for an approval and in
 * the middle of a canary step — and started again on the same SQLite database and port: nothing
 * is lost (the approval wait, the step clock, the route history), the promotion completes with
 * each traffic step applied once, and client traffic never notices (it does not go through
 * Temporal). A server of this file's own, so no other test shares the outage.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { auditModel } from '../../audit/fetch';
import { projectRoot } from '../../common/paths';
import { sigkillAndWait } from '../../common/process';
import { freePort } from '../../common/ports';
import { loadPlatformConfig } from '../../workers/config';
import { ensureTemporal, stopDevServer, type TemporalEndpoint } from '../../workers/temporal-server';
import { approveUpdate, promotionWorkflowId } from '../../workflows/api';
import { testSpec, usePromotionPlatform, waitForStatus } from '../helpers/promotion';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-temporal-fault-'));
let port = 0;
// An explicit empty environment: this test must own its server even when TEMPORAL_ADDRESS is set.
const settings = loadPlatformConfig({ file: null, env: {} }).temporal;
const startServer = (): Promise<TemporalEndpoint> =>
  ensureTemporal({ temporal: settings, dataDir, port, uiPort: 'auto' });

// Registered before the platform's hooks, so it runs after them (after-hooks run in reverse).
afterAll(async () => {
  await stopDevServer(dataDir);
  fs.rmSync(dataDir, { recursive: true, force: true });
}, 30_000);

const platform = usePromotionPlatform({
  temporal: async () => {
    port = await freePort();
    return startServer();
  },
});

/** SIGKILLs the dev server, leaves it down `downMs`, starts it again on the same database. */
async function crashTemporal(downMs: number): Promise<void> {
  const state = JSON.parse(fs.readFileSync(path.join(dataDir, 'server.json'), 'utf8')) as { pid: number };
  await sigkillAndWait(state.pid);
  await new Promise((r) => setTimeout(r, downMs));
  const back = await startServer();
  expect(back.mode).toBe('started');
  expect(back.address).toBe(`127.0.0.1:${port}`);
}

describe('Temporal server killed mid-promotion', () => {
  it(
    'loses nothing: the approval wait and the canary survive two crashes',
    { timeout: 300_000 },
    async () => {
      const model = 'fd-temporal-kill';
      const spec = testSpec(model, {
        shadow: { duration: '2s' },
        canary: {
          interval: '2s',
          steps: [
            { weight: 25, pause: '8s' },
            { weight: 50, pause: '4s' },
            { weight: 100, pause: '0s' },
          ],
        },
      });
      await platform.bootstrap(model, spec);
      const traffic = platform.traffic(model, 40);
      await platform.start(spec, '2', 'ci-bot', { metadata: { commit: 'f00d', pipeline: 'fault-temporal' } });
      await waitForStatus(platform, model, (s) => s.stage === 'approve', 120_000);

      // 1: while the workflow waits for a human
      await crashTemporal(2_000);
      const handle = platform.client.workflow.getHandle(promotionWorkflowId(model));
      const verdict = await handle.executeUpdate(approveUpdate, {
        args: [{ approver: 'alice', comment: 'ok' }],
      });
      expect(verdict.accepted, JSON.stringify(verdict)).toBe(true);

      // 2: in the middle of a canary step, with the step clock running
      await waitForStatus(
        platform,
        model,
        (s) => s.stage === 'canary' && s.weights.v2 === 25 && (s.step?.heldMs ?? 0) >= 2_000,
        120_000,
      );
      await crashTemporal(3_000);

      const result = await platform.result(model);
      await traffic.stop();
      expect(result.outcome, result.reason).toBe('promoted');
      expect(result.approvals.map((a) => a.approver)).toEqual(['alice']);
      expect(result.trafficChanges.map((c) => [c.stage, c.weights.v2])).toEqual([
        ['shadow', 0],
        ['canary', 25],
        ['canary', 50],
        ['graduate', 100],
      ]);
      // The history on the restarted database is whole: one start, one approval, each step once.
      const history = await handle.fetchHistory();
      const events = history.events ?? [];
      expect(events.filter((e) => e.workflowExecutionStartedEventAttributes).length).toBe(1);
      const start = events[0]?.workflowExecutionStartedEventAttributes;
      expect(start?.identity).toBe('tests');
      const setTraffic = events.filter(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'setTraffic',
      );
      expect(setTraffic.length).toBe(4);
      // The auditor's view of the restarted database: whole, and it still replays on today's code.
      const audit = (
        await auditModel(platform.client, {
          model,
          replay: { workflowsPath: path.join(projectRoot, 'workflows', 'index.ts') },
        })
      ).promotions[0];
      expect(audit?.trigger.metadata).toMatchObject({ commit: 'f00d', pipeline: 'fault-temporal' });
      expect(audit?.approvals.map((a) => [a.approver, a.accepted])).toEqual([['alice', true]]);
      expect(audit?.trafficChanges.map((c) => c.weights.v2)).toEqual([0, 25, 50, 100]);
      expect(audit?.replay).toMatchObject({ checked: true, ok: true });
      // Client traffic never goes through Temporal: not one request failed.
      const stats = traffic.stats();
      expect(stats.completed).toBeGreaterThan(200);
      expect(
        Object.keys(stats.byStatus).filter((s) => s !== '200'),
        JSON.stringify(stats.byStatus),
      ).toEqual([]);
      console.info(
        `temporal crash: 2 SIGKILLs (approve wait, canary 25%), ${stats.completed} requests, ${JSON.stringify(stats.byStatus)}, ${events.length} events`,
      );
    },
  );
});
