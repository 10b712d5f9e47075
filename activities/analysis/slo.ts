/**
 * The SLO guard: absolute limits on the candidate's own window, no comparison. Fewer requests
 * than `minRequests` is inconclusive (never a pass), unless the errors already seen exceed the
 * limit even if every missing request had succeeded: that is a fail whatever comes next.
 */
import { histogramTotal, quantileOrNull } from './histogram';
import type { MetricCheck, Result, SloVerdict, VariantWindow } from './types';
import { round } from './round';

export interface SloLimits {
  /** p99 latency limit in milliseconds. */
  maxP99Ms: number;
  /** Server-error rate limit (errors / requests), a fraction. */
  maxErrorRate: number;
  /** Requests the window needs before the guard may judge it. */
  minRequests: number;
}

export function checkSlo(w: VariantWindow, limits: SloLimits): SloVerdict {
  for (const [field, v] of Object.entries(limits)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new Error(`SLO limit ${field} must be a non-negative number, got ${String(v)}`);
    }
  }
  const samples = w.requests;
  const enough = samples >= limits.minRequests && samples > 0;
  const errorRate = samples > 0 ? w.errors / samples : null;
  const p99s = histogramTotal(w.latency) > 0 ? quantileOrNull(w.latency, 0.99) : null;
  const p99Ms = p99s === null ? null : round(p99s * 1000);

  // With too few requests the rate is unknown, except when the errors alone already break it.
  const errorsDecisive = w.errors > limits.maxErrorRate * Math.max(limits.minRequests, samples);
  const errorResult: Result =
    errorRate === null ? 'inconclusive' : errorsDecisive ? 'fail' : enough ? 'pass' : 'inconclusive';
  const latencyResult: Result =
    p99Ms === null || !enough ? 'inconclusive' : p99Ms > limits.maxP99Ms ? 'fail' : 'pass';

  const metrics: MetricCheck[] = [
    {
      name: 'error rate',
      value: errorRate === null ? null : round(errorRate),
      limit: limits.maxErrorRate,
      unit: 'fraction',
      result: errorResult,
    },
    { name: 'p99 latency', value: p99Ms, limit: limits.maxP99Ms, unit: 'ms', result: latencyResult },
  ];
  const failing = metrics.filter((m) => m.result === 'fail');
  let result: Result;
  let reason: string;
  if (failing.length > 0) {
    result = 'fail';
    reason = failing
      .map((m) => `${m.name} ${shown(m.value, m.unit)} over the limit ${shown(m.limit, m.unit)}`)
      .join('; ');
    reason += ` (${w.errors} of ${samples} requests failed)`;
  } else if (!enough) {
    result = 'inconclusive';
    reason = `${samples} requests in the window, ${limits.minRequests} needed to judge`;
  } else if (metrics.some((m) => m.result === 'inconclusive')) {
    result = 'inconclusive';
    reason = `no latency observations among ${samples} requests`;
  } else {
    result = 'pass';
    reason = `error rate ${metrics[0]?.value} ≤ ${limits.maxErrorRate}, p99 ${p99Ms} ms ≤ ${limits.maxP99Ms} ms over ${samples} requests`;
  }
  return { check: 'slo', result, metrics, samples, reason };
}

/** `0.25 fraction` reads as `25%` at 3 a.m.; other units keep their name. */
function shown(value: number | null, unit: string): string {
  if (value === null) return 'unknown';
  return unit === 'fraction' ? `${round(value * 100)}%` : `${value} ${unit}`;
}
