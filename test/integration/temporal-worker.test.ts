import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../common/paths';
import { parsePlatformConfig } from '../../workers/config';
import { buildWorkflowBundle } from '../../workers/bundle';
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

describe('prebuilt workflow bundle', () => {
  const temporal = useTemporal();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-bundle-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is built by buildWorkflowBundle and run by the worker without webpack', async () => {
    const bundle = path.join(dir, 'workflows-bundle.js');
    const bytes = await buildWorkflowBundle(
      path.join(projectRoot, 'test', 'fixtures', 'workflows', 'greeting.ts'),
      bundle,
    );
    expect(bytes).toBeGreaterThan(10_000);
    expect(fs.readFileSync(bundle, 'utf8')).toContain('greetingWorkflow');

    const taskQueue = uniqueTaskQueue('bundle');
    const abort = new AbortController();
    const running = runWorker({
      config: parsePlatformConfig({ taskQueue }),
      endpoint: await testTemporal(),
      workflowBundlePath: bundle,
      activities: { greet: async (name: string) => `hi ${name}` },
      signal: abort.signal,
    });
    try {
      const result = await temporal.client.workflow.execute('greetingWorkflow', {
        taskQueue,
        workflowId: `greeting-${taskQueue}`,
        args: ['bundle'],
      });
      expect(result).toBe('hi bundle');
    } finally {
      abort.abort();
      await running;
    }
  });
});
