import { describe, expect, it } from 'vitest';
import { fetchChain } from '../../audit/fetch';
import { buildPromotionAudit } from '../../audit/report';
import {
  approveUpdate,
  pauseUpdate,
  promoteFullSignal,
  promoteFullUpdate,
  resumeUpdate,
  rollbackUpdate,
} from '../../workflows/api';
import { stubSpec, uniqueModel, useWorkflowHarness, SLOW_MACHINE_MS, until } from './harness';

/**
 * Who may take which control (workflows/promotion/authority.ts), with stub activities: the
 * decisions that skip or overrule the analysis need an approver or operator and the approvals
 * first; brakes are anyone's unless the spec narrows them; every refusal is recorded.
 */
const SHADOW = { enabled: true, duration: '2s', mirrorPercent: 50 };

/** The reason a refused update failed with. */
const refusal = (p: Promise<unknown>) =>
  p.then(
    () => 'accepted',
    (err: { cause?: { message?: string } }) => err.cause?.message ?? String(err),
  );

describe.concurrent('control authority', { timeout: SLOW_MACHINE_MS }, () => {
  const wf = useWorkflowHarness();

  it('promote-full by someone on no list is refused and recorded; after the approval the candidate walks shadow and canary', async () => {
    const model = uniqueModel('ho');
    const p = await wf.promote(
      stubSpec(model, { shadow: SHADOW, approval: { required: 1, approvers: ['alice'] } }),
    );
    await until(async () => (await p.status()).stage === 'approve');
    expect((await p.status()).authority).toEqual({ deciders: ['alice'], brakes: [], promoteFull: true });
    // bob, as `runway promote-full --as bob` sends it, and as the Temporal UI would
    expect(await refusal(p.handle.executeUpdate(promoteFullUpdate, { args: [{ by: 'bob' }] }))).toBe(
      `bob may not promote-full ${model}: it skips the analysis, so only its approvers or operators may (alice)`,
    );
    await p.handle.signal(promoteFullSignal, { by: 'bob', reason: 'trust me' });
    await until(() => p.named('notify').length >= 2);
    await p.handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
    const result = await p.result();
    expect(result).toMatchObject({ outcome: 'promoted', reason: 'all steps passed' });
    expect(p.routes()).toEqual(['v1=100 v2=0', 'v1=90 v2=10', 'v1=50 v2=50', 'v2=100']);
    expect(p.named('analyzeInterval').length).toBeGreaterThan(2);
    expect(p.named('notify').filter((c) => c.input.event === 'promoteFull_ignored')).toHaveLength(2);

    // The audit, from the history alone, shows both refusals with who and why.
    const audit = buildPromotionAudit(p.handle.workflowId, await fetchChain(wf.client, p.handle.workflowId));
    expect(audit.manualActions.map((m) => [m.action, m.by, m.via, m.accepted])).toEqual([
      ['promoteFull', 'bob', 'update', false],
      ['promoteFull', 'bob', 'signal', false],
    ]);
    expect(audit.manualActions[1]?.verdict).toMatch(/^bob may not promote-full/);
    await p.record(wf.client, 'promote-full-refused-hostile');
  });

  it('resuming past an inconclusive pause is a decision: refused to others, taken by an operator', async () => {
    let tried = '';
    const p = await wf.promote(
      stubSpec(uniqueModel('inc-auth'), { approval: { approvers: ['alice'], operators: ['carol'] } }),
      {
        look: async (_n, _i, self) => {
          const onStepOne = self.routes().at(-1) === 'v1=90 v2=10';
          if (onStepOne && !tried && (await self.status()).pendingAction?.startsWith('a human decision')) {
            tried = await refusal(self.handle.executeUpdate(resumeUpdate, { args: [{ by: 'mallory' }] }));
            await self.handle.executeUpdate(resumeUpdate, {
              args: [{ by: 'carol', reason: 'dashboards fine' }],
            });
          }
          return onStepOne
            ? { comparison: { result: 'inconclusive', reason: 'too few samples (stub)' } }
            : {};
        },
      },
    );
    expect((await p.result()).outcome).toBe('promoted');
    expect(tried).toMatch(/^mallory may not resume past an inconclusive pause .*\(alice, carol\)$/);
  });

  it('brakes are anyone’s by default, and only operators’ and approvers’ with approval.brakes: operators', async () => {
    const open = await wf.promote(
      stubSpec(uniqueModel('brake-open'), {
        canary: {
          steps: [
            { weight: 10, pause: '30s' },
            { weight: 100, pause: '0s' },
          ],
        },
      }),
    );
    await until(() => open.routes().length > 0);
    expect(await open.handle.executeUpdate(pauseUpdate, { args: [{ by: 'anyone' }] })).toMatchObject({
      accepted: true,
    });
    expect(
      await open.handle.executeUpdate(rollbackUpdate, { args: [{ by: 'anyone', reason: 'drill' }] }),
    ).toMatchObject({ accepted: true });
    expect((await open.result()).reason).toBe('manual rollback by anyone: drill');

    const narrow = await wf.promote(
      stubSpec(uniqueModel('brake-narrow'), {
        approval: { approvers: ['alice'], operators: ['oncall'], brakes: 'operators' },
        canary: {
          steps: [
            { weight: 10, pause: '30s' },
            { weight: 100, pause: '0s' },
          ],
        },
      }),
    );
    await until(() => narrow.routes().length > 0);
    expect(await refusal(narrow.handle.executeUpdate(pauseUpdate, { args: [{ by: 'mallory' }] }))).toMatch(
      /^mallory may not pause .*: the spec narrows brakes to operators/,
    );
    expect(
      await refusal(narrow.handle.executeUpdate(rollbackUpdate, { args: [{ by: 'mallory', reason: 'x' }] })),
    ).toMatch(/^mallory may not rollback/);
    expect((await narrow.status()).paused).toBe(false);
    await narrow.handle.executeUpdate(rollbackUpdate, { args: [{ by: 'oncall', reason: 'pager' }] });
    expect((await narrow.result()).reason).toBe('manual rollback by oncall: pager');
  });

  it('promote-full where the platform policy forbids it is refused even to an approver', async () => {
    const p = await wf.promote(
      stubSpec(uniqueModel('nofull'), {
        approval: { approvers: ['alice'] },
        canary: {
          steps: [
            { weight: 10, pause: '30s' },
            { weight: 100, pause: '0s' },
          ],
        },
      }),
      { policy: { 'nofull-*': { allowPromoteFull: false } } },
    );
    await until(() => p.routes().length > 0);
    expect((await p.status()).policy).toMatchObject({
      matched: ['nofull-*'],
      rules: { allowPromoteFull: false },
    });
    expect((await p.status()).authority?.promoteFull).toBe(false);
    expect(await refusal(p.handle.executeUpdate(promoteFullUpdate, { args: [{ by: 'alice' }] }))).toMatch(
      /^the platform policy \('nofull-\*': allowPromoteFull\) forbids promote-full/,
    );
    expect((await p.status()).stage).toBe('canary');
    await p.handle.executeUpdate(rollbackUpdate, { args: [{ by: 'alice', reason: 'done testing' }] });
    expect((await p.result()).outcome).toBe('rolled_back');
  });
});
