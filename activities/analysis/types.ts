/**
 * Inputs and verdicts of the pure statistics. A window is what the router measured for one
 * variant over an interval: the difference of two cumulative `VariantCounters` snapshots, so the
 * type matches that shape field for field (serving/metrics/source.ts).
 */
import type { Histogram, VariantCounters } from '../../serving/metrics/source';

export type { Histogram };

/** One variant's traffic over a window (deltas of `VariantCounters`). */
export interface VariantWindow {
  requests: number;
  /** Server-side failures (5xx, upstream errors): what the error rate counts. */
  errors: number;
  clientErrors?: number;
  latency: Histogram;
  mirrored?: number;
  mirrorDropped?: number;
  shadow?: VariantCounters['shadow'];
  rewards: { count: number; sum: number };
}

export type Result = 'pass' | 'fail' | 'inconclusive';

/** One measured number against its limit, as it appears in the history. */
export type MetricCheck = {
  name: string;
  /** null when the window had no data to compute it from. */
  value: number | null;
  limit: number;
  unit: string;
  result: Result;
};

export type SloVerdict = {
  check: 'slo';
  result: Result;
  metrics: MetricCheck[];
  samples: number;
  reason: string;
};

/** One statistical comparison of candidate against baseline. */
export type TestResult = {
  test:
    | 'two-proportion-z'
    | 'mann-whitney-u'
    | 'quantile-order-statistic'
    | 'sequential-error-rate'
    | 'sequential-latency-order'
    | 'sequential-latency-equality';
  /** What is compared, e.g. "error rate" or "latency". */
  metric: string;
  /** One-sided p-value of "candidate worse than baseline by more than allowed"; null if not computed. */
  pValue: number | null;
  /** Confidence interval of the compared quantity, when the test gives one. */
  interval?: [number, number];
  candidate: number | null;
  baseline: number | null;
  /** The p-value below which the test fails (1 − confidence), or the bound compared against. */
  threshold: number;
  /** The allowed degradation (absolute error-rate margin or relative latency increase). */
  allowed: number;
  samples: { candidate: number; baseline: number };
  result: Result;
  explanation: string;
  /** Test-specific numbers (z statistic, U, effect size) for the curious auditor. */
  details?: Record<string, number | null>;
};

export type ComparisonVerdict = {
  check: 'comparison';
  result: Result;
  tests: TestResult[];
  samples: { candidate: number; baseline: number };
  reason: string;
  /** True for the anytime-valid comparison over the whole step (step-evidence.ts). */
  sequential?: boolean;
};
