/**
 * A CLI newer than the worker: `runway pause` and `runway rollback` send updates, which a worker
 * from before control updates has no handler for; the brake must still reach the promotion, by
 * the signal that worker does handle. Real dev server, compiled CLI, a fixture workflow standing
 * in for the older promotion.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../common/paths';
import { promotionWorkflowId } from '../../workflows/api';
import { receivedQuery } from '../fixtures/workflows/signal-only-controls';
import { uniqueTaskQueue, useTemporal, withWorker } from '../helpers/temporal';
import { runCliOn, type CliResult } from '../helpers/cli';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-fallback-'));
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

function runway(args: string[]): Promise<CliResult> {
  return runCliOn(home, args, { RUNWAY_LOG_LEVEL: 'warn' });
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
