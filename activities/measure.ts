/**
 * Measuring an interval: read the router's counters, take the window since the last look, and
 * judge it. The whole verdict (numbers, tests, thresholds) is the activity's result, so the
 * workflow history explains every decision. Missing data (a router restart, a vanished series)
 * is inconclusive, never a pass.
 */
import type { ActivityDeps } from './deps';
import type { AnalyzeInput, IntervalAnalysis, RewardCounts, WindowSummary } from './contracts';
import type { Verdict } from '../workflows/api';
import type { MetricsSnapshot, VariantCounters } from '../serving/metrics/source';
import { windowBetween } from '../serving/metrics/window';
import { checkSlo } from './analysis/slo';
import { compareVariants } from './analysis/compare';
import {
  addGap,
  addInterval,
  judgeStep,
  type StepCompareParams,
  type StepEvidence,
} from './analysis/step-evidence';
import { addShadowMoves, type ShadowEvidence } from './analysis/shadow-shift';
import { quantileOrNull } from './analysis/histogram';
import { DEFAULT_AB, DEFAULT_BANDIT } from './analysis';
import { abTest } from './analysis/sequential';
import { thompsonWeights } from './analysis/bandit';
import { round } from './analysis/round';
import { auditFeedback, DEFAULT_FEEDBACK_LIMITS } from './analysis/feedback';
import { costVerdict, replicaPrice, type CostVerdict, type Prices, type VariantUsage } from '../common/cost';
import { SERVING_DEFAULTS } from '../specs/serving-defaults';
import { deploymentName, type FleetDriver } from '../serving/fleet/driver';
import type { VariantWindow } from './analysis/types';
import type { Logger } from '../common/log';

/**
 * The shadow's guard: mirrored copies must agree with the primary's answers, fail rarely and
 * answer within the latency limit. Judged on the copies, since the shadow serves no client.
 */
export function checkShadow(
  w: VariantCounters | undefined,
  input: AnalyzeInput,
  evidence?: ShadowEvidence,
): Verdict {
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
  const d = s?.decisions;
  const decided = d ? d.agree + d.flipUp + d.flipDown : 0;
  const decisionAgreement = d && decided > 0 ? d.agree / decided : null;
  if (input.shadow.threshold !== undefined) {
    metrics.push({
      name: `decision agreement (same side of ${input.shadow.threshold})`,
      value: decisionAgreement === null ? null : round(decisionAgreement),
      limit: shadow.minDecisionAgreement ?? 0,
      unit: 'ratio (min)',
    });
  }
  const failures: string[] = [];
  if (decisionAgreement !== null && decisionAgreement < (shadow.minDecisionAgreement ?? 0)) {
    failures.push(
      `decisions agree on ${round(decisionAgreement * 100)}% < ${(shadow.minDecisionAgreement ?? 0) * 100}% of mirrored outputs`,
    );
  }
  let shift: Record<string, unknown> | undefined;
  if (evidence) {
    const alpha = input.sequential?.alpha ?? 0.001;
    const e = Math.exp(evidence.maxLog);
    const moved = evidence.up + evidence.down;
    const flipped = evidence.flipUp + evidence.flipDown;
    const share = (x: number, n: number): string => (n > 0 ? `${round((100 * x) / n)}%` : 'n/a');
    shift = {
      test: 'sequential-output-shift',
      eValue: round(e),
      threshold: round(1 / alpha),
      maxShift: shadow.maxShift ?? 0.3,
      moved: { up: evidence.up, down: evidence.down },
      flipped: { toPositive: evidence.flipUp, toNegative: evidence.flipDown },
      result: evidence.crossedAt !== undefined ? 'fail' : 'pass',
    };
    const words = `of ${moved} moved outputs ${share(evidence.up, moved)} went up; of ${flipped} flipped decisions ${share(evidence.flipUp, flipped)} went positive`;
    if (evidence.crossedAt !== undefined) {
      failures.push(
        `the candidate's predictions have shifted: ${words}, beyond the allowed ${(0.5 + (shadow.maxShift ?? 0.3)) * 100}% one way (e-value ${round(e)} ≥ 1/α = ${round(1 / alpha)}, first at look ${evidence.crossedAt})`,
      );
    }
    shift.explanation = words;
  }
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
          : `agreement ${agreement === null ? 'n/a' : `${round(agreement * 100)}%`}${decisionAgreement === null ? '' : `, decisions ${round(decisionAgreement * 100)}%`}, p99 ${p99Ms ?? 'n/a'} ms over ${compared} comparisons${shift ? `; no output shift (${String(shift.explanation)}, e-value ${String(shift.eValue)})` : ''}`,
    samples: compared,
    ...(shift ? { shift } : {}),
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

/** The spec's analysis block as the sequential comparison reads it (older specs lack the new fields). */
function stepParams(input: AnalyzeInput): StepCompareParams {
  const a = input.analysis;
  return {
    alpha: input.sequential?.alpha ?? a.falseRollbackRate ?? 0.01,
    maxErrorRateIncrease: a.maxErrorRateIncrease,
    maxRelativeErrorRateIncrease: a.maxRelativeErrorRateIncrease ?? 0.2,
    maxLatencyIncrease: a.maxLatencyIncrease,
    minLatencyIncreaseMs: a.minLatencyIncreaseMs ?? 0,
    minSamples: a.minSamples,
    latencyEquality: a.latencyEquality ?? true,
    ...(input.sequential?.errorAlpha !== undefined
      ? { errorAlpha: input.sequential.errorAlpha, step: input.sequential.step }
      : {}),
  };
}

/** The step evidence carried in, if any (the shadow's, carried up to the first step, is not). */
function stepEvidenceOf(input: AnalyzeInput): StepEvidence | undefined {
  const ev = input.sequential?.evidence;
  return ev && !('kind' in ev) ? ev : undefined;
}

function missing(check: string, reason: string): Verdict {
  return { check, result: 'inconclusive', reason };
}

/**
 * The look's cost verdict: each variant's window priced on the replicas the fleet says it holds.
 * Undefined when the platform has no prices or the fleet cannot say: cost informs and gates, it
 * never stops the analysis.
 */
async function lookCost(
  input: AnalyzeInput,
  windows: { candidate?: VariantWindow; baseline?: VariantWindow; seconds: number },
  fleet: FleetDriver,
  prices: Prices | undefined,
  log: Logger,
): Promise<CostVerdict | undefined> {
  const serving = input.serving ?? SERVING_DEFAULTS;
  const price = replicaPrice(prices, serving.resources, serving.device);
  if (!price && input.analysis.maxCostIncrease !== undefined) {
    // Not a verdict: a platform without prices would hold every step of such a spec.
    log.warn(
      'canary.analysis.maxCostIncrease is set but the platform config has no prices (cost): cost not judged',
      {
        model: input.model,
      },
    );
  }
  if (!price || windows.seconds <= 0) return undefined;
  const usage = async (variant: string, w: VariantWindow | undefined): Promise<VariantUsage | undefined> => {
    // Variants are `v<version>`, deployments `<model>-v<version>-production` (workflows/deployments.ts).
    const d = await fleet.get(deploymentName(input.model, variant.replace(/^v/, ''), 'production'));
    if (!d) return undefined;
    return {
      variant,
      requests: w?.requests ?? 0,
      latencySeconds: w?.latency.sum ?? 0,
      replicas: d.replicas,
      instances: serving.instances,
      windowSeconds: windows.seconds,
    };
  };
  try {
    const candidate = await usage(input.candidate, windows.candidate);
    if (!candidate) return undefined;
    const baseline = input.baseline ? await usage(input.baseline, windows.baseline) : undefined;
    return costVerdict(price, candidate, baseline, {
      maxIncrease: input.analysis.maxCostIncrease,
      minRequests: input.slos.minRequests,
    });
  } catch (err) {
    log.warn('cost not computed for this look', {
      model: input.model,
      error: err instanceof Error ? err.message : String(err),
    });
    return undefined;
  }
}

export function measureActivities({ metrics, logger, fleet, prices }: ActivityDeps) {
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
        // A gap adds nothing to the step's evidence and takes nothing away: counting resumes.
        const evidence =
          input.sequential?.evidence && !('kind' in input.sequential.evidence)
            ? addGap(input.sequential.evidence, input.sequential.step)
            : input.sequential?.evidence;
        return {
          snapshot,
          gap: true,
          guard: missing(input.phase === 'shadow' ? 'shadow' : 'slo', reason),
          ...(evidence ? { evidence } : {}),
        };
      }
      const candidate = window.variants[input.candidate];
      const baseline = input.baseline ? window.variants[input.baseline] : undefined;
      if (input.phase === 'shadow') {
        const evidence = input.sequential
          ? addShadowMoves(
              input.sequential.evidence as ShadowEvidence | undefined,
              {
                up: candidate?.shadow.moves?.up ?? 0,
                down: candidate?.shadow.moves?.down ?? 0,
                flipUp: candidate?.shadow.decisions?.flipUp ?? 0,
                flipDown: candidate?.shadow.decisions?.flipDown ?? 0,
              },
              input.shadow.maxShift ?? 0.3,
              input.sequential.alpha,
            )
          : undefined;
        return {
          snapshot,
          gap: false,
          guard: checkShadow(candidate, input, evidence),
          ...(evidence ? { evidence } : {}),
        };
      }
      const guard: Verdict = candidate
        ? checkSlo(candidate, {
            maxP99Ms: input.slos.p99LatencyMs,
            maxErrorRate: input.slos.errorRate,
            minRequests: input.slos.minRequests,
          })
        : missing('slo', `no traffic recorded for ${input.candidate} in this window`);
      let comparison: Verdict | undefined;
      let evidence: IntervalAnalysis['evidence'];
      if (input.analysis.compare && input.sequential) {
        const params = stepParams(input);
        if (candidate && baseline) {
          evidence = addInterval(stepEvidenceOf(input), candidate, baseline, params);
          comparison = judgeStep(evidence, params);
        } else {
          evidence = stepEvidenceOf(input);
          comparison = evidence
            ? { ...judgeStep(evidence, params), result: 'inconclusive' }
            : missing(
                'comparison',
                `no traffic recorded for ${candidate ? input.baseline : input.candidate} in this window`,
              );
          comparison.reason = `no traffic recorded for ${candidate ? input.baseline : input.candidate} in this window; ${comparison.reason}`;
        }
      } else if (input.analysis.compare) {
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
      const cost = await lookCost(
        input,
        { candidate, baseline, seconds: (Date.parse(window.to) - Date.parse(from)) / 1000 },
        fleet,
        prices,
        log,
      );
      const variants: Record<string, WindowSummary> = {};
      for (const [name, w] of [
        [input.candidate, candidate],
        [input.baseline, baseline],
      ] as const) {
        if (!name || !w) continue;
        const p99 = w.latency.count > 0 ? quantileOrNull(w.latency, 0.99) : null;
        variants[name] = {
          requests: w.requests,
          errors: w.errors,
          errorRate: w.requests > 0 ? round(w.errors / w.requests) : null,
          p99Ms: p99 === null ? null : round(p99 * 1000),
        };
      }
      const result: IntervalAnalysis = {
        snapshot,
        gap: false,
        guard: { ...guard, window: { from, to: window.to } },
        comparison,
        ...(evidence ? { evidence } : {}),
        ...(cost ? { cost } : {}),
        variants,
      };
      if (input.phase === 'experiment') result.experiment = judgeExperiment(input, snapshot);
      return result;
    },
  };
}
