/**
 * Measuring an interval: read the router's counters, take the window since the last look, and
 * judge it. The whole verdict (numbers, tests, thresholds) is the activity's result, so the
 * workflow history explains every decision. Missing data (a router restart, a vanished series)
 * is inconclusive, never a pass.
 */
import type { ActivityDeps } from './deps';
import type { AnalyzeInput, IntervalAnalysis, RewardCounts } from './contracts';
import type { Verdict } from '../workflows/api';
import type { MetricsSnapshot, VariantCounters } from '../serving/metrics/source';
import { windowBetween } from '../serving/metrics/window';
import { checkSlo } from './analysis/slo';
import { compareVariants } from './analysis/compare';
import { quantileOrNull } from './analysis/histogram';
import { DEFAULT_AB, DEFAULT_BANDIT } from './analysis';
import { abTest } from './analysis/sequential';
import { thompsonWeights } from './analysis/bandit';
import { auditFeedback, DEFAULT_FEEDBACK_LIMITS } from './analysis/feedback';

const round = (x: number): number => Number(x.toPrecision(6));

/**
 * The shadow's guard: mirrored copies must agree with the primary's answers, fail rarely and
 * answer within the latency limit. Judged on the copies, since the shadow serves no client.
 */
export function checkShadow(w: VariantCounters | undefined, input: AnalyzeInput): Verdict {
  const { shadow, slos } = input;
  const limitMs = shadow.maxP99LatencyMs ?? slos.p99LatencyMs;
  const s = w?.shadow;
  const compared = s ? s.agree + s.disagree + s.error : 0;
  const judged = s ? s.agree + s.disagree : 0;
  const agreement = judged > 0 && s ? s.agree / judged : null;
  const errorRate = compared > 0 && s ? s.error / compared : null;
  const p99s = s && s.latency.count > 0 ? quantileOrNull(s.latency, 0.99) : null;
  const p99Ms = p99s === null ? null : round(p99s * 1000);
  const metrics = [
    {
      name: 'agreement',
      value: agreement === null ? null : round(agreement),
      limit: shadow.minAgreement,
      unit: 'ratio (min)',
    },
    {
      name: 'shadow error rate',
      value: errorRate === null ? null : round(errorRate),
      limit: slos.errorRate,
      unit: 'ratio (max)',
    },
    { name: 'shadow p99 latency', value: p99Ms, limit: limitMs, unit: 'ms (max)' },
  ];
  const failures: string[] = [];
  if (agreement !== null && agreement < shadow.minAgreement) {
    failures.push(`agreement ${round(agreement * 100)}% < ${shadow.minAgreement * 100}%`);
  }
  if (errorRate !== null && errorRate > slos.errorRate)
    failures.push(`shadow error rate ${round(errorRate * 100)}% > ${slos.errorRate * 100}%`);
  if (p99Ms !== null && p99Ms > limitMs) failures.push(`shadow p99 ${p99Ms} ms > ${limitMs} ms`);
  const enough = compared >= Math.max(1, shadow.minComparisons);
  const result = failures.length > 0 && enough ? 'fail' : enough ? 'pass' : 'inconclusive';
  return {
    check: 'shadow',
    result,
    reason:
      result === 'inconclusive'
        ? `${compared} mirrored comparisons, ${shadow.minComparisons} needed to judge`
        : result === 'fail'
          ? failures.join('; ')
          : `agreement ${agreement === null ? 'n/a' : `${round(agreement * 100)}%`}, p99 ${p99Ms ?? 'n/a'} ms over ${compared} comparisons`,
    samples: compared,
    mirrored: w?.mirrored ?? 0,
    mirrorDropped: w?.mirrorDropped ?? 0,
    metrics,
  };
}

/**
 * Snapshots travel through the workflow history as JSON, where the +Inf bucket bound becomes
 * null. Restore it before taking a window, or the +Inf bucket would never subtract.
 */
export function reviveSnapshot(s: MetricsSnapshot): MetricsSnapshot {
  const fix = (h: { buckets: { le: number | null; count: number }[] }): void => {
    for (const b of h.buckets) if (b.le === null) b.le = Infinity;
  };
  const copy = structuredClone(s);
  for (const v of Object.values(copy.variants)) {
    fix(v.latency);
    fix(v.shadow.latency);
  }
  return copy;
}

/** A/B or bandit on the rewards since the experiment began (cumulative, not per interval). */
function judgeExperiment(
  input: AnalyzeInput,
  snapshot: MetricsSnapshot,
): NonNullable<IntervalAnalysis['experiment']> {
  const e = input.experiment;
  const kind = e?.kind === 'bandit' ? 'bandit' : 'ab';
  if (!e || !input.baseline || !input.experimentStart) {
    return { check: kind, result: 'inconclusive', decision: 'continue', reason: 'experiment not configured' };
  }
  const since = windowBetween(reviveSnapshot(input.experimentStart), snapshot);
  if (since.gap) {
    return {
      check: kind,
      result: 'inconclusive',
      decision: 'continue',
      sinceStartGap: true,
      reason: `missing data since the experiment began: ${since.gapReason ?? 'counters reset'}`,
    };
  }
  const carried = (v: string): RewardCounts => {
    const w = since.variants[v];
    const now = w?.rewards ?? { count: 0, sum: 0 };
    const before = input.experimentCarry?.[v];
    const out: RewardCounts = { count: now.count + (before?.count ?? 0), sum: now.sum + (before?.sum ?? 0) };
    // Requests and refusals add up only when the carried counts (if any) have them too.
    const add = (k: 'requests' | 'rejected', n: number | undefined): void => {
      if (n !== undefined && (!before || before[k] !== undefined)) out[k] = n + (before?.[k] ?? 0);
    };
    add('requests', w ? w.requests : 0);
    add('rejected', w ? w.feedbackRejected : 0);
    return out;
  };
  const rc = carried(input.candidate);
  const baseline = input.baseline;
  const rb = carried(baseline);
  const rewards = { [input.candidate]: rc, [baseline]: rb };
  const audit = auditFeedback(rewards, {
    ...DEFAULT_FEEDBACK_LIMITS,
    // Specs recorded before this field existed get the default.
    maxRejectedShare: e.maxFeedbackRejected ?? DEFAULT_FEEDBACK_LIMITS.maxRejectedShare,
  });
  // Sums beyond the counts cannot be judged at all (the tests would refuse them); otherwise the
  // verdict the rewards would have given is kept beside the refusal, for the auditor.
  const judgeable = audit.variants.every((v) => v.rewardSum <= v.rewards * (1 + 1e-9) + 1e-9);
  const decide = (): NonNullable<IntervalAnalysis['experiment']> => {
    if (kind === 'ab') {
      const v = abTest(
        rc,
        rb,
        { ...DEFAULT_AB, alpha: e.alpha, minimumEffect: e.minimumEffect, minRewards: e.minRewards },
        input.abState,
      );
      return { ...v, decision: v.decision, rewards };
    }
    const v = thompsonWeights(
      { [input.candidate]: rc, [baseline]: rb },
      {
        ...DEFAULT_BANDIT,
        confidence: e.confidence,
        explorationFloor: e.explorationFloor,
        minRewards: e.minRewards,
      },
      input.seed ?? 0,
      input.candidate,
    );
    return { ...v, decision: v.decision, rewards };
  };
  if (audit.trusted) return { ...decide(), feedback: audit.variants };
  const would = judgeable ? decide() : undefined;
  // No p-value, interval or weights: the workflow keeps the A/B's running state and the bandit's
  // weights as they were, so tampered rewards move nothing.
  return {
    check: kind,
    result: 'inconclusive',
    decision: 'continue',
    reason: `feedback not trusted, the ${kind === 'ab' ? 'A/B' : 'bandit'} decides nothing until it is: ${audit.reason}`,
    rewards,
    feedback: audit.variants,
    ...(would
      ? {
          withheld: {
            result: would.result,
            decision: would.decision,
            ...(would.best !== undefined ? { best: would.best } : {}),
            reason: would.reason,
          },
        }
      : {}),
  };
}

function missing(check: string, reason: string): Verdict {
  return { check, result: 'inconclusive', reason };
}

export function measureActivities({ metrics, logger }: ActivityDeps) {
  const log = logger.child('measure');
  return {
    async snapshotMetrics({ model }: { model: string }): Promise<MetricsSnapshot> {
      return metrics.snapshot(model);
    },

    async analyzeInterval(input: AnalyzeInput): Promise<IntervalAnalysis> {
      const snapshot = await metrics.snapshot(input.model);
      if (!input.previous) {
        return {
          snapshot,
          gap: true,
          guard: missing(input.phase === 'shadow' ? 'shadow' : 'slo', 'first look: no window yet'),
        };
      }
      const window = windowBetween(reviveSnapshot(input.previous), snapshot);
      if (window.gap) {
        const reason = `missing data: ${window.gapReason ?? 'counters reset'}`;
        log.warn('metrics gap', { model: input.model, reason });
        return { snapshot, gap: true, guard: missing(input.phase === 'shadow' ? 'shadow' : 'slo', reason) };
      }
      const candidate = window.variants[input.candidate];
      const baseline = input.baseline ? window.variants[input.baseline] : undefined;
      if (input.phase === 'shadow') {
        return { snapshot, gap: false, guard: checkShadow(candidate, input) };
      }
      const guard: Verdict = candidate
        ? checkSlo(candidate, {
            maxP99Ms: input.slos.p99LatencyMs,
            maxErrorRate: input.slos.errorRate,
            minRequests: input.slos.minRequests,
          })
        : missing('slo', `no traffic recorded for ${input.candidate} in this window`);
      let comparison: Verdict | undefined;
      if (input.analysis.compare) {
        comparison =
          candidate && baseline
            ? compareVariants(candidate, baseline, {
                confidence: input.analysis.confidence,
                maxErrorRateIncrease: input.analysis.maxErrorRateIncrease,
                maxLatencyIncrease: input.analysis.maxLatencyIncrease,
                minLatencyIncreaseMs: input.analysis.minLatencyIncreaseMs,
                minSamples: input.analysis.minSamples,
              })
            : missing(
                'comparison',
                `no traffic recorded for ${candidate ? input.baseline : input.candidate} in this window`,
              );
      }
      const from = window.from;
      const result: IntervalAnalysis = {
        snapshot,
        gap: false,
        guard: { ...guard, window: { from, to: window.to } },
        comparison,
      };
      if (input.phase === 'experiment') result.experiment = judgeExperiment(input, snapshot);
      return result;
    },
  };
}
