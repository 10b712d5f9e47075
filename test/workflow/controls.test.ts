import { describe, expect, it } from 'vitest';
import type { AnalyzeInput } from '../../activities/contracts';
import {
  approveUpdate,
  pauseSignal,
  promoteFullSignal,
  promoteFullUpdate,
  resumeSignal,
} from '../../workflows/api';
import {
  stubSpec,
  uniqueModel,
  useWorkflowHarness,
  type LookAnswer,
  type StubPromotion,
  SLOW_MACHINE_MS,
  until,
} from './harness';

/**
 * Holding, resuming and skipping ahead; continue-as-new at every stage that loops; and the
 * experiment's decisions, with stub activities.
 */
const SHADOW = { enabled: true, duration: '2s', mirrorPercent: 50 };
const AB = { kind: 'ab', split: 50, interval: '1s', maxDuration: '10s', unitHeader: 'x-user' };
const BANDIT = { kind: 'bandit', interval: '1s', maxDuration: '10s', explorationFloor: 5 };

const decision = (d: string, extra: Record<string, unknown> = {}): LookAnswer => ({
  experiment: { check: 'experiment', result: 'pass', reason: `${d} (stub)`, decision: d, ...extra },
});
const inExperiment = (i: AnalyzeInput) => i.phase === 'experiment';

describe.concurrent('controls and experiments', { timeout: SLOW_MACHINE_MS }, () => {
  const wf = useWorkflowHarness();

  it('an inconclusive step pauses for a human; resume proceeds and is recorded', async () => {
    let resumedAt = 0;
    const p = await wf.promote(stubSpec(uniqueModel('inc')), {
      look: async (_n, i, self) => {
        const onStepOne = self.routes().at(-1) === 'v1=90 v2=10';
        if (
          onStepOne &&
          resumedAt === 0 &&
          (await self.status()).pendingAction?.startsWith('a human decision')
        ) {
          const status = await self.status();
          expect(status.paused).toBe(true);
          expect(status.pauseReason).toBe(
            'analysis inconclusive after 1 extra intervals: comparison: too few samples (stub)',
          );
          resumedAt = Date.now();
          await self.handle.signal(resumeSignal, { by: 'carol' });
        }
        return onStepOne ? { comparison: { result: 'inconclusive', reason: 'too few samples (stub)' } } : {};
      },
    });
    const result = await p.result();
    expect(result.outcome).toBe('promoted');
    expect(resumedAt).toBeGreaterThan(0);
    expect(p.named('notify').filter((c) => c.input.event === 'paused_inconclusive')).toHaveLength(1);
    // The guard kept looking while paused, and step 2 began only after the human's resume.
    const stepTwo = p.named('setTraffic').find((c) => String(c.input.reason).startsWith('canary step 2'));
    expect(stepTwo!.at).toBeGreaterThan(resumedAt);
    // With the notify-without-waiting patch: the paused notification is sent without holding the look.
    await p.record(wf.client, 'stub-inconclusive-pause-notify-later');
  });

  it('an inconclusive step proceeds on its own when the spec says onInconclusive: proceed', async () => {
    const p = await wf.promote(stubSpec(uniqueModel('incp'), { rollback: { onInconclusive: 'proceed' } }), {
      look: () => ({ comparison: { result: 'inconclusive', reason: 'too few samples' } }),
    });
    expect((await p.result()).outcome).toBe('promoted');
    // Each 2 s step extends by maxInconclusive (1) look before moving on: 3 + 3.
    expect(p.looks).toBe(6);
    expect(p.named('notify').filter((c) => c.input.event === 'paused_inconclusive')).toEqual([]);
  });

  it('a pause stops the step clock but not the guard, which still rolls back', async () => {
    const p = await wf.promote(stubSpec(uniqueModel('pz')), {
      look: async (n, _i, self) => {
        if (n === 1) await self.handle.signal(pauseSignal, { by: 'bob' });
        // Paused from look 2 on; looks 5 and 6 fail.
        return n >= 5 ? { guard: { result: 'fail', reason: 'error rate 9%' } } : {};
      },
    });
    const result = await p.result();
    expect(result.outcome).toBe('rolled_back');
    expect(result.reason).toMatch(/^automatic rollback at canary after 2 failed intervals/);
    // Six looks at 10% although step 1 holds for two: the clock stood still while paused.
    expect(p.routes()).toEqual(['v1=90 v2=10', 'v1=100']);
    expect(p.looks).toBe(6);
  });

  const promoteFullAt: [string, (i: AnalyzeInput, p: StubPromotion) => boolean][] = [
    ['shadow', (i) => i.phase === 'shadow'],
    ['canary step 1', (_i, p) => p.routes().at(-1) === 'v1=90 v2=10'],
    ['canary step 2', (_i, p) => p.routes().at(-1) === 'v1=50 v2=50'],
    ['the experiment', inExperiment],
  ];
  it.each(promoteFullAt)('promote-full during %s graduates at once', async (stage, when) => {
    let sent = 0;
    let routesBefore: string[] = [];
    const spec = stubSpec(uniqueModel('pf'), {
      shadow: SHADOW,
      ...(stage === 'the experiment' ? { experiment: AB } : {}),
    });
    const p = await wf.promote(spec, {
      look: async (_n, i, self) => {
        if (sent === 0 && when(i, self)) {
          sent = Date.now();
          routesBefore = self.routes();
          await self.handle.signal(promoteFullSignal, { by: 'dave' });
        }
        return inExperiment(i) ? decision('continue') : {};
      },
    });
    const result = await p.result();
    expect(result).toMatchObject({ outcome: 'promoted', reason: 'promoted fully by dave' });
    expect(p.routes()).toEqual([...routesBefore, 'v2=100']);
    expect(p.named('analyzeInterval').filter((c) => c.at > sent)).toEqual([]);
    expect(p.named('updateRegistry').at(-2)?.input).toMatchObject({
      status: { status: 'production', reason: 'promoted fully by dave' },
    });
  });

  it('promote-full while the approvals are outstanding is refused, not queued; sent after them, before any traffic, it graduates without a canary step', async () => {
    const p = await wf.promote(
      stubSpec(uniqueModel('pf0'), { approval: { required: 1, approvers: ['alice'], timeout: '1m' } }),
      {
        // After approval, while staging is tested: by signal, as the Temporal UI sends it.
        during: async (name, _i, self) => {
          if (name === 'integrationTest') await self.handle.signal(promoteFullSignal, { by: 'alice' });
        },
      },
    );
    await until(async () => (await p.status()).stage === 'approve');
    await expect(
      p.handle.executeUpdate(promoteFullUpdate, { args: [{ by: 'alice', reason: 'hotfix' }] }),
    ).rejects.toMatchObject({
      cause: {
        message: 'v2 is still at approve: promote-full is refused, not queued, until its approvals are in',
      },
    });
    await p.handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
    expect(await p.result()).toMatchObject({ outcome: 'promoted', reason: 'promoted fully by alice' });
    expect(p.named('integrationTest')).toHaveLength(1);
    expect(p.named('analyzeInterval')).toEqual([]);
    expect(p.routes()).toEqual(['v2=100']);
    expect(p.named('notify').map((c) => c.input.event)).toContain('promoteFull_ignored');
    await p.record(wf.client, 'promote-full-refused-before-approval');
  });

  const continuing: [string, Record<string, unknown>, (p: StubPromotion) => LookAnswer][] = [
    ['shadow', { shadow: SHADOW }, () => ({})],
    ['canary', {}, () => ({})],
    [
      'experiment (A/B)',
      { experiment: AB },
      (p) => (p.looks >= 7 ? decision('candidate_wins') : decision('continue')),
    ],
    ['experiment (bandit)', { experiment: BANDIT }, banditLook],
  ];
  it.each(continuing)(
    'continues as new after every look at %s and ends as one run would',
    async (stage, overrides, answer) => {
      const p = await wf.promote(
        stubSpec(uniqueModel('can'), overrides),
        { look: (_n, i, self) => (inExperiment(i) ? answer(self) : {}) },
        {
          historyLimit: 1,
        },
      );
      const result = await p.result();
      expect(result.outcome).toBe('promoted');
      expect(p.runIds().length).toBeGreaterThanOrEqual(p.looks);
      // Each continued run picks up where the last stood: no traffic change repeats, the shadow's
      // clock and the experiment's start are kept, the staging work is not redone.
      const routes = p.routes();
      const changes = p.named('setTraffic').map((c, i) => `${String(c.input.reason)} → ${routes[i]}`);
      expect(changes.filter((r, i) => r === changes[i - 1])).toEqual([]);
      expect(p.named('integrationTest')).toHaveLength(1);
      if (stage === 'shadow')
        expect(p.named('analyzeInterval').filter((c) => c.input.phase === 'shadow')).toHaveLength(2);
      if (stage.startsWith('experiment')) {
        const looks = p.named('analyzeInterval').filter((c) => c.input.phase === 'experiment');
        const starts = new Set(looks.map((c) => JSON.stringify(c.input.experimentStart)));
        expect(starts.size).toBe(1);
      }
    },
  );

  it('an A/B the baseline wins rejects the candidate', async () => {
    const p = await wf.promote(stubSpec(uniqueModel('abl'), { experiment: AB }), {
      look: (n, i) =>
        inExperiment(i) && n >= 6 ? decision('baseline_wins') : inExperiment(i) ? decision('continue') : {},
    });
    expect(await p.result()).toMatchObject({
      outcome: 'rejected',
      reason: 'the candidate lost the A/B: baseline_wins (stub)',
    });
    expect(p.named('setTraffic').find((c) => String(c.input.reason).startsWith('A/B'))?.input).toMatchObject({
      sticky: { header: 'x-user' },
    });
    expect(p.routes().at(-1)).toBe('v1=100');
  });

  it.each([
    ['proceed', 'promoted'],
    ['keep_baseline', 'rejected'],
  ] as const)('an experiment without a decision by maxDuration: onTimeout %s', async (onTimeout, outcome) => {
    const p = await wf.promote(
      stubSpec(uniqueModel('abt'), { experiment: { ...AB, maxDuration: '3s', onTimeout } }),
      { look: (_n, i) => (inExperiment(i) ? decision('continue') : {}) },
    );
    const result = await p.result();
    expect(result.outcome).toBe(outcome);
    if (outcome === 'rejected')
      expect(result.reason).toMatch(/^experiment kept the baseline: no decision within 3s/);
    expect(p.named('analyzeInterval').filter((c) => c.input.phase === 'experiment')).toHaveLength(3);
  });

  it('a bandit moves the weights each interval and stops on the best arm', async () => {
    const p = await wf.promote(stubSpec(uniqueModel('bdt'), { experiment: BANDIT }), {
      look: (_n, i, self) => (inExperiment(i) ? banditLook(self) : {}),
    });
    expect((await p.result()).outcome).toBe('promoted');
    expect(p.routes().slice(2)).toEqual(['v1=50 v2=50', 'v1=30 v2=70', 'v1=10 v2=90', 'v2=100']);
    // Each look gets a fresh seed, so replays and audits reproduce the bandit's draws.
    const seeds = p.named('analyzeInterval').map((c) => c.input.seed);
    expect(new Set(seeds).size).toBe(seeds.length);
  });
});

/** A bandit that shifts 20 points to the candidate per look, then stops on it. */
function banditLook(p: StubPromotion): LookAnswer {
  const experimentLooks = p.named('analyzeInterval').filter((c) => c.input.phase === 'experiment').length;
  if (experimentLooks >= 3) return decision('stop', { best: 'v2' });
  const v2 = 50 + 20 * experimentLooks;
  return decision('explore', { weights: { v1: 100 - v2, v2 } });
}
