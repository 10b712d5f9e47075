/**
 * A CLI newer than the worker: `runway pause` and `runway rollback` send updates, which a worker
 * from before control updates has no handler for; the brake must still reach the promotion, by
 * the signal that worker does handle. Real dev server, compiled CLI, a fixture workflow standing
 * in for the older promotion.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { projectRoot, runwayBin } from '../../common/paths';
import { promotionWorkflowId } from '../../workflows/api';
import { receivedQuery } from '../fixtures/workflows/signal-only-controls';
import { testTemporal, uniqueTaskQueue, useTemporal, withWorker } from '../helpers/temporal';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-fallback-'));
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

async function runway(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const endpoint = await testTemporal();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [runwayBin, ...args], {
      env: {
        ...process.env,
        RUNWAY_HOME: home,
        TEMPORAL_ADDRESS: endpoint.address,
        RUNWAY_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('controls against a worker without control updates', () => {
  const temporal = useTemporal();

  it('pause and rollback fall back to the signals it handles', { timeout: 120_000 }, async () => {
    const taskQueue = uniqueTaskQueue('fallback');
    const model = `fb-${taskQueue}`;
    await withWorker(
      {
        workflowsPath: path.join(projectRoot, 'test', 'fixtures', 'workflows', 'signal-only-controls.ts'),
        taskQueue,
      },
      async () => {
        const handle = await temporal.client.workflow.start('signalOnlyControlsWorkflow', {
          taskQueue,
          workflowId: promotionWorkflowId(model),
        });
        const paused = await runway(['pause', model, '--as', 'dave', '--reason', 'dashboards']);
        expect(paused.code, paused.stderr).toBe(0);
        expect(paused.stdout).toContain(`paused ${model}`);
        const back = await runway(['rollback', model, '--as', 'carol', '--reason', 'pager']);
        expect(back.code, back.stderr).toBe(0);
        await handle.result();
        expect(await handle.query(receivedQuery)).toEqual([
          { pause: { by: 'dave', reason: 'dashboards' } },
          { rollback: { by: 'carol', reason: 'pager' } },
        ]);
      },
    );
  });
});
