/**
 * Can the experiment trust its rewards? The router accepts at most one reward per request and
 * scales every reward to [0, 1], so honest counters obey two laws: a variant never has more
 * rewards than requests, and its reward sum never exceeds its reward count. A variant that
 * breaks either (an older router without deduplication, a second producer of the series, a
 * forged counter) or whose feedback the router keeps refusing (repeats, rewards outside the
 * shape) is being tampered with or is broken; the experiment then decides nothing and says why.
 * Nothing is clamped: the numbers are reported as they are.
 */
import { round } from './round';

export interface FeedbackCounts {
  /** Rewards accepted and their sum (on [0, 1] each). */
  count: number;
  sum: number;
  /** Requests the variant answered over the same span; unknown for older recorded state. */
  requests?: number;
  /** Feedback the router refused that named this variant; unknown for older routers. */
  rejected?: number;
}

export interface FeedbackLimits {
  /** Largest share of a variant's feedback that may be refused: rejected / (accepted + rejected). */
  maxRejectedShare: number;
  /** Refusals below this count never judge (a handful of client retries is noise). */
  minRejected: number;
  /**
   * Rewards allowed beyond one per request: feedback for requests answered just before the
   * experiment began lands inside it (share of requests, plus a constant).
   */
  lateRewardShare: number;
  lateRewards: number;
}

export const DEFAULT_FEEDBACK_LIMITS: Readonly<FeedbackLimits> = Object.freeze({
  maxRejectedShare: 0.1,
  minRejected: 10,
  lateRewardShare: 0.05,
  lateRewards: 20,
});

export interface VariantFeedback {
  variant: string;
  requests: number | null;
  rewards: number;
  rewardSum: number;
  /** Rewards per request (null without requests). */
  rewardsPerRequest: number | null;
  rejected: number | null;
  rejectedShare: number | null;
  /** What is wrong with this variant's feedback; empty when nothing is. */
  findings: string[];
}

export interface FeedbackAudit {
  trusted: boolean;
  variants: VariantFeedback[];
  /** The findings of every variant, in one sentence; empty when trusted. */
  reason: string;
}

const pct = (x: number): string => `${round(x * 100, 4)}%`;

export function auditFeedback(
  variants: Record<string, FeedbackCounts>,
  limits: FeedbackLimits = DEFAULT_FEEDBACK_LIMITS,
): FeedbackAudit {
  const out: VariantFeedback[] = Object.keys(variants)
    .sort()
    .map((variant) => {
      const c = variants[variant]!;
      const findings: string[] = [];
      const requests = c.requests ?? null;
      const rejected = c.rejected ?? null;
      if (!Number.isFinite(c.count) || !Number.isFinite(c.sum) || c.count < 0 || c.sum < 0) {
        findings.push(
          `its reward counters are not finite non-negative numbers (count ${c.count}, sum ${c.sum})`,
        );
      } else {
        if (c.sum > c.count * (1 + 1e-9) + 1e-9) {
          findings.push(
            `its rewards sum to ${round(c.sum, 4)} over ${c.count} rewards: more than the shape's maximum (1 each on the router's scale)`,
          );
        }
        if (requests !== null && c.count > requests * (1 + limits.lateRewardShare) + limits.lateRewards) {
          findings.push(
            `it has ${c.count} rewards for ${requests} requests: more than one reward per request`,
          );
        }
      }
      let rejectedShare: number | null = null;
      if (rejected !== null && rejected + c.count > 0) {
        rejectedShare = rejected / (rejected + c.count);
        if (rejected >= limits.minRejected && rejectedShare > limits.maxRejectedShare) {
          findings.push(
            `the router refused ${pct(rejectedShare)} of its feedback (${rejected} of ${rejected + c.count}: repeats or rewards outside the shape), above the ${pct(limits.maxRejectedShare)} allowed`,
          );
        }
      }
      return {
        variant,
        requests,
        rewards: c.count,
        rewardSum: round(c.sum, 4),
        rewardsPerRequest: requests ? round(c.count / requests, 4) : null,
        rejected,
        rejectedShare: rejectedShare === null ? null : round(rejectedShare, 4),
        findings,
      };
    });
  const bad = out.filter((v) => v.findings.length > 0);
  return {
    trusted: bad.length === 0,
    variants: out,
    reason: bad.map((v) => `${v.variant}: ${v.findings.join('; ')}`).join(' — '),
  };
}
