import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { afterAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../common/paths';
import { historiesDir, loadHistories, saveHistory } from '../helpers/histories';
import { uniqueTaskQueue, useTemporal, withWorker } from '../helpers/temporal';

/**
 * Replays every recorded history in test/fixtures/histories/ against the current workflows, so
 * an unpatched change to workflow code that in-flight promotions run fails here, not in
 * production. The second suite proves the harness itself catches such a change.
 */

const fixtureWorkflows = path.join(projectRoot, 'test', 'fixtures', 'workflows');

describe('recorded promotion histories', () => {
  it('replay against the current workflows without nondeterminism', async () => {
    expect(fs.existsSync(historiesDir), `${historiesDir} must exist (it holds the recorded histories)`).toBe(
      true,
    );
    const histories = loadHistories();
    if (histories.length === 0) {
      console.warn(
        `replay: no histories found in ${path.relative(projectRoot, historiesDir)}/ — nothing to replay yet`,
      );
      return;
    }
    const failures: string[] = [];
    const results = Worker.runReplayHistories(
      { workflowsPath: path.join(projectRoot, 'workflows', 'index.ts') },
      histories,
    );
    for await (const result of results) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.name}: ${result.error.message}`);
    }
    expect(failures, 'histories that no longer replay (wrap the change in patched())').toEqual([]);
    console.info(`replay: ${histories.length} histories replayed OK`);
  });
});

describe('the replay harness', () => {
  const temporal = useTemporal();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-histories-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('replays a recorded history and catches a reordered workflow', async () => {
    const taskQueue = uniqueTaskQueue('replay');
    const workflowId = `greeting-${taskQueue}`;
    const result = await withWorker(
      {
        workflowsPath: path.join(fixtureWorkflows, 'greeting.ts'),
        taskQueue,
        activities: { greet: async (name: string) => `hello ${name}` },
      },
      () => temporal.client.workflow.execute('greetingWorkflow', { taskQueue, workflowId, args: ['ada'] }),
    );
    expect(result).toBe('hello ada');
    const file = await saveHistory(temporal.client, workflowId, 'greeting', tmp);
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).events.length).toBeGreaterThan(5);

    const [recorded] = loadHistories(tmp);
    expect(recorded?.workflowId).toBe('greeting');
    const history = recorded!.history;

    // Same code: replays cleanly.
    await Worker.runReplayHistory({ workflowsPath: path.join(fixtureWorkflows, 'greeting.ts') }, history);

    // Timer moved before the activity: the recorded commands no longer match.
    await expect(
      Worker.runReplayHistory({ workflowsPath: path.join(fixtureWorkflows, 'greeting-changed.ts') }, history),
    ).rejects.toBeInstanceOf(DeterminismViolationError);

    // The batch API used for the recorded fixtures reports the same error per history.
    const batch = [];
    for await (const r of Worker.runReplayHistories(
      { workflowsPath: path.join(fixtureWorkflows, 'greeting-changed.ts') },
      loadHistories(tmp),
    )) {
      batch.push(r);
    }
    expect(batch).toHaveLength(1);
    expect(batch[0]?.error).toBeInstanceOf(DeterminismViolationError);
  });
});
