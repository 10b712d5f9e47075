/**
 * The watch's branches on the real workflow code with stub activities (the alerts are judged by
 * the real evaluateBurn): a page after the previous version scaled down rolls back through the
 * rollback workflow (onPage rollback) or only notifies (onPage notify); pause holds the action;
 * another production version ends the watch; continue-as-new keeps the windows and totals. The
 * swap back through a holding promotion runs on real processes in test/integration/watch.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { pauseSignal } from '../../workflows/api';
import type { WatchInput, WatchResult } from '../../workflows/watch-api';
import { SLOW_MACHINE_MS, stubSpec, uniqueModel, until, useWorkflowHarness } from './harness';

const harness = useWorkflowHarness();

function watchInput(overrides: Record<string, unknown> = {}, extra: Partial<WatchInput> = {}): WatchInput {
  const spec = stubSpec(uniqueModel('watch'), {
    watch: {
      duration: '12s',
      interval: '500ms',
      page: [{ factor: 14.4, long: '3s', short: '1s' }],
      ticket: [],
      drift: { enabled: false },
      ...overrides,
    },
  });
  return { spec, version: '2', previousVersion: '1', ...extra };
}

/** 100 requests a look; from look `from` on, half of them fail. */
const burnFrom = (from: number) => (n: number) => ({
  sample: { requests: 100, errors: n >= from ? 50 : 0, slow: 0 },
});

describe.concurrent('the watch workflow', () => {
  it(
    'after the previous version scaled down, a page rolls back through the rollback workflow',
    { timeout: SLOW_MACHINE_MS },
    async () => {
      const { watch, rollback } = await harness.watch(watchInput({ onPage: 'rollback' }), {
        watchLook: burnFrom(4),
        rollbackTarget: { from: '2', to: '1', wasRunning: false },
      });
      const result = (await watch.handle.result()) as WatchResult;
      expect(result.outcome).toBe('rolled_back');
      expect(result.reason).toMatch(/page: error budget burning [\d.]+× over 3s and [\d.]+× over 1s/);
      expect(result.reason).toMatch(/v1 redeployed and serving$/);
      // The rollback workflow redeployed v1 (scaled down by then) and routed everything to it.
      expect(rollback.named('deploy').map((c) => c.input.version)).toEqual(['1']);
      expect(rollback.routes()).toEqual(['v1=100']);
      const alerts = watch.named('notify').filter((c) => c.input.event === 'watch_alert');
      expect(alerts).toHaveLength(1);
      const burn = (
        alerts[0]?.input.details as { burn: { short: { errorBurn: number }; budgetLeft: number } }
      ).burn;
      expect(burn.short.errorBurn).toBeGreaterThanOrEqual(14.4);
      expect(burn.budgetLeft).toBeLessThan(1);
    },
  );

  it(
    'with onPage notify a page is notified once and the watch runs to its end',
    { timeout: SLOW_MACHINE_MS },
    async () => {
      const { watch, rollback } = await harness.watch(watchInput({ onPage: 'notify' }), {
        watchLook: burnFrom(4),
      });
      const result = (await watch.handle.result()) as WatchResult;
      expect(result.outcome).toBe('completed');
      expect(result.alerts.map((a) => `${a.kind} ${a.action}`)).toEqual(['page notify']);
      // Notified when it starts firing, not at every look it keeps firing.
      expect(watch.named('notify').filter((c) => c.input.event === 'watch_alert')).toHaveLength(1);
      expect(rollback.calls).toEqual([]);
    },
  );

  it('paused, a page is notified and nothing rolls back', { timeout: SLOW_MACHINE_MS }, async () => {
    const { watch, rollback } = await harness.watch(watchInput({ onPage: 'rollback' }), {
      watchLook: burnFrom(4),
    });
    await until(() => watch.looks >= 1);
    await watch.handle.signal(pauseSignal, { by: 'carol', reason: 'known incident' });
    const result = (await watch.handle.result()) as WatchResult;
    expect(result.outcome).toBe('completed');
    expect(result.alerts.map((a) => `${a.kind} ${a.action}`)).toEqual(['page notify (paused)']);
    expect(rollback.calls).toEqual([]);
  });

  it('ends when the registry names another production version', { timeout: SLOW_MACHINE_MS }, async () => {
    const { watch } = await harness.watch(watchInput({ duration: '2m' }), {
      watchLook: (n) => ({ sample: { requests: 10, errors: 0, slow: 0 }, production: n >= 3 ? '1' : '2' }),
    });
    const result = (await watch.handle.result()) as WatchResult;
    expect(result.outcome).toBe('superseded');
    expect(result.reason).toBe('v1 is production now; the watch of v2 ends');
    expect(result.looks).toBe(3);
  });

  it('continues as new with its windows and totals', { timeout: SLOW_MACHINE_MS }, async () => {
    // A few looks per run; the page comes in a later run, on windows that span the roll-over (a
    // look takes about a second on a busy machine, so the windows are wider than the others').
    const { watch } = await harness.watch(
      watchInput(
        { duration: '20s', onPage: 'notify', page: [{ factor: 14.4, long: '6s', short: '2s' }] },
        { historyLimit: 40 },
      ),
      { watchLook: burnFrom(5) },
    );
    const result = (await watch.handle.result()) as WatchResult;
    expect(watch.runIds().length, 'it continued as new').toBeGreaterThan(1);
    const pageRun = watch.named('notify').find((c) => c.input.event === 'watch_alert')?.runId;
    expect(pageRun, 'the page came after a roll-over').not.toBe(watch.runIds()[0]);
    // Every look counted once across the runs, and the page still fired after the roll-over.
    expect(result.looks).toBe(watch.looks);
    expect(result.alerts.map((a) => a.kind)).toEqual(['page']);
    const lastLook = watch.named('watchLook').at(-1)!.input as { burn: { total: { requests: number } } };
    expect(lastLook.burn.total.requests).toBe(100 * (watch.looks - 2));
  });
});
