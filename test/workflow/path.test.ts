import { WorkflowUpdateFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import {
  approveSignal,
  approveUpdate,
  rejectSignal,
  rejectUpdate,
  rollbackSignal,
} from '../../workflows/api';
import {
  stubSpec,
  uniqueModel,
  useWorkflowHarness,
  type StubPromotion,
  SLOW_MACHINE_MS,
  until,
} from './harness';

/**
 * The promotion's path and its gates with stub activities: the full path in order, a first
 * release, evaluation and integration failures, and every way the approval step ends.
 */
describe.concurrent('the path', { timeout: SLOW_MACHINE_MS }, () => {
  const wf = useWorkflowHarness();
  const gated = (prefix: string, approval: Record<string, unknown> = {}) =>
    stubSpec(uniqueModel(prefix), {
      approval: { required: 1, approvers: ['alice', 'bob'], timeout: '1m', ...approval },
    });
  const asking = async (p: StubPromotion): Promise<void> => {
    await until(async () => (await p.status()).stage === 'approve');
  };

  it('walks every step in order and graduates', async () => {
    const spec = stubSpec(uniqueModel('full'), {
      shadow: { enabled: true, duration: '2s', mirrorPercent: 50 },
      approval: { required: 1, timeout: '1m' },
    });
    const p = await wf.promote(spec);
    await asking(p);
    await p.handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', comment: 'lgtm' }] });
    const result = await p.result();
    expect(result.outcome).toBe('promoted');
    expect(result.reason).toBe('all steps passed');
    // Notifications are fire-and-forget (notifyLater): the workflow does not wait for them, so
    // when the stub records one relative to the next activity is a race on a loaded machine. Their
    // events and order among themselves are asserted below.
    const steps = p.calls.map((c) => c.name).filter((n) => n !== 'notify');
    expect(steps.filter((n, i, all) => n !== all[i - 1])).toEqual([
      'prepareCandidate',
      'evaluate',
      'deploy', // staging
      'updateRegistry', // alias staging
      'integrationTest',
      'teardown', // staging
      'deploy', // candidate and baseline in production
      'setTraffic', // shadow
      'snapshotMetrics',
      'analyzeInterval',
      'setTraffic', // 10%
      'snapshotMetrics',
      'analyzeInterval',
      'setTraffic', // 50%
      'snapshotMetrics',
      'analyzeInterval',
      'setTraffic', // 100%
      'updateRegistry', // production → v2, v1 archived
      'teardown', // previous v1 after scaleDownDelay
    ]);
    expect(p.routes()).toEqual(['v1=100 v2=0', 'v1=90 v2=10', 'v1=50 v2=50', 'v2=100']);
    expect(p.named('notify').map((c) => c.input.event)).toEqual(['approval_requested', 'promotion_promoted']);
    expect(p.named('notify')[0]?.input).toMatchObject({
      message: expect.stringMatching(/^1 approval\(s\) from anyone, by \d{4}-.*Z: runway approve /),
      details: { required: 1, approvers: [], triggeredBy: 'ci-bot' },
    });
    // The promotions counter's stage label: the last stage the promotion worked in.
    expect(p.named('notify')[1]?.input.details).toMatchObject({ stage: 'graduate' });
    // With the notify-approval-requested patch.
    await p.record(wf.client, 'stub-approval-requested');
    expect(p.named('setTraffic')[0]?.input.mirror).toMatchObject({
      variant: 'v2',
      percent: 50,
      tolerance: 0.0001,
    });
    expect(p.named('updateRegistry')[1]?.input).toEqual({
      model: spec.name,
      aliases: { production: '2', previous: '1', staging: null },
      status: { version: '2', status: 'production', reason: 'graduated' },
    });
    const status = await p.status();
    expect(status.stagesEntered).toEqual([
      'evaluate',
      'approve',
      'stage',
      'integration',
      'shadow',
      'canary',
      'graduate',
      'done',
    ]);
    expect(status.approvals.map((a) => [a.approver, a.via])).toEqual([['alice', 'update']]);
  });

  it('a first release goes straight to 100% without analysis', async () => {
    const p = await wf.promote(stubSpec(uniqueModel('first')), { baseline: null });
    const result = await p.result();
    expect(result.outcome).toBe('promoted');
    expect(p.routes()).toEqual(['v2=100']);
    expect(p.named('analyzeInterval')).toEqual([]);
    expect(p.named('deploy')).toHaveLength(2); // staging and production; no baseline
  });

  it('refuses to promote the version already in production', async () => {
    const p = await wf.promote(stubSpec(uniqueModel('same')), { baseline: '2' });
    const result = await p.result();
    expect(result).toMatchObject({ outcome: 'rejected', reason: 'v2 is already the production version' });
    expect(p.named('deploy')).toEqual([]);
  });

  it.each([
    ['evaluation', { evaluation: 'fail' }, 'evaluation failed: accuracy 0.5 < 0.8 (stub)', 0],
    ['integration', { integration: 'fail' }, 'integration tests failed: golden set off (stub)', 1],
  ] as const)(
    'rejects when the %s fails, and tears staging down',
    async (_what, script, reason, stagingDeploys) => {
      const p = await wf.promote(stubSpec(uniqueModel('gate')), script);
      const result = await p.result();
      expect(result).toMatchObject({ outcome: 'rejected', reason });
      expect(p.named('deploy')).toHaveLength(stagingDeploys);
      expect(p.named('setTraffic')).toEqual([]); // nothing was ever routed
      expect(p.named('teardown').map((c) => String(c.input.name).replace(`${p.model}-`, ''))).toEqual(
        stagingDeploys ? ['v2-staging', 'v2-production', 'v2-staging'] : ['v2-production', 'v2-staging'],
      );
      expect(p.named('updateRegistry').at(-1)?.input).toMatchObject({
        status: { version: '2', status: 'rejected' },
      });
    },
  );

  it('counts distinct approvers from the allow-list and refuses self-approval', async () => {
    const p = await wf.promote(gated('appr', { required: 2 }), {}, { triggeredBy: 'bob' });
    await asking(p);
    const refused = (approver: string) =>
      p.handle
        .executeUpdate(approveUpdate, { args: [{ approver }] })
        .then(() => 'accepted')
        .catch((e: unknown) =>
          e instanceof WorkflowUpdateFailedError ? String(e.cause?.message) : String(e),
        );
    expect(await refused('mallory')).toBe(
      'mallory is not an approver for ' + p.model + ' (allowed: alice, bob)',
    );
    expect(await refused('bob')).toBe('bob started this promotion and the spec forbids self-approval');
    const first = await p.handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
    expect(first).toMatchObject({ accepted: true, approvals: ['alice'], required: 2 });
    const again = await p.handle.executeUpdate(approveUpdate, { args: [{ approver: ' alice ' }] });
    expect(again.reason).toBe('alice had already approved; counted once');
    // Still waiting: one distinct approver of two.
    expect((await p.status()).stage).toBe('approve');
    await p.handle.signal(rollbackSignal, { by: 'alice', reason: 'changed my mind' });
    expect(await p.result()).toMatchObject({
      outcome: 'rejected',
      reason: 'aborted by alice: changed my mind',
    });
  });

  it('records an invalid approval signal with its reason and keeps waiting', async () => {
    const p = await wf.promote(gated('sig'));
    await asking(p);
    await p.handle.signal(approveSignal, { approver: '' });
    await p.handle.signal(approveSignal, { approver: 'alice', comment: 'from the UI' });
    const result = await p.result();
    expect(result.outcome).toBe('promoted');
    expect(result.approvals.map((a) => [a.approver, a.via])).toEqual([['alice', 'signal']]);
    expect(p.named('notify').find((c) => c.input.event === 'approval_ignored')?.input).toMatchObject({
      event: 'approval_ignored',
      message: 'payload must be {"approver": "<name>", "comment": "..."}',
    });
  });

  it.each(['update', 'signal'] as const)('a rejection by %s ends the promotion rejected', async (via) => {
    const p = await wf.promote(gated(`rej-${via}`));
    await asking(p);
    const input = { approver: 'bob', reason: 'metrics look off' };
    if (via === 'update') {
      const verdict = await p.handle.executeUpdate(rejectUpdate, { args: [input] });
      expect(verdict.reason).toBe('rejected by bob: metrics look off');
    } else {
      await p.handle.signal(rejectSignal, { approver: 'eve', reason: 'not an approver' });
      await p.handle.signal(rejectSignal, input);
    }
    expect(await p.result()).toMatchObject({
      outcome: 'rejected',
      reason: 'rejected by bob: metrics look off',
    });
    expect(p.named('deploy')).toEqual([]);
    if (via === 'signal') {
      expect(p.named('notify').find((c) => c.input.event === 'rejection_ignored')?.input).toMatchObject({
        event: 'rejection_ignored',
        message: `eve is not an approver for ${p.model}`,
      });
    }
  });

  it('expires when nobody decides within approval.timeout', async () => {
    const p = await wf.promote(gated('exp', { timeout: '2s' }));
    const result = await p.result();
    expect(result).toMatchObject({ outcome: 'expired', reason: 'no decision within 2s' });
    expect(p.named('deploy')).toEqual([]);
  });
});
