import { WorkflowFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { rollbackSignal, type RollbackWorkflowResult } from '../../workflows/api';
import {
  stubSpec,
  uniqueModel,
  useWorkflowHarness,
  type StubPromotion,
  SLOW_MACHINE_MS,
  until,
} from './harness';

/**
 * Every way a promotion goes back to the baseline, with stub activities: manual, automatic (guard
 * and comparison), inconclusive, after graduation, the standalone rollback workflow, failures and
 * cancellation, and a cleanup whose steps fail.
 */
describe.concurrent('rollback paths', { timeout: SLOW_MACHINE_MS }, () => {
  const wf = useWorkflowHarness();
  const shadowSpec = (prefix: string, extra: Record<string, unknown> = {}) =>
    stubSpec(uniqueModel(prefix), { shadow: { enabled: true, duration: '2s', mirrorPercent: 50 }, ...extra });

  /** The cleanup saga's calls after the promotion ended, in order. */
  const saga = (p: StubPromotion): string[] => {
    const start = p.calls.findIndex(
      (c) => c.name === 'setTraffic' && String(c.input.reason).startsWith('rollback:'),
    );
    const from =
      start >= 0
        ? start
        : p.calls.findIndex((c) => c.name === 'teardown' && String(c.input.name).endsWith('-production'));
    return p.calls
      .slice(from)
      .map((c) =>
        c.name === 'teardown'
          ? `teardown ${String(c.input.name).replace(`${p.model}-`, '')}`
          : c.name === 'updateRegistry'
            ? `registry ${JSON.stringify((c.input as { status?: { status: string } }).status?.status)}`
            : c.name,
      );
  };

  it('a manual rollback mid-canary puts the baseline back and runs the whole saga', async () => {
    const p = await wf.promote(shadowSpec('man'), {
      look: async (n, i, self) => {
        if (i.phase === 'canary' && n === 4)
          await self.handle.signal(rollbackSignal, { by: 'carol', reason: 'pager' });
        return {};
      },
    });
    const result = await p.result();
    expect(result.outcome).toBe('rolled_back');
    expect(result.reason).toBe('manual rollback by carol: pager');
    expect(p.routes()).toEqual(['v1=100 v2=0', 'v1=90 v2=10', 'v1=100']);
    // The shadow's mirror is dropped by the rollback route.
    expect(p.named('setTraffic').at(-1)?.input.mirror).toBeUndefined();
    expect(saga(p)).toEqual([
      'setTraffic',
      'teardown v2-production',
      'teardown v2-staging',
      'registry "rejected"',
      'notify',
    ]);
    await p.record(wf.client, 'stub-manual-rollback-mid-canary');
  });

  it.each([
    ['shadow', 1],
    ['canary', 3],
  ] as const)('the SLO guard rolls back at %s after failureLimit failed looks', async (phase, firstBad) => {
    const p = await wf.promote(shadowSpec(`slo-${phase}`), {
      look: (n) =>
        n >= firstBad
          ? { guard: { result: 'fail', reason: 'p99 latency 900 ms over the limit 250 ms' } }
          : {},
    });
    const result = await p.result();
    expect(result.outcome).toBe('rolled_back');
    expect(result.reason).toBe(
      `automatic rollback at ${phase} after 2 failed intervals — slo: p99 latency 900 ms over the limit 250 ms`,
    );
    expect(p.looks).toBe(firstBad + 1);
    expect(p.routes().at(-1)).toBe('v1=100');
  });

  it('a failing comparison rolls back; one failed look between passes does not', async () => {
    const bad = {
      comparison: { result: 'fail' as const, reason: 'candidate error rate 4% vs 1% (p = 0.001)' },
    };
    const flaky = await wf.promote(stubSpec(uniqueModel('flaky')), { look: (n) => (n === 2 ? bad : {}) });
    const p = await wf.promote(stubSpec(uniqueModel('cmp')), { look: (n) => (n >= 2 ? bad : {}) });
    expect((await flaky.result()).outcome).toBe('promoted');
    const result = await p.result();
    expect(result.outcome).toBe('rolled_back');
    expect(result.reason).toContain('comparison: candidate error rate 4% vs 1%');
  });

  it('an inconclusive step rolls back when the spec says onInconclusive: rollback', async () => {
    const p = await wf.promote(stubSpec(uniqueModel('incr'), { rollback: { onInconclusive: 'rollback' } }), {
      look: () => ({ comparison: { result: 'inconclusive', reason: 'too few samples' } }),
    });
    const result = await p.result();
    expect(result.outcome).toBe('rolled_back');
    expect(result.reason).toBe('inconclusive: comparison: too few samples');
    // 2 s at 1 s, plus maxInconclusive (1) extra look.
    expect(p.looks).toBe(3);
  });

  it('a rollback after graduation restores the previous version at once', async () => {
    const spec = stubSpec(uniqueModel('grad'), { rollback: { scaleDownDelay: '5m' } });
    const p = await wf.promote(spec);
    // Wait for graduation, then roll back inside the scale-down window.
    await until(() => p.named('updateRegistry').some((c) => JSON.stringify(c.input).includes('"archived"')));
    await p.handle.signal(rollbackSignal, { by: 'carol', reason: 'bad numbers downstream' });
    const result = await p.result();
    expect(result.outcome).toBe('rolled_back');
    expect(result.reason).toBe('rollback after graduation by carol: bad numbers downstream');
    const after = p.calls.slice(
      p.calls.findIndex((c) => String(c.input.reason ?? '').startsWith('rollback after')),
    );
    expect(after.map((c) => c.name)).toEqual([
      'setTraffic',
      'updateRegistry',
      'updateRegistry',
      'teardown',
      'notify',
    ]);
    // Announced `promoted` at graduation, so people hear that it was undone.
    expect(after[4]?.input).toMatchObject({
      event: 'rollback_after_graduation',
      message: result.reason,
      details: { restored: '1', by: 'carol' },
    });
    expect(after[1]?.input).toMatchObject({ aliases: { production: '1', previous: null } });
    expect(after[2]?.input).toMatchObject({ status: { version: '2', status: 'rejected' } });
    expect(after[3]?.input).toEqual({ name: `${spec.name}-v2-production` });
    expect(p.routes().at(-1)).toBe('v1=100');
    // A new name: the history recorded before the notify-rollback-after-graduation patch stays.
    await p.record(wf.client, 'stub-rollback-after-graduation-notified');
  });

  it('without a rollback the previous version scales down after scaleDownDelay', async () => {
    const spec = stubSpec(uniqueModel('down'));
    const p = await wf.promote(spec);
    expect((await p.result()).outcome).toBe('promoted');
    expect(p.calls.at(-1)).toMatchObject({ name: 'teardown', input: { name: `${spec.name}-v1-production` } });
  });

  it('the rollback workflow redeploys the previous version and restores it', async () => {
    const model = uniqueModel('rbwf');
    const p = await wf.rollback(
      { model, by: 'carol', reason: 'pager 7', unitHeader: 'x-user' },
      { rollbackTarget: { from: '3', to: '2' } },
    );
    const result = (await p.handle.result()) as RollbackWorkflowResult;
    expect(result).toEqual({
      model,
      from: '3',
      to: '2',
      redeployed: true,
      reason: 'rollback by carol: pager 7',
    });
    expect(p.calls.map((c) => c.name)).toEqual([
      'resolveRollbackTarget',
      'deploy',
      'setTraffic',
      'updateRegistry',
      'updateRegistry',
      'teardown',
      'notify',
    ]);
    // No spec given: the schema's serving defaults, one replica, kept if it still runs.
    expect(p.named('deploy')[0]?.input).toMatchObject({
      version: '2',
      environment: 'production',
      replicas: 1,
      ifMissing: true,
      serving: { replicas: 1, device: 'cpu', batching: { maxBatchSize: 32, preferredBatchSizes: [8, 16] } },
    });
    expect(p.named('setTraffic')[0]?.input).toMatchObject({
      variants: [{ name: 'v2', deployment: `${model}-v2-production`, weight: 100 }],
      sticky: { header: 'x-user' },
    });
    expect(p.named('teardown')[0]?.input).toEqual({ name: `${model}-v3-production` });
    await p.record(wf.client, 'stub-rollback-workflow');
  });

  it('the rollback workflow refuses when there is no previous version', async () => {
    const p = await wf.rollback(
      { model: uniqueModel('none'), by: 'carol', reason: 'x' },
      { rollbackTarget: {} },
    );
    const err = await p.handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(String((err as WorkflowFailedError).cause?.message)).toMatch(
      /has no previous version to roll back to/,
    );
    expect(p.named('deploy')).toEqual([]);
  });

  it('every cleanup step runs even when one fails', async () => {
    const p = await wf.promote(stubSpec(uniqueModel('saga')), {
      look: () => ({ guard: { result: 'fail', reason: 'error rate 50%' } }),
      fail: (name, input) =>
        name === 'teardown' && String(input.name).endsWith('-v2-production')
          ? 'the fleet is unreachable'
          : undefined,
    });
    const result = await p.result();
    expect(result.outcome).toBe('rolled_back');
    expect(saga(p)).toEqual([
      'setTraffic',
      'teardown v2-production',
      'teardown v2-staging',
      'registry "rejected"',
      'notify',
    ]);
    await p.record(wf.client, 'stub-cleanup-step-fails');
  });

  it('a failing activity fails the promotion after the cleanup, naming the activity', async () => {
    const p = await wf.promote(stubSpec(uniqueModel('fail')), {
      fail: (name, input) =>
        name === 'deploy' && input.environment === 'production' ? 'image pull refused' : undefined,
    });
    const err = await p.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause?.message).toBe('deploy: image pull refused');
    // Nothing was routed yet: no route to restore, the candidate and staging still go.
    expect(p.named('setTraffic')).toEqual([]);
    expect(p.named('teardown').map((c) => c.input.name)).toContain(`${p.model}-v2-production`);
    expect(p.named('updateRegistry').at(-1)?.input).toMatchObject({ status: { status: 'rejected' } });
  });

  it('a cancelled promotion cleans up and ends cancelled', async () => {
    const p = await wf.promote(stubSpec(uniqueModel('cxl')), {
      look: async (n, _i, self) => {
        if (n === 2) await self.handle.cancel();
        return {};
      },
    });
    // The workflow catches the cancellation, runs the non-cancellable cleanup and reports it.
    const result = await p.result();
    expect(result.outcome).toBe('cancelled');
    expect(p.routes().at(-1)).toBe('v1=100');
    expect(p.named('updateRegistry').at(-1)?.input).toMatchObject({ status: { status: 'rejected' } });
  });
});
