import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../common/paths';
import { parsePlatformConfig } from '../../workers/config';
import { runWorker } from '../../workers/worker';
import { testTemporal, uniqueTaskQueue, useTemporal } from '../helpers/temporal';

/** The production worker entrypoint: polls its task queue, runs workflows, stops on abort. */
describe('runWorker', () => {
  const temporal = useTemporal();

  it('runs workflows on the configured task queue and shuts down gracefully on abort', async () => {
    const endpoint = await testTemporal();
    const taskQueue = uniqueTaskQueue('worker');
    const config = parsePlatformConfig({ taskQueue });
    const abort = new AbortController();
    let activityRuns = 0;
    const running = runWorker({
      config,
      endpoint,
      workflowsPath: path.join(projectRoot, 'test', 'fixtures', 'workflows', 'greeting.ts'),
      activities: {
        greet: async (name: string) => {
          activityRuns++;
          return `hello ${name}`;
        },
      },
      signal: abort.signal,
      shutdownGraceTime: '2s',
    });
    try {
      const result = await temporal.client.workflow.execute('greetingWorkflow', {
        taskQueue,
        workflowId: `greeting-${taskQueue}`,
        args: ['grace'],
      });
      expect(result).toBe('hello grace');
      expect(activityRuns).toBe(1);
    } finally {
      abort.abort();
    }
    const t0 = Date.now();
    await expect(running).resolves.toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
