/**
 * Approvals on a real Temporal server: the same rules for the CLI's updates and the UI's signals
 * (allow-list, no self-approval, required count, duplicates counted once), rejection and expiry.
 * These promotions end before anything is deployed, so only the registry is needed.
 */
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { describe, expect as globalExpect, it } from 'vitest';
import {
  approveSignal,
  approveUpdate,
  promotionWorkflowId,
  rejectSignal,
  rejectUpdate,
  statusQuery,
} from '../../workflows/api';
import { recordHistory } from '../helpers/record';
import { testSpec, usePromotionPlatform, waitForStatus } from '../helpers/promotion';

const platform = usePromotionPlatform();
const atApproval = (model: string) => waitForStatus(platform, model, (s) => s.stage === 'approve', 90_000);

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    globalExpect(err).toBeInstanceOf(WorkflowUpdateFailedError);
    return (err as WorkflowUpdateFailedError).cause?.message ?? '';
  }
  throw new Error('expected the update to be refused');
}

/** Activity inputs of the workflow's history: where ignored signals leave their reason. */
async function notifications(model: string): Promise<{ event: string; message: string }[]> {
  const history = await platform.client.workflow.getHandle(promotionWorkflowId(model)).fetchHistory();
  const out: { event: string; message: string }[] = [];
  for (const e of history.events ?? []) {
    const a = e.activityTaskScheduledEventAttributes;
    if (a?.activityType?.name !== 'notify') continue;
    const payload = a.input?.payloads?.[0]?.data;
    if (payload)
      out.push(JSON.parse(Buffer.from(payload).toString('utf8')) as { event: string; message: string });
  }
  return out;
}

describe.concurrent('approvals', () => {
  it(
    'refuses an approver outside the allow-list by update, ignores one by signal with the reason recorded, then counts a valid approval',
    { timeout: 180_000 },
    async ({ expect }) => {
      const model = 'fd-approval-rules';
      const spec = testSpec(model, { approval: { required: 2, approvers: ['alice', 'bob', 'ci-bot'] } });
      await platform.bootstrap(model, spec, { serve: false });
      const handle = await platform.start(spec, '2', 'ci-bot');
      await atApproval(model);

      expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ approver: 'mallory' }] }))).toMatch(
        /mallory is not an approver for fd-approval-rules \(allowed: alice, bob, ci-bot\)/,
      );
      expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ approver: 'ci-bot' }] }))).toMatch(
        /ci-bot started this promotion and the spec forbids self-approval/,
      );
      await handle.signal(approveSignal, { approver: 'mallory', comment: 'sneaky' });
      // duplicates count once
      const first = await handle.executeUpdate(approveUpdate, {
        args: [{ approver: 'alice', comment: 'ok' }],
      });
      expect(first).toMatchObject({ accepted: true, approvals: ['alice'], required: 2 });
      const again = await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
      expect(again.reason).toMatch(/already approved; counted once/);
      expect(again.approvals).toEqual(['alice']);
      const status = await handle.query(statusQuery);
      expect(status.stage).toBe('approve');
      expect(status.approvals.map((a) => a.approver)).toEqual(['alice']);

      await expect
        .poll(() => notifications(model), { timeout: 10_000 })
        .toEqual(
          expect.arrayContaining([
            expect.objectContaining({
              event: 'approval_ignored',
              message: expect.stringMatching(/mallory is not an approver/),
            }),
          ]),
        );
      // the second distinct approver (by signal, as the UI sends it) lets it proceed
      await handle.signal(approveSignal, { approver: 'bob' });
      await waitForStatus(platform, model, (s) => s.stage !== 'approve', 30_000);
      // cancelling from here runs the cleanup: nothing of v2 is left running
      await handle.cancel();
      const result = await platform.result(model);
      expect(result.outcome).toBe('cancelled');
      expect(result.approvals.map((a) => [a.approver, a.via])).toEqual([
        ['alice', 'update'],
        ['bob', 'signal'],
      ]);
      expect((await platform.deps.fleet.list({ model })).map((d) => d.name)).toEqual([]);
      expect((await platform.deps.registry.get(model, '2'))?.status).toBe('rejected');
    },
  );

  it(
    'ends as rejected when an approver rejects, and records who and why',
    { timeout: 180_000 },
    async ({ expect }) => {
      const model = 'fd-reject';
      const spec = testSpec(model);
      await platform.bootstrap(model, spec, { serve: false });
      const handle = await platform.start(spec, '2');
      await atApproval(model);
      const verdict = await handle.executeUpdate(rejectUpdate, {
        args: [{ approver: 'bob', reason: 'wrong features' }],
      });
      expect(verdict.reason).toBe('rejected by bob: wrong features');
      const result = await platform.result(model);
      await recordHistory(platform.client, promotionWorkflowId(model), 'rejected-by-approver');
      expect(result).toMatchObject({ outcome: 'rejected', reason: 'rejected by bob: wrong features' });
      expect((await platform.deps.registry.get(model, '2'))?.status).toBe('rejected');
    },
  );

  it('ignores a rejection signal from someone not allowed', { timeout: 180_000 }, async ({ expect }) => {
    const model = 'fd-reject-signal';
    const spec = testSpec(model);
    await platform.bootstrap(model, spec, { serve: false });
    const handle = await platform.start(spec, '2');
    await atApproval(model);
    await handle.signal(rejectSignal, { approver: 'eve', reason: 'no' });
    await expect
      .poll(() => notifications(model), { timeout: 10_000 })
      .toEqual(expect.arrayContaining([expect.objectContaining({ event: 'rejection_ignored' })]));
    expect((await handle.query(statusQuery)).stage).toBe('approve');
    await handle.terminate('test done');
  });

  it('expires when nobody decides within the timeout', { timeout: 180_000 }, async ({ expect }) => {
    const model = 'fd-expire';
    const spec = testSpec(model, { approval: { timeout: '3s' } });
    await platform.bootstrap(model, spec, { serve: false });
    await platform.start(spec, '2');
    const result = await platform.result(model);
    await recordHistory(platform.client, promotionWorkflowId(model), 'approval-expired');
    expect(result.outcome).toBe('expired');
    expect(result.reason).toBe('no decision within 3s');
  });
});
