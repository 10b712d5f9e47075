import { describe, expect, it } from 'vitest';
import { auditFeedback, DEFAULT_FEEDBACK_LIMITS } from '../../activities/analysis/feedback';
import { DEFAULT_BANDIT, thompsonWeights } from '../../activities/analysis';
import { measureActivities } from '../../activities/measure';
import type { AnalyzeInput } from '../../activities/contracts';
import type { ActivityDeps } from '../../activities/deps';
import type { MetricsSnapshot, VariantCounters } from '../../serving/metrics/source';
import { emptyCounters } from '../../serving/metrics/window';
import { parseSpec } from '../../specs/load';

describe('feedback audit', () => {
  it('trusts honest counts and names each law a variant breaks', () => {
    const honest = auditFeedback({
      v1: { count: 400, sum: 200, requests: 500, rejected: 3 },
      v2: { count: 400, sum: 250, requests: 480, rejected: 0 },
    });
    expect(honest.trusted).toBe(true);
    expect(honest.reason).toBe('');
    expect(honest.variants.find((v) => v.variant === 'v1')).toMatchObject({ rewardsPerRequest: 0.8 });

    const stuffed = auditFeedback({
      v1: { count: 300, sum: 300, requests: 100 },
      v2: { count: 90, sum: 95, requests: 100 },
      v3: { count: 100, sum: 50, requests: 200, rejected: 60 },
    });
    expect(stuffed.trusted).toBe(false);
    expect(stuffed.reason).toMatch(
      /v1: it has 300 rewards for 100 requests: more than one reward per request/,
    );
    expect(stuffed.reason).toMatch(
      /v2: its rewards sum to 95 over 90 rewards: more than the shape's maximum/,
    );
    expect(stuffed.reason).toMatch(
      /v3: the router refused 37\.5% of its feedback \(60 of 160: repeats or rewards outside the shape\), above the 10% allowed/,
    );
    // Nothing clamped: the numbers are reported as counted.
    expect(stuffed.variants.find((v) => v.variant === 'v1')).toMatchObject({
      rewards: 300,
      rewardSum: 300,
      requests: 100,
      rewardsPerRequest: 3,
    });
  });

  it('allows late rewards for requests just before the start, a few refusals, and unknown counts', () => {
    expect(auditFeedback({ v1: { count: 120, sum: 60, requests: 100 } }).trusted).toBe(true); // 100 · 1.05 + 20
    expect(auditFeedback({ v1: { count: 126, sum: 60, requests: 100 } }).trusted).toBe(false);
    expect(auditFeedback({ v1: { count: 10, sum: 5, requests: 100, rejected: 9 } }).trusted).toBe(true); // < minRejected
    expect(auditFeedback({ v1: { count: 1e6, sum: 5 } }).trusted).toBe(true); // requests unknown: not judged
    expect(auditFeedback({ v1: { count: 10, sum: Infinity } }).reason).toMatch(/not finite/);
    expect(DEFAULT_FEEDBACK_LIMITS.maxRejectedShare).toBe(0.1);
  });
});

/** A MetricsSource that serves the snapshots a test sets, for the analysis activity alone. */
function analysisWith(now: MetricsSnapshot) {
  const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
  const deps = { metrics: { snapshot: async () => now }, logger: quiet } as unknown as ActivityDeps;
  return measureActivities(deps);
}

const counters = (c: Partial<VariantCounters>): VariantCounters => ({ ...emptyCounters(), ...c });

function snapshot(variants: Record<string, Partial<VariantCounters>>, takenAt: string): MetricsSnapshot {
  return {
    model: 'fd',
    takenAt,
    epoch: '1',
    variants: Object.fromEntries(Object.entries(variants).map(([v, c]) => [v, counters(c)])),
  };
}

const spec = parseSpec(
  {
    name: 'fd',
    owner: 'tests',
    model: {
      signature: {
        inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 8] }],
        outputs: [{ name: 'score', datatype: 'FP32', shape: [-1, 1] }],
      },
    },
    slos: { p99LatencyMs: 250, errorRate: 0.02, minRequests: 5 },
    evaluation: { dataset: 'eval.json', min: 0.5 },
    experiment: { kind: 'bandit', minRewards: 60, confidence: 0.99 },
  },
  'test',
);

function input(start: MetricsSnapshot): AnalyzeInput {
  return {
    model: 'fd',
    phase: 'experiment',
    candidate: 'v2',
    baseline: 'v1',
    previous: start,
    slos: spec.slos,
    analysis: spec.canary.analysis,
    shadow: spec.shadow,
    experiment: spec.experiment,
    seed: 7,
    experimentStart: start,
  };
}

describe('experiment verdicts on untrusted feedback', () => {
  const start = snapshot({ v1: {}, v2: {} }, '2026-12-01T00:00:00Z');

  it('a bandit fed stuffed rewards for the worse arm does not pick it, and says why', async () => {
    // v2 earns 20% honestly, v1 60%; then someone sends 600 more rewards of 1 for v2's requests
    // (what a router without deduplication counted). On those counts alone the bandit picks v2.
    const stuffedV2 = { count: 400 + 600, sum: 80 + 600 };
    const honestV1 = { count: 400, sum: 240 };
    const naive = thompsonWeights(
      { v1: honestV1, v2: stuffedV2 },
      { ...DEFAULT_BANDIT, minRewards: 60, confidence: 0.99 },
      7,
      'v2',
    );
    expect(naive).toMatchObject({ decision: 'stop', best: 'v2', result: 'pass' });

    const now = snapshot(
      { v1: { requests: 400, rewards: honestV1 }, v2: { requests: 400, rewards: stuffedV2 } },
      '2026-12-01T00:05:00Z',
    );
    const r = await analysisWith(now).analyzeInterval(input(start));
    expect(r.experiment).toMatchObject({ check: 'bandit', result: 'inconclusive', decision: 'continue' });
    expect(r.experiment?.reason).toMatch(
      /^feedback not trusted, the bandit decides nothing until it is: v2: it has 1000 rewards for 400 requests/,
    );
    expect(r.experiment?.weights).toBeUndefined(); // the workflow keeps the weights where they are
    expect(r.experiment?.withheld).toMatchObject({ decision: 'stop', best: 'v2' });
    expect(r.experiment?.feedback?.find((v) => v.variant === 'v2')).toMatchObject({
      rewardsPerRequest: 2.5,
    });
  });

  it('a variant whose feedback the router keeps refusing makes the verdict inconclusive', async () => {
    const now = snapshot(
      {
        v1: { requests: 400, rewards: { count: 400, sum: 240 }, feedbackRejected: 0 },
        v2: { requests: 400, rewards: { count: 400, sum: 380 }, feedbackRejected: 1200 },
      },
      '2026-12-01T00:05:00Z',
    );
    const r = await analysisWith(now).analyzeInterval(
      input({
        ...start,
        variants: { v1: counters({ feedbackRejected: 0 }), v2: counters({ feedbackRejected: 0 }) },
      }),
    );
    expect(r.experiment?.result).toBe('inconclusive');
    expect(r.experiment?.reason).toMatch(/v2: the router refused 75% of its feedback \(1200 of 1600/);
  });

  it('sums beyond the counts are inconclusive with the numbers, not an activity failure', async () => {
    const now = snapshot(
      {
        v1: { requests: 400, rewards: { count: 400, sum: 240 } },
        v2: { requests: 400, rewards: { count: 3, sum: 1e308 } },
      },
      '2026-12-01T00:05:00Z',
    );
    const r = await analysisWith(now).analyzeInterval(input(start));
    expect(r.experiment?.result).toBe('inconclusive');
    expect(r.experiment?.reason).toMatch(/v2: its rewards sum to 1e\+308 over 3 rewards/);
    expect(r.experiment?.withheld).toBeUndefined();
  });

  it('honest counts decide as before', async () => {
    const now = snapshot(
      {
        v1: { requests: 400, rewards: { count: 400, sum: 240 } },
        v2: { requests: 400, rewards: { count: 400, sum: 80 } },
      },
      '2026-12-01T00:05:00Z',
    );
    const r = await analysisWith(now).analyzeInterval(input(start));
    expect(r.experiment).toMatchObject({ decision: 'stop', best: 'v1', result: 'fail' });
  });
});
