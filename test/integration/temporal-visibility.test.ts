import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { TypedSearchAttributes } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../common/paths';
import { RunwayModel, RunwayStage, RunwayVersion } from '../../workflows/search-attributes';
import { expectEventually, uniqueTaskQueue, useTemporal, withWorker } from '../helpers/temporal';

/** Promotions are findable by runway's search attributes through visibility queries. */

async function listIds(client: ReturnType<typeof useTemporal>['client'], query: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of client.workflow.list({ query })) ids.push(wf.workflowId);
  return ids;
}

describe('search attributes on the shared test server', () => {
  const temporal = useTemporal();

  it('finds a workflow started with RunwayModel by a visibility query', async () => {
    const model = `model-${randomUUID().slice(0, 8)}`;
    const workflowId = `promotion:${model}`;
    const started = Date.now();
    const handle = await temporal.client.workflow.start('neverRuns', {
      taskQueue: uniqueTaskQueue('nobody'),
      workflowId,
      typedSearchAttributes: new TypedSearchAttributes([
        { key: RunwayModel, value: model },
        { key: RunwayVersion, value: '7' },
      ]),
    });
    try {
      const ids = await expectEventually(async () => {
        const found = await listIds(temporal.client, `RunwayModel="${model}" AND RunwayVersion="7"`);
        expect(found).toEqual([workflowId]);
        return found;
      });
      console.info(`visible to a RunwayModel query ${Date.now() - started} ms after start`);
      expect(ids).toHaveLength(1);
      const desc = await handle.describe();
      expect(desc.typedSearchAttributes.get(RunwayModel)).toBe(model);
      expect(await listIds(temporal.client, `RunwayModel="${model}-other"`)).toEqual([]);
    } finally {
      await handle.terminate('test done');
    }
  });

  it('sees what the workflow upserts (RunwayStage) once it runs', async () => {
    const taskQueue = uniqueTaskQueue('visibility');
    const model = `model-${randomUUID().slice(0, 8)}`;
    await withWorker(
      {
        workflowsPath: path.join(projectRoot, 'test', 'fixtures', 'workflows', 'greeting.ts'),
        taskQueue,
        activities: { greet: async (name: string) => `hello ${name}` },
      },
      async () => {
        await temporal.client.workflow.execute('greetingWorkflow', {
          taskQueue,
          workflowId: `greeting:${model}`,
          args: [model],
          typedSearchAttributes: new TypedSearchAttributes([{ key: RunwayModel, value: model }]),
        });
      },
    );
    const started = Date.now();
    await expectEventually(async () => {
      expect(
        await listIds(temporal.client, `RunwayModel="${model}" AND ${RunwayStage.name}="greeted"`),
      ).toEqual([`greeting:${model}`]);
    });
    console.info(`upserted RunwayStage visible ${Date.now() - started} ms after completion`);
  });
});
