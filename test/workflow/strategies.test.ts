/**
 * The strategies' branches of the one runbook, with stub activities: which routes blue-green and
 * linear set and in which order, how blue-green sizes the fleet, what judges each step, and the
 * people's controls (rollback, promote-full, inconclusive pause) inside blue-green's phases and
 * across continue-as-new in linear steps.
 */
import { describe, expect, it } from 'vitest';
import type { AnalyzeInput, DeployInput, SetTrafficInput } from '../../activities/contracts';
import { promoteFullSignal, resumeSignal, rollbackSignal } from '../../workflows/api';
import { stubSpec, uniqueModel, useWorkflowHarness, SLOW_MACHINE_MS, until } from './harness';

const PREVIEW = { header: 'x-runway-preview', value: 'qa', duration: '2s' };

describe.concurrent('strategies', { timeout: SLOW_MACHINE_MS }, () => {
  const wf = useWorkflowHarness();

  it('blue-green: full-size candidate, shadow, preview by header, switch, graduate; the guard alone judges', async () => {
    const spec = stubSpec(uniqueModel('bg'), {
      strategy: 'blue-green',
      shadow: { enabled: true, duration: '2s', mirrorPercent: 50 },
      blueGreen: { preview: PREVIEW, watchAfterSwitch: '2s' },
    });
    const p = await wf.promote(spec);
    const result = await p.result();
    expect(result.outcome, result.reason).toBe('promoted');
    expect(p.routes()).toEqual(['v1=100 v2=0', 'v1=100 v2=0', 'v1=0 v2=100', 'v2=100']);
    const routes = p.named('setTraffic').map((c) => c.input as unknown as SetTrafficInput);
    expect(routes.map((r) => [!!r.mirror, r.preview ?? null])).toEqual([
      [true, null],
      [false, { variant: 'v2', header: 'x-runway-preview', value: 'qa' }],
      [false, null],
      [false, null],
    ]);
    // every route change keeps both versions at full size; the candidate came up at full size
    expect(routes.every((r) => r.sizing === 'full')).toBe(true);
    const production = p
      .named('deploy')
      .map((c) => c.input as unknown as DeployInput)
      .filter((d) => d.environment === 'production' && d.version === '2');
    expect(production.map((d) => d.fullSize)).toEqual([true]);
    // preview and switch looks judge with the guard alone (the shadow keeps its own checks)
    const looks = p.named('analyzeInterval').map((c) => c.input as unknown as AnalyzeInput);
    const stepLooks = looks.filter((i) => i.phase === 'canary');
    expect(stepLooks.length).toBeGreaterThanOrEqual(4);
    expect(stepLooks.every((i) => i.analysis.compare === false && i.sequential === undefined)).toBe(true);
    expect(result.trafficChanges.map((c) => c.stage)).toEqual(['shadow', 'preview', 'switch', 'graduate']);
    expect((await p.status()).strategy).toBe('blue-green');
  });

  it('blue-green: a rollback during the watch after the switch routes back to the baseline in one change', async () => {
    const spec = stubSpec(uniqueModel('bgr'), {
      strategy: 'blue-green',
      blueGreen: { watchAfterSwitch: '20s' },
    });
    const p = await wf.promote(spec, {
      look: async (n, _i, self) => {
        if (n === 2) await self.handle.signal(rollbackSignal, { by: 'oncall', reason: 'pager 42' });
        return {};
      },
    });
    const result = await p.result();
    expect(result).toMatchObject({ outcome: 'rolled_back', reason: 'manual rollback by oncall: pager 42' });
    expect(p.routes()).toEqual(['v1=0 v2=100', 'v1=100']);
    const revert = p.named('setTraffic').at(-1)?.input as unknown as SetTrafficInput;
    expect(revert.sizing).toBe('full');
    // the baseline is never torn down; the candidate is, after traffic left it
    const teardowns = p.named('teardown').map((c) => (c.input as { name: string }).name);
    expect(teardowns.some((n) => n.includes('-v1-'))).toBe(false);
    expect(teardowns.some((n) => n.endsWith('-v2-production'))).toBe(true);
  });

  it('blue-green: a guard failing twice at 100% switches back automatically', async () => {
    const spec = stubSpec(uniqueModel('bgf'), {
      strategy: 'blue-green',
      blueGreen: { watchAfterSwitch: '20s' },
    });
    const p = await wf.promote(spec, {
      look: (n) => (n >= 2 ? { guard: { result: 'fail', reason: 'error rate 6% > 2%' } } : {}),
    });
    const result = await p.result();
    expect(result.outcome).toBe('rolled_back');
    expect(result.reason).toBe(
      'automatic rollback at blue-green switch after 2 failed intervals — slo: error rate 6% > 2%',
    );
    expect(p.routes()).toEqual(['v1=0 v2=100', 'v1=100']);
    expect(p.looks).toBe(3);
  });

  it('blue-green: an inconclusive preview (no preview traffic) pauses for a human; resume proceeds to the switch', async () => {
    const spec = stubSpec(uniqueModel('bgi'), {
      strategy: 'blue-green',
      blueGreen: { preview: PREVIEW, watchAfterSwitch: '1s' },
    });
    const p = await wf.promote(spec, {
      look: (_n, _i, self) =>
        self.routes().length === 1 ? { guard: { result: 'inconclusive', reason: '0 requests < 5' } } : {},
    });
    await until(async () => (await p.status()).paused);
    const paused = await p.status();
    expect(paused.stage).toBe('preview');
    expect(paused.preview).toEqual({ variant: 'v2', header: 'x-runway-preview', value: 'qa' });
    expect(paused.step).toMatchObject({ index: 0, weight: 0, pauseMs: 2000 });
    expect(paused.pauseReason).toMatch(/inconclusive .*0 requests < 5/);
    await p.handle.signal(resumeSignal, { by: 'qa-lead' });
    const result = await p.result();
    expect(result.outcome, result.reason).toBe('promoted');
    expect(p.routes()).toEqual(['v1=100 v2=0', 'v1=0 v2=100', 'v2=100']);
  });

  it('blue-green: promote-full during the preview graduates at once', async () => {
    const spec = stubSpec(uniqueModel('bgp'), {
      strategy: 'blue-green',
      blueGreen: { preview: { ...PREVIEW, duration: '20s' }, watchAfterSwitch: '20s' },
    });
    const p = await wf.promote(spec, {
      look: async (n, _i, self) => {
        if (n === 1) await self.handle.signal(promoteFullSignal, { by: 'dave' });
        return {};
      },
    });
    const result = await p.result();
    expect(result).toMatchObject({ outcome: 'promoted', reason: 'promoted fully by dave' });
    expect(p.routes()).toEqual(['v1=100 v2=0', 'v2=100']);
  });

  it('linear: equal steps compared like canary steps, across continue-as-new after every look', async () => {
    const spec = stubSpec(uniqueModel('lin'), {
      strategy: 'linear',
      linear: { stepPercent: 30, interval: '2s' },
    });
    const p = await wf.promote(spec, {}, { historyLimit: 1 });
    const result = await p.result();
    expect(result.outcome, result.reason).toBe('promoted');
    expect(p.routes()).toEqual(['v1=70 v2=30', 'v1=40 v2=60', 'v1=10 v2=90', 'v2=100']);
    expect(p.runIds().length).toBeGreaterThan(3);
    const looks = p.named('analyzeInterval').map((c) => c.input as unknown as AnalyzeInput);
    // every look compared; latency's share of the budget (0.4) per step, half then a quarter each, and errors' one α (0.6) across them
    const alphas = [...new Set(looks.map((i) => i.sequential?.alpha))];
    expect(alphas).toEqual([0.002, 0.001]);
    expect([...new Set(looks.map((i) => i.sequential?.errorAlpha))]).toEqual([0.006]);
    expect(looks.every((i) => i.analysis.compare)).toBe(true);
    expect(result.trafficChanges.map((c) => c.stage)).toEqual(['linear', 'linear', 'linear', 'graduate']);
  });
});
